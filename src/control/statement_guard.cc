// The statement guard (see statement_guard.h).
#include "control/statement_guard.h"

#include <algorithm>
#include <cstring>

namespace myrelay::sql {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

bool is_name(const SqlToken& t) { return t.kind == SqlToken::Word || t.kind == SqlToken::QuotedName; }

// The tables that list every thread of the backend, by schema.
bool lists_threads(const std::string& schema, const std::string& table) {
  if (schema == "information_schema") return table == "processlist";
  if (schema == "performance_schema") return table == "threads" || table == "processlist";
  if (schema == "sys")
    return table == "processlist" || table == "session" || table == "x$processlist" || table == "x$session";
  return false;
}

// Bounded: prepared SQL inside prepared SQL inside ... is looked into this
// deep, and anything deeper counts as opaque.
constexpr int kMaxNesting = 4;

}  // namespace

void GuardFindings::merge(const GuardFindings& o) {
  kill = kill || o.kill;
  show_processlist = show_processlist || o.show_processlist;
  in_dynamic_sql = in_dynamic_sql || o.in_dynamic_sql;
  if (process_table.empty()) process_table = o.process_table;
  opaque_dynamic_sql = opaque_dynamic_sql || o.opaque_dynamic_sql;
}

// One reading of the text (backslashes escaping, or not).
class StatementGuard::Reader : public SqlListener {
 public:
  Reader(bool escapes, const std::string& db, int depth) : scanner_(escapes), db_(lower(db)), depth_(depth) {}

  void feed(std::string_view text) { scanner_.feed(text, *this); }
  const GuardFindings& finish() {
    scanner_.finish(*this);
    return f_;
  }

  void on_token(const SqlToken& t) override {
    if (t.index < 4) head_[t.index] = t;
    statement_head(t);
    table_reference(t);
    prev2_ = prev_;
    prev_ = t;
  }

  void on_statement_end(size_t) override {
    ++f_.statements;
    if (head_[0].kind == SqlToken::Word && head_[0].text == "USE" && is_name(head_[1])) db_ = lower(head_[1].text);
    for (auto& t : head_) t = SqlToken{};
    prev_ = prev2_ = SqlToken{};
  }

 private:
  bool word(size_t i, const char* w) const { return head_[i].kind == SqlToken::Word && head_[i].text == w; }

  void statement_head(const SqlToken& t) {
    if (t.index == 0 && t.kind == SqlToken::Word && t.text == "KILL") f_.kill = true;
    // SHOW [FULL] PROCESSLIST
    if (t.kind == SqlToken::Word && t.text == "PROCESSLIST" && word(0, "SHOW") &&
        (t.index == 1 || (t.index == 2 && word(1, "FULL"))))
      f_.show_processlist = true;
    // PREPARE name FROM 'text' and EXECUTE IMMEDIATE 'text': the text is SQL too.
    bool prepared_text = (t.index == 3 && word(0, "PREPARE") && word(2, "FROM")) ||
                         (t.index == 2 && word(0, "EXECUTE") && word(1, "IMMEDIATE"));
    if (prepared_text && t.kind == SqlToken::String) look_into(t);
  }

  void look_into(const SqlToken& t) {
    if (t.truncated || depth_ >= kMaxNesting) {
      f_.opaque_dynamic_sql = true;
      return;
    }
    for (bool escapes : {true, false}) {
      Reader inner(escapes, db_, depth_ + 1);
      inner.feed(t.text);
      GuardFindings g = inner.finish();
      if (g.kill || g.show_processlist) g.in_dynamic_sql = true;
      f_.merge(g);
    }
  }

  // schema.table, or a bare table of the session's schema.
  void table_reference(const SqlToken& t) {
    if (!is_name(t)) return;
    std::string table = lower(t.text);
    bool qualified = prev_.kind == SqlToken::Punct && prev_.text == "." && is_name(prev2_);
    std::string schema = qualified ? lower(prev2_.text) : db_;
    if (lists_threads(schema, table) && f_.process_table.empty()) f_.process_table = schema + "." + table;
  }

  SqlScanner scanner_;
  std::string db_;
  int depth_;
  GuardFindings f_;
  SqlToken head_[4];
  SqlToken prev_, prev2_;
};

StatementGuard::StatementGuard(const std::string& db)
    : with_escapes_(std::make_unique<Reader>(true, db, 0)), without_escapes_(std::make_unique<Reader>(false, db, 0)) {}

StatementGuard::~StatementGuard() = default;

void StatementGuard::feed(std::string_view text) {
  with_escapes_->feed(text);
  without_escapes_->feed(text);
}

const GuardFindings& StatementGuard::finish() {
  findings_ = with_escapes_->finish();
  const GuardFindings& other = without_escapes_->finish();
  findings_.merge(other);
  findings_.statements = std::max(findings_.statements, other.statements);
  return findings_;
}

GuardFindings StatementGuard::scan(std::string_view text, const std::string& db) {
  StatementGuard g(db);
  g.feed(text);
  return g.finish();
}

GuardDecision judge(const GuardFindings& f, bool privileged, bool streamed, const std::string& user,
                    const std::string& host) {
  GuardDecision d;
  auto refuse = [&](const er::Error& e, const std::string& msg) {
    d.action = GuardDecision::Refuse;
    d.error = e;
    d.message = msg;
    return d;
  };
  auto unsupported = [&](const std::string& what) {
    return refuse(er::ER_NOT_SUPPORTED_YET, "This version of myrelay doesn't yet support '" + what + "'");
  };
  // The proxy runs KILL and SHOW PROCESSLIST itself, on its own sessions; one
  // it cannot take out of the text would run on the backend instead.
  if (f.kill) {
    if (f.in_dynamic_sql) return unsupported("KILL in prepared SQL text");
    if (f.statements > 1) return unsupported("KILL in a multi-statement; send it as a statement of its own");
    return unsupported(streamed ? "KILL longer than 64 KiB" : "this form of KILL");
  }
  if (f.show_processlist) {
    if (f.in_dynamic_sql) return unsupported("SHOW PROCESSLIST in prepared SQL text");
    return unsupported("SHOW PROCESSLIST in a multi-statement; send it as a statement of its own");
  }
  if (privileged) return d;
  if (!f.process_table.empty()) {
    std::string table = f.process_table.substr(f.process_table.find('.') + 1);
    return refuse(er::ER_TABLEACCESS_DENIED_ERROR,
                  "SELECT command denied to user '" + user + "'@'" + host + "' for table '" + table + "'");
  }
  if (f.opaque_dynamic_sql) return unsupported("prepared SQL text over 64 KiB");
  return d;
}

bool may_need_guard(std::string_view text) {
  static const char* const kWords[] = {"kill", "processlist", "threads", "session", "prepare", "immediate", "x$"};
  auto lower_at = [&](size_t i) { return i < text.size() ? char(text[i] | 0x20) : '\0'; };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ';') return true;
    if (c == '/' && i + 2 < text.size() && text[i + 1] == '*' && (text[i + 2] == '!' || lower_at(i + 2) == 'm'))
      return true;
    char lc = char(c | 0x20);
    for (const char* w : kWords) {
      if (lc != w[0]) continue;
      size_t n = strlen(w);
      size_t k = 1;
      while (k < n && lower_at(i + k) == w[k]) ++k;
      if (k == n) return true;
    }
  }
  return false;
}

}  // namespace myrelay::sql
