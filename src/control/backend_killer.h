// A one-shot side connection that stops a statement (KILL QUERY) or a whole
// backend connection (KILL CONNECTION) for a backend connection id, so that
// nothing keeps running behind a killed or vanished client, and makes sure
// it happened: it watches the server's process list until the statement is
// gone, and escalates a KILL QUERY that the statement does not heed (a
// thread blocked writing to a client that does not read, say) to KILL
// CONNECTION after timeouts.kill_escalate_ms.  It logs in with the cluster's
// monitor account when one is configured (it sees every thread), else as
// the session's user (who sees its own); a monitor account that may not KILL
// (it lacks CONNECTION ADMIN) is logged and the job redone as the session's
// user.  The outcome goes to the kill log.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "myrelay/shm_layout.h"
#include "session/server_session.h"

namespace myrelay {

class BackendHost;

class BackendKiller : public ServerSessionOwner {
 public:
  // Starts at once; `done` is called once, with the outcome, when it has
  // finished (its owner frees it later, outside its callbacks).
  BackendKiller(BackendHost& host, std::function<void(BackendKiller*, shm::BackendStop)> done,
                const BackendServer& server, const std::string& cluster, const BackendLogin& login,
                uint32_t server_sessid, bool query_only);
  ~BackendKiller() override;
  BackendKiller(const BackendKiller&) = delete;
  BackendKiller& operator=(const BackendKiller&) = delete;

  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_internal_done(ServerSession* ss) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;

 private:
  enum class Step { Login, Kill, Watch, Escalate, WatchEscalated };
  static void on_timer(evutil_socket_t, short, void* arg);
  void send_kill(bool connection);
  void look();  // the target's row in the process list
  void finish(shm::BackendStop outcome, const std::string& what);
  void log_in(const BackendLogin& login);

  BackendHost& host_;
  std::function<void(BackendKiller*, shm::BackendStop)> done_;
  std::unique_ptr<ServerSession> conn_;
  uint32_t target_;
  bool query_only_;
  Step step_ = Step::Login;
  int escalate_ms_;
  int64_t watch_until_us_ = 0;
  event* deadline_ = nullptr;  // the whole job
  event* poll_ = nullptr;      // the next look at the process list
  bool finished_ = false;
  BackendLogin session_login_;  // the session's own, if the monitor's KILL is refused
  bool as_monitor_ = false;
  bool relogin_ = false;  // the monitor was refused: log in again as the session's user
  const BackendServer& server_;
  std::string cluster_;
};

}  // namespace myrelay
