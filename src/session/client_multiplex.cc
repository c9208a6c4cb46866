// Multiplexing (DESIGN section 4; see routing/shared_servers.h): a
// multiplexed client session holds server sessions only while it needs
// them.  Idle, restorable and outside a transaction, it gives them back to
// the worker's shared set, each remembering the state it holds; its next
// command takes one of the same user and server (only the difference of
// the states replayed, none when it is the session's own), opens one while
// the server's line has room under max_server_connections, or waits for
// one up to queue_timeout_ms.  What keeps a session on its connection
// (a transaction, state that cannot be carried) pins it there.
#include <event2/buffer.h>

#include "control/shm_table.h"
#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

// How a shared connection suits this session (SharedServers::Fit): the
// same login (user, character set, capabilities, cluster) and a state the
// difference can reach (a database can be changed but not unset; a login's
// character set cannot be set back with DEFAULT).  At login, only one
// already in the login's database: a database the client may not use must
// fail the login, not its first statement.
SharedServers::Fit ClientSession::shared_fit(const ServerSession& ss, const std::string& cluster, bool login) const {
  using Fit = SharedServers::Fit;
  if (ss.cluster() != cluster) return Fit::No;
  const bool same_login = ss.login().user == login_.user && ss.login().charset == charset_;
  if (same_login && ss.holder() == cs_id_ && !login) return Fit::Own;  // as it left it
  if (!ss.can_serve(caps_, ext_caps_)) return Fit::No;
  if (!same_login) return Fit::Usable;
  const bool reachable = login ? ss.schema() == db_ : !state_.schema().empty() || ss.schema().empty();
  return reachable && state_.diff_possible(ss.held()) ? Fit::Fits : Fit::Usable;
}

ClientSession::Route ClientSession::take_shared(const BackendServer& server, const std::string& cluster,
                                                bool login) {
  return take_shared(host_.shared_servers().line(host_.server_entry(server), server), cluster, login);
}

// The usual case, cheap: no split, no hint, and the server the last
// statement ran on still takes writes; Answered when that does not apply
// (the command is routed as usual then).
ClientSession::Route ClientSession::take_again(uint8_t cmd, std::string_view payload) {
  if (!last_line_ || splits_ || force_write_ || !(last_line_->routing() & shm::kRouteWritable) ||
      (cmd == COM_QUERY && payload.size() >= 4 && payload.substr(1, 320).find("/*+") != std::string_view::npos))
    return Route::Answered;
  read_routed_ = false;
  Route r = take_shared(*last_line_, login_.cluster, false);
  if (r == Route::Wait) change_phase(Phase::AwaitServer);
  return r;
}

ClientSession::Route ClientSession::take_shared(ServerLine& line, const std::string& cluster, bool login) {
  SharedServers& shared = host_.shared_servers();
  const BackendServer& server = line.server();
  const int cap = mux_cap_;
  line.set_cap(cap);
  const bool woken = woken_;
  woken_ = false;
  // Sessions already waiting go first: a newcomer queues behind them.
  if (line.waiting() > 0 && !woken) {
    current_ = nullptr;
    return queue_for(line, server, cap);
  }
  bool room = SharedServers::has_room(line, cap);
  // With room, only a connection that fits is taken (a new one costs less
  // than another login's, switched); without, one of another login that
  // negotiated the same capabilities, rather than wait; failing that, the
  // oldest idle one closes to make room.
  SharedServers::Fit got;
  std::unique_ptr<ServerSession> taken = shared.take(
      line, [&](const ServerSession& ss) { return shared_fit(ss, cluster, login); }, !room, got);
  if (!taken && !room && shared.close_oldest(line)) room = SharedServers::has_room(line, cap);
  if (taken) {
    stop_queue_wait();
    ServerSession* ss = taken.get();
    last_line_ = &line;
    servers_.push_back(std::move(taken));
    current_ = ss;
    adopt_server(ss);
    ss->change_state(ServerSession::State::KeepAliveClientSlave);
    if (got != SharedServers::Fit::Usable) {
      // Another session's state: the sync compares with what it holds.
      if (got != SharedServers::Fit::Own) ss->set_synced_version(0);
      ss->set_holder(cs_id_);
      return Route::Go;
    }
    LOG_DEBUG("cs_id=%u: ss_id=%llu of '%s' switched to this session's login", cs_id_,
              (unsigned long long)ss->ss_id(), ss->login().user.c_str());
    reused_server_ = true;
    ss->reuse(backend_login(), true);  // COM_CHANGE_USER: heard as a login
    ss->set_holder(cs_id_);
    return Route::Wait;
  }
  if (room) {
    stop_queue_wait();
    last_line_ = &line;
    current_ = open_server(server, cluster);
    if (multiplexed_) current_->share_statements();
    current_->set_holder(cs_id_);
    reused_server_ = false;
    current_->connect(backend_login());
    return Route::Wait;
  }
  current_ = nullptr;
  return queue_for(line, server, cap);
}

