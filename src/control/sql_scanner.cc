// The SQL scanner (see sql_scanner.h).
#include "control/sql_scanner.h"

namespace myrelay::sql {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
char upper(char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; }

// What a backslash sequence in a string stands for.
char unescape(char c) {
  switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case '0': return '\0';
    case 'b': return '\b';
    case 'Z': return '\032';
    default: return c;  // \' \" \\ \% \_ and the rest
  }
}

}  // namespace

void SqlScanner::feed(std::string_view text, SqlListener& l) {
  text_ = text;
  total_ = held_.size() + text.size();
  // The last 3 bytes wait for the next piece: "--", "/*!" and "/*M!" are
  // told apart only with what follows them.
  size_t end = total_ > 3 ? total_ - 3 : 0;
  size_t i = scan(0, end, l);
  std::string rest;
  for (size_t k = i; k < total_; ++k) rest += at(k);
  held_.swap(rest);
  text_ = {};
}

void SqlScanner::finish(SqlListener& l) {
  text_ = {};
  total_ = held_.size();
  scan(0, total_, l);
  held_.clear();
  if (state_ == State::Word || state_ == State::Number || state_ == State::Variable || state_ == State::Quoted) {
    if (state_ == State::Quoted) tok_.truncated = true;  // never closed
    emit(l);
  }
  state_ = State::Code;
  exec_depth_ = 0;
  end_statement(l);
}

size_t SqlScanner::scan(size_t i, size_t end, SqlListener& l) {
  while (i < end) {
    char c = at(i);
    switch (state_) {
      case State::LineComment:
        if (c == '\n') state_ = State::Code;
        ++i;
        break;
      case State::BlockComment:
        if (c == '*' && at(i + 1) == '/') {
          state_ = State::Code;
          i += 2;
        } else {
          ++i;
        }
        break;
      case State::Quoted:
        i = quoted(i, l);
        break;
      case State::Version:  // the server version an executable comment names
        if (is_digit(c))
          ++i;
        else
          state_ = State::Code;
        break;
      case State::Word:
      case State::Number:
      case State::Variable: {
        bool more = state_ == State::Word     ? is_word_char(c)
                    : state_ == State::Number ? (is_word_char(c) || c == '.')
                                              : (is_word_char(c) || c == '.' || c == '@');
        if (!more) {
          emit(l);
          state_ = State::Code;
          break;  // the same character again, as code
        }
        append(state_ == State::Word ? upper(c) : c);
        ++i;
        break;
      }
      case State::Code:
        i = code(i, l);
        break;
    }
  }
  return i;
}

size_t SqlScanner::code(size_t i, SqlListener& l) {
  char c = at(i);
  if (is_space(c)) return i + 1;
  if (c == '#') {
    state_ = State::LineComment;
    return i + 1;
  }
  if (c == '-' && at(i + 1) == '-') {
    char after = at(i + 2);
    if (after == 0 || is_space(after) || static_cast<unsigned char>(after) < 0x20) {
      state_ = State::LineComment;
      return i + 2;
    }
  }
  if (c == '/' && at(i + 1) == '*') {
    // An executable comment's text is code; its version number is not.
    size_t body = at(i + 2) == '!' ? i + 3 : (at(i + 2) == 'M' && at(i + 3) == '!') ? i + 4 : 0;
    if (!body) {
      state_ = State::BlockComment;
      return i + 2;
    }
    ++exec_depth_;
    state_ = State::Version;
    return body;
  }
  if (c == '*' && at(i + 1) == '/' && exec_depth_ > 0) {
    --exec_depth_;
    return i + 2;
  }
  if (c == ';') {
    end_statement(l);
    return i + 1;
  }
  if (c == '\'' || c == '"' || c == '`') {
    start(c == '`' ? SqlToken::QuotedName : SqlToken::String);
    quote_ = c;
    state_ = State::Quoted;
    return i + 1;
  }
  if (c == '@') {
    start(SqlToken::Variable);
    append(c);
    state_ = State::Variable;
    return i + 1;
  }
  if (is_digit(c)) {
    start(SqlToken::Number);
    state_ = State::Number;
    return i;
  }
  if (is_word_char(c)) {
    start(SqlToken::Word);
    state_ = State::Word;
    return i;
  }
  start(SqlToken::Punct);
  append(c);
  emit(l);
  return i + 1;
}

size_t SqlScanner::quoted(size_t i, SqlListener& l) {
  char c = at(i);
  if (c == '\\' && escapes_ && quote_ != '`') {
    append(unescape(at(i + 1)));
    return i + 2;
  }
  if (c != quote_) {
    append(c);
    return i + 1;
  }
  if (at(i + 1) == quote_) {  // a doubled quote stands for itself
    append(c);
    return i + 2;
  }
  emit(l);
  state_ = State::Code;
  return i + 1;
}

void SqlScanner::start(SqlToken::Kind kind) {
  tok_.kind = kind;
  tok_.text.clear();
  tok_.truncated = false;
}

void SqlScanner::append(char c) {
  if (tok_.text.size() < kMaxText)
    tok_.text += c;
  else
    tok_.truncated = true;
}

void SqlScanner::emit(SqlListener& l) {
  tok_.index = tokens_++;
  l.on_token(tok_);
}

void SqlScanner::end_statement(SqlListener& l) {
  if (tokens_ > 0) l.on_statement_end(tokens_);
  tokens_ = 0;
}

}  // namespace myrelay::sql
