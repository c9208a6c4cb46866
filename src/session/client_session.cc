// A client session's life cycle, its state transition and publishing, its
// set of server sessions, and kills (see client_session.h).
#include "session/client_session.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstddef>
#include <iterator>

#include "control/shm_table.h"
#include "routing/server_pool.h"
#include "service/log.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

// A closing session gets this long to flush its last packets.
static constexpr int kCloseFlushSeconds = 5;
static constexpr size_t kReadHighWater = 1024 * 1024;
static constexpr size_t kWriteLowWater = 256 * 1024;

const char* ClientSession::state_name(State s) {
  switch (s) {
    case State::Init: return "MCS_INIT";
    case State::ActiveReader: return "MCS_ACTIVE_READER";
    case State::KeepAlive: return "MCS_KEEP_ALIVE";
    case State::HalfClosed: return "MCS_HALF_CLOSED";
    case State::Closed: return "MCS_CLOSED";
  }
  return "MCS_UNKNOWN";
}

ClientSession::State ClientSession::state_of(Phase p) {
  switch (p) {
    case Phase::AwaitHandshakeResponse:
    case Phase::TlsHandshake:
    case Phase::AwaitAuthSwitchResponse:
    case Phase::BackendLogin:
      return State::Init;
    case Phase::Ready:
      return State::KeepAlive;
    case Phase::AwaitServer:
    case Phase::InCommand:
    case Phase::LocalCommand:
    case Phase::AwaitChangeUserAuth:
    case Phase::ChangeUserLogin:
      return State::ActiveReader;
    case Phase::Closing:
      return State::HalfClosed;
    case Phase::Closed:
      break;
  }
  return State::Closed;
}

ClientSession::ClientSession(SessionHost& host, int fd, const std::string& peer_ip, uint16_t peer_port,
                             uint32_t cs_id, uint64_t proxy_sessid, shm::Slot* slot, uint32_t slot_index)
    : host_(host),
      counters_(host.counters()),
      cfg_(host.config()),
      peer_ip_(peer_ip),
      peer_port_(peer_port),
      cs_id_(cs_id),
      proxy_sessid_(proxy_sessid),
      slot_(slot),
      slot_index_(slot_index),
      login_pending_(slot != nullptr) {
  conn_ = std::make_unique<Connection>(host_.base(), fd);
  created_us_ = last_active_us_ = host_.loop_time_us();
}

ClientSession::~ClientSession() {
  if (!closed()) close("session freed");
}

void ClientSession::start() {
  Step step(*this);
  if (!conn_->ok()) {
    close("cannot set up the connection");
    return;
  }
  if (slot_) ShmTable::write_statement(slot_, std::string_view(), 0);  // not the slot's last session's
  conn_->set_callbacks(on_client_read, on_client_write, on_client_event, this);
  conn_->set_read_high_water(kReadHighWater);
  conn_->set_write_low_water(kWriteLowWater);
  conn_->enable_read();
  handshake_timer_ = evtimer_new(host_.base(), on_handshake_timeout, this);
  timeval tv{cfg_->handshake_ms / 1000, (cfg_->handshake_ms % 1000) * 1000};
  evtimer_add(handshake_timer_, &tv);
  send_handshake();
  publish_pending_ = true;
}

// ---- the state transition and publishing ----

void ClientSession::change_phase(Phase p) {
  if (p == phase_) return;
  phase_ = p;
  publish_pending_ = true;
  // Idle now, with a graceful kill pending (the paths that do not end it
  // themselves, e.g. the end of a login): it happens from the loop.
  if (p == Phase::Ready && kill_when_idle_ && !in_trans_ && kill_timer_) {
    timeval now{0, 0};
    evtimer_add(kill_timer_, &now);
  }
  if (step_depth_ == 0) publish();
}

void ClientSession::on_server_state_changed(ServerSession*) {
  publish_pending_ = true;
  if (step_depth_ == 0) publish();
}