// The line is full and nothing is idle (or others wait already): the
// command waits, up to queue_timeout_ms from its first wait.
ClientSession::Route ClientSession::queue_for(ServerLine& line, const BackendServer& server, int cap) {
  const bool again = queue_armed_;
  if (!waiting_on_) {
    host_.shared_servers().wait(line, this, again);
    waiting_on_ = &line;
  }
  if (again) return Route::Wait;
  // A login that waits here has been authenticated: it no longer counts
  // against proxy.max_pending_logins (queue_timeout_ms bounds its wait), or
  // a burst of logins under a small cap would be refused as a login storm.
  if (phase_ == Phase::BackendLogin) end_pending_login();
  if (!queue_timer_) queue_timer_ = evtimer_new(host_.base(), on_queue_timeout, this);
  const Cluster* cl = cfg_->find_cluster(login_.cluster);
  const int ms = cl ? cl->queue_timeout_ms : 10000;
  LOG_DEBUG("cs_id=%u: no free connection to %s (%d of this worker's %d open): waiting up to %d ms", cs_id_,
            server.address.str().c_str(), line.open(), cap, ms);
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(queue_timer_, &tv);
  queue_armed_ = true;
  return Route::Wait;
}

void ClientSession::stop_queue_wait() {
  if (waiting_on_) {
    host_.shared_servers().cancel(*waiting_on_, this);
    waiting_on_ = nullptr;
  }
  if (queue_armed_) {
    evtimer_del(queue_timer_);
    queue_armed_ = false;
  }
}

// The shared set woke this session (it left the queue): it routes again.
void ClientSession::on_connection_free() {
  Step step(*this);
  waiting_on_ = nullptr;
  woken_ = true;  // its turn: it does not queue behind the others again
  if (phase_ == Phase::ChangeUserLogin && !pending_) {
    start_change_user_login();
    return;
  }
  if (phase_ == Phase::BackendLogin) {
    begin_backend_login(phase_);
    return;
  }
  if (phase_ != Phase::AwaitServer || current_) return;
  resume_held();
}

