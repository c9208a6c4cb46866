// Classifying a statement for the read/write split (see statement_route.h).
#include "routing/statement_route.h"

#include <strings.h>

#include <cctype>
#include <string>

#include <cstring>

namespace myrelay::routing {

namespace {

// Words that make a SELECT the primary's: locking reads, INTO, functions
// whose answer is the session's own connection's, sequences.
// ASCII only, without the C locale's table lookups: this runs on every
// SELECT of a split session.
constexpr char upper(char c) { return c >= 'a' && c <= 'z' ? char(c - 32) : c; }
constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
inline bool equals_upper(std::string_view w, std::string_view upper_word) {
  if (w.size() != upper_word.size() || w.empty() || upper(w[0]) != upper_word[0]) return false;
  for (size_t i = 1; i < w.size(); ++i)
    if (upper(w[i]) != upper_word[i]) return false;
  return true;
}

bool primary_word(std::string_view w) {
  auto any = [w](std::initializer_list<std::string_view> words) {
    for (std::string_view k : words)
      if (equals_upper(w, k)) return true;
    return false;
  };
  switch (upper(w[0])) {  // only the words with w's first letter are compared
    case 'C': return any({"CONNECTION_ID"});
    case 'F': return any({"FOR", "FOUND_ROWS"});
    case 'G': return any({"GET_LOCK"});
    case 'I': return any({"INTO", "IS_FREE_LOCK", "IS_USED_LOCK"});
    case 'L': return any({"LOCK", "LAST_INSERT_ID", "LASTVAL"});
    case 'M': return any({"MASTER_POS_WAIT", "MASTER_GTID_WAIT"});
    case 'N': return any({"NEXT", "NEXTVAL"});
    case 'P': return any({"PREVIOUS"});
    case 'R': return any({"RELEASE_LOCK", "RELEASE_ALL_LOCKS", "ROW_COUNT"});
    case 'S': return any({"SHARE", "SETVAL", "SQL_CALC_FOUND_ROWS", "SOURCE_POS_WAIT"});
    default: return false;
  }
}

// @@variables that differ from one connection to another (or one server to
// another).
bool connection_variable(std::string_view v) {
  static constexpr std::string_view kVars[] = {"LAST_INSERT_ID", "IDENTITY", "INSERT_ID", "LAST_GTID",
                                               "GTID_SEQ_NO", "PSEUDO_THREAD_ID", "WARNING_COUNT", "ERROR_COUNT",
                                               "ROWCOUNT", "SERVER_ID", "HOSTNAME", "PORT", "READ_ONLY"};
  size_t dot = v.rfind('.');
  if (dot != std::string_view::npos) v.remove_prefix(dot + 1);
  while (!v.empty() && (v.front() == '@' || v.front() == '`')) v.remove_prefix(1);
  while (!v.empty() && v.back() == '`') v.remove_suffix(1);
  for (std::string_view k : kVars)
    if (equals_upper(v, k)) return true;
  return false;
}

// One pass over the text, as the server reads it: comments skipped
// (executable ones, /*! */ and /*M! */, are code), strings and quoted names
// stepped over, ';' ending a statement.  Whether a backslash escapes a quote
// depends on sql_mode, which the caller tries both ways.
struct Scan {
  bool select = false;
  bool safe = false;
};

Scan scan(std::string_view sql, bool backslash_escapes) {
  Scan out;
  size_t i = 0, n = sql.size();
  bool ended = false;  // a ';' ended the first statement
  bool unsafe = false;
  int exec_comments = 0;
  while (i < n) {
    char c = sql[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (c == '#' || (c == '-' && i + 1 < n && sql[i + 1] == '-' &&
                     (i + 2 == n || is_space(sql[i + 2])))) {
      size_t nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? n : nl + 1;
      continue;
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      bool executable = i + 2 < n && (sql[i + 2] == '!' || (sql[i + 2] == 'M' && i + 3 < n && sql[i + 3] == '!'));
      if (executable) {
        i += sql[i + 2] == '!' ? 3 : 4;
        while (i < n && is_digit(sql[i])) ++i;  // /*!50100
        ++exec_comments;
        continue;
      }
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? n : end + 2;
      continue;
    }
    if (c == '*' && exec_comments > 0 && i + 1 < n && sql[i + 1] == '/') {
      --exec_comments;
      i += 2;
      continue;
    }
    if (ended) return out;  // more after the first statement: not ours to judge
    if (c == ';') {
      ended = true;
      ++i;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`') {
      size_t j = i + 1;
      while (j < n) {
        if (c != '`' && backslash_escapes && sql[j] == '\\') {
          j += 2;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {  // a doubled quote
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      if (j >= n) return out;  // unterminated: the server refuses it
      i = j + 1;
      continue;
    }
    if (c == '@') {
      size_t j = i + 1;
      bool system = j < n && sql[j] == '@';
      if (system) ++j;
      while (j < n && (word_char(sql[j]) || sql[j] == '.' || sql[j] == '`')) ++j;
      // A user variable lives on the primary's connection only; so do some
      // system variables.
      if (!system || connection_variable(sql.substr(i, j - i))) unsafe = true;
      i = j > i + 1 ? j : i + 1;
      continue;
    }
    if (word_char(c)) {
      size_t j = i;
      while (j < n && word_char(sql[j])) ++j;
      std::string_view w = sql.substr(i, j - i);
      if (is_digit(c)) {  // a number
      } else if (!out.select) {
        if (!equals_upper(w, "SELECT")) return out;  // no SELECT
        out.select = true;
      } else if (primary_word(w)) {
        unsafe = true;
      }
      i = j;
      continue;
    }
    if (!out.select && c != '(') return out;  // only "(SELECT ..." may come before SELECT
    ++i;
  }
  out.safe = out.select && !unsafe;
  return out;
}

// /*+ ... READ_CONSISTENCY(WEAK|STRONG) ... */ anywhere in the text's first
// stretch (ODP writes it after SELECT).
Consistency find_hint(std::string_view sql) {
  size_t at = sql.find("/*+");
  if (at == std::string_view::npos || at > 256) return Consistency::Default;
  size_t end = sql.find("*/", at + 3);
  if (end == std::string_view::npos) return Consistency::Default;
  std::string body;
  for (char c : sql.substr(at + 3, end - at - 3))
    if (!is_space(c)) body += char(std::toupper(static_cast<unsigned char>(c)));
  if (body.find("READ_CONSISTENCY(STRONG)") != std::string::npos) return Consistency::Strong;
  if (body.find("READ_CONSISTENCY(WEAK)") != std::string::npos) return Consistency::Weak;
  return Consistency::Default;
}

}  // namespace

StatementRoute classify_statement(std::string_view sql) {
  StatementRoute r;
  r.hint = find_hint(sql);
  // Most statements tell at their first letter that they are no SELECT.
  size_t i = 0;
  while (i < sql.size() && is_space(sql[i])) ++i;
  if (i == sql.size()) return r;
  char c = char(std::toupper(static_cast<unsigned char>(sql[i])));
  if (c != 'S' && c != '(' && c != '/' && c != '-' && c != '#') return r;
  // Whether a backslash escapes depends on the session's sql_mode: with one
  // in the text, both readings must agree that the statement is safe.
  Scan a = scan(sql, true);
  bool select = a.select, safe = a.safe;
  if (sql.find('\\') != std::string_view::npos) {
    Scan b = scan(sql, false);
    select = select && b.select;
    safe = safe && b.safe;
  }
  r.select = select;
  r.replica_safe = safe;
  return r;
}

}  // namespace myrelay::routing
