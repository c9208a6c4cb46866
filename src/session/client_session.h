// A client session: one client connection, from the proxy's own handshake and
// authentication to the end.  It owns the login, the command loop and the
// session's state, and holds a small set of server sessions, one of them
// current: each command goes to the current one, which relays the response
// and says when it is complete.  It lives on one worker for its whole life,
// and only that worker's thread touches it.
//
//   client_session.cc   life cycle, the state transition, publishing, the
//                       server-session set, kills
//   client_login.cc     handshake, authentication, backend login, COM_CHANGE_USER
//   client_commands.cc  the command loop: dispatch, forwarding, uploads, completion
//   client_sync.cc      the session's state, carried to each server session
//   client_statements.cc  prepared statements on each server session
//   client_routing.cc   which server session each command goes to: the
//                       read/write split, health, failover, causal reads
//   client_multiplex.cc multiplexing: server sessions taken from the
//                       worker's shared set and given back when idle
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/admin_commands.h"
#include "control/fleet_command.h"
#include "myrelay/shm_layout.h"
#include "protocol/auth.h"
#include "protocol/connection.h"
#include "protocol/packets.h"
#include "routing/shared_servers.h"
#include "service/config.h"
#include "session/login_name.h"
#include "session/prepared_statements.h"
#include "session/relay.h"
#include "session/server_session.h"
#include "session/session_state.h"
#include "session/streamed_statement.h"

namespace myrelay {

class SessionHost;

// Who ends a session, for the kill log and the log lines.
struct KilledBy {
  uint32_t cs_id = 0;  // a SQL session's KILL
  int32_t pid = 0;     // myrelayctl's
  int32_t uid = -1;    // its uid, when known
  std::string name;    // "user@tenant" of the SQL session, or what ended it ("timeouts.client_idle_s")
  std::string text() const;
  // An end nobody asked for by name: a timeout, the shutdown, a lost backend.
  static KilledBy because(std::string what) { return KilledBy{0, 0, -1, std::move(what)}; }
};

class ClientSession : public ServerSessionOwner, public ConnectionWaiter {
 public:
  // DESIGN section 3's client session states (the numbers are the shm's).
  enum class State { Init, ActiveReader, KeepAlive, HalfClosed, Closed };
  static const char* state_name(State s);

  // A session without a slot only answers "Too many connections" once the
  // client's handshake response is in.
  ClientSession(SessionHost& host, int fd, const std::string& peer_ip, uint16_t peer_port,
                uint32_t cs_id, uint64_t proxy_sessid, shm::Slot* slot, uint32_t slot_index);
  ~ClientSession() override;
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Sends the handshake and starts the handshake deadline.
  void start();
  // Ends the session now: its connections close, the worker frees it later.
  void close(const char* why);
  // The proxy is stopping: close now if idle, else once the running
  // statement (or the open transaction) ends.
  void drain();

  // Kill requests, checked by the worker to be for this very session; each
  // is recorded in the kill log.
  void kill(const KilledBy& by);
  bool kill_server_session(uint64_t ss_id, const KilledBy& by);
  void kill_query(const KilledBy& by);
  // KILL ... WHEN IDLE: ends the session the next moment it is idle outside
  // a transaction (now, if it is), or after timeout_s (0: no limit) anyway.
  void kill_when_idle(const KilledBy& by, uint32_t timeout_s);
  // The proxy stops (the drain, or its grace period is over): closes, and
  // records it in the kill log.
  void close_for_shutdown(const char* why);

  // ServerSessionOwner.
  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_response_done(ServerSession* ss) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;
  void on_upload_possible(ServerSession* ss) override;
  void on_internal_done(ServerSession* ss) override;
  void on_session_state(ServerSession* ss, const proto::TrackedOk& ok) override;
  uint32_t on_statement_prepared(ServerSession* ss, uint32_t backend_id, uint16_t columns,
                                 uint16_t params) override;
  void on_statement_metadata(ServerSession* ss, const std::string& definition) override;
  void on_server_state_changed(ServerSession* ss) override;
  // ConnectionWaiter.
  void on_connection_free() override;
  void event_begins() override { ++step_depth_; }
  void event_ends() override {
    if (--step_depth_ == 0 && publish_pending_) publish();
  }