// No connection became free within queue_timeout_ms: the login fails, or
// the command does (the session goes on), with MySQL's "Too many connections".
void ClientSession::on_queue_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  self->queue_armed_ = false;
  if (!self->waiting_on_) return;
  const std::string server = self->waiting_on_->server().address.str();
  self->stop_queue_wait();
  bump(self->counters_.queue_timeouts);
  const Cluster* cl = self->cfg_->find_cluster(self->login_.cluster);
  const int ms = cl ? cl->queue_timeout_ms : 0;
  const std::string message = "Too many connections: no connection to server " + server +
                              " of cluster '" + self->login_.cluster + "' became free within queue_timeout_ms (" +
                              std::to_string(ms) + " ms; max_server_connections " +
                              std::to_string(cl ? cl->max_server_connections : 0) + ")";
  LOG_WARN("cs_id=%u '%s': %s", self->cs_id_, self->login_text_.c_str(), message.c_str());
  if (self->phase_ == Phase::BackendLogin) {
    self->send_error_and_close(er::ER_CON_COUNT_ERROR, message, "no backend connection for the login");
    return;
  }
  if (self->phase_ == Phase::ChangeUserLogin && !self->pending_) {  // the old login goes on
    self->finish_change_user(false, build_err(er::ER_CON_COUNT_ERROR, message));
    return;
  }
  if (self->phase_ != Phase::AwaitServer) return;
  self->seq_ = 1;
  if (self->held_command_.empty()) {  // a long command still in the input: it cannot be skipped
    self->send_error_and_close(er::ER_CON_COUNT_ERROR, message, "no backend connection for a long command");
    return;
  }
  self->count_command(self->held_command_.size() + kHeaderLen);
  const bool answers = ResponseTracker::expects_response(uint8_t(self->held_command_[0]));
  self->held_command_.clear();
  if (answers) self->send_error(er::ER_CON_COUNT_ERROR, message);
  self->change_phase(Phase::Ready);
  self->handle_input();
}

uint32_t ClientSession::pin_reasons() const {
  uint32_t pin = state_.reasons();
  if (in_trans_) pin |= SessionState::kTransaction;
  // SET TRANSACTION for the next transaction only: replaying it elsewhere
  // is fine, but a connection left with it would hand it to another session.
  if (!state_.characteristics().empty()) pin |= shm::kPinCharacteristics;
  return pin;
}

// Called where the session becomes idle with nothing to run, and when it
// quits (`quitting`: then a session under a cap that is not multiplexed
// leaves its connection too).
void ClientSession::release_to_shared(bool quitting) {
  if (!(multiplexed_ || (quitting && mux_cap_ > 0)) || servers_.empty() || phase_ != Phase::Ready || pending_ ||
      host_.draining())
    return;
  const uint32_t pin = pin_reasons();
  if (pin != published_.pinned) identity_changed();
  if (pin) return;
  // The next command is here already: it keeps the connection, unless
  // others wait for one (it then queues behind them, first come first served).
  if (evbuffer_get_length(conn_->input()) != 0 && !(last_line_ && last_line_->waiting() > 0)) return;
  std::shared_ptr<const SessionState::Snapshot> snapshot = state_.snapshot();
  SharedServers& shared = host_.shared_servers();
  while (!servers_.empty()) {
    std::unique_ptr<ServerSession> ss = std::move(servers_.back());
    servers_.pop_back();
    Connection* c = ss->conn();
    // What it holds: this session's state, or (reset, or never synced) the
    // server's defaults; anything else is not known well enough to share.
    const bool defaults = ss->tracks_state() && !ss->tracking_on();
    const bool clean = ss->ready() && ss->state() == ServerSession::State::KeepAliveClientSlave && c &&
                       evbuffer_get_length(c->input()) == 0 && evbuffer_get_length(c->output()) == 0 &&
                       ss->line() && (!ss->tracks_state() || defaults || ss->synced_version() == state_.version());
    if (!clean) continue;  // closes
    if (BackendStatements* bs = ss->shared_statements())
      for (uint32_t id : bs->take_closable()) ss->send_quiet(PreparedStatements::close_command(id));
    ss->set_held(defaults ? nullptr : snapshot);
    ss->set_holder(cs_id_);
    ServerLine& line = *ss->line();
    shared.put(line, std::move(ss), cfg_->server_idle_s, host_.loop_time_us());
  }
  current_ = nullptr;
  read_ss_id_ = 0;
  publish_pending_ = true;
}

// A command runs on `ss`: a move when it is not the connection the last one
// ran on.
void ClientSession::note_server_used(ServerSession* ss) {
  if (ss->ss_id() == last_ss_id_) return;
  if (last_ss_id_) ++moves_;
  last_ss_id_ = ss->ss_id();
}

}  // namespace myrelay
