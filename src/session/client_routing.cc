// Which server session each command of a client session goes to (DESIGN
// section 4; see client_session.h).  Writes, transactions and sessions whose
// state cannot move stay with the writable server; with the read/write split
// on, reads a replica can answer go to a healthy replica, whose server
// session is opened lazily, kept, and closed after timeouts.replica_idle_s
// idle.  Causal reads first wait on the replica for the session's last
// write.  Roles and health come from the health checker through each
// server's routing word; a write with no writable server waits for one.
#include <event2/buffer.h>

#include <cstdio>

#include "control/shm_table.h"
#include "protocol/text_result.h"
#include "routing/router.h"
#include "routing/statement_route.h"
#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

namespace {

// How often a write waiting for a writable server looks again.
constexpr int kWriteRetryMs = 50;

bool same_server(const BackendServer& a, const BackendServer& b) {
  return a.address.port == b.address.port && a.address.host == b.address.host;
}

}  // namespace

std::shared_ptr<const Config> ClientSession::live_config() const { return host_.config(); }

// What the command needs.  Stay: the server session that holds the session's
// state (a transaction, what cannot be carried), or any for commands that
// touch no data.
ClientSession::Want ClientSession::want_for(uint8_t cmd, std::string_view payload) {
  if (in_trans_ || !autocommit_ || !state_.restorable()) return Want::Stay;
  if (force_write_) return Want::Write;
  switch (cmd) {
    case COM_QUERY: {
      // A text too long to hold (streamed, start_streamed_command) comes
      // without it: it is not looked at, and runs where writes do.
      if (payload.empty()) return Want::Write;
      std::string_view sql = payload.substr(1);
      // Without the split only a hint can ask for a replica.
      if (!splits_ && sql.substr(0, 320).find("/*+") == std::string_view::npos) return Want::Write;
      routing::StatementRoute r = routing::classify_statement(sql);
      if (r.hint == routing::Consistency::Strong) return Want::Write;
      if (r.select && r.hint == routing::Consistency::Weak) return Want::Read;
      return splits_ && r.replica_safe ? Want::Read : Want::Write;
    }
    case COM_STMT_EXECUTE:
    case COM_STMT_SEND_LONG_DATA: {
      uint32_t id = 0;
      if (!PreparedStatements::id_of(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), id))
        return Want::Write;
      PreparedStatements::Statement* st = stmts_.find(id);
      if (!st || !st->sql_kept) return Want::Write;
      if (st->replica_ok < 0) {
        routing::StatementRoute r = routing::classify_statement(st->sql);
        st->replica_ok = r.hint != routing::Consistency::Strong &&
                         ((r.select && r.hint == routing::Consistency::Weak) || (splits_ && r.replica_safe));
      }
      return st->replica_ok ? Want::Read : Want::Write;
    }
    case COM_STMT_FETCH:
    case COM_STMT_RESET:
    case COM_STMT_CLOSE:
    case COM_PING:
    case COM_STATISTICS:
      return Want::Stay;
    default:
      return Want::Write;
  }
}

// Makes current_ the server session the command runs on.  Go: it is ready
// (the state sync may still follow).  Wait: a login or a writable server is
// awaited, and the command is held.  Answered: the client got an error.
ClientSession::Route ClientSession::route_command(uint8_t cmd, std::string_view payload) {
  // The usual case, cheap: no split, the current server still writable.
  if (!splits_ && !force_write_ && current_ && current_->ready() && (current_->routing() & shm::kRouteWritable) &&
      (cmd != COM_QUERY || payload.size() < 4 || payload.substr(1, 320).find("/*+") == std::string_view::npos)) {
    read_routed_ = false;
    return Route::Go;
  }
  // Multiplexed and idle: where the last statement ran, if nothing says otherwise.
  if (multiplexed_ && !current_ && servers_.empty() && state_.restorable()) {
    Route r = take_again(cmd, payload);
    if (r != Route::Answered) return r;
  }
  Want want = want_for(cmd, payload);
  read_routed_ = false;
  if (want == Want::Stay) {
    if (current_ && (current_->routing() & shm::kRouteUp)) return current_->ready() ? Route::Go : Route::Wait;
    if (current_ && !state_.restorable()) {
      drop_server(current_, "its server is down or was removed");
      if (closed() || phase_ == Phase::Closing) return Route::Answered;
    }
    want = Want::Write;
  }
  if (want == Want::Read) {
    if (ServerSession* ss = read_session()) {
      current_ = ss;
      read_routed_ = true;
      return Route::Go;
    }
    std::shared_ptr<const Config> live = live_config();
    const Cluster* cl = live->find_cluster(login_.cluster);
    auto routing = [this](const BackendServer& s) {
      return host_.server_entry(s).routing.load(std::memory_order_acquire);
    };
    const BackendServer* pick = cl ? host_.read_balancer().pick(*cl, routing) : nullptr;
    if (pick) {
      read_routed_ = true;
      Route r = use_server(*pick, true);
      read_ss_id_ = current_ ? current_->ss_id() : 0;
      return r;
    }
  }
  return route_write();
}

