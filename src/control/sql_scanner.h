// Splits SQL text into statements and tokens the way the server does, so the
// proxy sees every statement a COM_QUERY holds, not only the first: ';'
// ends a statement, comments are skipped, and executable comments (/*! ...*/,
// /*!50100 ...*/, /*M! ...*/) are code, as they are for MariaDB.  It is fed in
// pieces (a long command streams through the proxy and is never held whole)
// and keeps only a few bytes of state between them.
//
// Whether a backslash escapes a quote depends on the session's sql_mode
// (NO_BACKSLASH_ESCAPES); a caller that does not know it scans twice, once
// each way, and trusts neither alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace myrelay::sql {

struct SqlToken {
  enum Kind {
    Word,        // a keyword or an unquoted identifier; upper-cased
    QuotedName,  // `identifier`
    String,      // '...' or "..." (an identifier under ANSI_QUOTES); escapes undone
    Number,
    Variable,    // @name or @@name, with its @s
    Punct,       // one character: . , ( ) = and the like
  };
  Kind kind = Punct;
  std::string text;        // at most kMaxText bytes of it
  bool truncated = false;  // the token was longer than kMaxText
  size_t index = 0;        // its place in its statement, from 0
};

class SqlListener {
 public:
  virtual ~SqlListener() = default;
  virtual void on_token(const SqlToken& t) = 0;
  // A statement ended (';' or the end of the text) after `tokens` tokens.
  virtual void on_statement_end(size_t tokens) = 0;
};

class SqlScanner {
 public:
  static constexpr size_t kMaxText = 64 * 1024;

  explicit SqlScanner(bool backslash_escapes) : escapes_(backslash_escapes) {}

  void feed(std::string_view text, SqlListener& l);
  // The text is complete: ends the last token and statement.
  void finish(SqlListener& l);

 private:
  enum class State { Code, Word, Number, Variable, LineComment, BlockComment, Quoted, Version };

  // The next bytes, across what was held back from the last piece (at most
  // 3 bytes, for lookahead) and the new piece.
  char at(size_t i) const { return i < held_.size() ? held_[i] : i - held_.size() < text_.size() ? text_[i - held_.size()] : 0; }
  size_t scan(size_t i, size_t end, SqlListener& l);
  size_t code(size_t i, SqlListener& l);
  size_t quoted(size_t i, SqlListener& l);
  void emit(SqlListener& l);
  void end_statement(SqlListener& l);
  void start(SqlToken::Kind kind);
  void append(char c);

  bool escapes_;
  State state_ = State::Code;
  char quote_ = 0;  // the quote of a Quoted token
  int exec_depth_ = 0;  // executable comments open
  SqlToken tok_;
  size_t tokens_ = 0;  // in the current statement
  std::string held_;    // bytes kept back for lookahead
  std::string_view text_;
  size_t total_ = 0;    // held_ + text_, during feed
};

}  // namespace myrelay::sql
