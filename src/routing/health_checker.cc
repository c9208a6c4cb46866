// Server health checks (see health_checker.h).
#include "routing/health_checker.h"

#include <sys/time.h>

#include "protocol/auth.h"
#include "protocol/packets.h"
#include "protocol/text_result.h"
#include "routing/backend_facts.h"
#include "service/log.h"

namespace myrelay {

using namespace proto;

namespace {
std::string query(const char* sql) { return std::string(1, char(COM_QUERY)) + sql; }
}  // namespace

// The checks of one server: a monitor connection kept open, one check in
// flight at a time.  A check still running when the next is due failed.
class HealthChecker::Probe : public ServerSessionOwner {
 public:
  Probe(HealthChecker& checker, const Cluster& cluster, const BackendServer& server)
      : checker_(checker), cluster_(cluster.name), server_(server) {}

  // The configuration may have changed: what the next check uses.
  void update(const Cluster& cluster, const BackendServer& server) {
    if (server.health != server_.health || cluster.monitor.user != user_ || cluster.monitor.password != password_)
      conn_.reset();  // the next check logs in afresh
    server_ = server;
    user_ = cluster.monitor.user;
    password_ = cluster.monitor.password;
  }

  void check() {
    if (in_flight_) {
      conn_.reset();
      fail(false, "the check did not finish within monitor.interval_ms");
    }
    in_flight_ = true;
    if (conn_ && conn_->ready()) {
      run();
      return;
    }
    conn_.reset();
    auto cfg = checker_.config();
    conn_ = std::make_unique<ServerSession>(*this, checker_, server_, cluster_, checker_.next_ss_id(),
                                            cfg->backend_connect_ms);
    BackendLogin login;
    login.user = user_;
    if (!password_.empty()) login.hash1 = sha1(password_);
    login.client_caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_TRANSACTIONS | CLIENT_MULTI_RESULTS;
    login.attributes.emplace_back("_proxy_purpose", "health check");
    conn_->connect(login);
  }

  void on_server_ready(ServerSession*) override { run(); }

  void on_server_login_failed(ServerSession*, const std::string& err_payload) override {
    ErrPacket e;
    parse_err(err_payload, e);
    // 1429: the connection itself failed (refused, unreachable, timed out).
    bool refused = e.code == er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE.code;
    std::string why = e.message;
    if (e.code == er::ER_ACCESS_DENIED_ERROR.code) why = "the monitor account was refused: " + e.message;
    release_later();
    fail(refused, why);
  }

  void on_server_lost(ServerSession*, const std::string& why) override {
    release_later();
    if (in_flight_) fail(false, "connection lost: " + why);
  }

  void on_internal_done(ServerSession* ss) override {
    const auto& results = ss->internal_results();
    CheckResult r;
    TextResult ro, slaves;
    std::string why;
    if (results.size() != 2 || !parse_text_result(results[0], ro, why) || ro.rows.size() != 1 ||
        ro.columns.size() != 1 || !ro.rows[0][0]) {
      fail(false, "SELECT @@read_only: " + (why.empty() ? std::string("an unexpected answer") : why));
      return;
    }
    r.read_only = *ro.rows[0][0] != "0";
    if (!parse_text_result(results[1], slaves, why)) {
      ErrPacket e;
      if (!results[1].empty() && parse_err(results[1].front(), e) && e.code == er::ER_PARSE_ERROR.code &&
          !plain_show_) {
        plain_show_ = true;  // not MariaDB: SHOW SLAVE STATUS from now on
      } else if (!warned_) {
        warned_ = true;
        LOG_WARN("cluster '%s': the monitor account cannot read %s's replication status (%s): grant it SLAVE "
                 "MONITOR (MariaDB) or REPLICATION CLIENT (MySQL); its lag counts as unknown",
                 cluster_.c_str(), server_.address.str().c_str(), why.c_str());
      }
    } else {
      int lag = slaves.column("Seconds_Behind_Master");
      r.replicating = !slaves.rows.empty() && lag >= 0;
      for (const auto& row : slaves.rows) {
        if (lag < 0 || !row[size_t(lag)]) {
          r.lag_s = -1;  // a channel not running: the replica is not current
          break;
        }
        r.lag_s = std::max<int64_t>(r.lag_s, std::strtoll(row[size_t(lag)]->c_str(), nullptr, 10));
      }
    }
    r.ok = true;
    done(r);
  }

