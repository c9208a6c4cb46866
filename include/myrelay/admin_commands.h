// The proxy's own SQL commands (DESIGN section 5): SHOW PROXYSESSION,
// SHOW PROXYSESSION ATTRIBUTE, KILL PROXYSESSION, KILL [CONNECTION|QUERY].
// They read the shared-memory table, so every worker's sessions are seen the
// same way myrelayctl sees them, and kills go to the owning worker's pipe.
#pragma once

#include <cstdint>
#include <string>

#include "myrelay/sql_recognizer.h"

namespace myrelay {

class Proxy;

namespace admin {

struct Caller {
  uint32_t cs_id = 0;
  std::string tenant;
  std::string user;
  bool privileged = false;
};

enum class After {
  Continue,      // the session goes on
  CloseSession,  // it killed itself: close once the answer is sent
};

// Appends the response packets (sequence ids from 1) to `out`.
After execute(const sql::AdminStatement& st, const Caller& caller, Proxy& proxy, uint32_t caps,
              std::string& out);

}  // namespace admin
}  // namespace myrelay
