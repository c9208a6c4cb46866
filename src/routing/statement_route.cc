// Classifying a statement for the read/write split (see statement_route.h).
#include "routing/statement_route.h"

#include <strings.h>

#include <cctype>
#include <string>

#include "control/sql_scanner.h"

namespace myrelay::routing {

namespace {

// Words that make a SELECT the primary's: locking reads, INTO, functions
// whose answer is the session's own connection's, sequences.
bool primary_word(const std::string& w) {
  static const char* const kWords[] = {
      "FOR", "LOCK", "SHARE", "INTO", "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "IS_FREE_LOCK",
      "IS_USED_LOCK", "LAST_INSERT_ID", "FOUND_ROWS", "ROW_COUNT", "SQL_CALC_FOUND_ROWS", "NEXTVAL", "LASTVAL",
      "SETVAL", "NEXT", "PREVIOUS", "CONNECTION_ID", "MASTER_POS_WAIT", "MASTER_GTID_WAIT", "SOURCE_POS_WAIT"};
  for (const char* k : kWords)
    if (w == k) return true;
  return false;
}

// @@variables that differ from one connection to another.
bool connection_variable(const std::string& v) {
  static const char* const kVars[] = {"last_insert_id", "identity", "insert_id", "last_gtid", "gtid_seq_no",
                                      "pseudo_thread_id", "warning_count", "error_count", "rowcount",
                                      "server_id", "hostname", "port", "read_only"};
  std::string name = v;
  size_t dot = name.rfind('.');
  if (dot != std::string::npos) name = name.substr(dot + 1);
  while (!name.empty() && name[0] == '@') name.erase(0, 1);
  for (const char* k : kVars)
    if (strcasecmp(name.c_str(), k) == 0) return true;
  return false;
}

class Classifier : public sql::SqlListener {
 public:
  void on_token(const sql::SqlToken& t) override {
    if (statements_ > 0) {
      extra_ = true;  // tokens after the first statement: a multi-statement text
      return;
    }
    if (t.index == 0 || (opening_paren_ && !seen_select_)) {
      if (t.kind == sql::SqlToken::Punct && t.text == "(") {
        opening_paren_ = true;
        return;
      }
      if (!(t.kind == sql::SqlToken::Word && t.text == "SELECT")) {
        not_select_ = true;
        return;
      }
      seen_select_ = true;
      return;
    }
    if (t.truncated) unsafe_ = true;
    switch (t.kind) {
      case sql::SqlToken::Word:
        if (primary_word(t.text)) unsafe_ = true;
        break;
      case sql::SqlToken::Variable:
        // A user variable (read or assigned) lives on the primary's
        // connection only; so do some system variables.
        if (t.text.size() < 2 || t.text[1] != '@' || connection_variable(t.text)) unsafe_ = true;
        break;
      default:
        break;
    }
  }
  void on_statement_end(size_t tokens) override {
    if (tokens > 0) ++statements_;
  }

  bool select() const { return seen_select_ && !not_select_ && statements_ == 1 && !extra_; }
  bool safe() const { return select() && !unsafe_; }

 private:
  size_t statements_ = 0;
  bool extra_ = false;
  bool opening_paren_ = false;
  bool seen_select_ = false;
  bool not_select_ = false;
  bool unsafe_ = false;
};

// /*+ ... READ_CONSISTENCY(WEAK|STRONG) ... */ anywhere in the text's first
// comments-and-keyword stretch (ODP writes it after SELECT).
Consistency find_hint(std::string_view sql) {
  size_t at = sql.find("/*+");
  if (at == std::string_view::npos || at > 256) return Consistency::Default;
  size_t end = sql.find("*/", at + 3);
  if (end == std::string_view::npos) return Consistency::Default;
  std::string body;
  for (char c : sql.substr(at + 3, end - at - 3))
    if (!std::isspace(static_cast<unsigned char>(c))) body += char(std::toupper(static_cast<unsigned char>(c)));
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
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  if (i == sql.size()) return r;
  char c = char(std::toupper(static_cast<unsigned char>(sql[i])));
  if (c != 'S' && c != '(' && c != '/' && c != '-' && c != '#') return r;
  // Whether a backslash escapes depends on the session's sql_mode: both
  // readings must agree that the statement is safe.
  bool select = true, safe = true;
  for (bool escapes : {true, false}) {
    Classifier cl;
    sql::SqlScanner scanner(escapes);
    scanner.feed(sql, cl);
    scanner.finish(cl);
    select = select && cl.select();
    safe = safe && cl.safe();
  }
  r.select = select;
  r.replica_safe = safe;
  return r;
}

}  // namespace myrelay::routing
