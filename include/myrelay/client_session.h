// A client session: one client connection, from the proxy's own handshake
// and authentication to the relay of every command to its server session and
// of every response back.  It lives on one worker for its whole life, and only
// that worker's thread touches it.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "myrelay/auth.h"
#include "myrelay/config.h"
#include "myrelay/connection.h"
#include "myrelay/login_name.h"
#include "myrelay/protocol.h"
#include "myrelay/response_tracker.h"
#include "myrelay/server_session.h"
#include "myrelay/shm_layout.h"

namespace myrelay {

class Worker;
class Proxy;

class ClientSession : public ServerSessionOwner {
 public:
  // DESIGN section 3's client session states.
  enum class State { Init, ActiveReader, KeepAlive, HalfClosed, Closed };
  static const char* state_name(State s);

  ClientSession(Worker& worker, int fd, const std::string& peer_ip, uint16_t peer_port,
                uint32_t cs_id, uint64_t proxy_sessid, shm::Slot* slot, uint32_t slot_index);
  ~ClientSession() override;
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Sends the handshake and starts the handshake deadline.
  void start();
  // Ends the session now: both connections closed, the worker frees it later.
  void close(const char* why);

  // The proxy is stopping: close now if idle, else after the running
  // statement (or the open transaction) ends.
  void drain();

  // Kill requests, checked by the worker to be for this very session.
  void kill(const std::string& by);
  bool kill_server_session(uint64_t ss_id, const std::string& by);
  void kill_query(const std::string& by);

  // From the server session.
  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_server_readable(ServerSession* ss) override;
  void on_server_drained(ServerSession* ss) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;

  uint32_t cs_id() const { return cs_id_; }
  uint64_t proxy_sessid() const { return proxy_sessid_; }
  State state() const { return state_; }
  bool closed() const { return state_ == State::Closed; }
  const LoginName& login() const { return login_; }
  const std::string& peer_ip() const { return peer_ip_; }
  uint16_t peer_port() const { return peer_port_; }
  const std::string& database() const { return db_; }
  uint64_t trans_count() const { return trans_count_; }
  bool in_transaction() const { return in_trans_; }
  const ServerSession* server() const { return server_.get(); }
  uint32_t slot_index() const { return slot_index_; }

 private:
  enum class Phase {
    AwaitHandshakeResponse,
    AwaitAuthSwitchResponse,
    BackendLogin,
    Ready,
    AwaitServer,        // a command waits for a (re)connecting server session
    InCommand,          // a command was forwarded; relaying its response
    AwaitChangeUserAuth,
    ChangeUserLogin,
    Closing,
  };

  // One direction's position inside the packet being relayed.
  struct Relay {
    uint64_t chunk_left = 0;   // bytes (header included) of the current chunk still to move
    bool in_packet = false;    // inside a logical packet
    bool more_chunks = false;  // the current chunk is 16 MiB - 1: another follows
    uint64_t packet_len = 0;   // payload bytes of the logical packet so far
    ResponseTracker::Event pending = ResponseTracker::Event::Continue;
  };

  static void on_client_read(Connection* c, void* arg);
  static void on_client_write(Connection* c, void* arg);
  static void on_client_event(Connection* c, short what, int err, void* arg);
  static void on_handshake_timeout(evutil_socket_t, short, void* arg);
  static void on_idle_timer(evutil_socket_t, short, void* arg);

  void handle_input();
  void handle_handshake_response();
  void handle_auth_switch_response();
  // An AuthSwitchRequest to mysql_native_password with the handshake's scramble.
  void send_native_auth_switch();
  // The client's next auth packet, if it has arrived whole (false: wait, or closed).
  bool read_auth_answer(std::string& payload);
  void authenticate(const std::string& auth_response);
  void deny_access(bool used_password);
  void begin_backend_login(Phase phase);
  void process_commands();
  void handle_command(std::string&& payload);
  void start_streamed_command(uint8_t command, const uint8_t* head, size_t head_len);
  void forward_command(std::string&& payload);
  bool ensure_server();
  void complete_command();
  void pump_server_to_client();
  void pump_client_to_server();
  void handle_change_user(const std::string& payload);
  void handle_change_user_auth();
  void check_change_user(const std::string& auth_response);
  void finish_change_user(bool ok, const std::string& err_payload);

