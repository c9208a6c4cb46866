// A client session's state (see session_state.h).
#include "session/session_state.h"

#include <algorithm>
#include <cstring>

#include "protocol/codec.h"

namespace myrelay {

using namespace proto;

namespace {

std::string lower(std::string_view v) {
  std::string s(v);
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

bool is_number(const std::string& v) {
  size_t i = v[0] == '-' ? 1 : 0;
  if (i >= v.size()) return false;
  bool dot = false;
  for (; i < v.size(); ++i) {
    if (v[i] == '.' && !dot) {
      dot = true;
      continue;
    }
    if (v[i] < '0' || v[i] > '9') return false;
  }
  return v.back() != '.';
}

// Character sets first, then collations, then the rest: SET NAMES' parts in
// the order that leaves each of them as reported.
int replay_rank(const std::string& name) {
  if (name == "character_set_client" || name == "character_set_results" || name == "character_set_connection")
    return 0;
  if (name.rfind("character_set_", 0) == 0) return 1;
  if (name.rfind("collation_", 0) == 0) return 2;
  return 3;
}

}  // namespace

std::string SessionState::describe(uint32_t reasons) {
  std::string out;
  for (const auto& r : shm::kNotRestorableNames)
    if (reasons & r.bit) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

bool SessionState::carried(const std::string& name) {
  static const char* const kNot[] = {"timestamp", "insert_id", "pseudo_thread_id", "last_gtid", "gtid_seq_no",
                                     "last_insert_id", "rand_seed1", "rand_seed2", "identity", "in_transaction",
                                     "warning_count", "error_count", "sql_log_off"};
  if (name.rfind("session_track_", 0) == 0) return false;
  for (const char* n : kNot)
    if (name == n) return false;
  return true;
}

bool SessionState::plain_identifier(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

void SessionState::apply(const TrackedOk& ok, bool temporary) {
  bool charset_connection = false, collation_connection = false;
  for (const StateChange& c : ok.changes) {
    switch (c.type) {
      case SESSION_TRACK_SYSTEM_VARIABLES: {
        std::string name = lower(c.name);
        if (name == "last_gtid" && !c.value.empty()) last_gtid_ = std::string(c.value);
        if (temporary) break;
        if (!carried(name)) {
          // A fixed timestamp or insert id, a borrowed thread id: the
          // session's own until it is reset, and never replayed.
          if (name == "timestamp" || name == "insert_id" || name == "pseudo_thread_id" ||
              name == "rand_seed1" || name == "rand_seed2")
            set_reason(kSessionOnly, true);
          break;
        }
        // The name is pasted into the replayed SET: one that is not a plain
        // identifier (only a broken or hostile backend reports it) cannot be
        // carried, so the session stays on this connection instead.
        if (!plain_identifier(name)) {
          set_reason(kUnknownState, true);
          break;
        }
        charset_connection = charset_connection || name == "character_set_connection";
        collation_connection = collation_connection || name == "collation_connection";
        auto it = vars_.find(name);
        if (it != vars_.end() && it->second == c.value) break;
        vars_[name] = std::string(c.value);
        changed();
        break;
      }
      case SESSION_TRACK_SCHEMA:
        if (schema_ != c.value) {
          schema_ = c.value;
          changed();
        }
        break;
      case SESSION_TRACK_TRANSACTION_CHARACTERISTICS: {
        // Reported inside a transaction, they are that transaction's (and
        // the one-shot SET TRANSACTION before it is used up); outside, what
        // the next transaction will get.
        std::string_view next = (ok.status & SERVER_STATUS_IN_TRANS) ? std::string_view() : c.value;
        if (characteristics_ != next) {
          characteristics_ = std::string(next);
          changed();
        }
        break;
      }
      case SESSION_TRACK_TRANSACTION_STATE:
        // "_______L": tables locked with LOCK TABLES.  Only ever set here:
        // UNLOCK TABLES (the recogniser) clears it, conservatively.
        if (c.value.size() >= 8 && c.value[7] == 'L') set_reason(kLockTables, true);
        break;
      default:
        break;
    }
  }
  // A new connection character set brings its default collation, which the
  // server does not report: the replayed character set sets it again.
  if (charset_connection && !collation_connection && vars_.erase("collation_connection")) changed();
  if (ok.last_insert_id) set_last_insert_id(ok.last_insert_id);
}

void SessionState::set_in_transaction(bool in) { set_reason(kTransaction, in); }

void SessionState::set_last_insert_id(uint64_t id) {
  if (id == last_insert_id_) return;
  last_insert_id_ = id;
  changed();
}

// Not a change of what is replayed: the version stays.
void SessionState::set_reason(Reason r, bool on) { reasons_ = on ? (reasons_ | r) : (reasons_ & ~uint32_t(r)); }

void SessionState::note(const StatementFacts& f) {
  struct Map {
    uint32_t fact;
    Reason reason;
  };
  static const Map kSticky[] = {
      {StatementFacts::kUserVariables, kUserVariables}, {StatementFacts::kTemporaryTables, kTemporaryTables},
      {StatementFacts::kSqlPrepare, kSqlPrepare},       {StatementFacts::kUserLocks, kUserLocks},
      {StatementFacts::kHandler, kHandler},             {StatementFacts::kStoredProgram, kStoredProgram},
      {StatementFacts::kLastInsertIdSet, kUnknownState}, {StatementFacts::kCharacterSet, kUnknownState},
      {StatementFacts::kLockTables, kLockTables},       {StatementFacts::kXaStart, kXa},
  };
  for (const Map& m : kSticky)
    if (f.has(m.fact)) set_reason(m.reason, true);
  if (f.has(StatementFacts::kUnlockTables)) set_reason(kLockTables, false);
  if (f.has(StatementFacts::kXaEnd)) set_reason(kXa, false);
  if (f.has(StatementFacts::kFoundRows)) {
    set_reason(kFoundRows, true);
    found_rows_pending_ = true;
  }
  // SET NAMES x COLLATE y reports the character sets but not the
  // collation: it is kept once the statement has succeeded.
  pending_collation_ = f.collation;
}

void SessionState::statement_done(bool succeeded) {
  if (succeeded && !pending_collation_.empty() && vars_["collation_connection"] != pending_collation_) {
    vars_["collation_connection"] = pending_collation_;
    changed();
  }
  pending_collation_.clear();
  // The statement that set SQL_CALC_FOUND_ROWS has run; the one after it
  // reads FOUND_ROWS(), and then the count is gone.
  if (found_rows_pending_)
    found_rows_pending_ = false;
  else
    set_reason(kFoundRows, false);
}

void SessionState::reset(const std::string& schema) {
  vars_.clear();
  schema_ = schema;
  characteristics_.clear();
  last_insert_id_ = 0;
  reasons_ = 0;
  found_rows_pending_ = false;
  changed();
}

std::vector<std::pair<std::string, std::string>> SessionState::variables() const {
  std::vector<std::pair<std::string, std::string>> v(vars_.begin(), vars_.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return replay_rank(a.first) < replay_rank(b.first); });
  return v;
}

std::string SessionState::literal(const std::string& name, const std::string& value) {
  // The server reports a NULL character_set_results as ''.
  if (value.empty() && name.rfind("character_set_", 0) == 0) return "NULL";
  if (!value.empty() && is_number(value)) return value;
  // A backslash or NUL means different things with and without
  // NO_BACKSLASH_ESCAPES; a hex literal means the same under any sql_mode.
  if (value.find_first_of(std::string("\\\0", 2)) != std::string::npos) {
    static const char digits[] = "0123456789abcdef";
    std::string out = "X'";
    for (unsigned char c : value) {
      out += digits[c >> 4];
      out += digits[c & 15];
    }
    return out + "'";
  }
  // Doubled single quotes read the same under any sql_mode (ANSI_QUOTES
  // changes only double quotes).
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string SessionState::replay_set(const std::string& prefix) const {
  std::string sql = "SET " + prefix;
  for (const auto& [name, value] : variables()) {
    if (sql.size() > 4) sql += ", ";
    sql += "@@SESSION." + name + " = " + literal(name, value);
  }
  if (last_insert_id_) {
    if (sql.size() > 4) sql += ", ";
    sql += "@@SESSION.last_insert_id = " + std::to_string(last_insert_id_);
  }
  return sql.size() > 4 ? sql : std::string();
}

std::shared_ptr<const SessionState::Snapshot> SessionState::snapshot() const {
  if (vars_.empty() && last_insert_id_ == 0) return nullptr;
  auto s = std::make_shared<Snapshot>();
  s->vars = vars_;
  s->last_insert_id = last_insert_id_;
  return s;
}

bool SessionState::login_variable(std::string_view name) {
  return name == "character_set_client" || name == "character_set_connection" || name == "character_set_results" ||
         name == "collation_connection";
}

bool SessionState::diff_possible(const Snapshot* held) const {
  if (!held) return true;
  for (const auto& [name, value] : held->vars)
    if (login_variable(name) && vars_.find(name) == vars_.end()) return false;
  return true;
}

std::string SessionState::replay_diff(const Snapshot* held, const std::string& prefix) const {
  if (!held) return replay_set(prefix);
  std::string sql = "SET " + prefix;
  auto add = [&](const std::string& assignment) {
    if (sql.size() > 4) sql += ", ";
    sql += assignment;
  };
  // Those only the connection has first: setting a character set back
  // must not undo a collation set after it.
  for (const auto& [name, value] : held->vars)
    if (vars_.find(name) == vars_.end() && carried(name)) add("@@SESSION." + name + " = DEFAULT");
  for (const auto& [name, value] : variables()) {
    auto it = held->vars.find(name);
    if (it == held->vars.end() || it->second != value) add("@@SESSION." + name + " = " + literal(name, value));
  }
  if (last_insert_id_ != held->last_insert_id) add("@@SESSION.last_insert_id = " + std::to_string(last_insert_id_));
  return sql.size() > 4 ? sql : std::string();
}

bool SessionState::echo_matches(const TrackedOk& echo, std::string& difference) const {
  // A variable set to the value it had is not always reported again: only
  // what the echo reports is compared.
  for (const StateChange& c : echo.changes) {
    if (c.type != SESSION_TRACK_SYSTEM_VARIABLES) continue;
    bool lower_case = true;
    for (char ch : c.name) lower_case = lower_case && !(ch >= 'A' && ch <= 'Z');
    auto it = lower_case ? vars_.find(c.name) : vars_.find(lower(c.name));
    if (it != vars_.end() && it->second != c.value) {
      difference = it->first + " is '" + std::string(c.value) + "', not '" + it->second + "'";
      return false;
    }
  }
  return true;
}

}  // namespace myrelay
