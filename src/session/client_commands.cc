// A client session's command loop: reading commands, answering the proxy's
// own, forwarding the rest to the current server session, moving uploads,
// and finishing each command when its response is complete (see
// client_session.h).
#include <event2/buffer.h>

#include <strings.h>

#include <algorithm>
#include <limits>

#include "control/admin_commands.h"
#include "control/statement_guard.h"
#include "session/statement_facts.h"
#include "control/sql_recognizer.h"
#include "control/shm_table.h"
#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

// A command up to this size is read whole before it is forwarded, so the
// proxy can look at it; longer ones (bulk INSERTs, long data) stream through.
static constexpr size_t kWholeCommandMax = 64 * 1024;
// The largest command buffer an idle session keeps for the next command.
static constexpr size_t kSpareCommandMax = 512;
// Bytes of a long command's start the proxy looks at before streaming it.
static constexpr size_t kStreamHead = PacketRelay::kPeekBytes;

void ClientSession::process_commands() {
  evbuffer* in = conn_->input();
  partial_command_ = false;
  while (phase_ == Phase::Ready) {
    size_t avail = evbuffer_get_length(in);
    if (avail < kHeaderLen) {
      partial_command_ = avail > 0;
      return;
    }
    uint8_t hdr[kHeaderLen + kStreamHead];
    evbuffer_copyout(in, hdr, kHeaderLen);
    PacketHeader h = parse_header(hdr);
    if (h.seq != 0) {
      // As the server: "Got packets out of order", and the connection ends.
      LOG_WARN("cs_id=%u %s:%u sent a command packet with sequence id %u; closing", cs_id_, peer_ip_.c_str(),
               peer_port_, h.seq);
      bump(counters_.errors);
      seq_ = uint8_t(h.seq + 1);
      send_error_and_close(er::ER_NET_PACKETS_OUT_OF_ORDER, "Got packets out of order", "packets out of order");
      return;
    }
    if (h.length == 0) {
      // The server reads an empty command as COM_SLEEP: an unknown command.
      evbuffer_drain(in, kHeaderLen);
      seq_ = 1;
      send_error(er::ER_UNKNOWN_COM_ERROR, "Unknown command");
      continue;
    }
    if (h.length < kMaxChunk && h.length <= kWholeCommandMax) {
      if (avail < kHeaderLen + h.length) {
        partial_command_ = true;
        return;
      }
      uint8_t first_seq = 0, last_seq = 0;
      // Reuses the last command's allocation; a command handled further down
      // this call (after a quick reply) finds none and makes its own.
      std::string payload;
      payload.swap(spare_command_);
      read_packet(in, kWholeCommandMax, first_seq, last_seq, payload);
      handle_command(std::move(payload));
      if (payload.capacity() <= kSpareCommandMax && payload.capacity() > spare_command_.capacity()) {
        payload.clear();
        spare_command_.swap(payload);
      }
      continue;
    }
    if (h.length > cfg_->max_packet_size) {
      LOG_WARN("cs_id=%u sent a %u-byte packet, over max_packet_size; closing", cs_id_, h.length);
      send_error_and_close(er::ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes",
                           "oversized packet");
      return;
    }
    if (avail < kHeaderLen + kStreamHead) {
      partial_command_ = true;
      return;
    }
    evbuffer_copyout(in, hdr, sizeof(hdr));
    start_streamed_command(hdr[kHeaderLen], hdr + kHeaderLen, kStreamHead);
  }
}

// Commands the proxy never forwards; true when `cmd` was refused.
bool ClientSession::refuse_command(uint8_t cmd) {
  constexpr uint32_t kNever = 1u << COM_BINLOG_DUMP | 1u << COM_BINLOG_DUMP_GTID | 1u << COM_REGISTER_SLAVE |
                              1u << COM_TABLE_DUMP | 1u << COM_CONNECT_OUT | 1u << COM_CONNECT | 1u << COM_DAEMON |
                              1u << COM_DELAYED_INSERT | 1u << COM_TIME | 1u << COM_SLEEP;
  static_assert(COM_RESET_CONNECTION < 32, "commands fit in the mask");
  if (cmd <= COM_RESET_CONNECTION && !((kNever >> cmd) & 1)) return false;  // the usual case
  if (cmd == COM_STMT_BULK_EXECUTE) return false;  // the backend refuses it without the capability
  switch (cmd) {
    case COM_BINLOG_DUMP:
    case COM_BINLOG_DUMP_GTID:
    case COM_REGISTER_SLAVE:
    case COM_TABLE_DUMP:
    case COM_CONNECT_OUT:
    case COM_CONNECT:
    case COM_DAEMON:
    case COM_DELAYED_INSERT:
    case COM_TIME:
    case COM_SLEEP:
      seq_ = 1;
      send_error(er::ER_UNKNOWN_COM_ERROR,
                 std::string("Unknown command: ") + command_name(cmd) + " is not supported through myrelay");
      return true;
    default:
      break;
  }
  seq_ = 1;
  send_error(er::ER_UNKNOWN_COM_ERROR, "Unknown command");
  return true;
}

