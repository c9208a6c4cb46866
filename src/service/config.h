// The daemon's configuration: the YAML file of DESIGN section 4, parsed and
// validated into plain structs.  Every error names the file, the key and what
// is wrong, so an operator can fix a file without reading code.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/tls_context.h"
#include "service/log.h"

namespace myrelay {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string str() const {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

enum class ServerRole { Primary, Replica };
const char* server_role_name(ServerRole r);

struct BackendServer {
  HostPort address;
  ServerRole role = ServerRole::Primary;  // as configured; the health checker may see otherwise
  // Its share of the reads; -1 (unset): 1 while it acts as a replica, 0
  // while it is the writable one (a primary takes reads only when given a weight).
  int weight = -1;
  // This server's entry in the health table (routing/server_health.h),
  // given by the proxy when the configuration is loaded or reloaded; the
  // same cluster and address keep the same entry across reloads.
  int health = -1;
  // The address resolved by resolve_backends(), on the main thread when the
  // configuration is loaded or reloaded: a worker never waits for DNS.
  // An IPv4 or IPv6 address (every server session holds a copy: no
  // sockaddr_storage's 128 bytes).
  union Address {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } sockaddr{};
  int sockaddr_len = 0;         // 0: not resolved (see resolve_error)
  std::string resolve_error;
};

// The account the proxy's own connections use: health checks, and side
// connections where one is configured.
struct MonitorAccount {
  std::string user;               // "" = none configured
  std::string password;           // clear text: health checks log in with it
  int interval_ms = 1000;
};

// TLS towards a cluster's backends (clusters[].tls; DESIGN section 4b).
struct BackendTls {
  enum class Mode {
    Disabled,        // never
    Preferred,       // when the server offers it (the default)
    Required,        // the server must offer it; its certificate is not checked
    VerifyCa,        // ... and its certificate must be signed by `ca`
    VerifyIdentity,  // ... and name the server's host (or IP address)
  };
  Mode mode = Mode::Preferred;
  TlsSettings files;  // ca, and cert + key to present when the server asks
  // The client context, made when the configuration is loaded (null when
  // disabled), so a bad file rejects the configuration.
  std::shared_ptr<const TlsContext> ctx;
  static const char* mode_name(Mode m);
};

struct Cluster {
  std::string name;
  std::vector<BackendServer> servers;
  BackendTls tls;  // also for its side connections (KILL QUERY, health checks)
  // Read/write split (DESIGN section 4).
  bool read_write_split = false;
  int max_replica_lag_s = 10;
  bool causal_reads = false;
  int causal_reads_timeout_ms = 1000;
  // Multiplexing (DESIGN section 4): idle, restorable sessions give their
  // server session back to the worker's shared set; statements take one.
  bool multiplexing = false;
  // The cap on backend connections to each of its servers, for the whole
  // proxy (each worker gets its share: worker_share()); 0 = no cap.
  int max_server_connections = 0;
  // How long a statement (or a login) waits for a backend connection
  // under the cap before it gets ERROR 1040.
  int queue_timeout_ms = 10000;
  MonitorAccount monitor;
  // This worker's share of max_server_connections: an even split, the
  // remainder to the first workers, at least one each (so with fewer
  // connections than workers the proxy may open one per worker); 0 = no cap.
  int worker_share(int worker, int workers) const;
};

// How a client proves its password (DESIGN section 4b).
enum class AuthPlugin { NativePassword, CachingSha2 };
const char* auth_plugin_name(AuthPlugin p);  // "mysql_native_password", "caching_sha2_password"
bool parse_auth_plugin(const std::string& name, AuthPlugin& out);

struct UserEntry {
  std::string name;
  // has_password=false means an empty password.
  bool has_password = false;
  // SHA1(SHA1(password)), the MySQL "hash" stored in mysql.user: valid when
  // has_native_hash (a clear or "*HEX" password).
  bool has_native_hash = false;
  Sha1Digest hash2{};
  // SHA256(SHA256(password)) for caching_sha2_password's fast path: valid
  // when has_sha2_hash (a clear or "sha2:<hex>" password).
  bool has_sha2_hash = false;
  Sha256Digest sha2_hash2{};
  AuthPlugin auth_plugin = AuthPlugin::NativePassword;
  // The clear password when the configuration gives it in clear (else
  // null): only a backend method that needs it (client_ed25519) uses it.
  std::shared_ptr<const std::string> clear_password;
  std::optional<bool> read_write_split;  // overrides the tenant's and the cluster's
  std::optional<bool> require_tls;       // overrides the tenant's
};

struct Tenant {
  std::string name;
  bool privileged = false;
  std::vector<UserEntry> users;
  std::optional<bool> read_write_split;  // overrides the cluster's
  std::optional<bool> multiplexing;      // overrides the cluster's
  std::optional<int> idle_in_transaction_s;  // overrides timeouts.idle_in_transaction_s
  std::optional<int> statement_ms;           // overrides timeouts.statement_ms
  bool require_tls = false;  // a login without TLS is refused (ERROR 1045)
};

constexpr int kMaxWorkers = 256;

namespace fleet {
class TlsPair;
}

// Another proxy of the fleet (DESIGN section 6a), and where its peer port is.
struct FleetPeer {
  int proxy_id = 0;
  HostPort address;
  sockaddr_storage addr{};  // resolved when the configuration is loaded
  int addr_len = 0;
};

// fleet: the other proxies behind the same balancer.  Absent: a lone proxy.
struct FleetConfig {
  bool enabled = false;
  HostPort listen;                 // the peer port: answers signed peer requests only
  std::vector<FleetPeer> peers;
  std::string secret_file;
  std::string secret;              // the file's contents, read at load (never logged)
  int timeout_ms = 2000;           // a whole request to a peer: connect, ask, answer
  // fleet.tls: peer links over TLS (null: plain TCP), its contexts made when
  // the configuration is loaded, so a broken pair rejects the file.
  std::shared_ptr<const fleet::TlsPair> tls;

