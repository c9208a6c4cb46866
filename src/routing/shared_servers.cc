// Shared backend connections and the cap (see shared_servers.h).
#include "routing/shared_servers.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "control/session_view.h"
#include "control/shm_table.h"
#include "service/log.h"

namespace myrelay {

void ServerLine::closed() {
  --open_;
  if (!waiters_.empty()) owner_.freed(*this);
}

SharedServers::SharedServers(event_base* base, shm::WorkerCounters& counters) : base_(base), counters_(counters) {
  wake_ = event_new(base_, -1, 0, on_wake, this);
  sweep_ = event_new(base_, -1, EV_PERSIST, on_sweep, this);
  timeval tv{1, 0};
  if (sweep_) evtimer_add(sweep_, &tv);
}

SharedServers::~SharedServers() {
  clear();
  if (wake_) event_free(wake_);
  if (sweep_) event_free(sweep_);
}

ServerLine& SharedServers::line(shm::ServerEntry& entry, const BackendServer& server) {
  std::unique_ptr<ServerLine>& l = lines_[&entry];
  if (!l) l = std::make_unique<ServerLine>(*this, entry, server);
  return *l;
}

void SharedServers::set_idle_gauges(ServerLine& line, int delta) {
  idle_total_ += delta;
  line.entry_.shared_idle.fetch_add(delta, std::memory_order_relaxed);
  counters_.shared_idle.store(idle_total_, std::memory_order_relaxed);
}

void SharedServers::put(ServerLine& line, std::unique_ptr<ServerSession> ss, int idle_s, int64_t now_us) {
  ServerSession* raw = ss.get();
  raw->set_owner(*this);
  if (line.spare_.empty()) line.spare_.emplace_back();
  line.idle_.splice(line.idle_.begin(), line.spare_, line.spare_.begin());
  line.idle_.front() = ServerLine::Idle{std::move(ss), now_us, idle_s};
  set_idle_gauges(line, 1);
  raw->change_state(ServerSession::State::KeepAliveShared);
  if (!line.waiters_.empty()) freed(line);
}

// Whether the backend has said anything since the connection went idle:
// an idle connection's only news is its end (a KILL there, a restart, its
// wait_timeout), which the loop may not have delivered yet.
bool SharedServers::backend_closed(const ServerSession& ss) {
  Connection* c = ss.conn();
  if (!c || evbuffer_get_length(c->input()) != 0) return true;
  char b;
  ssize_t n = recv(c->fd(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

std::unique_ptr<ServerSession> SharedServers::hand_out(ServerLine& line, std::list<ServerLine::Idle>::iterator it) {
  std::unique_ptr<ServerSession> ss = std::move(it->ss);
  line.spare_.splice(line.spare_.begin(), line.idle_, it);
  set_idle_gauges(line, -1);
  if (backend_closed(*ss)) {
    LOG_DEBUG("ss_id=%llu leaves the shared set: the backend closed it", (unsigned long long)ss->ss_id());
    return nullptr;  // destroyed here: its place on the line is free
  }
  bump(counters_.shared_takes);
  return ss;
}

bool SharedServers::close_oldest(ServerLine& line) {
  if (line.idle_.empty()) return false;
  LOG_DEBUG("ss_id=%llu leaves the shared set: room for a connection of another login",
            (unsigned long long)line.idle_.back().ss->ss_id());
  line.idle_.pop_back();
  set_idle_gauges(line, -1);
  return true;
}

void SharedServers::wait(ServerLine& line, ConnectionWaiter* w, bool again) {
  line.waiters_.push_back(w);
  line.entry_.waiting.fetch_add(1, std::memory_order_relaxed);
  if (!again) bump(counters_.queue_waits);
}

void SharedServers::cancel(ServerLine& line, ConnectionWaiter* w) {
  for (auto it = line.waiters_.begin(); it != line.waiters_.end(); ++it)
    if (*it == w) {
      line.waiters_.erase(it);
      line.entry_.waiting.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
}

void SharedServers::freed(ServerLine&) {
  if (wake_ && !wake_pending_) {
    wake_pending_ = true;
    event_active(wake_, 0, 0);
  }
}

// Each line's waiters, first come first served, as many as it has idle
// connections and room for new ones: a waiter that routes again and finds
// neither (another took it first) waits again, at the back.
void SharedServers::on_wake(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<SharedServers*>(arg);
  self->wake_pending_ = false;
  // A woken session may route to a server new to this worker: its line is
  // made then, so the lines are listed first.
  std::vector<ServerLine*> lines;
  for (auto& [entry, line] : self->lines_)
    if (!line->waiters_.empty()) lines.push_back(line.get());
  for (ServerLine* line : lines) {
    size_t n = line->waiters_.size();
    if (line->cap_ > 0) n = std::min(n, line->idle_.size() + size_t(std::max(0, line->cap_ - line->open_)));
    for (; n > 0 && !line->waiters_.empty(); --n) {
      ConnectionWaiter* w = line->waiters_.front();
      line->waiters_.pop_front();
      line->entry_.waiting.fetch_sub(1, std::memory_order_relaxed);
      w->on_connection_free();
    }
  }
}

void SharedServers::clear() {
  for (auto& [entry, line] : lines_) {
    set_idle_gauges(*line, -int(line->idle_.size()));
    line->idle_.clear();  // each destructor sends COM_QUIT
  }
}

void SharedServers::drop(ServerSession* ss, const char* why) {
  for (auto& [entry, line] : lines_)
    for (auto it = line->idle_.begin(); it != line->idle_.end(); ++it) {
      if (it->ss.get() != ss) continue;
      LOG_DEBUG("ss_id=%llu leaves the shared set: %s", (unsigned long long)ss->ss_id(), why);
      line->idle_.erase(it);
      set_idle_gauges(*line, -1);
      return;
    }
}

void SharedServers::on_server_login_failed(ServerSession* ss, const std::string&) { drop(ss, "its login failed"); }

void SharedServers::on_server_lost(ServerSession* ss, const std::string& why) { drop(ss, why.c_str()); }

// Idle connections unused for timeouts.server_idle_s close, as do those to
// servers that are down or gone from the configuration.
void SharedServers::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<SharedServers*>(arg);
  const int64_t now = view::now_us();
  for (auto& [entry, line] : self->lines_)
    for (auto it = line->idle_.begin(); it != line->idle_.end();) {
      bool idle = now - it->since_us >= int64_t(it->idle_s) * 1000000;
      bool down = !(it->ss->routing() & shm::kRouteUp);
      if (!idle && !down) {
        ++it;
        continue;
      }
      LOG_DEBUG("ss_id=%llu leaves the shared set: %s", (unsigned long long)it->ss->ss_id(),
                idle ? "idle (timeouts.server_idle_s)" : "its server is down or was removed");
      it = line->idle_.erase(it);
      self->set_idle_gauges(*line, -1);
    }
}

}  // namespace myrelay
