// One health checker per proxy (DESIGN section 4), on the main thread's event
// loop, never in a worker: every monitor.interval_ms it checks each server of
// each cluster that has a monitor account over a connection of its own
// (logged in as that account, kept open between checks): `SELECT
// @@read_only` and the replica's lag (SHOW ALL SLAVES STATUS, or SHOW SLAVE
// STATUS on servers without it).  What it finds goes into the health table,
// which the workers route by.  Clusters without a monitor account are not
// checked: their servers keep their configured roles.
#pragma once

#include <event2/event.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "myrelay/shm_layout.h"
#include "routing/server_health.h"
#include "session/server_session.h"
#include "session/session_host.h"

namespace myrelay {

class BackendFactsTable;

class HealthChecker : public BackendHost {
 public:
  HealthChecker(event_base* base, std::function<std::shared_ptr<const Config>()> config, ServerHealthTable& table,
                BackendFactsTable& facts);
  ~HealthChecker() override;
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts (or, after a reload, re-plans) the checks of the configuration
  // in force; servers no longer configured stop being checked.
  void reconfigure();

  // BackendHost.
  event_base* base() override { return base_; }
  int64_t loop_time_us() override;
  std::shared_ptr<const Config> config() override { return config_(); }
  shm::WorkerCounters& counters() override { return counters_; }
  uint64_t next_ss_id() override { return ++ss_ids_; }
  void note_backend_handshake(const std::string& cluster, const proto::Handshake& hs) override;

 private:
  class Probe;
  struct ClusterTimer {
    HealthChecker* checker;
    std::string cluster;
    event* timer = nullptr;
  };
  static void on_tick(evutil_socket_t, short, void* arg);
  void tick(const std::string& cluster);

  event_base* base_;
  std::function<std::shared_ptr<const Config>()> config_;
  ServerHealthTable& table_;
  BackendFactsTable& facts_;
  shm::WorkerCounters counters_{};  // its connections' counters, not shown anywhere
  uint64_t ss_ids_ = 0;
  std::map<std::string, std::unique_ptr<Probe>> probes_;          // by "cluster\naddress"
  std::map<std::string, std::unique_ptr<ClusterTimer>> timers_;   // by cluster
};

}  // namespace myrelay
