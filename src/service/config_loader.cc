// Loading and validating the YAML configuration (DESIGN section 4).
//
// The file is parsed into yaml-cpp nodes and then walked by hand rather than
// with yaml-cpp's as<T>(): that way every key is checked against the list of
// known keys (a typo must not silently leave a default in place) and every
// error can name the dotted key path, e.g. "clusters[1].servers[0].address".
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "myrelay/shm_layout.h"
#include "control/fleet_tls.h"
#include "service/config.h"

namespace myrelay {

namespace {

// Seconds are capped at a year (MySQL's wait_timeout maximum) so that
// converting them to milliseconds cannot overflow.
constexpr long long kMaxMs = INT_MAX, kMaxS = 365LL * 24 * 3600;

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// What a node is, for "expected X, got Y" messages.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined value";
  }
}

// Edit distance, to suggest the intended key for a misspelt one.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t subst = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, subst});
      diag = up;
    }
  }
  return row[b.size()];
}

bool parse_decimal(const std::string& s, long long& out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  errno = 0;
  out = std::strtoll(s.c_str(), nullptr, 10);
  return errno == 0;
}

bool valid_ipv4(const std::string& s) {
  struct in_addr a;
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool valid_ipv6(const std::string& s) {
  struct in6_addr a;
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_'.
bool valid_hostname(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

// Parses "host:port" or "[v6addr]:port".  On failure returns false with
// `why` saying what is wrong.
bool parse_host_port(const std::string& s, HostPort& out, std::string& why) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      why = "expected [address]:port, got '" + s + "'";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!valid_ipv6(host)) {
      why = "'" + host + "' is not a valid IPv6 address";
      return false;
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) {
      why = "expected host:port, got '" + s + "'";
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.empty()) {
      why = "the host is empty in '" + s + "' (expected host:port)";
      return false;
    }
    if (host.find(':') != std::string::npos) {
      why = "an IPv6 address must be written in brackets, as [::1]:2883, got '" + s + "'";
      return false;
    }
    bool numeric = host.find_first_not_of("0123456789.") == std::string::npos;
    if (numeric ? !valid_ipv4(host) : !valid_hostname(host)) {
      why = numeric ? "'" + host + "' is not a valid IPv4 address" : "'" + host + "' is not a valid host name";
      return false;
    }
  }
  long long p;
  if (port.empty() || port[0] == '+' || port[0] == '-' || !parse_decimal(port, p)) {
    why = "expected a port number after ':', got '" + s + "'";
    return false;
  }
  if (p < 1 || p > 65535) {
    why = "the port must be between 1 and 65535, got " + port;
    return false;
  }
  out.host = host;
  out.port = static_cast<uint16_t>(p);
  return true;
}

// The keys of one YAML mapping, checked against the keys that may appear.
using Fields = std::map<std::string, YAML::Node>;

class Loader {
 public:
  explicit Loader(const std::string& file) : file_(file) {}

  Config load(const std::string& text);

 private:
  [[noreturn]] void fail(const std::string& key, const std::string& what, const YAML::Node* at = nullptr) const {
    std::string msg = file_ + ": " + key + ": " + what;
    if (at && !at->Mark().is_null()) msg += " (line " + std::to_string(at->Mark().line + 1) + ")";
    throw ConfigError(msg);
  }

  Fields fields(const YAML::Node& node, const std::string& path, std::initializer_list<const char*> known) const;
  const YAML::Node* find(const Fields& f, const char* key) const {
    auto it = f.find(key);
    return it == f.end() ? nullptr : &it->second;
  }
  void expect_list(const YAML::Node& node, const std::string& path) const;

  std::string get_string(const YAML::Node& n, const std::string& path) const;
  std::string get_nonempty(const YAML::Node& n, const std::string& path) const;
  long long get_int(const YAML::Node& n, const std::string& path, long long min, long long max) const;
  uint64_t get_size(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max) const;
  bool get_bool(const YAML::Node& n, const std::string& path) const;
  HostPort get_host_port(const YAML::Node& n, const std::string& path) const;
  std::string get_name(const YAML::Node& n, const std::string& path) const;

  void load_proxy(const YAML::Node& n, Config& c) const;
  TlsSettings load_tls(const YAML::Node& n, const std::string& path) const;
  std::string get_path(const YAML::Node& n, const std::string& path) const;
  void load_timeouts(const YAML::Node& n, Config& c) const;
  void load_defaults(const YAML::Node& n, Config& c);
  void load_clusters(const YAML::Node& n, Config& c) const;
  void load_split(const Fields& f, const std::string& p, Cluster& cl) const;
  std::optional<bool> get_split(const Fields& f, const std::string& p) const;
  void load_tenants(const YAML::Node& n, Config& c) const;
  void load_fleet(const YAML::Node& n, Config& c) const;
  BackendTls load_backend_tls(const YAML::Node& n, const std::string& path) const;
  std::string read_secret(const std::string& path, const std::string& key, const YAML::Node* at) const;
  void check_shared_accounts(Config& c, const YAML::Node* node) const;
  UserEntry load_user(const YAML::Node& n, const std::string& path, AuthPlugin default_plugin) const;
  AuthPlugin get_auth_plugin(const YAML::Node& n, const std::string& path) const;

  std::string file_;
  // yaml-cpp's Node::operator= rebinds or overwrites the node it refers to;
  // optional + emplace copies the handle plainly.
  std::optional<YAML::Node> default_tenant_node_, default_cluster_node_;
};

