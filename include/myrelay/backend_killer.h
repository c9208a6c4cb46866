// A one-shot side connection that logs in to a backend as the session's user
// and sends KILL QUERY / KILL CONNECTION for a backend connection id, so that
// nothing keeps running behind a killed or vanished client.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>

#include "myrelay/server_session.h"

namespace myrelay {

class Worker;

class BackendKiller : public ServerSessionOwner {
 public:
  // Starts at once; the worker owns it and frees it when it is done.
  BackendKiller(Worker& worker, const BackendServer& server, const std::string& cluster,
                const BackendLogin& login, uint32_t server_sessid, bool query_only);
  ~BackendKiller() override;

  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_server_readable(ServerSession* ss) override;
  void on_server_drained(ServerSession*) override {}
  void on_server_lost(ServerSession* ss, const std::string& why) override;

 private:
  static void on_deadline(evutil_socket_t, short, void* arg);
  void finish(const char* outcome);

  Worker& worker_;
  std::unique_ptr<ServerSession> conn_;
  uint32_t target_;
  bool query_only_;
  event* deadline_ = nullptr;
  bool finished_ = false;
};

}  // namespace myrelay