// Writes this session's record into its slot (DESIGN section 2): only the
// words that changed, and when only the per-command fields can have changed,
// only those are filled and compared.
void ClientSession::publish() {
  publish_pending_ = false;
  if (!slot_) return;  // a refused connection has no slot; a closed one gave it back
  if (state_.version() != published_state_) publish_variables();
  // Fields of the full record that change seldom (an open transaction shows
  // in in_trans, which changes with every transaction).
  if ((state_.reasons() & ~uint32_t(SessionState::kTransaction)) != published_.not_restorable ||
      stmts_.size() != published_.prepared_statements)
    identity_changed();
  // The record is made on the stack: a session keeps only what it decides by.
  shm::SessionRecord rec;
  if (identity_dirty_ || closed()) {
    identity_dirty_ = false;
    fill_record(rec);
    published_.not_restorable = rec.not_restorable;
    published_.prepared_statements = rec.prepared_statements;
    published_.pinned = rec.pinned;
    published_.first_ss_id = rec.svr_session_count ? rec.servers[0].ss_id : 0;
    ShmTable::write_changes(slot_, rec);
    return;
  }
  using R = shm::SessionRecord;
  using S = shm::ServerSessionRecord;
  constexpr size_t kServer = offsetof(R, servers);
  auto server_state = [](size_t i) {
    return ShmTable::words_of(kServer + i * sizeof(S) + offsetof(S, state), sizeof(S::state));
  };
  // A server session's state and in_sync share a word.
  static_assert(offsetof(S, in_sync) / 8 == offsetof(S, state) / 8, "state and in_sync in one word");
  static_assert(offsetof(R, svr_session_count) / 8 == offsetof(R, state) / 8,
                "svr_session_count is published with state, as an activity word");
  auto server_counts = [](size_t i) {
    return ShmTable::words_of(kServer + i * sizeof(S) + offsetof(S, transact_count),
                              offsetof(S, requests) + sizeof(S::requests) - offsetof(S, transact_count));
  };
  static_assert(shm::kMaxServerSessions == 4, "kActivityWords lists four server sessions");
  static constexpr ShmTable::WordRange kActivityWords[] = {
      ShmTable::words_of(offsetof(R, state), sizeof(R::state)),  // the first five: the client session's
      ShmTable::words_of(offsetof(R, in_trans), sizeof(R::in_trans)),
      ShmTable::words_of(offsetof(R, command), offsetof(R, bytes_out) + sizeof(R::bytes_out) - offsetof(R, command)),
      ShmTable::words_of(offsetof(R, last_active_us), offsetof(R, trans_started_us) + sizeof(R::trans_started_us) -
                                                          offsetof(R, last_active_us)),
      ShmTable::words_of(offsetof(R, last_insert_id),
                         offsetof(R, server_session_moves) + sizeof(R::server_session_moves) - offsetof(R, last_insert_id)),
      server_state(0), server_counts(0), server_state(1), server_counts(1),
      server_state(2), server_counts(2), server_state(3), server_counts(3),
  };
  // Only the activity words are filled, compared and written.
  fill_activity(rec);
  ShmTable::write_changes(slot_, rec, kActivityWords, 5 + 2 * size_t(rec.svr_session_count));
}

// What SHOW PROXYSESSION VARIABLES prints, into the slot's variables area:
// written only when the state changed, which is seldom.
void ClientSession::publish_variables() {
  published_state_ = state_.version();
  std::string area;
  uint32_t dropped = 0;
  auto put = [&](char kind, const std::string& name, const std::string& value) {
    size_t need = 1 + name.size() + 1 + value.size() + 1;
    if (area.size() + need > shm::kVarsBytes) {
      ++dropped;
      return;
    }
    area += kind;
    area.append(name).push_back('\0');
    area.append(value).push_back('\0');
  };
  for (const auto& [name, value] : state_.variables()) put('v', name, value);
  if (!state_.schema().empty()) put('s', "schema", state_.schema());
  if (!state_.characteristics().empty()) put('c', "transaction_characteristics", state_.characteristics());
  ShmTable::write_vars(slot_, area);
  if (dropped != vars_dropped_) identity_changed();  // a field of the full record
  vars_dropped_ = dropped;
}

