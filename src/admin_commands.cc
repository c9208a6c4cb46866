// The proxy's own SQL commands (see admin_commands.h).  One handler per
// statement, dispatched from a table, as pgbouncer's admin console does.
#include "myrelay/admin_commands.h"

#include <algorithm>

#include "myrelay/control_pipe.h"
#include "myrelay/ids.h"
#include "myrelay/log.h"
#include "myrelay/protocol.h"
#include "myrelay/proxy.h"
#include "myrelay/session_view.h"
#include "myrelay/shm_table.h"

namespace myrelay::admin {

using namespace proto;
using Kind = sql::AdminStatement::Kind;

namespace {

struct Context {
  const sql::AdminStatement& st;
  const Caller& caller;
  Proxy& proxy;
  uint32_t caps;
  std::string& out;
  uint8_t seq = 1;

  void error(uint16_t code, const char* state, const std::string& msg) {
    seq = frame_packet(out, seq, build_err(code, state, msg));
  }
  void ok() {
    OkPacket p;
    p.status = SERVER_STATUS_AUTOCOMMIT;
    seq = frame_packet(out, seq, build_ok(p, caps));
  }
  void unknown_thread(uint64_t id) {
    error(1094, "HY000", "Unknown thread id: " + std::to_string(id));
  }
};

// Whom a caller sees in listings: everyone if privileged, else its own
// tenant's sessions of its own user.
bool may_list(const Caller& c, const shm::SessionRecord& r) {
  return c.privileged || (get_field(r.tenant) == c.tenant && get_field(r.user) == c.user);
}

// Whose threads a caller may name in KILL: as in MySQL, sessions of the same
// tenant (the tenant is the caller's "server") exist for it; another user's
// among them answer 1095, other tenants' are unknown.
bool may_name(const Caller& c, const shm::SessionRecord& r) {
  return c.privileged || get_field(r.tenant) == c.tenant;
}

bool owns(const Caller& c, const shm::SessionRecord& r) {
  return c.privileged || (get_field(r.tenant) == c.tenant && get_field(r.user) == c.user);
}

// Finds the single session `id` names among those the caller may name.
// Sends the error and returns nullptr when there is none or several.
const shm::SessionRecord* resolve(Context& cx, const std::vector<shm::SessionRecord>& all,
                                  uint64_t id, bool listing_rules) {
  std::vector<const shm::SessionRecord*> hits;
  for (auto* r : view::find_sessions(all, id))
    if (listing_rules ? may_list(cx.caller, *r) : may_name(cx.caller, *r)) hits.push_back(r);
  if (hits.empty()) {
    cx.unknown_thread(id);
    return nullptr;
  }
  if (hits.size() > 1) {
    std::string ids;
    for (auto* r : hits) ids += (ids.empty() ? "" : ", ") + std::to_string(r->cs_id);
    cx.error(1105, "HY000",
             "Thread id " + std::to_string(id) + " is ambiguous: it is the backend connection id of " +
                 std::to_string(hits.size()) + " sessions (Id " + ids +
                 "); use the proxy's Id from SHOW PROXYSESSION");
    return nullptr;
  }
  return hits.front();
}

std::vector<shm::SessionRecord> sorted_snapshot(Proxy& p) {
  auto all = p.shm().snapshot();
  std::sort(all.begin(), all.end(),
            [](const shm::SessionRecord& a, const shm::SessionRecord& b) { return a.cs_id < b.cs_id; });
  return all;
}

void show_sessions(Context& cx) {
  std::vector<ColumnDef> cols;
  const auto& names = view::session_columns();
  for (size_t i = 0; i < names.size(); ++i) {
    ColumnDef c;
    c.name = names[i];
    if (view::session_column_is_numeric(i)) {
      c.type = MYSQL_TYPE_LONGLONG;
      c.charset = 63;  // binary
      c.length = 20;
      c.flags = 0x8000 | 0x0020 | 0x0001;  // NUM, UNSIGNED, NOT NULL
    }
    cols.push_back(c);
  }
  std::vector<TextRow> rows;
  for (const auto& r : sorted_snapshot(cx.proxy))
    if (may_list(cx.caller, r)) rows.push_back(view::session_row(r, cx.proxy.pid()));
  cx.out += build_text_resultset(cols, rows, cx.caps, SERVER_STATUS_AUTOCOMMIT, cx.seq);
}

void show_attributes(Context& cx) {
  auto all = sorted_snapshot(cx.proxy);
  uint64_t id = cx.st.has_id ? cx.st.id : cx.caller.cs_id;
  const shm::SessionRecord* r = resolve(cx, all, id, true);
  if (!r) return;
  std::vector<ColumnDef> cols(3);
  cols[0].name = "attribute_name";
  cols[1].name = "value";
  cols[2].name = "info";
  std::vector<TextRow> rows;
  for (auto& a : view::session_attributes(*r, cx.proxy.pid(), view::now_us())) {
    if (cx.st.has_like && !sql::like_match(a.name, cx.st.like)) continue;
    rows.push_back({a.name, a.value, a.info});
  }
  cx.out += build_text_resultset(cols, rows, cx.caps, SERVER_STATUS_AUTOCOMMIT, cx.seq);
}

void send_kill(Context& cx, const shm::SessionRecord& r, control::RequestType type, uint64_t ss_id) {
  control::Request req;
  req.type = type;
  req.cs_id = r.cs_id;
  req.proxy_sessid = r.proxy_sessid;
  req.ss_id = ss_id;
  req.sender_pid = cx.proxy.pid();
  req.sender_cs_id = cx.caller.cs_id;
  std::string error;
  if (!cx.proxy.send_control(uint32_t(r.worker), req, error)) {
    LOG_WARN("cs_id=%u: %s of %u failed: %s", cx.caller.cs_id, control::request_type_name(type),
             r.cs_id, error.c_str());
    cx.error(1105, "HY000", "Could not reach the worker of thread " + std::to_string(r.cs_id) + ": " + error);
    return;
  }
  cx.ok();
}

After kill(Context& cx, bool query_only) {
  auto all = sorted_snapshot(cx.proxy);
  const shm::SessionRecord* r = resolve(cx, all, cx.st.id, false);
  if (!r) return After::Continue;
  if (!owns(cx.caller, *r)) {
    cx.error(1095, "HY000", "You are not owner of thread " + std::to_string(cx.st.id));
    return After::Continue;
  }
  if (r->cs_id == cx.caller.cs_id) {
    // Killing oneself interrupts the KILL statement itself.
    cx.error(1317, "70100", "Query execution was interrupted");
    return query_only ? After::Continue : After::CloseSession;
  }
  send_kill(cx, *r, query_only ? control::RequestType::KillQuery : control::RequestType::KillSession, 0);
  return After::Continue;
}

After kill_connection(Context& cx) { return kill(cx, false); }
After kill_query(Context& cx) { return kill(cx, true); }

After kill_proxysession(Context& cx) {
  if (!cx.caller.privileged) {
    cx.error(1227, "42000",
             "Access denied; you need (at least one of) the SUPER privilege(s) for this operation");
    return After::Continue;
  }
  if (!cx.st.has_ss_id) return kill(cx, false);
  auto all = sorted_snapshot(cx.proxy);
  const shm::SessionRecord* r = resolve(cx, all, cx.st.id, false);
  if (!r) return After::Continue;
  if (!view::has_server_session(*r, cx.st.ss_id)) {
    cx.unknown_thread(cx.st.ss_id);
    return After::Continue;
  }
  send_kill(cx, *r, control::RequestType::KillServerSession, cx.st.ss_id);
  return After::Continue;
}

After show_sessions_cmd(Context& cx) {
  show_sessions(cx);
  return After::Continue;
}
After show_attributes_cmd(Context& cx) {
  show_attributes(cx);
  return After::Continue;
}

struct Command {
  Kind kind;
  After (*run)(Context&);
};

const Command kCommands[] = {
    {Kind::ShowSessions, show_sessions_cmd},
    {Kind::ShowAttributes, show_attributes_cmd},
    {Kind::KillProxySession, kill_proxysession},
    {Kind::KillConnection, kill_connection},
    {Kind::KillQuery, kill_query},
};

}  // namespace

After execute(const sql::AdminStatement& st, const Caller& caller, Proxy& proxy, uint32_t caps,
              std::string& out) {
  Context cx{st, caller, proxy, caps, out};
  if (st.kind == Kind::Malformed) {
    cx.error(1064, "42000", "You have an error in your SQL syntax: " + st.error);
    return After::Continue;
  }
  for (const auto& c : kCommands)
    if (c.kind == st.kind) return c.run(cx);
  cx.error(1047, "08S01", "Unknown proxy command");
  return After::Continue;
}

}  // namespace myrelay::admin
