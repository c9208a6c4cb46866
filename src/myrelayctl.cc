// myrelayctl: the out-of-process admin helper (DESIGN section 6).
//
// It maps the daemon's session table read-only and copies records with the
// changecount protocol of shm_table.h, and it asks a worker to kill a session
// by writing one fixed-size record to that worker's control pipe.  So it never
// takes a lock the daemon could wait for: the worst it can do to the daemon is
// use some CPU.
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "myrelay/config.h"
#include "myrelay/control_pipe.h"
#include "myrelay/ids.h"
#include "myrelay/session_view.h"
#include "myrelay/shm_layout.h"
#include "myrelay/shm_table.h"
#include "myrelay/sql_recognizer.h"

namespace myrelay::ctl {

// Exit statuses: scripts tell the failures apart by these (documented in --help).
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

void usage(FILE* out) {
  fprintf(out,
          "Usage: myrelayctl [-c FILE | -s NAME] [options] COMMAND [ARGS]\n"
          "Sees and controls the sessions of a running myrelayd from its shared-memory\n"
          "session table, without connecting through SQL.\n"
          "\n"
          "Commands:\n"
          "  sessions            every client session, as SHOW PROXYSESSION prints them\n"
          "  session ID          one session's attributes and server sessions, as\n"
          "                      SHOW PROXYSESSION ATTRIBUTE ID prints them\n"
          "  kill ID [SS_ID]     end client session ID (or only its server session SS_ID)\n"
          "                      and wait until it is gone\n"
          "  stats               per-worker and global counters\n"
          "  metrics             the counters in Prometheus text format (when the daemon\n"
          "                      is down: myrelay_up 0, and exit status 2 or 3)\n"
          "  top                 a live, refreshing table of sessions ('q' quits)\n"
          "ID is a client session Id (cs_id) or the backend connection id that\n"
          "SELECT CONNECTION_ID() returns through the proxy; one matching several\n"
          "sessions is refused.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   the daemon's configuration, for shm_name (default\n"
          "                      %s/myrelay.yaml; without it, the name \"myrelay\")\n"
          "  -s, --shm NAME      the shared-memory segment's name (proxy.shm_name)\n"
          "  -j, --json          JSON instead of tables (sessions, session, stats);\n"
          "                      proxy_sessid is a string, being wider than 2^53\n"
          "      --user U, --tenant T, --cluster C, --state S, --worker N\n"
          "                      only such sessions (sessions, top); S is a state\n"
          "                      name such as MCS_KEEP_ALIVE or KEEP_ALIVE\n"
          "      --like PATTERN  only attributes whose name matches (session; %% and _)\n"
          "      --timeout SECS  how long kill waits for the session to go (default 2)\n"
          "  -i, --interval SECS top's refresh interval (default 1)\n"
          "  -n, --count N       top: stop after N refreshes (default: until 'q' on a\n"
          "                      terminal, else until interrupted)\n"
          "  -V, --version       print the version and the shm layout version\n"
          "  -h, --help          print this help\n"
          "\n"
          "Exit status:\n"
          "  0  done (kill: the session or server session is gone)\n"
          "  1  usage error, or the configuration cannot be loaded\n"
          "  2  myrelayd is not running (no shared-memory segment)\n"
          "  3  the segment is stale: the daemon that made it is dead\n"
          "  4  the segment's layout version differs from this program's\n"
          "  5  permission denied: segment, configuration or control pipe (run as the\n"
          "     daemon's user or a member of its proxy.admin_group)\n"
          "  6  unknown or ambiguous id\n"
          "  7  the kill was requested but did not happen within --timeout\n"
          "  8  any other failure\n",
          MYRELAY_SYSCONFDIR);
}

// ---------------------------------------------------------------- options

struct Options {
  std::string config_path;
  std::string shm_name;
  bool json = false;
  std::optional<std::string> user, tenant, cluster;
  std::optional<uint32_t> state;
  std::optional<int32_t> worker;
  std::optional<std::string> like;
  double timeout_s = 2.0;
  double interval_s = 1.0;
  long count = -1;  // -1: unbounded
  std::vector<std::string> args;  // the command and its arguments
};

// Strict decimal: digits only, no sign, no overflow.
bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool parse_seconds(const std::string& s, double lo, double hi, double& out) {
  char* end = nullptr;
  errno = 0;
  double v = strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < lo || v > hi) return false;
  out = v;
  return true;
}

// A client state given as MCS_KEEP_ALIVE, keep_alive, ...
bool parse_state(const std::string& s, uint32_t& out) {
  std::string up;
  for (char c : s) up += char(toupper(static_cast<unsigned char>(c)));
  if (up.rfind("MCS_", 0) != 0) up = "MCS_" + up;
  for (uint32_t i = 0; i < 5; ++i) {
    if (up == view::client_state_name(i)) {
      out = i;
      return true;
    }
  }
  return false;
}

