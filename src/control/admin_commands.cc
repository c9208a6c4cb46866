// The proxy's own SQL statements (see admin_commands.h): one handler per
// statement, dispatched from a table, as pgbouncer's admin console does.
#include "control/admin_commands.h"

#include "control/control_pipe.h"
#include "control/id_resolver.h"
#include "control/session_directory.h"
#include "control/session_view.h"
#include "control/shm_table.h"
#include "protocol/packets.h"
#include "service/log.h"

namespace myrelay::admin {

using namespace proto;
using Kind = sql::AdminStatement::Kind;

bool AccessRules::may_list(const Caller& c, const shm::SessionRecord& r) {
  return c.privileged || (get_field(r.tenant) == c.tenant && get_field(r.user) == c.user);
}

bool AccessRules::may_name(const Caller& c, const shm::SessionRecord& r) {
  return c.privileged || get_field(r.tenant) == c.tenant;
}

bool AccessRules::owns(const Caller& c, const shm::SessionRecord& r) { return may_list(c, r); }

bool AccessRules::may_target(Kind k, const Caller& c, const shm::SessionRecord& r) {
  return k == Kind::ShowAttributes || k == Kind::ShowVariables ? may_list(c, r) : may_name(c, r);
}

std::string Caller::name() const { return user + "@" + tenant + (via.empty() ? "" : " via " + via); }

void Answer::error(const er::Error& e, const std::string& msg) {
  kind = Kind::Error;
  error_code = e.code;
  sqlstate = e.sql_state;
  message = msg;
}

namespace {

struct Context {
  const sql::AdminStatement& st;
  const Caller& caller;
  SessionDirectory& directory;
  Answer& answer;

