// Session conditions (see session_filter.h).
#include "control/session_filter.h"

#include <strings.h>

#include "control/session_view.h"
#include "control/shm_table.h"
#include "control/sql_recognizer.h"

namespace myrelay {

namespace {

using Field = SessionCondition::Field;
using Op = SessionCondition::Op;

struct FieldName {
  Field field;
  const char* name;
};
constexpr FieldName kFields[] = {
    {Field::User, "user"},       {Field::Tenant, "tenant"}, {Field::Cluster, "cluster"}, {Field::Host, "host"},
    {Field::Db, "db"},           {Field::State, "state"},   {Field::Command, "command"}, {Field::InTrans, "in_trans"},
    {Field::IdleS, "idle_s"},    {Field::TimeS, "time_s"},  {Field::TransS, "trans_s"},
};

const char* op_text(Op op) {
  switch (op) {
    case Op::Eq: return "=";
    case Op::Ne: return "!=";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    case Op::Like: return "LIKE";
    case Op::NotLike: return "NOT LIKE";
    case Op::IsNull: return "IS NULL";
    case Op::IsNotNull: return "IS NOT NULL";
  }
  return "?";
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += c == '\'' ? '\'' : '\\';
    out += c;
  }
  return out + "'";
}

bool compare(int64_t a, Op op, int64_t b) {
  switch (op) {
    case Op::Eq: return a == b;
    case Op::Ne: return a != b;
    case Op::Lt: return a < b;
    case Op::Le: return a <= b;
    case Op::Gt: return a > b;
    case Op::Ge: return a >= b;
    default: return false;
  }
}

// MCS_KEEP_ALIVE: it waits for its client's next command; MCS_ACTIVE_READER:
// one runs (ClientSession::State).
bool idle(const shm::SessionRecord& r) { return r.state == 2; }
bool active(const shm::SessionRecord& r) { return r.state == 1; }

int64_t seconds_since(int64_t then_us, int64_t now_us) {
  return then_us > 0 && now_us > then_us ? (now_us - then_us) / 1000000 : 0;
}

}  // namespace

const char* SessionCondition::field_name(Field f) {
  for (const auto& n : kFields)
    if (n.field == f) return n.name;
  return "?";
}

bool SessionCondition::field_by_name(const std::string& name, Field& out) {
  for (const auto& n : kFields)
    if (strcasecmp(n.name, name.c_str()) == 0) {
      out = n.field;
      return true;
    }
  return false;
}

const char* SessionCondition::field_list() {
  return "user, tenant, cluster, host, db, state, command, in_trans, idle_s, time_s, trans_s";
}

int64_t SessionFilter::numeric_value(Field f, const shm::SessionRecord& r, int64_t now_us) {
  switch (f) {
    case Field::InTrans: return r.in_trans ? 1 : 0;
    case Field::IdleS: return idle(r) ? seconds_since(r.last_active_us, now_us) : 0;
    case Field::TimeS: return active(r) ? seconds_since(r.last_active_us, now_us) : 0;
    case Field::TransS: return r.in_trans ? seconds_since(r.trans_started_us, now_us) : 0;
    default: return 0;
  }
}

bool SessionFilter::matches(const shm::SessionRecord& r, int64_t now_us) const {
  for (const SessionCondition& c : conditions) {
    if (SessionCondition::is_numeric(c.field)) {
      if (!compare(numeric_value(c.field, r, now_us), c.op, c.number)) return false;
      continue;
    }
    bool null = false;
    std::string value;
    switch (c.field) {
      case Field::User: value = get_field(r.user); break;
      case Field::Tenant: value = get_field(r.tenant); break;
      case Field::Cluster: value = get_field(r.cluster); break;
      case Field::Host: value = get_field(r.host_ip); break;
      case Field::Db: null = !r.has_db; value = get_field(r.db); break;
      case Field::State: value = view::client_state_name(r.state); break;
      case Field::Command: value = get_field(r.command); break;
      default: break;
    }
    bool hold = false;
    switch (c.op) {
      case Op::IsNull: hold = null; break;
      case Op::IsNotNull: hold = !null; break;
      case Op::Eq: hold = !null && value == c.text; break;
      case Op::Ne: hold = !null && value != c.text; break;
      case Op::Like: hold = !null && sql::like_match(value, c.text); break;
      case Op::NotLike: hold = !null && !sql::like_match(value, c.text); break;
      default: break;
    }
    if (!hold) return false;
  }
  return true;
}

std::string SessionFilter::describe() const {
  std::string out;
  for (const SessionCondition& c : conditions) {
    if (!out.empty()) out += " AND ";
    out += std::string(SessionCondition::field_name(c.field)) + " " + op_text(c.op);
    if (c.op == Op::IsNull || c.op == Op::IsNotNull) continue;
    out += " " + (SessionCondition::is_numeric(c.field) ? std::to_string(c.number) : quoted(c.text));
  }
  if (has_limit) out += " LIMIT " + std::to_string(limit);
  return out;
}

}  // namespace myrelay
