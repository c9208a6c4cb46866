// myrelayctl, the out-of-process admin helper (DESIGN section 6): what its
// parts share.  It maps the daemon's session table read-only and copies
// records with the changecount protocol of shm_table.h, and asks a worker to
// kill a session by writing one fixed-size record to that worker's control
// pipe, so it never takes a lock the daemon could wait for.
//
//   main.cc          options, the command table
//   output.cc        tables as the mysql client draws them, JSON
//   segment.cc       finding the segment, reading and resolving sessions
//   cmd_sessions.cc  sessions, session
//   cmd_kill.cc      kill
//   counters.cc      stats, metrics
//   top.cc           top
//   cmd_fleet.cc     --fleet sessions, --fleet kill
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/session_view.h"
#include "control/shm_table.h"
#include "myrelay/shm_layout.h"

namespace myrelay::ctl {

enum Exit : int {
  kOk = 0,
  kUsage = 1,        // bad arguments or unreadable configuration
  kNotRunning = 2,   // no segment: the daemon is not running
  kStale = 3,        // a segment whose daemon is dead
  kLayout = 4,       // a segment of another layout version (or not myrelay's)
  kPermission = 5,   // may not read the segment, the config or write the pipe
  kBadId = 6,        // unknown or ambiguous id
  kNotConfirmed = 7, // the kill was sent but did not happen in time
  kFailure = 8,      // anything else (e.g. the worker's pipe is full)
};

const char* const kProg = "myrelayctl";


struct Options {
  std::string config_path;
  std::string shm_name;
  bool json = false;
  std::optional<std::string> user, tenant, cluster;
  std::optional<uint32_t> state;
  std::optional<int32_t> worker;
  std::optional<std::string> like;
  bool variables = false;  // session ID --variables
  bool full = false;       // sessions --full
  bool fleet = false;      // --fleet: every proxy of the fleet, over the peer ports
  std::string listen;      // metrics --listen HOST:PORT
  std::optional<std::string> where;  // kill --where COND
  bool dry_run = false;               // kill --where ... --dry-run
  bool when_idle = false;             // kill ... --when-idle
  uint32_t idle_timeout_s = 0;        // kill ... --when-idle --idle-timeout S
  uint64_t limit = 0;                 // kills --limit N (0: all)
  double timeout_s = 2.0;
  double interval_s = 1.0;
  long count = -1;  // -1: unbounded
  std::vector<std::string> args;  // the command and its arguments
};


// ---- main.cc
bool parse_u64(const std::string& s, uint64_t& out);
int bad_usage(const std::string& msg);

// ---- output.cc
size_t utf8_len(std::string_view s, size_t i);
bool plain_ascii(std::string_view s);
// Text as it may safely reach a terminal (see output.cc); `width` gets the
// number of characters.
std::string printable(std::string_view s, size_t& width);
using Cell = std::optional<std::string>;  // nullopt prints as NULL
using Row = std::vector<Cell>;

// A result table drawn as the mysql client draws one.
struct Table {
  std::vector<std::string> columns;
  std::vector<bool> numeric;  // right-aligned
  std::vector<Row> rows;
};

// A cell as printed: a view of the cell itself when it is plain ASCII (nearly
// always), else its printable() form in `scratch`.
void print_table(FILE* out, const Table& t);
void print_row_count(size_t n);
class Json;
// A table's rows as a JSON array of objects: numeric columns as numbers,
// NULL as null.
void json_rows(Json& j, const Table& t);
class Json {
 public:
  Json& begin_object() { return open('{'); }
  Json& end_object() { return close('}'); }
  Json& begin_array() { return open('['); }
  Json& end_array() { return close(']'); }
  Json& key(std::string_view k) {
    comma();
    quote(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  Json& str(std::string_view v) {
    comma();
    quote(v);
    return *this;
  }
  Json& num(uint64_t v) {
    comma();
    out_ += std::to_string(v);
    return *this;
  }
  Json& num_i(int64_t v) {
    comma();
    out_ += std::to_string(v);
    return *this;
  }
  Json& boolean(bool v) {
    comma();
    out_ += v ? "true" : "false";
    return *this;
  }
  Json& null() {
    comma();
    out_ += "null";
    return *this;
  }
  const std::string& text() const { return out_; }

 private:
  Json& open(char c) {
    comma();
    out_ += c;
    first_.push_back(true);
    return *this;
  }
  Json& close(char c) {
    out_ += c;
    first_.pop_back();
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void quote(std::string_view s) {
    out_ += '"';
    for (size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      size_t n = utf8_len(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
        ++i;
        continue;
      }
      if (n > 1) {
        out_.append(s.substr(i, n));
        i += n;
        continue;
      }
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += char(c);
          }
      }
      ++i;
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void print_json(const Json& j);
// A numeric cell of session_row() or session_attributes() as a number.
uint64_t to_u64(const std::string& s);

// ---- segment.cc
int open_table(const Options& o, std::unique_ptr<ShmTable>& table);
bool daemon_alive(const ShmTable& t);
struct Found {
  uint32_t slot;
  shm::SessionRecord rec;
};

// Calls fn(slot, record) for every session in use, in slot order, with each
// record copied consistently into one reused buffer.
template <typename Fn>
void for_each_session(const ShmTable& t, Fn fn) {
  shm::SessionRecord rec;
  for (uint32_t i = 0; i < t.slot_count(); ++i) {
    const shm::Slot* s = t.slot(i);
    if (!s->occupied.load(std::memory_order_relaxed)) continue;
    if (ShmTable::read_record(s, rec) && rec.in_use) fn(i, rec);
  }
}

// Every session in use, in Id order as SHOW PROXYSESSION lists them.  The
std::vector<Found> scan(const ShmTable& t);
bool selected(const Options& o, const shm::SessionRecord& r);
uint64_t operand(const Options& o, size_t i);
int resolve(const ShmTable& t, uint64_t id, Found& out);
void sleep_ms(double ms);
double elapsed_ms(const timespec& since);

// ---- counters.cc
struct CounterDef {
  const char* key;     // JSON key
  const char* label;   // table column
  const char* metric;  // Prometheus name
  const char* help;
  bool gauge;
  std::atomic<uint64_t> shm::WorkerCounters::*field;
};

inline const CounterDef kCounters[] = {
    {"connections_accepted", "accepted", "myrelay_connections_accepted_total",
     "Client connections accepted.", false, &shm::WorkerCounters::connections_accepted},
    {"sessions_open", "open", "myrelay_sessions_open", "Client sessions open now.", true,
     &shm::WorkerCounters::sessions_open},
    {"logins_failed", "login_fail", "myrelay_logins_failed_total",
     "Client logins refused (wrong password, unknown user, ...).", false,
     &shm::WorkerCounters::logins_failed},
    {"queries", "queries", "myrelay_queries_total", "Commands received from clients.", false,
     &shm::WorkerCounters::queries},
    {"bytes_in", "bytes_in", "myrelay_client_received_bytes_total", "Bytes received from clients.",
     false, &shm::WorkerCounters::bytes_from_clients},
    {"bytes_out", "bytes_out", "myrelay_client_sent_bytes_total", "Bytes sent to clients.", false,
     &shm::WorkerCounters::bytes_to_clients},
    {"kills", "kills", "myrelay_kills_total", "Sessions and server sessions ended by a kill.", false,
     &shm::WorkerCounters::kills},
    {"errors", "errors", "myrelay_errors_total", "Protocol errors and lost backends.", false,
     &shm::WorkerCounters::errors},
    {"backend_connects", "be_connects", "myrelay_backend_connects_total",
     "Connections opened to backend servers.", false, &shm::WorkerCounters::backend_connects},
    {"backend_connect_failures", "be_failures", "myrelay_backend_connect_failures_total",
     "Connections to backend servers that failed.", false,
     &shm::WorkerCounters::backend_connect_failures},
    {"backend_reuses", "be_reuses", "myrelay_backend_reuses_total",
     "Logins served by a pooled server session instead of a new backend connection.", false,
     &shm::WorkerCounters::backend_reuses},
    {"pool_idle", "pool_idle", "myrelay_server_pool_idle", "Server sessions idle in the pool now.", true,
     &shm::WorkerCounters::pool_idle},
    {"control_requests", "ctl_requests", "myrelay_control_requests_total",
     "Requests read from the worker's control pipe.", false, &shm::WorkerCounters::control_requests},
    {"control_garbage_bytes", "ctl_garbage", "myrelay_control_garbage_bytes_total",
     "Bytes of garbage dropped from the worker's control pipe.", false,
     &shm::WorkerCounters::control_garbage},
    {"reads_to_replicas", "replica_reads", "myrelay_replica_reads_total",
     "Statements the read/write split sent to a replica.", false, &shm::WorkerCounters::reads_to_replicas},
    {"causal_waits", "causal_waits", "myrelay_causal_waits_total",
     "Causal reads that first waited (MASTER_GTID_WAIT) for the session's last write.", false,
     &shm::WorkerCounters::causal_waits},
    {"causal_read_fallbacks", "causal_fallbk", "myrelay_causal_read_fallbacks_total",
     "Causal reads that ran on the primary because the replica did not catch up in time.", false,
     &shm::WorkerCounters::causal_read_fallbacks},
    {"shared_takes", "shared_takes", "myrelay_shared_takes_total",
     "Commands and logins of multiplexed sessions that took a connection from the shared set.", false,
     &shm::WorkerCounters::shared_takes},
    {"shared_idle", "shared_idle", "myrelay_shared_idle", "Backend connections idle in the shared sets now.", true,
     &shm::WorkerCounters::shared_idle},
    {"queue_waits", "queue_waits", "myrelay_queue_waits_total",
     "Commands and logins that waited for a backend connection under max_server_connections.", false,
     &shm::WorkerCounters::queue_waits},
    {"queue_timeouts", "queue_tmout", "myrelay_queue_timeouts_total",
     "Commands and logins that got no backend connection within queue_timeout_ms (ERROR 1040).", false,
     &shm::WorkerCounters::queue_timeouts},
};
constexpr size_t kNumCounters = sizeof(kCounters) / sizeof(kCounters[0]);


struct WorkerStats {
  int32_t index;
  int32_t tid;
  uint64_t values[kNumCounters];
};

struct Stats {
  std::vector<WorkerStats> workers;
  uint64_t total[kNumCounters] = {};
  uint64_t refused = 0;
  uint64_t in_use = 0;
};

Stats read_stats(const ShmTable& t);
size_t counter_index(std::string_view key);
const char* daemon_state_name(uint32_t st);
std::string duration_text(uint64_t secs);
uint64_t uptime_s(const shm::Header& h);
void print_down_metric();
// The Prometheus text of a running daemon's segment, and of a daemon that is down.
std::string metrics_text(const ShmTable& t);
std::string down_metrics_text();
// metrics --listen HOST:PORT: serves /metrics over HTTP (metrics_http.cc).
int serve_metrics(const Options& o);

// The commands.
int cmd_sessions(const Options& o, const ShmTable& t);
int cmd_session(const Options& o, const ShmTable& t);
int cmd_kill(const Options& o, const ShmTable& t);
int cmd_stats(const Options& o, const ShmTable& t);
int cmd_metrics(const Options& o, const ShmTable& t);
int cmd_top(const Options& o, const ShmTable& t);
int cmd_servers(const Options& o, const ShmTable& t);
int cmd_kills(const Options& o, const ShmTable& t);
// sessions and kill over every proxy of the fleet (needs the configuration).
int cmd_fleet(const Options& o);

}  // namespace myrelay::ctl