// What a statement text leaves behind that the server does not report;
// true when it was refused (it would blind the proxy's own trackers).
bool ClientSession::note_statement(std::string_view sql_text) {
  temporary_report_ = false;
  if (!StatementFacts::worth_scanning(sql_text)) return false;
  StatementFacts facts = StatementFacts::of(sql_text);
  if (facts.has(StatementFacts::kTrackerChange)) {
    seq_ = 1;
    send_error(er::ER_NOT_SUPPORTED_YET,
               "This version of myrelay doesn't yet support 'changing session_track_* variables: the proxy tracks "
               "the session's state itself'");
    return true;
  }
  state_.note(facts);
  temporary_report_ = facts.has(StatementFacts::kSetStatement);
  return false;
}

void ClientSession::handle_command(std::string&& payload) {
  uint8_t cmd = uint8_t(payload[0]);
  if (cmd == COM_QUIT) {
    pool_server_session();
    close("client quit");
    return;
  }
  if (cmd == COM_CHANGE_USER) {
    handle_change_user(payload);
    return;
  }
  if (refuse_command(cmd)) return;
  if (cmd == COM_QUERY && run_admin_command(std::string_view(payload).substr(1))) return;
  local_warnings_.clear();  // what the last proxy statement noted
  if ((cmd == COM_QUERY || cmd == COM_STMT_PREPARE) && (refuse_statement(std::string_view(payload).substr(1)) ||
                                                        note_statement(std::string_view(payload).substr(1))))
    return;
  if (cmd == COM_PROCESS_KILL && payload.size() >= 5) {
    // COM_PROCESS_KILL carries the id; it means KILL CONNECTION id.
    uint32_t id = uint32_t(uint8_t(payload[1])) | uint32_t(uint8_t(payload[2])) << 8 |
                  uint32_t(uint8_t(payload[3])) << 16 | uint32_t(uint8_t(payload[4])) << 24;
    run_admin_command("KILL CONNECTION " + std::to_string(id));
    return;
  }
  use_db_.clear();
  if (cmd == COM_QUERY) sql::parse_use(std::string_view(payload).substr(1), use_db_);
  if (cmd == COM_INIT_DB) use_db_ = payload.substr(1);
  send_to_server(std::move(payload));
}

// Chooses the server session the command goes to (client_routing.cc) and
// whether it can take the command now: logged in, holding the session's
// state, and (a causal read) holding the session's last write.  Otherwise
// the command waits: for a new server session, for the state to be
// replayed on it, for the replica to catch up, for a writable server.
ClientSession::Route ClientSession::ensure_server(uint8_t cmd, std::string_view payload) {
  Route r = route_command(cmd, payload);
  if (r != Route::Go) return r;
  if (current_->tracks_state() && current_->synced_version() != state_.version() && start_sync(current_))
    return Route::Wait;
  if (needs_causal_wait(current_)) {
    bump(counters_.causal_waits);
    start_causal_wait(current_);
    return Route::Wait;
  }
  return Route::Go;
}

// What waited for a server session (a held command, else a long one still
// in the input) goes on now.
void ClientSession::resume_held() {
  change_phase(Phase::Ready);
  if (!held_command_.empty()) {
    std::string held = std::move(held_command_);
    held_command_.clear();
    send_to_server(std::move(held));
  }
  if (phase_ == Phase::Ready) handle_input();
}

void ClientSession::count_command(size_t bytes) {
  ++queries_;
  bytes_in_ += bytes;
  bump(counters_.queries);
  bump(counters_.bytes_from_clients, bytes);
  last_active_us_ = host_.loop_time_us();
}

