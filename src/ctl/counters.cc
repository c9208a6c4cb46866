// myrelayctl stats and metrics: every counter of the segment, from one list (see ctl.h).
#include "ctl/ctl.h"

#include <map>

#include <cstdlib>

namespace myrelay::ctl {

// ---------------------------------------------------------------- counters

size_t counter_index(std::string_view key) {
  for (size_t c = 0; c < kNumCounters; ++c)
    if (key == kCounters[c].key) return c;
  abort();  // a typo in this file
}

Stats read_stats(const ShmTable& t) {
  Stats s;
  for (uint32_t i = 0; i < t.worker_count(); ++i) {
    const shm::WorkerInfo* w = t.worker(i);
    WorkerStats ws;
    ws.index = w->index;
    ws.tid = w->tid.load(std::memory_order_relaxed);
    for (size_t c = 0; c < kNumCounters; ++c) {
      ws.values[c] = (w->counters.*kCounters[c].field).load(std::memory_order_relaxed);
      s.total[c] += ws.values[c];
    }
    s.workers.push_back(ws);
  }
  s.refused = t.header()->connections_refused.load(std::memory_order_relaxed);
  s.in_use = t.header()->sessions_in_use.load(std::memory_order_relaxed);
  return s;
}

const char* daemon_state_name(uint32_t st) {
  switch (shm::DaemonState(st)) {
    case shm::DaemonState::Starting: return "starting";
    case shm::DaemonState::Running: return "running";
    case shm::DaemonState::Stopping: return "stopping";
  }
  return "unknown";
}

std::string duration_text(uint64_t secs) {
  char buf[64];
  if (secs >= 86400)
    snprintf(buf, sizeof buf, "%llud %02llu:%02llu:%02llu", (unsigned long long)(secs / 86400),
             (unsigned long long)(secs / 3600 % 24), (unsigned long long)(secs / 60 % 60),
             (unsigned long long)(secs % 60));
  else
    snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", (unsigned long long)(secs / 3600),
             (unsigned long long)(secs / 60 % 60), (unsigned long long)(secs % 60));
  return buf;
}

uint64_t uptime_s(const shm::Header& h) {
  uint64_t now = uint64_t(time(nullptr));
  return now > h.start_time ? now - h.start_time : 0;
}

int cmd_stats(const Options& o, const ShmTable& t) {
  const shm::Header& h = *t.header();
  Stats s = read_stats(t);
  const uint32_t state = h.state.load(std::memory_order_relaxed);
  if (o.json) {
    Json j;
    j.begin_object().key("daemon").begin_object();
    j.key("pid").num_i(h.pid).key("version").str(get_field(h.version)).key("listen").str(get_field(h.listen));
    j.key("proxy_id").num_i(h.proxy_id).key("state").str(daemon_state_name(state));
    j.key("start_time").num(h.start_time).key("uptime_s").num(uptime_s(h));
    j.key("layout_version").num(h.layout_version).key("workers").num(h.worker_count);
    j.key("session_slots").num(h.slot_count).end_object();
    j.key("global").begin_object();
    j.key("sessions_in_use").num(s.in_use).key("connections_refused").num(s.refused);
    for (size_t c = 0; c < kNumCounters; ++c) j.key(kCounters[c].key).num(s.total[c]);
    j.end_object().key("workers").begin_array();
    for (const auto& w : s.workers) {
      j.begin_object().key("worker").num_i(w.index).key("tid").num_i(w.tid);
      for (size_t c = 0; c < kNumCounters; ++c) j.key(kCounters[c].key).num(w.values[c]);
      j.end_object();
    }
    j.end_array().end_object();
    print_json(j);
    return kOk;
  }
  size_t w;
  printf("myrelayd %s, pid %d, %s, listening on %s, proxy_id %d, up %s\n",
         printable(get_field(h.version), w).c_str(), h.pid, daemon_state_name(state),
         printable(get_field(h.listen), w).c_str(), h.proxy_id, duration_text(uptime_s(h)).c_str());
  printf("sessions in use: %llu of %u slots; connections refused (over max_connections): %llu\n",
         (unsigned long long)s.in_use, h.slot_count, (unsigned long long)s.refused);
  Table table;
  table.columns = {"worker", "tid"};
  table.numeric = {true, true};
  for (const auto& c : kCounters) {
    table.columns.push_back(c.label);
    table.numeric.push_back(true);
  }
  for (const auto& ws : s.workers) {
    Row r = {std::to_string(ws.index), std::to_string(ws.tid)};
    for (size_t c = 0; c < kNumCounters; ++c) r.push_back(std::to_string(ws.values[c]));
    table.rows.push_back(r);
  }
  Row total = {std::string("total"), std::string("")};
  for (size_t c = 0; c < kNumCounters; ++c) total.push_back(std::to_string(s.total[c]));
  table.rows.push_back(total);
  print_table(stdout, table);
  return kOk;
}