Fields Loader::fields(const YAML::Node& node, const std::string& path, std::initializer_list<const char*> known) const {
  Fields out;
  if (node.IsNull()) return out;  // "proxy:" with nothing under it
  if (!node.IsMap()) fail(path.empty() ? "(top level)" : path, "expected a mapping, got " + describe(node), &node);
  for (const auto& kv : node) {
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) fail(path.empty() ? "(top level)" : path, "a key must be a plain name, got " + describe(k), &k);
    const std::string& key = k.Scalar();
    std::string kpath = join(path, key);
    bool ok = false;
    for (const char* name : known) ok = ok || key == name;
    if (!ok) {
      std::string what = "unknown key '" + key + "'";
      // Suggest the closest known key when it is plausibly a typo.
      const char* best = nullptr;
      size_t best_d = 3;
      for (const char* name : known) {
        size_t d = edit_distance(key, name);
        if (d < best_d) best_d = d, best = name;
      }
      if (best && best_d < key.size()) what += " (did you mean '" + std::string(best) + "'?)";
      fail(kpath, what, &k);
    }
    // yaml-cpp keeps both of two equal keys; YAML forbids them.
    if (!out.emplace(key, kv.second).second) fail(kpath, "duplicate key '" + key + "'", &k);
  }
  return out;
}

void Loader::expect_list(const YAML::Node& node, const std::string& path) const {
  if (!node.IsSequence() && !node.IsNull()) fail(path, "expected a list, got " + describe(node), &node);
}

std::string Loader::get_string(const YAML::Node& n, const std::string& path) const {
  if (n.IsNull()) return "";
  if (!n.IsScalar()) fail(path, "expected a string, got " + describe(n), &n);
  const std::string& s = n.Scalar();
  if (s.find('\0') != std::string::npos) fail(path, "must not contain a NUL character", &n);
  return s;
}

std::string Loader::get_nonempty(const YAML::Node& n, const std::string& path) const {
  std::string s = get_string(n, path);
  if (s.empty()) fail(path, "must not be empty", &n);
  return s;
}

long long Loader::get_int(const YAML::Node& n, const std::string& path, long long min, long long max) const {
  long long v;
  if (!n.IsScalar() || !parse_decimal(n.Scalar(), v)) fail(path, "expected an integer, got " + describe(n), &n);
  if (v < min || v > max) {
    std::string range = max == LLONG_MAX ? "at least " + std::to_string(min)
                                         : "between " + std::to_string(min) + " and " + std::to_string(max);
    fail(path, "must be " + range + ", got " + std::to_string(v), &n);
  }
  return v;
}

// A byte count, optionally with a binary suffix K, M or G as in MySQL's
// max_allowed_packet ("16M").
uint64_t Loader::get_size(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max) const {
  const std::string expected = "expected a size in bytes (an integer, optionally followed by K, M or G), got ";
  if (!n.IsScalar()) fail(path, expected + describe(n), &n);
  std::string s = n.Scalar();
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
      case 'K': mult = 1ull << 10; break;
      case 'm':
      case 'M': mult = 1ull << 20; break;
      case 'g':
      case 'G': mult = 1ull << 30; break;
      default: break;
    }
    if (mult != 1) s.pop_back();
  }
  long long v;
  if (!parse_decimal(s, v) || v < 0) fail(path, expected + describe(n), &n);
  uint64_t bytes = static_cast<uint64_t>(v);
  if (bytes > max / mult || bytes * mult < min) {
    fail(path,
         "must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes, got '" + n.Scalar() + "'",
         &n);
  }
  return bytes * mult;
}

