// myrelayctl top: a live table of sessions (see ctl.h).
#include "ctl/ctl.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace myrelay::ctl {

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

// One session on the screen, with its rate since the last frame (-1: new).
struct TopLine {
  shm::SessionRecord rec;
  double qps;
};

// The sessions to show, running ones first, then by q/s; `queries` gets
// every session's query count for the next frame, `active` the number of
// running ones.
std::vector<TopLine> top_lines(const Options& o, const std::vector<Found>& sessions, const TopState& st, double secs,
                               std::map<uint64_t, uint64_t>& queries, size_t& active) {
  std::vector<TopLine> lines;
  active = 0;
  for (const Found& f : sessions) {
    queries[f.rec.proxy_sessid] = f.rec.queries;
    if (f.rec.state == kActiveReader) ++active;
    if (!selected(o, f.rec)) continue;
    double q = -1;
    auto it = st.prev_queries.find(f.rec.proxy_sessid);
    if (secs > 0 && it != st.prev_queries.end()) q = double(f.rec.queries - it->second) / secs;
    lines.push_back({f.rec, q});
  }
  std::stable_sort(lines.begin(), lines.end(), [](const TopLine& a, const TopLine& b) {
    if ((a.rec.state == kActiveReader) != (b.rec.state == kActiveReader)) return a.rec.state == kActiveReader;
    return a.qps > b.qps;
  });
  return lines;
}

// The two lines above the table.
std::string top_header(const ShmTable& t, const Stats& s, const TopState& st, double secs, size_t sessions,
                       size_t active, size_t shown) {
  const shm::Header& h = *t.header();
  const size_t qi = counter_index("queries"), ii = counter_index("bytes_in"), oi = counter_index("bytes_out");
  auto rate = [&](size_t c, uint64_t prev) { return secs > 0 ? double(s.total[c] - prev) / secs : 0.0; };
  char buf[512];
  time_t wall = time(nullptr);
  tm tmv;
  localtime_r(&wall, &tmv);
  char clock[16];
  strftime(clock, sizeof clock, "%H:%M:%S", &tmv);
  size_t w;
  snprintf(buf, sizeof buf, "myrelayctl top - %s  myrelayd %s pid %d %s, up %s, %u workers\n", clock,
           printable(get_field(h.version), w).c_str(), h.pid, daemon_state_name(h.state.load(std::memory_order_relaxed)),
           duration_text(uptime_s(h)).c_str(), h.worker_count);
  std::string head = buf;
  snprintf(buf, sizeof buf, "sessions %zu of %u (%zu active, %zu shown)  queries/s %s  in %s  out %s  refused %llu\n",
           sessions, h.slot_count, active, shown, st.first ? "-" : rate_text(rate(qi, st.prev_total_queries)).c_str(),
           st.first ? "-" : bytes_rate_text(rate(ii, st.prev_in)).c_str(),
           st.first ? "-" : bytes_rate_text(rate(oi, st.prev_out)).c_str(), (unsigned long long)s.refused);
  return head + buf;
}

// The statement a running session runs, on one line and cut to `width`
// characters ("" when none runs or proxy.statement_text_bytes is 0).
std::string running_statement(const ShmTable& t, const shm::SessionRecord& r, size_t width) {
  ShmTable::Statement st;
  if (r.state != kActiveReader || !t.session_statement(r, st) || st.end_us != 0) return "";
  std::string one;
  for (char c : st.text) one += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  size_t w;
  std::string shown = printable(one, w);
  if (w <= width) return shown;
  // Cut on a character boundary, then mark it.
  std::string cut;
  size_t chars = 0;
  for (size_t i = 0; i < shown.size() && chars + 1 < width; ++chars) {
    size_t n = std::max<size_t>(utf8_len(shown, i), 1);
    cut.append(shown, i, n);
    i += n;
  }
  return cut + "~";
}

Table top_table(const ShmTable& t, const std::vector<TopLine>& lines, size_t limit) {
  Table table;
  table.columns = {"Id", "worker", "User", "Tenant", "Cluster", "Host", "db", "state", "command", "time_s",
                   "svr", "queries", "q/s", "statement"};
  table.numeric = {true, true, false, false, false, false, false, false, false, true, true, true, true, false};
  const int64_t now_us = view::now_us();
  for (size_t i = 0; i < limit; ++i) {
    const auto& r = lines[i].rec;
    int64_t since = r.last_active_us > 0 ? (now_us - r.last_active_us) / 1000000 : 0;
    Cell db = r.has_db ? Cell(get_field(r.db)) : std::nullopt;
    table.rows.push_back({std::to_string(r.cs_id), std::to_string(r.worker), get_field(r.user), get_field(r.tenant),
                          get_field(r.cluster), get_field(r.host_ip) + ":" + std::to_string(r.host_port), db,
                          std::string(view::client_state_name(r.state)), get_field(r.command),
                          std::to_string(std::max<int64_t>(since, 0)), std::to_string(r.svr_session_count),
                          std::to_string(r.queries), lines[i].qps < 0 ? std::string("-") : rate_text(lines[i].qps),
                          running_statement(t, r, 60)});
  }
  return table;
}

void draw_top(const Options& o, const ShmTable& t, TopState& st, bool screen) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double secs = st.first ? 0 : elapsed_ms(st.prev_time) / 1000;
  Stats s = read_stats(t);
  auto sessions = scan(t);
  std::map<uint64_t, uint64_t> queries;
  size_t active = 0;
  std::vector<TopLine> lines = top_lines(o, sessions, st, secs, queries, active);
  size_t limit = lines.size();
  winsize ws{};
  if (screen && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
    // Two header lines, a blank one, four border/heading lines, one for "more".
    limit = std::min(limit, ws.ws_row > 9 ? size_t(ws.ws_row) - 9 : size_t(1));
  }
  std::string frame = screen ? "\033[H\033[2J" : "";
  frame += top_header(t, s, st, secs, sessions.size(), active, lines.size()) + "\n";
  fputs(frame.c_str(), stdout);
  Table table = top_table(t, lines, limit);
  if (!table.rows.empty()) print_table(stdout, table);
  if (limit < lines.size()) printf("... %zu more\n", lines.size() - limit);
  if (!screen) fputc('\n', stdout);
  fflush(stdout);

  st.prev_queries.swap(queries);
  st.prev_total_queries = s.total[counter_index("queries")];
  st.prev_in = s.total[counter_index("bytes_in")];
  st.prev_out = s.total[counter_index("bytes_out")];
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

}  // namespace myrelay::ctl
