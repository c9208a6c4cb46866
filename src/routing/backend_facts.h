// What the backends of each cluster said in their handshakes: the proxy's own
// handshake offers the same server version and capabilities, so clients see
// the database they are really talking to.  Shared by every worker, as
// immutable snapshots: a login takes one without copying anything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "protocol/packets.h"
#include "protocol/session_track.h"

namespace myrelay {

struct Config;

struct BackendFacts {
  bool known = false;
  std::string server_version;
  uint32_t capabilities = 0;
  uint32_t ext_capabilities = 0;  // MariaDB's
  uint8_t charset = 0;
  // What a new session's trackers report on these servers (their global
  // session_track_* values): what a client of the proxy gets reported.
  // Null until one session has read them.
  std::shared_ptr<const proto::TrackerSet> trackers;
};

class BackendFactsTable {
 public:
  // Never null (a cluster not heard of yet has an empty one).
  std::shared_ptr<const BackendFacts> get(const std::string& cluster) const;
  void note(const std::string& cluster, const proto::Handshake& hs);
  void note_trackers(const std::string& cluster, const proto::TrackerSet& t);

  // Reads one handshake of each cluster at start (blocking, before the
  // workers run), so that the first clients already see the backend's version.
  void probe(const Config& cfg);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const BackendFacts>> facts_;
};

}  // namespace myrelay
