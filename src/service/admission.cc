// Admission limits (see admission.h).
#include "service/admission.h"

#include <algorithm>

#include "service/config.h"

namespace myrelay {

Admission::Verdict Admission::refuse() {
  if (refusing_.fetch_add(1, std::memory_order_relaxed) < kMaxRefusing) return Verdict::Refuse;
  refusing_.fetch_sub(1, std::memory_order_relaxed);
  return Verdict::RefuseBare;
}

Admission::Verdict Admission::admit(const std::string& host, const Config& cfg, int capacity, std::string& why) {
  int max = std::min(cfg.max_connections, capacity);
  if (connections_.fetch_add(1, std::memory_order_acq_rel) >= max) {
    connections_.fetch_sub(1, std::memory_order_acq_rel);
    why = "max_connections (" + std::to_string(max) + ") reached";
    return refuse();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    int& of_host = pending_by_host_[host];
    if (pending_ < cfg.max_pending_logins && of_host < cfg.max_pending_logins_per_host) {
      ++pending_;
      ++of_host;
      return Verdict::Admit;
    }
    why = pending_ >= cfg.max_pending_logins
              ? "max_pending_logins (" + std::to_string(cfg.max_pending_logins) + ") reached"
              : "max_pending_logins_per_host (" + std::to_string(cfg.max_pending_logins_per_host) + ") reached";
    if (of_host == 0) pending_by_host_.erase(host);
  }
  connections_.fetch_sub(1, std::memory_order_acq_rel);
  return refuse();
}

void Admission::login_finished(const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_by_host_.find(host);
  if (it == pending_by_host_.end()) return;
  --pending_;
  if (--it->second == 0) pending_by_host_.erase(it);
}

int Admission::pending_logins() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

}  // namespace myrelay
