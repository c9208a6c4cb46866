// Pooled server sessions (see server_pool.h).
#include "routing/server_pool.h"

#include <event2/buffer.h>

#include "service/log.h"
#include "control/session_view.h"

namespace myrelay {

ServerPool::ServerPool(event_base* base, std::atomic<uint64_t>& gauge) : base_(base), gauge_(gauge) {
  sweep_ = event_new(base_, -1, EV_PERSIST, on_sweep, this);
  timeval tv{1, 0};
  if (sweep_) evtimer_add(sweep_, &tv);
}

ServerPool::~ServerPool() {
  clear();
  if (sweep_) event_free(sweep_);
}

void ServerPool::put(std::unique_ptr<ServerSession> ss, const std::string& cluster, size_t max_idle,
                     int idle_s) {
  if (!ss || !ss->conn() || max_idle == 0) return;  // closing `ss` sends COM_QUIT
  if (entries_.size() >= max_idle) {
    // Full: the oldest goes, so the pool keeps the warmest sessions.
    drop(entries_.back().ss.get(), "pool full");
  }
  ServerSession* raw = ss.get();
  raw->set_owner(*this);
  entries_.push_front(Entry{std::move(ss), cluster, false, view::now_us(), idle_s});
  update_gauge();
  raw->park();  // may report a failure at once: then the entry is gone
}

std::unique_ptr<ServerSession> ServerPool::take(const std::string& cluster, const BackendServer& server,
                                                uint32_t client_caps, uint32_t client_ext_caps) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->clean || it->cluster != cluster || it->ss->server().address.host != server.address.host ||
        it->ss->server().address.port != server.address.port ||
        !it->ss->can_serve(client_caps, client_ext_caps))
      continue;
    std::unique_ptr<ServerSession> ss = std::move(it->ss);
    entries_.erase(it);
    update_gauge();
    return ss;
  }
  return nullptr;
}

void ServerPool::clear() {
  entries_.clear();  // each destructor sends COM_QUIT
  update_gauge();
}

void ServerPool::update_gauge() { gauge_.store(entries_.size(), std::memory_order_relaxed); }

void ServerPool::drop(ServerSession* ss, const char* why) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->ss.get() != ss) continue;
    LOG_DEBUG("ss_id=%llu leaves the server pool: %s", (unsigned long long)ss->ss_id(), why);
    entries_.erase(it);
    update_gauge();
    return;
  }
}

void ServerPool::on_server_ready(ServerSession* ss) {
  for (Entry& e : entries_)
    if (e.ss.get() == ss) {
      e.clean = true;
      ss->change_state(ServerSession::State::KeepAliveShared);
      return;
    }
}

void ServerPool::on_server_login_failed(ServerSession* ss, const std::string&) { drop(ss, "reset failed"); }

void ServerPool::on_server_lost(ServerSession* ss, const std::string& why) { drop(ss, why.c_str()); }

void ServerPool::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ServerPool*>(arg);
  int64_t now = view::now_us();
  for (auto it = self->entries_.begin(); it != self->entries_.end();) {
    if (now - it->since_us >= int64_t(it->idle_s) * 1000000) {
      LOG_DEBUG("ss_id=%llu leaves the server pool: idle", (unsigned long long)it->ss->ss_id());
      it = self->entries_.erase(it);
    } else {
      ++it;
    }
  }
  self->update_gauge();
}

}  // namespace myrelay