namespace {

// A server session's role as it acts now (a failover may have turned it
// around); as configured while its server is down.
uint8_t role_of(const ServerSession& ss) {
  uint32_t routing = ss.routing();
  return (routing & shm::kRouteUp) ? ((routing & shm::kRouteWritable) ? 0 : 1)
                                   : (ss.server().role == ServerRole::Primary ? 0 : 1);
}

}  // namespace

// The fields a command changes as it starts and ends: every byte of the
// activity words (publish()), those that share a word with them too, so
// that the words can be written without the rest of the record.
void ClientSession::fill_activity(shm::SessionRecord& r) const {
  using R = shm::SessionRecord;
  static_assert(offsetof(R, host_port) % 8 == 0 && offsetof(R, multiplexed) == offsetof(R, host_port) + 7,
                "in_trans's word is host_port .. multiplexed");
  State st = state();
  r.state = uint32_t(st);
  r.host_port = peer_port_;
  r.has_db = !db_.empty();
  r.in_trans = in_trans_;
  r.using_ssl = conn_ && conn_->tls() && !conn_->tls_handshaking();
  r.privileged = tenant_ && tenant_->privileged;
  r.multiplexed = multiplexed_;
  set_field(r.command, st == State::ActiveReader ? command_name(command_) : "Sleep");
  r.trans_count = trans_count_;
  r.queries = queries_;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.last_active_us = last_active_us_;
  r.trans_started_us = in_trans_ ? trans_started_us_ : 0;
  r.kill_pending = kill_when_idle_ ? 1 : 0;
  r.last_insert_id = state_.last_insert_id();
  r.server_session_moves = moves_;
  uint32_t n = 0;
  auto add = [&](const ServerSession* ss) {
    if (!ss || n >= shm::kMaxServerSessions) return;
    shm::ServerSessionRecord& sr = r.servers[n++];
    using S = shm::ServerSessionRecord;
    static_assert(offsetof(S, server_sessid) % 8 == 0 && offsetof(S, in_sync) == offsetof(S, server_sessid) + 7,
                  "state's word is server_sessid .. in_sync");
    sr.server_sessid = ss->server_sessid();
    sr.state = uint16_t(ss->state());
    sr.role = role_of(*ss);
    sr.transact_count = ss->transact_count();
    sr.requests = ss->requests();
    sr.in_sync = ss->tracks_state() && ss->synced_version() == state_.version();
  };
  for (const auto& ss : servers_) add(ss.get());
  add(pending_.get());
  r.svr_session_count = n;  // in the state's word: a multiplexed session's changes with every statement
}

void ClientSession::fill_record(shm::SessionRecord& r) const {
  r = shm::SessionRecord{};
  if (closed()) return;  // all zero, in_use = 0: the slot is free
  r.in_use = 1;
  r.cs_id = cs_id_;
  r.proxy_sessid = proxy_sessid_;
  r.worker = host_.index();
  r.tid = host_.tid();
  set_field(r.cluster, login_.cluster);
  set_field(r.tenant, login_.tenant);
  set_field(r.user, login_.user);
  set_field(r.host_ip, peer_ip_);
  r.host_port = peer_port_;
  r.has_db = !db_.empty();
  set_field(r.db, db_);
  r.using_ssl = conn_ && conn_->tls() && !conn_->tls_handshaking();
  if (r.using_ssl) {
    set_field(r.tls_version, conn_->tls_version());
    set_field(r.tls_cipher, conn_->tls_cipher());
  }
  r.privileged = tenant_ && tenant_->privileged;
  r.created_us = created_us_;
  r.slot = slot_index_;
  r.vars_dropped = vars_dropped_;
  r.not_restorable = state_.reasons() & ~uint32_t(SessionState::kTransaction);
  r.multiplexed = multiplexed_;
  r.pinned = multiplexed_ && !servers_.empty() && phase_ == Phase::Ready ? pin_reasons() : 0;
  r.prepared_statements = uint32_t(stmts_.size());
  uint32_t n = 0;
  auto add = [&](const ServerSession* ss) {
    if (!ss || n >= shm::kMaxServerSessions) return;
    shm::ServerSessionRecord& sr = r.servers[n++];
    sr.ss_id = ss->ss_id();
    sr.server_sessid = ss->server_sessid();
    set_field(sr.server_ip, ss->server().address.host);
    sr.server_port = ss->server().address.port;
    sr.created_us = ss->created_us();
  };
  for (const auto& ss : servers_) add(ss.get());
  add(pending_.get());
  r.svr_session_count = n;
  fill_activity(r);
}