 private:
  void run() {
    conn_->run_internal({query("SELECT @@read_only"),
                         query(plain_show_ ? "SHOW SLAVE STATUS" : "SHOW ALL SLAVES STATUS")});
  }

  // The connection may not be deleted inside its own callback.
  void release_later() {
    if (conn_) dead_ = std::move(conn_);
  }

  void fail(bool refused, const std::string& why) {
    CheckResult r;
    r.refused = refused;
    r.error = why;
    done(r);
  }

  void done(const CheckResult& r) {
    in_flight_ = false;
    auto cfg = checker_.config();
    const Cluster* cl = cfg->find_cluster(cluster_);
    if (!cl || server_.health < 0) return;
    checker_.table_.record(server_.health, *cl, r, checker_.loop_time_us());
  }

  HealthChecker& checker_;
  std::string cluster_;
  BackendServer server_;
  std::string user_, password_;
  std::unique_ptr<ServerSession> conn_;
  std::unique_ptr<ServerSession> dead_;
  bool in_flight_ = false;
  bool plain_show_ = false;
  bool warned_ = false;
};

HealthChecker::HealthChecker(event_base* base, std::function<std::shared_ptr<const Config>()> config,
                             ServerHealthTable& table, BackendFactsTable& facts)
    : base_(base), config_(std::move(config)), table_(table), facts_(facts) {}

HealthChecker::~HealthChecker() {
  for (auto& [name, t] : timers_)
    if (t->timer) event_free(t->timer);
}

int64_t HealthChecker::loop_time_us() {
  timeval tv;
  if (event_base_gettimeofday_cached(base_, &tv) != 0) gettimeofday(&tv, nullptr);
  return int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
}

void HealthChecker::note_backend_handshake(const std::string& cluster, const proto::Handshake& hs) {
  facts_.note(cluster, hs);
}

void HealthChecker::reconfigure() {
  auto cfg = config();
  std::map<std::string, std::unique_ptr<Probe>> probes;
  std::map<std::string, std::unique_ptr<ClusterTimer>> timers;
  for (const Cluster& cl : cfg->clusters) {
    if (cl.monitor.user.empty()) continue;
    for (const BackendServer& s : cl.servers) {
      const std::string key = cl.name + "\n" + s.address.str();
      auto it = probes_.find(key);
      std::unique_ptr<Probe> p = it != probes_.end() ? std::move(it->second) : std::make_unique<Probe>(*this, cl, s);
      p->update(cl, s);
      probes[key] = std::move(p);
    }
    auto it = timers_.find(cl.name);
    std::unique_ptr<ClusterTimer> t;
    if (it != timers_.end()) {
      t = std::move(it->second);
    } else {
      t = std::make_unique<ClusterTimer>();
      t->checker = this;
      t->cluster = cl.name;
      t->timer = event_new(base_, -1, EV_PERSIST, on_tick, t.get());
    }
    timeval tv{cl.monitor.interval_ms / 1000, (cl.monitor.interval_ms % 1000) * 1000};
    evtimer_add(t->timer, &tv);  // (re)armed with the interval now in force
    timers[cl.name] = std::move(t);
  }
  for (auto& [name, t] : timers_)
    if (t && t->timer) event_free(t->timer);
  timers_ = std::move(timers);
  probes_ = std::move(probes);  // probes of servers gone close their connections
  for (const auto& [name, t] : timers_) tick(name);  // a first look at once
}

void HealthChecker::on_tick(evutil_socket_t, short, void* arg) {
  auto* t = static_cast<ClusterTimer*>(arg);
  t->checker->tick(t->cluster);
}

void HealthChecker::tick(const std::string& cluster) {
  const std::string prefix = cluster + "\n";
  for (auto it = probes_.lower_bound(prefix); it != probes_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    it->second->check();
}

}  // namespace myrelay