int bad_usage(const std::string& msg) {
  fprintf(stderr, "%s: %s\n", kProg, msg.c_str());
  fprintf(stderr, "Try '%s --help'.\n", kProg);
  return kUsage;
}

// Parses argv into `o`; returns -1 to go on, else the exit status.
int parse_options(int argc, char** argv, Options& o) {
  enum { kUser = 256, kTenant, kCluster, kState, kWorker, kLike, kTimeout };
  static const option longopts[] = {
      {"config", required_argument, nullptr, 'c'}, {"shm", required_argument, nullptr, 's'},
      {"json", no_argument, nullptr, 'j'},         {"user", required_argument, nullptr, kUser},
      {"tenant", required_argument, nullptr, kTenant},
      {"cluster", required_argument, nullptr, kCluster},
      {"state", required_argument, nullptr, kState},
      {"worker", required_argument, nullptr, kWorker},
      {"like", required_argument, nullptr, kLike},
      {"timeout", required_argument, nullptr, kTimeout},
      {"interval", required_argument, nullptr, 'i'}, {"count", required_argument, nullptr, 'n'},
      {"version", no_argument, nullptr, 'V'},      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  opterr = 0;  // our own messages
  int opt;
  uint64_t n = 0;
  while ((opt = getopt_long(argc, argv, ":c:s:ji:n:Vh", longopts, nullptr)) != -1) {
    std::string arg = optarg ? optarg : "";
    switch (opt) {
      case 'c': o.config_path = arg; break;
      case 's': o.shm_name = arg; break;
      case 'j': o.json = true; break;
      case kUser: o.user = arg; break;
      case kTenant: o.tenant = arg; break;
      case kCluster: o.cluster = arg; break;
      case kState: {
        uint32_t st;
        if (!parse_state(arg, st))
          return bad_usage("--state: unknown state '" + arg +
                           "' (MCS_INIT, MCS_ACTIVE_READER, MCS_KEEP_ALIVE, MCS_HALF_CLOSED)");
        o.state = st;
        break;
      }
      case kWorker:
        if (!parse_u64(arg, n) || n > 100000)
          return bad_usage("--worker: not a worker number: '" + arg + "'");
        o.worker = int32_t(n);
        break;
      case kLike: o.like = arg; break;
      case kTimeout:
        if (!parse_seconds(arg, 0.001, 3600, o.timeout_s))
          return bad_usage("--timeout: not a number of seconds between 0.001 and 3600: '" + arg + "'");
        break;
      case 'i':
        if (!parse_seconds(arg, 0.05, 3600, o.interval_s))
          return bad_usage("--interval: not a number of seconds between 0.05 and 3600: '" + arg + "'");
        break;
      case 'n':
        if (!parse_u64(arg, n) || n == 0 || n > 100000000)
          return bad_usage("--count: not a positive number: '" + arg + "'");
        o.count = long(n);
        break;
      case 'V':
        printf("myrelayctl %s (shared-memory layout version %u)\n", MYRELAY_VERSION, shm::kLayoutVersion);
        return kOk;
      case 'h':
        usage(stdout);
        return kOk;
      case ':':
        return bad_usage(std::string("option '") + argv[optind - 1] + "' needs an argument");
      default:
        return bad_usage(std::string("unknown option '") + argv[optind - 1] + "'");
    }
  }
  for (int i = optind; i < argc; ++i) o.args.push_back(argv[i]);
  if (!o.config_path.empty() && !o.shm_name.empty()) return bad_usage("give -c FILE or -s NAME, not both");
  if (o.args.empty()) return bad_usage("no command given");
  return -1;
}

// ---------------------------------------------------------------- text

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t utf8_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (cc & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Text as it may safely reach a terminal: names and databases come from
// clients, so control characters (C0, DEL and C1) and non-UTF-8 bytes become
// '?' rather than move the operator's cursor.  `width` gets the number of
// characters.
// Plain printable ASCII, nearly every cell: nothing to replace, one byte a
// character.
bool plain_ascii(std::string_view s) {
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

std::string printable(std::string_view s, size_t& width) {
  if (plain_ascii(s)) {
    width = s.size();
    return std::string(s);
  }
  std::string out;
  width = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool c1 = n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;
    if (n == 0 || c1 || (n == 1 && (c < 0x20 || c == 0x7f))) {
      out += '?';
      i += n ? n : 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
    ++width;
  }
  return out;
}

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
std::string_view cell_text(const Cell& cell, std::string& scratch, size_t& width) {
  if (!cell) {
    width = 4;
    return "NULL";
  }
  if (plain_ascii(*cell)) {
    width = cell->size();
    return *cell;
  }
  scratch = printable(*cell, width);
  return scratch;
}

void print_table(FILE* out, const Table& t) {
  const size_t ncol = t.columns.size();
  std::vector<std::string> head(ncol);
  std::vector<size_t> head_widths(ncol), widths(ncol);
  for (size_t c = 0; c < ncol; ++c) {
    head[c] = printable(t.columns[c], head_widths[c]);
    widths[c] = head_widths[c];
  }
  // Two passes over the rows, widths first, so no cell is copied.
  static const Cell kNull;
  auto cell_of = [](const Row& r, size_t c) -> const Cell& { return c < r.size() ? r[c] : kNull; };
  std::string scratch;
  size_t w = 0;
  for (const Row& r : t.rows)
    for (size_t c = 0; c < ncol; ++c) {
      cell_text(cell_of(r, c), scratch, w);
      widths[c] = std::max(widths[c], w);
    }
  std::string border = "+";
  for (size_t cw : widths) border.append(cw + 2, '-').append("+");
  border += "\n";
  std::string buf;
  buf.reserve(64 * 1024 + border.size());
  auto put = [&](std::string_view text, size_t width, size_t c, bool right) {
    size_t pad = widths[c] - width;
    buf += ' ';
    if (right) buf.append(pad, ' ');
    buf += text;
    if (!right) buf.append(pad, ' ');
    buf += " |";
  };
  auto flush_if_big = [&] {
    if (buf.size() < 64 * 1024) return;
    fwrite(buf.data(), 1, buf.size(), out);
    buf.clear();
  };
  // Column names are left-aligned, numbers right-aligned, as mysql does.
  buf += border;
  buf += '|';
  for (size_t c = 0; c < ncol; ++c) put(head[c], head_widths[c], c, false);
  buf += '\n';
  buf += border;
  for (const Row& r : t.rows) {
    buf += '|';
    for (size_t c = 0; c < ncol; ++c) {
      std::string_view text = cell_text(cell_of(r, c), scratch, w);
      put(text, w, c, c < t.numeric.size() && t.numeric[c]);
    }
    buf += '\n';
    flush_if_big();
  }
  buf += border;
  fwrite(buf.data(), 1, buf.size(), out);
}

void print_row_count(size_t n) {
  if (n == 0)
    puts("Empty set");
  else
    printf("%zu %s in set\n", n, n == 1 ? "row" : "rows");
}

// A small JSON writer: output is always valid JSON, whatever bytes the
// strings hold (invalid UTF-8 becomes U+FFFD).
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

void print_json(const Json& j) {
  fputs(j.text().c_str(), stdout);
  fputc('\n', stdout);
}

// A numeric cell of session_row() or session_attributes() as a number.
uint64_t to_u64(const std::string& s) { return strtoull(s.c_str(), nullptr, 10); }

// ---------------------------------------------------------------- the segment

// Finds the segment's name: -s, else shm_name from the configuration.
int segment_name(const Options& o, std::string& name) {
  if (!o.shm_name.empty()) {
    name = o.shm_name;
    return -1;
  }
  std::string path = o.config_path;
  bool explicit_path = !path.empty();
  if (!explicit_path) path = std::string(MYRELAY_SYSCONFDIR) + "/myrelay.yaml";
  // Checked first so that an unreadable file gets the permission status.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT && !explicit_path) {
      name = "myrelay";  // the configuration's default
      return -1;
    }
    fprintf(stderr, "%s: cannot read configuration %s: %s%s\n", kProg, path.c_str(), strerror(err),
            err == EACCES ? " (give the segment's name with -s NAME instead)" : "");
    return err == EACCES ? kPermission : kUsage;
  }
  ::close(fd);
  try {
    name = load_config_file(path).shm_name;
  } catch (const ConfigError& e) {
    fprintf(stderr, "%s: %s\n", kProg, e.what());
    return kUsage;
  }
  return -1;
}

int open_table(const Options& o, std::unique_ptr<ShmTable>& table) {
  std::string name;
  int rc = segment_name(o, name);
  if (rc >= 0) return rc;
  ShmTable::AttachError code = ShmTable::AttachError::Other;
  std::string error;
  table = ShmTable::attach(name, code, error);
  if (table) return -1;
  fprintf(stderr, "%s: %s\n", kProg, error.c_str());
  switch (code) {
    case ShmTable::AttachError::NotFound: return kNotRunning;
    case ShmTable::AttachError::Stale: return kStale;
    case ShmTable::AttachError::VersionMismatch:
    case ShmTable::AttachError::BadLayout: return kLayout;
    case ShmTable::AttachError::Permission: return kPermission;
    default: return kFailure;
  }
}

bool daemon_alive(const ShmTable& t) {
  return process_alive(t.header()->pid, t.header()->pid_start_ticks);
}

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
// records (about 1 KiB each) are sorted through their keys, not moved around.
std::vector<Found> scan(const ShmTable& t) {
  std::vector<Found> found;
  found.reserve(size_t(t.header()->sessions_in_use.load(std::memory_order_relaxed)) + 16);
  for_each_session(t, [&](uint32_t slot, const shm::SessionRecord& rec) { found.push_back(Found{slot, rec}); });
  std::vector<std::pair<uint32_t, size_t>> order;
  order.reserve(found.size());
  for (size_t i = 0; i < found.size(); ++i) order.emplace_back(found[i].rec.cs_id, i);
  std::sort(order.begin(), order.end());
  // Apply the order in place, cycle by cycle: each record moves once.
  std::vector<bool> placed(found.size(), false);
  for (size_t start = 0; start < found.size(); ++start) {
    if (placed[start]) continue;
    Found held = found[start];
    size_t at = start;
    for (;;) {
      placed[at] = true;
      size_t from = order[at].second;
      if (from == start) {
        found[at] = held;
        break;
      }
      found[at] = found[from];
      at = from;
    }
  }
  return found;
}

bool selected(const Options& o, const shm::SessionRecord& r) {
  return (!o.user || get_field(r.user) == *o.user) && (!o.tenant || get_field(r.tenant) == *o.tenant) &&
         (!o.cluster || get_field(r.cluster) == *o.cluster) && (!o.state || r.state == *o.state) &&
         (!o.worker || r.worker == *o.worker);
}

// ---------------------------------------------------------------- sessions

int cmd_sessions(const Options& o, const ShmTable& t) {
  const int pid = t.header()->pid;
  const auto& cols = view::session_columns();
  Table table;
  table.columns = cols;
  for (size_t c = 0; c < cols.size(); ++c) table.numeric.push_back(view::session_column_is_numeric(c));
  // Rows are made while reading, so the records themselves (about 1 KiB
  // each) are never all held at once, then put in Id order.
  std::vector<std::pair<uint32_t, Row>> rows;
  rows.reserve(size_t(t.header()->sessions_in_use.load(std::memory_order_relaxed)) + 16);
  for_each_session(t, [&](uint32_t, const shm::SessionRecord& rec) {
    if (selected(o, rec)) rows.emplace_back(rec.cs_id, view::session_row(rec, pid));
  });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  table.rows.reserve(rows.size());
  for (auto& r : rows) table.rows.push_back(std::move(r.second));
  if (!o.json) {
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  Json j;
  j.begin_object().key("pid").num_i(pid).key("sessions").begin_array();
  for (const Row& r : table.rows) {
    j.begin_object();
    for (size_t c = 0; c < cols.size(); ++c) {
      j.key(cols[c]);
      if (!r[c])
        j.null();
      else if (table.numeric[c] && cols[c] != "proxy_sessid")
        j.num(to_u64(*r[c]));
      else
        j.str(*r[c]);
    }
    j.end_object();
  }
  j.end_array().end_object();
  print_json(j);
  return kOk;
}

// Operands were checked to be numbers before the segment was opened.
uint64_t operand(const Options& o, size_t i) {
  uint64_t v = 0;
  parse_u64(o.args[i], v);
  return v;
}

// Resolves an id to exactly one session, or says why not.
int resolve(const ShmTable& t, uint64_t id, Found& out) {
  const std::string arg = std::to_string(id);
  auto all = scan(t);
  std::vector<shm::SessionRecord> recs;
  for (const Found& f : all) recs.push_back(f.rec);
  auto hits = view::find_sessions(recs, id);
  if (hits.empty()) {
    if (is_cs_id(id))
      fprintf(stderr, "%s: unknown session id %s: no client session has this Id\n", kProg, arg.c_str());
    else
      fprintf(stderr,
              "%s: unknown session id %s: no client session has this Id and no server session has "
              "this backend connection id\n",
              kProg, arg.c_str());
    return kBadId;
  }
  if (hits.size() > 1) {
    std::string ids;
    for (auto* r : hits) ids += (ids.empty() ? "" : ", ") + std::to_string(r->cs_id);
    fprintf(stderr,
            "%s: id %s is ambiguous: it is the backend connection id of %zu sessions (Id %s); "
            "use the proxy's Id from 'myrelayctl sessions'\n",
            kProg, arg.c_str(), hits.size(), ids.c_str());
    return kBadId;
  }
  out = all[size_t(hits.front() - recs.data())];
  return -1;
}

// ---------------------------------------------------------------- session

// JSON types of SHOW PROXYSESSION ATTRIBUTE's values; any other attribute
// stays a string.  proxy_sessid stays a string: it is wider than 2^53.
bool attribute_is_number(const std::string& name) {
  static const std::set<std::string> kNumbers = {
      "cs_id", "host_port", "total_trans_cnt", "svr_session_cnt", "tid", "pid", "worker",
      "using_ssl", "queries", "bytes_in", "bytes_out", "connected_s", "idle_s", "ss_id",
      "server_port", "server_sessid", "transact_count", "requests"};
  return kNumbers.count(name) != 0;
}

bool attribute_is_bool(const std::string& name) {
  return name == "active" || name == "in_trans" || name == "privileged";
}

void json_attribute(Json& j, const view::Attribute& a) {
  j.key(a.name);
  bool digits = a.value && !a.value->empty() &&
                a.value->find_first_not_of("0123456789") == std::string::npos;
  if (!a.value)
    j.null();
  else if (attribute_is_number(a.name) && digits)
    j.num(to_u64(*a.value));
  else if (attribute_is_bool(a.name) && (*a.value == "true" || *a.value == "false"))
    j.boolean(*a.value == "true");
  else
    j.str(*a.value);
}

int cmd_session(const Options& o, const ShmTable& t) {
  Found f;
  int rc = resolve(t, operand(o, 1), f);
  if (rc >= 0) return rc;
  auto attrs = view::session_attributes(f.rec, t.header()->pid, view::now_us());
  if (o.like) {
    attrs.erase(std::remove_if(attrs.begin(), attrs.end(),
                               [&](const view::Attribute& a) { return !sql::like_match(a.name, *o.like); }),
                attrs.end());
  }
  if (!o.json) {
    Table table;
    table.columns = {"attribute_name", "value", "info"};
    table.numeric = {false, false, false};
    for (const auto& a : attrs) table.rows.push_back({a.name, a.value, a.info});
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  // The client session's attributes, then one object per server session: the
  // info column says which server session an attribute belongs to.
  const std::string kClient = "client session";
  Json j;
  j.begin_object();
  for (const auto& a : attrs)
    if (a.info == kClient) json_attribute(j, a);
  j.key("server_sessions").begin_array();
  std::string current;
  bool open = false;
  for (const auto& a : attrs) {
    if (a.info == kClient) continue;
    if (!open || a.info != current) {
      if (open) j.end_object();
      j.begin_object();
      open = true;
      current = a.info;
    }
    json_attribute(j, a);
  }
  if (open) j.end_object();
  j.end_array().end_object();
  print_json(j);
  return kOk;
}

// ---------------------------------------------------------------- kill

void sleep_ms(double ms) {
  timespec ts{time_t(ms / 1000), long(std::fmod(ms, 1000.0) * 1e6)};
  nanosleep(&ts, nullptr);
}

double elapsed_ms(const timespec& since) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return double(now.tv_sec - since.tv_sec) * 1e3 + double(now.tv_nsec - since.tv_nsec) / 1e6;
}

// Opens a worker's control pipe for one non-blocking write.  The path comes
// from the segment, so it is checked to be a FIFO: an operator running this
// as root must not be made to write into some other file.
int open_pipe(const std::string& path, int& fd) {
  fd = -1;
  struct stat st;
  // Checked before opening too: opening some devices has side effects.
  bool fifo = lstat(path.c_str(), &st) != 0 || S_ISFIFO(st.st_mode);
  if (fifo) {
    fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) return -1;
  }
  int err = errno;
  if (!fifo || fd >= 0) {
    if (fd >= 0) ::close(fd);
    fd = -1;
    fprintf(stderr, "%s: control pipe %s is not a FIFO; not writing to it\n", kProg, path.c_str());
    return kFailure;
  }
  switch (err) {
    case EACCES:
    case EPERM:
      fprintf(stderr,
              "%s: permission denied writing control pipe %s (run as the daemon's user or a member "
              "of its proxy.admin_group)\n",
              kProg, path.c_str());
      return kPermission;
    case ENXIO:
      fprintf(stderr, "%s: nobody reads control pipe %s: the worker is gone\n", kProg, path.c_str());
      return kFailure;
    default:
      fprintf(stderr, "%s: cannot open control pipe %s: %s\n", kProg, path.c_str(), strerror(err));
      return kFailure;
  }
}

std::string describe(const shm::SessionRecord& r) {
  size_t w;
  return printable(get_field(r.user) + "@" + get_field(r.tenant) + "#" + get_field(r.cluster), w) +
         " from " + get_field(r.host_ip) + ":" + std::to_string(r.host_port) + ", worker " +
         std::to_string(r.worker);
}

int cmd_kill(const Options& o, const ShmTable& t) {
  Found f;
  int rc = resolve(t, operand(o, 1), f);
  if (rc >= 0) return rc;
  const shm::SessionRecord target = f.rec;
  uint64_t ss_id = 0;
  const bool server_only = o.args.size() == 3;
  const shm::ServerSessionRecord* ss = nullptr;
  if (server_only) {
    ss_id = operand(o, 2);
    std::string have;
    for (const auto& s : target.servers) {
      if (s.ss_id == 0) continue;
      if (s.ss_id == ss_id) ss = &s;
      have += (have.empty() ? "" : ", ") + std::to_string(s.ss_id);
    }
    if (!ss) {
      fprintf(stderr, "%s: session %u has no server session %s (%s%s)\n", kProg, target.cs_id,
              o.args[2].c_str(), have.empty() ? "it has none" : "it has ss_id ", have.c_str());
      return kBadId;
    }
  }
  if (target.worker < 0 || uint32_t(target.worker) >= t.worker_count()) {
    fprintf(stderr, "%s: session %u names worker %d, but the daemon has %u workers\n", kProg, target.cs_id,
            target.worker, t.worker_count());
    return kFailure;
  }
  const std::string pipe = get_field(t.worker(uint32_t(target.worker))->control_pipe);
  int fd;
  rc = open_pipe(pipe, fd);
  if (rc >= 0) return rc;
  control::Request req;
  req.type = server_only ? control::RequestType::KillServerSession : control::RequestType::KillSession;
  req.cs_id = target.cs_id;
  req.proxy_sessid = target.proxy_sessid;  // never a later session that took the Id
  req.ss_id = ss_id;
  req.sender_pid = int32_t(getpid());
  std::string error;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool sent = control::send_fd(fd, req, error);
  ::close(fd);
  if (!sent) {
    fprintf(stderr, "%s: cannot ask worker %d to kill session %u: %s\n", kProg, target.worker, target.cs_id,
            error.c_str());
    return kFailure;
  }
  // Watch only the target's slot; it is gone once the slot holds another
  // session (or none), or no longer lists the server session.
  const shm::Slot* slot = t.slot(f.slot);
  const double limit_ms = o.timeout_s * 1000;
  double pause_ms = 0.5;
  shm::SessionRecord now;
  for (;;) {
    bool readable = ShmTable::read_record(slot, now);
    bool session_gone = readable && (!now.in_use || now.proxy_sessid != target.proxy_sessid);
    double ms = elapsed_ms(start);
    if (session_gone && !server_only) {
      printf("killed session %u (%s): closed after %.1f ms\n", target.cs_id, describe(target).c_str(), ms);
      return kOk;
    }
    if (server_only && session_gone) {
      printf("killed server session %llu of session %u (%s): gone after %.1f ms; the client session "
             "ended too\n",
             (unsigned long long)ss_id, target.cs_id, describe(target).c_str(), ms);
      return kOk;
    }
    if (server_only && readable && !view::has_server_session(now, ss_id)) {
      printf("killed server session %llu of session %u (backend %s:%u, connection id %u): closed after "
             "%.1f ms; the client session goes on\n",
             (unsigned long long)ss_id, target.cs_id, get_field(ss->server_ip).c_str(), ss->server_port,
             ss->server_sessid, ms);
      return kOk;
    }
    if (!daemon_alive(t)) {
      fprintf(stderr, "%s: myrelayd (pid %d) exited while session %u was being killed\n", kProg,
              t.header()->pid, target.cs_id);
      return kStale;
    }
    if (ms >= limit_ms) break;
    sleep_ms(std::min(pause_ms, limit_ms - ms));
    pause_ms = std::min(pause_ms * 2, 20.0);
  }
  if (server_only)
    fprintf(stderr,
            "%s: asked worker %d to kill server session %llu of session %u, but it was still there "
            "after %.3g s\n",
            kProg, target.worker, (unsigned long long)ss_id, target.cs_id, o.timeout_s);
  else
    fprintf(stderr, "%s: asked worker %d to kill session %u, but it was still there after %.3g s\n", kProg,
            target.worker, target.cs_id, o.timeout_s);
  return kNotConfirmed;
}

// ---------------------------------------------------------------- counters

// Every counter of shm::WorkerCounters, once: stats, --json and metrics use
// the same list, so they cannot drift apart.
struct CounterDef {
  const char* key;     // JSON key
  const char* label;   // table column
  const char* metric;  // Prometheus name
  const char* help;
  bool gauge;
  std::atomic<uint64_t> shm::WorkerCounters::*field;
};

const CounterDef kCounters[] = {
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
};
constexpr size_t kNumCounters = sizeof(kCounters) / sizeof(kCounters[0]);

size_t counter_index(std::string_view key) {
  for (size_t c = 0; c < kNumCounters; ++c)
    if (key == kCounters[c].key) return c;
  abort();  // a typo in this file
}

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

void print_down_metric() {
  std::string out;
  family(out, "myrelay_up", "Whether myrelayd is running and its session table readable.", true);
  sample(out, "myrelay_up", "", 0);
  fputs(out.c_str(), stdout);
}

int cmd_metrics(const Options&, const ShmTable& t) {
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
  fputs(out.c_str(), stdout);
  return kOk;
}

// ---------------------------------------------------------------- top

// ClientSession::State::ActiveReader, as SessionRecord::state holds it.
constexpr uint32_t kActiveReader = 1;

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

// Puts a terminal on stdin into "one key at a time" mode and restores it.
class RawKeys {
 public:
  RawKeys() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~tcflag_t(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawKeys() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

std::string rate_text(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string bytes_rate_text(double v) {
  char buf[32];
  if (v >= 1024 * 1024)
    snprintf(buf, sizeof buf, "%.1f MiB/s", v / (1024 * 1024));
  else if (v >= 1024)
    snprintf(buf, sizeof buf, "%.1f KiB/s", v / 1024);
  else
    snprintf(buf, sizeof buf, "%.0f B/s", v);
  return buf;
}

// What top remembers from one frame to the next, for its rates: each
// session's query count by proxy_sessid, and the global counters.
struct TopState {
  std::map<uint64_t, uint64_t> prev_queries;
  uint64_t prev_total_queries = 0, prev_in = 0, prev_out = 0;
  timespec prev_time{};
  bool first = true;
};

void draw_top(const Options& o, const ShmTable& t, TopState& st, bool screen) {
  const shm::Header& h = *t.header();
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double secs = st.first ? 0 : elapsed_ms(st.prev_time) / 1000;
  Stats s = read_stats(t);
  auto sessions = scan(t);
  const int64_t now_us = view::now_us();
  const size_t qi = counter_index("queries");
  const size_t ii = counter_index("bytes_in");
  const size_t oi = counter_index("bytes_out");
  double qps = secs > 0 ? double(s.total[qi] - st.prev_total_queries) / secs : 0;
  double in_rate = secs > 0 ? double(s.total[ii] - st.prev_in) / secs : 0;
  double out_rate = secs > 0 ? double(s.total[oi] - st.prev_out) / secs : 0;

  struct Line {
    shm::SessionRecord rec;
    double qps;
  };
  std::vector<Line> lines;
  std::map<uint64_t, uint64_t> queries;
  size_t active = 0;
  for (const Found& f : sessions) {
    queries[f.rec.proxy_sessid] = f.rec.queries;
    if (f.rec.state == kActiveReader) ++active;
    if (!selected(o, f.rec)) continue;
    double q = -1;
    auto it = st.prev_queries.find(f.rec.proxy_sessid);
    if (secs > 0 && it != st.prev_queries.end()) q = double(f.rec.queries - it->second) / secs;
    lines.push_back({f.rec, q});
  }
  // Sessions running a command first, then by q/s, then by Id.
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    if ((a.rec.state == kActiveReader) != (b.rec.state == kActiveReader)) return a.rec.state == kActiveReader;
    return a.qps > b.qps;
  });

  std::string head;
  char buf[512];
  time_t wall = time(nullptr);
  tm tmv;
  localtime_r(&wall, &tmv);
  char clock[16];
  strftime(clock, sizeof clock, "%H:%M:%S", &tmv);
  size_t w;
  snprintf(buf, sizeof buf, "myrelayctl top - %s  myrelayd %s pid %d %s, up %s, %u workers\n", clock,
           printable(get_field(h.version), w).c_str(), h.pid,
           daemon_state_name(h.state.load(std::memory_order_relaxed)), duration_text(uptime_s(h)).c_str(),
           h.worker_count);
  head += buf;
  snprintf(buf, sizeof buf,
           "sessions %zu of %u (%zu active, %zu shown)  queries/s %s  in %s  out %s  refused %llu\n",
           sessions.size(), h.slot_count, active, lines.size(), st.first ? "-" : rate_text(qps).c_str(),
           st.first ? "-" : bytes_rate_text(in_rate).c_str(),
           st.first ? "-" : bytes_rate_text(out_rate).c_str(),
           (unsigned long long)s.refused);
  head += buf;

  Table table;
  table.columns = {"Id", "worker", "User", "Tenant", "Cluster", "Host", "db", "state", "command", "time_s",
                   "svr", "queries", "q/s"};
  table.numeric = {true, true, false, false, false, false, false, false, false, true, true, true, true};
  size_t limit = lines.size();
  if (screen) {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      // Two header lines, a blank one, four border/heading lines, one for "more".
      size_t room = ws.ws_row > 9 ? size_t(ws.ws_row) - 9 : 1;
      limit = std::min(limit, room);
    }
  }
  for (size_t i = 0; i < limit; ++i) {
    const auto& r = lines[i].rec;
    int64_t since = r.last_active_us > 0 ? (now_us - r.last_active_us) / 1000000 : 0;
    Cell db = r.has_db ? Cell(get_field(r.db)) : std::nullopt;
    table.rows.push_back({std::to_string(r.cs_id), std::to_string(r.worker), get_field(r.user),
                          get_field(r.tenant), get_field(r.cluster),
                          get_field(r.host_ip) + ":" + std::to_string(r.host_port), db,
                          std::string(view::client_state_name(r.state)), get_field(r.command),
                          std::to_string(std::max<int64_t>(since, 0)), std::to_string(r.svr_session_count),
                          std::to_string(r.queries),
                          lines[i].qps < 0 ? std::string("-") : rate_text(lines[i].qps)});
  }
  std::string frame = screen ? "\033[H\033[2J" : "";
  frame += head + "\n";
  fputs(frame.c_str(), stdout);
  if (!table.rows.empty()) print_table(stdout, table);
  if (limit < lines.size()) printf("... %zu more\n", lines.size() - limit);
  if (!screen) fputc('\n', stdout);
  fflush(stdout);

  st.prev_queries.swap(queries);
  st.prev_total_queries = s.total[qi];
  st.prev_in = s.total[ii];
  st.prev_out = s.total[oi];
  st.prev_time = now;
  st.first = false;
}

int cmd_top(const Options& o, const ShmTable& t) {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: poll() returns at once
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  const bool screen = isatty(STDOUT_FILENO);
  RawKeys keys;
  TopState st;
  for (long frame = 0; !g_stop && (o.count < 0 || frame < o.count); ++frame) {
    if (!daemon_alive(t)) {
      fprintf(stderr, "%s: myrelayd (pid %d) is no longer running\n", kProg, t.header()->pid);
      return kStale;
    }
    draw_top(o, t, st, screen);
    if (o.count >= 0 && frame + 1 >= o.count) break;
    // Wait for the next frame, or for 'q' when stdin is a terminal.
    timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      double left = o.interval_s * 1000 - elapsed_ms(start);
      if (left <= 0 || g_stop) break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      int n = poll(&p, keys.active() ? 1 : 0, int(std::ceil(left)));
      if (n > 0 && (p.revents & POLLIN)) {
        char c;
        if (::read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) return kOk;
      }
    }
  }
  return kOk;
}

