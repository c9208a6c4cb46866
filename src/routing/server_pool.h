// A worker's pool of idle server sessions (proxy.server_pool_size).  When a
// client quits cleanly, outside a transaction, its server session is reset
// (COM_RESET_CONNECTION) and kept here, state MSS_KA_SHARED; the next login
// on this worker to the same backend, with capabilities that negotiate the
// same flags, takes it and switches it to its own user and database with
// COM_CHANGE_USER instead of opening a new backend connection.  Like every
// session of the worker, the pool is touched by the worker's thread only.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "session/server_session.h"
#include "myrelay/shm_layout.h"

namespace myrelay {

class ServerPool : public ServerSessionOwner {
 public:
  // `gauge` is the worker's shm counter of pooled sessions.
  ServerPool(event_base* base, std::atomic<uint64_t>& gauge);
  ~ServerPool() override;
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  // Takes a server session whose client has gone (idle, not in a
  // transaction).  It is reset and kept if fewer than `max_idle` are;
  // otherwise it is closed.  Pooled sessions unused for `idle_s` close.
  void put(std::unique_ptr<ServerSession> ss, const std::string& cluster, size_t max_idle, int idle_s);
  // A clean pooled session to `server` of `cluster` that can serve a client
  // with these capabilities, or null; the newest first (warm, least likely
  // to have hit the backend's wait_timeout).
  std::unique_ptr<ServerSession> take(const std::string& cluster, const BackendServer& server,
                                      uint32_t client_caps, uint32_t client_ext_caps);
  // Closes every pooled session (shutdown, configuration reload).
  void clear();
  size_t size() const { return entries_.size(); }

  // ServerSessionOwner: what a pooled session can do is finish its reset,
  // fail it, or be lost (closed by the backend, or talking out of turn).
  void on_server_ready(ServerSession* ss) override;
  void on_server_login_failed(ServerSession* ss, const std::string& err_payload) override;
  void on_server_lost(ServerSession* ss, const std::string& why) override;

 private:
  struct Entry {
    std::unique_ptr<ServerSession> ss;
    std::string cluster;
    bool clean = false;      // the reset's OK has arrived
    int64_t since_us = 0;    // when it was put here
    int idle_s = 0;
  };
  static void on_sweep(evutil_socket_t, short, void* arg);
  void drop(ServerSession* ss, const char* why);
  void update_gauge();

  event_base* base_;
  std::atomic<uint64_t>& gauge_;
  event* sweep_ = nullptr;
  std::list<Entry> entries_;  // newest at the front
};

}  // namespace myrelay
