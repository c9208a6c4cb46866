// A worker thread: one libevent event_base that owns its client sessions and
// their server sessions (memcached's thread.c model, muduo's one loop per
// thread).  Work reaches it as typed items in its inbox, and as kill requests
// on its control pipe (a FIFO that myrelayctl and the other workers write);
// both are handled by one function, on the worker's own thread.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control/control_pipe.h"
#include "myrelay/shm_layout.h"
#include "routing/router.h"
#include "routing/server_pool.h"
#include "routing/shared_servers.h"
#include "service/log.h"
#include "service/worker_inbox.h"
#include "session/session_host.h"

namespace myrelay {

class Proxy;
class ClientSession;
struct KilledBy;
class BackendKiller;

class Worker : public SessionHost {
 public:
  Worker(Proxy& proxy, int index);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens the control pipe at `pipe_path` and starts the thread.  `info` is
  // this worker's record in the shared segment.
  bool start(const std::string& pipe_path, shm::WorkerInfo* info, std::string& error);
  // Any thread: posts an item (a new connection, stop, drain) to the inbox.
  void post(InboxItem item);
  void join();

  // The control pipe, open for reading and writing (writing serves requests
  // from other workers; holding it open also keeps the FIFO from reporting
  // end-of-file when outside writers come and go).
  int control_fd() const { return control_fd_; }
  // Sessions handed to this worker and not yet ended (for the dispatcher).
  int session_count() const { return session_count_.load(std::memory_order_relaxed); }

  // SessionHost.
  event_base* base() override { return base_; }
  int64_t loop_time_us() override;
  std::shared_ptr<const Config> config() override;
  int index() const override { return index_; }
  pid_t tid() const override { return tid_.load(std::memory_order_acquire); }
  shm::WorkerCounters& counters() override { return info_->counters; }
  uint64_t next_ss_id() override;
  std::shared_ptr<const BackendFacts> backend_facts(const std::string& cluster) override;
  void note_backend_handshake(const std::string& cluster, const proto::Handshake& hs) override;
  void note_backend_trackers(const std::string& cluster, const proto::TrackerSet& t) override;
  ServerPool& server_pool() override { return *pool_; }
  SharedServers& shared_servers() override { return *shared_; }
  int worker_count() const override;
  std::shared_ptr<const TlsContext> tls_context() override;
  shm::ServerEntry& server_entry(const BackendServer& server) override;
  routing::ReadBalancer& read_balancer() override { return balancer_; }
  SessionDirectory& directory() override;
  void stop_backend_statement(const BackendServer& server, const std::string& cluster, const BackendLogin& login,
                              uint32_t server_sessid, bool query_only, uint64_t kill_log_id) override;
  bool draining() const override { return draining_; }
  void login_finished(const std::string& host) override;
  void session_closed(ClientSession* s) override;
  uint64_t record_kill(const shm::KillRecord& r) override;
  shm::LatencyHistogram* latency_histogram(int health) override;

 private:
  void run();
  static void on_inbox(evutil_socket_t fd, short, void* arg);
  static void on_control(evutil_socket_t fd, short, void* arg);
  static void on_reap(evutil_socket_t, short, void* arg);
  static void on_drain_deadline(evutil_socket_t, short, void* arg);
  void handle(InboxItem& item);
  void accept_connection(InboxItem& item);
  void handle_control(const control::Request& req);
  KilledBy killer_of(const control::Request& req) const;
  void begin_drain(int grace_s);
  void stop(const char* why);
  void close_all(const char* why);
  void leave_if_drained();

  Proxy& proxy_;
  int index_;
  event_base* base_ = nullptr;
  WorkerInbox inbox_;
  event* inbox_ev_ = nullptr;
  event* reap_ev_ = nullptr;  // frees closed sessions outside their callbacks
  int control_fd_ = -1;
  event* control_ev_ = nullptr;
  control::Decoder control_decoder_;
  LogRateLimit garbage_log_{5};  // anyone who may write the pipe can make these recur
  LogRateLimit stale_log_{10};
  shm::WorkerInfo* info_ = nullptr;
  std::unique_ptr<SharedServers> shared_;  // multiplexing; every server session counts on its lines
  std::unique_ptr<ServerPool> pool_;  // idle server sessions (proxy.server_pool_size)
  routing::ReadBalancer balancer_;
  std::set<BackendKiller*> killers_;
  std::vector<BackendKiller*> dead_killers_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> session_count_{0};

  std::unordered_map<uint32_t, ClientSession*> sessions_;  // by cs_id
  std::set<ClientSession*> rejecting_;                      // refusals in progress
  std::vector<ClientSession*> dead_;
  bool stopping_ = false;
  bool draining_ = false;
  event* drain_timer_ = nullptr;
};

}  // namespace myrelay
