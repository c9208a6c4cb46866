// Choosing a backend server (see router.h).
#include "routing/router.h"

#include "myrelay/shm_layout.h"

namespace myrelay::routing {

const BackendServer* primary_server(const Cluster& cluster) {
  for (const auto& s : cluster.servers)
    if (s.role == ServerRole::Primary) return &s;
  return cluster.servers.empty() ? nullptr : &cluster.servers.front();
}

const BackendServer* write_server(const Cluster& cluster, const Routing& routing) {
  const BackendServer* configured = primary_server(cluster);
  if (configured && (routing(*configured) & shm::kRouteWritable)) return configured;
  for (const auto& s : cluster.servers)
    if (routing(s) & shm::kRouteWritable) return &s;
  return nullptr;
}

const BackendServer* login_server(const Cluster& cluster, const Routing& routing) {
  if (const BackendServer* w = write_server(cluster, routing)) return w;
  const BackendServer* configured = primary_server(cluster);
  if (configured && (routing(*configured) & shm::kRouteUp)) return configured;
  for (const auto& s : cluster.servers)
    if (routing(s) & shm::kRouteUp) return &s;
  return configured;
}

int read_weight(const BackendServer& s, uint32_t routing) {
  if (routing & shm::kRouteReadable) return s.weight >= 0 ? s.weight : 1;
  // The writable server reads too when it was given a weight.
  if ((routing & shm::kRouteWritable) && s.weight > 0) return s.weight;
  return 0;
}

const BackendServer* ReadBalancer::pick(const Cluster& cluster, const Routing& routing) {
  const BackendServer* best = nullptr;
  int64_t total = 0;
  int64_t* best_current = nullptr;
  for (const auto& s : cluster.servers) {
    int w = read_weight(s, routing(s));
    if (w <= 0) continue;
    int64_t& cur = current_[s.health];
    cur += w;
    total += w;
    if (!best || cur > *best_current) {
      best = &s;
      best_current = &cur;
    }
  }
  if (best) *best_current -= total;
  return best;
}

}  // namespace myrelay::routing