// ---------------------------------------------------------------- metrics

// Prometheus text format 0.0.4: label values escape \ " and newline.
std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void family(std::string& out, const char* name, const char* help, bool gauge) {
  out += std::string("# HELP ") + name + " " + help + "\n";
  out += std::string("# TYPE ") + name + (gauge ? " gauge\n" : " counter\n");
}

void sample(std::string& out, const std::string& name, const std::string& labels, uint64_t v) {
  out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
}

std::string down_metrics_text() {
  std::string out;
  family(out, "myrelay_up", "Whether myrelayd is running and its session table readable.", true);
  sample(out, "myrelay_up", "", 0);
  return out;
}

void print_down_metric() { fputs(down_metrics_text().c_str(), stdout); }

// Statement latency per cluster: every worker's histograms of the cluster's
// servers summed, as a Prometheus histogram (cumulative buckets, seconds).
void latency_histograms(std::string& out, const ShmTable& t) {
  struct Sum {
    uint64_t buckets[shm::kLatencyBuckets] = {};
    uint64_t count = 0, sum_us = 0;
  };
  std::map<std::string, Sum> clusters;
  for (const auto& v : t.servers()) {
    if (v.rec.in_use != shm::kServerConfigured || v.index >= shm::kMaxServers) continue;
    Sum& s = clusters[get_field(v.rec.cluster)];
    for (uint32_t w = 0; w < t.header()->worker_count; ++w) {
      const shm::LatencyHistogram& h = t.worker(w)->latency[v.index];
      for (size_t b = 0; b < shm::kLatencyBuckets; ++b) s.buckets[b] += h.buckets[b].load(std::memory_order_relaxed);
      s.count += h.count.load(std::memory_order_relaxed);
      s.sum_us += h.sum_us.load(std::memory_order_relaxed);
    }
  }
  const char* name = "myrelay_statement_duration_seconds";
  out += std::string("# HELP ") + name +
         " Statements (COM_QUERY, COM_STMT_EXECUTE) from their arrival to the end of their response, per cluster.\n";
  out += std::string("# TYPE ") + name + " histogram\n";
  char num[64];
  for (const auto& [cluster, s] : clusters) {
    const std::string c = "cluster=\"" + label_value(cluster) + "\"";
    uint64_t cumulative = 0;
    for (size_t b = 0; b < shm::kLatencyBuckets; ++b) {
      cumulative += s.buckets[b];
      if (b + 1 < shm::kLatencyBuckets)
        snprintf(num, sizeof num, "%g", double(shm::kLatencyBoundsUs[b]) / 1e6);
      else
        snprintf(num, sizeof num, "+Inf");
      out += std::string(name) + "_bucket{" + c + ",le=\"" + num + "\"} " + std::to_string(cumulative) + "\n";
    }
    snprintf(num, sizeof num, "%.6f", double(s.sum_us) / 1e6);
    out += std::string(name) + "_sum{" + c + "} " + num + "\n";
    out += std::string(name) + "_count{" + c + "} " + std::to_string(s.count) + "\n";
  }
}

