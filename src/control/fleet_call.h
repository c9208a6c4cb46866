// One request to one peer proxy, on the caller's own loop: connect, send the
// signed request, read the signed answer, all within a deadline, never
// blocking.  A worker forwarding a kill and myrelayctl --fleet use it alike.
// One attempt only: a peer that is down costs its caller one timeout, and a
// fleet never sees a storm of retries.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <functional>
#include <string>

#include "control/fleet_message.h"
#include "control/fleet_tls.h"

namespace myrelay::fleet {

// Where a peer is: its proxy_id (the one its answers must carry; -1: any)
// and its resolved peer port.
struct PeerAddress {
  int proxy_id = -1;
  std::string text;  // "127.0.0.1:2885", for messages
  std::string host;  // "127.0.0.1": what its TLS certificate must name
  sockaddr_storage addr{};
  int addr_len = 0;
};

class PeerCall {
 public:
  using Done = std::function<void(PeerCall&)>;
  // Starts at once, over TLS when `tls` is set; `done` runs exactly once,
  // later, from the loop (it may destroy the call).  Destroying the call
  // first cancels it.
  PeerCall(event_base* base, PeerAddress peer, std::string secret, std::shared_ptr<const TlsPair> tls,
           const Request& request, int timeout_ms, Done done);
  ~PeerCall();
  PeerCall(const PeerCall&) = delete;
  PeerCall& operator=(const PeerCall&) = delete;

  bool ok() const { return ok_; }
  const admin::Answer& answer() const { return answer_; }
  // Why it failed: "connection refused", "no answer within 2000 ms", ...
  const std::string& error() const { return error_; }
  const PeerAddress& peer() const { return peer_; }
  int64_t elapsed_us() const { return elapsed_us_; }

 private:
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  static void on_timer(evutil_socket_t, short, void* arg);
  void fail(const std::string& why);
  void finish();
  void release();

  PeerAddress peer_;
  std::string secret_;
  Nonce nonce_{};
  int timeout_ms_;
  Done done_;
  bufferevent* bev_ = nullptr;
  event* timer_ = nullptr;
  std::string inbuf_;
  bool connected_ = false;
  bool tls_ = false;
  bool ok_ = false;
  bool finished_ = false;
  std::string pending_error_;  // a failure at start, reported from the loop
  admin::Answer answer_;
  std::string error_;
  int64_t started_us_ = 0;
  int64_t elapsed_us_ = 0;
};

}  // namespace myrelay::fleet
