// Whether a statement may run on a replica (DESIGN section 4): a SELECT that
// locks nothing, writes nothing (no INTO), assigns and reads no user
// variable, and calls nothing whose answer belongs to the session's own
// connection (GET_LOCK, LAST_INSERT_ID, FOUND_ROWS, sequences, ...); one
// statement only.  And ODP's hints: /*+ READ_CONSISTENCY(WEAK) */ lets a
// SELECT go to a replica, /*+ READ_CONSISTENCY(STRONG) */ keeps a statement
// on the primary.  Conservative: a false "primary only" costs some load on
// the primary, a false "replica" could give a wrong answer.
#pragma once

#include <string_view>

namespace myrelay::routing {

enum class Consistency { Default, Weak, Strong };

struct StatementRoute {
  bool select = false;        // one SELECT statement
  bool replica_safe = false;  // ... that a replica can answer as the primary would
  Consistency hint = Consistency::Default;
};

StatementRoute classify_statement(std::string_view sql);

}  // namespace myrelay::routing