  uint32_t cs_id() const { return cs_id_; }
  uint64_t proxy_sessid() const { return proxy_sessid_; }
  State state() const { return state_of(phase_); }
  bool closed() const { return phase_ == Phase::Closed; }
  const LoginName& login() const { return login_; }
  const std::string& peer_ip() const { return peer_ip_; }
  uint16_t peer_port() const { return peer_port_; }
  const std::string& database() const { return db_; }
  uint64_t trans_count() const { return trans_count_; }
  bool in_transaction() const { return in_trans_; }
  uint32_t slot_index() const { return slot_index_; }
  const std::vector<std::unique_ptr<ServerSession>>& server_sessions() const { return servers_; }
  const ServerSession* current_server() const { return current_; }
  const SessionState& session_state() const { return state_; }
  bool multiplexed() const { return multiplexed_; }
  size_t prepared_statements() const { return stmts_.size(); }

 private:
  // Where a command wants to run, and what routing it came to (client_routing.cc).
  enum class Want { Stay, Write, Read };
  enum class Route { Go, Wait, Answered };

  enum class Phase {
    AwaitHandshakeResponse,  // MCS_INIT ...
    TlsHandshake,            //   after an SSLRequest: the TLS handshake runs
    AwaitAuthSwitchResponse,
    BackendLogin,
    Ready,                   // MCS_KEEP_ALIVE
    AwaitServer,             // MCS_ACTIVE_READER: a command waits for a server session
    InCommand,               //   a command was forwarded; its response is being relayed
    LocalCommand,            //   the proxy answers a command itself
    AwaitChangeUserAuth,
    ChangeUserLogin,
    Closing,                 // MCS_HALF_CLOSED: flushing the last packets
    Closed,                  // MCS_CLOSED
  };
  static State state_of(Phase p);

  // Every event the session handles runs inside a Step; the record in
  // shared memory is written once, when the outermost Step ends, so a reader
  // never sees a state older than the last event.
  class Step {
   public:
    explicit Step(ClientSession& s) : s_(s) { ++s_.step_depth_; }
    ~Step() {
      if (--s_.step_depth_ == 0 && s_.publish_pending_) s_.publish();
    }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;

   private:
    ClientSession& s_;
  };

  // ---- client_session.cc ----
  // The one transition function (pgbouncer's change_client_state).
  void change_phase(Phase p);
  void publish();
  void fill_record(shm::SessionRecord& r) const;
  void fill_activity(shm::SessionRecord& r) const;
  void publish_variables();
  void identity_changed() { identity_dirty_ = true; }
  ServerSession* open_server(const BackendServer& server, const std::string& cluster);
  ServerSession* find_server(uint64_t ss_id) const;
  ServerSession* server_for(const BackendServer& server) const;
  // Ends a server session; one still running a statement also gets a KILL
  // from a side connection, so nothing keeps running behind it.
  void release_server(ServerSession* ss);
  void release_all_servers();
  std::unique_ptr<ServerSession> take_server(ServerSession* ss);
  void drop_server(ServerSession* ss, const char* why);
  // A server session that holds the session's only copy of state the proxy
  // cannot carry is gone: the client session ends too, as its server would
  // have ended it.  True when it did.
  bool end_if_unrestorable(const std::string& what);
  void adopt_server(ServerSession* ss);
  // Brings a server session up to the session's state (ODP's variable
  // versions); true while that runs (the phase is then AwaitServer).
  bool start_sync(ServerSession* ss);
  std::vector<std::string> sync_commands(ServerSession* ss) const;
  bool sync_succeeded(ServerSession* ss, std::string& why);
  void continue_after_server();
  void send_packet(const std::string& payload);
  void send_ok(uint16_t status_extra = 0);
  void send_error(const er::Error& e, const std::string& message);
  void send_error_and_close(const er::Error& e, const std::string& message, const char* why);
  void close_after_flush(const char* why);
  void free_timers();
  // Writes the kill log's entry for this session's end (or its statement's,
  // or one server session's): before the session lets go of its slot.
  // Returns the entry's id.
  uint64_t log_kill(shm::KillReason reason, const KilledBy& by);
  void count_latency(int health, int64_t us);
  // Idle now: outside a transaction, the drain at shutdown or a graceful
  // kill ends the session; true when it did.
  bool end_if_asked_to_end_when_idle();
  // Idle outside a transaction with a graceful kill pending: it happens now.
  bool end_if_kill_pending();
  static void on_kill_timer(evutil_socket_t, short, void* arg);
  void end_pending_login();
  uint16_t client_status() const;

