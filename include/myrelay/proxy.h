// The proxy as a whole: configuration, listener, workers, ids, and what is
// shared between workers (connection count, backend facts).  The main thread
// runs the listener's event_base and hands each accepted socket to the
// least-loaded worker.
#pragma once

#include <event2/event.h>
#include <event2/listener.h>
#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "myrelay/config.h"
#include "myrelay/control_pipe.h"
#include "myrelay/ids.h"
#include "myrelay/protocol.h"

namespace myrelay {

class Worker;
class ShmTable;

// What the last handshake of a cluster's backend said, so the proxy's own
// handshake can offer the same version and capabilities.
struct BackendFacts {
  bool known = false;
  std::string server_version;
  uint32_t capabilities = 0;
  uint8_t charset = 0;
};

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
  // Hands a request to worker `index` through its control pipe.
  bool send_control(uint32_t index, const control::Request& req, std::string& error);
  int worker_count() const { return int(workers_.size()); }
  IdAllocator& ids() { return ids_; }
  pid_t pid() const { return pid_; }
  uint64_t start_time() const { return start_time_; }

  // Connection slots (max_connections).
  bool reserve_connection();
  void release_connection();
  int connections() const { return connections_.load(std::memory_order_relaxed); }
  // A refused connection's session has ended.
  void release_rejecting() { rejecting_.fetch_sub(1, std::memory_order_relaxed); }
  static constexpr int kMaxRejecting = 256;

  BackendFacts backend_facts(const std::string& cluster);
  void note_backend_handshake(const std::string& cluster, const proto::Handshake& hs);

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void on_accept_error(evconnlistener*, void* arg);
  static void on_signal(evutil_socket_t sig, short, void* arg);
  void probe_backends();
  bool setup_shm(std::string& error);
  void cleanup_files();
  Worker* pick_worker();

  std::shared_ptr<const Config> cfg_;
  IdAllocator ids_;
  pid_t pid_;
  uint64_t start_time_;
  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  std::vector<event*> signal_events_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<ShmTable> shm_;
  std::vector<std::string> pipe_paths_;
  std::atomic<int> connections_{0};
  std::atomic<int> rejecting_{0};  // refused connections still being answered
  std::mutex facts_mu_;
  std::map<std::string, BackendFacts> facts_;
};

}  // namespace myrelay
