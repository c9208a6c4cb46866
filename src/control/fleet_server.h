// The peer port (fleet.listen): other proxies of the fleet, and myrelayctl
// --fleet, ask here for this proxy's sessions and kills.  It runs on the
// main thread's loop, beside the acceptor and the health checker, never on a
// worker: it reads the shared-memory table and writes to the workers'
// control pipes, as myrelayctl does.  Each connection carries one signed
// request and gets one signed answer; anything else (a stranger's bytes, a
// wrong signature, a replayed or stale request, a peer claiming this proxy's
// own proxy_id) is refused, logged and the connection closed.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "control/fleet_message.h"
#include "service/config.h"
#include "service/log.h"

namespace myrelay {

class SessionDirectory;

namespace fleet {

class FleetServer {
 public:
  using ConfigSource = std::function<std::shared_ptr<const Config>()>;
  FleetServer(event_base* base, ConfigSource config, SessionDirectory& directory);
  ~FleetServer();
  FleetServer(const FleetServer&) = delete;
  FleetServer& operator=(const FleetServer&) = delete;

  // Binds fleet.listen; false and why when it cannot.
  bool start(const HostPort& listen, std::string& error);
  const HostPort& listening_on() const { return listen_; }

  // What one request gets, without sockets (unit tests call it directly).
  // Returns the frame to send back; `log` says what happened, for the log;
  // `refused`: the request was not run (unsigned refusal frame).
  std::string answer(const Frame& frame, std::string& log, bool& refused);

 private:
  struct Peer;
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void on_read(bufferevent* bev, void* arg);
  static void on_write(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  void refuse(Peer* p, const std::string& why);
  void note_refusal(const Peer& p, const std::string& why);
  void send_last(Peer* p, const std::string& frame);
  void drop(Peer* p);

  event_base* base_;
  ConfigSource config_;
  SessionDirectory& directory_;
  evconnlistener* listener_ = nullptr;
  HostPort listen_;
  ReplayGuard replay_;
  std::set<Peer*> peers_;
  LogRateLimit refusal_log_{10};
};

}  // namespace fleet
}  // namespace myrelay
