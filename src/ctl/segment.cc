// myrelayctl: finding the daemon's segment, reading and resolving sessions (see ctl.h).
#include "ctl/ctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "control/id_resolver.h"
#include "service/config.h"
#include "session/ids.h"

namespace myrelay::ctl {

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
  recs.reserve(all.size());
  for (const Found& f : all) recs.push_back(f.rec);
  IdMatch m = resolve_id(recs, id);
  switch (m.outcome) {
    case IdMatch::Outcome::Found:
      out = all[size_t(m.session - recs.data())];
      return -1;
    case IdMatch::Outcome::Unknown:
      if (is_cs_id(id))
        fprintf(stderr, "%s: unknown session id %s: no client session has this Id\n", kProg, arg.c_str());
      else
        fprintf(stderr,
                "%s: unknown session id %s: no client session has this Id and no server session has "
                "this backend connection id\n",
                kProg, arg.c_str());
      return kBadId;
    case IdMatch::Outcome::Ambiguous:
      break;
  }
  fprintf(stderr, "%s: id %s is ambiguous: %s; use the proxy's Id from 'myrelayctl sessions'\n", kProg, arg.c_str(),
          ambiguity(m).c_str());
  return kBadId;
}

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

}  // namespace myrelay::ctl