// ---- the server sessions ----

ServerSession* ClientSession::open_server(const BackendServer& server, const std::string& cluster) {
  servers_.push_back(std::make_unique<ServerSession>(*this, host_, server, cluster, host_.next_ss_id(),
                                                     cfg_->backend_connect_ms));
  adopt_server(servers_.back().get());
  return servers_.back().get();
}

// A server session joins the set: responses relayed through it are shaped
// for this client.
void ClientSession::adopt_server(ServerSession* ss) {
  ss->set_owner(*this);
  if (!ss->line()) {  // new: counted on its server's health entry and line (a shared one is already)
    shm::ServerEntry& entry = host_.server_entry(ss->server());
    ss->attach_health(entry);
    ss->attach_line(host_.shared_servers().line(entry, ss->server()));
  }
  ss->set_client_view(caps_, &client_trackers_);
  // A multiplexed session that takes back the connection its record still
  // shows (only its count went to 0) rewrites just the activity words.
  if (!(servers_.size() == 1 && servers_[0].get() == ss && published_.first_ss_id == ss->ss_id() && !pending_))
    identity_changed();
}

ServerSession* ClientSession::find_server(uint64_t ss_id) const {
  for (const auto& ss : servers_)
    if (ss->ss_id() == ss_id) return ss.get();
  return pending_ && pending_->ss_id() == ss_id ? pending_.get() : nullptr;
}

ServerSession* ClientSession::server_for(const BackendServer& server) const {
  for (const auto& ss : servers_)
    if (ss->server().address.host == server.address.host && ss->server().address.port == server.address.port)
      return ss.get();
  return nullptr;
}

std::unique_ptr<ServerSession> ClientSession::take_server(ServerSession* ss) {
  std::unique_ptr<ServerSession> out;
  if (pending_.get() == ss) {
    out = std::move(pending_);
  } else {
    auto it = std::find_if(servers_.begin(), servers_.end(), [ss](const auto& p) { return p.get() == ss; });
    if (it == servers_.end()) return out;
    out = std::move(*it);
    servers_.erase(it);
  }
  if (current_ == ss) current_ = nullptr;
  stmts_.forget_server(ss->ss_id());
  identity_changed();
  publish_pending_ = true;
  return out;
}

void ClientSession::release_server(ServerSession* ss) {
  std::unique_ptr<ServerSession> gone = take_server(ss);
  if (!gone) return;
  if (gone->state() == ServerSession::State::Active && gone->server_sessid() != 0)
    host_.stop_backend_statement(gone->server(), gone->cluster(), gone->login(), gone->server_sessid(), false,
                                 gone.get() == logged_kill_server_ ? logged_kill_id_ : 0);
  if (gone.get() == logged_kill_server_) {
    logged_kill_server_ = nullptr;
    logged_kill_id_ = 0;
  }
}

void ClientSession::release_all_servers() {
  while (!servers_.empty()) release_server(servers_.back().get());
  if (pending_) release_server(pending_.get());
}

// A server session lost or killed while idle: the session goes on and opens
// a new one at its next command, with its state carried over, unless it
// holds state that cannot be carried.
void ClientSession::drop_server(ServerSession* ss, const char* why) {
  LOG_INFO("cs_id=%u ss_id=%llu to %s closed: %s", cs_id_, (unsigned long long)ss->ss_id(),
           ss->server().address.str().c_str(), why);
  bool anchor = ss == current_;
  release_server(ss);
  if (anchor) end_if_unrestorable(why);
}

