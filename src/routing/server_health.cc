// The health table (see server_health.h).
#include "routing/server_health.h"

#include <set>

#include "control/shm_table.h"
#include "service/log.h"

namespace myrelay {

using shm::ServerHealthRecord;
using shm::ServerState;

const char* health_state_name(uint8_t state) {
  switch (ServerState(state)) {
    case ServerState::Down: return "down";
    case ServerState::Lagging: return "lagging";
    case ServerState::Unchecked:  // presumed alive until a check says otherwise
    case ServerState::Alive: break;
  }
  return "alive";
}

shm::ServerEntry& ServerHealthTable::entry(int index) const { return *shm_.server(uint32_t(index)); }

void ServerHealthTable::assign(Config& cfg) {
  std::set<int> kept;
  std::map<std::string, int> next;
  // Entries free for new servers: never used, or removed and no longer held.
  auto reusable = [&](int i) {
    ServerHealthRecord r;
    ShmTable::read_server(&entry(i), r);
    if (kept.count(i)) return false;
    if (r.in_use == shm::kServerFree) return true;
    return r.in_use == shm::kServerRemoved && entry(i).server_sessions.load(std::memory_order_relaxed) == 0;
  };
  size_t fresh = 0;
  for (Cluster& cl : cfg.clusters)
    for (BackendServer& s : cl.servers) {
      auto it = index_.find(cl.name + "\n" + s.address.str());
      if (it != index_.end())
        kept.insert(it->second);
      else
        ++fresh;
    }
  // Room for every new server, before anything is written.
  size_t room = 0;
  for (int j = 0; j < int(shm_.server_count()); ++j) room += reusable(j) ? 1 : 0;
  if (room < fresh)
    throw ConfigError(cfg.file + ": clusters: no room in the health table for " + std::to_string(fresh) +
                      " new servers (servers removed by a reload still have sessions)");
  for (Cluster& cl : cfg.clusters) {
    for (BackendServer& s : cl.servers) {
      const std::string key = cl.name + "\n" + s.address.str();
      auto it = index_.find(key);
      int i = -1;
      ServerHealthRecord rec{};
      if (it != index_.end()) {
        i = it->second;
        ShmTable::read_server(&entry(i), rec);
      } else {
        for (int j = 0; j < int(shm_.server_count()) && i < 0; ++j)
          if (reusable(j)) i = j;
        if (i < 0)
          throw ConfigError(cfg.file + ": clusters: no room in the health table for " + s.address.str() +
                            " (servers removed by a reload still have sessions)");
        kept.insert(i);
        entry(i).server_sessions.store(0, std::memory_order_relaxed);
        set_field(rec.cluster, cl.name);
        set_field(rec.address, s.address.str());
        rec.state = uint8_t(ServerState::Unchecked);
        rec.read_only = 2;
        rec.lag_s = -1;
        rec.role = s.role == ServerRole::Primary ? 0 : 1;
      }
      rec.in_use = shm::kServerConfigured;
      rec.configured_role = s.role == ServerRole::Primary ? 0 : 1;
      if (rec.read_only == 2) rec.role = rec.configured_role;  // nothing checked says otherwise
      rec.weight = s.weight;
      s.health = i;
      next[key] = i;
      publish(i, rec, cl);
    }
  }
  // Servers the new configuration no longer has: no new work; sessions on
  // them finish their statement and move.
  for (const auto& [key, i] : index_) {
    if (next.count(key)) continue;
    ServerHealthRecord rec;
    ShmTable::read_server(&entry(i), rec);
    rec.in_use = shm::kServerRemoved;
    ShmTable::write_server(&entry(i), rec);
    entry(i).routing.store(0, std::memory_order_release);
    LOG_INFO("server %s of cluster '%s' removed from the configuration: its sessions move elsewhere",
             get_field(rec.address).c_str(), get_field(rec.cluster).c_str());
  }
  // Removed entries nobody holds any more are free again.
  for (uint32_t i = 0; i < shm_.server_count(); ++i) {
    ServerHealthRecord rec;
    ShmTable::read_server(&entry(int(i)), rec);
    if (rec.in_use == shm::kServerRemoved && !kept.count(int(i)) &&
        entry(int(i)).server_sessions.load(std::memory_order_relaxed) == 0)
      ShmTable::write_server(&entry(int(i)), ServerHealthRecord{});
  }
  index_ = std::move(next);
}

uint32_t ServerHealthTable::routing_of(const ServerHealthRecord& rec, const Cluster& cluster) {
  if (rec.in_use != shm::kServerConfigured || ServerState(rec.state) == ServerState::Down) return 0;
  uint32_t bits = shm::kRouteUp;
  if (rec.role == 0) bits |= shm::kRouteWritable;
  bool lag_ok = rec.read_only == 2 || (rec.lag_s >= 0 && rec.lag_s <= cluster.max_replica_lag_s);
  if (rec.role == 1 && lag_ok) bits |= shm::kRouteReadable;
  return bits;
}

void ServerHealthTable::publish(int index, const ServerHealthRecord& rec, const Cluster& cluster) {
  ShmTable::write_server(&entry(index), rec);
  entry(index).routing.store(routing_of(rec, cluster), std::memory_order_release);
}

void ServerHealthTable::record(int index, const Cluster& cluster, const CheckResult& r, int64_t now_us) {
  ServerHealthRecord rec;
  if (!ShmTable::read_server(&entry(index), rec) || rec.in_use != shm::kServerConfigured) return;
  const std::string addr = get_field(rec.address);
  const uint32_t before = entry(index).routing.load(std::memory_order_relaxed);
  const ServerState was = ServerState(rec.state);
  ++rec.checks;
  rec.last_check_us = now_us;
  if (!r.ok) {
    ++rec.failed_checks;
    ++rec.consecutive_failures;
    set_field(rec.last_error, r.error);
    if ((r.refused || rec.consecutive_failures >= kDownAfter) && was != ServerState::Down) {
      rec.state = uint8_t(ServerState::Down);
      LOG_WARN("cluster '%s': server %s is down (%s; %d failed check%s in a row): no new server sessions go there",
               cluster.name.c_str(), addr.c_str(), r.error.c_str(), rec.consecutive_failures,
               rec.consecutive_failures == 1 ? "" : "s");
    }
  } else {
    rec.consecutive_failures = 0;
    if (r.read_only) {
      rec.read_only = *r.read_only ? 1 : 0;
      uint8_t role = *r.read_only ? 1 : 0;
      if (role != rec.role && was != ServerState::Unchecked)
        LOG_WARN("cluster '%s': server %s is %s now (read_only=%d)%s", cluster.name.c_str(), addr.c_str(),
                 role == 0 ? "writable" : "read-only", *r.read_only ? 1 : 0,
                 role == 0 ? ": writes go to it" : ": no writes go to it");
      rec.role = role;
    }
    rec.lag_s = r.replicating ? r.lag_s : -1;
    bool lagging = rec.role == 1 && rec.read_only != 2 &&
                   (rec.lag_s < 0 || rec.lag_s > cluster.max_replica_lag_s);
    rec.state = uint8_t(lagging ? ServerState::Lagging : ServerState::Alive);
    if (was == ServerState::Down)
      LOG_WARN("cluster '%s': server %s is back (%s)", cluster.name.c_str(), addr.c_str(),
               health_state_name(rec.state));
    else if (lagging && was != ServerState::Lagging)
      LOG_WARN("cluster '%s': replica %s gets no reads: %s", cluster.name.c_str(), addr.c_str(),
               rec.lag_s < 0 ? "replication is not running (lag NULL)"
                             : ("it lags " + std::to_string(rec.lag_s) + " s, over max_replica_lag_s " +
                                std::to_string(cluster.max_replica_lag_s)).c_str());
    else if (!lagging && was == ServerState::Lagging)
      LOG_INFO("cluster '%s': replica %s caught up (lag %lld s): reads go to it again", cluster.name.c_str(),
               addr.c_str(), (long long)rec.lag_s);
  }
  publish(index, rec, cluster);
  const uint32_t after = entry(index).routing.load(std::memory_order_relaxed);
  if ((before ^ after) & shm::kRouteWritable) {
    bool any = false;
    for (const BackendServer& s : cluster.servers)
      any = any || (s.health >= 0 && (entry(s.health).routing.load(std::memory_order_relaxed) & shm::kRouteWritable));
    if (!any) LOG_WARN("cluster '%s' has no writable server: writes wait for one", cluster.name.c_str());
  }
}

}  // namespace myrelay
