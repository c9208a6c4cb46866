// The proxy's SQL recogniser (see sql_recognizer.h).
#include "control/sql_recognizer.h"

#include <cctype>
#include <cstdint>

namespace myrelay::sql {

size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[pos]);
    if (isspace(c)) {
      ++pos;
    } else if (c == '/' && pos + 2 < s.size() && s[pos + 1] == '*' &&
               (s[pos + 2] == '!' || (s[pos + 2] == 'M' && pos + 3 < s.size() && s[pos + 3] == '!'))) {
      // An executable comment: the server runs its text, so it is code
      // here too.  Only its opener (and version number) is skipped.
      pos += s[pos + 2] == '!' ? 3 : 4;
      while (pos < s.size() && isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    } else if (c == '*' && pos + 1 < s.size() && s[pos + 1] == '/') {
      pos += 2;  // the end of an executable comment
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

// A tiny tokenizer over the statement: words, numbers, quoted strings, ';'.
namespace {

struct Token {
  enum Type { End, Word, Number, String, Semicolon, Other } type = End;
  std::string text;  // words upper-cased; strings unquoted
  std::string raw;   // words as written
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    pos_ = skip_space(s_, pos_);
    Token t;
    if (pos_ >= s_.size()) return t;
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (isalpha(c) || c == '_') {
      size_t start = pos_;
      while (pos_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '$'))
        ++pos_;
      t.type = Token::Word;
      t.raw = std::string(s_.substr(start, pos_ - start));
      for (size_t i = start; i < pos_; ++i) t.text += char(toupper(static_cast<unsigned char>(s_[i])));
      return t;
    }
    if (isdigit(c)) {
      size_t start = pos_;
      while (pos_ < s_.size() && isalnum(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      t.type = Token::Number;
      t.text = std::string(s_.substr(start, pos_ - start));
      return t;
    }
    if (c == '\'' || c == '"') {
      char quote = char(c);
      ++pos_;
      t.type = Token::String;
      while (pos_ < s_.size()) {
        char ch = s_[pos_++];
        if (ch == '\\' && pos_ < s_.size()) {
          char e = s_[pos_++];
          // Keep \\% and \\_ escaped for LIKE; undo the others.
          if (e == '%' || e == '_') t.text += '\\';
          t.text += e;
        } else if (ch == quote) {
          if (pos_ < s_.size() && s_[pos_] == quote) {
            t.text += quote;
            ++pos_;
          } else {
            return t;
          }
        } else {
          t.text += ch;
        }
      }
      t.type = Token::Other;  // unterminated
      return t;
    }
    if (c == ';') {
      ++pos_;
      t.type = Token::Semicolon;
      return t;
    }
    ++pos_;
    t.type = Token::Other;
    t.text = std::string(1, char(c));
    return t;
  }

  Token peek() {
    size_t save = pos_;
    Token t = next();
    pos_ = save;
    return t;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool parse_number(const Token& t, uint64_t& out) {
  if (t.type != Token::Number || t.text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : t.text) {
    if (!isdigit(static_cast<unsigned char>(c))) return false;
    uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// After the statement: nothing, or one ';' and nothing.
bool at_statement_end(Lexer& lx) {
  Token t = lx.next();
  if (t.type == Token::Semicolon) t = lx.next();
  return t.type == Token::End;
}

AdminStatement malformed(const std::string& msg) {
  AdminStatement st;
  st.kind = AdminStatement::Kind::Malformed;
  st.error = msg;
  return st;
}

// KILL [CONNECTION | QUERY] USER name[@host], after USER.
AdminStatement parse_kill_user(Lexer& lx, AdminStatement st) {
  st.kind = st.kind == AdminStatement::Kind::KillQuery ? AdminStatement::Kind::KillQueryUser
                                                        : AdminStatement::Kind::KillUser;
  Token name = lx.next();
  if (name.type != Token::Word && name.type != Token::String)
    return malformed("expected a user name after KILL USER, as in KILL USER 'app'");
  st.user = name.text;
  if (name.type == Token::Word) {  // unquoted: as written, not upper-cased
    st.user = name.raw;
  }
  Token t = lx.peek();
  if (t.type == Token::Other && t.text == "@") {
    lx.next();
    Token host = lx.next();
    if (host.type != Token::Word && host.type != Token::String && host.type != Token::Number)
      return malformed("expected a host after '@' in KILL USER");
    st.host = host.type == Token::Word ? host.raw : host.text;
  }
  if (!at_statement_end(lx)) return malformed("expected KILL [CONNECTION | QUERY] USER name");
  return st;
}

// How a token reads in an error message.
std::string shown(const Token& t) {
  if (t.type == Token::End || t.type == Token::Semicolon) return "the end of the statement";
  if (t.type == Token::Word) return "'" + t.raw + "'";
  return "'" + t.text + "'";
}

bool is_other(const Token& t, const char* text) { return t.type == Token::Other && t.text == text; }
bool is_word(const Token& t, const char* text) { return t.type == Token::Word && t.text == text; }

// A condition's operator: = != <> < <= > >= LIKE, NOT LIKE, IS [NOT] NULL.
bool parse_operator(Lexer& lx, SessionCondition& c, std::string& error) {
  using Op = SessionCondition::Op;
  const std::string field = SessionCondition::field_name(c.field);
  Token t = lx.next();
  if (is_other(t, "=")) {
    c.op = Op::Eq;
  } else if (is_other(t, "!") && is_other(lx.peek(), "=")) {
    lx.next();
    c.op = Op::Ne;
  } else if (is_other(t, "<")) {
    c.op = Op::Lt;
    if (is_other(lx.peek(), "=")) c.op = Op::Le;
    if (is_other(lx.peek(), ">")) c.op = Op::Ne;
    if (c.op != Op::Lt) lx.next();
  } else if (is_other(t, ">")) {
    c.op = Op::Gt;
    if (is_other(lx.peek(), "=")) {
      lx.next();
      c.op = Op::Ge;
    }
  } else if (is_word(t, "LIKE")) {
    c.op = Op::Like;
  } else if (is_word(t, "NOT") && is_word(lx.peek(), "LIKE")) {
    lx.next();
    c.op = Op::NotLike;
  } else if (is_word(t, "IS")) {
    c.op = Op::IsNull;
    if (is_word(lx.peek(), "NOT")) {
      lx.next();
      c.op = Op::IsNotNull;
    }
    if (!is_word(lx.next(), "NULL")) {
      error = "expected NULL or NOT NULL after " + field + " IS";
      return false;
    }
  } else {
    error = "expected an operator after " + field + ", not " + shown(t);
    return false;
  }
  bool numeric = SessionCondition::is_numeric(c.field);
  bool ok = numeric ? (c.op != Op::Like && c.op != Op::NotLike && c.op != Op::IsNull && c.op != Op::IsNotNull)
                    : (c.op == Op::Eq || c.op == Op::Ne || c.op == Op::Like || c.op == Op::NotLike ||
                       ((c.op == Op::IsNull || c.op == Op::IsNotNull) && c.field == SessionCondition::Field::Db));
  if (!ok) {
    error = numeric ? field + " takes =, !=, <, <=, > or >="
                    : field + " takes =, != or LIKE" + (c.field == SessionCondition::Field::Db ? ", or IS [NOT] NULL" : "");
    return false;
  }
  return true;
}

// cond [AND cond]... [LIMIT n]
bool parse_conditions(Lexer& lx, SessionFilter& f, std::string& error) {
  for (;;) {
    Token name = lx.next();
    SessionCondition c;
    if (name.type != Token::Word || !SessionCondition::field_by_name(name.raw, c.field)) {
      error = std::string("expected a field (") + SessionCondition::field_list() + ") " +
              (f.conditions.empty() ? "after WHERE" : "after AND") + ", not " + shown(name);
      return false;
    }
    if (!parse_operator(lx, c, error)) return false;
    const std::string field = SessionCondition::field_name(c.field);
    if (c.op != SessionCondition::Op::IsNull && c.op != SessionCondition::Op::IsNotNull) {
      Token v = lx.next();
      if (SessionCondition::is_numeric(c.field)) {
        uint64_t n = 0;
        if (c.field == SessionCondition::Field::InTrans && (is_word(v, "TRUE") || is_word(v, "FALSE"))) {
          n = is_word(v, "TRUE") ? 1 : 0;
        } else if (!parse_number(v, n) || n > uint64_t(INT64_MAX)) {
          error = "expected a whole number of " + std::string(c.field == SessionCondition::Field::InTrans ? "0 or 1"
                                                                                                          : "seconds") +
                  " after " + field + ", not " + shown(v);
          return false;
        }
        c.number = int64_t(n);
      } else {
        if (v.type != Token::String) {
          error = "expected a quoted string after " + field + ", not " + shown(v);
          return false;
        }
        c.text = v.text;
      }
    }
    f.conditions.push_back(std::move(c));
    if (!is_word(lx.peek(), "AND")) break;
    lx.next();
  }
  if (is_word(lx.peek(), "LIMIT")) {
    lx.next();
    Token n = lx.next();
    if (!parse_number(n, f.limit)) {
      error = "expected a number after LIMIT, not " + shown(n);
      return false;
    }
    f.has_limit = true;
  }
  return true;
}

// [WHEN IDLE [TIMEOUT s]]
bool parse_when_idle(Lexer& lx, AdminStatement& st, std::string& error) {
  if (!is_word(lx.peek(), "WHEN")) return true;
  lx.next();
  Token t = lx.next();
  if (!is_word(t, "IDLE")) {
    error = "expected IDLE after WHEN, not " + shown(t);
    return false;
  }
  st.when_idle = true;
  if (is_word(lx.peek(), "TIMEOUT")) {
    lx.next();
    Token n = lx.next();
    uint64_t s = 0;
    if (!parse_number(n, s) || s < 1 || s > 31536000) {
      error = "expected a number of seconds (1 to 31536000) after TIMEOUT, not " + shown(n);
      return false;
    }
    st.idle_timeout_s = uint32_t(s);
  }
  return true;
}

// KILL PROXYSESSION WHERE ..., after WHERE.
AdminStatement parse_kill_where(Lexer& lx, AdminStatement st) {
  std::string error;
  if (!parse_conditions(lx, st.filter, error) || !parse_when_idle(lx, st, error)) return malformed(error);
  Token t = lx.peek();
  if (!at_statement_end(lx))
    return malformed("expected AND, LIMIT n, WHEN IDLE or the end of the statement, not " + shown(t));
  return st;
}

}  // namespace

bool parse_session_filter(std::string_view text, SessionFilter& out, std::string& error) {
  Lexer lx(text);
  SessionFilter f;
  if (!parse_conditions(lx, f, error)) return false;
  Token t = lx.peek();
  if (!at_statement_end(lx)) {
    error = "expected AND, LIMIT n or the end of the condition, not " + shown(t);
    return false;
  }
  out = std::move(f);
  return true;
}

// An optional LIKE 'pattern' next; false (what was expected in st.error)
// when LIKE is not followed by a quoted pattern.
static bool parse_like(Lexer& lx, AdminStatement& st, const char* expected) {
  if (!is_word(lx.peek(), "LIKE")) return true;
  lx.next();
  Token pat = lx.next();
  if (pat.type != Token::String) {
    st.error = std::string("expected ") + expected;
    return false;
  }
  st.has_like = true;
  st.like = pat.text;
  return true;
}

AdminStatement parse_admin(std::string_view sql) {
  Lexer lx(sql);
  Token first = lx.next();
  AdminStatement st;
  if (first.type != Token::Word) return st;
  if (first.text == "SHOW") {
    Token what = lx.next();
    if (what.type == Token::Word && what.text == "WARNINGS") {
      if (lx.peek().type == Token::Word && lx.peek().text == "LIMIT") {
        lx.next();
        if (lx.next().type != Token::Number) return st;
      }
      if (at_statement_end(lx)) st.kind = AdminStatement::Kind::ShowWarnings;
      return st;
    }
    if (what.type == Token::Word && what.text == "FULL") what = lx.next();
    if (what.type == Token::Word && what.text == "PROCESSLIST") {
      // Answered from the proxy's own sessions, as ODP does: the backend's
      // list would show every tenant's threads of a shared account.
      if (!at_statement_end(lx)) return malformed("nothing may follow SHOW [FULL] PROCESSLIST but ';'");
      st.kind = AdminStatement::Kind::ShowProcesslist;
      return st;
    }
    if (what.type == Token::Word && what.text == "PROXYKILLS") {
      if (is_word(lx.peek(), "LIMIT")) {
        lx.next();
        Token n = lx.next();
        if (!parse_number(n, st.limit)) return malformed("expected a number after SHOW PROXYKILLS LIMIT, not " + shown(n));
        st.has_limit = true;
      }
      if (!at_statement_end(lx)) return malformed("expected SHOW PROXYKILLS [LIMIT n]");
      st.kind = AdminStatement::Kind::ShowKills;
      return st;
    }
    if (what.type == Token::Word && what.text == "PROXYCONGESTION") {
      Token name = lx.peek();
      if (name.type == Token::Word || name.type == Token::String) {  // main, 'main-2'
        lx.next();
        st.cluster = name.type == Token::Word ? name.raw : name.text;
      }
      if (!at_statement_end(lx))
        return malformed("expected a cluster name or the end of the statement after SHOW PROXYCONGESTION");
      st.kind = AdminStatement::Kind::ShowCongestion;
      return st;
    }
    // SHOW GLOBAL PROXYSESSION: every proxy of the fleet's; any other SHOW
    // GLOBAL (STATUS, VARIABLES) is the backend's.
    if (is_word(what, "GLOBAL") && is_word(lx.peek(), "PROXYSESSION")) {
      st.global = true;
      what = lx.next();
    }
    if (what.type != Token::Word || what.text != "PROXYSESSION") return st;
    Token t = lx.peek();
    if (t.type == Token::End || t.type == Token::Semicolon || is_word(t, "LIKE")) {
      if (!parse_like(lx, st, "a quoted user name pattern after LIKE, as in LIKE 'app%'")) return malformed(st.error);
      if (!at_statement_end(lx))
        return malformed(std::string("nothing may follow SHOW ") + (st.global ? "GLOBAL " : "") +
                         "PROXYSESSION [LIKE 'pattern'] but ';'");
      st.kind = AdminStatement::Kind::ShowSessions;
      return st;
    }
    if (st.global) return malformed("SHOW GLOBAL PROXYSESSION takes only [LIKE 'pattern']");
    t = lx.next();
    if (t.type != Token::Word || (t.text != "ATTRIBUTE" && t.text != "VARIABLES"))
      return malformed("expected ATTRIBUTE, VARIABLES, LIKE or the end of the statement after SHOW PROXYSESSION");
    const std::string form = t.text;
    st.kind = form == "ATTRIBUTE" ? AdminStatement::Kind::ShowAttributes : AdminStatement::Kind::ShowVariables;
    t = lx.peek();
    if (t.type == Token::Number) {
      lx.next();
      if (!parse_number(t, st.id)) return malformed("'" + t.text + "' is not a valid session id");
      st.has_id = true;
      t = lx.peek();
    }
    if (!parse_like(lx, st, "a quoted pattern after LIKE, as in LIKE 'ss%'")) return malformed(st.error);
    if (!at_statement_end(lx))
      return malformed("expected SHOW PROXYSESSION " + form + " [id] [LIKE 'pattern']");
    return st;
  }
  if (first.text == "EXPLAIN") {
    // EXPLAIN KILL PROXYSESSION WHERE ...; any other EXPLAIN is the backend's.
    if (!is_word(lx.peek(), "KILL")) return st;
    lx.next();
    if (is_word(lx.peek(), "GLOBAL")) {
      lx.next();
      st.global = true;
    }
    if (!is_word(lx.next(), "PROXYSESSION") || !is_word(lx.next(), "WHERE"))
      return malformed("EXPLAIN KILL takes [GLOBAL] PROXYSESSION WHERE cond [AND cond]... [LIMIT n]");
    st.kind = AdminStatement::Kind::ExplainKillWhere;
    return parse_kill_where(lx, st);
  }
  if (first.text == "KILL") {
    Token t = lx.next();
    if (is_word(t, "GLOBAL")) {
      // KILL GLOBAL PROXYSESSION WHERE ...: across the fleet.  An id needs no
      // GLOBAL: its proxy_id says which proxy holds it.
      if (!is_word(lx.next(), "PROXYSESSION") || !is_word(lx.next(), "WHERE"))
        return malformed("KILL GLOBAL takes PROXYSESSION WHERE cond [AND cond]... [LIMIT n] [WHEN IDLE [TIMEOUT s]]");
      st.global = true;
      st.kind = AdminStatement::Kind::KillWhere;
      return parse_kill_where(lx, st);
    }
    if (t.type == Token::Word && t.text == "PROXYSESSION") {
      if (is_word(lx.peek(), "WHERE")) {
        lx.next();
        st.kind = AdminStatement::Kind::KillWhere;
        return parse_kill_where(lx, st);
      }
      st.kind = AdminStatement::Kind::KillProxySession;
      Token id = lx.next();
      if (id.type == Token::End || id.type == Token::Semicolon)
        return malformed("expected a session id (cs_id or connection_id) after KILL PROXYSESSION");
      if (!parse_number(id, st.id)) return malformed("'" + id.text + "' is not a valid session id");
      st.has_id = true;
      Token ss = lx.peek();
      if (ss.type == Token::Number) {
        lx.next();
        if (!parse_number(ss, st.ss_id)) return malformed("'" + ss.text + "' is not a valid ss_id");
        st.has_ss_id = true;
      }
      std::string error;
      if (!st.has_ss_id && !parse_when_idle(lx, st, error)) return malformed(error);
      if (!at_statement_end(lx))
        return malformed(st.has_ss_id ? "expected KILL PROXYSESSION id [ss_id]"
                                      : "expected KILL PROXYSESSION id [ss_id | WHEN IDLE [TIMEOUT s]]");
      return st;
    }
    // MariaDB's KILL [HARD | SOFT] [CONNECTION | QUERY] thread_id
    if (t.type == Token::Word && (t.text == "HARD" || t.text == "SOFT")) t = lx.next();
    st.kind = AdminStatement::Kind::KillConnection;
    if (t.type == Token::Word && (t.text == "CONNECTION" || t.text == "QUERY")) {
      if (t.text == "QUERY") st.kind = AdminStatement::Kind::KillQuery;
      Token nt = lx.peek();
      if (st.kind == AdminStatement::Kind::KillQuery && nt.type == Token::Word && nt.text == "ID")
        return malformed("KILL QUERY ID is not supported through myrelay: use KILL QUERY with the session's Id");
      t = lx.next();
    }
    if (t.type == Token::Word && t.text == "USER") return parse_kill_user(lx, st);
    if (t.type == Token::End || t.type == Token::Semicolon)
      return malformed("expected a session id after KILL");
    if (!parse_number(t, st.id))
      return malformed("KILL through myrelay takes a numeric id (cs_id or connection_id), not '" + t.text + "'");
    st.has_id = true;
    if (!at_statement_end(lx)) return malformed("expected KILL [CONNECTION | QUERY] id");
    return st;
  }
  return st;
}

bool like_match(std::string_view text, std::string_view pat) {
  // Iterative matcher with backtracking on the last '%'.
  size_t t = 0, p = 0, star_p = std::string_view::npos, star_t = 0;
  auto lower = [](char c) { return char(tolower(static_cast<unsigned char>(c))); };
  while (t < text.size()) {
    if (p < pat.size() && pat[p] == '%') {
      star_p = p++;
      star_t = t;
      continue;
    }
    if (p < pat.size()) {
      char pc = pat[p];
      bool escaped = false;
      if (pc == '\\' && p + 1 < pat.size()) {
        pc = pat[p + 1];
        escaped = true;
      }
      if ((!escaped && pc == '_') || lower(pc) == lower(text[t])) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pat.size() && pat[p] == '%') ++p;
  return p == pat.size();
}

}  // namespace myrelay::sql
