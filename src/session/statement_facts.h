// What a statement text does to its session that the server does not report
// (DESIGN section 3a): user variables, temporary tables, SQL PREPARE,
// GET_LOCK, HANDLER, LOCK TABLES, XA, stored procedures, a pending
// SQL_CALC_FOUND_ROWS, a collation set with SET NAMES.  Every statement of
// the text counts; the recogniser is conservative: a false "this leaves
// state behind" costs a session its mobility, a missed one would lose data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace myrelay {

struct StatementFacts {
  enum : uint32_t {
    kUserVariables = 1u << 0,
    kTemporaryTables = 1u << 1,
    kSqlPrepare = 1u << 2,
    kUserLocks = 1u << 3,
    kHandler = 1u << 4,
    kLockTables = 1u << 5,     // LOCK TABLES, FLUSH TABLES ... WITH READ LOCK
    kUnlockTables = 1u << 6,
    kXaStart = 1u << 7,
    kXaEnd = 1u << 8,           // XA COMMIT / ROLLBACK
    kStoredProgram = 1u << 9,   // CALL
    kFoundRows = 1u << 10,      // SQL_CALC_FOUND_ROWS
    kLastInsertIdSet = 1u << 11,  // LAST_INSERT_ID(expr)
    kCharacterSet = 1u << 12,   // SET CHARACTER SET: collation_connection unknown
    kSetStatement = 1u << 13,   // SET STATEMENT ... FOR: what it reports is temporary
    kTrackerChange = 1u << 14,  // sets a session_track_* variable
  };
  uint32_t flags = 0;
  std::string collation;  // SET NAMES x COLLATE y: y

  bool has(uint32_t f) const { return (flags & f) != 0; }

  // Looks at a whole text (a COM_QUERY, a COM_STMT_PREPARE).
  static StatementFacts of(std::string_view sql);
  // Whether a text might say anything of the above: a quick look that lets
  // the common statement skip the scan.
  static bool worth_scanning(std::string_view sql);
};

}  // namespace myrelay