  static void on_client_read(Connection* c, void* arg);
  static void on_client_write(Connection* c, void* arg);
  static void on_client_event(Connection* c, short what, int err, void* arg);
  static void on_handshake_timeout(evutil_socket_t, short, void* arg);
  static void on_idle_timer(evutil_socket_t, short, void* arg);
  static void on_read_timer(evutil_socket_t, short, void* arg);
  void handle_input();
  // Whether the client is in the middle of sending something the session
  // waits for (net_read_timeout_s applies).
  bool owes_bytes() const;
  // Cheap enough for every event: the timer is armed only when the client
  // may owe bytes.
  void watch_reads() {
    if (partial_command_ || upload_starved_ || phase_ == Phase::AwaitChangeUserAuth) arm_read_timer();
  }
  void arm_read_timer();

  // ---- client_login.cc ----
  void send_handshake();
  void handle_handshake_response();
  void start_tls();
  void on_tls_ready();
  void handle_auth_switch_response();
  bool read_auth_answer(std::string& payload);
  // One authentication, at login or COM_CHANGE_USER: the user looked up,
  // the client's answer checked with the user's method, an auth switch or
  // caching_sha2_password's further packets as needed; then auth_finished().
  void begin_auth(std::shared_ptr<const Config> cfg, const std::string& login_text, const std::string& client_plugin,
                  const std::string& answer);
  void auth_packet(const std::string& payload);
  void check_answer(const std::string& answer);
  void check_clear_password(const std::string& password);
  void auth_finished(bool ok);
  void authenticated();
  void deny_access(bool used_password);
  BackendLogin backend_login() const;
  void note_routing();
  const BackendServer* login_server(const Cluster& cluster);
  void begin_backend_login(Phase phase);
  bool take_pooled(const BackendServer& server, const std::string& cluster);
  void login_complete(ServerSession* ss);
  void pool_server_session();
  void handle_change_user(const std::string& payload);
  void handle_change_user_auth();
  void change_user_authenticated();
  void start_change_user_login();
  void finish_change_user(bool ok, const std::string& err_payload);

  // ---- client_commands.cc ----
  void process_commands();
  void handle_command(std::string&& payload);
  bool refuse_command(uint8_t cmd);
  Route ensure_server(uint8_t cmd, std::string_view payload);
  void forward_command(std::string&& payload);
  void resume_held();
  void start_streamed_command(uint8_t command, const uint8_t* head, size_t head_len);
  void pump_upload();
  void count_command(size_t bytes);
  // The statement area in shared memory: what runs, since when.
  void statement_started(std::string_view text);
  void statement_ended();
  void complete_command(ServerSession* ss);
  bool run_admin_command(std::string_view sql);
  // A proxy statement's answer to the client, and the session ready again.
  // `leaves_warnings`: its notes replace those SHOW WARNINGS lists (all
  // but SHOW WARNINGS itself).
  void finish_admin_command(const admin::Answer& answer, bool leaves_warnings = true);
  // The fleet answered a statement that needed other proxies; `kills`: a
  // kill form, which this proxy's kill log records when it went to a peer.
  void fleet_answered(fleet::FleetCommand::Result r, const std::string& statement, bool kills);
  bool refuse_statement(std::string_view sql);
  bool note_statement(std::string_view sql);
  void after_reset(ServerSession* ss);