// The server session to the writable server; a write waits when there is
// none (primary_wait_ms).
ClientSession::Route ClientSession::route_write() {
  if (current_ && current_->ready() && (current_->routing() & shm::kRouteWritable)) {
    wait_since_us_ = 0;
    return Route::Go;
  }
  if (current_ && !(current_->routing() & shm::kRouteUp)) release_idle_servers();  // down or gone: not kept
  std::shared_ptr<const Config> live = live_config();
  const Cluster* cl = live->find_cluster(login_.cluster);
  auto routing = [this](const BackendServer& s) { return host_.server_entry(s).routing.load(std::memory_order_acquire); };
  const BackendServer* ws = cl ? routing::write_server(*cl, routing) : nullptr;
  if (!ws) return wait_for_writable();
  wait_since_us_ = 0;
  return use_server(*ws, false);
}

// The server session this session reads from, while it may still take
// reads: the balancer chose its server at the session's first read (or
// when the last one stopped taking reads), and the session keeps it.
ServerSession* ClientSession::read_session() {
  if (!read_ss_id_) return nullptr;
  ServerSession* ss = find_server(read_ss_id_);
  if (ss && ss->ready() && routing::read_weight(ss->server(), ss->routing()) > 0) return ss;
  read_ss_id_ = 0;
  if (ss && !(ss->routing() & shm::kRouteUp)) release_idle_servers();  // its server is down or gone
  return nullptr;
}

ClientSession::Route ClientSession::use_server(const BackendServer& server, bool for_read) {
  for (const auto& ss : servers_) {
    if (!same_server(ss->server(), server)) continue;
    current_ = ss.get();
    return ss->ready() ? Route::Go : Route::Wait;
  }
  release_idle_servers();  // room, and no sessions left on servers that are gone
  if (servers_.size() >= shm::kMaxServerSessions) {
    // Full: the idle one used longest ago goes (its state is the session's,
    // carried again if it is needed again).
    ServerSession* oldest = nullptr;
    for (const auto& ss : servers_)
      if (ss.get() != current_ && (!oldest || ss->last_used_us() < oldest->last_used_us())) oldest = ss.get();
    if (!oldest || !state_.restorable()) {
      current_ = nullptr;
      return route_write();
    }
    release_server(oldest);
  }
  const Cluster* cluster = cfg_->find_cluster(login_.cluster);
  const std::string cluster_name = cluster ? cluster->name : login_.cluster;
  read_opening_ = for_read;
  const bool capped = multiplexed_ || mux_cap_ > 0;
  if (capped) {
    Route r = take_shared(server, cluster_name, false);
    if (r == Route::Go) return r;
  }
  change_phase(Phase::AwaitServer);
  if (for_read) arm_replica_timer();
  if (capped) return Route::Wait;
  if (take_pooled(server, cluster_name)) return Route::Wait;
  current_ = open_server(server, cluster_name);
  reused_server_ = false;
  current_->connect(backend_login());
  return Route::Wait;
}

// No server is writable (a failover under way, or the primary down): the
// write waits, looking again every kWriteRetryMs, up to primary_wait_ms.
ClientSession::Route ClientSession::wait_for_writable() {
  int64_t now = host_.loop_time_us();
  if (!wait_since_us_) {
    wait_since_us_ = now;
    LOG_INFO("cs_id=%u: no writable server in cluster '%s': the statement waits up to %d ms for one", cs_id_,
             login_.cluster.c_str(), cfg_->primary_wait_ms);
  }
  if (now - wait_since_us_ >= int64_t(cfg_->primary_wait_ms) * 1000) {
    LOG_WARN("cs_id=%u: no writable server in cluster '%s' within %d ms: the statement fails", cs_id_,
             login_.cluster.c_str(), cfg_->primary_wait_ms);
    wait_since_us_ = 0;
    force_write_ = false;
    seq_ = 1;
    send_error(er::ER_OPTION_PREVENTS_STATEMENT,
               "No writable server in cluster '" + login_.cluster + "' (waited " +
                   std::to_string(cfg_->primary_wait_ms) +
                   " ms: every server is read-only or down), so the statement was not run");
    return Route::Answered;
  }
  if (!route_timer_) route_timer_ = evtimer_new(host_.base(), on_route_timer, this);
  timeval tv{0, kWriteRetryMs * 1000};
  evtimer_add(route_timer_, &tv);
  change_phase(Phase::AwaitServer);
  return Route::Wait;
}

void ClientSession::on_route_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  if (self->phase_ != Phase::AwaitServer || (self->current_ && !self->current_->ready())) return;
  self->resume_held();
}

// ---- causal reads ----

bool ClientSession::needs_causal_wait(ServerSession* ss) const {
  return causal_reads_ && read_routed_ && !state_.last_gtid().empty() && ss->causal_gtid() != state_.last_gtid() &&
         !(ss->routing() & shm::kRouteWritable);
}

