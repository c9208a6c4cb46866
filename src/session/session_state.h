// The state of a client session that the proxy owns (DESIGN section 3a):
// the system variables, schema, transaction characteristics and last insert
// id the client changed, as the servers reported them, and whether all of
// the session's state can be carried to another server session.  Every
// change bumps the version; a server session remembers the version it holds
// (ODP's variable versions), so one already in sync gets nothing replayed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "myrelay/shm_layout.h"
#include "protocol/session_track.h"
#include "session/statement_facts.h"

namespace myrelay {

class SessionState {
 public:
  // What keeps a session from being carried to another server session.
  // (the bits published in shared memory, myrelay/shm_layout.h)
  enum Reason : uint32_t {
    kTransaction = shm::kNrTransaction,
    kLockTables = shm::kNrLockTables,
    kXa = shm::kNrXa,
    kUserVariables = shm::kNrUserVariables,
    kTemporaryTables = shm::kNrTemporaryTables,
    kSqlPrepare = shm::kNrSqlPrepare,
    kUserLocks = shm::kNrUserLocks,
    kHandler = shm::kNrHandler,
    kCursor = shm::kNrCursor,
    kFoundRows = shm::kNrFoundRows,
    kStoredProgram = shm::kNrStoredProgram,
    kUnknownState = shm::kNrUnknownState,
    kLongData = shm::kNrLongData,
    kUnkeptStatement = shm::kNrUnkeptStatement,
    kSessionOnly = shm::kNrSessionOnly,
  };
  static std::string describe(uint32_t reasons);

  // ---- what the server reports ----
  // The state information of an OK (a statement's, or one ending a result).
  // `temporary`: reports of a SET STATEMENT ... FOR, which do not last.
  void apply(const proto::TrackedOk& ok, bool temporary = false);
  // The transaction state after a response (SERVER_STATUS_IN_TRANS).
  void set_in_transaction(bool in);
  void set_last_insert_id(uint64_t id);
  // ---- what the recogniser saw, before the statement runs ----
  void note(const StatementFacts& f);
  // A statement has completed: a pending SQL_CALC_FOUND_ROWS is consumed by
  // the one after it; a SET NAMES ... COLLATE that succeeded sets the collation.
  void statement_done(bool succeeded = true);
  void set_reason(Reason r, bool on);
  // COM_RESET_CONNECTION or COM_CHANGE_USER: the server's defaults again,
  // with `schema` (the new login's database).
  void reset(const std::string& schema);

  // [A-Za-z0-9_]{1,64}: a variable name that can be written into SQL as is.
  static bool plain_identifier(std::string_view name);
  bool restorable() const { return reasons_ == 0; }
  uint32_t reasons() const { return reasons_; }
  uint64_t version() const { return version_; }
  bool in_transaction() const { return reasons_ & kTransaction; }

  // The changed system variables, in replay order (character sets before
  // collations), without those that are not part of a session's state.
  std::vector<std::pair<std::string, std::string>> variables() const;
  const std::string& schema() const { return schema_; }
  const std::string& characteristics() const { return characteristics_; }
  uint64_t last_insert_id() const { return last_insert_id_; }
  // The GTID of the session's last write, as the server reported it
  // (last_gtid): what a causal read waits for on a replica.  Not replayed.
  const std::string& last_gtid() const { return last_gtid_; }

  // The one SET statement that gives a server session these variables
  // (and, before them, `prefix` assignments: the proxy's own tracking),
  // quoted to read the same under any sql_mode.
  std::string replay_set(const std::string& prefix) const;
  // What a server session holds of a session's state once that session let
  // it go (multiplexing): the next session to take it compares.
  struct Snapshot {
    std::map<std::string, std::string, std::less<>> vars;
    uint64_t last_insert_id = 0;
  };
  // Null while the state is the server's defaults.
  std::shared_ptr<const Snapshot> snapshot() const;
  // The character-set variables a connection's login sets (not DEFAULT's
  // global values): a connection holding them from another session cannot
  // be brought back by a difference, only by a new login.
  static bool login_variable(std::string_view name);
  // Whether a connection holding `held` (null: defaults) can be brought to
  // this state by replay_diff().
  bool diff_possible(const Snapshot* held) const;
  // The one SET that turns a server session holding `held` into one
  // holding this state: the variables that differ, those only `held` has
  // back to DEFAULT, last_insert_id when it differs; "" when nothing does.
  std::string replay_diff(const Snapshot* held, const std::string& prefix) const;
  // Whether a server's echo of replay_set() says the variables took.
  bool echo_matches(const proto::TrackedOk& echo, std::string& difference) const;

  // Whether a system variable is part of a session's state (else it is
  // neither kept nor replayed: timestamp, insert_id, session_track_* ...).
  static bool carried(const std::string& name);
  // A value as a SQL literal that reads the same under any sql_mode
  // (numbers bare, NULL for character-set NULLs, hex when it has \\ or NUL).
  static std::string literal(const std::string& name, const std::string& value);

 private:
  void changed() { ++version_; }

  std::map<std::string, std::string, std::less<>> vars_;  // lower-case name -> value
  std::string schema_;
  std::string characteristics_;  // statements that set the next transaction's characteristics
  uint64_t last_insert_id_ = 0;
  std::string last_gtid_;
  uint32_t reasons_ = 0;
  bool found_rows_pending_ = false;  // the statement now running set it
  std::string pending_collation_;    // its SET NAMES ... COLLATE
  uint64_t version_ = 1;
};

}  // namespace myrelay