bool Loader::get_bool(const YAML::Node& n, const std::string& path) const {
  if (n.IsScalar()) {
    std::string s = n.Scalar();
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  fail(path, "expected true or false, got " + describe(n), &n);
}

HostPort Loader::get_host_port(const YAML::Node& n, const std::string& path) const {
  if (!n.IsScalar()) fail(path, "expected host:port, got " + describe(n), &n);
  HostPort hp;
  std::string why;
  if (!parse_host_port(n.Scalar(), hp, why)) fail(path, why, &n);
  return hp;
}

// Cluster, tenant and user names end up in login names "user@tenant#cluster"
// (and in the shared-memory table), so the separators may not appear in them.
std::string Loader::get_name(const YAML::Node& n, const std::string& path) const {
  std::string s = get_nonempty(n, path);
  for (char c : s) {
    if (c == '@' || c == '#' || c == ':')
      fail(path, "'" + s + "' must not contain '" + std::string(1, c) + "' (it separates the parts of a login name)",
           &n);
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      fail(path, "'" + s + "' must not contain control characters", &n);
  }
  // Who may see and kill whom is decided on these names: the shared-memory
  // session table must hold them whole, never cut.
  if (s.size() > shm::kNameLen - 1)
    fail(path, "'" + s.substr(0, 20) + "...' is " + std::to_string(s.size()) + " bytes long; names may have at most " +
                   std::to_string(shm::kNameLen - 1),
         &n);
  return s;
}

void Loader::load_proxy(const YAML::Node& node, Config& c) const {
  const std::string p = "proxy";
  Fields f = fields(node, p,
                    {"listen", "proxy_id", "workers", "max_connections", "run_dir", "shm_name", "admin_group",
                     "pid_file", "log_file", "log_level", "server_version", "max_packet_size", "daemonize", "user", "group",
                     "syslog_facility", "server_pool_size", "allow_shared_backend_accounts",
                     "max_pending_logins", "max_pending_logins_per_host", "statement_text_bytes",
                     "kill_log_size", "latency_histogram", "tls", "default_auth_plugin", "rsa_private_key"});
  if (auto n = find(f, "listen")) c.listen = get_host_port(*n, join(p, "listen"));
  if (auto n = find(f, "proxy_id")) c.proxy_id = static_cast<int>(get_int(*n, join(p, "proxy_id"), 0, 127));
  if (auto n = find(f, "workers")) c.workers = static_cast<int>(get_int(*n, join(p, "workers"), 0, kMaxWorkers));
  if (auto n = find(f, "max_connections"))
    c.max_connections = static_cast<int>(get_int(*n, join(p, "max_connections"), 1, 1000000));
  if (auto n = find(f, "max_pending_logins"))
    c.max_pending_logins = static_cast<int>(get_int(*n, join(p, "max_pending_logins"), 1, 1000000));
  if (auto n = find(f, "max_pending_logins_per_host"))
    c.max_pending_logins_per_host = static_cast<int>(get_int(*n, join(p, "max_pending_logins_per_host"), 1, 1000000));
  if (auto n = find(f, "statement_text_bytes"))
    c.statement_text_bytes =
        static_cast<int>(get_int(*n, join(p, "statement_text_bytes"), 0, static_cast<long long>(shm::kStatementBytes)));
  if (auto n = find(f, "latency_histogram")) c.latency_histogram = get_bool(*n, join(p, "latency_histogram"));
  if (auto n = find(f, "tls")) c.tls = load_tls(*n, join(p, "tls"));
  if (auto n = find(f, "default_auth_plugin")) c.default_auth_plugin = get_auth_plugin(*n, join(p, "default_auth_plugin"));
  if (auto n = find(f, "rsa_private_key")) {
    const std::string kp = join(p, "rsa_private_key");
    c.rsa_private_key = get_path(*n, kp);
    if (!c.rsa_private_key.empty()) {
      // Read here: at start and at SIGHUP, on the main thread, never by a worker.
      struct stat st;
      if (stat(c.rsa_private_key.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
        fail(kp, c.rsa_private_key + " is readable by every user: chmod o-r it", n);
      std::string error;
      c.rsa_key = RsaKey::load_pem_file(c.rsa_private_key, error);
      if (!c.rsa_key) fail(kp, error, n);
    }
  }
  if (auto n = find(f, "kill_log_size"))
    c.kill_log_size = static_cast<int>(get_int(*n, join(p, "kill_log_size"), 16, 1000000));
  if (auto n = find(f, "server_pool_size"))
    c.server_pool_size = static_cast<int>(get_int(*n, join(p, "server_pool_size"), 0, 100000));
  if (auto n = find(f, "allow_shared_backend_accounts"))
    c.allow_shared_backend_accounts = get_bool(*n, join(p, "allow_shared_backend_accounts"));
  if (auto n = find(f, "run_dir")) c.run_dir = get_nonempty(*n, join(p, "run_dir"));
  if (auto n = find(f, "shm_name")) {
    std::string path = join(p, "shm_name");
    c.shm_name = get_nonempty(*n, path);
    // It becomes /dev/shm/NAME: one file name, no directories.
    if (c.shm_name.size() > 200 ||
        c.shm_name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            std::string::npos ||
        c.shm_name[0] == '.')
      fail(path, "'" + c.shm_name + "' must be a plain name of letters, digits, '.', '_' and '-'", n);
  }
  if (auto n = find(f, "admin_group")) c.admin_group = get_string(*n, join(p, "admin_group"));
  if (auto n = find(f, "pid_file")) c.pid_file = get_nonempty(*n, join(p, "pid_file"));
  if (auto n = find(f, "log_file")) c.log_file = get_nonempty(*n, join(p, "log_file"));
  if (auto n = find(f, "log_level")) {
    std::string s = get_string(*n, join(p, "log_level"));
    if (!parse_log_level(s, c.log_level))
      fail(join(p, "log_level"), "unknown log level '" + s + "' (expected debug, info, warn or error)", n);
  }
  if (auto n = find(f, "server_version")) {
    std::string path = join(p, "server_version");
    c.server_version = get_nonempty(*n, path);
    // Connectors parse the leading "major.minor.patch" to pick features.
    if (c.server_version[0] < '0' || c.server_version[0] > '9')
      fail(path, "must begin with a version number such as 8.0.30, got '" + c.server_version + "'", n);
  }
  if (auto n = find(f, "max_packet_size"))
    c.max_packet_size = get_size(*n, join(p, "max_packet_size"), 1024, 1ull << 30);
  if (auto n = find(f, "daemonize")) c.daemonize = get_bool(*n, join(p, "daemonize"));
  // Whether the account exists is checked by myrelayd at start (and by
  // --check), not here: a reload must not fail because of it.
  for (const char* key : {"user", "group"}) {
    auto n = find(f, key);
    if (!n) continue;
    std::string path = join(p, key);
    std::string s = get_string(*n, path);
    if (s.find_first_of(" \t\n:/") != std::string::npos)
      fail(path, "'" + s + "' is not a valid " + key + " name", n);
    (std::string(key) == "user" ? c.user : c.group) = s;
  }
  if (auto n = find(f, "syslog_facility")) {
    std::string path = join(p, "syslog_facility");
    std::string s = get_string(*n, path);
    int facility;
    if (!parse_syslog_facility(s, facility))
      fail(path, "unknown syslog facility '" + s + "' (expected daemon, user or local0..local7)", n);
    c.syslog_facility = s;
  }
}

// A file named in the configuration: relative names are taken from the
// configuration file's directory (the daemon leaves its start directory).
std::string Loader::get_path(const YAML::Node& n, const std::string& path) const {
  std::string s = get_string(n, path);
  if (s.empty() || s[0] == '/') return s;
  size_t slash = file_.rfind('/');
  return slash == std::string::npos ? s : file_.substr(0, slash + 1) + s;
}

// proxy.tls (and later fleet.tls): { cert, key, ca, min_version, ciphers }.
// Whether the files load and match is checked when the context is built
// (at start and at every reload), not here.
TlsSettings Loader::load_tls(const YAML::Node& node, const std::string& p) const {
  Fields f = fields(node, p, {"cert", "key", "ca", "min_version", "ciphers"});
  TlsSettings t;
  if (f.empty()) return t;  // "tls:" with nothing: off
  auto cert = find(f, "cert");
  auto key = find(f, "key");
  if (!cert) fail(p, "missing key 'cert' (the server certificate, PEM)", &node);
  if (!key) fail(p, "missing key 'key' (the certificate's private key, PEM)", &node);
  get_nonempty(*cert, join(p, "cert"));
  get_nonempty(*key, join(p, "key"));
  t.cert = get_path(*cert, join(p, "cert"));
  t.key = get_path(*key, join(p, "key"));
  if (auto n = find(f, "ca")) t.ca = get_path(*n, join(p, "ca"));
  if (auto n = find(f, "min_version")) {
    t.min_version = get_string(*n, join(p, "min_version"));
    if (!tls_version_known(t.min_version))
      fail(join(p, "min_version"), "unknown TLS version '" + t.min_version + "' (expected TLSv1.2 or TLSv1.3)", n);
  }
  if (auto n = find(f, "ciphers")) t.ciphers = get_string(*n, join(p, "ciphers"));
  return t;
}

// clusters[].tls: { mode, ca, cert, key }.  The client context is made here,
// so a missing or broken file rejects the configuration (a reload keeps the
// running one).
BackendTls Loader::load_backend_tls(const YAML::Node& node, const std::string& p) const {
  Fields f = fields(node, p, {"mode", "ca", "cert", "key"});
  BackendTls t;
  if (auto n = find(f, "mode")) {
    static const std::pair<const char*, BackendTls::Mode> kModes[] = {
        {"disabled", BackendTls::Mode::Disabled},   {"preferred", BackendTls::Mode::Preferred},
        {"required", BackendTls::Mode::Required},   {"verify_ca", BackendTls::Mode::VerifyCa},
        {"verify_identity", BackendTls::Mode::VerifyIdentity}};
    std::string m = get_string(*n, join(p, "mode"));
    bool known = false;
    for (const auto& k : kModes)
      if (m == k.first) t.mode = k.second, known = true;
    if (!known)
      fail(join(p, "mode"),
           "unknown mode '" + m + "' (expected disabled, preferred, required, verify_ca or verify_identity)", n);
  }
  if (auto n = find(f, "ca")) t.files.ca = get_path(*n, join(p, "ca"));
  if (auto n = find(f, "cert")) t.files.cert = get_path(*n, join(p, "cert"));
  if (auto n = find(f, "key")) t.files.key = get_path(*n, join(p, "key"));
  if (t.files.cert.empty() != t.files.key.empty())
    fail(t.files.cert.empty() ? join(p, "cert") : join(p, "key"), "cert and key go together (the client certificate)",
         &node);
  const bool verifies = t.mode == BackendTls::Mode::VerifyCa || t.mode == BackendTls::Mode::VerifyIdentity;
  if (verifies && t.files.ca.empty())
    fail(join(p, "ca"), std::string("required by mode ") + BackendTls::mode_name(t.mode) +
                            " (the CA that signed the servers' certificates)",
         &node);
  if (!verifies && !t.files.ca.empty())
    fail(join(p, "ca"), std::string("is used only by modes verify_ca and verify_identity, not ") +
                            BackendTls::mode_name(t.mode),
         &node);
  if (t.mode == BackendTls::Mode::Disabled) return t;
  std::string error;
  t.ctx = TlsContext::build(t.files, p, error, TlsRole::Client);
  if (!t.ctx) throw ConfigError(file_ + ": " + error);
  return t;
}

void Loader::load_timeouts(const YAML::Node& node, Config& c) const {
  const std::string p = "timeouts";
  Fields f = fields(node, p, {"handshake_ms", "backend_connect_ms", "backend_keepalive_s", "client_idle_s",
                              "shutdown_grace_s",
                              "server_pool_idle_s", "net_read_timeout_s", "replica_idle_s", "server_idle_s", "primary_wait_ms",
                              "idle_in_transaction_s", "statement_ms", "kill_escalate_ms"});
  if (auto n = find(f, "handshake_ms"))
    c.handshake_ms = static_cast<int>(get_int(*n, join(p, "handshake_ms"), 1, kMaxMs));
  if (auto n = find(f, "backend_connect_ms"))
    c.backend_connect_ms = static_cast<int>(get_int(*n, join(p, "backend_connect_ms"), 1, kMaxMs));
  // TCP_KEEPIDLE takes at most 32767 seconds.
  if (auto n = find(f, "backend_keepalive_s"))
    c.backend_keepalive_s = static_cast<int>(get_int(*n, join(p, "backend_keepalive_s"), 0, 32767));
  if (auto n = find(f, "client_idle_s"))
    c.client_idle_s = static_cast<int>(get_int(*n, join(p, "client_idle_s"), 1, kMaxS));
  if (auto n = find(f, "shutdown_grace_s"))
    c.shutdown_grace_s = static_cast<int>(get_int(*n, join(p, "shutdown_grace_s"), 1, kMaxS));
  if (auto n = find(f, "server_pool_idle_s"))
    c.server_pool_idle_s = static_cast<int>(get_int(*n, join(p, "server_pool_idle_s"), 1, kMaxS));
  if (auto n = find(f, "net_read_timeout_s"))
    c.net_read_timeout_s = static_cast<int>(get_int(*n, join(p, "net_read_timeout_s"), 1, kMaxS));
  if (auto n = find(f, "replica_idle_s"))
    c.replica_idle_s = static_cast<int>(get_int(*n, join(p, "replica_idle_s"), 1, kMaxS));
  if (auto n = find(f, "server_idle_s"))
    c.server_idle_s = static_cast<int>(get_int(*n, join(p, "server_idle_s"), 1, kMaxS));
  if (auto n = find(f, "idle_in_transaction_s"))
    c.idle_in_transaction_s = static_cast<int>(get_int(*n, join(p, "idle_in_transaction_s"), 0, kMaxS));
  if (auto n = find(f, "statement_ms"))
    c.statement_ms = static_cast<int>(get_int(*n, join(p, "statement_ms"), 0, kMaxMs));
  if (auto n = find(f, "kill_escalate_ms"))
    c.kill_escalate_ms = static_cast<int>(get_int(*n, join(p, "kill_escalate_ms"), 100, kMaxMs));
  if (auto n = find(f, "primary_wait_ms"))
    c.primary_wait_ms = static_cast<int>(get_int(*n, join(p, "primary_wait_ms"), 0, kMaxMs));
}

void Loader::load_defaults(const YAML::Node& node, Config& c) {
  Fields f = fields(node, "defaults", {"tenant", "cluster"});
  // Existence is checked once clusters and tenants are loaded; the nodes are
  // kept for the line number then.
  if (auto n = find(f, "tenant")) {
    c.default_tenant = get_name(*n, "defaults.tenant");
    default_tenant_node_.emplace(*n);
  }
  if (auto n = find(f, "cluster")) {
    c.default_cluster = get_name(*n, "defaults.cluster");
    default_cluster_node_.emplace(*n);
  }
}

void Loader::load_clusters(const YAML::Node& node, Config& c) const {
  expect_list(node, "clusters");
  size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string p = index("clusters", i++);
    Fields f = fields(item, p, {"name", "servers", "read_write_split", "max_replica_lag_s", "causal_reads",
                                "causal_reads_timeout_ms", "monitor", "tls", "multiplexing",
                                "max_server_connections", "queue_timeout_ms"});
    Cluster cl;
    auto name = find(f, "name");
    if (!name) fail(p, "missing key 'name'", &item);
    cl.name = get_name(*name, join(p, "name"));
    for (size_t j = 0; j < c.clusters.size(); ++j)
      if (c.clusters[j].name == cl.name)
        fail(join(p, "name"), "duplicate cluster name '" + cl.name + "' (also " + index("clusters", j) + ")", name);

    auto servers = find(f, "servers");
    const std::string sp = join(p, "servers");
    if (!servers || servers->IsNull() || (servers->IsSequence() && servers->size() == 0))
      fail(sp, "cluster '" + cl.name + "' needs at least one server", servers ? servers : &item);
    expect_list(*servers, sp);
    size_t j = 0;
    for (const YAML::Node& s : *servers) {
      const std::string spj = index(sp, j++);
      Fields sf = fields(s, spj, {"address", "role", "weight"});
      BackendServer srv;
      auto addr = find(sf, "address");
      if (!addr) fail(spj, "missing key 'address'", &s);
      srv.address = get_host_port(*addr, join(spj, "address"));
      for (size_t k = 0; k < cl.servers.size(); ++k)
        if (cl.servers[k].address.host == srv.address.host && cl.servers[k].address.port == srv.address.port)
          fail(join(spj, "address"), "duplicate server " + addr->Scalar() + " (also " + index(sp, k) + ")", addr);
      // A backend equal to our own listen address would loop every
      // connection back into the proxy.
      if (srv.address.host == c.listen.host && srv.address.port == c.listen.port)
        fail(join(spj, "address"), addr->Scalar() + " is the proxy's own listen address", addr);
      if (auto role = find(sf, "role")) {
        std::string r = get_string(*role, join(spj, "role"));
        if (r == "primary") {
          srv.role = ServerRole::Primary;
        } else if (r == "replica") {
          srv.role = ServerRole::Replica;
        } else {
          fail(join(spj, "role"), "expected primary or replica, got '" + r + "'", role);
        }
      }
      if (auto w = find(sf, "weight")) srv.weight = static_cast<int>(get_int(*w, join(spj, "weight"), 0, 1000000));
      cl.servers.push_back(srv);
    }
    load_split(f, p, cl);
    c.clusters.push_back(std::move(cl));
  }
}

// The read/write split's keys of a cluster (DESIGN section 4).
void Loader::load_split(const Fields& f, const std::string& p, Cluster& cl) const {
  if (auto s = get_split(f, p)) cl.read_write_split = *s;
  if (auto n = find(f, "max_replica_lag_s"))
    cl.max_replica_lag_s = static_cast<int>(get_int(*n, join(p, "max_replica_lag_s"), 0, kMaxS));
  if (auto n = find(f, "causal_reads")) cl.causal_reads = get_bool(*n, join(p, "causal_reads"));
  if (auto n = find(f, "causal_reads_timeout_ms"))
    cl.causal_reads_timeout_ms = static_cast<int>(get_int(*n, join(p, "causal_reads_timeout_ms"), 1, kMaxMs));
  if (auto m = find(f, "monitor")) {
    const std::string mp = join(p, "monitor");
    Fields mf = fields(*m, mp, {"user", "password", "interval_ms"});
    auto user = find(mf, "user");
    if (!user) fail(mp, "missing key 'user' (the account the proxy checks the servers' health with)", m);
    cl.monitor.user = get_nonempty(*user, join(mp, "user"));
    if (auto pw = find(mf, "password")) cl.monitor.password = get_string(*pw, join(mp, "password"));
    if (auto n = find(mf, "interval_ms"))
      cl.monitor.interval_ms = static_cast<int>(get_int(*n, join(mp, "interval_ms"), 10, 3600 * 1000));
  }
  if (auto n = find(f, "multiplexing")) cl.multiplexing = get_bool(*n, join(p, "multiplexing"));
  if (auto n = find(f, "max_server_connections"))
    cl.max_server_connections = static_cast<int>(get_int(*n, join(p, "max_server_connections"), 0, 1000000));
  if (auto n = find(f, "queue_timeout_ms"))
    cl.queue_timeout_ms = static_cast<int>(get_int(*n, join(p, "queue_timeout_ms"), 1, kMaxMs));
  if (auto t = find(f, "tls")) cl.tls = load_backend_tls(*t, join(p, "tls"));
  else cl.tls = load_backend_tls(YAML::Node(), join(p, "tls"));  // preferred, no files
  bool replica = false;
  for (const BackendServer& s : cl.servers) replica = replica || s.role == ServerRole::Replica;
  // A split with no one to read from, or no one to follow a failover with,
  // is a mistake an operator should hear about at once.
  if (cl.read_write_split && !replica)
    fail(join(p, "read_write_split"), "cluster '" + cl.name + "' has no server with role: replica to read from",
         find(f, "read_write_split"));
}

// read_write_split: on | off, for a cluster, a tenant or a user.
std::optional<bool> Loader::get_split(const Fields& f, const std::string& p) const {
  auto n = find(f, "read_write_split");
  if (!n) return std::nullopt;
  return get_bool(*n, join(p, "read_write_split"));
}

AuthPlugin Loader::get_auth_plugin(const YAML::Node& n, const std::string& path) const {
  std::string s = get_string(n, path);
  AuthPlugin p;
  if (!parse_auth_plugin(s, p))
    fail(path, "unknown authentication plugin '" + s + "' (expected mysql_native_password or caching_sha2_password)",
         &n);
  return p;
}

UserEntry Loader::load_user(const YAML::Node& n, const std::string& path, AuthPlugin default_plugin) const {
  Fields f = fields(n, path, {"name", "password", "read_write_split", "require_tls", "auth_plugin"});
  UserEntry u;
  auto name = find(f, "name");
  if (!name) fail(path, "missing key 'name'", &n);
  u.name = get_name(*name, join(path, "name"));
  u.read_write_split = get_split(f, path);
  if (auto rt = find(f, "require_tls")) u.require_tls = get_bool(*rt, join(path, "require_tls"));
  auto ap = find(f, "auth_plugin");
  u.auth_plugin = ap ? get_auth_plugin(*ap, join(path, "auth_plugin")) : default_plugin;
  auto pw = find(f, "password");
  if (!pw) return u;  // no password
  const std::string pp = join(path, "password");
  std::string text = get_string(*pw, pp);
  if (text.empty()) return u;
  u.has_password = true;
  if (text.size() == 41 && text[0] == '*') {
    // "*" + 40 characters is unmistakably meant as a PASSWORD() hash; a
    // typo in it must not turn it into a plain-text password.
    if (!parse_password_hash(text, u.hash2))
      fail(pp, "looks like a password hash ('*' and 40 hex digits) but is not valid hex", pw);
    // caching_sha2_password is served by full authentication only (over TLS
    // or RSA): the proxy checks the clear password against this hash.
    u.has_native_hash = true;
  } else if (text.compare(0, 5, "sha2:") == 0) {
    if (!parse_sha2_hash(text, u.sha2_hash2))
      fail(pp, "looks like a caching_sha2_password hash but is not 'sha2:' and 64 hex digits", pw);
    u.has_sha2_hash = true;
    // SHA256(SHA256(pw)) cannot answer a mysql_native_password scramble.
    if (u.auth_plugin != AuthPlugin::CachingSha2)
      fail(ap ? join(path, "auth_plugin") : pp,
           "a 'sha2:' password serves only caching_sha2_password, but this user's auth_plugin is " +
               std::string(auth_plugin_name(u.auth_plugin)) +
               (ap ? "" : " (proxy.default_auth_plugin)") +
               ": set auth_plugin: caching_sha2_password, or give the password in clear text or as '*HEX'",
           ap ? ap : pw);
  } else {
    // Plain text: both hashes, and the clear text stays for backends whose
    // method needs it (client_ed25519) and for SHA1(pw) after a
    // caching_sha2_password login.
    Sha1Digest h1 = sha1(text);
    u.hash2 = sha1(h1.data(), h1.size());
    std::fill(h1.begin(), h1.end(), 0);
    u.has_native_hash = true;
    Sha256Digest s1 = sha256(text);
    u.sha2_hash2 = sha256(s1.data(), s1.size());
    std::fill(s1.begin(), s1.end(), 0);
    u.has_sha2_hash = true;
    u.clear_password = std::make_shared<const std::string>(text);
    std::fill(text.begin(), text.end(), '\0');
  }
  return u;
}

// A user name in two tenants is one backend account for both: each could
// reach the other's backend sessions (KILL, SHOW PROCESSLIST run on the
// backend), which the proxy's tenant rules cannot see.  Only an explicit
// choice allows it.
void Loader::check_shared_accounts(Config& c, const YAML::Node* node) const {
  std::map<std::string, std::string> tenant_of;  // user name -> the first tenant that has it
  for (const Tenant& t : c.tenants) {
    for (const UserEntry& u : t.users) {
      auto it = tenant_of.emplace(u.name, t.name).first;
      if (it->second == t.name) continue;
      std::string both = "user '" + u.name + "' is in tenants '" + it->second + "' and '" + t.name +
                         "': both log in to the backends as '" + u.name +
                         "', so each can reach the other's sessions through the backend";
      if (!c.allow_shared_backend_accounts)
        fail("tenants", both + "; give them different user names, or set proxy.allow_shared_backend_accounts: true",
             node);
      c.shared_backend_accounts.push_back(both);
    }
  }
}

void Loader::load_tenants(const YAML::Node& node, Config& c) const {
  expect_list(node, "tenants");
  size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string p = index("tenants", i++);
    Fields f = fields(item, p, {"name", "privileged", "users", "read_write_split", "timeouts", "require_tls",
                                "multiplexing"});
    Tenant t;
    auto name = find(f, "name");
    if (!name) fail(p, "missing key 'name'", &item);
    t.name = get_name(*name, join(p, "name"));
    for (size_t j = 0; j < c.tenants.size(); ++j)
      if (c.tenants[j].name == t.name)
        fail(join(p, "name"), "duplicate tenant name '" + t.name + "' (also " + index("tenants", j) + ")", name);
    if (auto n = find(f, "privileged")) t.privileged = get_bool(*n, join(p, "privileged"));
    if (auto n = find(f, "require_tls")) t.require_tls = get_bool(*n, join(p, "require_tls"));
    t.read_write_split = get_split(f, p);
    if (auto n = find(f, "multiplexing")) t.multiplexing = get_bool(*n, join(p, "multiplexing"));
    if (auto tn = find(f, "timeouts")) {
      // The tenant's own limits (the global ones in timeouts: otherwise).
      const std::string tp = join(p, "timeouts");
      Fields tf = fields(*tn, tp, {"idle_in_transaction_s", "statement_ms"});
      if (auto n = find(tf, "idle_in_transaction_s"))
        t.idle_in_transaction_s = static_cast<int>(get_int(*n, join(tp, "idle_in_transaction_s"), 0, kMaxS));
      if (auto n = find(tf, "statement_ms"))
        t.statement_ms = static_cast<int>(get_int(*n, join(tp, "statement_ms"), 0, kMaxMs));
    }
    if (auto users = find(f, "users")) {
      const std::string up = join(p, "users");
      expect_list(*users, up);
      size_t j = 0;
      for (const YAML::Node& un : *users) {
        const std::string upj = index(up, j++);
        UserEntry u = load_user(un, upj, c.default_auth_plugin);
        for (size_t k = 0; k < t.users.size(); ++k)
          if (t.users[k].name == u.name)
            fail(join(upj, "name"),
                 "duplicate user '" + u.name + "' in tenant '" + t.name + "' (also " + index(up, k) + ")", &un);
        t.users.push_back(std::move(u));
      }
    }
    c.tenants.push_back(std::move(t));
  }
}

// Counts a text's YAML documents, at most `cap` of them, without building
// them.  yaml-cpp's LoadAll never returns for some texts (a lone ','): its
// parser hands out the same empty document again and again.  A document
// that starts where the last one did is that loop, not a document.
// fleet: { listen, peers: [{ proxy_id, address }], secret_file, timeout_ms }.
// Peer addresses are resolved here (the main thread, or myrelayctl), so a
// worker that forwards a kill never waits for DNS.
void Loader::load_fleet(const YAML::Node& node, Config& c) const {
  const std::string p = "fleet";
  Fields f = fields(node, p, {"listen", "peers", "secret_file", "timeout_ms", "tls"});
  FleetConfig& fl = c.fleet;
  fl.enabled = true;
  auto listen = find(f, "listen");
  if (!listen) fail(join(p, "listen"), "required: the address other proxies reach this one's peer port on", &node);
  fl.listen = get_host_port(*listen, join(p, "listen"));
  if (fl.listen.str() == c.listen.str())
    fail(join(p, "listen"), "must differ from proxy.listen (" + c.listen.str() + ")", listen);
  if (auto n = find(f, "timeout_ms")) fl.timeout_ms = static_cast<int>(get_int(*n, join(p, "timeout_ms"), 10, 600000));
  auto secret = find(f, "secret_file");
  if (!secret) fail(join(p, "secret_file"), "required: a file holding the fleet's shared secret", &node);
  get_nonempty(*secret, join(p, "secret_file"));
  fl.secret_file = get_path(*secret, join(p, "secret_file"));
  fl.secret = read_secret(fl.secret_file, join(p, "secret_file"), secret);
  if (auto tls = find(f, "tls")) {
    // Built here, not at start like proxy.tls: workers and myrelayctl take
    // the pair with the rest of the fleet's settings.
    const std::string tp = join(p, "tls");
    TlsSettings settings = load_tls(*tls, tp);
    if (!settings.enabled()) fail(tp, "cert and key are required: every proxy of the fleet is a TLS server and client", tls);
    std::string error;
    fl.tls = fleet::TlsPair::make(settings, tp, error);
    if (!fl.tls) throw ConfigError(file_ + ": " + error);
  }
  if (auto peers = find(f, "peers")) {
    const std::string pp = join(p, "peers");
    expect_list(*peers, pp);
    for (size_t i = 0; i < peers->size(); ++i) {
      const std::string ip = index(pp, i);
      const YAML::Node item = (*peers)[i];
      Fields pf = fields(item, ip, {"proxy_id", "address"});
      auto id = find(pf, "proxy_id");
      auto addr = find(pf, "address");
      if (!id) fail(join(ip, "proxy_id"), "required", &item);
      if (!addr) fail(join(ip, "address"), "required: the peer's fleet.listen", &item);
      FleetPeer peer;
      peer.proxy_id = static_cast<int>(get_int(*id, join(ip, "proxy_id"), 0, 127));
      if (peer.proxy_id == c.proxy_id)
        fail(join(ip, "proxy_id"),
             std::to_string(peer.proxy_id) + " is this proxy's own proxy.proxy_id; every proxy of a fleet needs its own",
             id);
      if (fl.find_peer(peer.proxy_id))
        fail(join(ip, "proxy_id"), std::to_string(peer.proxy_id) + " is listed twice", id);
      peer.address = get_host_port(*addr, join(ip, "address"));
      std::string why;
      if (!resolve_host_port(peer.address, false, peer.addr, peer.addr_len, why)) fail(join(ip, "address"), why, addr);
      fl.peers.push_back(peer);
    }
  }
}

// The fleet's shared secret: whoever holds it may kill any session of the
// fleet, so the file must be the daemon's alone.
std::string Loader::read_secret(const std::string& path, const std::string& key, const YAML::Node* at) const {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail(key, "cannot read '" + path + "': " + strerror(errno), at);
  struct stat st;
  std::string text;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    fail(key, "'" + path + "' is not a regular file", at);
  }
  if (st.st_mode & S_IROTH) {
    close(fd);
    fail(key, "'" + path + "' is readable by others (mode " + [&] {
      char m[8];
      snprintf(m, sizeof m, "%04o", unsigned(st.st_mode & 07777));
      return std::string(m);
    }() + "); it holds the fleet's secret: chmod o-rwx it", at);
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, size_t(n));
  close(fd);
  while (!text.empty() && isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.size() < 16)
    fail(key, "'" + path + "' holds " + std::to_string(text.size()) +
                  " bytes; the fleet's secret must have at least 16 (e.g. openssl rand -hex 32 > " + path + ")",
         at);
  return text;
}