bool ClientSession::end_if_unrestorable(const std::string& what) {
  if (state_.restorable() || closed()) return false;
  log_kill(shm::KillReason::StateLost, KilledBy::because(what));
  LOG_INFO("cs_id=%u '%s' from %s:%u: its server session is gone (%s) and it holds %s, which cannot be carried "
           "to another: closing it, as its server would have",
           cs_id_, login_text_.c_str(), peer_ip_.c_str(), peer_port_, what.c_str(),
           SessionState::describe(state_.reasons()).c_str());
  close_after_flush("state lost with its server session");
  return true;
}

// ---- kills (requests arrive through the worker) ----

std::string KilledBy::text() const {
  if (cs_id) return "KILL from cs_id=" + std::to_string(cs_id) + (name.empty() ? "" : " (" + name + ")");
  if (pid)
    return "kill request from pid " + std::to_string(pid) + (uid >= 0 ? " uid " + std::to_string(uid) : "") +
           (name.empty() ? "" : " (" + name + ")");
  return name;
}

uint64_t ClientSession::log_kill(shm::KillReason reason, const KilledBy& by) {
  if (!slot_) return 0;  // never logged in, or gone already
  shm::KillRecord r{};
  const int64_t now = host_.loop_time_us();
  r.time_us = now;
  r.proxy_sessid = proxy_sessid_;
  r.cs_id = cs_id_;
  r.by_cs_id = by.cs_id;
  r.by_pid = by.pid;
  r.by_uid = by.uid;
  r.reason = uint8_t(reason);
  r.host_port = peer_port_;
  set_field(r.user, login_.user);
  set_field(r.tenant, login_.tenant);
  set_field(r.host_ip, peer_ip_);
  set_field(r.by, by.name);
  r.statement_ms = -1;
  ShmTable::Statement st;
  if (statement_running_ && ShmTable::read_statement(slot_, st) && st.start_us > 0) {
    r.statement_ms = now > st.start_us ? (now - st.start_us) / 1000 : 0;
    set_field(r.statement, st.text);
  }
  r.trans_ms = in_trans_ && trans_started_us_ ? (now - trans_started_us_) / 1000 : -1;
  // A statement running on a backend is stopped there from a side connection
  // (release_server or kill_query sends the KILL QUERY).
  bool running = current_ && current_->state() == ServerSession::State::Active && current_->server_sessid() != 0;
  r.backend = uint8_t(running ? shm::BackendStop::KillSent : shm::BackendStop::NoStatement);
  uint64_t id = host_.record_kill(r);
  // The server session whose release stops the statement tells this entry
  // how that went.
  logged_kill_server_ = running ? current_ : nullptr;
  logged_kill_id_ = running ? id : 0;
  return id;
}

void ClientSession::kill(const KilledBy& by) {
  Step step(*this);
  LOG_INFO("cs_id=%u '%s' from %s:%u killed (%s)", cs_id_, login_text_.c_str(), peer_ip_.c_str(), peer_port_,
           by.text().c_str());
  log_kill(shm::KillReason::Kill, by);
  close(("killed: " + by.text()).c_str());
}

void ClientSession::close_for_shutdown(const char* why) {
  if (closed()) return;
  log_kill(shm::KillReason::Shutdown, KilledBy::because("shutdown"));
  close(why);
}

bool ClientSession::kill_server_session(uint64_t ss_id, const KilledBy& by_whom) {
  Step step(*this);
  const std::string by = by_whom.text();
  ServerSession* ss = find_server(ss_id);
  if (!ss) {
    LOG_INFO("cs_id=%u: kill of ss_id=%llu ignored: no such server session any more", cs_id_,
             (unsigned long long)ss_id);
    return false;
  }
  LOG_INFO("cs_id=%u ss_id=%llu killed (%s)", cs_id_, (unsigned long long)ss_id, by.c_str());
  log_kill(shm::KillReason::KillServerSession, by_whom);
  if (!ss->ready()) {
    // Still logging in: the client waits for it, with nothing to go on with.
    close(("server session killed during login: " + by).c_str());
    return true;
  }
  if (phase_ == Phase::InCommand && ss == current_) {
    // The client waits for an answer that will not come: tell it, and end
    // only the server session; the next statement opens a new one, unless
    // the session's state went with it.
    bool clean = ss->between_packets();
    uint8_t seq = uint8_t(ss->last_relayed_seq() + 1);
    release_server(ss);
    if (clean) {
      seq_ = seq;
      send_error(er::ER_CONNECTION_KILLED, "Connection was killed");
    }
    if (!clean || end_if_unrestorable("killed: " + by)) {
      close_after_flush("server session killed in the middle of a command");
      return true;
    }
    change_phase(Phase::Ready);
    handle_input();
    return true;
  }
  drop_server(ss, ("killed: " + by).c_str());
  return true;
}

