// A server session: one backend connection, owned by a client session (or,
// while idle, by the worker's pool), on that client session's worker.  It
// logs in to the backend as the client's user, answering the backend's
// scramble with the SHA1(pw) recovered at the client's login, and then runs
// commands: it writes each to the backend, follows the response with its
// ResponseTracker and relays it, packet by packet, into the client's
// connection, and tells its owner when the response is complete.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "myrelay/shm_layout.h"
#include "protocol/auth.h"
#include "protocol/connection.h"
#include "protocol/packets.h"
#include "protocol/response_tracker.h"
#include "protocol/session_track.h"
#include "service/config.h"
#include "session/backend_statements.h"
#include "session/relay.h"
#include "session/session_state.h"

namespace myrelay {

class ServerSession;
class BackendHost;
class ServerLine;

// Who hears about a server session: its client session, the pool, or a side
// connection.  Every callback may delete the server session.
class ServerSessionOwner {
 public:
  virtual ~ServerSessionOwner() = default;
  // Logged in (for the pool: reset) and ready for a command.
  virtual void on_server_ready(ServerSession* ss) = 0;
  virtual void on_server_login_failed(ServerSession* ss, const std::string& err_payload) = 0;
  // The response to run() has been relayed whole.
  virtual void on_response_done(ServerSession*) {}
  // The responses to run_internal() have all arrived (see internal_results()).
  virtual void on_internal_done(ServerSession*) {}
  // An OK of a relayed response reported session state (CLIENT_SESSION_TRACK).
  virtual void on_session_state(ServerSession*, const proto::TrackedOk&) {}
  // The client's COM_STMT_PREPARE succeeded: returns the statement id the
  // client gets instead of the backend's.
  virtual uint32_t on_statement_prepared(ServerSession*, uint32_t backend_id, uint16_t /*columns*/,
                                         uint16_t /*params*/) {
    return backend_id;
  }
  // ... and each of its parameter and column definitions, as relayed.
  virtual void on_statement_metadata(ServerSession*, const std::string& /*definition*/) {}
  // The backend connection is gone, or the backend said something that makes
  // no sense (then it has been closed).  What it sent before is relayed.
  virtual void on_server_lost(ServerSession* ss, const std::string& why) = 0;
  // The backend can take (more of) the client's upload: a LOAD DATA LOCAL
  // INFILE request arrived, or the backend's output drained.
  virtual void on_upload_possible(ServerSession*) {}
  // Its MSS_* state changed.
  virtual void on_server_state_changed(ServerSession*) {}
  // An event of the server session's own (its socket, its timer) begins and
  // ends: the owner may batch what the event changes (a client session
  // writes its shared-memory record once, at the end).
  virtual void event_begins() {}
  virtual void event_ends() {}
};

// What a backend login needs, taken from the client's login.
struct BackendLogin {
  std::string user;                  // the user part of the login name
  std::optional<Sha1Digest> hash1;   // SHA1(pw); empty = no password
  // The clear password, when the configuration holds it so (the methods
  // that need it: client_ed25519); never logged.
  std::shared_ptr<const std::string> password;
  // SHA256(pw), when known without the clear password (from a client's own
  // caching_sha2_password answer): caching_sha2_password's fast path.
  std::optional<std::array<uint8_t, 32>> sha256;
  std::string database;
  uint8_t charset = 0;
  uint32_t client_caps = 0;          // what the client and the proxy agreed on
  uint32_t client_ext_caps = 0;      // MariaDB's extended ones
  uint32_t max_packet = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
};

class ServerSession {
 public:
  // DESIGN section 3's server session states.
  enum class State { Init, Active, KeepAliveClientSlave, KeepAliveShared, Closed };
  static const char* state_name(State s);