void ClientSession::statement_started(std::string_view text) {
  if (!slot_) return;
  size_t n = size_t(cfg_->statement_text_bytes);
  ShmTable::write_statement(slot_, text.substr(0, std::min(n, text.size())), last_active_us_);
  statement_running_ = true;
}

void ClientSession::statement_ended() {
  if (statement_timer_ && timed_query_) {
    timed_query_ = 0;
    evtimer_del(statement_timer_);
  }
  if (!statement_running_ || !slot_) return;
  statement_running_ = false;
  ShmTable::end_statement(slot_, last_active_us_);
}

void ClientSession::forward_command(std::string&& payload) {
  command_ = uint8_t(payload[0]);
  count_command(payload.size() + kHeaderLen);
  if (command_ == COM_QUERY || command_ == COM_STMT_PREPARE) {
    statement_started(std::string_view(payload).substr(1));
    watch_statement_time();
  } else if (running_stmt_ && PreparedStatements::names_statement(command_) && command_ != COM_STMT_SEND_LONG_DATA) {
    statement_started(running_stmt_->sql);
    watch_statement_time();
  }
  current_->set_last_used(last_active_us_);
  if (multiplexed_) note_server_used(current_);
  force_write_ = false;
  if (read_routed_) {
    read_retry_.assign(payload);  // run again elsewhere should its replica die before answering
    if (!(current_->routing() & shm::kRouteWritable)) bump(counters_.reads_to_replicas);
  } else if (!read_retry_.empty()) {
    read_retry_.clear();
  }
  change_phase(Phase::InCommand);
  current_->run(payload, conn_.get());  // may finish at once
}

void ClientSession::start_streamed_command(uint8_t command, const uint8_t* head, size_t head_len) {
  switch (command) {
    case COM_QUERY:
    case COM_STMT_PREPARE:
    case COM_STMT_EXECUTE:
    case COM_STMT_SEND_LONG_DATA:
    case COM_STMT_BULK_EXECUTE:
      break;
    default:
      LOG_WARN("cs_id=%u sent a %s command longer than %zu bytes; closing", cs_id_, command_name(command),
               kWholeCommandMax);
      send_error_and_close(er::ER_UNKNOWN_COM_ERROR, "Malformed packet", "malformed long command");
      return;
  }
  // A long text is not looked at whole before it goes: it runs where writes do.
  switch (ensure_server(command, command == COM_QUERY ? std::string_view() : std::string_view(
                                                                                 reinterpret_cast<const char*>(head), head_len))) {
    case Route::Go:
      break;
    case Route::Wait:
      return;  // the command stays in the input meanwhile
    case Route::Answered:
      close_after_flush("a long command could not be routed");
      return;
  }
  force_write_ = false;
  read_routed_ = false;
  if (PreparedStatements::names_statement(command) &&
      route_streamed_statement(conn_->input()) != StatementRoute::Forward)
    return;
  if (command == COM_STMT_PREPARE) {
    preparing_sql_.clear();  // too long to keep: this statement cannot be prepared again
    preparing_kept_ = false;
  }
  command_ = command;
  use_db_.clear();
  count_command(0);  // its bytes are counted as they move
  current_->set_last_used(last_active_us_);
  if (multiplexed_) note_server_used(current_);
  if (command == COM_QUERY || command == COM_STMT_PREPARE)
    statement_started(std::string_view(reinterpret_cast<const char*>(head) + 1, head_len - 1));
  else if (running_stmt_ && command != COM_STMT_SEND_LONG_DATA)
    statement_started(running_stmt_->sql);
  if (command != COM_STMT_SEND_LONG_DATA) watch_statement_time();
  change_phase(Phase::InCommand);
  up_.reset();
  streamed_text_.reset();
  if (command == COM_QUERY || command == COM_STMT_PREPARE) streamed_text_ = std::make_unique<StreamedStatement>(db_);
  current_->begin_streamed(command, head, head_len, conn_.get());
  pump_upload();
}