void ClientSession::kill_query(const KilledBy& by) {
  Step step(*this);
  ServerSession* ss = current_;
  if (!ss || ss->state() != ServerSession::State::Active) {
    LOG_DEBUG("cs_id=%u: KILL QUERY (%s) found no running statement", cs_id_, by.text().c_str());
    return;
  }
  LOG_INFO("cs_id=%u: KILL QUERY of backend thread %u (%s)", cs_id_, ss->server_sessid(), by.text().c_str());
  uint64_t id = log_kill(shm::KillReason::KillQuery, by);
  host_.stop_backend_statement(ss->server(), ss->cluster(), ss->login(), ss->server_sessid(), true, id);
}

void ClientSession::kill_when_idle(const KilledBy& by, uint32_t timeout_s) {
  Step step(*this);
  bool idle = phase_ == Phase::Ready && !in_trans_;
  LOG_INFO("cs_id=%u '%s' from %s:%u: kill when idle (%s)%s", cs_id_, login_text_.c_str(), peer_ip_.c_str(),
           peer_port_, by.text().c_str(), idle ? ": idle now" : "");
  if (idle) {
    log_kill(shm::KillReason::KillWhenIdle, by);
    close_after_flush(("killed when idle: " + by.text()).c_str());
    return;
  }
  kill_when_idle_ = std::make_unique<GracefulKill>();
  kill_when_idle_->by = by;
  identity_changed();  // kill_pending shows
  publish_pending_ = true;
  if (!kill_timer_) kill_timer_ = evtimer_new(host_.base(), on_kill_timer, this);
  kill_when_idle_->deadline_us = timeout_s ? host_.loop_time_us() + int64_t(timeout_s) * 1000000 : 0;
  if (timeout_s == 0) return;
  timeval tv{time_t(timeout_s), 0};
  evtimer_add(kill_timer_, &tv);
}

bool ClientSession::end_if_kill_pending() {
  if (!kill_when_idle_ || in_trans_ || closed()) return false;
  LOG_INFO("cs_id=%u '%s' from %s:%u killed at its idle moment (%s)", cs_id_, login_text_.c_str(), peer_ip_.c_str(),
           peer_port_, kill_when_idle_->by.text().c_str());
  log_kill(shm::KillReason::KillWhenIdle, kill_when_idle_->by);
  close_after_flush(("killed when idle: " + kill_when_idle_->by.text()).c_str());
  return true;
}

void ClientSession::on_kill_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  if (!self->kill_when_idle_ || self->closed()) return;
  if (self->phase_ == Phase::Ready && self->end_if_kill_pending()) return;
  const int64_t left_us = self->kill_when_idle_->deadline_us ? self->kill_when_idle_->deadline_us - self->host_.loop_time_us() : -1;
  if (self->kill_when_idle_->deadline_us == 0 || left_us > 0) {  // busy again: wait for idle, or for the deadline
    if (left_us > 0) {
      timeval tv{time_t(left_us / 1000000), suseconds_t(left_us % 1000000)};
      evtimer_add(self->kill_timer_, &tv);
    }
    return;
  }
  LOG_INFO("cs_id=%u '%s' from %s:%u: not idle by the WHEN IDLE timeout: killed (%s)", self->cs_id_,
           self->login_text_.c_str(), self->peer_ip_.c_str(), self->peer_port_, self->kill_when_idle_->by.text().c_str());
  self->log_kill(shm::KillReason::KillWhenIdleTimeout, self->kill_when_idle_->by);
  self->close(("killed at the WHEN IDLE timeout: " + self->kill_when_idle_->by.text()).c_str());
}

