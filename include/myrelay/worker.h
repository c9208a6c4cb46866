// A worker thread: one libevent event_base that owns its client sessions and
// their server sessions (memcached's thread.c model).  New connections and
// other requests reach it through a queue and a notify pipe.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <atomic>
#include <set>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "myrelay/control_pipe.h"
#include "myrelay/server_pool.h"
#include "myrelay/shm_layout.h"

namespace myrelay {

class Proxy;
class ClientSession;
class BackendKiller;
struct BackendServer;
struct BackendLogin;

class Worker {
 public:
  Worker(Proxy& proxy, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens the control pipe at `pipe_path` and starts the thread.  `info` is
  // this worker's record in the shared segment.
  bool start(const std::string& pipe_path, shm::WorkerInfo* info, std::string& error);
  // Thread-safe: hands an accepted socket to this worker.
  // `reject`: over max_connections; the session only answers "Too many
  // connections" after the client's handshake response.
  void enqueue_connection(int fd, const std::string& peer_ip, uint16_t peer_port, bool reject = false);
  // Thread-safe: asks the worker to close its sessions and leave its loop.
  void request_stop();
  // Thread-safe: stop taking sessions, close idle ones, let running
  // statements (and open transactions) finish, and leave the loop when no
  // session is left or after grace_s seconds, whichever comes first.
  void request_drain(int grace_s);
  void join();

  Proxy& proxy() { return proxy_; }
  event_base* base() { return base_; }
  // Wall-clock time in microseconds as of this loop iteration (libevent's
  // cached time): cheap enough for every command's timestamps.
  int64_t loop_time_us();
  int index() const { return index_; }
  pid_t tid() const { return tid_.load(std::memory_order_acquire); }
  int session_count() const { return session_count_.load(std::memory_order_relaxed); }

  // The control pipe, open for reading and writing (writing serves requests
  // from other workers; holding it open also keeps the FIFO from reporting
  // end-of-file when outside writers come and go).
  int control_fd() const { return control_fd_; }
  shm::WorkerCounters& counters() { return info_->counters; }
  ServerPool& server_pool() { return *pool_; }

  // Called on the worker's thread by sessions.
  bool draining() const { return draining_; }
  void session_closed(ClientSession* s);
  // Stops a statement or connection on a backend from a side connection.
  void start_backend_kill(const BackendServer& server, const std::string& cluster,
                          const BackendLogin& login, uint32_t server_sessid, bool query_only);
  void backend_killer_done(BackendKiller* k);

 private:
  struct NewConnection {
    int fd;
    std::string peer_ip;
    uint16_t peer_port;
    bool reject;
  };

  void run();
  void notify(char what);
  static void on_notify(evutil_socket_t fd, short, void* arg);
  static void on_reap(evutil_socket_t, short, void* arg);
  static void on_control(evutil_socket_t fd, short, void* arg);
  void handle_control(const control::Request& req);
  void accept_queued();
  void close_all(const char* why);

  Proxy& proxy_;
  int index_;
  event_base* base_ = nullptr;
  int notify_fds_[2] = {-1, -1};
  event* notify_ev_ = nullptr;
  event* reap_ev_ = nullptr;  // frees closed sessions outside their callbacks
  int control_fd_ = -1;
  event* control_ev_ = nullptr;
  control::Decoder control_decoder_;
  shm::WorkerInfo* info_ = nullptr;
  std::unique_ptr<ServerPool> pool_;  // idle server sessions (proxy.server_pool_size)
  std::set<BackendKiller*> killers_;
  std::vector<BackendKiller*> dead_killers_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> session_count_{0};

  std::mutex queue_mu_;
  std::deque<NewConnection> queue_;

  std::unordered_map<uint32_t, ClientSession*> sessions_;  // by cs_id
  std::set<ClientSession*> rejecting_;                      // refusals in progress
  std::vector<ClientSession*> dead_;
  bool stopping_ = false;
  bool draining_ = false;
  std::atomic<int> drain_grace_s_{0};
  event* drain_timer_ = nullptr;
  static void on_drain_deadline(evutil_socket_t, short, void* arg);
  void begin_drain();
};

}  // namespace myrelay