// Moves client packets to the backend: the rest of a long command, or the
// file of a LOAD DATA LOCAL INFILE up to its empty end packet.
void ClientSession::pump_upload() {
  auto every_packet = [](const uint8_t*, size_t, uint64_t) { return PacketRelay::Verdict::Last; };
  while (phase_ == Phase::InCommand && current_ && current_->wants_upload()) {
    evbuffer* in = conn_->input();
    PacketRelay::Step step = up_.scan(in, current_->upload_room(), cfg_->max_packet_size, every_packet);
    if (streamed_text_ && step.bytes) streamed_text_->feed(in, step.bytes);
    if (streamed_text_ && step.stop == PacketRelay::Stop::Last && !judge_streamed_statement()) return;
    if (step.bytes) {
      current_->forward_upload(in, step.bytes);
      bytes_in_ += step.bytes;
      bump(counters_.bytes_from_clients, step.bytes);
    }
    if (step.stop == PacketRelay::Stop::TooBig) {
      LOG_WARN("cs_id=%u sent a packet over max_packet_size (%llu bytes); closing", cs_id_,
               (unsigned long long)cfg_->max_packet_size);
      send_error_and_close(er::ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes",
                           "oversized packet");
      return;
    }
    upload_starved_ = step.stop == PacketRelay::Stop::NeedInput;
    if (step.stop != PacketRelay::Stop::Last) return;  // wait for the client, or for the backend to drain
    uint64_t len = up_.packet_len();
    up_.reset();
    if (!current_->upload_packet_done(len)) return;  // the upload is over; the response follows
  }
}

void ClientSession::on_upload_possible(ServerSession* ss) {
  Step step(*this);
  if (ss != current_) return;
  pump_upload();
  watch_reads();
}

// The response to the command in flight is complete.
void ClientSession::on_response_done(ServerSession* ss) {
  Step step(*this);
  if (ss != current_ || phase_ != Phase::InCommand) return;
  upload_starved_ = false;
  bytes_out_ += ss->response_bytes();
  const ResponseTracker& r = ss->response();
  read_retry_.clear();
  if (r.have_status()) {
    autocommit_ = r.last_status() & SERVER_STATUS_AUTOCOMMIT;
    bool now_in_trans = r.last_status() & SERVER_STATUS_IN_TRANS;
    if (now_in_trans && !in_trans_) {
      ++trans_count_;
      ss->count_transaction();
      transaction_began();
    }
    in_trans_ = now_in_trans;
  }
  if (!use_db_.empty() && !r.ended_with_error() && !ss->tracks_state()) {
    db_ = use_db_;
    identity_changed();
  }
  use_db_.clear();
  state_.set_in_transaction(in_trans_);
  // A result set's EOF said the state changed without saying how.  Inside a
  // transaction that is the transaction's own state, which the session does
  // not carry anyway; outside, something the proxy cannot replay.
  if (r.eof_reported_state_change() && !in_trans_ && ss->tracks_state())
    state_.set_reason(SessionState::kUnknownState, true);
  if (r.last_insert_id()) state_.set_last_insert_id(r.last_insert_id());
  if (running_stmt_) after_statement_response(r);
  if (command_ == COM_STMT_PREPARE && !r.ended_with_error() && ss->shared_statements())
    if (const PreparedStatements::Statement* st = stmts_.find(PreparedStatements::kLastPrepared)) share_statement(ss, *st);
  if (command_ == COM_RESET_CONNECTION && !r.ended_with_error()) after_reset(ss);
  state_.statement_done(!r.ended_with_error());
  temporary_report_ = false;
  if (ss->tracks_state() && ss->tracking_on()) {
    ss->set_synced_version(state_.version());  // it made the changes itself
    if (ss->schema() != state_.schema()) ss->set_schema(state_.schema());
  }
  const int64_t now = host_.loop_time_us();
  if (cfg_->latency_histogram && (command_ == COM_QUERY || command_ == COM_STMT_EXECUTE))
    count_latency(ss->server().health, now - last_active_us_);
  last_active_us_ = now;
  statement_ended();
  change_phase(Phase::Ready);
  if (end_if_asked_to_end_when_idle()) return;
  release_to_shared();
  handle_input();
}

// COM_RESET_CONNECTION went through: the server's defaults again (the
// database stays), its trackers too, and no other server session holds
// what this one now holds.
void ClientSession::after_reset(ServerSession* ss) {
  state_.reset(state_.schema());
  stmts_.clear();
  running_stmt_ = nullptr;
  std::shared_ptr<const BackendFacts> facts = host_.backend_facts(login_.cluster);
  client_trackers_ = facts->trackers ? facts->trackers : proto::TrackerSet::shared_mariadb_defaults();
  for (size_t i = servers_.size(); i-- > 0;)
    if (servers_[i].get() != ss) release_server(servers_[i].get());
  ss->set_tracking_on(false);
  ss->set_synced_version(0);
  ss->forget_state();  // its statements and what it held are gone on the backend too
  ss->set_holder(cs_id_);
  if (multiplexed_) ss->share_statements();
}

