// The proxy's own SQL statements (DESIGN section 5): SHOW PROXYSESSION,
// SHOW PROXYSESSION ATTRIBUTE, KILL PROXYSESSION, KILL [CONNECTION|QUERY].
// One table maps each statement kind to its handler and says who may run
// it; who may see and kill whom is decided in one place (AccessRules).
// Handlers see the sessions only through a SessionDirectory, so every worker's
// sessions look the same, as myrelayctl sees them, and the table is
// unit-tested without sockets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/sql_recognizer.h"
#include "myrelay/shm_layout.h"
#include "protocol/errors.h"
#include "protocol/packets.h"

namespace myrelay {

class SessionDirectory;

namespace admin {

// Who runs the statement.
struct Caller {
  uint32_t cs_id = 0;
  std::string tenant;
  std::string user;
  bool privileged = false;  // of a privileged tenant: sees and kills every session
  // Where the statement came from when another proxy of the fleet forwarded
  // it ("proxy 2"); the kill log and the log name the killer with it.
  std::string via;
  // "user@tenant", with " via proxy N" when forwarded: how kills name the killer.
  std::string name() const;
};

// Visibility and privilege, DESIGN section 5.
struct AccessRules {
  // Whom a caller sees in listings: everyone if privileged, else the
  // sessions of its own tenant and user.
  static bool may_list(const Caller& c, const shm::SessionRecord& r);
  // Whose threads a caller may name in KILL: as in MySQL, the sessions of
  // its tenant (the tenant is its "server") exist for it; another user's among
  // them answer 1095, other tenants' are unknown (1094).
  static bool may_name(const Caller& c, const shm::SessionRecord& r);
  static bool owns(const Caller& c, const shm::SessionRecord& r);
  // Which of the two a statement that names one session by id uses: the
  // listing rule for SHOW PROXYSESSION ATTRIBUTE / VARIABLES, the naming
  // rule for the kill forms.
  static bool may_target(sql::AdminStatement::Kind k, const Caller& c, const shm::SessionRecord& r);
};

// A note or warning a proxy statement leaves for SHOW WARNINGS.
struct Warning {
  std::string level;  // "Note", "Warning"
  uint16_t code;
  std::string message;
};

enum class After {
  Continue,      // the session goes on
  CloseSession,  // it killed itself: close once the answer is sent
};

// How the client's packets look: its capabilities and MariaDB's extended ones.
struct ClientProtocol {
  uint32_t caps = 0;
  uint32_t ext_caps = 0;
};

// What a proxy statement answers, before it becomes packets: an OK, an
// error or a result set, and the notes it leaves.  Kept apart from the
// packets so that another proxy of the fleet can send it back, and the
// proxy that asked can merge it with its own (control/fleet_command.h).
struct Answer {
  enum class Kind { Ok, Error, Rows };
  Kind kind = Kind::Ok;
  uint64_t affected_rows = 0;                 // Ok
  uint16_t error_code = 0;                    // Error
  std::string sqlstate;                       //   five characters
  std::string message;                        //
  std::vector<proto::ColumnDef> columns;      // Rows
  std::vector<proto::TextRow> rows;           //
  std::vector<Warning> warnings;
  After after = After::Continue;

  void error(const er::Error& e, const std::string& msg);
};

// Runs one statement on this proxy's own sessions.
Answer run(const sql::AdminStatement& st, const Caller& caller, SessionDirectory& directory);

// The answer's packets (sequence ids from 1), as `protocol` wants them.
std::string render(const Answer& answer, const ClientProtocol& protocol);

// run() then render(): appends the packets to `out`, the notes to `warnings`.
After execute(const sql::AdminStatement& st, const Caller& caller, SessionDirectory& directory,
              const ClientProtocol& protocol, std::string& out, std::vector<Warning>& warnings);

// SHOW PROXYSESSION's columns as a result set describes them.
std::vector<proto::ColumnDef> session_columns();

// SHOW WARNINGS after a proxy statement: its notes, as the server lists them.
Answer warnings_answer(const std::vector<Warning>& warnings);
std::string show_warnings(const std::vector<Warning>& warnings, const ClientProtocol& protocol);

}  // namespace admin
}  // namespace myrelay