  ServerSession(ServerSessionOwner& owner, BackendHost& host, const BackendServer& server,
                std::string cluster, uint64_t ss_id, int connect_timeout_ms);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // ---- login (server_login.cc) ----
  // Starts connecting and logging in; the owner hears on_server_ready or
  // on_server_login_failed, never from inside this call's own stack unless
  // the address is unusable.
  void connect(const BackendLogin& login);
  // Pooling.  park(): COM_RESET_CONNECTION (rolls back, drops temporary
  // tables, prepared statements, variables and user locks), then
  // on_server_ready.  reuse(): switches to another client's user, database
  // and character set, heard like a login.
  void park();
  // `reset`: always COM_CHANGE_USER, which resets the session (a shared
  // connection holding another session's state, switched to a new login).
  void reuse(const BackendLogin& login, bool reset = false);
  void forget_state();
  // Whether a login with these client capabilities would have negotiated
  // what this session has (a pooled session can only serve such a client).
  bool can_serve(uint32_t client_caps, uint32_t client_ext_caps) const;
  void set_owner(ServerSessionOwner& owner) { owner_ = &owner; }
  // Its server's health entry: the session is counted in its
  // server_sessions until it is destroyed, and routing() reads it.
  void attach_health(shm::ServerEntry& entry);
  // Its place on its server's line (the cap of max_server_connections):
  // held from here to its end.
  void attach_line(ServerLine& line);
  ServerLine* line() const { return line_; }
  // The server's routing word (shm::ServerRouting); every bit without an
  // entry (a side connection).
  uint32_t routing() const {
    return health_ ? health_->routing.load(std::memory_order_acquire)
                   : shm::kRouteUp | shm::kRouteWritable | shm::kRouteReadable;
  }

  // ---- commands (server_session.cc) ----
  // Who the responses are relayed to: the client's capabilities and what its
  // session trackers report, so that OKs are rebuilt as the server would
  // have sent them to it.
  void set_client_view(uint32_t client_caps, const std::shared_ptr<const proto::TrackerSet>* trackers) {
    client_caps_ = client_caps;
    trackers_ = trackers;
  }
  // Runs a command read whole: writes it to the backend and relays the
  // response into `client`.
  void run(const std::string& payload, Connection* client);
  // Writes a command that gets no response (COM_STMT_CLOSE) while idle.
  void send_quiet(const std::string& payload);
  // Runs the proxy's own commands, all written at once (pipelined); the
  // owner hears on_internal_done when every response has arrived.
  void run_internal(std::vector<std::string> payloads);
  // Each internal command's response, as packets.
  const std::vector<std::vector<std::string>>& internal_results() const { return internal_->results; }
  // A command too long to read whole: `head` is its first bytes; the client
  // session moves the command itself with forward_upload().
  void begin_streamed(uint8_t command, const uint8_t* head, size_t head_len, Connection* client);
  // Client packets this command still needs: the rest of a streamed
  // command, or the file of a LOAD DATA LOCAL INFILE.
  bool wants_upload() const { return streaming_ || tracker_.awaiting_client_upload(); }
  // How much of them the backend's output may take now.
  size_t upload_room() const;
  void forward_upload(evbuffer* client_in, size_t n);
  // A whole client packet went.  False once the upload is over (the
  // response follows, and the owner may already have heard of its end).
  bool upload_packet_done(uint64_t payload_len);
  // The client's output drained: go on relaying.
  void on_client_drained();
  // The statement running is being stopped by the proxy (a timeout): the
  // "Query execution was interrupted" the backend answers with reaches the
  // client as `err_payload` instead.  For this command only.
  void replace_interrupted_error(std::string err_payload) { interrupt_error_ = std::move(err_payload); }

  // Politely ends the backend connection (COM_QUIT when logged in).
  void close();

  // One transition function: every state change goes through it, and the
  // owner hears of it.
  void change_state(State s);

  Connection* conn() const { return conn_.get(); }
  State state() const { return state_; }
  bool ready() const { return phase_ == Phase::Ready && conn_ != nullptr; }
  bool in_command() const { return in_command_; }
  // Whether the proxy may write a packet of its own to the client now (the
  // relay is between packets).
  bool between_packets() const { return !down_.mid_packet() && !wants_upload(); }
  // Sequence id of the last packet relayed to the client.
  uint8_t last_relayed_seq() const { return down_.last_seq(); }
  const ResponseTracker& response() const { return tracker_; }
  uint64_t response_bytes() const { return response_bytes_; }

