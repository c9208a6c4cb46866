// Backend handshakes, remembered per cluster (see backend_facts.h).
#include "routing/backend_facts.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "service/config.h"
#include "service/log.h"

namespace myrelay {

using namespace proto;

std::shared_ptr<const BackendFacts> BackendFactsTable::get(const std::string& cluster) const {
  static const auto kNone = std::make_shared<const BackendFacts>();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = facts_.find(cluster);
  return it == facts_.end() ? kNone : it->second;
}

void BackendFactsTable::note(const std::string& cluster, const Handshake& hs) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = facts_[cluster];
  auto f = slot ? std::make_shared<BackendFacts>(*slot) : std::make_shared<BackendFacts>();
  f->known = true;
  f->server_version = hs.server_version;
  f->capabilities = hs.capabilities;
  f->ext_capabilities = hs.ext_capabilities;
  f->charset = hs.charset;
  slot = std::move(f);
}

void BackendFactsTable::note_trackers(const std::string& cluster, const TrackerSet& t) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = facts_[cluster];
  auto f = slot ? std::make_shared<BackendFacts>(*slot) : std::make_shared<BackendFacts>();
  f->trackers = std::make_shared<const TrackerSet>(t);
  slot = std::move(f);
}

static int64_t monotonic_ms() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

// Connects to `server` and reads its greeting, within `budget_ms`.
static bool read_greeting(const BackendServer& server, int budget_ms, Handshake& hs) {
  int fd = ::socket(server.sockaddr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  int rc = ::connect(fd, &server.sockaddr.sa, socklen_t(server.sockaddr_len));
  if (rc == 0 || errno == EINPROGRESS) {
    std::string buf;
    const int64_t deadline = monotonic_ms() + budget_ms;
    pollfd p{fd, POLLIN, 0};
    for (int64_t left = budget_ms; left > 0 && poll(&p, 1, int(left)) > 0;
         left = deadline - monotonic_ms()) {
      char tmp[1024];
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) break;
      buf.append(tmp, size_t(n));
      uint8_t fs, ls;
      std::string payload, error;
      size_t used = 0;
      if (read_packet(buf, 64 * 1024, fs, ls, payload, used) == ReadStatus::Complete) {
        ok = parse_handshake(payload, hs, error);
        break;
      }
    }
  }
  ::close(fd);
  return ok;
}

void BackendFactsTable::probe(const Config& cfg) {
  for (auto& cluster : cfg.clusters) {
    for (auto& server : cluster.servers) {
      Handshake hs;
      if (read_greeting(server, std::min(cfg.backend_connect_ms, 2000), hs)) {
        note(cluster.name, hs);
        LOG_INFO("cluster %s: backend %s is %s", cluster.name.c_str(), server.address.str().c_str(),
                 hs.server_version.c_str());
        break;
      }
      LOG_WARN("cluster %s: backend %s did not answer at start", cluster.name.c_str(),
               server.address.str().c_str());
    }
  }
}

}  // namespace myrelay
