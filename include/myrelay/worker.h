// A worker thread: one libevent event_base that owns its client sessions and
// their server sessions (memcached's thread.c model).  New connections and
// other requests reach it through a queue and a notify pipe.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace myrelay {

class Proxy;
class ClientSession;

class Worker {
 public:
  Worker(Proxy& proxy, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  bool start(std::string& error);
  // Thread-safe: hands an accepted socket to this worker.
  void enqueue_connection(int fd, const std::string& peer_ip, uint16_t peer_port);
  // Thread-safe: asks the worker to close its sessions and leave its loop.
  void request_stop();
  void join();

  Proxy& proxy() { return proxy_; }
  event_base* base() { return base_; }
  int index() const { return index_; }
  pid_t tid() const { return tid_.load(std::memory_order_acquire); }
  int session_count() const { return session_count_.load(std::memory_order_relaxed); }

  // Called on the worker's thread by sessions.
  void session_closed(ClientSession* s);

 private:
  struct NewConnection {
    int fd;
    std::string peer_ip;
    uint16_t peer_port;
  };

  void run();
  void notify(char what);
  static void on_notify(evutil_socket_t fd, short, void* arg);
  static void on_reap(evutil_socket_t, short, void* arg);
  void accept_queued();
  void close_all(const char* why);

  Proxy& proxy_;
  int index_;
  event_base* base_ = nullptr;
  int notify_fds_[2] = {-1, -1};
  event* notify_ev_ = nullptr;
  event* reap_ev_ = nullptr;  // frees closed sessions outside their callbacks
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> session_count_{0};

  std::mutex queue_mu_;
  std::deque<NewConnection> queue_;

  std::unordered_map<uint32_t, ClientSession*> sessions_;  // by cs_id
  std::vector<ClientSession*> dead_;
  bool stopping_ = false;
};

}  // namespace myrelay