  const FleetPeer* find_peer(int proxy_id) const;
};

struct Config {
  std::string file;  // where it was read from, for messages

  // proxy:
  HostPort listen{"127.0.0.1", 2883};
  int proxy_id = 0;              // 0..127
  int workers = 0;               // 0 = one per core
  int max_connections = 10000;   // also the number of shm session slots
  // Connections that have not finished logging in, in all and from one
  // client address (see service/admission.h).
  int max_pending_logins = 1024;
  int max_pending_logins_per_host = 256;
  std::string run_dir = "/run/myrelay";
  std::string shm_name = "myrelay";
  std::string admin_group;       // "" = none
  std::string pid_file = "/run/myrelay/myrelayd.pid";
  std::string log_file = "/var/log/myrelay/myrelayd.log";  // "-" = stderr
  LogLevel log_level = LogLevel::Info;
  // Version string in the proxy's handshake before a backend has told us its
  // own; once one has, the backend's is used.
  std::string server_version = "8.0.30-myrelay";
  // Largest logical packet (command or row) a session may send, like the
  // server's max_allowed_packet; bigger ones close the session.
  uint64_t max_packet_size = 1024ull * 1024 * 1024;
  // Run in the background (double fork, pid file); myrelayd -d / -F override.
  bool daemonize = false;
  // Account to switch to once the listener is bound; "" = stay as started.
  // group "" = the user's primary group.  Names or numeric ids.
  std::string user;
  std::string group;
  // Facility of the messages when log_file is "syslog".
  std::string syslog_facility = "daemon";
  // Bytes of each session's current statement that SHOW PROXYSESSION
  // ATTRIBUTE and myrelayctl show (shm::kStatementBytes at most); 0 = none.
  int statement_text_bytes = 256;
  // Entries the kill log keeps in shared memory (the newest; fixed at start).
  int kill_log_size = 1000;
  // Whether workers keep statement latency histograms in shared memory.
  bool latency_histogram = true;
  // Idle server sessions each worker keeps for reuse after their clients
  // quit (reset, then given to the next login with COM_CHANGE_USER); 0 = off.
  int server_pool_size = 0;
  // Whether one user name may stand in several tenants (one backend account
  // shared by tenants that are otherwise kept apart); see the loader.
  bool allow_shared_backend_accounts = false;
  std::vector<std::string> shared_backend_accounts;  // what is shared, for the warning
  // TLS towards clients (proxy.tls); off while tls.cert is empty.  Paths
  // are made absolute (relative to the configuration file's directory).
  TlsSettings tls;
  // The method the proxy's handshake announces, and every user's unless
  // the user says otherwise (proxy.default_auth_plugin).
  AuthPlugin default_auth_plugin = AuthPlugin::NativePassword;
  // proxy.rsa_private_key: caching_sha2_password's full authentication over
  // plain TCP (the key read when the configuration is loaded; null: none).
  std::string rsa_private_key;
  std::shared_ptr<const RsaKey> rsa_key;