void ClientSession::on_server_lost(ServerSession* ss, const std::string& why) {
  Step step(*this);
  if (ss == pending_.get()) {
    finish_change_user(false, build_err(er::ER_NET_READ_ERROR, "Lost connection to backend server"));
    return;
  }
  if (ss == current_ && phase_ == Phase::InCommand && ss->in_command()) {
    if (!retry_read_elsewhere(ss, why)) fail_command(ss, why);
    return;
  }
  drop_server(ss, ("backend closed the connection: " + why).c_str());
}

// The current server session went away in the middle of a command: tell
// the client, unless a packet was cut in half, and close, as the server would.
void ClientSession::fail_command(ServerSession* ss, const std::string& why) {
  std::string addr = ss->server().address.str();
  LOG_WARN("cs_id=%u lost backend %s during %s: %s", cs_id_, addr.c_str(), command_name(command_), why.c_str());
  log_kill(shm::KillReason::BackendLost, KilledBy::because("backend " + addr + ": " + why));
  bump(counters_.errors);
  bytes_out_ += ss->response_bytes();
  bool clean = ss->between_packets();
  uint8_t seq = uint8_t(ss->last_relayed_seq() + 1);
  release_server(ss);
  if (clean) {
    seq_ = seq;
    send_error(er::ER_NET_READ_ERROR, "Lost connection to backend server " + addr + " during query");
  }
  close_after_flush("backend connection lost during a command");
}

// A statement that would act on other sessions through the backend (see
// control/statement_guard.h) gets an error instead of a backend.  True when
// it was refused.
bool ClientSession::refuse_statement(std::string_view sql_text) {
  static const char* const kThreadSchemas[] = {"information_schema", "performance_schema", "sys"};
  bool thread_schema = false;
  for (const char* schema : kThreadSchemas) thread_schema = thread_schema || strcasecmp(db_.c_str(), schema) == 0;
  if (!thread_schema && !sql::may_need_guard(sql_text)) return false;
  sql::GuardDecision d = sql::judge(sql::StatementGuard::scan(sql_text, db_), tenant_ && tenant_->privileged, false,
                                    login_.user, peer_ip_);
  if (d.action == sql::GuardDecision::Forward) return false;
  LOG_INFO("cs_id=%u '%s': statement refused: %s", cs_id_, login_text_.c_str(), d.message.c_str());
  seq_ = 1;
  send_error(d.error, d.message);
  return true;
}

// The end of a long statement has arrived but not gone on yet: the text, seen
// whole now, is judged before the backend can run it.  False when it was
// refused: the half-sent command dies with its server session.
bool ClientSession::judge_streamed_statement() {
  sql::GuardDecision d = sql::judge(streamed_text_->finish(), tenant_ && tenant_->privileged, true, login_.user, peer_ip_);
  streamed_text_.reset();
  if (d.action == sql::GuardDecision::Forward) return true;
  LOG_INFO("cs_id=%u '%s': long statement refused: %s", cs_id_, login_text_.c_str(), d.message.c_str());
  release_server(current_);
  seq_ = 1;
  send_error_and_close(d.error, d.message, "statement refused");
  return false;
}

