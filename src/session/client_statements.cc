// A client session's prepared statements on its server sessions (see
// prepared_statements.h): the client's ids become the backend's, a
// statement is prepared again on a server session that lacks it, and what
// the responses say of cursors and long data is kept.
#include <event2/buffer.h>

#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

namespace {

// The function the server names in its "Unknown prepared statement handler".
const char* server_function(uint8_t command) {
  switch (command) {
    case COM_STMT_FETCH: return "mysqld_stmt_fetch";
    case COM_STMT_RESET: return "mysqld_stmt_reset";
    case COM_STMT_BULK_EXECUTE: return "mysqld_stmt_bulk_execute";
    default: return "mysqld_stmt_execute";
  }
}

// How many connections a multiplexed session's statement remembers its
// backend id on.
constexpr size_t kSharedStatementPlaces = 8;


}  // namespace

// A command read whole goes to the current server session once that holds
// the session's state and the statement the command names.
void ClientSession::send_to_server(std::string&& payload) {
  uint8_t cmd = uint8_t(payload[0]);
  if (cmd == COM_STMT_CLOSE && multiplexed_) {
    // Nothing to take a connection for: backend statements on shared
    // connections stay for whoever prepares the same text.
    uint32_t id = 0;
    PreparedStatements::Statement* st =
        PreparedStatements::id_of(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), id)
            ? stmts_.find(id)
            : nullptr;
    if (st) close_statement(st->id);
    count_command(payload.size() + kHeaderLen);
    return;
  }
  switch (ensure_server(cmd, payload)) {
    case Route::Go:
      break;
    case Route::Wait:
      held_command_ = std::move(payload);
      return;
    case Route::Answered:
      count_command(payload.size() + kHeaderLen);
      return;
  }
  if (PreparedStatements::names_statement(cmd)) {
    switch (route_statement(payload)) {
      case StatementRoute::Wait:
        held_command_ = std::move(payload);
        return;
      case StatementRoute::Answered:
        return;
      case StatementRoute::Forward:
        break;
    }
  } else if (cmd == COM_STMT_PREPARE) {
    preparing_sql_.assign(payload, 1, std::string::npos);
    preparing_kept_ = true;
  }
  forward_command(std::move(payload));
}

// The statement a command names, made ready on the current server session
// and the command rewritten for it.
ClientSession::StatementRoute ClientSession::route_statement(std::string& payload) {
  const uint8_t cmd = uint8_t(payload[0]);
  const bool answers = ResponseTracker::expects_response(cmd);
  uint32_t id = 0;
  if (!PreparedStatements::id_of(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), id))
    return StatementRoute::Forward;  // too short: the backend says what is wrong
  PreparedStatements::Statement* st = stmts_.find(id);
  auto answer = [&](const er::Error& e, const std::string& message) {
    count_command(payload.size() + kHeaderLen);
    if (answers) {
      seq_ = 1;
      send_error(e, message);
    }
    return StatementRoute::Answered;
  };
  if (!st)
    return answer(er::ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (" + std::to_string(id) +
                                                   ") given to " + server_function(cmd));
  if (cmd == COM_STMT_CLOSE) {
    close_statement(st->id);
    count_command(payload.size() + kHeaderLen);
    return StatementRoute::Answered;
  }
  if (st->broken) return answer(er::ER_NEED_REPREPARE, "Prepared statement needs to be re-prepared");
  PreparedStatements::OnServer* on = statement_here(*st);
  if (!on) {
    if (!st->sql_kept) return answer(er::ER_NEED_REPREPARE, "Prepared statement needs to be re-prepared");
    start_reprepare(*st);
    return StatementRoute::Wait;
  }
  PreparedStatements::rewrite(*st, *on, payload);
  note_statement_use(*st, cmd);
  return StatementRoute::Forward;
}

