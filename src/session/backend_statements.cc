// Statements shared on a backend connection (see backend_statements.h).
#include "session/backend_statements.h"

namespace myrelay {

BackendStatements::Entry* BackendStatements::find(const std::string& key) {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : by_id(it->second);
}

BackendStatements::Entry* BackendStatements::by_id(uint32_t backend_id) {
  auto it = by_id_.find(backend_id);
  return it == by_id_.end() ? nullptr : &it->second.entry;
}

void BackendStatements::add(const std::string& key, const Entry& e) {
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    if (it->second == e.backend_id) return;
    closable_.push_back(it->second);
    by_id_.erase(it->second);
    it->second = e.backend_id;
  } else {
    by_key_.emplace(key, e.backend_id);
  }
  by_id_[e.backend_id] = Kept{e, key};
  order_.push_back(e.backend_id);
  while (by_key_.size() > kMax && !order_.empty()) {
    uint32_t oldest = order_.front();
    order_.pop_front();
    if (!by_id_.count(oldest)) continue;  // replaced already
    closable_.push_back(oldest);
    forget(oldest);
  }
}

void BackendStatements::forget(uint32_t backend_id) {
  auto it = by_id_.find(backend_id);
  if (it == by_id_.end()) return;
  auto k = by_key_.find(it->second.key);
  if (k != by_key_.end() && k->second == backend_id) by_key_.erase(k);
  by_id_.erase(it);
}

std::vector<uint32_t> BackendStatements::take_closable() {
  std::vector<uint32_t> out;
  out.swap(closable_);
  if (order_.size() > 2 * kMax) {  // ids replaced or closed pile up: keep only live ones
    std::deque<uint32_t> live;
    for (uint32_t id : order_)
      if (by_id_.count(id)) live.push_back(id);
    order_.swap(live);
  }
  return out;
}

}  // namespace myrelay