// Sessions by state (SHOW PROXYSESSION's state column), every worker's.
void sessions_by_state(std::string& out, const ShmTable& t) {
  uint64_t by_state[5] = {};
  for_each_session(t, [&](uint32_t, const shm::SessionRecord& r) {
    if (r.state < 5) ++by_state[r.state];
  });
  family(out, "myrelay_sessions", "Client sessions by state.", true);
  for (uint32_t st = 0; st < 5; ++st)
    sample(out, "myrelay_sessions", std::string("state=\"") + view::client_state_name(st) + "\"", by_state[st]);
}

int cmd_metrics(const Options&, const ShmTable& t) {
  fputs(metrics_text(t).c_str(), stdout);
  return kOk;
}

std::string metrics_text(const ShmTable& t) {
  const shm::Header& h = *t.header();
  Stats s = read_stats(t);
  std::string out;
  family(out, "myrelay_up", "Whether myrelayd is running and its session table readable.", true);
  sample(out, "myrelay_up", "", 1);
  family(out, "myrelay_info", "The running myrelayd: version, pid, proxy_id, listen address.", true);
  const std::string info = "version=\"" + label_value(get_field(h.version)) + "\",pid=\"" +
                           std::to_string(h.pid) + "\",proxy_id=\"" + std::to_string(h.proxy_id) +
                           "\",listen=\"" + label_value(get_field(h.listen)) + "\",layout_version=\"" +
                           std::to_string(h.layout_version) + "\"";
  sample(out, "myrelay_info", info, 1);
  family(out, "myrelay_start_time_seconds", "When myrelayd started, in seconds since the Unix epoch.", true);
  sample(out, "myrelay_start_time_seconds", "", h.start_time);
  family(out, "myrelay_workers", "Worker threads.", true);
  sample(out, "myrelay_workers", "", h.worker_count);
  family(out, "myrelay_session_slots", "Session slots (proxy.max_connections).", true);
  sample(out, "myrelay_session_slots", "", h.slot_count);
  family(out, "myrelay_sessions_in_use", "Session slots in use.", true);
  sample(out, "myrelay_sessions_in_use", "", s.in_use);
  family(out, "myrelay_connections_refused_total", "Connections refused over proxy.max_connections.", false);
  sample(out, "myrelay_connections_refused_total", "", s.refused);
  for (size_t c = 0; c < kNumCounters; ++c) {
    family(out, kCounters[c].metric, kCounters[c].help, kCounters[c].gauge);
    for (const auto& w : s.workers)
      sample(out, kCounters[c].metric, "worker=\"" + std::to_string(w.index) + "\"", w.values[c]);
  }
  // The kill log's entries by reason, summed over the workers.
  family(out, "myrelay_kills_by_reason_total",
         "Kill log entries by reason: session ends that were not the client's own quit, and stopped statements.",
         false);
  for (size_t r = 1; r < shm::kKillReasonCount; ++r) {
    uint64_t n = 0;
    for (uint32_t w = 0; w < h.worker_count; ++w)
      n += t.worker(w)->counters.kills_by_reason[r].load(std::memory_order_relaxed);
    sample(out, "myrelay_kills_by_reason_total", std::string("reason=\"") + view::kill_reason_name(uint8_t(r)) + "\"", n);
  }
  // Per backend server: what the health checker found.
  auto servers = t.servers();
  struct Gauge {
    const char* name;
    const char* help;
    bool gauge;
    uint64_t (*value)(const ShmTable::ServerView&);
  };
  static const Gauge kServerGauges[] = {
      {"myrelay_server_up", "Whether the server takes new server sessions (not down).", true,
       [](const ShmTable::ServerView& v) { return uint64_t((v.routing & shm::kRouteUp) ? 1 : 0); }},
      {"myrelay_server_writable", "Whether writes go to the server (read_only=0 as last checked).", true,
       [](const ShmTable::ServerView& v) { return uint64_t((v.routing & shm::kRouteWritable) ? 1 : 0); }},
      {"myrelay_server_readable", "Whether replica reads go to the server (up, replicating, lag within limit).", true,
       [](const ShmTable::ServerView& v) { return uint64_t((v.routing & shm::kRouteReadable) ? 1 : 0); }},
      {"myrelay_server_lag_seconds", "Replication lag as last checked (absent: NULL or not a replica).", true,
       nullptr},
      {"myrelay_server_sessions", "Server sessions open to the server, every worker's.", true,
       [](const ShmTable::ServerView& v) { return uint64_t(v.server_sessions < 0 ? 0 : v.server_sessions); }},
      {"myrelay_server_sessions_in_use", "Of them, held by client sessions (not idle in a shared set).", true,
       [](const ShmTable::ServerView& v) {
         return uint64_t(v.server_sessions > v.shared_idle ? v.server_sessions - v.shared_idle : 0);
       }},
      {"myrelay_server_shared_idle", "Of them, idle in the workers' shared sets (multiplexing).", true,
       [](const ShmTable::ServerView& v) { return uint64_t(v.shared_idle < 0 ? 0 : v.shared_idle); }},
      {"myrelay_server_waiting", "Statements and logins waiting for a connection under max_server_connections.",
       true, [](const ShmTable::ServerView& v) { return uint64_t(v.waiting < 0 ? 0 : v.waiting); }},
      {"myrelay_server_consecutive_failures", "Health checks failed in a row.", true,
       [](const ShmTable::ServerView& v) { return uint64_t(v.rec.consecutive_failures); }},
      {"myrelay_server_checks_total", "Health checks run.", false,
       [](const ShmTable::ServerView& v) { return v.rec.checks; }},
      {"myrelay_server_failed_checks_total", "Health checks that failed.", false,
       [](const ShmTable::ServerView& v) { return v.rec.failed_checks; }},
  };
  for (const Gauge& g : kServerGauges) {
    family(out, g.name, g.help, g.gauge);
    for (const auto& v : servers) {
      if (v.rec.in_use != shm::kServerConfigured) continue;
      std::string labels = "cluster=\"" + label_value(get_field(v.rec.cluster)) + "\",server=\"" +
                           label_value(get_field(v.rec.address)) + "\",role=\"" +
                           (v.rec.role == 0 ? "primary" : "replica") + "\"";
      if (!g.value) {
        if (v.rec.lag_s >= 0) sample(out, g.name, labels, uint64_t(v.rec.lag_s));
        continue;
      }
      sample(out, g.name, labels, g.value(v));
    }
  }
  sessions_by_state(out, t);
  latency_histograms(out, t);
  return out;
}

