// Session records as people read them (see session_view.h).
#include "control/session_view.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

#include "control/shm_table.h"
#include "routing/server_health.h"

namespace myrelay::view {

using namespace shm;

// The numeric values are ClientSession::State / ServerSession::State.
const char* client_state_name(uint32_t state) {
  static const char* names[] = {"MCS_INIT", "MCS_ACTIVE_READER", "MCS_KEEP_ALIVE",
                                "MCS_HALF_CLOSED", "MCS_CLOSED"};
  return state < 5 ? names[state] : "MCS_UNKNOWN";
}

const char* server_state_name(uint32_t state) {
  static const char* names[] = {"MSS_INIT", "MSS_ACTIVE", "MSS_KA_CLIENT_SLAVE", "MSS_KA_SHARED",
                                "MSS_CLOSED"};
  return state < 5 ? names[state] : "MSS_UNKNOWN";
}

const std::vector<std::string>& session_columns() {
  static const std::vector<std::string> cols = {
      "proxy_sessid", "Id",    "Cluster",           "Tenant", "User", "Host",      "db",
      "trans_count",  "svr_session_count", "state", "tid",    "pid",  "using_ssl"};
  return cols;
}

bool session_column_is_numeric(size_t i) {
  switch (i) {
    case 0: case 1: case 7: case 8: case 10: case 11: case 12:
      return true;
    default:
      return false;
  }
}

std::vector<std::optional<std::string>> session_row(const SessionRecord& r, int pid) {
  std::vector<std::optional<std::string>> row;
  row.push_back(std::to_string(r.proxy_sessid));
  row.push_back(std::to_string(r.cs_id));
  row.push_back(get_field(r.cluster));
  row.push_back(get_field(r.tenant));
  row.push_back(get_field(r.user));
  row.push_back(get_field(r.host_ip) + ":" + std::to_string(r.host_port));
  if (r.has_db)
    row.push_back(get_field(r.db));
  else
    row.push_back(std::nullopt);
  row.push_back(std::to_string(r.trans_count));
  row.push_back(std::to_string(r.svr_session_count));
  row.push_back(std::string(client_state_name(r.state)));
  row.push_back(std::to_string(r.tid));
  row.push_back(std::to_string(pid));
  row.push_back(std::to_string(unsigned(r.using_ssl)));
  return row;
}

uint32_t reasons_of(const SessionRecord& r) { return r.not_restorable | (r.in_trans ? uint32_t(kNrTransaction) : 0u); }

std::string pinned_because(uint32_t pinned) {
  std::string text = not_restorable_because(pinned & ~shm::kPinCharacteristics);
  if (pinned & shm::kPinCharacteristics) text += std::string(text.empty() ? "" : ", ") + "pending SET TRANSACTION";
  return text;
}

std::string not_restorable_because(uint32_t reasons) {
  std::string out;
  for (const auto& r : kNotRestorableNames)
    if (reasons & r.bit) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

std::vector<Variable> session_variables(std::string_view area) {
  std::vector<Variable> out;
  size_t pos = 0;
  while (pos < area.size()) {
    char kind = area[pos++];
    size_t name_end = area.find('\0', pos);
    if (name_end == std::string_view::npos) break;
    size_t value_end = area.find('\0', name_end + 1);
    if (value_end == std::string_view::npos) break;
    Variable v;
    v.name = std::string(area.substr(pos, name_end - pos));
    v.value = std::string(area.substr(name_end + 1, value_end - name_end - 1));
    switch (kind) {
      case 'v': v.info = "system variable"; break;
      case 's': v.info = "schema"; break;
      case 'c': v.info = "next transaction"; break;
      default: v.info = "?"; break;
    }
    out.push_back(std::move(v));
    pos = value_end + 1;
  }
  return out;
}

const char* kill_reason_name(uint8_t reason) {
  static const char* const names[kKillReasonCount] = {
      "unknown",        "kill",        "kill_when_idle", "kill_when_idle_timeout", "kill_server_session",
      "kill_query",     "client_idle_timeout", "idle_in_transaction_timeout", "statement_timeout",
      "shutdown",       "backend_lost", "state_lost", "forwarded"};
  return reason < kKillReasonCount ? names[reason] : "unknown";
}

const char* backend_stop_name(uint8_t stop) {
  static const char* const names[] = {"none running", "kill sent", "confirmed stopped",
                                      "stopped by kill connection", "not confirmed"};
  return stop < sizeof(names) / sizeof(names[0]) ? names[stop] : "unknown";
}

const std::vector<std::string>& kill_columns() {
  static const std::vector<std::string> cols = {"time",      "Id",           "proxy_sessid", "User",     "Tenant",
                                                "Host",      "reason",       "by",           "by_cs_id", "by_pid",
                                                "statement", "statement_ms", "trans_ms",     "backend"};
  return cols;
}

bool kill_column_is_numeric(size_t i) { return i == 1 || i == 2 || i == 8 || i == 9 || i == 11 || i == 12; }

std::vector<std::optional<std::string>> kill_row(const KillRecord& r) {
  char when[40];
  time_t secs = time_t(r.time_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03d", int(r.time_us / 1000 % 1000));
  auto opt_num = [](int64_t v, bool present) {
    return present ? std::optional<std::string>(std::to_string(v)) : std::nullopt;
  };
  return {std::string(when),
          std::to_string(r.cs_id),
          std::to_string(r.proxy_sessid),
          get_field(r.user),
          get_field(r.tenant),
          get_field(r.host_ip) + ":" + std::to_string(r.host_port),
          std::string(kill_reason_name(r.reason)),
          get_field(r.by),
          opt_num(r.by_cs_id, r.by_cs_id != 0),
          opt_num(r.by_pid, r.by_pid != 0),
          r.statement_ms >= 0 ? std::optional<std::string>(get_field(r.statement)) : std::nullopt,
          opt_num(r.statement_ms, r.statement_ms >= 0),
          opt_num(r.trans_ms, r.trans_ms >= 0),
          std::string(backend_stop_name(r.backend))};
}

int64_t now_us() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
}

static std::string seconds_since(int64_t then_us, int64_t now) {
  if (then_us <= 0) return "0";
  int64_t d = now - then_us;
  if (d < 0) d = 0;
  return std::to_string(d / 1000000);
}

std::vector<Attribute> session_attributes(const SessionRecord& r, int pid, int64_t now, const StatementInfo* st) {
  std::vector<Attribute> a;
  const std::string cs = "client session";
  auto add = [&](const char* name, std::optional<std::string> v, const std::string& info) {
    a.push_back(Attribute{name, std::move(v), info});
  };
  add("proxy_sessid", std::to_string(r.proxy_sessid), cs);
  add("cs_id", std::to_string(r.cs_id), cs);
  add("cluster", get_field(r.cluster), cs);
  add("tenant", get_field(r.tenant), cs);
  add("user", get_field(r.user), cs);
  add("host_ip", get_field(r.host_ip), cs);
  add("host_port", std::to_string(r.host_port), cs);
  add("db", r.has_db ? std::optional<std::string>(get_field(r.db)) : std::nullopt, cs);
  add("total_trans_cnt", std::to_string(r.trans_count), cs);
  add("svr_session_cnt", std::to_string(r.svr_session_count), cs);
  add("active", r.state == 1 ? "true" : "false", cs);
  add("read_state", std::string(client_state_name(r.state)), cs);
  add("tid", std::to_string(r.tid), cs);
  add("pid", std::to_string(pid), cs);
  add("worker", std::to_string(r.worker), cs);
  add("in_trans", r.in_trans ? "true" : "false", cs);
  add("privileged", r.privileged ? "true" : "false", cs);
  add("using_ssl", std::to_string(unsigned(r.using_ssl)), cs);
  add("tls_version", r.using_ssl ? std::optional<std::string>(get_field(r.tls_version)) : std::nullopt, cs);
  add("tls_cipher", r.using_ssl ? std::optional<std::string>(get_field(r.tls_cipher)) : std::nullopt, cs);
  add("command", get_field(r.command), cs);
  add("queries", std::to_string(r.queries), cs);
  add("bytes_in", std::to_string(r.bytes_in), cs);
  add("bytes_out", std::to_string(r.bytes_out), cs);
  add("connected_s", seconds_since(r.created_us, now), cs);
  add("idle_s", r.state == 2 ? seconds_since(r.last_active_us, now) : "0", cs);
  add("trans_s", r.in_trans ? seconds_since(r.trans_started_us, now) : "0", cs);
  add("kill_pending", r.kill_pending ? "true" : "false", cs);
  add("restorable", reasons_of(r) ? "false" : "true", cs);
  add("not_restorable_because", not_restorable_because(reasons_of(r)), cs);
  add("prepared_statements", std::to_string(r.prepared_statements), cs);
  add("last_insert_id", std::to_string(r.last_insert_id), cs);
  add("multiplexed", r.multiplexed ? "true" : "false", cs);
  add("server_session_moves", std::to_string(r.server_session_moves), cs);
  // Idle but holding its connection: why it cannot give it back.
  add("pinned_because", r.pinned ? std::optional<std::string>(pinned_because(r.pinned)) : std::nullopt, cs);
  if (st) {
    bool any = st->start_us > 0;
    int64_t until = st->end_us ? st->end_us : now;
    // Running while `active` is true; otherwise the last one.
    add("statement", any && !st->text.empty() ? std::optional<std::string>(st->text) : std::nullopt, cs);
    add("statement_time_ms",
        any ? std::optional<std::string>(std::to_string(until > st->start_us ? (until - st->start_us) / 1000 : 0))
            : std::nullopt,
        cs);
  }
  int n = 0;
  for (const auto& s : r.servers) {
    if (s.ss_id == 0) continue;
    ++n;
    std::string info = "server session " + std::to_string(n) + " (ss_id " + std::to_string(s.ss_id) + ")";
    add("ss_id", std::to_string(s.ss_id), info);
    add("server_ip", get_field(s.server_ip), info);
    add("server_port", std::to_string(s.server_port), info);
    add("role", s.role == 0 ? "primary" : "replica", info);  // as it acts now
    add("server_sessid", std::to_string(s.server_sessid), info);
    add("state", std::string(server_state_name(s.state)), info);
    add("transact_count", std::to_string(s.transact_count), info);
    add("requests", std::to_string(s.requests), info);
    add("in_sync", s.in_sync ? "true" : "false", info);
    add("connected_s", seconds_since(s.created_us, now), info);
  }
  return a;
}

const std::vector<std::string>& congestion_columns() {
  static const std::vector<std::string> kColumns = {"cluster",       "server",      "role",   "state",
                                                    "lag_s",         "last_check",  "consecutive_failures",
                                                    "server_sessions", "in_use",   "shared_idle", "waiting"};
  return kColumns;
}

bool congestion_column_is_numeric(size_t i) { return i == 4 || i >= 6; }

std::vector<std::optional<std::string>> congestion_row(const shm::ServerHealthRecord& rec, int64_t server_sessions,
                                                       int64_t shared_idle, int64_t waiting) {
  auto count = [](int64_t n) { return std::to_string(n < 0 ? 0 : n); };
  std::optional<std::string> lag, checked;
  // A lag only for a server that replicates; NULL when its replication is
  // stopped (as Seconds_Behind_Master says) or nothing was checked.
  if (rec.lag_s >= 0) lag = std::to_string(rec.lag_s);
  if (rec.last_check_us > 0) {
    time_t secs = time_t(rec.last_check_us / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03d", int(rec.last_check_us % 1000000 / 1000));
    checked = std::string(buf);
  }
  return {get_field(rec.cluster),
          get_field(rec.address),
          std::string(rec.role == 0 ? "primary" : "replica"),
          std::string(health_state_name(rec.state)),
          lag,
          checked,
          std::to_string(rec.consecutive_failures),
          count(server_sessions),
          count(server_sessions - shared_idle),
          count(shared_idle),
          count(waiting)};
}

}  // namespace myrelay::view
