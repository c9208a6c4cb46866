// Choosing a backend server (see router.h).
#include "routing/router.h"

namespace myrelay::routing {

const BackendServer* primary_server(const Cluster& cluster) {
  for (const auto& s : cluster.servers)
    if (s.role == ServerRole::Primary) return &s;
  return cluster.servers.empty() ? nullptr : &cluster.servers.front();
}

}  // namespace myrelay::routing
