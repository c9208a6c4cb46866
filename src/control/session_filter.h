// Which sessions a condition names: KILL PROXYSESSION WHERE, EXPLAIN KILL
// PROXYSESSION WHERE and myrelayctl kill --where (DESIGN section 5).  The
// text is parsed by the SQL recogniser (parse_session_filter); this decides,
// from a session's shared-memory record alone, whether it matches, so the
// daemon and myrelayctl pick exactly the same sessions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "myrelay/shm_layout.h"

namespace myrelay {

struct SessionCondition {
  enum class Field { User, Tenant, Cluster, Host, Db, State, Command, InTrans, IdleS, TimeS, TransS };
  enum class Op { Eq, Ne, Lt, Le, Gt, Ge, Like, NotLike, IsNull, IsNotNull };
  Field field = Field::User;
  Op op = Op::Eq;
  std::string text;    // string fields
  int64_t number = 0;  // numeric fields

  static bool is_numeric(Field f) { return f >= Field::InTrans; }
  static const char* field_name(Field f);
  // Field by its name, any case; false when there is none.
  static bool field_by_name(const std::string& name, Field& out);
  // "user, tenant, ..., trans_s": for messages.
  static const char* field_list();
};

struct SessionFilter {
  std::vector<SessionCondition> conditions;  // all must hold
  bool has_limit = false;
  uint64_t limit = 0;

  // Whether the session matches every condition at `now_us` (CLOCK_REALTIME
  // microseconds, as the records' times).  Strings compare exactly with = and
  // !=; LIKE ignores case; a NULL db matches only IS NULL, as in SQL.
  bool matches(const shm::SessionRecord& r, int64_t now_us) const;
  // The conditions written back as SQL, for log lines and the kill log.
  std::string describe() const;

  // What the numeric fields read for a session at `now_us`, in whole seconds:
  // idle_s while it waits for a command (MCS_KEEP_ALIVE), time_s while one
  // runs (MCS_ACTIVE_READER), trans_s while a transaction is open; else 0.
  static int64_t numeric_value(SessionCondition::Field f, const shm::SessionRecord& r, int64_t now_us);
};

}  // namespace myrelay
