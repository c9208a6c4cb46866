// myrelayctl's options and its command table (see ctl.h).
#include "ctl/ctl.h"

#include "control/sql_recognizer.h"

#include <getopt.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace myrelay::ctl {

void usage(FILE* out) {
  fprintf(out,
          "Usage: myrelayctl [-c FILE | -s NAME] [options] COMMAND [ARGS]\n"
          "Sees and controls the sessions of a running myrelayd from its shared-memory\n"
          "session table, without connecting through SQL.\n"
          "\n"
          "Commands:\n"
          "  sessions            every client session, as SHOW PROXYSESSION prints them;\n"
          "                      --full adds the running (or last) statement and its\n"
          "                      time so far (statement_time_ms)\n"
          "  session ID          one session's attributes and server sessions, as\n"
          "                      SHOW PROXYSESSION ATTRIBUTE ID prints them; with\n"
          "                      --variables, the state the proxy would carry to a new\n"
          "                      server session (SHOW PROXYSESSION VARIABLES ID)\n"
          "  kill ID [SS_ID]     end client session ID (or only its server session SS_ID)\n"
          "                      and wait until it is gone\n"
          "  kill --where COND   end every session that matches COND, as KILL\n"
          "                      PROXYSESSION WHERE does: \"cond [AND cond]... [LIMIT n]\"\n"
          "                      over user, tenant, cluster, host, db, state, command\n"
          "                      (=, !=, LIKE) and in_trans, idle_s, time_s, trans_s\n"
          "                      (=, !=, <, <=, >, >=); --dry-run lists them instead\n"
          "  kills               the kill log, newest first, as SHOW PROXYKILLS prints\n"
          "                      it: every session end that was not the client's own\n"
          "                      quit, and stopped statements (--limit N, --user U,\n"
          "                      --tenant T)\n"
          "  servers             the backend servers' health, as SHOW PROXYCONGESTION\n"
          "                      prints it (--cluster C: one cluster's)\n"
          "  stats               per-worker and global counters\n"
          "  metrics             the counters in Prometheus text format (when the daemon\n"
          "                      is down: myrelay_up 0, and exit status 2 or 3); with\n"
          "                      --listen HOST:PORT, served over HTTP on /metrics, read\n"
          "                      afresh from shared memory at each scrape\n"
          "  top                 a live, refreshing table of sessions ('q' quits)\n"
          "  --fleet sessions    every proxy's sessions, with a proxy_id column, asked on\n"
          "                      the peer ports that -c FILE's fleet: section names\n"
          "  --fleet kill ID [SS_ID] | --fleet kill --where COND [--dry-run]\n"
          "                      a kill on whichever proxy of the fleet holds the\n"
          "                      session (a backend id is looked up on every proxy);\n"
          "                      reports that proxy's answer\n"
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
          "      --like PATTERN  only attributes (or variables) whose name matches\n"
          "                      (session; %% and _)\n"
          "      --timeout SECS  how long kill waits for the session to go (default 2)\n"
          "      --when-idle     kill: end the session(s) at their next idle moment outside\n"
          "                      a transaction (KILL ... WHEN IDLE), without waiting\n"
          "      --idle-timeout SECS  with --when-idle: a plain kill after SECS\n"
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
  enum { kUser = 256, kTenant, kCluster, kState, kWorker, kLike, kTimeout, kVariables, kWhere, kDryRun, kWhenIdle,
         kIdleTimeout, kLimit, kFull, kListen, kFleet };
  static const option longopts[] = {
      {"config", required_argument, nullptr, 'c'}, {"shm", required_argument, nullptr, 's'},
      {"json", no_argument, nullptr, 'j'},         {"user", required_argument, nullptr, kUser},
      {"tenant", required_argument, nullptr, kTenant},
      {"cluster", required_argument, nullptr, kCluster},
      {"state", required_argument, nullptr, kState},
      {"worker", required_argument, nullptr, kWorker},
      {"like", required_argument, nullptr, kLike},
      {"variables", no_argument, nullptr, kVariables},
      {"timeout", required_argument, nullptr, kTimeout},
      {"where", required_argument, nullptr, kWhere},
      {"dry-run", no_argument, nullptr, kDryRun},
      {"when-idle", no_argument, nullptr, kWhenIdle},
      {"idle-timeout", required_argument, nullptr, kIdleTimeout},
      {"limit", required_argument, nullptr, kLimit},
      {"full", no_argument, nullptr, kFull},
      {"listen", required_argument, nullptr, kListen},
      {"fleet", no_argument, nullptr, kFleet},
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
      case kVariables: o.variables = true; break;
      case kTimeout:
        if (!parse_seconds(arg, 0.001, 3600, o.timeout_s))
          return bad_usage("--timeout: not a number of seconds between 0.001 and 3600: '" + arg + "'");
        break;
      case kWhere: {
        SessionFilter f;
        std::string error;
        if (!sql::parse_session_filter(arg, f, error)) return bad_usage("--where: " + error);
        o.where = arg;
        break;
      }
      case kDryRun: o.dry_run = true; break;
      case kFull: o.full = true; break;
      case kListen: o.listen = arg; break;
      case kFleet: o.fleet = true; break;
      case kLimit:
        if (!parse_u64(arg, o.limit) || o.limit == 0) return bad_usage("--limit: not a positive number: '" + arg + "'");
        break;
      case kWhenIdle: o.when_idle = true; break;
      case kIdleTimeout:
        if (!parse_u64(arg, n) || n < 1 || n > 31536000)
          return bad_usage("--idle-timeout: not a number of seconds between 1 and 31536000: '" + arg + "'");
        o.idle_timeout_s = uint32_t(n);
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
       "sessions [--full] [--user U] [--tenant T] [--cluster C] [--state S] [--worker N]"},
      {"session", cmd_session, 1, 1, true, "session ID [--variables] [--like PATTERN]"},
      {"kill", cmd_kill, 0, 2, false,
       "kill ID [SS_ID] [--timeout SECS] [--when-idle [--idle-timeout SECS]] | kill --where COND [--dry-run]"},
      {"servers", cmd_servers, 0, 0, true, "servers [--cluster C]"},
      {"kills", cmd_kills, 0, 0, true, "kills [--limit N] [--user U] [--tenant T]"},
      {"stats", cmd_stats, 0, 0, true, "stats"},
      {"metrics", cmd_metrics, 0, 0, false, "metrics [--listen HOST:PORT]"},
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
  if (o.json && !cmd->json) return bad_usage("--json applies to sessions, session, servers, kills and stats");
  if (o.limit && cmd->run != cmd_kills) return bad_usage("--limit applies to kills");
  if (o.full && cmd->run != cmd_sessions) return bad_usage("--full applies to sessions");
  if (!o.listen.empty() && cmd->run != cmd_metrics) return bad_usage("--listen applies to metrics");
  if (!o.listen.empty()) return serve_metrics(o);  // opens the segment at each scrape
  if (o.variables && cmd->run != cmd_session) return bad_usage("--variables applies to session");
  if ((o.where || o.dry_run || o.when_idle || o.idle_timeout_s) && cmd->run != cmd_kill)
    return bad_usage("--where, --dry-run, --when-idle and --idle-timeout apply to kill");
  if (cmd->run == cmd_kill) {
    if (o.where ? nids != 0 : nids == 0) return bad_usage(std::string("usage: myrelayctl ") + cmd->synopsis);
    if (o.dry_run && !o.where) return bad_usage("--dry-run applies to kill --where");
    if (o.idle_timeout_s && !o.when_idle) return bad_usage("--idle-timeout applies with --when-idle");
    if (o.when_idle && nids == 2) return bad_usage("--when-idle ends whole sessions, not one server session");
  }
  if (o.fleet) {
    if (cmd->run != cmd_sessions && cmd->run != cmd_kill) return bad_usage("--fleet applies to sessions and kill");
    if (!o.shm_name.empty()) return bad_usage("--fleet reads the configuration: give -c FILE, not -s NAME");
    if (o.full) return bad_usage("--full is not available with --fleet");
    return cmd_fleet(o);
  }
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
