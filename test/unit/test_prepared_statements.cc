// A client session's prepared statements: the proxy's own ids, the backend's
// per server session, and the commands rewritten for a backend statement
// that never had the parameter types the client bound elsewhere.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "protocol/codec.h"
#include "session/prepared_statements.h"

using namespace myrelay;
using namespace myrelay::proto;

namespace {

std::string u32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = char(uint8_t(v >> (8 * i)));
  return s;
}

// COM_STMT_EXECUTE of a 2-parameter statement: no cursor, one iteration,
// NULL bitmap 0, then new_params_bound, [types], values.
std::string execute(uint32_t id, bool with_types) {
  std::string p(1, char(COM_STMT_EXECUTE));
  p += u32(id);
  p += '\0';
  p += u32(1);
  p += '\0';                       // NULL bitmap
  p += char(with_types ? 1 : 0);   // new_params_bound
  if (with_types) p += std::string("\x08\x00\xfe\x00", 4);  // LONGLONG, STRING
  p += std::string("\x29\0\0\0\0\0\0\0", 8);              // 41
  p += std::string("\x02" "ab", 3);
  return p;
}

}  // namespace

class PreparedStatementsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(PreparedStatementsTest);
  CPPUNIT_TEST(ids_are_the_proxys);
  CPPUNIT_TEST(execute_rewritten_per_server_session);
  CPPUNIT_TEST(types_never_bound_are_not_invented);
  CPPUNIT_TEST(bulk_execute_gets_types);
  CPPUNIT_TEST(servers_forgotten);
  CPPUNIT_TEST_SUITE_END();

 public:
  void ids_are_the_proxys() {
    PreparedStatements ps;
    auto& a = ps.add("SELECT 1", true, 7, 100, 1, 0);
    auto& b = ps.add("SELECT ?", true, 7, 101, 1, 1);
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), a.id);
    CPPUNIT_ASSERT_EQUAL(uint32_t(2), b.id);
    CPPUNIT_ASSERT_EQUAL(size_t(2), ps.size());
    // MariaDB's "last prepared" id names the last one.
    CPPUNIT_ASSERT_EQUAL(uint32_t(2), ps.find(PreparedStatements::kLastPrepared)->id);
    CPPUNIT_ASSERT(ps.find(3) == nullptr);
    auto on = ps.remove(1);
    CPPUNIT_ASSERT_EQUAL(size_t(1), on.size());
    CPPUNIT_ASSERT_EQUAL(uint32_t(100), on[0].backend_id);
    CPPUNIT_ASSERT(ps.find(1) == nullptr);
    // Ids are never reused within a session.
    CPPUNIT_ASSERT_EQUAL(uint32_t(3), ps.add("SELECT 2", true, 7, 102, 1, 0).id);
    ps.clear();
    CPPUNIT_ASSERT_EQUAL(size_t(0), ps.size());
    CPPUNIT_ASSERT(ps.find(PreparedStatements::kLastPrepared) == nullptr);
  }

  void execute_rewritten_per_server_session() {
    PreparedStatements ps;
    auto& st = ps.add("SELECT ? + 1, CONCAT(?, 'x')", true, 7, 100, 2, 2);
    // On the server session that prepared it: the backend's id, types recorded.
    std::string cmd = execute(st.id, true);
    // Up to the types: 1 + 4 + 1 + 4, the NULL bitmap, the flag, 2 x 2 bytes.
    CPPUNIT_ASSERT_EQUAL(size_t(16), PreparedStatements::head_needed(st, cmd));
    CPPUNIT_ASSERT_EQUAL(size_t(12), PreparedStatements::head_needed(st, cmd.substr(0, 5)));
    std::string head = cmd.substr(0, PreparedStatements::head_needed(st, cmd));
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(7), head));
    CPPUNIT_ASSERT_EQUAL(u32(100), head.substr(1, 4));
    CPPUNIT_ASSERT_EQUAL(std::string("\x08\x00\xfe\x00", 4), st.param_types);
    // Later executes send no types: unchanged but for the id.
    std::string again = execute(st.id, false);
    std::string expect = again;
    expect.replace(1, 4, u32(100));
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(7), again));
    CPPUNIT_ASSERT_EQUAL(expect, again);
    // Prepared again on server session 9: the first execute there gets the
    // types the client bound on 7, and new_params_bound set.
    st.on.push_back({9, 555, false});
    std::string moved = execute(st.id, false);
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(9), moved));
    std::string with = execute(st.id, true);
    with.replace(1, 4, u32(555));
    CPPUNIT_ASSERT_EQUAL(with, moved);
    CPPUNIT_ASSERT(st.on_server(9)->types_bound);
    // ... and only the first.
    std::string next = execute(st.id, false);
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(9), next));
    CPPUNIT_ASSERT_EQUAL(execute(st.id, false).size(), next.size());
  }

  void types_never_bound_are_not_invented() {
    PreparedStatements ps;
    auto& st = ps.add("SELECT ?, ?", true, 7, 100, 2, 2);
    st.on.push_back({9, 555, false});
    std::string cmd = execute(st.id, false);
    CPPUNIT_ASSERT(!PreparedStatements::rewrite(st, *st.on_server(9), cmd));
    CPPUNIT_ASSERT_EQUAL(execute(st.id, false).size(), cmd.size());  // goes as sent, to fail there
    // A statement without parameters, and a command too short to parse.
    auto& none = ps.add("SELECT 1", true, 7, 101, 1, 0);
    std::string plain(1, char(COM_STMT_EXECUTE));
    plain += u32(none.id) + std::string(1, '\0') + u32(1);
    CPPUNIT_ASSERT_EQUAL(size_t(5), PreparedStatements::head_needed(none, plain));
    CPPUNIT_ASSERT(PreparedStatements::rewrite(none, *none.on_server(7), plain));
    CPPUNIT_ASSERT_EQUAL(u32(101), plain.substr(1, 4));
    std::string shortcmd("\x17\x01", 2);
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(7), shortcmd));
    CPPUNIT_ASSERT_EQUAL(std::string("\x17\x01", 2), shortcmd);
  }

  void bulk_execute_gets_types() {
    PreparedStatements ps;
    auto& st = ps.add("INSERT INTO t VALUES (?)", true, 7, 100, 0, 1);
    std::string bulk(1, char(COM_STMT_BULK_EXECUTE));
    bulk += u32(st.id) + std::string("\x80\x00", 2) + std::string("\x03\x00", 2) + std::string("\x00\x05\0\0\0", 5);
    CPPUNIT_ASSERT_EQUAL(size_t(9), PreparedStatements::head_needed(st, bulk));
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(7), bulk));
    CPPUNIT_ASSERT_EQUAL(std::string("\x03\x00", 2), st.param_types);
    st.on.push_back({9, 555, false});
    std::string bare(1, char(COM_STMT_BULK_EXECUTE));
    bare += u32(st.id) + std::string("\x00\x00", 2) + std::string("\x00\x05\0\0\0", 5);
    CPPUNIT_ASSERT(PreparedStatements::rewrite(st, *st.on_server(9), bare));
    std::string expect(1, char(COM_STMT_BULK_EXECUTE));
    expect += u32(555) + std::string("\x80\x00", 2) + std::string("\x03\x00", 2) + std::string("\x00\x05\0\0\0", 5);
    CPPUNIT_ASSERT_EQUAL(expect, bare);
  }

  void servers_forgotten() {
    PreparedStatements ps;
    auto& st = ps.add("SELECT 1", true, 7, 100, 1, 0);
    st.on.push_back({9, 555, false});
    st.cursor_open = true;
    ps.forget_server(9);
    CPPUNIT_ASSERT(st.on_server(9) == nullptr);
    CPPUNIT_ASSERT(st.cursor_open);  // still on 7
    ps.forget_server(7);
    CPPUNIT_ASSERT(st.on.empty());
    CPPUNIT_ASSERT(!st.cursor_open);
    CPPUNIT_ASSERT_EQUAL(size_t(1), ps.size());  // the client's statement lives on
    CPPUNIT_ASSERT(PreparedStatements::names_statement(COM_STMT_FETCH));
    CPPUNIT_ASSERT(!PreparedStatements::names_statement(COM_STMT_PREPARE));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PreparedStatementsTest);
