// Worker threads (see worker.h).
#include "myrelay/worker.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "myrelay/backend_killer.h"
#include "myrelay/client_session.h"
#include "myrelay/log.h"
#include "myrelay/proxy.h"
#include "myrelay/shm_table.h"

namespace myrelay {

Worker::Worker(Proxy& proxy, int index) : proxy_(proxy), index_(index) {}

Worker::~Worker() {
  join();
  // Sessions still open (the loop never ran, or was left early): close
  // them, which moves them to dead_, then free everything.
  close_all("worker destroyed");
  for (auto* s : dead_) delete s;
  dead_.clear();
  pool_.reset();  // before the event base its events belong to
  for (auto* k : killers_) delete k;
  for (auto* k : dead_killers_) delete k;
  if (control_ev_) event_free(control_ev_);
  if (control_fd_ >= 0) ::close(control_fd_);
  if (notify_ev_) event_free(notify_ev_);
  if (reap_ev_) event_free(reap_ev_);
  if (drain_timer_) event_free(drain_timer_);
  if (base_) event_base_free(base_);
  for (int fd : notify_fds_)
    if (fd >= 0) ::close(fd);
  for (auto& c : queue_) ::close(c.fd);
}

bool Worker::start(const std::string& pipe_path, shm::WorkerInfo* info, std::string& error) {
  info_ = info;
  control_fd_ = ::open(pipe_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (control_fd_ < 0) {
    error = "cannot open control pipe " + pipe_path + ": " + strerror(errno);
    return false;
  }
  base_ = event_base_new();
  if (!base_) {
    error = "event_base_new failed";
    return false;
  }
  if (pipe2(notify_fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  pool_ = std::make_unique<ServerPool>(base_, info_->counters.pool_idle);
  notify_ev_ = event_new(base_, notify_fds_[0], EV_READ | EV_PERSIST, on_notify, this);
  reap_ev_ = event_new(base_, -1, 0, on_reap, this);
  control_ev_ = event_new(base_, control_fd_, EV_READ | EV_PERSIST, on_control, this);
  if (!notify_ev_ || !reap_ev_ || !control_ev_ || event_add(notify_ev_, nullptr) != 0 ||
      event_add(control_ev_, nullptr) != 0) {
    error = "cannot register the notify and control pipes";
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void Worker::run() {
  tid_.store(pid_t(syscall(SYS_gettid)), std::memory_order_release);
  info_->tid.store(tid_.load(), std::memory_order_relaxed);
  LOG_DEBUG("worker %d running (tid %d)", index_, int(tid_.load()));
  event_base_dispatch(base_);
  LOG_DEBUG("worker %d stopped", index_);
}

int64_t Worker::loop_time_us() {
  timeval tv;
  if (event_base_gettimeofday_cached(base_, &tv) != 0) gettimeofday(&tv, nullptr);
  return int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
}

void Worker::notify(char what) {
  // A one-byte write to a pipe is atomic; if the pipe is full the worker has
  // wake-ups pending anyway and will drain the queue.
  ssize_t n = ::write(notify_fds_[1], &what, 1);
  (void)n;
}

void Worker::enqueue_connection(int fd, const std::string& peer_ip, uint16_t peer_port, bool reject) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(NewConnection{fd, peer_ip, peer_port, reject});
  }
  session_count_.fetch_add(1, std::memory_order_relaxed);
  notify('c');
}

void Worker::request_stop() { notify('s'); }

void Worker::request_drain(int grace_s) {
  drain_grace_s_.store(grace_s, std::memory_order_relaxed);
  notify('d');
}

void Worker::begin_drain() {
  if (draining_ || stopping_) return;
  draining_ = true;
  int grace = drain_grace_s_.load(std::memory_order_relaxed);
  LOG_INFO("worker %d draining: %zu sessions, up to %d s", index_, sessions_.size(), grace);
  pool_->clear();
  std::vector<ClientSession*> all(rejecting_.begin(), rejecting_.end());
  for (auto& kv : sessions_) all.push_back(kv.second);
  for (auto* s : all) s->drain();
  if (sessions_.empty() && rejecting_.empty()) {
    event_base_loopexit(base_, nullptr);
    return;
  }
  drain_timer_ = evtimer_new(base_, on_drain_deadline, this);
  timeval tv{grace, 0};
  evtimer_add(drain_timer_, &tv);
}

void Worker::on_drain_deadline(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  LOG_WARN("worker %d: shutdown grace period over, closing %zu sessions", self->index_,
           self->sessions_.size());
  self->stopping_ = true;
  self->close_all("proxy shutting down: grace period over");
  event_base_loopexit(self->base_, nullptr);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::on_notify(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  char buf[256];
  bool stop = false, drain = false;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == 's') stop = true;
      if (buf[i] == 'd') drain = true;
    }
  }
  self->accept_queued();
  if (drain && !stop) self->begin_drain();
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
    if (stopping_ || draining_) {
      ::close(c.fd);
      session_count_.fetch_sub(1, std::memory_order_relaxed);
      if (c.reject)
        proxy_.release_rejecting();
      else
        proxy_.release_connection();
      continue;
    }
    if (c.reject) {
      auto* s = new ClientSession(*this, c.fd, c.peer_ip, c.peer_port, 0, 0, nullptr, 0);
      rejecting_.insert(s);
      s->start();
      continue;
    }
    uint32_t cs_id = proxy_.ids().acquire_cs_id();
    int slot = proxy_.shm().acquire_slot();
    if (cs_id == 0 || slot < 0) {  // cannot happen while max_connections <= slots
      LOG_ERROR("no session id or slot left; dropping a connection from %s", c.peer_ip.c_str());
      if (cs_id) proxy_.ids().release_cs_id(cs_id);
      ::close(c.fd);
      session_count_.fetch_sub(1, std::memory_order_relaxed);
      proxy_.release_connection();
      continue;
    }
    bump(info_->counters.connections_accepted);
    bump(info_->counters.sessions_open);
    auto* s = new ClientSession(*this, c.fd, c.peer_ip, c.peer_port, cs_id,
                                proxy_.ids().next_proxy_sessid(), proxy_.shm().slot(uint32_t(slot)),
                                uint32_t(slot));
    sessions_[cs_id] = s;
    s->start();
  }
}

void Worker::session_closed(ClientSession* s) {
  session_count_.fetch_sub(1, std::memory_order_relaxed);
  dead_.push_back(s);
  if (reap_ev_) event_active(reap_ev_, 0, 0);
  if (rejecting_.erase(s)) {  // a refusal: it had no id, slot or connection
    proxy_.release_rejecting();
    if (draining_ && sessions_.empty() && rejecting_.empty()) event_base_loopexit(base_, nullptr);
    return;
  }
  sessions_.erase(s->cs_id());
  // The session cleared its slot; only now may another session take it.
  proxy_.shm().release_slot(s->slot_index());
  info_->counters.sessions_open.store(info_->counters.sessions_open.load(std::memory_order_relaxed) - 1,
                                      std::memory_order_relaxed);
  proxy_.ids().release_cs_id(s->cs_id());
  proxy_.release_connection();
  if (draining_ && sessions_.empty() && rejecting_.empty()) event_base_loopexit(base_, nullptr);
}

void Worker::on_reap(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  std::vector<ClientSession*> dead;
  dead.swap(self->dead_);
  for (auto* s : dead) delete s;
  std::vector<BackendKiller*> killers;
  killers.swap(self->dead_killers_);
  for (auto* k : killers) delete k;
}

void Worker::start_backend_kill(const BackendServer& server, const std::string& cluster,
                                const BackendLogin& login, uint32_t server_sessid, bool query_only) {
  if (stopping_) return;
  killers_.insert(new BackendKiller(*this, server, cluster, login, server_sessid, query_only));
}

void Worker::backend_killer_done(BackendKiller* k) {
  if (killers_.erase(k)) {
    dead_killers_.push_back(k);
    event_active(reap_ev_, 0, 0);
  }
}

void Worker::on_control(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    self->control_decoder_.feed(buf, size_t(n));
  }
  control::Request req;
  uint64_t garbage_before = self->control_decoder_.garbage_bytes();
  while (self->control_decoder_.next(req)) self->handle_control(req);
  uint64_t garbage = self->control_decoder_.garbage_bytes() - garbage_before;
  if (garbage) {
    bump(self->info_->counters.control_garbage, garbage);
    LOG_WARN("worker %d: dropped %llu bytes of garbage from its control pipe", self->index_,
             (unsigned long long)garbage);
  }
}

