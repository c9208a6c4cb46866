// A harness for testing client and server sessions in one thread, without a
// proxy around them: a fake worker (SessionHost), scripted MySQL backends
// listening on 127.0.0.1, and a scripted client on the other end of a
// socketpair.  Everything runs on one event_base that the test turns by hand.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/session_directory.h"
#include "control/shm_table.h"
#include "myrelay/shm_layout.h"
#include "protocol/packets.h"
#include "routing/router.h"
#include "routing/server_pool.h"
#include "routing/shared_servers.h"
#include "service/config.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay::test {

// A MySQL server that accepts any login and answers commands from a script:
// "SELECT ..." gets a one-row result holding its connection id, "SPLIT"
// gets a result set sent in three pieces 20 ms apart, "SLEEP" gets nothing
// until the test calls answer_sleepers(), anything else an OK.
class FakeBackend {
 public:
  explicit FakeBackend(event_base* base);
  ~FakeBackend();
  uint16_t port() const { return port_; }
  // Commands received, in order, as "<connection id>:<command byte>:<text>",
  // without the proxy's own session tracking set-up.
  const std::vector<std::string>& log() const { return log_; }
  int connections() const { return int(conns_.size()); }
  // The connect attributes of the last login.
  const std::vector<std::pair<std::string, std::string>>& login_attributes() const { return login_attributes_; }
  void answer_sleepers();
  // Closes every connection (a backend restart).
  void drop_all();

  struct Conn;

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  void handle(Conn& c, uint8_t seq, const std::string& payload);
  void send(Conn& c, uint8_t& seq, const std::string& payload);
  void send_row_result(Conn& c, uint8_t seq, const std::string& value, int pieces);
  void send_row(Conn& c, uint8_t seq, const std::vector<std::string>& values, int pieces);
  // The rest of a result sent in pieces.
  struct Later {
    FakeBackend* self;
    uint32_t id;
    std::vector<std::string> parts;
    size_t next;
    uint8_t seq;
    event* ev;
  };
  static void send_later(evutil_socket_t, short, void* arg);

  event_base* base_;
  evconnlistener* listener_ = nullptr;
  uint16_t port_ = 0;
  uint32_t next_id_ = 100;
  std::map<bufferevent*, std::unique_ptr<Conn>> conns_;
  std::vector<std::string> log_;
  std::vector<std::pair<std::string, std::string>> login_attributes_;
};

// The worker a session lives on.
class FakeHost : public SessionHost, public SessionDirectory {
 public:
  explicit FakeHost(event_base* base) : base_(base), shared_(base, counters_), pool_(base, counters_.pool_idle) {}
  // Gives each server a health entry (in order), routed as its role says:
  // a test changes entries[i].routing to play the health checker.
  void set_config(Config cfg) {
    int i = 0;
    for (Cluster& cl : cfg.clusters)
      for (BackendServer& s : cl.servers) {
        s.health = i;
        entries[i++].routing.store(shm::kRouteUp | (s.role == ServerRole::Primary ? shm::kRouteWritable
                                                                                   : shm::kRouteReadable));
      }
    cfg_ = std::make_shared<const Config>(std::move(cfg));
  }

  event_base* base() override { return base_; }
  int64_t loop_time_us() override;
  std::shared_ptr<const Config> config() override { return cfg_; }
  int index() const override { return 0; }
  pid_t tid() const override { return 7; }
  shm::WorkerCounters& counters() override { return counters_; }
  uint64_t next_ss_id() override { return ++ss_ids_; }
  std::shared_ptr<const BackendFacts> backend_facts(const std::string&) override {
    return std::make_shared<const BackendFacts>();
  }
  void note_backend_handshake(const std::string&, const proto::Handshake&) override {}
  void note_backend_trackers(const std::string&, const proto::TrackerSet&) override {}
  ServerPool& server_pool() override { return pool_; }
  SharedServers& shared_servers() override { return shared_; }
  int worker_count() const override { return 1; }
  shm::ServerEntry& server_entry(const BackendServer& s) override { return entries[s.health]; }
  routing::ReadBalancer& read_balancer() override { return balancer_; }
  SessionDirectory& directory() override { return *this; }
  void stop_backend_statement(const BackendServer&, const std::string&, const BackendLogin&, uint32_t server_sessid,
                              bool query_only, uint64_t) override {
    stopped.push_back(std::to_string(server_sessid) + (query_only ? ":query" : ":connection"));
  }
  bool draining() const override { return false; }
  void login_finished(const std::string&) override { ++logins_finished; }
  void session_closed(ClientSession* s) override { closed.push_back(s); }
  shm::LatencyHistogram* latency_histogram(int health) override {
    return health >= 0 && size_t(health) < shm::kMaxServers ? &latency[health] : nullptr;
  }
  shm::LatencyHistogram latency[shm::kMaxServers] = {};
  uint64_t record_kill(const shm::KillRecord& r) override {
    kills_.push_back(r);
    return kills_.size();
  }
  std::vector<shm::KillRecord> kills_;  // as recorded, oldest first

  // SessionDirectory: the one session under test.
  std::vector<shm::SessionRecord> snapshot() const override;
  bool send(const shm::SessionRecord&, const control::Request&, std::string&) override { return true; }
  bool variables(const shm::SessionRecord&, std::string& area) const override {
    return ShmTable::read_vars(&slot, area);
  }
  int pid() const override { return 1; }
  std::vector<Server> servers() const override { return {}; }
  std::vector<shm::KillRecord> kills(size_t limit,
                                     const std::function<bool(const shm::KillRecord&)>& keep) const override {
    std::vector<shm::KillRecord> out;
    for (auto it = kills_.rbegin(); it != kills_.rend() && out.size() < limit; ++it)
      if (!keep || keep(*it)) out.push_back(*it);
    return out;
  }
  bool statement(const shm::SessionRecord&, view::StatementInfo& out) const override {
    ShmTable::Statement st;
    if (!ShmTable::read_statement(&slot, st)) return false;
    out = {st.text, st.start_us, st.end_us};
    return true;
  }

  shm::Slot slot{};
  shm::ServerEntry entries[8]{};
  std::vector<ClientSession*> closed;
  std::vector<std::string> stopped;
  int logins_finished = 0;

 private:
  event_base* base_;
  std::shared_ptr<const Config> cfg_;
  shm::WorkerCounters counters_{};
  SharedServers shared_;
  ServerPool pool_;
  routing::ReadBalancer balancer_;
  uint64_t ss_ids_ = 0;
};

// The test's end of the client connection.
class TestClient {
 public:
  TestClient(event_base* base, int fd) : base_(base), fd_(fd) {}
  ~TestClient();
  // Sends a packet (framed with `seq`).
  void send(uint8_t seq, const std::string& payload);
  void send_raw(const std::string& bytes);
  // Turns the loop until a whole packet arrived; false after 2 s.
  bool read(std::string& payload, uint8_t* seq = nullptr);
  // Logs in as user/password with mysql_native_password; false on any error.
  bool login(const std::string& user, const std::string& password, uint32_t caps);
  // A COM_QUERY and its whole response: the first column of each row, or
  // "ERR <code>" / "OK".
  std::vector<std::string> query(const std::string& sql);
  std::string scramble;
  uint32_t caps = 0;
  // Connect attributes the next login sends (with CLIENT_CONNECT_ATTRS).
  std::vector<std::pair<std::string, std::string>> attributes;

 private:
  event_base* base_;
  int fd_;
  std::string in_;
};

// Runs the loop for about `ms` milliseconds.
void turn(event_base* base, int ms);

}  // namespace myrelay::test
