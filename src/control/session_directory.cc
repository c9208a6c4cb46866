// The daemon's session directory (see session_directory.h).
#include "control/session_directory.h"

#include <algorithm>

#include "control/shm_table.h"

namespace myrelay {

std::vector<shm::SessionRecord> ShmSessionDirectory::snapshot() const {
  auto all = table_.snapshot();
  std::sort(all.begin(), all.end(),
            [](const shm::SessionRecord& a, const shm::SessionRecord& b) { return a.cs_id < b.cs_id; });
  return all;
}

bool ShmSessionDirectory::variables(const shm::SessionRecord& r, std::string& area) const {
  return table_.session_variables(r, area);
}

bool ShmSessionDirectory::send(const shm::SessionRecord& target, const control::Request& req, std::string& error) {
  if (target.worker < 0 || size_t(target.worker) >= control_fds_.size()) {
    error = "no worker " + std::to_string(target.worker);
    return false;
  }
  return control::send_fd(control_fds_[size_t(target.worker)], req, error);
}

std::vector<SessionDirectory::Server> ShmSessionDirectory::servers() const {
  std::vector<Server> out;
  for (const auto& v : table_.servers()) out.push_back({v.rec, v.server_sessions, v.shared_idle, v.waiting});
  return out;
}

bool ShmSessionDirectory::statement(const shm::SessionRecord& r, view::StatementInfo& out) const {
  ShmTable::Statement st;
  if (!table_.session_statement(r, st)) return false;
  out = {std::move(st.text), st.start_us, st.end_us};
  return true;
}

std::vector<shm::KillRecord> ShmSessionDirectory::kills(
    size_t limit, const std::function<bool(const shm::KillRecord&)>& keep) const {
  return table_.recent_kills(limit, keep);
}

}  // namespace myrelay
