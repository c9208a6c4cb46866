// What a session may ask of the worker that owns it.  The worker implements
// it; unit tests implement it with a fake, so that client and server sessions
// are tested without threads or a proxy around them.  Everything here is
// called on the worker's own thread.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "myrelay/shm_layout.h"
#include "routing/backend_facts.h"

namespace myrelay {

namespace routing {
class ReadBalancer;
}
struct Config;
struct BackendServer;
struct BackendLogin;
class ClientSession;
class ServerPool;
class SharedServers;
class TlsContext;
class SessionDirectory;

// What a backend connection (a server session, a side connection, a health
// check) needs of the loop it runs on: a worker, or the main thread's
// health checker.
class BackendHost {
 public:
  virtual ~BackendHost() = default;

  virtual event_base* base() = 0;
  // Wall-clock microseconds as of this loop iteration (cheap).
  virtual int64_t loop_time_us() = 0;
  // The configuration now in force (a reload replaces it).
  virtual std::shared_ptr<const Config> config() = 0;
  virtual shm::WorkerCounters& counters() = 0;
  virtual uint64_t next_ss_id() = 0;
  virtual void note_backend_handshake(const std::string& cluster, const proto::Handshake& hs) = 0;
};

class SessionHost : public BackendHost {
 public:
  virtual int index() const = 0;  // the worker's number
  virtual pid_t tid() const = 0;  // its kernel thread id

  virtual std::shared_ptr<const BackendFacts> backend_facts(const std::string& cluster) = 0;
  // The health of a backend server (BackendServer::health), which every
  // worker reads and the health checker writes.
  virtual shm::ServerEntry& server_entry(const BackendServer& server) = 0;
  // The worker's share-out of reads among replicas.
  virtual routing::ReadBalancer& read_balancer() = 0;
  virtual void note_backend_trackers(const std::string& cluster, const proto::TrackerSet& t) = 0;
  virtual ServerPool& server_pool() = 0;
  // Multiplexing's shared connections and the cap's count (routing/shared_servers.h).
  virtual SharedServers& shared_servers() = 0;
  // How many workers share max_server_connections.
  virtual int worker_count() const = 0;
  // TLS towards clients as configured now; nullptr: not offered.
  virtual std::shared_ptr<const TlsContext> tls_context() { return nullptr; }

  // The sessions of every worker, for the proxy's own statements.
  virtual SessionDirectory& directory() = 0;
  // Stops a statement (or the whole connection) of a backend thread from a
  // side connection, so that nothing keeps running behind a closed session.
  // `kill_log_id` (from record_kill, 0: none) is the kill log's entry that
  // learns whether it worked.
  virtual void stop_backend_statement(const BackendServer& server, const std::string& cluster,
                                      const BackendLogin& login, uint32_t server_sessid, bool query_only,
                                      uint64_t kill_log_id) = 0;

  // The proxy is stopping: sessions end once idle.
  virtual bool draining() const = 0;
  // A client session left MCS_INIT (logged in, or closed before it did):
  // its connection no longer counts as a login in progress.
  virtual void login_finished(const std::string& host) = 0;
  // An entry for the kill log (shared memory, the counters, a log line).
  // Where statements to backend server `health` (its ServerEntry index)
  // count their latency (the session asks only with proxy.latency_histogram on).
  virtual shm::LatencyHistogram* latency_histogram(int health) = 0;
  // Returns the entry's id, for stop_backend_statement.
  virtual uint64_t record_kill(const shm::KillRecord& r) = 0;
  // A client session has closed; the worker frees it outside its callbacks.
  virtual void session_closed(ClientSession* s) = 0;
};

}  // namespace myrelay