void Worker::handle_control(const control::Request& req) {
  bump(info_->counters.control_requests);
  auto it = sessions_.find(req.cs_id);
  // The target must still be the very session the request was made for: a
  // cs_id may have been given to a newer session since.
  if (it == sessions_.end() || it->second->closed() ||
      (req.proxy_sessid != 0 && it->second->proxy_sessid() != req.proxy_sessid)) {
    LOG_INFO("worker %d: %s for cs_id=%u ignored: no such session any more", index_,
             control::request_type_name(req.type), req.cs_id);
    return;
  }
  ClientSession* s = it->second;
  std::string by = req.sender_cs_id ? "KILL from cs_id=" + std::to_string(req.sender_cs_id)
                                    : "kill request from pid " + std::to_string(req.sender_pid);
  switch (req.type) {
    case control::RequestType::KillSession:
      bump(info_->counters.kills);
      s->kill(by);
      break;
    case control::RequestType::KillServerSession:
      if (s->kill_server_session(req.ss_id, by)) bump(info_->counters.kills);
      break;
    case control::RequestType::KillQuery:
      s->kill_query(by);
      break;
  }
}

void Worker::close_all(const char* why) {
  for (auto* k : killers_) dead_killers_.push_back(k);
  killers_.clear();
  if (!dead_killers_.empty() && reap_ev_) event_active(reap_ev_, 0, 0);
  std::vector<ClientSession*> all(rejecting_.begin(), rejecting_.end());
  for (auto& kv : sessions_) all.push_back(kv.second);
  for (auto* s : all) s->close(why);
  if (pool_) pool_->clear();
}

}  // namespace myrelay
