// The proxy as a whole: configuration, listener, workers, ids, and what the
// workers share (the session table and its directory, connection counts,
// backend facts).  The main thread runs the listener's event_base and hands
// each accepted socket to the least-loaded worker.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "control/session_directory.h"
#include "myrelay/shm_layout.h"
#include "protocol/tls_context.h"
#include "routing/backend_facts.h"
#include "service/acceptor.h"
#include "service/admission.h"
#include "service/config.h"
#include "service/log.h"
#include "session/ids.h"

namespace myrelay {

class Worker;
class ShmTable;
class ServerHealthTable;
class HealthChecker;
namespace fleet {
class FleetServer;
}

class Proxy {
 public:
  explicit Proxy(std::shared_ptr<const Config> cfg);
  ~Proxy();

  // Binds the listener, asks the backends for their handshake, starts the
  // workers.  false + message on failure.
  bool start(std::string& error);
  // Runs the accept loop until stopped by a signal.
  void run();
  void request_stop();

  std::shared_ptr<const Config> config() const { return std::atomic_load(&cfg_); }
  ShmTable& shm() { return *shm_; }
  SessionDirectory& directory() { return *directory_; }
  BackendFactsTable& backend_facts() { return facts_; }
  IdAllocator& ids() { return ids_; }
  int worker_count() const { return int(workers_.size()); }
  pid_t pid() const { return pid_; }
  uint64_t start_time() const { return start_time_; }

  Admission& admission() { return admission_; }
  // TLS towards clients as configured now (nullptr: off); a reload replaces it.
  std::shared_ptr<const TlsContext> tls_context() const { return tls_.get(); }
  // A server's health entry (every configured server has one).
  shm::ServerEntry& server_entry(const BackendServer& server);

 private:
  void dispatch(int fd, const std::string& ip, uint16_t port);
  static void on_signal(evutil_socket_t sig, short, void* arg);
  void reload();
  bool start_fleet(const Config& cfg, std::string& error);
  bool setup_shm(std::string& error);
  void cleanup_files();
  Worker* pick_worker();

  std::shared_ptr<const Config> cfg_;
  IdAllocator ids_;
  pid_t pid_;
  uint64_t start_time_;
  event_base* base_ = nullptr;
  std::unique_ptr<Acceptor> acceptor_;
  std::vector<event*> signal_events_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<ShmTable> shm_;
  std::unique_ptr<ShmSessionDirectory> directory_;
  std::vector<std::string> pipe_paths_;
  Admission admission_;
  LogRateLimit refusal_log_{10};
  BackendFactsTable facts_;
  TlsContextHolder tls_;
  std::unique_ptr<ServerHealthTable> health_;
  std::unique_ptr<HealthChecker> checker_;
  std::unique_ptr<fleet::FleetServer> fleet_;  // the peer port, when fleet: is configured
  // For a server without an entry (none should be): up, writable, readable.
  shm::ServerEntry unknown_server_{};
};

}  // namespace myrelay
