// The listening socket (see acceptor.h).
#include "service/acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "protocol/packets.h"

namespace myrelay {

// How long the listener pauses when descriptors run out.
static constexpr int kPauseMs = 100;

Acceptor::~Acceptor() {
  close();
  if (resume_) event_free(resume_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

bool Acceptor::listen(const sockaddr* addr, int len, std::string& error) {
  listener_ = evconnlistener_new_bind(base_, on_accept, this,
                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, addr,
                                      len);
  if (!listener_) {
    error = strerror(errno);
    return false;
  }
  evconnlistener_set_error_cb(listener_, on_error);
  resume_ = evtimer_new(base_, on_resume, this);
  open_spare();
  return true;
}

void Acceptor::close() {
  if (listener_) evconnlistener_free(listener_);
  listener_ = nullptr;
}

void Acceptor::open_spare() {
  if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Acceptor::refuse_bare(int fd) {
  static const std::string pkt = proto::framed(0, proto::build_err(er::ER_CON_COUNT_ERROR, "Too many connections"));
  ssize_t n = ::send(fd, pkt.data(), pkt.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
  ::close(fd);
}

void Acceptor::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* self = static_cast<Acceptor*>(arg);
  char ip[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr->sa_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(addr);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    port = ntohs(a->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
  }
  evutil_make_socket_nonblocking(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  self->handler_(fd, ip, port);
}

// accept() failed.  Out of descriptors, the listening socket stays readable
// and libevent would call again at once, forever: pause it, and turn one
// waiting client away with the spare descriptor so it is not left hanging.
void Acceptor::on_error(evconnlistener* listener, void* arg) {
  auto* self = static_cast<Acceptor*>(arg);
  int err = EVUTIL_SOCKET_ERROR();
  uint64_t held_back = 0;
  bool out_of_fds = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  if (self->error_log_.allow(held_back))
    LOG_ERROR("accept failed: %s%s (%llu more such not logged)", evutil_socket_error_to_string(err),
              out_of_fds ? "; pausing the listener" : "", (unsigned long long)held_back);
  if (!out_of_fds) return;
  if (self->spare_fd_ >= 0) {
    ::close(self->spare_fd_);
    self->spare_fd_ = -1;
    int fd = ::accept4(evconnlistener_get_fd(listener), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) refuse_bare(fd);
    self->open_spare();
  }
  evconnlistener_disable(listener);
  timeval tv{0, kPauseMs * 1000};
  evtimer_add(self->resume_, &tv);
}

void Acceptor::on_resume(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Acceptor*>(arg);
  if (self->listener_) evconnlistener_enable(self->listener_);
}

}  // namespace myrelay
