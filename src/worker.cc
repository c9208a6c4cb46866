// Worker threads (see worker.h).
#include "myrelay/worker.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "myrelay/client_session.h"
#include "myrelay/log.h"
#include "myrelay/proxy.h"

namespace myrelay {

Worker::Worker(Proxy& proxy, int index) : proxy_(proxy), index_(index) {}

Worker::~Worker() {
  join();
  for (auto& kv : sessions_) delete kv.second;
  for (auto* s : dead_) delete s;
  if (notify_ev_) event_free(notify_ev_);
  if (reap_ev_) event_free(reap_ev_);
  if (base_) event_base_free(base_);
  for (int fd : notify_fds_)
    if (fd >= 0) ::close(fd);
  for (auto& c : queue_) ::close(c.fd);
}

bool Worker::start(std::string& error) {
  base_ = event_base_new();
  if (!base_) {
    error = "event_base_new failed";
    return false;
  }
  if (pipe2(notify_fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  notify_ev_ = event_new(base_, notify_fds_[0], EV_READ | EV_PERSIST, on_notify, this);
  reap_ev_ = event_new(base_, -1, 0, on_reap, this);
  if (!notify_ev_ || !reap_ev_ || event_add(notify_ev_, nullptr) != 0) {
    error = "cannot register the notify pipe";
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void Worker::run() {
  tid_.store(pid_t(syscall(SYS_gettid)), std::memory_order_release);
  LOG_DEBUG("worker %d running (tid %d)", index_, int(tid_.load()));
  event_base_dispatch(base_);
  LOG_DEBUG("worker %d stopped", index_);
}

void Worker::notify(char what) {
  // A one-byte write to a pipe is atomic; if the pipe is full the worker has
  // wake-ups pending anyway and will drain the queue.
  ssize_t n = ::write(notify_fds_[1], &what, 1);
  (void)n;
}

void Worker::enqueue_connection(int fd, const std::string& peer_ip, uint16_t peer_port) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(NewConnection{fd, peer_ip, peer_port});
  }
  session_count_.fetch_add(1, std::memory_order_relaxed);
  notify('c');
}

void Worker::request_stop() { notify('s'); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::on_notify(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  char buf[256];
  bool stop = false;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] == 's') stop = true;
  }
  self->accept_queued();
  if (stop) {
    self->stopping_ = true;
    self->close_all("proxy shutting down");
    event_base_loopexit(self->base_, nullptr);
  }
}

void Worker::accept_queued() {
  std::deque<NewConnection> batch;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    batch.swap(queue_);
  }
  for (auto& c : batch) {
    if (stopping_) {
      ::close(c.fd);
      session_count_.fetch_sub(1, std::memory_order_relaxed);
      proxy_.release_connection();
      continue;
    }
    uint32_t cs_id = proxy_.ids().acquire_cs_id();
    auto* s = new ClientSession(*this, c.fd, c.peer_ip, c.peer_port, cs_id,
                                proxy_.ids().next_proxy_sessid());
    sessions_[cs_id] = s;
    s->start();
  }
}

void Worker::session_closed(ClientSession* s) {
  sessions_.erase(s->cs_id());
  proxy_.ids().release_cs_id(s->cs_id());
  proxy_.release_connection();
  session_count_.fetch_sub(1, std::memory_order_relaxed);
  dead_.push_back(s);
  event_active(reap_ev_, 0, 0);
}

void Worker::on_reap(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  std::vector<ClientSession*> dead;
  dead.swap(self->dead_);
  for (auto* s : dead) delete s;
}

void Worker::close_all(const char* why) {
  std::vector<ClientSession*> all;
  for (auto& kv : sessions_) all.push_back(kv.second);
  for (auto* s : all) s->close(why);
}

}  // namespace myrelay
