// The proxy: listener, dispatch to workers, shared facts (see proxy.h).
#include "service/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "control/fleet_server.h"
#include "control/shm_table.h"
#include "protocol/packets.h"
#include "routing/health_checker.h"
#include "routing/server_health.h"
#include "service/log.h"
#include "service/worker.h"

namespace myrelay {

using namespace proto;

Proxy::Proxy(std::shared_ptr<const Config> cfg)
    : cfg_(std::move(cfg)),
      ids_(cfg_->proxy_id, uint64_t(time(nullptr))),
      pid_(getpid()),
      start_time_(uint64_t(time(nullptr))) {}

Proxy::~Proxy() {
  checker_.reset();
  fleet_.reset();
  InboxItem stop;
  stop.kind = InboxItem::Kind::Stop;
  for (auto& w : workers_) w->post(stop);
  workers_.clear();
  cleanup_files();
  shm_.reset();
  for (auto* ev : signal_events_) event_free(ev);
  acceptor_.reset();
  if (base_) event_base_free(base_);
}

bool Proxy::start(std::string& error) {
  auto cfg = config();
  base_ = event_base_new();
  if (!base_) {
    error = "event_base_new failed";
    return false;
  }
  sockaddr_storage addr{};
  int addr_len = 0;
  if (!resolve_host_port(cfg->listen, true, addr, addr_len, error)) {
    error = "cannot resolve listen address " + cfg->listen.str() + ": " + error;
    return false;
  }
  if (!setup_shm(error)) return false;
  health_ = std::make_unique<ServerHealthTable>(*shm_);
  unknown_server_.routing.store(shm::kRouteUp | shm::kRouteWritable | shm::kRouteReadable);
  {
    // Every server gets its health entry before any session can look.
    auto assigned = std::make_shared<Config>(*cfg);
    try {
      health_->assign(*assigned);
    } catch (const ConfigError& e) {
      error = e.what();
      return false;
    }
    cfg = assigned;
    std::atomic_store(&cfg_, cfg);
  }
  if (cfg->tls.enabled()) {
    std::string why;
    auto ctx = TlsContext::build(cfg->tls, "proxy.tls", why);
    if (!ctx) {
      error = cfg->file + ": " + why;
      return false;
    }
    tls_.set(std::move(ctx));
  }
  facts_.probe(*cfg);
  checker_ = std::make_unique<HealthChecker>(base_, [this] { return config(); }, *health_, facts_);
  checker_->reconfigure();

  int n = cfg->effective_workers();
  std::vector<int> control_fds;
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
    if (!workers_.back()->start(pipe_paths_[size_t(i)], shm_->worker(uint32_t(i)), error)) return false;
    control_fds.push_back(workers_.back()->control_fd());
  }
  directory_->set_control_fds(std::move(control_fds));
  if (cfg->fleet.enabled && !start_fleet(*cfg, error)) return false;
  // Listening comes last: a client (or an init script) that can connect
  // finds the daemon whole, its session table included.
  acceptor_ = std::make_unique<Acceptor>(
      base_, [this](int fd, const std::string& ip, uint16_t port) { dispatch(fd, ip, port); });
  if (!acceptor_->listen(reinterpret_cast<sockaddr*>(&addr), addr_len, error)) {
    error = "cannot listen on " + cfg->listen.str() + ": " + error;
    return false;
  }
  shm_->header()->state.store(uint32_t(shm::DaemonState::Running), std::memory_order_release);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    event* ev = evsignal_new(base_, sig, on_signal, this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  log_config_warnings(*cfg);
  LOG_INFO("myrelayd %s listening on %s with %d workers, proxy_id %d, max_connections %d",
           MYRELAY_VERSION, cfg->listen.str().c_str(), n, cfg->proxy_id, cfg->max_connections);
  return true;
}

void Proxy::run() {
  event_base_dispatch(base_);
  if (shm_) shm_->header()->state.store(uint32_t(shm::DaemonState::Stopping), std::memory_order_release);
  // Running statements finish (up to the grace period); idle sessions go now.
  InboxItem drain;
  drain.kind = InboxItem::Kind::Drain;
  drain.grace_s = config()->shutdown_grace_s;
  for (auto& w : workers_) w->post(drain);
  for (auto& w : workers_) w->join();
  cleanup_files();
  LOG_INFO("myrelayd stopped");
}

// The segment and the control pipes: made at start, removed at a clean exit.
bool Proxy::setup_shm(std::string& error) {
  auto cfg = config();
  gid_t admin_gid = gid_t(-1);
  if (!cfg->admin_group.empty()) {
    group* g = getgrnam(cfg->admin_group.c_str());
    if (!g) {
      error = cfg->file + ": proxy.admin_group: no group named '" + cfg->admin_group + "'";
      return false;
    }
    admin_gid = g->gr_gid;
  }
  ShmTable::CreateOptions opts;
  opts.name = cfg->shm_name;
  opts.worker_count = uint32_t(cfg->effective_workers());
  opts.slot_count = uint32_t(cfg->max_connections);
  opts.proxy_id = cfg->proxy_id;
  opts.listen = cfg->listen.str();
  opts.version = MYRELAY_VERSION;
  opts.admin_gid = admin_gid;
  opts.kill_log_size = uint32_t(cfg->kill_log_size);
  shm_ = ShmTable::create(opts, error);
  if (!shm_) return false;
  directory_ = std::make_unique<ShmSessionDirectory>(*shm_, pid_);
  for (uint32_t i = 0; i < opts.worker_count; ++i) {
    std::string path = cfg->run_dir + "/" + cfg->shm_name + ".worker" + std::to_string(i) + ".ctl";
    if (path.size() >= shm::kPathLen) {
      error = cfg->file + ": proxy.run_dir: too long for control pipe paths (" + path + ")";
      return false;
    }
    if (!control::make_fifo(path, admin_gid, error)) return false;
    pipe_paths_.push_back(path);
    set_field(shm_->worker(i)->control_pipe, path);
  }
  return true;
}

// Removes the names; the mapping itself lives as long as the Proxy, since
// workers being torn down may still write their slots.
void Proxy::cleanup_files() {
  for (auto& p : pipe_paths_) ::unlink(p.c_str());
  pipe_paths_.clear();
  if (shm_) shm_->unlink();
}

void Proxy::request_stop() {
  // Stop accepting at once: the listening socket closes, so new clients get
  // "connection refused" instead of waiting for a proxy that is leaving.
  if (acceptor_) acceptor_->close();
  event_base_loopexit(base_, nullptr);
}

void Proxy::on_signal(evutil_socket_t sig, short, void* arg) {
  auto* self = static_cast<Proxy*>(arg);
  switch (sig) {
    case SIGTERM:
    case SIGINT:
      LOG_INFO("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      self->request_stop();
      break;
    case SIGUSR1:
      if (!log_reopen()) LOG_ERROR("cannot reopen the log file: %s", strerror(errno));
      LOG_INFO("log file reopened");
      break;
    case SIGHUP:
      self->reload();
      break;
  }
}

// SIGHUP: a new configuration, checked whole before it replaces the old one;
// sessions keep the one they started with.
void Proxy::reload() {
  auto old = config();
  try {
    auto fresh = std::make_shared<Config>(load_config_file(old->file));
    if (fresh->listen.str() != old->listen.str() || fresh->proxy_id != old->proxy_id ||
        fresh->effective_workers() != old->effective_workers())
      LOG_WARN("reload: listen, proxy_id and workers change only at restart; kept as they were");
    // The certificates are read again (renewed files under the same names);
    // a pair that does not load rejects the reload, and the running one stays.
    std::shared_ptr<const TlsContext> tls;
    if (fresh->tls.enabled()) {
      std::string why;
      tls = TlsContext::build(fresh->tls, "proxy.tls", why);
      if (!tls) throw ConfigError(old->file + ": " + why);
    }
    resolve_backends(*fresh);  // here, on the main thread: workers never wait for DNS
    health_->assign(*fresh);  // before anyone sees it: servers added, removed, changed
    if (fresh->fleet.enabled && fleet_ && fresh->fleet.listen.str() != fleet_->listening_on().str())
      LOG_WARN("reload: fleet.listen changes only at restart; the peer port stays on %s",
               fleet_->listening_on().str().c_str());
    std::string fleet_error;
    if (fresh->fleet.enabled && !fleet_ && !start_fleet(*fresh, fleet_error))
      throw ConfigError(fleet_error);
    log_config_warnings(*fresh);
    log_set_level(fresh->log_level);
    if (tls && !old->tls.enabled()) LOG_INFO("TLS towards clients is on");
    if (!tls && old->tls.enabled()) LOG_INFO("TLS towards clients is off");
    tls_.set(std::move(tls));  // new sessions use it; running ones keep theirs
    std::atomic_store(&cfg_, std::shared_ptr<const Config>(std::move(fresh)));
    checker_->reconfigure();
    LOG_INFO("configuration reloaded from %s", old->file.c_str());
  } catch (const ConfigError& e) {
    LOG_ERROR("reload rejected, the running configuration is kept: %s", e.what());
  }
}

// The peer port, on this (the main) thread's loop: it reads the session
// table and writes control pipes as myrelayctl does, so no worker waits on
// another proxy.
bool Proxy::start_fleet(const Config& cfg, std::string& error) {
  auto server = std::make_unique<fleet::FleetServer>(base_, [this] { return config(); }, *directory_);
  if (!server->start(cfg.fleet.listen, error)) return false;
  fleet_ = std::move(server);
  LOG_INFO("fleet: proxy_id %d with %zu peers", cfg.proxy_id, cfg.fleet.peers.size());
  return true;
}

shm::ServerEntry& Proxy::server_entry(const BackendServer& server) {
  if (server.health < 0 || !health_) return unknown_server_;
  return health_->entry(server.health);
}

Worker* Proxy::pick_worker() {
  Worker* best = workers_.front().get();
  for (auto& w : workers_)
    if (w->session_count() < best->session_count()) best = w.get();
  return best;
}

// A connection accepted: to the least-loaded worker, as a session or, over
// a limit, as a refusal.
void Proxy::dispatch(int fd, const std::string& ip, uint16_t port) {
  std::string why;
  Admission::Verdict v = admission_.admit(ip, *config(), int(shm_->slot_count()), why);
  if (v != Admission::Verdict::Admit) {
    bump(shm_->header()->connections_refused);
    uint64_t held_back = 0;
    if (refusal_log_.allow(held_back))
      LOG_WARN("refused a connection from %s:%u: %s (%llu more refusals not logged)", ip.c_str(), port, why.c_str(),
               (unsigned long long)held_back);
    if (v == Admission::Verdict::RefuseBare) {
      Acceptor::refuse_bare(fd);
      return;
    }
  }
  InboxItem item;
  item.kind = InboxItem::Kind::NewConnection;
  item.fd = fd;
  item.peer_ip = ip;
  item.peer_port = port;
  item.reject = v != Admission::Verdict::Admit;
  pick_worker()->post(std::move(item));
}

}  // namespace myrelay