  // ---- client_routing.cc ----
  Want want_for(uint8_t cmd, std::string_view payload);
  Route route_command(uint8_t cmd, std::string_view payload);
  Route route_write();
  ServerSession* read_session();
  // Makes the server session to `server` current, opening it when the
  // session has none there; Go when it is ready now.
  Route use_server(const BackendServer& server, bool for_read);
  Route wait_for_writable();
  std::shared_ptr<const Config> live_config() const;
  bool needs_causal_wait(ServerSession* ss) const;
  void start_causal_wait(ServerSession* ss);
  void finish_causal_wait(ServerSession* ss);
  bool retry_read_elsewhere(ServerSession* ss, const std::string& why);
  void release_idle_servers();
  void arm_replica_timer();
  static void on_route_timer(evutil_socket_t, short, void* arg);
  static void on_replica_timer(evutil_socket_t, short, void* arg);

  // ---- client_multiplex.cc ----
  // A connection to `server` for a multiplexed session (or any session
  // under max_server_connections): from the shared set
  // (`login`: for the login itself, so only one already in the login's
  // database), a new one while the line has room, else the command waits.
  Route take_shared(const BackendServer& server, const std::string& cluster, bool login);
  Route take_shared(ServerLine& line, const std::string& cluster, bool login);
  // The last statement's server again, when nothing says otherwise;
  // Answered: something does (route as usual).
  Route take_again(uint8_t cmd, std::string_view payload);
  Route queue_for(ServerLine& line, const BackendServer& server, int cap);
  SharedServers::Fit shared_fit(const ServerSession& ss, const std::string& cluster, bool login) const;
  // Idle, restorable, outside a transaction: the server sessions go back
  // to the shared set.
  void release_to_shared(bool quitting = false);
  // Why an idle multiplexed session keeps its server sessions (0: it does not).
  uint32_t pin_reasons() const;
  void note_server_used(ServerSession* ss);
  void stop_queue_wait();
  static void on_queue_timeout(evutil_socket_t, short, void* arg);

  // ---- client_statements.cc ----
  enum class StatementRoute { Forward, Wait, Answered };
  void send_to_server(std::string&& payload);
  StatementRoute route_statement(std::string& payload);
  StatementRoute route_streamed_statement(evbuffer* in);
  PreparedStatements::OnServer* statement_here(PreparedStatements::Statement& st);
  void share_statement(ServerSession* ss, const PreparedStatements::Statement& st);
  std::string shared_key(const ServerSession& ss, const PreparedStatements::Statement& st) const;
  void note_statement_use(PreparedStatements::Statement& st, uint8_t cmd);
  void close_statement(uint32_t id);
  void start_reprepare(const PreparedStatements::Statement& st);
  void finish_reprepare(ServerSession* ss);
  void after_statement_response(const ResponseTracker& r);
  void update_statement_reasons();
  bool judge_streamed_statement();
  void fail_command(ServerSession* ss, const std::string& why);
  void arm_idle_timer();
  void transaction_began();
  int idle_in_transaction_s() const;
  int statement_ms() const;
  void watch_statement_time();
  static void on_statement_timer(evutil_socket_t, short, void* arg);

  SessionHost& host_;
  shm::WorkerCounters& counters_;  // the worker's, in shared memory
  std::shared_ptr<const Config> cfg_;
  // TLS as offered in this session's handshake (nullptr: not offered).
  std::shared_ptr<const TlsContext> tls_;
  std::unique_ptr<Connection> conn_;
  event* handshake_timer_ = nullptr;
  event* idle_timer_ = nullptr;
  event* read_timer_ = nullptr;  // see watch_reads()
  event* statement_timer_ = nullptr;  // timeouts.statement_ms
  event* kill_timer_ = nullptr;       // KILL ... WHEN IDLE: now (idle), or its TIMEOUT
  struct GracefulKill {
    KilledBy by;              // who asked for it
    int64_t deadline_us = 0;  // its TIMEOUT (0: none)
  };
  std::unique_ptr<GracefulKill> kill_when_idle_;  // while one is pending
  // The kill log's last entry while a statement ran, and the server session
  // it ran on (compared, never followed: it may be gone).
  const ServerSession* logged_kill_server_ = nullptr;
  uint64_t logged_kill_id_ = 0;
  uint64_t timed_query_ = 0;          // the command (queries_) it is armed for
  std::string peer_ip_;
  uint16_t peer_port_;
  uint32_t cs_id_;
  uint64_t proxy_sessid_;
  Phase phase_ = Phase::AwaitHandshakeResponse;
  Scramble scramble_{};
  uint8_t seq_ = 0;  // sequence id of the next packet the proxy writes itself