bool ClientSession::run_admin_command(std::string_view sql_text) {
  sql::AdminStatement st = sql::parse_admin(sql_text);
  if (st.kind == sql::AdminStatement::Kind::None) return false;
  // SHOW WARNINGS is the proxy's only after a proxy statement that noted something.
  if (st.kind == sql::AdminStatement::Kind::ShowWarnings && local_warnings_.empty()) return false;
  command_ = COM_QUERY;
  count_command(sql_text.size() + kHeaderLen + 1);
  statement_started(sql_text);
  change_phase(Phase::LocalCommand);  // as the session sees itself in SHOW PROXYSESSION
  publish();
  admin::Caller caller;
  caller.cs_id = cs_id_;
  caller.tenant = login_.tenant;
  caller.user = login_.user;
  caller.privileged = tenant_ && tenant_->privileged;
  if (st.kind == sql::AdminStatement::Kind::ShowWarnings) {
    finish_admin_command(admin::warnings_answer(local_warnings_), false);
    return true;
  }
  // Another proxy's session, a backend id to look up on every proxy, or
  // GLOBAL: asked of the fleet without blocking this worker; the session
  // answers when the peers have (or fleet.timeout_ms has passed).
  std::shared_ptr<const Config> now_cfg = host_.config();  // peers follow a reload
  if (fleet::FleetCommand::involves_peers(st, *now_cfg)) {
    std::string text(sql_text);
    const bool kills = st.kind == sql::AdminStatement::Kind::KillConnection ||
                       st.kind == sql::AdminStatement::Kind::KillQuery ||
                       st.kind == sql::AdminStatement::Kind::KillProxySession;
    fleet_command_ = std::make_unique<fleet::FleetCommand>(
        host_.base(), now_cfg, host_.directory(), caller, st, text,
        [this, text, kills](fleet::FleetCommand::Result r) { fleet_answered(std::move(r), text, kills); });
    fleet_command_->start();
    return true;
  }
  admin::Answer answer = admin::run(st, caller, host_.directory());
  finish_admin_command(answer);
  return true;
}

void ClientSession::fleet_answered(fleet::FleetCommand::Result r, const std::string& statement, bool kills) {
  Step step(*this);
  fleet_command_.reset();  // its callback ends with this call
  if (phase_ != Phase::LocalCommand || !conn_) return;  // killed or closing meanwhile
  if (r.forwarded_to >= 0 && kills) {
    // This proxy's log says where the kill went; the peer's says what it did.
    const admin::Answer& a = r.answer;
    std::string outcome = a.kind == admin::Answer::Kind::Error
                              ? "ERROR " + std::to_string(a.error_code) + ": " + a.message
                              : std::string("OK");
    shm::KillRecord k{};
    k.time_us = host_.loop_time_us();
    k.cs_id = r.target_cs_id;
    k.by_cs_id = cs_id_;
    k.by_uid = -1;
    k.reason = uint8_t(shm::KillReason::Forwarded);
    k.statement_ms = -1;
    k.trans_ms = -1;
    set_field(k.by, login_.user + "@" + login_.tenant);
    set_field(k.statement, statement.substr(0, 80) + " -> proxy " + std::to_string(r.forwarded_to) + ": " + outcome);
    host_.record_kill(k);
  }
  finish_admin_command(r.answer);
  if (phase_ == Phase::Ready) handle_input();
}

void ClientSession::finish_admin_command(const admin::Answer& answer, bool leaves_warnings) {
  std::string out = admin::render(answer, {caps_, ext_caps_});
  if (leaves_warnings) local_warnings_ = answer.warnings;
  evbuffer_add(conn_->output(), out.data(), out.size());
  conn_->flush();
  bytes_out_ += out.size();
  bump(counters_.bytes_to_clients, out.size());
  last_active_us_ = host_.loop_time_us();
  statement_ended();
  if (answer.after == admin::After::CloseSession) {
    LOG_INFO("cs_id=%u '%s' killed itself", cs_id_, login_text_.c_str());
    log_kill(shm::KillReason::Kill, KilledBy{cs_id_, 0, -1, login_.user + "@" + login_.tenant});
    close_after_flush("killed itself");
    return;
  }
  change_phase(Phase::Ready);
  end_if_kill_pending();
}

// ---- the idle timeout ----

// One timer per session that checks, when it fires, how long the session
// has really been idle: re-arming a timeout at every command would cost two
// event operations per query.
void ClientSession::arm_idle_timer() {
  if (idle_timer_ || !conn_) return;
  idle_timer_ = evtimer_new(host_.base(), on_idle_timer, this);
  timeval tv{cfg_->client_idle_s, 0};
  evtimer_add(idle_timer_, &tv);
}

// A transaction began: with idle_in_transaction_s set, the idle timer must
// look again by then (once per transaction, not per statement).
// One statement's latency into the worker's histogram for its server (the
// worker is the only writer: relaxed adds, no contention).
void ClientSession::count_latency(int health, int64_t us) {
  shm::LatencyHistogram* h = host_.latency_histogram(health);
  if (!h) return;
  if (us < 0) us = 0;
  size_t b = 0;
  while (b < shm::kLatencyBuckets - 1 && us > shm::kLatencyBoundsUs[b]) ++b;
  bump(h->buckets[b]);
  bump(h->count);
  bump(h->sum_us, uint64_t(us));
}

