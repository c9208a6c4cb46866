// The backend servers' health, in the shared segment (shm::ServerEntry):
// which entry each configured server has, what the last checks found, and
// the routing word every worker reads before it sends a server session
// somewhere.  The main thread is the only writer of the records (at load and
// reload, and from the health checker); workers read the routing words and
// count their server sessions in the entries.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "myrelay/shm_layout.h"
#include "service/config.h"

namespace myrelay {

class ShmTable;

// What one health check found.
struct CheckResult {
  bool ok = false;
  bool refused = false;            // the connection itself was refused: down at once
  std::string error;               // why it failed
  std::optional<bool> read_only;   // unknown without a monitor account
  bool replicating = false;        // it reported replication (SHOW SLAVE STATUS had rows)
  int64_t lag_s = -1;              // -1: NULL (replication stopped) or not replicating
};

class ServerHealthTable {
 public:
  // Checks in a row that make a server down.
  static constexpr int kDownAfter = 3;

  explicit ServerHealthTable(ShmTable& shm) : shm_(shm) {}

  // Gives every server of `cfg` its entry (BackendServer::health): one
  // already known (same cluster, same address) keeps its entry and its
  // health; one no longer configured is marked removed (its sessions move,
  // see ServerRouting) and its entry is reused once no session holds it.
  // Throws ConfigError when the table is full.
  void assign(Config& cfg);
  // A check of entry `index` has ended.
  void record(int index, const Cluster& cluster, const CheckResult& r, int64_t now_us);

  shm::ServerEntry& entry(int index) const;

 private:
  void publish(int index, const shm::ServerHealthRecord& rec, const Cluster& cluster);
  // The routing word of a server, from its record and its cluster's rules.
  static uint32_t routing_of(const shm::ServerHealthRecord& rec, const Cluster& cluster);

  ShmTable& shm_;
  std::map<std::string, int> index_;  // "cluster\naddress" -> entry
};

const char* health_state_name(uint8_t state);

}  // namespace myrelay