// ---------------------------------------------------------------- main

int run(int argc, char** argv) {
  Options o;
  int rc = parse_options(argc, argv, o);
  if (rc >= 0) return rc;
  struct Command {
    const char* name;
    int (*run)(const Options&, const ShmTable&);
    size_t min_ids, max_ids;  // operands, all of them ids
    bool json;                // takes --json
    const char* synopsis;
  };
  static const Command kCommands[] = {
      {"sessions", cmd_sessions, 0, 0, true,
       "sessions [--user U] [--tenant T] [--cluster C] [--state S] [--worker N]"},
      {"session", cmd_session, 1, 1, true, "session ID [--like PATTERN]"},
      {"kill", cmd_kill, 1, 2, false, "kill ID [SS_ID] [--timeout SECS]"},
      {"stats", cmd_stats, 0, 0, true, "stats"},
      {"metrics", cmd_metrics, 0, 0, false, "metrics"},
      {"top", cmd_top, 0, 0, false, "top [--interval SECS] [--count N] [filters]"},
  };
  // "watch" is what some operators type for top.
  const std::string name = o.args[0] == "watch" ? "top" : o.args[0];
  const Command* cmd = nullptr;
  for (const auto& c : kCommands)
    if (name == c.name) cmd = &c;
  if (!cmd) return bad_usage("unknown command '" + o.args[0] + "'");
  // Every usage error is found before the segment is looked at, so that its
  // exit status does not depend on whether a daemon runs.
  const size_t nids = o.args.size() - 1;
  if (nids < cmd->min_ids || nids > cmd->max_ids)
    return bad_usage(std::string("usage: myrelayctl ") + cmd->synopsis);
  for (size_t i = 1; i < o.args.size(); ++i) {
    uint64_t v;
    if (!parse_u64(o.args[i], v)) return bad_usage("not an id: '" + o.args[i] + "'");
  }
  if (o.json && !cmd->json) return bad_usage("--json applies to sessions, session and stats");
  std::unique_ptr<ShmTable> table;
  rc = open_table(o, table);
  if (rc >= 0) {
    // A scrape still learns that the daemon is down.
    if (cmd->run == cmd_metrics && (rc == kNotRunning || rc == kStale)) print_down_metric();
    return rc;
  }
  return cmd->run(o, *table);
}

}  // namespace myrelay::ctl

int main(int argc, char** argv) { return myrelay::ctl::run(argc, argv); }