void ClientSession::transaction_began() {
  trans_started_us_ = last_active_us_;  // the start of the statement that began it
  int limit_s = idle_in_transaction_s();
  if (!limit_s || !idle_timer_) return;
  timeval tv{limit_s, 0};
  evtimer_add(idle_timer_, &tv);
}

int ClientSession::idle_in_transaction_s() const {
  if (tenant_ && tenant_->idle_in_transaction_s) return *tenant_->idle_in_transaction_s;
  return cfg_->idle_in_transaction_s;
}

void ClientSession::on_idle_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  const int64_t idle_us = self->host_.loop_time_us() - self->last_active_us_;
  const bool idle = self->phase_ == Phase::Ready;
  int64_t wait_us = int64_t(self->cfg_->client_idle_s) * 1000000;
  // Whether an idle limit has passed; if not, the timer looks again when it
  // could have (a busy session: one whole limit from now).
  auto expired = [&](int64_t limit_us) {
    if (idle && idle_us >= limit_us) return true;
    wait_us = std::min(wait_us, idle ? limit_us - idle_us : limit_us);
    return false;
  };
  if (expired(int64_t(self->cfg_->client_idle_s) * 1000000)) {
    LOG_INFO("cs_id=%u '%s' from %s:%u idle for %d s: closing", self->cs_id_, self->login_text_.c_str(),
             self->peer_ip_.c_str(), self->peer_port_, self->cfg_->client_idle_s);
    self->log_kill(shm::KillReason::ClientIdleTimeout, KilledBy::because("timeouts.client_idle_s"));
    self->close("client idle timeout");
    return;
  }
  // Idle inside a transaction: the session is killed, and its server
  // session's close rolls the transaction back on the backend.
  const int in_trans_limit_s = self->idle_in_transaction_s();
  if (self->in_trans_ && in_trans_limit_s > 0 && expired(int64_t(in_trans_limit_s) * 1000000)) {
    LOG_INFO("cs_id=%u '%s' from %s:%u idle for %d s inside a transaction (idle_in_transaction_s): killed, the "
             "transaction rolls back",
             self->cs_id_, self->login_text_.c_str(), self->peer_ip_.c_str(), self->peer_port_, in_trans_limit_s);
    bump(self->counters_.kills);
    self->log_kill(shm::KillReason::IdleInTransaction, KilledBy::because("timeouts.idle_in_transaction_s"));
    self->close("idle_in_transaction_s");
    return;
  }
  timeval tv{time_t(wait_us / 1000000), suseconds_t(wait_us % 1000000)};
  evtimer_add(self->idle_timer_, &tv);
}

// ---- the statement timeout ----

int ClientSession::statement_ms() const {
  if (tenant_ && tenant_->statement_ms) return *tenant_->statement_ms;
  return cfg_->statement_ms;
}

// A statement to the backend starts: with statement_ms set, a timer for it
// (one event operation at its start and one at its end, only then).
void ClientSession::watch_statement_time() {
  const int ms = statement_ms();
  if (ms <= 0) return;
  if (!statement_timer_) statement_timer_ = evtimer_new(host_.base(), on_statement_timer, this);
  timed_query_ = queries_;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(statement_timer_, &tv);
}

// The statement ran too long: it is stopped on the backend (KILL QUERY from
// a side connection), and its "interrupted" error reaches the client as the
// server's own max_statement_time error.
void ClientSession::on_statement_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  Step step(*self);
  ServerSession* ss = self->current_;
  if (self->timed_query_ != self->queries_ || self->phase_ != Phase::InCommand || !ss || !ss->in_command()) return;
  self->timed_query_ = 0;
  LOG_INFO("cs_id=%u '%s' from %s:%u: statement ran over statement_ms (%d ms): stopping it on backend thread %u",
           self->cs_id_, self->login_text_.c_str(), self->peer_ip_.c_str(), self->peer_port_, self->statement_ms(),
           ss->server_sessid());
  ss->replace_interrupted_error(
      build_err(er::ER_STATEMENT_TIMEOUT, "Query execution was interrupted (max_statement_time exceeded)"));
  uint64_t id = self->log_kill(shm::KillReason::StatementTimeout, KilledBy::because("timeouts.statement_ms"));
  self->host_.stop_backend_statement(ss->server(), ss->cluster(), ss->login(), ss->server_sessid(), true, id);
}

}  // namespace myrelay
