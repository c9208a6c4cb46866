// The small SQL recogniser: it reads only the statements the proxy must act
// on itself or keep track of (USE db now; SHOW/KILL PROXYSESSION later), and
// leaves everything else to the backend untouched.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "control/session_filter.h"

namespace myrelay::sql {

// Skips white space and comments (/* */, -- , #) from `pos`.
size_t skip_space(std::string_view s, size_t pos);

// "USE db" / "USE `db`" with an optional trailing ';'.  Returns true and the
// database name (backquotes removed, doubled backquotes undone).
bool parse_use(std::string_view sql, std::string& db);

// The proxy's own statements (DESIGN section 5).
struct AdminStatement {
  enum class Kind {
    None,              // not ours: goes to the backend
    Malformed,         // ours, but wrong: ERROR 1064 with `error`
    ShowSessions,      // SHOW [GLOBAL] PROXYSESSION [LIKE 'user pattern']
    ShowAttributes,    // SHOW PROXYSESSION ATTRIBUTE [id] [LIKE 'pat']
    ShowVariables,     // SHOW PROXYSESSION VARIABLES [id] [LIKE 'pat']
    KillProxySession,  // KILL PROXYSESSION id [ss_id] | id WHEN IDLE [TIMEOUT s]
    KillWhere,         // KILL [GLOBAL] PROXYSESSION WHERE cond [AND cond]... [LIMIT n] [WHEN IDLE [TIMEOUT s]]
    ExplainKillWhere,  // EXPLAIN KILL [GLOBAL] PROXYSESSION WHERE ...: the sessions it would kill
    KillConnection,    // KILL [CONNECTION] id
    KillQuery,         // KILL QUERY id
    KillUser,          // KILL [CONNECTION] USER name (MariaDB's form)
    KillQueryUser,     // KILL QUERY USER name
    ShowProcesslist,   // SHOW [FULL] PROCESSLIST: the proxy's sessions
    ShowWarnings,      // SHOW WARNINGS [LIMIT n]: ours only after a proxy statement left notes
    ShowCongestion,    // SHOW PROXYCONGESTION [cluster]: the backend servers' health
    ShowKills,         // SHOW PROXYKILLS [LIMIT n]: the kill log
  };
  Kind kind = Kind::None;
  // GLOBAL: over every proxy of the fleet (DESIGN section 6a), not only this one.
  bool global = false;
  bool has_id = false;
  uint64_t id = 0;
  bool has_ss_id = false;
  uint64_t ss_id = 0;
  bool has_like = false;
  std::string like;
  std::string user;  // KILL USER
  std::string host;  // KILL USER name@host; empty: any
  std::string cluster;  // SHOW PROXYCONGESTION cluster; empty: every cluster
  SessionFilter filter;  // KillWhere, ExplainKillWhere
  bool has_limit = false;  // SHOW PROXYKILLS LIMIT n
  uint64_t limit = 0;
  bool when_idle = false;      // WHEN IDLE: at the session's next idle moment outside a transaction
  uint32_t idle_timeout_s = 0;  // WHEN IDLE TIMEOUT s (0: none): then a plain kill
  std::string error;
};

// Case-insensitive; comments and one trailing ';' allowed.  Executable
// comments (/*! ... */, /*M! ... */) are code, as for the server.  Every KILL
// is ours: one the proxy cannot run (KILL QUERY ID n) is Malformed, never
// left for a backend to run.
AdminStatement parse_admin(std::string_view sql);

// The conditions of KILL PROXYSESSION WHERE as myrelayctl kill --where takes
// them: "cond [AND cond]... [LIMIT n]".  False with what was expected in
// `error` when the text is malformed.
bool parse_session_filter(std::string_view text, SessionFilter& out, std::string& error);

// SQL LIKE with % and _, '\' escaping, case-insensitive (ASCII).
bool like_match(std::string_view text, std::string_view pattern);

}  // namespace myrelay::sql
