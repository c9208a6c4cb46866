// A one-shot side connection that logs in to a backend as the session's user
// and sends KILL QUERY / KILL CONNECTION for a backend connection id, so that
// nothing keeps running behind a killed or vanished client.
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <string>

#include "session/server_session.h"

namespace myrelay {

class BackendHost;

class BackendKiller : public ServerSessionOwner {
 public:
  // Starts at once; `done` is called once, when it has finished (its owner
  // frees it later, outside its callbacks).
  BackendKiller(BackendHost& host, std::function<void(BackendKiller*)> done, const BackendServer& server,
                const std::string& cluster, const BackendLogin& login, uint32_t server_sessid, bool query_only);
  ~BackendKiller() override;
  BackendKiller(const BackendKiller&) = delete;
  BackendKiller& operator=(const BackendKiller&) = delete;

  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_internal_done(ServerSession* ss) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;

 private:
  static void on_deadline(evutil_socket_t, short, void* arg);
  void finish(const std::string& outcome);

  std::function<void(BackendKiller*)> done_;
  std::unique_ptr<ServerSession> conn_;
  uint32_t target_;
  bool query_only_;
  event* deadline_ = nullptr;
  bool finished_ = false;
};

}  // namespace myrelay
