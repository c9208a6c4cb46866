// myrelayctl sessions and session (see ctl.h).
#include "ctl/ctl.h"

#include <algorithm>
#include <set>

#include "control/sql_recognizer.h"

namespace myrelay::ctl {

// ---------------------------------------------------------------- sessions

int cmd_sessions(const Options& o, const ShmTable& t) {
  const int pid = t.header()->pid;
  const auto& cols = view::session_columns();
  Table table;
  table.columns = cols;
  for (size_t c = 0; c < cols.size(); ++c) table.numeric.push_back(view::session_column_is_numeric(c));
  if (o.full) {  // the running (or last) statement, as ATTRIBUTE shows it
    table.columns.insert(table.columns.end(), {"statement_time_ms", "statement"});
    table.numeric.insert(table.numeric.end(), {true, false});
  }
  const int64_t now = view::now_us();
  // Rows are made while reading, so the records themselves (about 1 KiB
  // each) are never all held at once, then put in Id order.
  std::vector<std::pair<uint32_t, Row>> rows;
  rows.reserve(size_t(t.header()->sessions_in_use.load(std::memory_order_relaxed)) + 16);
  for_each_session(t, [&](uint32_t, const shm::SessionRecord& rec) {
    if (!selected(o, rec)) return;
    Row row = view::session_row(rec, pid);
    if (o.full) {
      ShmTable::Statement st;
      bool have = t.session_statement(rec, st) && st.start_us > 0;
      int64_t until = st.end_us ? st.end_us : now;
      row.push_back(have ? Cell(std::to_string(until > st.start_us ? (until - st.start_us) / 1000 : 0)) : std::nullopt);
      row.push_back(have && !st.text.empty() ? Cell(st.text) : std::nullopt);
    }
    rows.emplace_back(rec.cs_id, std::move(row));
  });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  table.rows.reserve(rows.size());
  for (auto& r : rows) table.rows.push_back(std::move(r.second));
  if (!o.json) {
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  // proxy_sessid stays a string: it is wider than 2^53.
  table.numeric[0] = false;
  Json j;
  j.begin_object().key("pid").num_i(pid).key("sessions");
  json_rows(j, table);
  j.end_object();
  print_json(j);
  return kOk;
}

// Operands were checked to be numbers before the segment was opened.
// ---------------------------------------------------------------- session

// JSON types of SHOW PROXYSESSION ATTRIBUTE's values; any other attribute
// stays a string.  proxy_sessid stays a string: it is wider than 2^53.
bool attribute_is_number(const std::string& name) {
  static const std::set<std::string> kNumbers = {
      "cs_id", "host_port", "total_trans_cnt", "svr_session_cnt", "tid", "pid", "worker",
      "using_ssl", "queries", "bytes_in", "bytes_out", "connected_s", "idle_s", "ss_id",
      "server_port", "server_sessid", "transact_count", "requests", "statement_time_ms"};
  return kNumbers.count(name) != 0;
}

bool attribute_is_bool(const std::string& name) {
  return name == "active" || name == "in_trans" || name == "privileged";
}

void json_attribute(Json& j, const view::Attribute& a) {
  j.key(a.name);
  bool digits = a.value && !a.value->empty() &&
                a.value->find_first_not_of("0123456789") == std::string::npos;
  if (!a.value)
    j.null();
  else if (attribute_is_number(a.name) && digits)
    j.num(to_u64(*a.value));
  else if (attribute_is_bool(a.name) && (*a.value == "true" || *a.value == "false"))
    j.boolean(*a.value == "true");
  else
    j.str(*a.value);
}

// session ID --variables: what SHOW PROXYSESSION VARIABLES prints.
static int print_variables(const Options& o, const ShmTable& t, const shm::SessionRecord& r) {
  std::string area;
  if (!t.session_variables(r, area)) {
    fprintf(stderr, "%s: session %u ended meanwhile\n", kProg, r.cs_id);
    return kBadId;
  }
  auto vars = view::session_variables(area);
  if (o.like)
    vars.erase(std::remove_if(vars.begin(), vars.end(),
                              [&](const view::Variable& v) { return !sql::like_match(v.name, *o.like); }),
               vars.end());
  if (r.vars_dropped)
    fprintf(stderr, "%s: note: %u entries do not fit the %zu-byte shared-memory area and are not shown\n", kProg,
            r.vars_dropped, shm::kVarsBytes);
  if (o.json) {
    Json j;
    j.begin_array();
    for (const auto& v : vars) {
      j.begin_object();
      j.key("variable_name").str(v.name);
      j.key("value").str(v.value);
      j.key("info").str(v.info);
      j.end_object();
    }
    j.end_array();
    print_json(j);
    return kOk;
  }
  Table table;
  table.columns = {"variable_name", "value", "info"};
  table.numeric = {false, false, false};
  for (const auto& v : vars) table.rows.push_back({v.name, v.value, v.info});
  if (!table.rows.empty()) print_table(stdout, table);
  print_row_count(table.rows.size());
  return kOk;
}

int cmd_session(const Options& o, const ShmTable& t) {
  Found f;
  int rc = resolve(t, operand(o, 1), f);
  if (rc >= 0) return rc;
  if (o.variables) return print_variables(o, t, f.rec);
  ShmTable::Statement st;
  view::StatementInfo info;
  bool have_statement = t.session_statement(f.rec, st);
  if (have_statement) info = {std::move(st.text), st.start_us, st.end_us};
  auto attrs = view::session_attributes(f.rec, t.header()->pid, view::now_us(), have_statement ? &info : nullptr);
  if (o.like) {
    attrs.erase(std::remove_if(attrs.begin(), attrs.end(),
                               [&](const view::Attribute& a) { return !sql::like_match(a.name, *o.like); }),
                attrs.end());
  }
  if (!o.json) {
    Table table;
    table.columns = {"attribute_name", "value", "info"};
    table.numeric = {false, false, false};
    for (const auto& a : attrs) table.rows.push_back({a.name, a.value, a.info});
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
    return kOk;
  }
  // The client session's attributes, then one object per server session: the
  // info column says which server session an attribute belongs to.
  const std::string kClient = "client session";
  Json j;
  j.begin_object();
  for (const auto& a : attrs)
    if (a.info == kClient) json_attribute(j, a);
  j.key("server_sessions").begin_array();
  std::string current;
  bool open = false;
  for (const auto& a : attrs) {
    if (a.info == kClient) continue;
    if (!open || a.info != current) {
      if (open) j.end_object();
      j.begin_object();
      open = true;
      current = a.info;
    }
    json_attribute(j, a);
  }
  if (open) j.end_object();
  j.end_array().end_object();
  print_json(j);
  return kOk;
}

}  // namespace myrelay::ctl
