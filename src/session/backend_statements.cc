// Statements shared on a backend connection (see backend_statements.h).
#include "session/backend_statements.h"

namespace myrelay {

BackendStatements::Entry* BackendStatements::find(const std::string& sql) {
  auto it = by_sql_.find(sql);
  return it == by_sql_.end() ? nullptr : &it->second;
}

BackendStatements::Entry* BackendStatements::by_id(uint32_t backend_id) {
  auto t = texts_.find(backend_id);
  if (t == texts_.end()) return nullptr;
  auto it = by_sql_.find(t->second);
  return it != by_sql_.end() && it->second.backend_id == backend_id ? &it->second : nullptr;
}

void BackendStatements::add(const std::string& sql, const Entry& e) {
  auto it = by_sql_.find(sql);
  if (it != by_sql_.end()) {
    if (it->second.backend_id == e.backend_id) return;
    closable_.push_back(it->second.backend_id);
    texts_.erase(it->second.backend_id);
    it->second = e;
  } else {
    by_sql_.emplace(sql, e);
  }
  texts_[e.backend_id] = sql;
  order_.push_back(e.backend_id);
  while (by_sql_.size() > kMax && !order_.empty()) {
    uint32_t oldest = order_.front();
    order_.pop_front();
    if (!texts_.count(oldest)) continue;  // replaced already
    closable_.push_back(oldest);
    forget(oldest);
  }
}

void BackendStatements::forget(uint32_t backend_id) {
  auto t = texts_.find(backend_id);
  if (t == texts_.end()) return;
  auto it = by_sql_.find(t->second);
  if (it != by_sql_.end() && it->second.backend_id == backend_id) by_sql_.erase(it);
  texts_.erase(t);
}

std::vector<uint32_t> BackendStatements::take_closable() {
  std::vector<uint32_t> out;
  out.swap(closable_);
  if (order_.size() > 2 * kMax) {  // ids replaced or closed pile up: keep only live ones
    std::deque<uint32_t> live;
    for (uint32_t id : order_)
      if (texts_.count(id)) live.push_back(id);
    order_.swap(live);
  }
  return out;
}

}  // namespace myrelay
