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

namespace myrelay {

class SessionDirectory;

namespace admin {

// Who runs the statement.
struct Caller {
  uint32_t cs_id = 0;
  std::string tenant;
  std::string user;
  bool privileged = false;  // of a privileged tenant: sees and kills every session
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

// Appends the response packets (sequence ids from 1) to `out`; what it
// notes goes to `warnings` (counted in the response).
After execute(const sql::AdminStatement& st, const Caller& caller, SessionDirectory& directory,
              const ClientProtocol& protocol, std::string& out, std::vector<Warning>& warnings);

// SHOW WARNINGS after a proxy statement: its notes, as the server lists them.
std::string show_warnings(const std::vector<Warning>& warnings, const ClientProtocol& protocol);

}  // namespace admin
}  // namespace myrelay
