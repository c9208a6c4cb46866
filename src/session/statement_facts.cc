// What a statement leaves behind in its session (see statement_facts.h).
#include "session/statement_facts.h"

#include <cstring>

#include "control/sql_scanner.h"

namespace myrelay {

namespace {

using sql::SqlToken;

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

// Collects the facts of every statement of the text.
class FactsListener : public sql::SqlListener {
 public:
  StatementFacts facts;

  void on_token(const SqlToken& t) override {
    if (t.index < kHead) head_[t.index] = t;
    if (t.kind == SqlToken::Variable && t.text.size() > 1 && t.text[1] != '@') facts.flags |= StatementFacts::kUserVariables;
    if (t.kind == SqlToken::Word) word(t);
    if (t.kind == SqlToken::Punct && t.text == "(" && prev_.kind == SqlToken::Word) call(prev_.text);
    // SET @@session.session_track_x = ...: assigning, not reading, the proxy's trackers.
    if (t.kind == SqlToken::Punct && (t.text == "=" || t.text == ":=") && prev_.kind == SqlToken::Variable &&
        word_at(0, "SET") && lower(prev_.text).find("session_track_") != std::string::npos)
      facts.flags |= StatementFacts::kTrackerChange;
    // SET NAMES x COLLATE y
    if (t.index >= 3 && word_at(0, "SET") && word_at(1, "NAMES") && prev_.kind == SqlToken::Word &&
        prev_.text == "COLLATE" && (t.kind == SqlToken::Word || t.kind == SqlToken::String))
      facts.collation = lower(t.text);
    prev_ = t;
  }

  void on_statement_end(size_t) override {
    for (auto& t : head_) t = SqlToken{};
    prev_ = SqlToken{};
  }

 private:
  static constexpr size_t kHead = 4;

  bool word_at(size_t i, const char* w) const { return head_[i].kind == SqlToken::Word && head_[i].text == w; }

  void word(const SqlToken& t) {
    const std::string& w = t.text;
    if (w == "SQL_CALC_FOUND_ROWS") facts.flags |= StatementFacts::kFoundRows;
    if (w.rfind("SESSION_TRACK_", 0) == 0 && word_at(0, "SET")) facts.flags |= StatementFacts::kTrackerChange;
    switch (t.index) {
      case 0:
        if (w == "PREPARE") facts.flags |= StatementFacts::kSqlPrepare;
        if (w == "HANDLER") facts.flags |= StatementFacts::kHandler;
        if (w == "CALL") facts.flags |= StatementFacts::kStoredProgram;
        break;
      case 1:
        if (word_at(0, "LOCK") && (w == "TABLE" || w == "TABLES")) facts.flags |= StatementFacts::kLockTables;
        if (word_at(0, "UNLOCK") && (w == "TABLE" || w == "TABLES")) facts.flags |= StatementFacts::kUnlockTables;
        if (word_at(0, "XA") && (w == "START" || w == "BEGIN")) facts.flags |= StatementFacts::kXaStart;
        if (word_at(0, "XA") && (w == "COMMIT" || w == "ROLLBACK")) facts.flags |= StatementFacts::kXaEnd;
        if (word_at(0, "SET") && w == "STATEMENT") facts.flags |= StatementFacts::kSetStatement;
        if (word_at(0, "SET") && (w == "CHARSET")) facts.flags |= StatementFacts::kCharacterSet;
        if (word_at(0, "EXECUTE") && w == "IMMEDIATE") facts.flags |= StatementFacts::kSqlPrepare;
        break;
      case 2:
        if (word_at(0, "SET") && word_at(1, "CHARACTER") && w == "SET") facts.flags |= StatementFacts::kCharacterSet;
        break;
      default:
        break;
    }
    // CREATE [OR REPLACE] TEMPORARY TABLE
    if (w == "TEMPORARY" && word_at(0, "CREATE")) facts.flags |= StatementFacts::kTemporaryTables;
    // FLUSH TABLES ... WITH READ LOCK / FOR EXPORT: the session holds the lock.
    if (word_at(0, "FLUSH") && (w == "LOCK" || w == "EXPORT")) facts.flags |= StatementFacts::kLockTables;
  }

  void call(const std::string& fn) {
    if (fn == "GET_LOCK") facts.flags |= StatementFacts::kUserLocks;
    if (fn == "LAST_INSERT_ID") pending_lid_ = true;
  }

 public:
  // LAST_INSERT_ID( followed by anything but ')': it sets the value.
  void after(const SqlToken& t) {
    if (!pending_lid_) return;
    pending_lid_ = false;
    if (!(t.kind == SqlToken::Punct && t.text == ")")) facts.flags |= StatementFacts::kLastInsertIdSet;
  }

 private:
  SqlToken head_[kHead];
  SqlToken prev_;
  bool pending_lid_ = false;
};

// Feeds tokens to the listener and lets it look one token ahead.
class LookaheadListener : public sql::SqlListener {
 public:
  explicit LookaheadListener(FactsListener& f) : f_(f) {}
  void on_token(const SqlToken& t) override {
    f_.after(t);
    f_.on_token(t);
  }
  void on_statement_end(size_t n) override { f_.on_statement_end(n); }

 private:
  FactsListener& f_;
};

}  // namespace

StatementFacts StatementFacts::of(std::string_view sql) {
  FactsListener facts;
  LookaheadListener l(facts);
  // Both readings of a backslash: a user variable hidden in one is still there.
  for (bool escapes : {true, false}) {
    sql::SqlScanner scanner(escapes);
    scanner.feed(sql, l);
    scanner.finish(l);
  }
  return facts.facts;
}

bool StatementFacts::worth_scanning(std::string_view sql) {
  // The characters and words every fact above needs one of.
  static const char* const kWords[] = {"temporary", "prepare", "get_lock", "handler", "lock", "xa", "call",
                                       "sql_calc", "last_insert_id", "names", "character", "charset",
                                       "statement", "session_track", "immediate", "export"};
  if (memchr(sql.data(), '@', sql.size()) || memchr(sql.data(), ';', sql.size())) return true;
  auto lc = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  for (size_t i = 0; i < sql.size(); ++i) {
    char first = lc(sql[i]);
    for (const char* w : kWords) {
      if (first != w[0]) continue;
      size_t n = strlen(w), k = 1;
      while (k < n && i + k < sql.size() && lc(sql[i + k]) == w[k]) ++k;
      if (k == n) return true;
    }
    if (sql[i] == '/' && i + 2 < sql.size() && sql[i + 1] == '*' && (sql[i + 2] == '!' || (sql[i + 2] | 0x20) == 'm'))
      return true;
  }
  return false;
}

}  // namespace myrelay
