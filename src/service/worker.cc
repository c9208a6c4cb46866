// Worker threads (see worker.h).
#include "service/worker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/backend_killer.h"
#include "control/session_view.h"
#include "control/shm_table.h"
#include "service/log.h"
#include "service/proxy.h"
#include "session/client_session.h"

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
  shared_.reset();  // after every server session: each holds a place on one of its lines
  for (auto* k : killers_) delete k;
  for (auto* k : dead_killers_) delete k;
  for (event* ev : {control_ev_, inbox_ev_, reap_ev_, drain_timer_})
    if (ev) event_free(ev);
  if (control_fd_ >= 0) ::close(control_fd_);
  if (base_) event_base_free(base_);
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
  if (!inbox_.open(error)) return false;
  shared_ = std::make_unique<SharedServers>(base_, info_->counters);
  pool_ = std::make_unique<ServerPool>(base_, info_->counters.pool_idle);
  inbox_ev_ = event_new(base_, inbox_.wake_fd(), EV_READ | EV_PERSIST, on_inbox, this);
  reap_ev_ = event_new(base_, -1, 0, on_reap, this);
  control_ev_ = event_new(base_, control_fd_, EV_READ | EV_PERSIST, on_control, this);
  if (!inbox_ev_ || !reap_ev_ || !control_ev_ || event_add(inbox_ev_, nullptr) != 0 ||
      event_add(control_ev_, nullptr) != 0) {
    error = "cannot register the inbox and the control pipe";
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

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(InboxItem item) {
  if (item.kind == InboxItem::Kind::NewConnection) session_count_.fetch_add(1, std::memory_order_relaxed);
  inbox_.post(std::move(item));
}

// ---- SessionHost ----

int64_t Worker::loop_time_us() {
  timeval tv;
  if (event_base_gettimeofday_cached(base_, &tv) != 0) gettimeofday(&tv, nullptr);
  return int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
}

std::shared_ptr<const Config> Worker::config() { return proxy_.config(); }

std::shared_ptr<const TlsContext> Worker::tls_context() { return proxy_.tls_context(); }
shm::ServerEntry& Worker::server_entry(const BackendServer& server) { return proxy_.server_entry(server); }
uint64_t Worker::next_ss_id() { return proxy_.ids().next_ss_id(); }
std::shared_ptr<const BackendFacts> Worker::backend_facts(const std::string& cluster) {
  return proxy_.backend_facts().get(cluster);
}
void Worker::note_backend_handshake(const std::string& cluster, const proto::Handshake& hs) {
  proxy_.backend_facts().note(cluster, hs);
}
void Worker::note_backend_trackers(const std::string& cluster, const proto::TrackerSet& t) {
  proxy_.backend_facts().note_trackers(cluster, t);
}
SessionDirectory& Worker::directory() { return proxy_.directory(); }

void Worker::stop_backend_statement(const BackendServer& server, const std::string& cluster,
                                    const BackendLogin& login, uint32_t server_sessid, bool query_only,
                                    uint64_t kill_log_id) {
  if (stopping_) return;
  auto done = [this, kill_log_id](BackendKiller* k, shm::BackendStop outcome) {
    if (kill_log_id) proxy_.shm().update_kill_backend(kill_log_id, outcome);
    if (killers_.erase(k)) {
      dead_killers_.push_back(k);
      event_active(reap_ev_, 0, 0);
    }
  };
  killers_.insert(new BackendKiller(*this, done, server, cluster, login, server_sessid, query_only));
}

void Worker::login_finished(const std::string& host) { proxy_.admission().login_finished(host); }

void Worker::session_closed(ClientSession* s) {
  session_count_.fetch_sub(1, std::memory_order_relaxed);
  dead_.push_back(s);
  if (reap_ev_) event_active(reap_ev_, 0, 0);
  if (rejecting_.erase(s)) {  // a refusal: it had no id, slot or connection
    proxy_.admission().refusal_done();
    leave_if_drained();
    return;
  }
  sessions_.erase(s->cs_id());
  // The session cleared its slot; only now may another session take it.
  proxy_.shm().release_slot(s->slot_index());
  auto& open = info_->counters.sessions_open;
  open.store(open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  proxy_.ids().release_cs_id(s->cs_id());
  proxy_.admission().session_closed();
  leave_if_drained();
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

// ---- the inbox and the control pipe ----

void Worker::on_inbox(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  for (InboxItem& item : self->inbox_.take_all()) self->handle(item);
}

void Worker::handle(InboxItem& item) {
  switch (item.kind) {
    case InboxItem::Kind::NewConnection:
      accept_connection(item);
      break;
    case InboxItem::Kind::Stop:
      stop("proxy shutting down");
      break;
    case InboxItem::Kind::Drain:
      begin_drain(item.grace_s);
      break;
    case InboxItem::Kind::Control:
      handle_control(item.request);
      break;
  }
}

// Reads what the control pipe holds, a bounded amount per turn of the loop
// so that a flood of requests (or of garbage) cannot stall the worker's
// sessions; the rest is read on the next turn.
void Worker::on_control(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  uint64_t garbage_before = self->control_decoder_.garbage_bytes();
  InboxItem item;
  item.kind = InboxItem::Kind::Control;
  uint8_t buf[4096];
  for (int chunk = 0; chunk < 16; ++chunk) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    self->control_decoder_.feed(buf, size_t(n));
    while (self->control_decoder_.next(item.request)) self->handle(item);
  }
  uint64_t garbage = self->control_decoder_.garbage_bytes() - garbage_before;
  uint64_t held_back = 0;
  if (garbage) {
    bump(self->info_->counters.control_garbage, garbage);
    if (self->garbage_log_.allow(held_back))
      LOG_WARN("worker %d: dropped %llu bytes of garbage from its control pipe (%llu more such not logged)",
               self->index_, (unsigned long long)garbage, (unsigned long long)held_back);
  }
}

void Worker::accept_connection(InboxItem& c) {
  auto give_back = [&] {
    ::close(c.fd);
    session_count_.fetch_sub(1, std::memory_order_relaxed);
    if (c.reject) {
      proxy_.admission().refusal_done();
    } else {
      proxy_.admission().login_finished(c.peer_ip);
      proxy_.admission().session_closed();
    }
  };
  if (stopping_ || draining_) {
    give_back();
    return;
  }
  if (c.reject) {
    auto* s = new ClientSession(*this, c.fd, c.peer_ip, c.peer_port, 0, 0, nullptr, 0);
    rejecting_.insert(s);
    s->start();
    return;
  }
  uint32_t cs_id = proxy_.ids().acquire_cs_id();
  int slot = proxy_.shm().acquire_slot();
  if (cs_id == 0 || slot < 0) {  // cannot happen while max_connections <= slots
    LOG_ERROR("no session id or slot left; dropping a connection from %s", c.peer_ip.c_str());
    if (cs_id) proxy_.ids().release_cs_id(cs_id);
    if (slot >= 0) proxy_.shm().release_slot(uint32_t(slot));
    give_back();
    return;
  }
  bump(info_->counters.connections_accepted);
  bump(info_->counters.sessions_open);
  auto* s = new ClientSession(*this, c.fd, c.peer_ip, c.peer_port, cs_id, proxy_.ids().next_proxy_sessid(),
                              proxy_.shm().slot(uint32_t(slot)), uint32_t(slot));
  sessions_[cs_id] = s;
  s->start();
}

// Who sent a kill request: the SQL session's cs_id and user@tenant, or
// myrelayctl's pid and uid (the uid as /proc shows it: the pid is the
// sender's word, the uid the kernel's).
KilledBy Worker::killer_of(const control::Request& req) const {
  KilledBy by;
  if (req.sender_cs_id) {
    by.cs_id = req.sender_cs_id;
    by.name = req.sender_name;
    return by;
  }
  by.pid = req.sender_pid;
  struct stat st;
  if (req.sender_pid > 0 && ::stat(("/proc/" + std::to_string(req.sender_pid)).c_str(), &st) == 0)
    by.uid = int32_t(st.st_uid);
  by.name = "myrelayctl";
  return by;
}

shm::LatencyHistogram* Worker::latency_histogram(int health) {
  if (health < 0 || size_t(health) >= shm::kMaxServers) return nullptr;
  return &info_->latency[health];
}

uint64_t Worker::record_kill(const shm::KillRecord& r) {
  uint64_t id = proxy_.shm().record_kill(r);
  if (r.reason < shm::kKillReasonCount) bump(info_->counters.kills_by_reason[r.reason]);
  LOG_INFO("kill log: cs_id=%u '%s@%s' from %s:%u: %s by %s%s%s", r.cs_id, get_field(r.user).c_str(),
           get_field(r.tenant).c_str(), get_field(r.host_ip).c_str(), r.host_port, view::kill_reason_name(r.reason),
           get_field(r.by).empty() ? "?" : get_field(r.by).c_str(),
           r.statement_ms >= 0 ? ", statement running " : "",
           r.statement_ms >= 0 ? (std::to_string(r.statement_ms) + " ms").c_str() : "");
  return id;
}

void Worker::handle_control(const control::Request& req) {
  bump(info_->counters.control_requests);
  auto it = sessions_.find(req.cs_id);
  // The target must still be the very session the request was made for: a
  // cs_id may have been given to a newer session since.
  if (it == sessions_.end() || it->second->closed() ||
      (req.proxy_sessid != 0 && it->second->proxy_sessid() != req.proxy_sessid)) {
    uint64_t held_back = 0;
    if (stale_log_.allow(held_back))
      LOG_INFO("worker %d: %s for cs_id=%u ignored: no such session any more (%llu more such not logged)", index_,
               control::request_type_name(req.type), req.cs_id, (unsigned long long)held_back);
    return;
  }
  ClientSession* s = it->second;
  KilledBy by = killer_of(req);
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
    case control::RequestType::KillWhenIdle:
      s->kill_when_idle(by, req.timeout_s);
      break;
  }
}

// ---- stopping ----

void Worker::begin_drain(int grace_s) {
  if (draining_ || stopping_) return;
  draining_ = true;
  LOG_INFO("worker %d draining: %zu sessions, up to %d s", index_, sessions_.size(), grace_s);
  pool_->clear();
  shared_->clear();
  std::vector<ClientSession*> all(rejecting_.begin(), rejecting_.end());
  for (auto& kv : sessions_) all.push_back(kv.second);
  for (auto* s : all) s->drain();
  if (sessions_.empty() && rejecting_.empty()) {
    event_base_loopexit(base_, nullptr);
    return;
  }
  drain_timer_ = evtimer_new(base_, on_drain_deadline, this);
  timeval tv{grace_s, 0};
  evtimer_add(drain_timer_, &tv);
}

void Worker::leave_if_drained() {
  if (draining_ && sessions_.empty() && rejecting_.empty()) event_base_loopexit(base_, nullptr);
}

void Worker::on_drain_deadline(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  LOG_WARN("worker %d: shutdown grace period over, closing %zu sessions", self->index_, self->sessions_.size());
  self->stop("proxy shutting down: grace period over");
}

void Worker::stop(const char* why) {
  stopping_ = true;
  close_all(why);
  event_base_loopexit(base_, nullptr);
}

void Worker::close_all(const char* why) {
  for (auto* k : killers_) dead_killers_.push_back(k);
  killers_.clear();
  if (!dead_killers_.empty() && reap_ev_) event_active(reap_ev_, 0, 0);
  std::vector<ClientSession*> all(rejecting_.begin(), rejecting_.end());
  for (auto& kv : sessions_) all.push_back(kv.second);
  for (auto* s : all) s->close_for_shutdown(why);
  if (pool_) pool_->clear();
  if (shared_) shared_->clear();
}

int Worker::worker_count() const { return proxy_.worker_count(); }

}  // namespace myrelay