  // Who logged in.
  std::string login_text_;  // as the client sent it, for error messages
  LoginName login_;
  const Tenant* tenant_ = nullptr;  // points into cfg_
  std::optional<Sha1Digest> hash1_;
  // The clear password, when the proxy has it (the configuration, or a
  // caching_sha2_password full authentication): for backend methods that
  // need it.  Never logged.
  std::shared_ptr<const std::string> password_;
  std::optional<Sha256Digest> sha256_;  // for backends that speak caching_sha2_password
  // The authentication under way (begin_auth .. auth_finished).
  enum class AuthStep { Answer, Sha2FullAuth, Sha2Rsa };
  struct AuthAttempt {
    std::shared_ptr<const Config> cfg;  // keeps tenant and user alive
    std::string login_text;
    LoginName login;
    const Tenant* tenant = nullptr;
    const UserEntry* user = nullptr;  // null: unknown, denied once the client has answered
    AuthPlugin plugin = AuthPlugin::NativePassword;  // the method being spoken
    AuthStep step = AuthStep::Answer;
    bool used_password = false;
    bool switched = false;  // the proxy sent an auth switch (its nonce NUL-terminated)
    const char* how = "";  // for the log: "fast path", "full authentication over TLS"...
    std::optional<Sha1Digest> hash1;
    std::shared_ptr<const std::string> password;
    std::optional<Sha256Digest> sha256;  // SHA256(pw), from a caching_sha2 fast path
  };
  // Only while a login or a change user authenticates: an idle session
  // does not carry it.
  std::unique_ptr<AuthAttempt> auth_;
  AuthPlugin announced_plugin_ = AuthPlugin::NativePassword;  // what the handshake named
  proto::HandshakeResponse hello_;  // the client's handshake response
  uint32_t caps_ = 0;               // capabilities agreed with the client
  uint32_t ext_caps_ = 0;           // MariaDB's extended ones
  std::string db_;
  uint8_t charset_ = 0;

  // The server sessions, at most shm::kMaxServerSessions; commands go to
  // current_.  pending_ is COM_CHANGE_USER's new login until it succeeds.
  std::vector<std::unique_ptr<ServerSession>> servers_;
  ServerSession* current_ = nullptr;
  std::unique_ptr<ServerSession> pending_;
  bool reused_server_ = false;   // current_ came from the worker's pool
  bool skip_pool_once_ = false;  // a pooled one just failed: connect afresh
  // A COM_CHANGE_USER under way (handle_change_user .. finish_change_user):
  // an idle session does not carry it.
  struct ChangeUserAttempt {
    proto::ChangeUser request;
    std::optional<Sha1Digest> hash1;
    std::shared_ptr<const std::string> password;
    std::optional<Sha256Digest> sha256;
    const Tenant* tenant = nullptr;
    std::shared_ptr<const Config> cfg;  // holds tenant alive
    LoginName login;
  };
  std::unique_ptr<ChangeUserAttempt> cu_;

