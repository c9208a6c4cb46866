// Resolving session ids (see id_resolver.h).
#include "control/id_resolver.h"

#include "session/ids.h"

namespace myrelay {

static bool names(const shm::SessionRecord& r, uint64_t id) {
  if (is_cs_id(id)) return r.cs_id == id;
  if (id == 0 || id > 0xffffffffu) return false;
  for (const auto& s : r.servers)
    if (s.ss_id != 0 && s.server_sessid == id) return true;
  return false;
}

IdMatch resolve_id(const std::vector<shm::SessionRecord>& all, uint64_t id,
                   const std::function<bool(const shm::SessionRecord&)>& eligible) {
  IdMatch m;
  for (const auto& r : all) {
    if (!names(r, id) || (eligible && !eligible(r))) continue;
    if (!m.session) m.session = &r;
    m.candidates.push_back(r.cs_id);
  }
  if (m.candidates.size() == 1) {
    m.outcome = IdMatch::Outcome::Found;
    m.candidates.clear();
  } else if (m.candidates.size() > 1) {
    m.outcome = IdMatch::Outcome::Ambiguous;
    m.session = nullptr;
  }
  return m;
}

std::string ambiguity(const IdMatch& m) {
  std::string ids;
  for (uint32_t cs_id : m.candidates) ids += (ids.empty() ? "" : ", ") + std::to_string(cs_id);
  return "it is the backend connection id of " + std::to_string(m.candidates.size()) + " sessions (Id " + ids + ")";
}

bool has_server_session(const shm::SessionRecord& r, uint64_t ss_id) {
  if (ss_id == 0) return false;
  for (const auto& s : r.servers)
    if (s.ss_id == ss_id) return true;
  return false;
}

}  // namespace myrelay
