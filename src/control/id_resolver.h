// Which session an id names (DESIGN section 3): a cs_id (bit 31 set) names
// at most one client session; any other number is a backend connection id
// (what CONNECTION_ID() returns through the proxy) and may match the server
// sessions of several client sessions, which is refused, never guessed.
// The proxy's own statements and myrelayctl resolve ids with this alone.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "myrelay/shm_layout.h"

namespace myrelay {

struct IdMatch {
  enum class Outcome { Found, Unknown, Ambiguous };
  Outcome outcome = Outcome::Unknown;
  const shm::SessionRecord* session = nullptr;  // Found
  std::vector<uint32_t> candidates;             // Ambiguous: their cs_ids
};

// The one session `id` names among those of `all` that `eligible` accepts
// (all of them when it is empty).
IdMatch resolve_id(const std::vector<shm::SessionRecord>& all, uint64_t id,
                   const std::function<bool(const shm::SessionRecord&)>& eligible = {});

// "it is the backend connection id of 2 sessions (Id 2147483650, 2147483651)"
std::string ambiguity(const IdMatch& m);

// Whether a session has a server session with this ss_id.
bool has_server_session(const shm::SessionRecord& r, uint64_t ss_id);

}  // namespace myrelay
