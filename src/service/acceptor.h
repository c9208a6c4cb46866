// The listening socket, on the main thread's event_base.  Each accepted
// connection goes through Admission and is handed on; when the process runs
// out of file descriptors the listener pauses for a moment instead of
// spinning, and one waiting client is accepted on a spare descriptor and told
// "Too many connections", as nginx and HAProxy do.
#pragma once

#include <event2/event.h>
#include <event2/listener.h>

#include <cstdint>
#include <functional>
#include <string>

#include "service/log.h"

namespace myrelay {

class Acceptor {
 public:
  // Called for every accepted socket (non-blocking, TCP_NODELAY set).
  using Handler = std::function<void(int fd, const std::string& ip, uint16_t port)>;

  Acceptor(event_base* base, Handler handler) : base_(base), handler_(std::move(handler)) {}
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  bool listen(const sockaddr* addr, int len, std::string& error);
  // Closes the listening socket: new clients get "connection refused".
  void close();

  // The bare error packet, for connections that get no session at all.
  static void refuse_bare(int fd);

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void on_error(evconnlistener*, void* arg);
  static void on_resume(evutil_socket_t, short, void* arg);
  void open_spare();

  event_base* base_;
  Handler handler_;
  evconnlistener* listener_ = nullptr;
  event* resume_ = nullptr;
  int spare_fd_ = -1;       // kept for the moment all others are taken
  LogRateLimit error_log_{1};
};

}  // namespace myrelay