void ClientSession::drain() {
  Step step(*this);
  bool idle = phase_ == Phase::Ready || phase_ == Phase::AwaitHandshakeResponse ||
              phase_ == Phase::AwaitAuthSwitchResponse;
  if (idle) end_if_asked_to_end_when_idle();
}

bool ClientSession::end_if_asked_to_end_when_idle() {
  if (in_trans_ || closed()) return false;
  if (host_.draining()) {
    log_kill(shm::KillReason::Shutdown, KilledBy::because("shutdown"));
    close_after_flush("proxy shutting down");
    return true;
  }
  return end_if_kill_pending();
}

// ---- libevent callbacks ----

void ClientSession::on_client_read(Connection*, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  self->client_progress_ = true;
  self->handle_input();
}

void ClientSession::on_client_write(Connection* c, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  if (self->phase_ == Phase::Closing) {
    if (c->pending_output() == 0) self->close("closed after final packet");
    return;
  }
  if (self->phase_ == Phase::InCommand && self->current_) self->current_->on_client_drained();
}

void ClientSession::on_client_event(Connection* c, short what, int err, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  if (what & Connection::kTlsReady) {
    self->on_tls_ready();
    return;
  }
  if (c->tls() && !c->tls_error().empty()) {
    // A failed or abandoned TLS handshake, or a broken record: this session
    // only ends, and the log says why.
    LOG_INFO("cs_id=%u %s:%u: %s", self->cs_id_, self->peer_ip_.c_str(), self->peer_port_, c->tls_error().c_str());
    self->close(c->tls_error().c_str());
  } else if (what & Connection::kTimeout) {
    self->close("client stopped reading");  // the only timeout: close_after_flush's
  } else if (what & Connection::kEof) {
    self->close("client closed the connection");
  } else {
    std::string why = std::string("client connection error: ") + evutil_socket_error_to_string(err);
    self->close(why.c_str());
  }
}

void ClientSession::on_handshake_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  LOG_INFO("cs_id=%u %s:%u did not finish its login within %d ms", self->cs_id_, self->peer_ip_.c_str(),
           self->peer_port_, self->cfg_->handshake_ms);
  self->close("handshake timeout");
}

// Consumes the client's input as the phase says.  A phase change can make
// input already buffered meaningful (the answer to an auth switch sent while
// reading a pipeline, say), so this goes on until the phase holds still:
// input is never left waiting for an event that will not come.
void ClientSession::handle_input() {
  for (;;) {
    Phase before = phase_;
    switch (phase_) {
      case Phase::AwaitHandshakeResponse:
        handle_handshake_response();
        break;
      case Phase::AwaitAuthSwitchResponse:
        handle_auth_switch_response();
        break;
      case Phase::Ready:
        process_commands();
        break;
      case Phase::InCommand:
        // Only an upload the backend asked for moves now; anything else the
        // client sends waits for the response to end.
        pump_upload();
        break;
      case Phase::AwaitChangeUserAuth:
        handle_change_user_auth();
        break;
      default:
        break;
    }
    if (phase_ == before || !conn_ || evbuffer_get_length(conn_->input()) == 0) break;
  }
  watch_reads();
}

bool ClientSession::owes_bytes() const {
  switch (phase_) {
    case Phase::Ready:
      return partial_command_;
    case Phase::AwaitChangeUserAuth:
      return true;  // the answer to the auth switch
    case Phase::InCommand:
      return upload_starved_ && current_ && current_->wants_upload();
    default:
      return false;  // the login has its own deadline; the rest waits for backends
  }
}

