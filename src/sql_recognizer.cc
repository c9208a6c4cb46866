// The proxy's SQL recogniser (see sql_recognizer.h).
#include "myrelay/sql_recognizer.h"

#include <cctype>

namespace myrelay::sql {

size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[pos]);
    if (isspace(c)) {
      ++pos;
    } else if (c == '/' && pos + 1 < s.size() && s[pos + 1] == '*') {
      size_t end = s.find("*/", pos + 2);
      if (end == std::string_view::npos) return s.size();
      pos = end + 2;
    } else if (c == '#' || (c == '-' && pos + 2 < s.size() + 1 && s.substr(pos, 2) == "--" &&
                            (pos + 2 == s.size() || isspace(static_cast<unsigned char>(s[pos + 2]))))) {
      size_t end = s.find('\n', pos);
      if (end == std::string_view::npos) return s.size();
      pos = end + 1;
    } else {
      break;
    }
  }
  return pos;
}

static bool keyword_at(std::string_view s, size_t pos, std::string_view kw) {
  if (s.size() - pos < kw.size()) return false;
  for (size_t i = 0; i < kw.size(); ++i)
    if (toupper(static_cast<unsigned char>(s[pos + i])) != kw[i]) return false;
  size_t end = pos + kw.size();
  return end == s.size() || !(isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_' || s[end] == '$');
}

bool parse_use(std::string_view sql, std::string& db) {
  size_t pos = skip_space(sql, 0);
  if (!keyword_at(sql, pos, "USE")) return false;
  pos = skip_space(sql, pos + 3);
  std::string name;
  if (pos < sql.size() && sql[pos] == '`') {
    ++pos;
    for (;;) {
      if (pos >= sql.size()) return false;
      if (sql[pos] == '`') {
        if (pos + 1 < sql.size() && sql[pos + 1] == '`') {
          name += '`';
          pos += 2;
          continue;
        }
        ++pos;
        break;
      }
      name += sql[pos++];
    }
  } else {
    while (pos < sql.size()) {
      unsigned char c = static_cast<unsigned char>(sql[pos]);
      if (isspace(c) || c == ';' || c == '/' || c == '#') break;
      name += sql[pos++];
    }
  }
  if (name.empty()) return false;
  pos = skip_space(sql, pos);
  if (pos < sql.size() && sql[pos] == ';') pos = skip_space(sql, pos + 1);
  if (pos != sql.size()) return false;
  db = name;
  return true;
}

}  // namespace myrelay::sql
