// The small SQL recogniser: it reads only the statements the proxy must act
// on itself or keep track of (USE db now; SHOW/KILL PROXYSESSION later), and
// leaves everything else to the backend untouched.
#pragma once

#include <string>
#include <string_view>

namespace myrelay::sql {

// Skips white space and comments (/* */, -- , #) from `pos`.
size_t skip_space(std::string_view s, size_t pos);

// "USE db" / "USE `db`" with an optional trailing ';'.  Returns true and the
// database name (backquotes removed, doubled backquotes undone).
bool parse_use(std::string_view sql, std::string& db);

}  // namespace myrelay::sql