// A client that stops in the middle of a packet (or of an upload the
// backend waits for) is timed out as the server would time it out; the
// timer is armed only then (see watch_reads()).
void ClientSession::arm_read_timer() {
  if (!owes_bytes() || !conn_) return;
  if (client_progress_) {
    last_read_us_ = host_.loop_time_us();
    client_progress_ = false;
  }
  if (!read_timer_) read_timer_ = evtimer_new(host_.base(), on_read_timer, this);
  if (evtimer_pending(read_timer_, nullptr)) return;
  timeval tv{cfg_->net_read_timeout_s, 0};
  evtimer_add(read_timer_, &tv);
}

void ClientSession::on_read_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  if (!self->owes_bytes()) return;
  int64_t limit_us = int64_t(self->cfg_->net_read_timeout_s) * 1000000;
  int64_t quiet_us = self->host_.loop_time_us() - std::max(self->last_read_us_, self->last_active_us_);
  if (quiet_us < limit_us) {
    timeval tv{time_t((limit_us - quiet_us) / 1000000), suseconds_t((limit_us - quiet_us) % 1000000)};
    evtimer_add(self->read_timer_, &tv);
    return;
  }
  LOG_INFO("cs_id=%u %s:%u sent nothing for %d s in the middle of a packet: closing", self->cs_id_,
           self->peer_ip_.c_str(), self->peer_port_, self->cfg_->net_read_timeout_s);
  if (self->phase_ == Phase::InCommand) {
    self->close_after_flush("client stopped in the middle of an upload");
    return;
  }
  if (self->phase_ == Phase::Ready) self->seq_ = 1;
  self->send_error_and_close(er::ER_NET_READ_INTERRUPTED, "Got timeout reading communication packets",
                             "net_read_timeout");
}

// ---- output and closing ----

void ClientSession::send_packet(const std::string& payload) {
  if (!conn_) return;
  seq_ = frame_packet(conn_->output(), seq_, payload);
  conn_->flush();
}

void ClientSession::send_error(const er::Error& e, const std::string& message) {
  send_packet(build_err(e, message));
}

void ClientSession::send_ok(uint16_t status_extra) {
  OkPacket ok;
  ok.status = client_status() | status_extra;
  send_packet(build_ok(ok, caps_));
}

uint16_t ClientSession::client_status() const {
  uint16_t st = SERVER_STATUS_AUTOCOMMIT;
  if (current_) st = current_->login_status() & SERVER_STATUS_AUTOCOMMIT;
  if (in_trans_) st |= SERVER_STATUS_IN_TRANS;
  return st;
}

void ClientSession::send_error_and_close(const er::Error& e, const std::string& message, const char* why) {
  send_error(e, message);
  close_after_flush(why);
}

void ClientSession::close_after_flush(const char* why) {
  if (closed() || phase_ == Phase::Closing) return;
  LOG_DEBUG("cs_id=%u closing: %s", cs_id_, why);
  change_phase(Phase::Closing);
  release_all_servers();
  if (!conn_ || conn_->pending_output() == 0) {  // with TLS, records may still wait
    close(why);
    return;
  }
  // on_client_write closes once the output is empty; a client that stops
  // reading gets kCloseFlushSeconds without progress.
  conn_->disable_read();
  conn_->set_write_low_water(0);
  conn_->set_write_timeout(kCloseFlushSeconds);
  conn_->flush();
}

void ClientSession::end_pending_login() {
  if (!login_pending_) return;
  login_pending_ = false;
  host_.login_finished(peer_ip_);
}

void ClientSession::free_timers() {
  for (event** t : {&handshake_timer_, &idle_timer_, &read_timer_, &route_timer_, &replica_timer_, &statement_timer_,
                    &kill_timer_, &queue_timer_}) {
    if (*t) event_free(*t);
    *t = nullptr;
  }
}

void ClientSession::close(const char* why) {
  if (closed()) return;
  LOG_DEBUG("cs_id=%u %s:%u closed: %s", cs_id_, peer_ip_.c_str(), peer_port_, why);
  phase_ = Phase::Closed;
  stop_queue_wait();
  release_all_servers();
  publish();       // frees the slot for readers before the worker reuses it
  slot_ = nullptr;  // and nothing writes it again
  free_timers();
  end_pending_login();
  conn_.reset();
  host_.session_closed(this);
}

}  // namespace myrelay
