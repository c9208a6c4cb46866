// Reading a text result set (see text_result.h).
#include "protocol/text_result.h"

#include <strings.h>

#include "protocol/codec.h"
#include "protocol/packets.h"

namespace myrelay::proto {

int TextResult::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (strcasecmp(columns[i].c_str(), name.c_str()) == 0) return int(i);
  return -1;
}

bool parse_text_result(const std::vector<std::string>& packets, TextResult& out, std::string& error) {
  out = TextResult{};
  if (packets.empty()) {
    error = "no response";
    return false;
  }
  const std::string& first = packets.front();
  ErrPacket e;
  if (parse_err(first, e)) {
    error = std::to_string(e.code) + " " + e.message;
    return false;
  }
  if (first.empty()) {
    error = "an empty packet where a result set begins";
    return false;
  }
  if (uint8_t(first[0]) == kOkHeader) return true;  // no result set
  Reader count(first);
  uint64_t n = count.lenenc_int();
  if (!count.ok() || n == 0 || n > 4096 || packets.size() < 1 + n) {
    error = "a malformed result set";
    return false;
  }
  for (size_t i = 1; i <= n; ++i) {
    // catalog, schema, table, org_table, name, ...
    Reader r(packets[i]);
    std::string name;
    for (int f = 0; f < 5 && r.ok(); ++f) {
      uint64_t len = r.lenenc_int();
      std::string s = r.bytes(size_t(len));
      if (f == 4) name = std::move(s);
    }
    if (!r.ok()) {
      error = "a malformed column definition";
      return false;
    }
    out.columns.push_back(std::move(name));
  }
  auto is_end = [](const std::string& p) {
    return is_eof_or_terminator(reinterpret_cast<const uint8_t*>(p.data()), p.size());
  };
  size_t i = 1 + n;
  if (i < packets.size() && is_end(packets[i])) ++i;  // the EOF after the definitions (no DEPRECATE_EOF)
  for (; i < packets.size(); ++i) {
    const std::string& p = packets[i];
    if (is_end(p)) return true;
    if (parse_err(p, e)) {
      error = std::to_string(e.code) + " " + e.message;
      return false;
    }
    Reader r(p);
    std::vector<std::optional<std::string>> row;
    for (size_t c = 0; c < n && r.ok(); ++c) {
      bool null = false;
      uint64_t len = r.lenenc_int(&null);
      if (null)
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(r.bytes(size_t(len)));
    }
    if (!r.ok() || !r.at_end()) {
      error = "a malformed row";
      return false;
    }
    out.rows.push_back(std::move(row));
  }
  error = "a result set without its end";
  return false;
}

}  // namespace myrelay::proto
