// Fuzzes everything that reads a client's SQL text: the proxy's own
// statements (parse_admin, parse_use, LIKE patterns), the statement guard
// that keeps KILL and the backend's process list away from the backend, the
// statement facts that decide whether a session can move, the read/write
// split's classifier, and the SQL scanner under them, fed whole and in
// random pieces under both readings of a backslash.  A client controls all
// of this text.
//
// Besides crashes, what the code promises: the scanner and the guard give
// the same result whatever the pieces (they see streamed statements in
// pieces), and the quick looks (may_need_guard, worth_scanning) never skip
// a text the full scan would act on.
//
// Input: the SQL text itself (a NUL splits off a LIKE pattern for
// like_match); the piece sizes come from a hash of the text.
#include <cstring>
#include <string>
#include <vector>

#include "control/session_filter.h"
#include "control/shm_table.h"
#include "control/sql_recognizer.h"
#include "control/sql_scanner.h"
#include "control/statement_guard.h"
#include "fuzz_common.h"
#include "routing/statement_route.h"
#include "session/statement_facts.h"

using namespace myrelay;
using namespace myrelay::sql;

namespace {

// Every token and statement end, in order.
struct Collect : SqlListener {
  std::string out;
  void on_token(const SqlToken& t) override {
    FUZZ_CHECK(t.text.size() <= SqlScanner::kMaxText);
    out += char('0' + t.kind);
    out += t.truncated ? '+' : ' ';
    out += std::to_string(t.index);
    out += ':';
    out += t.text;
    out += '\x01';
  }
  void on_statement_end(size_t tokens) override {
    out += "\x02" + std::to_string(tokens) + "\x02";
  }
};

// A small deterministic generator of piece sizes.
struct Pieces {
  uint64_t s;
  explicit Pieces(std::string_view text) : s(14695981039346656037ull) {
    for (char c : text) s = (s ^ uint8_t(c)) * 1099511628211ull;
    s |= 1;
  }
  size_t next(size_t max) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    // Mostly tiny pieces (they cut tokens, comments and lookahead apart).
    return 1 + ((s >> 8) & 1 ? s % 4 : s % max);
  }
};

std::string scan(std::string_view text, bool escapes, Pieces* pieces) {
  SqlScanner s(escapes);
  Collect c;
  if (!pieces) {
    s.feed(text, c);
  } else {
    for (size_t i = 0; i < text.size();) {
      size_t n = std::min(pieces->next(64), text.size() - i);
      s.feed(text.substr(i, n), c);
      i += n;
    }
  }
  s.finish(c);
  return c.out;
}

bool same(const GuardFindings& a, const GuardFindings& b) {
  return a.statements == b.statements && a.kill == b.kill && a.show_processlist == b.show_processlist &&
         a.in_dynamic_sql == b.in_dynamic_sql && a.process_table == b.process_table &&
         a.opaque_dynamic_sql == b.opaque_dynamic_sql;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  const std::string_view input = fuzz::view(data, size);

  // The proxy's own statements.
  AdminStatement a = parse_admin(input);
  if (a.kind == AdminStatement::Kind::Malformed) FUZZ_CHECK(!a.error.empty());
  if (a.has_like) (void)like_match("autocommit", a.like);
  // KILL PROXYSESSION WHERE: the conditions written back read the same, and
  // any session record can be matched against them (myrelayctl kill --where
  // parses the same text).
  SessionFilter filter;
  std::string filter_error;
  const SessionFilter* cond = nullptr;
  if (a.kind == AdminStatement::Kind::KillWhere || a.kind == AdminStatement::Kind::ExplainKillWhere) cond = &a.filter;
  if (!cond && parse_session_filter(input, filter, filter_error)) cond = &filter;
  if (cond) {
    SessionFilter again;
    std::string error;
    FUZZ_CHECK(parse_session_filter(cond->describe(), again, error));
    FUZZ_CHECK(again.describe() == cond->describe());
    shm::SessionRecord rec{};
    rec.in_use = 1;
    for (uint32_t state = 0; state < 6; ++state) {
      rec.state = state;
      rec.in_trans = uint8_t(state & 1);
      rec.has_db = uint8_t(state & 2);
      rec.last_active_us = rec.trans_started_us = int64_t(state) * 1000000;
      set_field(rec.user, input.substr(0, std::min<size_t>(input.size(), 8)));
      (void)cond->matches(rec, int64_t(state) * 7000000);
    }
  }
  std::string db;
  if (parse_use(input, db)) (void)db;
  (void)skip_space(input, 0);
  size_t z = input.find('\0');
  if (z != std::string_view::npos) {
    // SHOW PROXYSESSION VARIABLES LIKE 'pattern': a text and a pattern.
    (void)like_match(input.substr(0, z), input.substr(z + 1));
    (void)like_match(input.substr(z + 1), input.substr(0, z));
  }

  // The scanner: whole and in pieces, both escape modes.
  Pieces pieces(input);
  for (bool escapes : {true, false}) {
    std::string whole = scan(input, escapes, nullptr);
    FUZZ_CHECK(scan(input, escapes, &pieces) == whole);
  }

  // The guard: whole, in pieces, byte by byte (short texts).
  GuardFindings g = StatementGuard::scan(input, "test");
  {
    StatementGuard sg("test");
    for (size_t i = 0; i < input.size();) {
      size_t n = std::min(pieces.next(256), input.size() - i);
      sg.feed(input.substr(i, n));
      i += n;
    }
    FUZZ_CHECK(same(sg.finish(), g));
  }
  if (input.size() <= 512) {
    StatementGuard sg("test");
    for (char ch : input) sg.feed(std::string_view(&ch, 1));
    FUZZ_CHECK(same(sg.finish(), g));
  }
  for (bool privileged : {false, true}) {
    for (bool streamed : {false, true}) {
      GuardDecision d = judge(g, privileged, streamed, "app", "127.0.0.1");
      if (d.action == GuardDecision::Refuse) FUZZ_CHECK(!d.message.empty());
      // The quick look may skip the scan only where it finds nothing to refuse.
      if (!may_need_guard(input)) FUZZ_CHECK(d.action == GuardDecision::Forward);
    }
  }

  // What a statement leaves in the session; the quick look must not miss it.
  StatementFacts f = StatementFacts::of(input);
  if (!StatementFacts::worth_scanning(input)) FUZZ_CHECK(f.flags == 0 && f.collation.empty());

  // The read/write split.
  routing::StatementRoute r = routing::classify_statement(input);
  if (r.replica_safe) FUZZ_CHECK(r.select);
  return 0;
}
