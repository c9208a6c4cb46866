// A text-protocol result set read whole (the proxy's own queries: health
// checks, the trackers' defaults), as column names and rows of nullable
// strings.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace myrelay::proto {

struct TextResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // The index of a column by name (case-insensitive), or -1.
  int column(const std::string& name) const;
};

// `packets`: one response's payloads, as ServerSession::internal_results()
// holds them (with or without the EOF after the column definitions).  An OK
// gives no columns and no rows.  False for an ERR (`error` then holds
// "code message") or a response that is not a result set.
bool parse_text_result(const std::vector<std::string>& packets, TextResult& out, std::string& error);

}  // namespace myrelay::proto
