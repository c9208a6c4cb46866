// The configuration's lookups, reading its file, and resolving backend
// addresses (see config.h); the YAML itself is read in config_loader.cc.
#include "service/config.h"

#include <arpa/inet.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace myrelay {

const char* auth_plugin_name(AuthPlugin p) {
  return p == AuthPlugin::CachingSha2 ? kCachingSha2Plugin : "mysql_native_password";
}

bool parse_auth_plugin(const std::string& name, AuthPlugin& out) {
  if (name == "mysql_native_password") {
    out = AuthPlugin::NativePassword;
    return true;
  }
  if (name == kCachingSha2Plugin) {
    out = AuthPlugin::CachingSha2;
    return true;
  }
  return false;
}

const char* server_role_name(ServerRole r) {
  switch (r) {
    case ServerRole::Primary: return "primary";
    case ServerRole::Replica: return "replica";
  }
  return "?";
}

const Cluster* Config::find_cluster(const std::string& name) const {
  for (const Cluster& c : clusters)
    if (c.name == name) return &c;
  return nullptr;
}

const Tenant* Config::find_tenant(const std::string& name) const {
  for (const Tenant& t : tenants)
    if (t.name == name) return &t;
  return nullptr;
}

const char* BackendTls::mode_name(Mode m) {
  switch (m) {
    case Mode::Disabled: return "disabled";
    case Mode::Preferred: return "preferred";
    case Mode::Required: return "required";
    case Mode::VerifyCa: return "verify_ca";
    case Mode::VerifyIdentity: return "verify_identity";
  }
  return "?";
}

const FleetPeer* FleetConfig::find_peer(int proxy_id) const {
  for (const FleetPeer& p : peers)
    if (p.proxy_id == proxy_id) return &p;
  return nullptr;
}

const UserEntry* Config::find_user(const Tenant& t, const std::string& name) const {
  for (const UserEntry& u : t.users)
    if (u.name == name) return &u;
  return nullptr;
}

bool Config::multiplexes_anywhere() const {
  for (const Cluster& c : clusters)
    if (c.multiplexing) return true;
  for (const Tenant& t : tenants)
    if (t.multiplexing.value_or(false)) return true;
  return false;
}

int Cluster::worker_share(int worker, int workers) const {
  if (max_server_connections <= 0 || workers <= 0) return 0;
  int share = max_server_connections / workers + (worker < max_server_connections % workers ? 1 : 0);
  return share > 0 ? share : 1;
}

bool Config::splits(const Cluster& c, const Tenant* t, const UserEntry* u) {
  if (u && u->read_write_split) return *u->read_write_split;
  if (t && t->read_write_split) return *t->read_write_split;
  return c.read_write_split;
}

int Config::effective_workers() const {
  if (workers > 0) return workers;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return static_cast<int>(std::min<long>(n, kMaxWorkers));
}

Config load_config_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw ConfigError(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return load_config_string(text, path);
}

bool resolve_host_port(const HostPort& hp, bool passive, sockaddr_storage& out, int& len,
                       std::string& error) {
  // Numeric addresses, the usual case, without string building or sscanf.
  memset(&out, 0, sizeof(out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, hp.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(hp.port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, hp.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(hp.port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  std::string spec = hp.host.find(':') != std::string::npos ? "[" + hp.host + "]:" : hp.host + ":";
  spec += std::to_string(hp.port);
  len = sizeof(out);
  if (evutil_parse_sockaddr_port(spec.c_str(), reinterpret_cast<sockaddr*>(&out), &len) == 0)
    return true;
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  int rc = getaddrinfo(hp.host.c_str(), std::to_string(hp.port).c_str(), &hints, &res);
  if (rc != 0 || !res) {
    error = gai_strerror(rc);
    return false;
  }
  memcpy(&out, res->ai_addr, res->ai_addrlen);
  len = int(res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

int resolve_backends(Config& cfg) {
  int failed = 0;
  for (auto& cluster : cfg.clusters) {
    for (auto& server : cluster.servers) {
      server.resolve_error.clear();
      sockaddr_storage addr{};
      int len = 0;
      if (resolve_host_port(server.address, false, addr, len, server.resolve_error)) {
        if (size_t(len) <= sizeof(server.sockaddr)) {
          memcpy(&server.sockaddr, &addr, size_t(len));
          server.sockaddr_len = len;
          continue;
        }
        server.resolve_error = "not an IPv4 or IPv6 address";
      }
      server.sockaddr_len = 0;
      ++failed;
      LOG_WARN("%s: cluster %s: cannot resolve backend %s: %s", cfg.file.c_str(), cluster.name.c_str(),
               server.address.str().c_str(), server.resolve_error.c_str());
    }
  }
  return failed;
}

void log_config_warnings(const Config& cfg) {
  for (const std::string& shared : cfg.shared_backend_accounts)
    LOG_WARN("%s: %s (allowed by proxy.allow_shared_backend_accounts)", cfg.file.c_str(), shared.c_str());
}

}  // namespace myrelay
