// A server session: one backend connection owned by one client session, on
// the client session's worker.  It logs in to the backend as the client's
// user (answering the backend's scramble with the SHA1(pw) recovered at the
// client's login) and then carries the client's commands.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "myrelay/auth.h"
#include "myrelay/config.h"
#include "myrelay/connection.h"
#include "myrelay/protocol.h"

namespace myrelay {

class Proxy;
class ServerSession;

// Who hears about a server session: its client session, or a one-shot side
// connection (KILL QUERY).  Every callback may delete the server session.
class ServerSessionOwner {
 public:
  virtual ~ServerSessionOwner() = default;
  virtual void on_server_ready(ServerSession* ss) = 0;
  virtual void on_server_login_failed(ServerSession* ss, const std::string& err_payload) = 0;
  virtual void on_server_readable(ServerSession* ss) = 0;
  virtual void on_server_drained(ServerSession* ss) = 0;
  virtual void on_server_lost(ServerSession* ss, const std::string& why) = 0;
};

// What a backend login needs, taken from the client's login.
struct BackendLogin {
  std::string user;                  // the user part of the login name
  std::optional<Sha1Digest> hash1;   // SHA1(pw); empty = no password
  std::string database;
  uint8_t charset = 0;
  uint32_t client_caps = 0;          // what the client and the proxy agreed on
  uint32_t max_packet = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
};

class ServerSession {
 public:
  enum class State { Init, Active, KeepAliveClientSlave, KeepAliveShared, Closed };
  static const char* state_name(State s);

  ServerSession(ServerSessionOwner& owner, Proxy& proxy, event_base* base, const BackendServer& server,
                uint64_t ss_id, int connect_timeout_ms, const std::string& cluster_name);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Starts connecting and logging in; the owner hears on_server_ready or
  // on_server_login_failed.
  void connect(const BackendLogin& login);

  // Pooling.  park(): COM_RESET_CONNECTION (rolls back, drops temporary
  // tables, prepared statements, variables and user locks); the owner (the
  // pool) hears on_server_ready when it is clean.  reuse(): COM_CHANGE_USER
  // to another client's user, database and character set, answered from the
  // backend's handshake scramble; heard like a login.
  void park();
  void reuse(const BackendLogin& login);
  // Whether a login with these client capabilities would have negotiated
  // what this session has (a pooled session can only serve such a client).
  bool can_serve(uint32_t client_caps) const;
  void set_owner(ServerSessionOwner& owner) { owner_ = &owner; }

  // Politely ends the backend connection (COM_QUIT when logged in).
  void close();

  // Null once closed.
  Connection* conn() const { return conn_.get(); }
  State state() const { return state_; }
  void set_state(State s) { state_ = s; }
  uint64_t ss_id() const { return ss_id_; }
  uint32_t server_sessid() const { return server_sessid_; }  // the backend's thread id
  const BackendServer& server() const { return server_; }
  uint32_t caps() const { return caps_; }                    // negotiated with the backend
  uint16_t login_status() const { return login_status_; }
  const std::string& server_version() const { return server_version_; }
  uint64_t transact_count() const { return transact_count_; }
  void count_transaction() { ++transact_count_; }
  uint64_t requests() const { return requests_; }
  int64_t created_us() const { return created_us_; }
  void count_request() { ++requests_; }

 private:
  enum class Phase { Connecting, AwaitHandshake, AwaitAuthResult, Ready };

  static void on_read(Connection* c, void* arg);
  static void on_write(Connection* c, void* arg);
  static void on_event(Connection* c, short what, int err, void* arg);
  static void on_login_timeout(evutil_socket_t, short, void* arg);

  void handle_login_packet();
  void fail_login(const std::string& err_payload);
  void fail_login(uint16_t code, const std::string& state, const std::string& message);
  void login_done(const std::string& ok_payload);
  void send_to_backend(const std::string& payload);
  uint32_t negotiate_caps(uint32_t client_caps, bool with_db) const;
  void arm_login_timer();

  ServerSessionOwner* owner_;
  Proxy& proxy_;
  event_base* base_;
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
  uint32_t server_caps_ = 0;    // what the backend's handshake offered
  std::string scramble_;        // the backend's handshake scramble (COM_CHANGE_USER)
  uint16_t login_status_ = 0;
  std::string server_version_;
  uint64_t transact_count_ = 0;
  uint64_t requests_ = 0;
  int64_t created_us_ = 0;
};

}  // namespace myrelay
