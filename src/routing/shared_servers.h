// A worker's shared backend connections for multiplexing (DESIGN section 4),
// and its count of backend connections to each server under the cluster's
// max_server_connections.
//
// A multiplexed client session holds a server session only while it needs
// one: when it is idle, restorable and outside a transaction its server
// session comes here (MSS_KA_SHARED), still holding that session's state
// (which the next taker's state is compared with: only the difference is
// replayed).  The next statement of any session of the same user takes
// one.  Every server session of the worker counts on its server's line
// from its creation to its end, so the cap holds whoever owns it; a
// statement that finds the line full waits here (queue_timeout_ms), first
// come first served, and is woken when a connection comes back or closes.
// Like everything of the worker, touched by the worker's thread only.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "myrelay/shm_layout.h"
#include "session/server_session.h"

namespace myrelay {

class SharedServers;

// Whoever waits for a connection to a server (a client session).
class ConnectionWaiter {
 public:
  // A connection came back, or the line has room: route again now.
  virtual void on_connection_free() = 0;

 protected:
  ~ConnectionWaiter() = default;
};

// One backend server, as seen by one worker.
class ServerLine {
 public:
  ServerLine(SharedServers& owner, shm::ServerEntry& entry, const BackendServer& server)
      : owner_(owner), entry_(entry), server_(server) {}
  // The server, as configured when the worker first used it.
  const BackendServer& server() const { return server_; }
  // Its routing word (shm::ServerRouting), as the health checker set it.
  uint32_t routing() const { return entry_.routing.load(std::memory_order_acquire); }
  // A server session to this server was made, or ended (its destructor).
  void opened() { ++open_; }
  void closed();
  int open() const { return open_; }
  // This worker's share of max_server_connections (0: no cap), as the
  // last session to use the line found it in its configuration.
  void set_cap(int cap) { cap_ = cap; }
  size_t idle() const { return idle_.size(); }
  size_t waiting() const { return waiters_.size(); }

 private:
  friend class SharedServers;
  struct Idle {
    std::unique_ptr<ServerSession> ss;
    int64_t since_us;
    int idle_s;
  };
  SharedServers& owner_;
  shm::ServerEntry& entry_;
  BackendServer server_;
  int open_ = 0;
  int cap_ = 0;
  std::list<Idle> idle_;  // newest first
  std::list<Idle> spare_;  // empty nodes, so that a put and a take allocate nothing
  std::deque<ConnectionWaiter*> waiters_;
};

class SharedServers : public ServerSessionOwner {
 public:
  SharedServers(event_base* base, shm::WorkerCounters& counters);
  ~SharedServers() override;
  SharedServers(const SharedServers&) = delete;
  SharedServers& operator=(const SharedServers&) = delete;

  // The line of a server (made at first use).
  ServerLine& line(shm::ServerEntry& entry, const BackendServer& server);
  // Whether this worker may open one more connection under `cap` (its
  // share of max_server_connections; 0: no cap).
  static bool has_room(const ServerLine& line, int cap) { return cap <= 0 || line.open() < cap; }

  // An idle server session whose client session let it go (ready, nothing
  // in flight, holding that session's state); closed after `idle_s` unused.
  void put(ServerLine& line, std::unique_ptr<ServerSession> ss, int idle_s, int64_t now_us);
  // How an idle connection suits a taker: Own (it holds the taker's state
  // as the taker left it), Fits (replaying a difference brings it there),
  // Usable (another login that negotiated the same capabilities: switched
  // with COM_CHANGE_USER), No.
  enum class Fit { No, Usable, Fits, Own };
  // The best idle connection of the line as `judge` (ServerSession -> Fit)
  // sees them: the taker's own, else the newest that fits, else (with
  // `switch_ok`) the usable one unused longest; null when none is.  `got`
  // says which.  A connection the backend has closed meanwhile is dropped,
  // never handed out.
  template <class Judge>
  std::unique_ptr<ServerSession> take(ServerLine& line, const Judge& judge, bool switch_ok, Fit& got) {
    for (;;) {
      auto chosen = line.idle_.end();
      got = Fit::No;
      for (auto it = line.idle_.begin(); it != line.idle_.end() && got != Fit::Own; ++it) {
        Fit f = judge(*it->ss);
        if (f == Fit::Usable && !switch_ok) f = Fit::No;
        // The first (newest) that fits; of the usable, the last (oldest).
        if (f > got || (f == Fit::Usable && got == Fit::Usable)) {
          chosen = it;
          got = f;
        }
      }
      if (chosen == line.idle_.end()) return nullptr;
      if (std::unique_ptr<ServerSession> ss = hand_out(line, chosen)) return ss;
    }
  }
  // Closes the idle connection unused longest, to make room on a full line
  // whose idle connections the taker cannot use; false when none is idle.
  bool close_oldest(ServerLine& line);
  // Waits for a connection of the line (the waiter hears
  // on_connection_free); cancel() stops waiting (a timeout, the session's end).
  // `again`: a waiter woken that found nothing left (counted once).
  void wait(ServerLine& line, ConnectionWaiter* w, bool again);
  void cancel(ServerLine& line, ConnectionWaiter* w);
  // Closes every idle connection (shutdown, a configuration reload).
  void clear();
  size_t idle_count() const { return idle_total_; }

  // ServerSessionOwner: an idle connection can only be lost (closed by the
  // backend, killed there, or talking out of turn).
  void on_server_ready(ServerSession*) override {}
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;

 private:
  friend class ServerLine;
  // A line gained an idle connection or room: its waiters are woken from
  // the loop (never inside the callback that freed it).
  void freed(ServerLine& line);
  static void on_wake(evutil_socket_t, short, void* arg);
  static void on_sweep(evutil_socket_t, short, void* arg);
  void drop(ServerSession* ss, const char* why);
  void set_idle_gauges(ServerLine& line, int delta);
  // Takes an idle connection off the line; null when the backend closed it.
  std::unique_ptr<ServerSession> hand_out(ServerLine& line, std::list<ServerLine::Idle>::iterator it);
  static bool backend_closed(const ServerSession& ss);

  event_base* base_;
  shm::WorkerCounters& counters_;
  event* wake_ = nullptr;
  bool wake_pending_ = false;
  event* sweep_ = nullptr;
  size_t idle_total_ = 0;
  std::unordered_map<const shm::ServerEntry*, std::unique_ptr<ServerLine>> lines_;
};

}  // namespace myrelay