  // Packets the proxy writes to the client itself.
  void send_packet(const std::string& payload);
  void send_ok(uint16_t status_extra = 0);
  void send_error(uint16_t code, const char* sql_state, const std::string& message);
  void send_error_and_close(uint16_t code, const char* sql_state, const std::string& message,
                            const char* why);
  void close_after_flush(const char* why);
  void arm_idle_timer();  // once, at login; see on_idle_timer
  void drop_server(const char* why);
  // Ends a server session; one still running a statement also gets a KILL
  // from a side connection, so nothing keeps running behind it.
  void release_server(std::unique_ptr<ServerSession>& ss);
  void publish();
  void publish_activity();
  void set_activity(shm::SessionRecord& r) const;
  static void set_server_activity(shm::ServerSessionRecord& sr, const ServerSession& ss);
  void pool_server_session();
  bool run_admin_command(std::string_view sql);
  BackendLogin backend_login() const;
  uint16_t client_status() const;

  Worker& worker_;
  Proxy& proxy_;
  std::shared_ptr<const Config> cfg_;
  std::unique_ptr<Connection> conn_;
  event* handshake_timer_ = nullptr;
  event* idle_timer_ = nullptr;
  std::string peer_ip_;
  uint16_t peer_port_;
  uint32_t cs_id_;
  uint64_t proxy_sessid_;
  State state_ = State::Init;
  Phase phase_ = Phase::AwaitHandshakeResponse;
  Scramble scramble_{};
  uint8_t seq_ = 0;  // sequence id of the next packet the proxy writes itself

  // Who logged in.
  std::string login_text_;  // as the client sent it, for error messages
  LoginName login_;
  const Tenant* tenant_ = nullptr;  // points into cfg_
  std::optional<Sha1Digest> hash1_;
  proto::HandshakeResponse hello_;  // the client's handshake response
  uint32_t caps_ = 0;               // capabilities agreed with the client
  std::string db_;
  uint8_t charset_ = 0;

  std::unique_ptr<ServerSession> server_;
  std::unique_ptr<ServerSession> pending_server_;  // COM_CHANGE_USER's new login
  proto::ChangeUser change_user_;
  std::optional<Sha1Digest> change_user_hash1_;
  const Tenant* change_user_tenant_ = nullptr;
  std::shared_ptr<const Config> cfg_pending_;  // holds change_user_tenant_ alive
  LoginName change_user_login_;

  // The command in flight.
  uint8_t command_ = 0;
  std::string held_command_;   // a whole command waiting for a server session
  bool streaming_command_ = false;
  std::string use_db_;         // "USE db" seen in the command: the db on success
  ResponseTracker tracker_;
  Relay down_;                 // server -> client
  Relay up_;                   // client -> server (long commands, LOCAL INFILE data)
  uint8_t last_down_seq_ = 0;  // sequence id of the last packet relayed to the client
  bool blocked_on_client_ = false;
  bool blocked_on_server_ = false;
  bool lost_transaction_ = false;

  bool in_trans_ = false;
  uint64_t trans_count_ = 0;

  // This session's record in the shared segment, written only here.
  shm::Slot* slot_;
  uint32_t slot_index_;
  std::string spare_command_;  // see process_commands()
  bool reused_server_ = false;  // server_ came from the worker's pool
  bool skip_pool_once_ = false;  // a pooled one just failed: connect afresh
  shm::SessionRecord rec_{};
  shm::SessionRecord written_{};  // what the slot holds now (a freed slot is all zero)
  uint64_t queries_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  int64_t created_us_ = 0;
  int64_t last_active_us_ = 0;
  int64_t server_created_us_ = 0;
};

}  // namespace myrelay