  void error(const er::Error& e, const std::string& msg) { answer.error(e, msg); }
  void ok(uint64_t affected_rows = 0) {
    answer.kind = Answer::Kind::Ok;
    answer.affected_rows = affected_rows;
  }
  void note(uint16_t code, const std::string& message) { answer.warnings.push_back({"Note", code, message}); }
  void result(std::vector<ColumnDef> cols, std::vector<TextRow> rows) {
    answer.kind = Answer::Kind::Rows;
    answer.columns = std::move(cols);
    answer.rows = std::move(rows);
  }
  void unknown_thread(uint64_t id) { error(er::ER_NO_SUCH_THREAD, "Unknown thread id: " + std::to_string(id)); }
};

// The single session `id` names among those the caller may list (or name,
// for KILL).  Sends the error and returns nullptr when there is none or
// several.
const shm::SessionRecord* resolve(Context& cx, const std::vector<shm::SessionRecord>& all, uint64_t id,
                                  bool listing_rules) {
  IdMatch m = resolve_id(all, id, [&](const shm::SessionRecord& r) {
    return listing_rules ? AccessRules::may_list(cx.caller, r) : AccessRules::may_name(cx.caller, r);
  });
  switch (m.outcome) {
    case IdMatch::Outcome::Found:
      return m.session;
    case IdMatch::Outcome::Unknown:
      cx.unknown_thread(id);
      return nullptr;
    case IdMatch::Outcome::Ambiguous:
      cx.error(er::ER_UNKNOWN_ERROR, "Thread id " + std::to_string(id) + " is ambiguous: " + ambiguity(m) +
                                         "; use the proxy's Id from SHOW PROXYSESSION");
      return nullptr;
  }
  return nullptr;
}

// Column definitions: BIGINTs where `numeric` says so, strings elsewhere.
std::vector<ColumnDef> columns(const std::vector<std::string>& names, bool (*numeric)(size_t), uint16_t number_flags) {
  std::vector<ColumnDef> cols;
  for (size_t i = 0; i < names.size(); ++i) {
    ColumnDef c;
    c.name = names[i];
    if (numeric(i)) {
      c.type = MYSQL_TYPE_LONGLONG;
      c.charset = 63;  // binary
      c.length = 20;
      c.flags = number_flags;
    }
    cols.push_back(c);
  }
  return cols;
}

constexpr uint16_t kNumFlag = 0x8000, kUnsignedFlag = 0x0020, kNotNullFlag = 0x0001;

After show_sessions(Context& cx) {
  std::vector<ColumnDef> cols = session_columns();
  std::vector<TextRow> rows;
  for (const auto& r : cx.directory.snapshot()) {
    if (!AccessRules::may_list(cx.caller, r)) continue;
    if (cx.st.has_like && !sql::like_match(get_field(r.user), cx.st.like)) continue;
    rows.push_back(view::session_row(r, cx.directory.pid()));
  }
  cx.result(cols, rows);
  return After::Continue;
}

// The columns (name, value, info) of ATTRIBUTE and VARIABLES.
std::vector<ColumnDef> name_value_info(const char* name_column) {
  std::vector<ColumnDef> cols(3);
  cols[0].name = name_column;
  cols[1].name = "value";
  cols[2].name = "info";
  return cols;
}

// The session SHOW PROXYSESSION ATTRIBUTE / VARIABLES [id] is about.
const shm::SessionRecord* shown_session(Context& cx, const std::vector<shm::SessionRecord>& all) {
  return resolve(cx, all, cx.st.has_id ? cx.st.id : cx.caller.cs_id, true);
}

After show_attributes(Context& cx) {
  auto all = cx.directory.snapshot();
  const shm::SessionRecord* r = shown_session(cx, all);
  if (!r) return After::Continue;
  std::vector<TextRow> rows;
  view::StatementInfo st;
  bool have_statement = cx.directory.statement(*r, st);
  for (auto& a : view::session_attributes(*r, cx.directory.pid(), view::now_us(), have_statement ? &st : nullptr)) {
    if (cx.st.has_like && !sql::like_match(a.name, cx.st.like)) continue;
    rows.push_back({a.name, a.value, a.info});
  }
  cx.result(name_value_info("attribute_name"), rows);
  return After::Continue;
}

// SHOW PROXYSESSION VARIABLES: the state the proxy would replay onto a new
// server session, from the session's variables area.
After show_variables(Context& cx) {
  auto all = cx.directory.snapshot();
  const shm::SessionRecord* r = shown_session(cx, all);
  if (!r) return After::Continue;
  std::string area;
  if (!cx.directory.variables(*r, area)) {
    cx.unknown_thread(r->cs_id);  // it ended in the meantime
    return After::Continue;
  }
  std::vector<TextRow> rows;
  for (auto& v : view::session_variables(area)) {
    if (cx.st.has_like && !sql::like_match(v.name, cx.st.like)) continue;
    rows.push_back({v.name, v.value, v.info});
  }
  if (r->vars_dropped)
    cx.note(er::ER_UNKNOWN_ERROR.code,
            std::to_string(r->vars_dropped) + " entries do not fit the " + std::to_string(shm::kVarsBytes) +
                "-byte shared-memory area and are not shown; the proxy still keeps and replays them");
  cx.result(name_value_info("variable_name"), rows);
  return After::Continue;
}

// SHOW [FULL] PROCESSLIST, answered from the proxy's sessions (as ODP does):
// what the caller may see, with the proxy's Ids, in the server's columns.
After show_processlist(Context& cx) {
  std::vector<ColumnDef> cols;
  for (const char* name : {"Id", "User", "Host", "db", "Command", "Time", "State", "Info", "Progress"}) {
    ColumnDef c;
    c.name = name;
    if (c.name == "Id" || c.name == "Time") {
      c.type = MYSQL_TYPE_LONGLONG;
      c.charset = 63;
      c.length = 20;
      c.flags = 0x8000 | 0x0001;  // NUM, NOT NULL
    }
    cols.push_back(c);
  }
  int64_t now = view::now_us();
  std::vector<TextRow> rows;
  for (const auto& r : cx.directory.snapshot()) {
    if (!AccessRules::may_list(cx.caller, r)) continue;
    bool self = r.cs_id == cx.caller.cs_id;
    int64_t since = r.last_active_us > 0 && now > r.last_active_us ? (now - r.last_active_us) / 1000000 : 0;
    rows.push_back({std::to_string(r.cs_id), get_field(r.user), get_field(r.host_ip) + ":" + std::to_string(r.host_port),
                    r.has_db ? std::optional<std::string>(get_field(r.db)) : std::nullopt, get_field(r.command),
                    std::to_string(since), std::string(),
                    self ? std::optional<std::string>("SHOW PROCESSLIST") : std::nullopt, std::string("0.000")});
  }
  cx.result(cols, rows);
  return After::Continue;
}

// SHOW PROXYCONGESTION [cluster]: what the health checker found of each
// backend server (ODP's name), for everyone.
After show_congestion(Context& cx) {
  // lag_s may be NULL.
  std::vector<ColumnDef> cols = columns(view::congestion_columns(), view::congestion_column_is_numeric, kNumFlag);
  std::vector<TextRow> rows;
  bool known = cx.st.cluster.empty();
  for (const auto& s : cx.directory.servers()) {
    if (s.rec.in_use != shm::kServerConfigured) continue;
    if (!cx.st.cluster.empty() && get_field(s.rec.cluster) != cx.st.cluster) continue;
    known = true;
    rows.push_back(view::congestion_row(s.rec, s.server_sessions, s.shared_idle, s.waiting));
  }
  if (!known) {
    cx.error(er::ER_BAD_DB_ERROR, "Unknown cluster '" + cx.st.cluster + "'");
    return After::Continue;
  }
  cx.result(cols, rows);
  return After::Continue;
}

bool send_request(Context& cx, const shm::SessionRecord& r, control::RequestType type, uint64_t ss_id,
                  std::string* why = nullptr, uint32_t timeout_s = 0);

// KILL [CONNECTION | QUERY] USER name: every session of that user the caller
// may kill, never the caller's own; OK with the number of sessions.  As the
// server does, one session of that user the caller does not own refuses all.
After kill_user(Context& cx, bool query_only) {
  auto all = cx.directory.snapshot();
  std::vector<const shm::SessionRecord*> targets;
  for (const auto& r : all) {
    if (get_field(r.user) != cx.st.user || r.cs_id == cx.caller.cs_id) continue;
    if (!cx.st.host.empty() && cx.st.host != "%" && get_field(r.host_ip) != cx.st.host) continue;
    if (!AccessRules::may_name(cx.caller, r)) continue;
    if (!AccessRules::owns(cx.caller, r)) {
      cx.error(er::ER_KILL_DENIED_ERROR, "You are not owner of thread " + std::to_string(r.cs_id));
      return After::Continue;
    }
    targets.push_back(&r);
  }
  uint64_t killed = 0;
  for (const auto* r : targets)
    if (send_request(cx, *r, query_only ? control::RequestType::KillQuery : control::RequestType::KillSession, 0))
      ++killed;
  cx.ok(killed);
  return After::Continue;
}

After kill_user_cmd(Context& cx) { return kill_user(cx, false); }
After kill_query_user_cmd(Context& cx) { return kill_user(cx, true); }

bool send_request(Context& cx, const shm::SessionRecord& r, control::RequestType type, uint64_t ss_id,
                  std::string* why, uint32_t timeout_s) {
  control::Request req;
  req.type = type;
  req.timeout_s = timeout_s;
  req.cs_id = r.cs_id;
  req.proxy_sessid = r.proxy_sessid;
  req.ss_id = ss_id;
  req.sender_pid = cx.directory.pid();
  req.sender_cs_id = cx.caller.cs_id;
  req.sender_name = cx.caller.name();
  std::string error;
  if (cx.directory.send(r, req, error)) return true;
  LOG_WARN("cs_id=%u: %s of %u failed: %s", cx.caller.cs_id, control::request_type_name(type), r.cs_id,
           error.c_str());
  if (why) *why = error;
  return false;
}

void send_kill(Context& cx, const shm::SessionRecord& r, control::RequestType type, uint64_t ss_id) {
  std::string why;
  if (send_request(cx, r, type, ss_id, &why)) {
    cx.ok();
    return;
  }
  cx.error(er::ER_UNKNOWN_ERROR, "Could not reach the worker of thread " + std::to_string(r.cs_id) + ": " + why);
}

// The request that ends a session: at once, or WHEN IDLE [TIMEOUT s].
control::Request end_request(const sql::AdminStatement& st) {
  control::Request req;
  req.type = st.when_idle ? control::RequestType::KillWhenIdle : control::RequestType::KillSession;
  req.timeout_s = st.idle_timeout_s;
  return req;
}

After kill(Context& cx, bool query_only) {
  auto all = cx.directory.snapshot();
  const shm::SessionRecord* r = resolve(cx, all, cx.st.id, false);
  if (!r) return After::Continue;
  if (!AccessRules::owns(cx.caller, *r)) {
    cx.error(er::ER_KILL_DENIED_ERROR, "You are not owner of thread " + std::to_string(cx.st.id));
    return After::Continue;
  }
  if (cx.st.when_idle) {  // the caller's own session too: it ends once this statement is answered
    std::string why;
    control::Request req = end_request(cx.st);
    if (send_request(cx, *r, req.type, 0, &why, req.timeout_s))
      cx.ok();
    else
      cx.error(er::ER_UNKNOWN_ERROR, "Could not reach the worker of thread " + std::to_string(r->cs_id) + ": " + why);
    return After::Continue;
  }
  if (r->cs_id == cx.caller.cs_id) {
    // Killing oneself interrupts the KILL statement itself.
    cx.error(er::ER_QUERY_INTERRUPTED, "Query execution was interrupted");
    return query_only ? After::Continue : After::CloseSession;
  }
  send_kill(cx, *r, query_only ? control::RequestType::KillQuery : control::RequestType::KillSession, 0);
  return After::Continue;
}

After kill_connection(Context& cx) { return kill(cx, false); }
After kill_query(Context& cx) { return kill(cx, true); }

After kill_proxysession(Context& cx) {
  if (!cx.st.has_ss_id) return kill(cx, false);
  auto all = cx.directory.snapshot();
  const shm::SessionRecord* r = resolve(cx, all, cx.st.id, false);
  if (!r) return After::Continue;
  if (!has_server_session(*r, cx.st.ss_id)) {
    cx.unknown_thread(cx.st.ss_id);
    return After::Continue;
  }
  // A session whose state cannot be carried ends with its server session.
  if (uint32_t reasons = view::reasons_of(*r))
    cx.note(er::ER_CONNECTION_KILLED.code,
            "Client session " + std::to_string(r->cs_id) + " holds " + view::not_restorable_because(reasons) +
                ", which cannot be carried to another server session: it ends too");
  send_kill(cx, *r, control::RequestType::KillServerSession, cx.st.ss_id);
  return After::Continue;
}

// The sessions KILL PROXYSESSION WHERE names: those the caller sees that
// match, never the caller's own, in Id order, at most LIMIT of them.
std::vector<shm::SessionRecord> matching(Context& cx) {
  std::vector<shm::SessionRecord> out;
  const int64_t now = view::now_us();
  for (const auto& r : cx.directory.snapshot()) {
    if (cx.st.filter.has_limit && out.size() >= cx.st.filter.limit) break;
    if (r.cs_id == cx.caller.cs_id || !AccessRules::may_list(cx.caller, r)) continue;
    if (cx.st.filter.matches(r, now)) out.push_back(r);
  }
  return out;
}

// KILL PROXYSESSION WHERE ... [WHEN IDLE [TIMEOUT s]]: OK, affected rows =
// the sessions asked to end.
After kill_where(Context& cx) {
  control::Request req = end_request(cx.st);
  uint64_t killed = 0;
  for (const auto& r : matching(cx))
    if (send_request(cx, r, req.type, 0, nullptr, req.timeout_s)) ++killed;
  LOG_INFO("cs_id=%u '%s@%s': KILL PROXYSESSION WHERE %s%s: %llu sessions", cx.caller.cs_id, cx.caller.user.c_str(),
           cx.caller.tenant.c_str(), cx.st.filter.describe().c_str(), cx.st.when_idle ? " WHEN IDLE" : "",
           (unsigned long long)killed);
  cx.ok(killed);
  return After::Continue;
}

// EXPLAIN KILL PROXYSESSION WHERE ...: SHOW PROXYSESSION's rows of what it
// would kill; kills nothing.
After explain_kill_where(Context& cx) {
  std::vector<ColumnDef> cols = session_columns();
  std::vector<TextRow> rows;
  for (const auto& r : matching(cx)) rows.push_back(view::session_row(r, cx.directory.pid()));
  cx.result(cols, rows);
  return After::Continue;
}

// SHOW PROXYKILLS [LIMIT n]: the kill log, newest first; privileged tenants
// see every entry, others those of their own tenant and user's sessions.
After show_kills(Context& cx) {
  std::vector<ColumnDef> cols = columns(view::kill_columns(), view::kill_column_is_numeric, kNumFlag);
  std::vector<TextRow> rows;
  const size_t limit = cx.st.has_limit ? size_t(std::min<uint64_t>(cx.st.limit, SIZE_MAX)) : SIZE_MAX;
  auto kills = cx.directory.kills(limit, [&](const shm::KillRecord& r) {
    return cx.caller.privileged || (get_field(r.tenant) == cx.caller.tenant && get_field(r.user) == cx.caller.user);
  });
  for (const auto& r : kills) rows.push_back(view::kill_row(r));
  cx.result(cols, rows);
  return After::Continue;
}

struct Command {
  Kind kind;
  bool privileged_only;  // refused with 1227 to other tenants
  After (*run)(Context&);
};

const Command kCommands[] = {
    {Kind::ShowSessions, false, show_sessions},
    {Kind::ShowAttributes, false, show_attributes},
    {Kind::ShowVariables, false, show_variables},
    {Kind::KillProxySession, true, kill_proxysession},
    {Kind::KillWhere, true, kill_where},
    {Kind::ExplainKillWhere, true, explain_kill_where},
    {Kind::KillConnection, false, kill_connection},
    {Kind::KillQuery, false, kill_query},
    {Kind::KillUser, false, kill_user_cmd},
    {Kind::KillQueryUser, false, kill_query_user_cmd},
    {Kind::ShowProcesslist, false, show_processlist},
    {Kind::ShowCongestion, false, show_congestion},
    {Kind::ShowKills, false, show_kills},
};

}  // namespace

Answer run(const sql::AdminStatement& st, const Caller& caller, SessionDirectory& directory) {
  Answer answer;
  Context cx{st, caller, directory, answer};
  if (st.kind == Kind::Malformed) {
    cx.error(er::ER_PARSE_ERROR, "You have an error in your SQL syntax: " + st.error);
    return answer;
  }
  for (const auto& c : kCommands) {
    if (c.kind != st.kind) continue;
    if (c.privileged_only && !caller.privileged) {
      cx.error(er::ER_SPECIFIC_ACCESS_DENIED_ERROR,
               "Access denied; you need (at least one of) the SUPER privilege(s) for this operation");
      return answer;
    }
    answer.after = c.run(cx);
    return answer;
  }
  cx.error(er::ER_UNKNOWN_COM_ERROR, "Unknown proxy command");
  return answer;
}

std::string render(const Answer& a, const ClientProtocol& protocol) {
  std::string out;
  uint8_t seq = 1;
  const uint16_t warnings = uint16_t(std::min<size_t>(a.warnings.size(), UINT16_MAX));
  switch (a.kind) {
    case Answer::Kind::Ok: {
      OkPacket p;
      p.status = SERVER_STATUS_AUTOCOMMIT;
      p.affected_rows = a.affected_rows;
      p.warnings = warnings;
      frame_packet(out, seq, build_ok(p, protocol.caps));
      break;
    }
    case Answer::Kind::Error:
      frame_packet(out, seq, build_err(er::Error{a.error_code, a.sqlstate.c_str()}, a.message));
      break;
    case Answer::Kind::Rows:
      out = build_text_resultset(a.columns, a.rows, protocol.caps, SERVER_STATUS_AUTOCOMMIT, seq, warnings,
                                 protocol.ext_caps);
      break;
  }
  return out;
}

After execute(const sql::AdminStatement& st, const Caller& caller, SessionDirectory& directory,
              const ClientProtocol& protocol, std::string& out, std::vector<Warning>& warnings) {
  Answer a = run(st, caller, directory);
  out += render(a, protocol);
  warnings = std::move(a.warnings);
  return a.after;
}

std::vector<ColumnDef> session_columns() {
  return columns(view::session_columns(), view::session_column_is_numeric, kNumFlag | kUnsignedFlag | kNotNullFlag);
}

Answer warnings_answer(const std::vector<Warning>& warnings) {
  Answer a;
  a.kind = Answer::Kind::Rows;
  a.columns.resize(3);
  a.columns[0].name = "Level";
  a.columns[1].name = "Code";
  a.columns[1].type = MYSQL_TYPE_LONG;
  a.columns[1].charset = 63;
  a.columns[1].length = 4;
  a.columns[1].flags = 0x8000 | 0x0020 | 0x0001;  // NUM, UNSIGNED, NOT NULL
  a.columns[2].name = "Message";
  for (const Warning& w : warnings) a.rows.push_back({w.level, std::to_string(w.code), w.message});
  return a;
}

std::string show_warnings(const std::vector<Warning>& warnings, const ClientProtocol& protocol) {
  return render(warnings_answer(warnings), protocol);
}

}  // namespace myrelay::admin