// A long command naming a statement: its start, rewritten in the client's
// input before it streams.  Wait: a re-prepare runs, or more of the start
// must arrive; the command stays in the input either way.
ClientSession::StatementRoute ClientSession::route_streamed_statement(evbuffer* in) {
  uint8_t hdr[kHeaderLen];
  evbuffer_copyout(in, hdr, kHeaderLen);
  const uint32_t length = parse_header(hdr).length;
  auto copy_head = [&](size_t n) {
    std::string head(std::min<size_t>(n, length), '\0');
    evbuffer_ptr at;
    evbuffer_ptr_set(in, &at, kHeaderLen, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(in, &at, head.data(), head.size());
    return head;
  };
  std::string head = copy_head(5);
  const uint8_t cmd = uint8_t(head[0]);
  uint32_t id = 0;
  PreparedStatements::id_of(reinterpret_cast<const uint8_t*>(head.data()), head.size(), id);
  PreparedStatements::Statement* st = stmts_.find(id);
  // A statement whose re-prepare just failed goes on unprepared, to fail.
  const bool usable = st && !st->broken && st->id != reprepare_failed_;
  reprepare_failed_ = 0;
  PreparedStatements::OnServer* on = usable ? statement_here(*st) : nullptr;
  if (usable && !on && st->sql_kept) {
    start_reprepare(*st);
    return StatementRoute::Wait;
  }
  std::string rewritten;
  if (!on) {
    // Unknown here, or unusable: id 0, which no backend hands out, so the
    // backend refuses the command as it would an unknown statement.
    rewritten = head;
    for (int i = 1; i <= 4; ++i) rewritten[i] = 0;
  } else {
    for (size_t need; (need = PreparedStatements::head_needed(*st, head)) > head.size();) {
      if (need > length) break;  // malformed: the backend says so
      if (evbuffer_get_length(in) < kHeaderLen + need) {
        partial_command_ = true;
        return StatementRoute::Wait;
      }
      head = copy_head(need);
    }
    rewritten = head;
    PreparedStatements::rewrite(*st, *on, rewritten);
    note_statement_use(*st, cmd);
  }
  size_t grown = rewritten.size() - head.size();
  if (grown && uint64_t(length) + grown >= kMaxChunk) {
    // The types would have to go into a packet of several chunks.
    LOG_WARN("cs_id=%u: a %u-byte execute of statement %u needs its parameter types re-sent; closing", cs_id_,
             length, id);
    send_error_and_close(er::ER_NEED_REPREPARE, "Prepared statement needs to be re-prepared",
                         "long execute could not be carried");
    return StatementRoute::Answered;
  }
  uint8_t new_hdr[kHeaderLen];
  write_header(new_hdr, uint32_t(length + grown), 0);
  evbuffer_drain(in, kHeaderLen + head.size());
  evbuffer_prepend(in, rewritten.data(), rewritten.size());
  evbuffer_prepend(in, new_hdr, kHeaderLen);
  return StatementRoute::Forward;
}

// Where a statement is prepared on the current server session: the
// session's own backend statement, or on a shared connection one that any
// session prepared there with the same text (adopted without a round trip).
// A backend statement whose parameter types another session bound last
// gets this session's sent again.
PreparedStatements::OnServer* ClientSession::statement_here(PreparedStatements::Statement& st) {
  const uint64_t ss_id = current_->ss_id();
  PreparedStatements::OnServer* on = st.on_server(ss_id);
  BackendStatements* shared = current_->shared_statements();
  if (!shared || !st.sql_kept) return on;
  BackendStatements::Entry* e = on ? shared->by_id(on->backend_id) : nullptr;
  if (on && !e) {  // closed there meanwhile (replaced, or too many)
    st.forget_server(ss_id);
    on = nullptr;
  }
  if (!on) {
    e = shared->find(shared_key(*current_, st));
    if (!e || e->columns != st.columns || e->params != st.params || e->metadata != st.metadata) return nullptr;
    // Connections come and go: the oldest entries go (a live one is found
    // again here, by its text).
    if (st.on.size() >= kSharedStatementPlaces) st.on.erase(st.on.begin());
    st.on.push_back({ss_id, e->backend_id, false});
    on = &st.on.back();
  }
  if (e->last_binder != cs_id_) {
    on->types_bound = false;
    e->last_binder = cs_id_;
  }
  return on;
}

// Under what a statement is kept on a shared connection: its text, for
// every session.  With MARIADB_CLIENT_CACHE_METADATA the backend sends an
// execute's column definitions only when they differ from what it sent
// for that statement before, to whichever session: a session running
// another's backend statement could miss the definitions its client needs.
// Such a connection keeps each session's statements to that session.
std::string ClientSession::shared_key(const ServerSession& ss, const PreparedStatements::Statement& st) const {
  if (!(ss.ext_caps() & MARIADB_CLIENT_CACHE_METADATA)) return st.sql;
  std::string key = st.sql;
  key.push_back('\0');
  key += std::to_string(cs_id_);
  return key;
}

// A statement now prepared on a shared connection: there for every session
// (see shared_key()).
void ClientSession::share_statement(ServerSession* ss, const PreparedStatements::Statement& st) {
  BackendStatements* shared = ss->shared_statements();
  if (!shared || !st.sql_kept) return;
  for (const PreparedStatements::OnServer& o : st.on)
    if (o.ss_id == ss->ss_id())
      shared->add(shared_key(*ss, st), {o.backend_id, st.columns, st.params, st.metadata, cs_id_});
}

void ClientSession::note_statement_use(PreparedStatements::Statement& st, uint8_t cmd) {
  running_stmt_ = &st;
  if (cmd == COM_STMT_SEND_LONG_DATA) {
    st.long_data = true;
    state_.set_reason(SessionState::kLongData, true);
  }
}

// COM_STMT_CLOSE: gone on every server session that has it, without an answer.
void ClientSession::close_statement(uint32_t id) {
  running_stmt_ = nullptr;
  for (const PreparedStatements::OnServer& o : stmts_.remove(id))
    if (ServerSession* ss = find_server(o.ss_id); ss && !ss->shared_statements())
      ss->send_quiet(PreparedStatements::close_command(o.backend_id));
  update_statement_reasons();
}

void ClientSession::start_reprepare(const PreparedStatements::Statement& st) {
  LOG_DEBUG("cs_id=%u: statement %u prepared again on ss_id=%llu", cs_id_, st.id,
            (unsigned long long)current_->ss_id());
  internal_ = Internal::Reprepare;
  reprepare_id_ = st.id;
  change_phase(Phase::AwaitServer);
  current_->run_internal({std::string(1, char(COM_STMT_PREPARE)) + st.sql});
}

// The statement is prepared on the server session again: the command that
// waited goes on, or gets the error that the re-prepare got.
void ClientSession::finish_reprepare(ServerSession* ss) {
  const std::vector<std::string>& packets = ss->internal_results()[0];
  PreparedStatements::Statement* st = stmts_.find(reprepare_id_);
  std::string error;
  const std::string first = packets.empty() ? std::string() : packets.front();
  if (first.empty() || !st) {
    error = build_err(er::ER_NEED_REPREPARE, "Prepared statement needs to be re-prepared");
  } else if (uint8_t(first[0]) == kErrHeader) {
    error = first;
  } else if (first.size() >= 9) {
    auto b = [&](size_t i) { return uint32_t(uint8_t(first[i])); };
    uint32_t backend_id = b(1) | b(2) << 8 | b(3) << 16 | b(4) << 24;
    uint16_t columns = uint16_t(b(5) | b(6) << 8);
    uint16_t params = uint16_t(b(7) | b(8) << 8);
    st->on.push_back({ss->ss_id(), backend_id, false});
    uint64_t metadata = PreparedStatements::kNoMetadata;
    for (size_t i = 1; i < packets.size(); ++i)
      if (!is_eof_or_terminator(reinterpret_cast<const uint8_t*>(packets[i].data()), packets[i].size()))
        metadata = PreparedStatements::fold(metadata, packets[i]);
    if (columns == st->columns && params == st->params && metadata == st->metadata) share_statement(ss, *st);
    if (columns != st->columns || params != st->params || metadata != st->metadata) {
      LOG_WARN("cs_id=%u: statement %u prepared again on ss_id=%llu has %u columns and %u parameters (was %u and %u)%s",
               cs_id_, st->id, (unsigned long long)ss->ss_id(), columns, params, st->columns, st->params,
               metadata != st->metadata ? ", described otherwise" : "");
      st->broken = true;
      error = build_err(er::ER_NEED_REPREPARE, "Prepared statement needs to be re-prepared");
    }
  }
  if (error.empty() || held_command_.empty()) {
    // A long command still in the input goes on with id 0 (see above).
    if (!error.empty()) reprepare_failed_ = reprepare_id_;
    continue_after_server();
    return;
  }
  std::string held = std::move(held_command_);
  held_command_.clear();
  count_command(held.size() + kHeaderLen);
  if (ResponseTracker::expects_response(uint8_t(held[0]))) {
    seq_ = 1;
    send_packet(error);
  }
  change_phase(Phase::Ready);
  handle_input();
}

uint32_t ClientSession::on_statement_prepared(ServerSession* ss, uint32_t backend_id, uint16_t columns,
                                              uint16_t params) {
  PreparedStatements::Statement& st =
      stmts_.add(std::move(preparing_sql_), preparing_kept_, ss->ss_id(), backend_id, columns, params);
  preparing_sql_.clear();
  if (!preparing_kept_) state_.set_reason(SessionState::kUnkeptStatement, true);
  return st.id;
}

void ClientSession::on_statement_metadata(ServerSession*, const std::string& definition) {
  if (PreparedStatements::Statement* st = stmts_.find(PreparedStatements::kLastPrepared))
    st->metadata = PreparedStatements::fold(st->metadata, definition);
}

// What a statement command's response says: a cursor opened or closed, long
// data used up.
void ClientSession::after_statement_response(const ResponseTracker& r) {
  PreparedStatements::Statement* st = running_stmt_;
  running_stmt_ = nullptr;
  const bool cursor_open = st->cursor_open, long_data = st->long_data;
  switch (command_) {
    case COM_STMT_EXECUTE:
      st->cursor_open = !r.ended_with_error() && (r.last_status() & SERVER_STATUS_CURSOR_EXISTS);
      st->long_data = false;
      break;
    case COM_STMT_FETCH:
      if (r.last_status() & SERVER_STATUS_LAST_ROW_SENT) st->cursor_open = false;
      break;
    case COM_STMT_RESET:
      if (!r.ended_with_error()) st->cursor_open = st->long_data = false;
      break;
    case COM_STMT_BULK_EXECUTE:
      st->long_data = false;
      break;
    default:
      return;
  }
  if (cursor_open != st->cursor_open || long_data != st->long_data) update_statement_reasons();
}

void ClientSession::update_statement_reasons() {
  state_.set_reason(SessionState::kCursor, stmts_.any_cursor());
  state_.set_reason(SessionState::kLongData, stmts_.any_long_data());
  state_.set_reason(SessionState::kUnkeptStatement, stmts_.any_unkept());
}

}  // namespace myrelay