// ---------------------------------------------------------------- servers

// The backend servers' health, as SHOW PROXYCONGESTION prints it.
int cmd_servers(const Options& o, const ShmTable& t) {
  const auto& cols = view::congestion_columns();
  Table table;
  table.columns = cols;
  for (size_t c = 0; c < cols.size(); ++c) table.numeric.push_back(view::congestion_column_is_numeric(c));
  for (const auto& v : t.servers()) {
    if (v.rec.in_use != shm::kServerConfigured) continue;
    if (o.cluster && get_field(v.rec.cluster) != *o.cluster) continue;
    table.rows.push_back(view::congestion_row(v.rec, v.server_sessions, v.shared_idle, v.waiting));
  }
  if (!o.json) {
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  Json j;
  j.begin_object().key("servers");
  json_rows(j, table);
  j.end_object();
  print_json(j);
  return kOk;
}

// ---------------------------------------------------------------- kills

// The kill log, newest first, as SHOW PROXYKILLS prints it.
int cmd_kills(const Options& o, const ShmTable& t) {
  Table table;
  table.columns = view::kill_columns();
  for (size_t c = 0; c < table.columns.size(); ++c) table.numeric.push_back(view::kill_column_is_numeric(c));
  auto kills = t.recent_kills(o.limit ? size_t(o.limit) : SIZE_MAX, [&](const shm::KillRecord& r) {
    return (!o.user || get_field(r.user) == *o.user) && (!o.tenant || get_field(r.tenant) == *o.tenant);
  });
  for (const auto& r : kills) table.rows.push_back(view::kill_row(r));
  if (!o.json) {
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  table.numeric[2] = false;  // proxy_sessid stays a string: it is wider than 2^53
  Json j;
  j.begin_object().key("kill_log_size").num_i(t.header()->kill_count).key("kills");
  json_rows(j, table);
  j.end_object();
  print_json(j);
  return kOk;
}

}  // namespace myrelay::ctl
