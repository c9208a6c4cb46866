// Choosing the backend server a server session goes to (DESIGN section 4):
// writes to the writable server, reads (with the read/write split on) to a
// healthy replica by weight.  What the health checker found reaches here as
// each server's routing word (shm::ServerRouting), read through `Routing`.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "service/config.h"

namespace myrelay::routing {

using Routing = std::function<uint32_t(const BackendServer&)>;

// The cluster's first primary, else its first server, as configured; null
// for a cluster without servers (the configuration does not allow one).
const BackendServer* primary_server(const Cluster& cluster);

// Where writes go now: the configured primary while it is writable, else the
// first writable server (an external failover promoted it); null when no
// server is writable.
const BackendServer* write_server(const Cluster& cluster, const Routing& routing);

// Where a login's first server session goes: the write server, else the
// first server that is up, else the configured primary (whose login then
// fails with the reason).
const BackendServer* login_server(const Cluster& cluster, const Routing& routing);

// A server's share of the reads while it has these routing bits.
int read_weight(const BackendServer& s, uint32_t routing);

// Smooth weighted round-robin (as nginx's upstreams) among the servers that
// may take reads: over any run of choices each gets its weight's share, with
// the choices interleaved.  One per worker; its thread only.
class ReadBalancer {
 public:
  // Null when no server may take reads (the caller reads from the primary).
  const BackendServer* pick(const Cluster& cluster, const Routing& routing);

 private:
  std::unordered_map<int, int64_t> current_;  // by health entry
};

}  // namespace myrelay::routing