  // The command in flight.
  uint8_t command_ = 0;
  std::string held_command_;  // a whole command waiting for a server session
  std::string use_db_;        // "USE db" seen in the command: the db on success
  PacketRelay up_;            // client -> server: long commands, LOCAL INFILE data
  std::unique_ptr<StreamedStatement> streamed_text_;  // a long statement, looked at as it goes
  std::string spare_command_;  // see process_commands()
  bool in_trans_ = false;
  // The session's state (DESIGN section 3a), what the client's own trackers
  // report, and whether the statement running reports only temporary values
  // (SET STATEMENT ... FOR).
  SessionState state_;
  std::shared_ptr<const proto::TrackerSet> client_trackers_;  // shared by the cluster's sessions
  bool temporary_report_ = false;
  std::vector<admin::Warning> local_warnings_;  // for SHOW WARNINGS after a proxy statement
  // A proxy statement waiting for other proxies of the fleet (the session
  // stays MCS_ACTIVE_READER meanwhile); destroying it cancels the requests.
  std::unique_ptr<fleet::FleetCommand> fleet_command_;
  // Prepared statements; the text of the COM_STMT_PREPARE in flight; the
  // statement the command in flight uses.
  PreparedStatements stmts_;
  std::string preparing_sql_;
  bool preparing_kept_ = false;
  PreparedStatements::Statement* running_stmt_ = nullptr;  // valid until it is closed
  // What the proxy's own commands on the current server session are for.
  enum class Internal { Sync, Reprepare, CausalWait };
  Internal internal_ = Internal::Sync;
  uint32_t reprepare_id_ = 0;
  uint32_t reprepare_failed_ = 0;
  uint64_t published_state_ = 0;  // the state version in the variables area
  uint32_t vars_dropped_ = 0;     // entries that did not fit it
  uint64_t trans_count_ = 0;

  // Routing (client_routing.cc).
  bool splits_ = false;        // the read/write split is on for this login
  bool causal_reads_ = false;  // its cluster's causal_reads
  bool autocommit_ = true;     // as the last status the server sent says
  bool force_write_ = false;   // the command waiting goes to the writable server
  bool read_routed_ = false;   // the command in flight went to a read server
  bool read_opening_ = false;  // the server session being opened is for a read
  uint64_t read_ss_id_ = 0;    // the server session reads go to (0: to be chosen)
  std::string read_retry_;     // the read in flight, kept to run it elsewhere if its replica dies
  int64_t wait_since_us_ = 0;  // a write has waited for a writable server since
  event* route_timer_ = nullptr;
  event* replica_timer_ = nullptr;

  // Multiplexing (client_multiplex.cc).
  bool multiplexed_ = false;
  ServerLine* waiting_on_ = nullptr;  // queued there for a connection
  bool woken_ = false;                // the shared set woke it: its turn now
  bool queue_armed_ = false;          // queue_timer_ runs
  int mux_cap_ = 0;                   // this worker's share of max_server_connections (0: none)
  event* queue_timer_ = nullptr;      // queue_timeout_ms, from the first wait
  uint64_t last_ss_id_ = 0;           // the connection the last command ran on
  ServerLine* last_line_ = nullptr;   // and its server's line (the worker's: lives as long)
  uint64_t moves_ = 0;                // commands that ran on another connection than the last

  // This session's record in the shared segment, written only here.
  shm::Slot* slot_;
  uint32_t slot_index_;
  bool login_pending_;  // counted as a login in progress (see service/admission.h)
  int step_depth_ = 0;
  bool identity_dirty_ = true;   // more than the per-command fields changed
  bool publish_pending_ = false;
  // What the last full record said, of what decides whether to write one.
  struct Published {
    uint32_t not_restorable = 0;
    uint32_t prepared_statements = 0;
    uint32_t pinned = 0;
    uint64_t first_ss_id = 0;  // its first server session's
  };
  Published published_;
  uint64_t queries_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  int64_t created_us_ = 0;
  int64_t last_active_us_ = 0;
  int64_t trans_started_us_ = 0;  // when the open transaction began
  int64_t last_read_us_ = 0;     // when the client last sent bytes while owing some
  bool client_progress_ = false;  // bytes arrived since watch_reads() last looked
  bool partial_command_ = false;  // the input holds the start of a command only
  bool statement_running_ = false;  // its start is in the statement area, its end not yet
  bool upload_starved_ = false;  // the upload waits for the client, not the backend
};

}  // namespace myrelay