size_t count_documents(const std::string& text, size_t cap) {
  struct Starts : YAML::EventHandler {
    std::vector<size_t> at;
    void OnDocumentStart(const YAML::Mark& m) override { at.push_back(size_t(m.pos)); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  } starts;
  std::istringstream in(text);
  YAML::Parser parser(in);
  while (starts.at.size() < cap && parser.HandleNextDocument(starts)) {
    size_t n = starts.at.size();
    if (n >= 2 && starts.at[n - 1] <= starts.at[n - 2]) {
      starts.at.pop_back();
      break;
    }
  }
  return starts.at.size();
}

Config Loader::load(const std::string& text) {
  YAML::Node root;
  try {
    if (count_documents(text, 2) > 1)
      throw ConfigError(file_ + ": holds more than one YAML document ('---'); expected one");
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = file_;
    if (!e.mark.is_null()) where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    throw ConfigError(where + ": " + e.msg);
  }

  Config c;
  c.file = file_;
  Fields f = fields(root, "", {"proxy", "timeouts", "defaults", "clusters", "tenants", "fleet"});
  // Proxy first: the clusters are checked against its listen address.
  if (auto n = find(f, "proxy")) load_proxy(*n, c);
  if (auto n = find(f, "timeouts")) load_timeouts(*n, c);
  if (auto n = find(f, "defaults")) load_defaults(*n, c);
  if (auto n = find(f, "clusters")) load_clusters(*n, c);
  if (auto n = find(f, "tenants")) load_tenants(*n, c);
  if (auto n = find(f, "fleet")) load_fleet(*n, c);

  if (c.clusters.empty())
    fail("clusters", "at least one cluster with at least one server is required", find(f, "clusters"));
  size_t servers = 0;
  for (const Cluster& cl : c.clusters) servers += cl.servers.size();
  if (servers > shm::kMaxServers)
    fail("clusters", std::to_string(servers) + " servers in all; the proxy's health table holds at most " +
                         std::to_string(shm::kMaxServers),
         find(f, "clusters"));
  if (c.tenants.empty()) fail("tenants", "at least one tenant with at least one user is required", find(f, "tenants"));
  bool any_user = false;
  for (const Tenant& t : c.tenants) any_user = any_user || !t.users.empty();
  if (!any_user) fail("tenants", "at least one tenant with at least one user is required", find(f, "tenants"));

  check_shared_accounts(c, find(f, "tenants"));
  if (!c.tls.enabled()) {
    for (size_t i = 0; i < c.tenants.size(); ++i) {
      const Tenant& t = c.tenants[i];
      std::string where = t.require_tls ? index("tenants", i) + ".require_tls" : "";
      for (size_t j = 0; where.empty() && j < t.users.size(); ++j)
        if (t.users[j].require_tls.value_or(false))
          where = index(index("tenants", i) + ".users", j) + ".require_tls";
      if (!where.empty())
        fail(where, "TLS is required but not offered: set proxy.tls (cert and key), or require_tls: false",
             find(f, "tenants"));
    }
  }

  const YAML::Node* dt = default_tenant_node_ ? &*default_tenant_node_ : nullptr;
  const YAML::Node* dc = default_cluster_node_ ? &*default_cluster_node_ : nullptr;
  if (!c.find_tenant(c.default_tenant))
    fail("defaults.tenant",
         "no tenant named '" + c.default_tenant + "'" + (dt ? "" : " (the built-in default; set defaults.tenant)"), dt);
  if (!c.find_cluster(c.default_cluster))
    fail("defaults.cluster",
         "no cluster named '" + c.default_cluster + "'" + (dc ? "" : " (the built-in default; set defaults.cluster)"),
         dc);
  return c;
}

}  // namespace

Config load_config_string(const std::string& yaml_text, const std::string& file_name) {
  return Loader(file_name).load(yaml_text);
}

}  // namespace myrelay