  uint64_t ss_id() const { return ss_id_; }
  uint32_t server_sessid() const { return server_sessid_; }  // the backend's thread id
  const BackendServer& server() const { return server_; }
  const std::string& cluster() const { return cluster_; }
  const BackendLogin& login() const { return login_; }
  uint32_t caps() const { return caps_; }  // negotiated with the backend
  uint32_t ext_caps() const { return ext_caps_; }
  uint16_t login_status() const { return login_status_; }
  const std::string& server_version() const { return server_version_; }
  // TLS towards the backend: the version ("" without TLS) and the cipher.
  const char* tls_version() const { return conn_ ? conn_->tls_version() : ""; }
  const char* tls_cipher() const { return conn_ ? conn_->tls_cipher() : ""; }
  // Whether the backend reports session state, and whether this session's
  // trackers are set up (session_track_*, after every login and reset).
  bool tracks_state() const { return caps_ & proto::CLIENT_SESSION_TRACK; }
  bool tracking_on() const { return tracking_on_; }
  void set_tracking_on(bool on) { tracking_on_ = on; }
  // The version of its client session's state this session holds (0: none).
  uint64_t synced_version() const { return synced_version_; }
  void set_synced_version(uint64_t v) { synced_version_ = v; }
  // The database this session uses, as far as the proxy has set it.
  const std::string& schema() const { return schema_; }
  void set_schema(const std::string& db) { schema_ = db; }
  // The backend speaks MariaDB's dialect of the protocol.
  bool mariadb() const { return mariadb_; }
  uint64_t transact_count() const { return transact_count_; }
  void count_transaction() { ++transact_count_; }
  uint64_t requests() const { return requests_; }
  int64_t created_us() const { return created_us_; }
  // When the client's last command started on it (as its client session
  // tells: the clock is read once per command, there).
  int64_t last_used_us() const { return last_used_us_ ? last_used_us_ : created_us_; }
  void set_last_used(int64_t us) { last_used_us_ = us; }
  // The client session's last write that this (replica) session is known
  // to hold (causal reads).
  const std::string& causal_gtid() const { return causal_gtid_; }
  void set_causal_gtid(const std::string& g) { causal_gtid_ = g; }

  // ---- multiplexing ----
  // The client session whose state it holds (0: none since its login or
  // reset) and, once that session let it go, what that state is: the next
  // session to take it gets only the difference replayed (null: the
  // server's defaults).
  uint32_t holder() const { return holder_; }
  void set_holder(uint32_t cs_id) { holder_ = cs_id; }
  const SessionState::Snapshot* held() const { return held_state_.get(); }
  void set_held(std::shared_ptr<const SessionState::Snapshot> s) { held_state_ = std::move(s); }
  // The statements prepared on it that every session taking it may use
  // (made when it is first shared; null: not shared).
  BackendStatements* shared_statements() const { return shared_stmts_.get(); }
  void share_statements() {
    if (!shared_stmts_) shared_stmts_ = std::make_unique<BackendStatements>();
  }

 private:
  enum class Phase { Connecting, AwaitHandshake, TlsHandshake, AwaitAuthResult, Ready };

  // Brackets a callback of the server session's own for its owner (see
  // ServerSessionOwner::event_begins); the owner outlives the callback even
  // if the server session does not.
  class OwnerEvent {
   public:
    explicit OwnerEvent(ServerSessionOwner* o) : owner_(o) { owner_->event_begins(); }
    ~OwnerEvent() { owner_->event_ends(); }
    OwnerEvent(const OwnerEvent&) = delete;
    OwnerEvent& operator=(const OwnerEvent&) = delete;

   private:
    ServerSessionOwner* owner_;
  };

  static void on_read(Connection* c, void* arg);
  static void on_write(Connection* c, void* arg);
  static void on_event(Connection* c, short what, int err, void* arg);
  static void on_login_timeout(evutil_socket_t, short, void* arg);

  // server_login.cc
  void handle_login_packet();
  bool answer_handshake(const std::string& payload);
  bool answer_over_tls(const proto::Handshake& hs, proto::HandshakeResponse& resp);
  bool answer_sha2_more(const std::string& payload);
  void tls_ready();
  bool answer_auth_switch(const std::string& payload);
  void fail_login(const std::string& err_payload);
  void fail_login(const er::Error& e, const std::string& message);
  void login_done(const std::string& ok_payload);
  uint32_t negotiate_caps(uint32_t client_caps, bool with_db) const;
  void arm_login_timer();
  void stop_login_timer();