  // timeouts:
  int handshake_ms = 10000;
  int backend_connect_ms = 3000;  // connecting and the whole login
  // TCP keepalive on backend connections: a backend silent this long is
  // probed, and declared lost a few probes later; 0 = off.
  int backend_keepalive_s = 60;
  int client_idle_s = 28800;
  int shutdown_grace_s = 30;
  int server_pool_idle_s = 60;  // a pooled server session unused this long is closed
  // A client that has begun a packet (a command, LOCAL INFILE data, the
  // answer to an auth switch) must go on sending within this, as the
  // server's net_read_timeout.
  int net_read_timeout_s = 30;
  int replica_idle_s = 60;     // an idle replica server session is closed after this
  int server_idle_s = 60;      // a shared (multiplexed) backend connection idle this long is closed
  // A session idle this long inside a transaction is killed (the
  // transaction rolls back); 0 = no limit.  A tenant may have its own.
  int idle_in_transaction_s = 0;
  // A statement running longer is stopped on the backend (KILL QUERY) and
  // the client gets ERROR 1969; 0 = no limit.  A tenant may have its own.
  int statement_ms = 0;
  int primary_wait_ms = 5000;  // a write waits this long for a writable server
  // A KILL QUERY on a side connection that the statement has not heeded
  // after this becomes KILL CONNECTION.
  int kill_escalate_ms = 2000;

  // defaults:
  std::string default_tenant = "app";
  std::string default_cluster = "main";

  std::vector<Cluster> clusters;
  std::vector<Tenant> tenants;
  FleetConfig fleet;

  const Cluster* find_cluster(const std::string& name) const;
  const Tenant* find_tenant(const std::string& name) const;
  const UserEntry* find_user(const Tenant& t, const std::string& name) const;
  // Whether a session of this user, tenant and cluster splits reads from
  // writes: the user's choice, else the tenant's, else the cluster's.
  static bool splits(const Cluster& c, const Tenant* t, const UserEntry* u);
  // Whether a session of this tenant and cluster is multiplexed: the
  // tenant's choice, else the cluster's.
  static bool multiplexes(const Cluster& c, const Tenant* t) {
    return t && t->multiplexing ? *t->multiplexing : c.multiplexing;
  }
  // Whether a login of this user must come over TLS: the user's choice,
  // else the tenant's.
  static bool requires_tls(const Tenant& t, const UserEntry& u) { return u.require_tls.value_or(t.require_tls); }
  // Whether any cluster or tenant multiplexes.
  bool multiplexes_anywhere() const;
  // workers resolved: 0 becomes the number of online cores.
  int effective_workers() const;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An address literal (IPv4, IPv6) or a host name (resolved with getaddrinfo,
// blocking).  `passive`: for binding.
bool resolve_host_port(const HostPort& hp, bool passive, struct sockaddr_storage& out, int& len,
                       std::string& error);

// Resolves every backend's address (blocking: call it where waiting is
// harmless, never on a worker).  Servers that do not resolve keep their
// resolve_error; their logins fail with it.  Returns how many failed.
int resolve_backends(Config& cfg);

// Logs what a valid configuration still does that an operator should know
// (tenants that share backend accounts).
void log_config_warnings(const Config& cfg);

// Both throw ConfigError with a message "FILE: KEY: what is wrong".
Config load_config_file(const std::string& path);
Config load_config_string(const std::string& yaml_text, const std::string& file_name);

}  // namespace myrelay
