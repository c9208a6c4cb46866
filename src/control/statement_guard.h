// What the proxy must know of a statement text before it reaches a backend:
// whether it would act on other sessions through the backend.  A KILL run by
// the backend, or the backend's process list, would reach every session of
// the backend account, whichever tenant it belongs to; the proxy answers those
// itself (SHOW PROCESSLIST, a KILL on its own: see sql_recognizer.h), and
// refuses what it cannot
// answer: KILL inside a multi-statement or inside prepared SQL text, a KILL
// too long to be read whole, and, for unprivileged tenants, the tables that
// list the backend's threads.  Every statement of the text is looked at,
// executable comments included, under both readings of a backslash in a
// string (the session's sql_mode may have NO_BACKSLASH_ESCAPES).
//
// What it cannot see is SQL built at run time (PREPARE ... FROM @variable,
// stored procedures): only separate backend accounts per tenant keep those
// apart, which is why sharing one is a configuration error unless allowed
// (proxy.allow_shared_backend_accounts).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "control/sql_scanner.h"
#include "protocol/errors.h"

namespace myrelay::sql {

struct GuardFindings {
  size_t statements = 0;
  bool kill = false;              // a KILL statement, anywhere
  bool show_processlist = false;  // SHOW [FULL] PROCESSLIST, anywhere
  bool in_dynamic_sql = false;    // one of those inside PREPARE/EXECUTE IMMEDIATE text
  std::string process_table;      // a table that lists the backend's threads, if named
  bool opaque_dynamic_sql = false;  // prepared SQL text too long to look into

  void merge(const GuardFindings& o);
};

class StatementGuard {
 public:
  // `db`: the session's database, for tables named without their schema.
  explicit StatementGuard(const std::string& db);
  ~StatementGuard();
  StatementGuard(const StatementGuard&) = delete;
  StatementGuard& operator=(const StatementGuard&) = delete;

  void feed(std::string_view text);
  const GuardFindings& finish();

  // Looks at a whole text at once.
  static GuardFindings scan(std::string_view text, const std::string& db);

 private:
  class Reader;
  std::unique_ptr<Reader> with_escapes_, without_escapes_;
  GuardFindings findings_;
};

// What to do with a statement text the proxy's own statements did not claim
// (a lone KILL or SHOW PROCESSLIST is one of those).
struct GuardDecision {
  enum Action { Forward, Refuse } action = Forward;
  er::Error error{0, ""};
  std::string message;
};

// `streamed`: the text was too long to be read whole (part of it may be on
// its way to the backend already).  `user`/`host` name the caller in the
// errors, as the server names them.
GuardDecision judge(const GuardFindings& f, bool privileged, bool streamed, const std::string& user,
                    const std::string& host);

// Whether a text might hold anything judge() refuses or answers: a quick
// look that lets the common statement skip the scan.
bool may_need_guard(std::string_view text);

}  // namespace myrelay::sql