// MASTER_GTID_WAIT on the replica for the session's last write; the command
// waits meanwhile (on_internal_done comes back to finish_causal_wait).
void ClientSession::start_causal_wait(ServerSession* ss) {
  const Cluster* cl = cfg_->find_cluster(login_.cluster);
  char timeout[32];
  snprintf(timeout, sizeof timeout, "%.3f", (cl ? cl->causal_reads_timeout_ms : 1000) / 1000.0);
  std::string gtid;
  for (char c : state_.last_gtid())  // digits, '-' and ',' only: nothing to quote, but never trust it
    if ((c >= '0' && c <= '9') || c == '-' || c == ',') gtid += c;
  internal_ = Internal::CausalWait;
  change_phase(Phase::AwaitServer);
  ss->run_internal({std::string(1, char(COM_QUERY)) + "SELECT MASTER_GTID_WAIT('" + gtid + "', " + timeout + ")"});
}

// The replica has the write (0), or did not get it in time (-1): then the
// read runs on the writable server.
void ClientSession::finish_causal_wait(ServerSession* ss) {
  TextResult r;
  std::string why;
  bool caught_up = parse_text_result(ss->internal_results().at(0), r, why) && r.rows.size() == 1 &&
                   r.rows[0].size() == 1 && r.rows[0][0] && *r.rows[0][0] == "0";
  if (caught_up) {
    ss->set_causal_gtid(state_.last_gtid());
  } else {
    LOG_DEBUG("cs_id=%u: replica %s did not reach GTID %s in time%s%s: the read goes to the primary", cs_id_,
              ss->server().address.str().c_str(), state_.last_gtid().c_str(), why.empty() ? "" : ": ", why.c_str());
    bump(counters_.causal_read_fallbacks);
    force_write_ = true;
  }
  resume_held();
}

// ---- losing a read server, idle read servers ----

// The server session of a read died before any of its answer reached the
// client: the read runs again elsewhere, and the client never knows.
bool ClientSession::retry_read_elsewhere(ServerSession* ss, const std::string& why) {
  if (!read_routed_ || read_retry_.empty() || ss->response_bytes() != 0 || !ss->between_packets()) return false;
  LOG_INFO("cs_id=%u: read server %s lost (%s): the read runs again elsewhere", cs_id_,
           ss->server().address.str().c_str(), why.c_str());
  release_server(ss);
  std::string again = std::move(read_retry_);
  read_retry_.clear();
  force_write_ = true;
  --queries_;  // counted again when it goes
  change_phase(Phase::Ready);
  send_to_server(std::move(again));
  if (phase_ == Phase::Ready) handle_input();
  return true;
}

// Idle server sessions that only cost a backend connection: to servers that
// are down or gone, and read servers unused for replica_idle_s.  The one
// that holds state the proxy cannot carry is never among them.
void ClientSession::release_idle_servers() {
  const int64_t now = host_.loop_time_us();
  const int64_t idle_us = int64_t(cfg_->replica_idle_s) * 1000000;
  const bool movable = state_.restorable() && !in_trans_ && phase_ == Phase::Ready;
  for (size_t i = servers_.size(); i-- > 0;) {
    ServerSession* ss = servers_[i].get();
    if (ss == current_ && !movable) continue;
    if (!ss->ready() || ss->state() != ServerSession::State::KeepAliveClientSlave) continue;
    uint32_t routing = ss->routing();
    bool gone = !(routing & shm::kRouteUp);
    bool idle_reader = !(routing & shm::kRouteWritable) && now - ss->last_used_us() >= idle_us;
    if (!gone && !idle_reader) continue;
    LOG_DEBUG("cs_id=%u: ss_id=%llu to %s closed: %s", cs_id_, (unsigned long long)ss->ss_id(),
              ss->server().address.str().c_str(), gone ? "its server is down or was removed" : "idle replica");
    release_server(ss);
  }
}

void ClientSession::arm_replica_timer() {
  if (!replica_timer_) replica_timer_ = evtimer_new(host_.base(), on_replica_timer, this);
  if (evtimer_pending(replica_timer_, nullptr)) return;
  timeval tv{cfg_->replica_idle_s, 0};
  evtimer_add(replica_timer_, &tv);
}

void ClientSession::on_replica_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  self->release_idle_servers();
  for (const auto& ss : self->servers_)
    if (!(ss->routing() & shm::kRouteWritable)) {
      // The next look comes when the least recently used may be idle.
      int64_t wait_us = int64_t(self->cfg_->replica_idle_s) * 1000000 -
                        (self->host_.loop_time_us() - ss->last_used_us());
      if (wait_us < 1000000) wait_us = 1000000;
      timeval tv{time_t(wait_us / 1000000), suseconds_t(wait_us % 1000000)};
      evtimer_add(self->replica_timer_, &tv);
      return;
    }
}

}  // namespace myrelay
