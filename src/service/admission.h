// Who gets in.  Three limits, checked when a connection is accepted:
//   - proxy.max_connections: sessions (each holds a slot of the session table);
//   - proxy.max_pending_logins: connections that have not finished logging in,
//     so that clients that never log in (a slowloris) cannot hold every slot;
//   - proxy.max_pending_logins_per_host: the same per client address, so that
//     one address cannot hold them all and logins from elsewhere go on.
// A refused connection is still answered with "Too many connections" after
// its handshake response, as MySQL does; only so many such refusals are in
// flight at once, past that the connection gets the bare error.
// Thread-safe: the acceptor admits, workers release.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

namespace myrelay {

struct Config;

class Admission {
 public:
  enum class Verdict {
    Admit,       // a session: one connection and one pending login counted
    Refuse,      // answer "Too many connections" after the handshake response
    RefuseBare,  // too many refusals in flight: the bare error packet, then close
  };
  static constexpr int kMaxRefusing = 256;

  // `capacity`: the session table's slots (a reload cannot raise the limit
  // past them).  `why` says which limit refused.
  Verdict admit(const std::string& host, const Config& cfg, int capacity, std::string& why);

  // A session left MCS_INIT: logged in, or closed before it did.
  void login_finished(const std::string& host);
  void session_closed() { connections_.fetch_sub(1, std::memory_order_acq_rel); }
  void refusal_done() { refusing_.fetch_sub(1, std::memory_order_relaxed); }

  int connections() const { return connections_.load(std::memory_order_relaxed); }
  int pending_logins() const;

 private:
  Verdict refuse();

  std::atomic<int> connections_{0};
  std::atomic<int> refusing_{0};
  mutable std::mutex mu_;
  int pending_ = 0;
  std::unordered_map<std::string, int> pending_by_host_;
};

}  // namespace myrelay
