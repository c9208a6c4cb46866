// The proxy: listener, dispatch to workers, shared facts (see proxy.h).
#include "service/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "control/shm_table.h"
#include "protocol/packets.h"
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
  InboxItem stop;
  stop.kind = InboxItem::Kind::Stop;
  for (auto& w : workers_) w->post(stop);
  workers_.clear();
  cleanup_files();
  shm_.reset();
  for (auto* ev : signal_events_) event_free(ev);
  if (listener_) evconnlistener_free(listener_);
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
  listener_ = evconnlistener_new_bind(
      base_, on_accept, this, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
      1024, reinterpret_cast<sockaddr*>(&addr), addr_len);
  if (!listener_) {
    error = "cannot listen on " + cfg->listen.str() + ": " + strerror(errno);
    return false;
  }
  evconnlistener_set_error_cb(listener_, on_accept_error);

  if (!setup_shm(error)) return false;
  facts_.probe(*cfg);

  int n = cfg->effective_workers();
  std::vector<int> control_fds;
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
    if (!workers_.back()->start(pipe_paths_[size_t(i)], shm_->worker(uint32_t(i)), error)) return false;
    control_fds.push_back(workers_.back()->control_fd());
  }
  directory_->set_control_fds(std::move(control_fds));
  shm_->header()->state.store(uint32_t(shm::DaemonState::Running), std::memory_order_release);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    event* ev = evsignal_new(base_, sig, on_signal, this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
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
  if (listener_) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
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
    resolve_backends(*fresh);  // here, on the main thread: workers never wait for DNS
    log_set_level(fresh->log_level);
    std::atomic_store(&cfg_, std::shared_ptr<const Config>(std::move(fresh)));
    LOG_INFO("configuration reloaded from %s", old->file.c_str());
  } catch (const ConfigError& e) {
    LOG_ERROR("reload rejected, the running configuration is kept: %s", e.what());
  }
}

bool Proxy::reserve_connection() {
  // The segment's slots were sized at start; a reload cannot raise the limit past them.
  int max = std::min<int>(config()->max_connections, int(shm_->slot_count()));
  int n = connections_.fetch_add(1, std::memory_order_acq_rel);
  if (n >= max) {
    connections_.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void Proxy::release_connection() { connections_.fetch_sub(1, std::memory_order_acq_rel); }

Worker* Proxy::pick_worker() {
  Worker* best = workers_.front().get();
  for (auto& w : workers_)
    if (w->session_count() < best->session_count()) best = w.get();
  return best;
}

void Proxy::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* self = static_cast<Proxy*>(arg);
  char ip[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr->sa_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(addr);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    port = ntohs(a->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
  }
  evutil_make_socket_nonblocking(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!self->reserve_connection()) {
    if (self->shm_) bump(self->shm_->header()->connections_refused);
    LOG_WARN("refused a connection from %s:%u: max_connections (%d) reached", ip, port,
             self->config()->max_connections);
    // Clients that want TLS cannot trust an error sent before the greeting,
    // so, like MySQL, the refusal comes after the client's handshake
    // response.  Only so many refusals are in flight at once; past that the
    // connection gets the bare error packet.
    if (self->rejecting_.fetch_add(1, std::memory_order_relaxed) < kMaxRejecting) {
      InboxItem item;
      item.kind = InboxItem::Kind::NewConnection;
      item.fd = fd;
      item.peer_ip = ip;
      item.peer_port = port;
      item.reject = true;
      self->pick_worker()->post(std::move(item));
      return;
    }
    self->rejecting_.fetch_sub(1, std::memory_order_relaxed);
    std::string pkt = framed(0, build_err(er::ER_CON_COUNT_ERROR, "Too many connections"));
    ssize_t n = ::send(fd, pkt.data(), pkt.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    ::close(fd);
    return;
  }
  InboxItem item;
  item.kind = InboxItem::Kind::NewConnection;
  item.fd = fd;
  item.peer_ip = ip;
  item.peer_port = port;
  self->pick_worker()->post(std::move(item));
}

void Proxy::on_accept_error(evconnlistener*, void*) {
  int err = EVUTIL_SOCKET_ERROR();
  // EMFILE and friends: keep running; the listener retries on the next event.
  LOG_ERROR("accept failed: %s", evutil_socket_error_to_string(err));
}

}  // namespace myrelay