  // server_session.cc
  void send_to_backend(const std::string& payload);
  void start_command(uint8_t command, const uint8_t* head, size_t head_len, Connection* client);
  void relay_response();
  bool rewrite_held(evbuffer* in);
  void renumber_prepare_ok(std::string& payload);
  void finish_response();
  void collect_response();
  void next_internal();
  void handle_unsolicited();
  void lose(const std::string& why);  // closes, then tells the owner

  ServerSessionOwner* owner_;
  BackendHost& host_;
  shm::WorkerCounters& counters_;
  BackendServer server_;
  std::string cluster_;
  uint64_t ss_id_;
  int connect_timeout_ms_;
  std::unique_ptr<Connection> conn_;
  event* login_timer_ = nullptr;
  State state_ = State::Init;
  Phase phase_ = Phase::Connecting;
  BackendLogin login_;
  uint8_t seq_ = 0;
  uint32_t server_sessid_ = 0;
  uint32_t caps_ = 0;
  uint32_t ext_caps_ = 0;       // MariaDB's extended capabilities, as the client's
  uint32_t server_caps_ = 0;    // what the backend's handshake offered
  std::string scramble_;        // the backend's handshake scramble (COM_CHANGE_USER)
  // What only a login in progress needs (freed when it is done): the
  // handshake response waiting for TLS, and where caching_sha2_password's
  // exchange stands, with the nonce it answers.
  enum class Sha2 { None, Scrambled, AwaitKey, Sent };
  struct LoginScratch {
    std::string tls_response;
    Sha2 sha2 = Sha2::None;
    std::string sha2_nonce;
  };
  std::unique_ptr<LoginScratch> scratch_;
  LoginScratch& scratch() {
    if (!scratch_) scratch_ = std::make_unique<LoginScratch>();
    return *scratch_;
  }
  uint16_t login_status_ = 0;
  std::string server_version_;
  bool mariadb_ = false;        // the version says MariaDB

  // The command in flight.
  bool in_command_ = false;
  bool streaming_ = false;       // the command itself is still being uploaded
  Connection* client_ = nullptr;  // where the response goes
  uint32_t client_caps_ = 0;
  const std::shared_ptr<const proto::TrackerSet>* trackers_ = nullptr;  // the owner's, which it may replace
  // A packet to rewrite (or to look at) waits to arrive whole.
  enum class Held { None, Ok, Eof, PrepareOk, PrepareDefinition, Err };
  Held held_ = Held::None;
  // Its buffers, made at the first held packet: an idle session has none.
  struct HeldBuffers {
    std::string packet;     // the held packet
    proto::TrackedOk ok;    // parsed
    std::string client_ok;  // rebuilt for the client
  };
  std::unique_ptr<HeldBuffers> held_buf_;
  // Internal commands: their payloads (for the tracker), and what came back.
  struct InternalRun {
    std::vector<std::string> commands;
    size_t next = 0;
    std::vector<std::vector<std::string>> results;
  };
  std::unique_ptr<InternalRun> internal_;  // while the proxy's own commands run, and until read
  bool tracking_on_ = false;
  uint64_t synced_version_ = 0;
  std::string schema_;
  ResponseTracker tracker_;
  PacketRelay down_;             // backend -> client
  bool blocked_on_client_ = false;
  uint64_t response_bytes_ = 0;

  uint64_t transact_count_ = 0;
  uint64_t requests_ = 0;
  int64_t created_us_ = 0;
  bool* destroyed_ = nullptr;  // set by the destructor for a running callback
  shm::ServerEntry* health_ = nullptr;
  std::string interrupt_error_;  // see replace_interrupted_error()
  int64_t last_used_us_ = 0;
  std::string causal_gtid_;
  ServerLine* line_ = nullptr;
  uint32_t holder_ = 0;
  std::shared_ptr<const SessionState::Snapshot> held_state_;
  std::unique_ptr<BackendStatements> shared_stmts_;
};

}  // namespace myrelay
