// myrelayctl kill (see ctl.h).
#include "ctl/ctl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "control/control_pipe.h"
#include "control/id_resolver.h"
#include "control/session_filter.h"
#include "control/sql_recognizer.h"

namespace myrelay::ctl {

// ---------------------------------------------------------------- kill

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

// What a kill names: a session, or one of its server sessions.
struct KillTarget {
  Found found;
  uint64_t ss_id = 0;                            // 0: the whole session
  const shm::ServerSessionRecord* ss = nullptr;  // in found.rec
};

// The server session `ss_id` of the target, or why there is none.
int find_server_session(const Options& o, KillTarget& k) {
  std::string have;
  for (const auto& s : k.found.rec.servers) {
    if (s.ss_id == 0) continue;
    if (s.ss_id == k.ss_id) k.ss = &s;
    have += (have.empty() ? "" : ", ") + std::to_string(s.ss_id);
  }
  if (k.ss) return -1;
  fprintf(stderr, "%s: session %u has no server session %s (%s%s)\n", kProg, k.found.rec.cs_id, o.args[2].c_str(),
          have.empty() ? "it has none" : "it has ss_id ", have.c_str());
  return kBadId;
}

// Writes the request to the owning worker's control pipe: end the session
// (or one server session), at once or when idle.
int send_kill(const ShmTable& t, const KillTarget& k, const Options& o) {
  const shm::SessionRecord& target = k.found.rec;
  if (target.worker < 0 || uint32_t(target.worker) >= t.worker_count()) {
    fprintf(stderr, "%s: session %u names worker %d, but the daemon has %u workers\n", kProg, target.cs_id,
            target.worker, t.worker_count());
    return kFailure;
  }
  int fd;
  int rc = open_pipe(get_field(t.worker(uint32_t(target.worker))->control_pipe), fd);
  if (rc >= 0) return rc;
  control::Request req;
  req.type = k.ss_id       ? control::RequestType::KillServerSession
             : o.when_idle ? control::RequestType::KillWhenIdle
                           : control::RequestType::KillSession;
  req.timeout_s = o.idle_timeout_s;
  req.cs_id = target.cs_id;
  req.proxy_sessid = target.proxy_sessid;  // never a later session that took the Id
  req.ss_id = k.ss_id;
  req.sender_pid = int32_t(getpid());
  std::string error;
  bool sent = control::send_fd(fd, req, error);
  ::close(fd);
  if (sent) return -1;
  fprintf(stderr, "%s: cannot ask worker %d to kill session %u: %s\n", kProg, target.worker, target.cs_id,
          error.c_str());
  return kFailure;
}

// Whether the kill has happened, as the target's slot shows it; prints
// what happened when it has.
bool kill_done(const KillTarget& k, const shm::SessionRecord& now, double ms) {
  const shm::SessionRecord& target = k.found.rec;
  bool session_gone = !now.in_use || now.proxy_sessid != target.proxy_sessid;
  if (session_gone && !k.ss_id) {
    printf("killed session %u (%s): closed after %.1f ms\n", target.cs_id, describe(target).c_str(), ms);
  } else if (session_gone) {
    printf("killed server session %llu of session %u (%s): gone after %.1f ms; the client session ended too\n",
           (unsigned long long)k.ss_id, target.cs_id, describe(target).c_str(), ms);
  } else if (k.ss_id && !has_server_session(now, k.ss_id)) {
    printf("killed server session %llu of session %u (backend %s:%u, connection id %u): closed after %.1f ms; "
           "the client session goes on\n",
           (unsigned long long)k.ss_id, target.cs_id, get_field(k.ss->server_ip).c_str(), k.ss->server_port,
           k.ss->server_sessid, ms);
  } else {
    return false;
  }
  return true;
}

// Waits until every target is gone (its slot freed or taken by another
// session); prints each.  The targets still there at the timeout are left
// in `targets`.
void wait_gone(const Options& o, const ShmTable& t, std::vector<KillTarget>& targets, const timespec& start) {
  const double limit_ms = o.timeout_s * 1000;
  double pause_ms = 0.5;
  shm::SessionRecord now;
  for (;;) {
    double ms = elapsed_ms(start);
    for (size_t i = 0; i < targets.size();) {
      if (ShmTable::read_record(t.slot(targets[i].found.slot), now) && kill_done(targets[i], now, ms)) {
        targets.erase(targets.begin() + long(i));
        continue;
      }
      ++i;
    }
    if (targets.empty() || ms >= limit_ms || !daemon_alive(t)) return;
    sleep_ms(std::min(pause_ms, limit_ms - ms));
    pause_ms = std::min(pause_ms * 2, 20.0);
  }
}

// kill --where COND [--dry-run] [--when-idle [--idle-timeout S]]: the
// sessions that match, as KILL PROXYSESSION WHERE picks them (in Id order, at
// most LIMIT), each asked to end through its worker's control pipe.
int kill_where(const Options& o, const ShmTable& t) {
  SessionFilter f;
  std::string error;
  sql::parse_session_filter(*o.where, f, error);  // checked with the options
  const int64_t now = view::now_us();
  std::vector<KillTarget> targets;
  for (const Found& found : scan(t)) {
    if (f.has_limit && targets.size() >= f.limit) break;
    if (!f.matches(found.rec, now)) continue;
    KillTarget k;
    k.found = found;
    targets.push_back(k);
  }
  if (o.dry_run) {
    const int pid = t.header()->pid;
    Table table;
    table.columns = view::session_columns();
    for (size_t c = 0; c < table.columns.size(); ++c) table.numeric.push_back(view::session_column_is_numeric(c));
    for (const auto& k : targets) table.rows.push_back(view::session_row(k.found.rec, pid));
    if (!table.rows.empty()) print_table(stdout, table);
    printf("%zu session%s would be killed (dry run: none was)\n", targets.size(), targets.size() == 1 ? "" : "s");
    return kOk;
  }
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int rc = kOk;
  std::vector<KillTarget> asked;
  for (const auto& k : targets) {
    int r = send_kill(t, k, o);
    if (r >= 0) {
      rc = r;
      continue;
    }
    asked.push_back(k);
  }
  if (o.when_idle) {
    for (const auto& k : asked)
      printf("asked session %u (%s) to end at its next idle moment\n", k.found.rec.cs_id, describe(k.found.rec).c_str());
    printf("%zu session%s asked to end when idle\n", asked.size(), asked.size() == 1 ? "" : "s");
    return rc;
  }
  size_t n = asked.size();
  wait_gone(o, t, asked, start);
  for (const auto& k : asked)
    fprintf(stderr, "%s: asked worker %d to kill session %u, but it was still there after %.3g s\n", kProg,
            k.found.rec.worker, k.found.rec.cs_id, o.timeout_s);
  printf("%zu session%s killed\n", n - asked.size(), n - asked.size() == 1 ? "" : "s");
  if (!asked.empty() && rc == kOk) rc = daemon_alive(t) ? kNotConfirmed : kStale;
  return rc;
}

int cmd_kill(const Options& o, const ShmTable& t) {
  if (o.where) return kill_where(o, t);
  KillTarget k;
  int rc = resolve(t, operand(o, 1), k.found);
  if (rc >= 0) return rc;
  if (o.args.size() == 3) {
    k.ss_id = operand(o, 2);
    if ((rc = find_server_session(o, k)) >= 0) return rc;
  }
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  if ((rc = send_kill(t, k, o)) >= 0) return rc;
  if (o.when_idle) {
    printf("asked session %u (%s) to end at its next idle moment%s\n", k.found.rec.cs_id, describe(k.found.rec).c_str(),
           o.idle_timeout_s ? (", or in " + std::to_string(o.idle_timeout_s) + " s").c_str() : "");
    return kOk;
  }
  // Watch only the target's slot; it is gone once the slot holds another
  // session (or none), or no longer lists the server session.
  std::vector<KillTarget> left{k};
  wait_gone(o, t, left, start);
  if (left.empty()) return kOk;
  if (!daemon_alive(t)) {
    fprintf(stderr, "%s: myrelayd (pid %d) exited while session %u was being killed\n", kProg, t.header()->pid,
            k.found.rec.cs_id);
    return kStale;
  }
  if (k.ss_id)
    fprintf(stderr, "%s: asked worker %d to kill server session %llu of session %u, but it was still there after %.3g s\n",
            kProg, k.found.rec.worker, (unsigned long long)k.ss_id, k.found.rec.cs_id, o.timeout_s);
  else
    fprintf(stderr, "%s: asked worker %d to kill session %u, but it was still there after %.3g s\n", kProg,
            k.found.rec.worker, k.found.rec.cs_id, o.timeout_s);
  return kNotConfirmed;
}

}  // namespace myrelay::ctl
