// The SQL scanner and the statement guard: every form in which a KILL or the
// backend's process list can hide in a statement text (issue 17, defect 3),
// fed whole, byte by byte, and across the 16 MiB packet boundary.
#include <cppunit/extensions/HelperMacros.h>
#include <event2/buffer.h>

#include <string>
#include <vector>

#include "control/sql_recognizer.h"
#include "control/sql_scanner.h"
#include "control/statement_guard.h"
#include "protocol/codec.h"
#include "session/streamed_statement.h"

using namespace myrelay;
using namespace myrelay::sql;

namespace {

// The statements a scanner sees: their tokens, space-separated.
struct Collect : SqlListener {
  std::vector<std::string> statements;
  std::string cur;
  void on_token(const SqlToken& t) override {
    if (!cur.empty()) cur += ' ';
    cur += t.kind == SqlToken::String ? "'" + t.text + "'" : t.text;
  }
  void on_statement_end(size_t) override {
    statements.push_back(cur);
    cur.clear();
  }
};

std::vector<std::string> split(const std::string& text, bool escapes, size_t piece = 0) {
  SqlScanner s(escapes);
  Collect c;
  if (piece == 0) {
    s.feed(text, c);
  } else {
    for (size_t i = 0; i < text.size(); i += piece) s.feed(std::string_view(text).substr(i, piece), c);
  }
  s.finish(c);
  return c.statements;
}

GuardFindings scan(const std::string& text, const std::string& db = "test") {
  GuardFindings whole = StatementGuard::scan(text, db);
  // Byte by byte, the same.
  StatementGuard g(db);
  for (char ch : text) g.feed(std::string_view(&ch, 1));
  GuardFindings bytes = g.finish();
  CPPUNIT_ASSERT_EQUAL(whole.kill, bytes.kill);
  CPPUNIT_ASSERT_EQUAL(whole.show_processlist, bytes.show_processlist);
  CPPUNIT_ASSERT_EQUAL(whole.process_table, bytes.process_table);
  CPPUNIT_ASSERT_EQUAL(whole.statements, bytes.statements);
  return whole;
}

bool kills(const std::string& text) { return scan(text).kill; }

}  // namespace

class StatementGuardTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StatementGuardTest);
  CPPUNIT_TEST(scanner_splits_as_the_server);
  CPPUNIT_TEST(kill_in_every_form);
  CPPUNIT_TEST(no_kill_where_there_is_none);
  CPPUNIT_TEST(backslash_read_both_ways);
  CPPUNIT_TEST(prepared_text_is_looked_into);
  CPPUNIT_TEST(process_tables);
  CPPUNIT_TEST(judge_decisions);
  CPPUNIT_TEST(quick_look);
  CPPUNIT_TEST(kill_across_a_16mib_chunk_boundary);
  CPPUNIT_TEST(recognizer_takes_every_kill);
  CPPUNIT_TEST_SUITE_END();

 public:
  void scanner_splits_as_the_server() {
    std::vector<std::string> want = {"SELECT 1", "SELECT 'a;b' FROM T", "KILL 5"};
    std::string text = "select 1; select 'a;b' from t -- trailing; comment\n;/*!kill*/ 5";
    CPPUNIT_ASSERT(split(text, true) == want);
    for (size_t piece : {1, 2, 3, 5, 7}) CPPUNIT_ASSERT(split(text, true, piece) == want);
    // Doubled quotes, backquoted names, variables, numbers.
    auto v = split("SELECT 'it''s', `a``b`, @x, @@session.sql_mode, 1.5e3", true);
    CPPUNIT_ASSERT_EQUAL(std::string("SELECT 'it's' , a`b , @x , @@session.sql_mode , 1.5e3"), v.at(0));
    // "--" without a space after it is two minus signs.
    CPPUNIT_ASSERT_EQUAL(size_t(2), split("SELECT 1--1; SELECT 2", true).size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), split("SELECT 1-- ; SELECT 2", true).size());
  }

  void kill_in_every_form() {
    CPPUNIT_ASSERT(kills("KILL 5"));
    CPPUNIT_ASSERT(kills("kill query 5"));
    CPPUNIT_ASSERT(kills("/*!KILL QUERY 5*/"));
    CPPUNIT_ASSERT(kills("/*!50000 KILL 5 */"));
    CPPUNIT_ASSERT(kills("/*M!100000 KILL 5*/"));
    CPPUNIT_ASSERT(kills("/*!*/ KILL 5"));
    CPPUNIT_ASSERT(kills("SELECT 1; KILL 5"));
    CPPUNIT_ASSERT(kills("SELECT 1;/*!KILL 5*/"));
    CPPUNIT_ASSERT(kills("# comment\nKILL 5"));
    CPPUNIT_ASSERT(kills("-- comment\n  KILL 5"));
    CPPUNIT_ASSERT(kills("/* comment */ KILL USER relapp"));
    CPPUNIT_ASSERT(kills("SELECT 1--x; KILL 5"));
    CPPUNIT_ASSERT(kills(std::string(70000, ' ') + "KILL 5"));
    CPPUNIT_ASSERT_EQUAL(size_t(2), scan("SELECT 1; KILL 5").statements);
  }

  void no_kill_where_there_is_none() {
    CPPUNIT_ASSERT(!kills("SELECT 'KILL 5'"));
    CPPUNIT_ASSERT(!kills("SELECT 1 -- ; KILL 5"));
    CPPUNIT_ASSERT(!kills("SELECT 1 # ; KILL 5"));
    CPPUNIT_ASSERT(!kills("/* KILL 5 */ SELECT 1"));
    CPPUNIT_ASSERT(!kills("SELECT kill FROM t"));
    CPPUNIT_ASSERT(!kills("SELECT `a;KILL 5` FROM t"));
    CPPUNIT_ASSERT(!kills("INSERT INTO t VALUES ('x'); SELECT 1"));
  }

  // Under NO_BACKSLASH_ESCAPES the string ends at the backslash and the KILL
  // runs; with escapes it is inside the string.  The guard reads both ways.
  void backslash_read_both_ways() {
    std::string text = "SELECT 'a\\'; KILL 5; -- '";
    CPPUNIT_ASSERT_EQUAL(size_t(1), split(text, true).size());
    CPPUNIT_ASSERT_EQUAL(size_t(3), split(text, false).size() + 1);  // the comment leaves no statement
    CPPUNIT_ASSERT(kills(text));
  }

  void prepared_text_is_looked_into() {
    GuardFindings f = scan("PREPARE s FROM 'KILL 5'");
    CPPUNIT_ASSERT(f.kill && f.in_dynamic_sql);
    CPPUNIT_ASSERT(scan("EXECUTE IMMEDIATE 'KILL QUERY 5'").kill);
    CPPUNIT_ASSERT(scan("PREPARE s FROM \"/*!KILL 5*/\"").kill);
    CPPUNIT_ASSERT(scan("PREPARE s FROM 'SELECT 1; KILL 5'").kill);
    CPPUNIT_ASSERT(!scan("PREPARE s FROM 'SELECT ''KILL 5'''").kill);
    CPPUNIT_ASSERT_EQUAL(std::string("information_schema.processlist"),
                         scan("PREPARE s FROM 'SELECT * FROM information_schema.processlist'").process_table);
    CPPUNIT_ASSERT(scan("PREPARE s FROM 'SHOW PROCESSLIST'").show_processlist);
    // A text the guard cannot see whole.
    CPPUNIT_ASSERT(scan("PREPARE s FROM '" + std::string(70000, ' ') + "SELECT 1'").opaque_dynamic_sql);
  }

  void process_tables() {
    CPPUNIT_ASSERT_EQUAL(std::string("information_schema.processlist"),
                         scan("SELECT * FROM information_schema.PROCESSLIST").process_table);
    CPPUNIT_ASSERT_EQUAL(std::string("information_schema.processlist"),
                         scan("SELECT id FROM `information_schema` . `processlist` WHERE 1").process_table);
    CPPUNIT_ASSERT_EQUAL(std::string("performance_schema.threads"),
                         scan("select * from performance_schema.threads").process_table);
    CPPUNIT_ASSERT_EQUAL(std::string("sys.session"), scan("SELECT * FROM sys.session").process_table);
    CPPUNIT_ASSERT_EQUAL(std::string("information_schema.processlist"),
                         scan("USE information_schema; SELECT * FROM processlist").process_table);
    CPPUNIT_ASSERT_EQUAL(std::string("information_schema.processlist"),
                         scan("SELECT * FROM processlist", "information_schema").process_table);
    CPPUNIT_ASSERT(scan("SELECT * FROM processlist").process_table.empty());  // test.processlist
    CPPUNIT_ASSERT(scan("SELECT processlist FROM t").process_table.empty());
    CPPUNIT_ASSERT(scan("SHOW PROCESSLIST; SELECT 1").show_processlist);
    CPPUNIT_ASSERT(scan("SHOW FULL PROCESSLIST").show_processlist);
    CPPUNIT_ASSERT(!scan("SELECT 1; SHOW TABLES").show_processlist);
  }

  void judge_decisions() {
    auto decide = [](const std::string& text, bool privileged, bool streamed = false) {
      return judge(StatementGuard::scan(text, "test"), privileged, streamed, "bob", "10.0.0.1");
    };
    GuardDecision d = decide("SELECT 1; KILL 5", true);
    CPPUNIT_ASSERT(d.action == GuardDecision::Refuse);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1235), d.error.code);
    CPPUNIT_ASSERT(d.message.find("multi-statement") != std::string::npos);
    CPPUNIT_ASSERT(decide("PREPARE s FROM 'KILL 5'", true).action == GuardDecision::Refuse);
    CPPUNIT_ASSERT(decide(std::string(70000, ' ') + "KILL 5", false, true).message.find("64 KiB") != std::string::npos);
    d = decide("SELECT * FROM information_schema.processlist", false);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1142), d.error.code);
    CPPUNIT_ASSERT_EQUAL(std::string("SELECT command denied to user 'bob'@'10.0.0.1' for table 'processlist'"), d.message);
    CPPUNIT_ASSERT(decide("SELECT * FROM information_schema.processlist", true).action == GuardDecision::Forward);
    CPPUNIT_ASSERT(decide("SELECT 1; SELECT 2", false).action == GuardDecision::Forward);
    CPPUNIT_ASSERT(decide("SHOW PROCESSLIST; SELECT 2", true).action == GuardDecision::Refuse);
  }

  void quick_look() {
    CPPUNIT_ASSERT(!may_need_guard("SELECT c FROM sbtest1 WHERE id=5"));
    CPPUNIT_ASSERT(!may_need_guard("INSERT INTO t VALUES (1, 'x')"));
    CPPUNIT_ASSERT(may_need_guard("SELECT 1; SELECT 2"));
    CPPUNIT_ASSERT(may_need_guard("/*!KILL 5*/"));
    CPPUNIT_ASSERT(may_need_guard("/*M!KILL 5*/"));
    CPPUNIT_ASSERT(may_need_guard("kIlL 5"));
    CPPUNIT_ASSERT(may_need_guard("select * from information_schema.PROCESSLIST"));
    CPPUNIT_ASSERT(may_need_guard("select * from sys.x$session"));
  }

  // "KI" ends the first 16 MiB chunk and "LL 5" starts the next: the chunk
  // header between them is not part of the text the server reads.
  void kill_across_a_16mib_chunk_boundary() {
    std::string payload(1, char(proto::COM_QUERY));
    payload += std::string(proto::kMaxChunk - 3, ' ');
    payload += "KILL 5";
    std::string packet = proto::framed(0, payload);
    evbuffer* in = evbuffer_new();
    StreamedStatement s("test");
    for (size_t off = 0; off < packet.size();) {
      size_t n = std::min<size_t>(1 << 20, packet.size() - off);
      evbuffer_add(in, packet.data() + off, n);
      s.feed(in, n);
      evbuffer_drain(in, n);
      off += n;
    }
    CPPUNIT_ASSERT(s.finish().kill);
    evbuffer_free(in);
  }

  void recognizer_takes_every_kill() {
    AdminStatement st = parse_admin("/*!KILL 5*/");
    CPPUNIT_ASSERT(st.kind == AdminStatement::Kind::KillConnection && st.id == 5);
    st = parse_admin("/*!50000 KILL QUERY 7 */");
    CPPUNIT_ASSERT(st.kind == AdminStatement::Kind::KillQuery && st.id == 7);
    st = parse_admin("/*M!100000 KILL CONNECTION 8*/;");
    CPPUNIT_ASSERT(st.kind == AdminStatement::Kind::KillConnection && st.id == 8);
    st = parse_admin("KILL USER relApp");
    CPPUNIT_ASSERT(st.kind == AdminStatement::Kind::KillUser);
    CPPUNIT_ASSERT_EQUAL(std::string("relApp"), st.user);
    st = parse_admin("KILL QUERY USER 'bob'@'127.0.0.1'");
    CPPUNIT_ASSERT(st.kind == AdminStatement::Kind::KillQueryUser);
    CPPUNIT_ASSERT_EQUAL(std::string("bob"), st.user);
    CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), st.host);
    CPPUNIT_ASSERT(parse_admin("KILL QUERY ID 5").kind == AdminStatement::Kind::Malformed);
    CPPUNIT_ASSERT(parse_admin("SHOW FULL PROCESSLIST").kind == AdminStatement::Kind::ShowProcesslist);
    CPPUNIT_ASSERT(parse_admin("show processlist;").kind == AdminStatement::Kind::ShowProcesslist);
    CPPUNIT_ASSERT(parse_admin("/* x */ SELECT 1").kind == AdminStatement::Kind::None);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StatementGuardTest);
