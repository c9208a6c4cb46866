// The proxy's own statements, run against a fake session directory: who sees
// whom, who may kill whom, and what reaches the workers.
#include <cppunit/extensions/HelperMacros.h>

#include <map>
#include <string>
#include <vector>

#include "control/admin_commands.h"
#include "control/session_directory.h"
#include "fake_directory.h"
#include "control/shm_table.h"
#include "protocol/packets.h"

using namespace myrelay;
using namespace myrelay::proto;

namespace {

// The packets of a response.
std::vector<std::string> packets(const std::string& out) {
  std::vector<std::string> v;
  size_t off = 0;
  while (off < out.size()) {
    uint8_t fs, ls;
    std::string payload;
    size_t used = 0;
    if (read_packet(std::string_view(out).substr(off), 1 << 24, fs, ls, payload, used) != ReadStatus::Complete) break;
    v.push_back(payload);
    off += used;
  }
  return v;
}

uint16_t error_code(const std::string& out) {
  auto p = packets(out);
  ErrPacket e;
  return p.size() == 1 && parse_err(p[0], e) ? e.code : 0;
}

bool is_ok(const std::string& out) {
  auto p = packets(out);
  return p.size() == 1 && !p[0].empty() && p[0][0] == 0;
}

// Rows of a text result set (with DEPRECATE_EOF off: count, defs, EOF, rows, EOF).
size_t row_count(const std::string& out) {
  auto p = packets(out);
  if (p.empty()) return 0;
  Reader r(p[0]);
  uint64_t cols = r.lenenc_int();
  return p.size() - 1 - cols - 2;
}

const uint32_t kCaps = CLIENT_PROTOCOL_41;

}  // namespace

class AdminCommandsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AdminCommandsTest);
  CPPUNIT_TEST(show_lists_what_the_caller_may_see);
  CPPUNIT_TEST(kill_rules);
  CPPUNIT_TEST(kill_proxysession_needs_a_privileged_tenant);
  CPPUNIT_TEST(kill_by_connection_id_and_ambiguity);
  CPPUNIT_TEST(kill_server_session);
  CPPUNIT_TEST(show_variables);
  CPPUNIT_TEST(unreachable_worker_is_an_error);
  CPPUNIT_TEST(malformed_statement);
  CPPUNIT_TEST(show_congestion);
  CPPUNIT_TEST(kill_where);
  CPPUNIT_TEST(kill_where_numeric_fields);
  CPPUNIT_TEST(kill_when_idle);
  CPPUNIT_TEST(where_parse_errors);
  CPPUNIT_TEST_SUITE_END();

  FakeDirectory dir;
  std::vector<admin::Warning> warnings;
  admin::Caller alice, bob, other_tenant, root;

  std::string run(const std::string& sql, const admin::Caller& who, admin::After* after = nullptr) {
    std::string out;
    admin::After a = admin::execute(sql::parse_admin(sql), who, dir, {kCaps, 0}, out, warnings);
    if (after) *after = a;
    return out;
  }

 public:
  void setUp() override {
    dir = FakeDirectory{};
    dir.add(0x80000001, "app", "alice", 11, 1);
    dir.add(0x80000002, "app", "bob", 12, 2);
    dir.add(0x80000003, "other", "carol", 13, 3);
    dir.add(0x80000004, "app", "alice", 14, 4);
    alice = {0x80000001, "app", "alice", false, ""};
    bob = {0x80000002, "app", "bob", false, ""};
    other_tenant = {0x80000003, "other", "carol", false, ""};
    root = {0x80000009, "sys", "root", true, ""};
  }

  void show_lists_what_the_caller_may_see() {
    CPPUNIT_ASSERT_EQUAL(size_t(2), row_count(run("SHOW PROXYSESSION", alice)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("SHOW PROXYSESSION", bob)));
    CPPUNIT_ASSERT_EQUAL(size_t(4), row_count(run("show proxysession", root)));
    // ATTRIBUTE of a session the caller may not list: unknown.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("SHOW PROXYSESSION ATTRIBUTE 2147483650", alice)));
    CPPUNIT_ASSERT(row_count(run("SHOW PROXYSESSION ATTRIBUTE 2147483652", alice)) > 5);
    CPPUNIT_ASSERT(row_count(run("SHOW PROXYSESSION ATTRIBUTE", alice)) > 5);  // its own
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_%'", alice)));
  }

  void kill_rules() {
    // Another tenant's session does not exist for alice.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("KILL 2147483651", alice)));
    // Bob's exists (same tenant) but is not hers.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1095), error_code(run("KILL 2147483650", alice)));
    CPPUNIT_ASSERT(dir.sent.empty());
    // Her other session: OK, and the request names it exactly.
    CPPUNIT_ASSERT(is_ok(run("KILL CONNECTION 2147483652", alice)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), dir.sent.size());
    CPPUNIT_ASSERT(dir.sent[0].type == control::RequestType::KillSession);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000004), dir.sent[0].cs_id);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1000 + 0x80000004), dir.sent[0].proxy_sessid);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000001), dir.sent[0].sender_cs_id);
    // KILL QUERY.
    CPPUNIT_ASSERT(is_ok(run("KILL QUERY 2147483652", alice)));
    CPPUNIT_ASSERT(dir.sent[1].type == control::RequestType::KillQuery);
    // Herself: 1317 and the session closes; KILL QUERY of herself goes on.
    admin::After after;
    CPPUNIT_ASSERT_EQUAL(uint16_t(1317), error_code(run("KILL 2147483649", alice, &after)));
    CPPUNIT_ASSERT(after == admin::After::CloseSession);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1317), error_code(run("KILL QUERY 2147483649", alice, &after)));
    CPPUNIT_ASSERT(after == admin::After::Continue);
    // A privileged tenant kills anyone.
    CPPUNIT_ASSERT(is_ok(run("KILL 2147483651", root)));
  }

  void kill_proxysession_needs_a_privileged_tenant() {
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), error_code(run("KILL PROXYSESSION 2147483652", alice)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), error_code(run("KILL PROXYSESSION 99999", alice)));
    CPPUNIT_ASSERT(dir.sent.empty());
    CPPUNIT_ASSERT(is_ok(run("KILL PROXYSESSION 2147483652", root)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("KILL PROXYSESSION 2147483700", root)));
  }

  void kill_by_connection_id_and_ambiguity() {
    CPPUNIT_ASSERT(is_ok(run("KILL 14", alice)));  // alice's second session's backend id
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000004), dir.sent.back().cs_id);
    dir.add(0x80000005, "other", "dave", 14, 5);  // another backend gave out 14 too
    std::string out = run("KILL 14", root);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1105), error_code(out));
    CPPUNIT_ASSERT(out.find("ambiguous") != std::string::npos);
    // For alice only her own tenant's session exists: not ambiguous.
    CPPUNIT_ASSERT(is_ok(run("KILL 14", alice)));
  }

  void kill_server_session() {
    CPPUNIT_ASSERT(is_ok(run("KILL PROXYSESSION 2147483650 2", root)));
    CPPUNIT_ASSERT(dir.sent.back().type == control::RequestType::KillServerSession);
    CPPUNIT_ASSERT_EQUAL(uint64_t(2), dir.sent.back().ss_id);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("KILL PROXYSESSION 2147483650 3", root)));
    CPPUNIT_ASSERT(warnings.empty());
    // A session that cannot be carried ends with its server session: the
    // answer notes it, and SHOW WARNINGS lists the note.
    dir.sessions[1].not_restorable = shm::kNrTemporaryTables | shm::kNrUserVariables;
    std::string out = run("KILL PROXYSESSION 2147483650 2", root);
    CPPUNIT_ASSERT(is_ok(out));
    CPPUNIT_ASSERT_EQUAL(size_t(1), warnings.size());
    CPPUNIT_ASSERT_EQUAL(std::string("Note"), warnings[0].level);
    CPPUNIT_ASSERT(warnings[0].message.find("user variables, temporary tables") != std::string::npos);
    OkPacket ok;
    CPPUNIT_ASSERT(parse_ok(packets(out)[0], ok));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1), ok.warnings);
    std::string listed = admin::show_warnings(warnings, {kCaps, 0});
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(listed));
    CPPUNIT_ASSERT(listed.find("temporary tables") != std::string::npos);
  }

  void show_variables() {
    std::string area;
    area += 'v';
    area += std::string("sql_mode\0ANSI_QUOTES\0", 21);
    area += 'v';
    area += std::string("time_zone\0+03:00\0", 17);
    area += 's';
    area += std::string("schema\0test\0", 12);
    dir.vars[0x80000001] = area;
    std::string out = run("SHOW PROXYSESSION VARIABLES", alice);
    CPPUNIT_ASSERT_EQUAL(size_t(3), row_count(out));
    CPPUNIT_ASSERT(out.find("ANSI_QUOTES") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("SHOW PROXYSESSION VARIABLES 2147483649 LIKE 'time%'", root)));
    // Others' sessions by the listing rules; a session gone meanwhile is unknown.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("SHOW PROXYSESSION VARIABLES 2147483649", bob)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), error_code(run("SHOW PROXYSESSION VARIABLES 2147483652", alice)));
    // What did not fit the area is said in a note.
    dir.sessions[0].vars_dropped = 4;
    out = run("SHOW PROXYSESSION VARIABLES", alice);
    CPPUNIT_ASSERT_EQUAL(size_t(1), warnings.size());
    CPPUNIT_ASSERT(warnings[0].message.find("4 entries") != std::string::npos);
  }

  void unreachable_worker_is_an_error() {
    dir.fail_send = true;
    std::string out = run("KILL 2147483652", alice);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1105), error_code(out));
    CPPUNIT_ASSERT(out.find("pipe full") != std::string::npos);
  }

  void malformed_statement() {
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), error_code(run("KILL PROXYSESSION", root)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), error_code(run("SHOW PROXYSESSION ATTRIBUTE x", root)));
  }

  void show_congestion() {
    dir.add_server("main", "127.0.0.1:3306", 0, uint8_t(shm::ServerState::Alive), -1, 0, 12);
    dir.add_server("main", "127.0.0.1:3307", 1, uint8_t(shm::ServerState::Lagging), 42, 0, 3, 2, 5);
    dir.add_server("other", "127.0.0.1:3308", 1, uint8_t(shm::ServerState::Down), -1, 3, 0);
    std::string out = run("SHOW PROXYCONGESTION", bob);  // for everyone
    CPPUNIT_ASSERT_EQUAL(size_t(3), row_count(out));
    auto p = packets(out);
    // count, 11 definitions, EOF, rows...
    CPPUNIT_ASSERT_EQUAL(size_t(1 + 11 + 1 + 3 + 1), p.size());
    Reader row(p[14]);  // the lagging replica
    std::vector<std::string> cells;
    for (int i = 0; i < 11; ++i) {
      bool null = false;
      uint64_t n = row.lenenc_int(&null);
      cells.push_back(null ? "NULL" : row.bytes(size_t(n)));
    }
    CPPUNIT_ASSERT_EQUAL(std::string("main"), cells[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1:3307"), cells[1]);
    CPPUNIT_ASSERT_EQUAL(std::string("replica"), cells[2]);
    CPPUNIT_ASSERT_EQUAL(std::string("lagging"), cells[3]);
    CPPUNIT_ASSERT_EQUAL(std::string("42"), cells[4]);
    CPPUNIT_ASSERT(cells[5].find(".123") != std::string::npos);  // milliseconds of last_check
    CPPUNIT_ASSERT_EQUAL(std::string("3"), cells[7]);   // server_sessions
    CPPUNIT_ASSERT_EQUAL(std::string("1"), cells[8]);   // in_use
    CPPUNIT_ASSERT_EQUAL(std::string("2"), cells[9]);   // shared_idle
    CPPUNIT_ASSERT_EQUAL(std::string("5"), cells[10]);  // waiting
    CPPUNIT_ASSERT_EQUAL(size_t(2), row_count(run("SHOW PROXYCONGESTION main", bob)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("show proxycongestion 'other';", bob)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1049), error_code(run("SHOW PROXYCONGESTION nosuch", bob)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), error_code(run("SHOW PROXYCONGESTION main extra", bob)));
  }

  // Affected rows of an OK packet.
  static uint64_t affected(const std::string& out) {
    auto p = packets(out);
    if (p.size() != 1 || p[0].empty() || p[0][0] != 0) return uint64_t(-1);
    Reader r(p[0]);
    r.u8();
    return r.lenenc_int();
  }

  void kill_where() {
    // Privileged tenants only.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), error_code(run("KILL PROXYSESSION WHERE user = 'bob'", alice)));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), error_code(run("EXPLAIN KILL PROXYSESSION WHERE user = 'bob'", alice)));
    CPPUNIT_ASSERT(dir.sent.empty());
    // EXPLAIN lists and kills nothing.
    CPPUNIT_ASSERT_EQUAL(size_t(2), row_count(run("EXPLAIN KILL PROXYSESSION WHERE user = 'alice'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(3), row_count(run("EXPLAIN KILL PROXYSESSION WHERE tenant = 'app'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("EXPLAIN KILL PROXYSESSION WHERE tenant='app' AND user != 'alice'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(2), row_count(run("explain kill proxysession where user like 'AL%'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("EXPLAIN KILL PROXYSESSION WHERE user LIKE 'al%' LIMIT 1", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(2), row_count(run("EXPLAIN KILL PROXYSESSION WHERE user NOT LIKE 'al%'", root)));
    // = is exact (user names are case-sensitive in MySQL).
    CPPUNIT_ASSERT_EQUAL(size_t(0), row_count(run("EXPLAIN KILL PROXYSESSION WHERE user = 'ALICE'", root)));
    CPPUNIT_ASSERT(dir.sent.empty());
    // The kill: affected rows = sessions asked to end; never the caller itself.
    admin::Caller alice_root = {0x80000001, "app", "alice", true, ""};
    std::string out = run("KILL PROXYSESSION WHERE user = 'alice'", alice_root);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), affected(out));
    CPPUNIT_ASSERT_EQUAL(size_t(1), dir.sent.size());
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000004), dir.sent[0].cs_id);
    CPPUNIT_ASSERT(dir.sent[0].type == control::RequestType::KillSession);
    CPPUNIT_ASSERT_EQUAL(uint64_t(3), affected(run("KILL PROXYSESSION WHERE cluster = 'main' LIMIT 3", root)));
    CPPUNIT_ASSERT_EQUAL(uint64_t(0), affected(run("KILL PROXYSESSION WHERE host = '10.9.9.9'", root)));
    // db: NULL matches only IS NULL.
    dir.sessions[1].has_db = 1;
    set_field(dir.sessions[1].db, "shop");
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("EXPLAIN KILL PROXYSESSION WHERE db = 'shop'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(0), row_count(run("EXPLAIN KILL PROXYSESSION WHERE db != 'shop'", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(3), row_count(run("EXPLAIN KILL PROXYSESSION WHERE db IS NULL", root)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), row_count(run("EXPLAIN KILL PROXYSESSION WHERE db IS NOT NULL", root)));
  }

  void kill_where_numeric_fields() {
    const int64_t now = view::now_us();
    // alice: idle 100 s; bob: running a statement for 30 s inside a
    // transaction 50 s old; carol: idle 5 s.
    dir.sessions[0].state = 2;
    dir.sessions[0].last_active_us = now - 100 * 1000000ll;
    set_field(dir.sessions[0].command, "Sleep");
    dir.sessions[1].state = 1;
    dir.sessions[1].last_active_us = now - 30 * 1000000ll;
    set_field(dir.sessions[1].command, "Query");
    dir.sessions[1].in_trans = 1;
    dir.sessions[1].trans_started_us = now - 50 * 1000000ll;
    dir.sessions[2].state = 2;
    dir.sessions[2].last_active_us = now - 5 * 1000000ll;
    set_field(dir.sessions[2].command, "Sleep");
    auto n = [&](const std::string& cond) { return row_count(run("EXPLAIN KILL PROXYSESSION WHERE " + cond, root)); };
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("idle_s > 60"));
    CPPUNIT_ASSERT_EQUAL(size_t(2), n("idle_s >= 5"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("time_s > 20"));
    CPPUNIT_ASSERT_EQUAL(size_t(0), n("time_s > 40"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("trans_s >= 50 AND in_trans = 1"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("in_trans = TRUE"));
    CPPUNIT_ASSERT_EQUAL(size_t(3), n("in_trans = 0"));
    CPPUNIT_ASSERT_EQUAL(size_t(3), n("in_trans <> 1"));
    CPPUNIT_ASSERT_EQUAL(size_t(3), n("in_trans != 1"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("idle_s < 10 AND idle_s > 0"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("state = 'MCS_ACTIVE_READER'"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("command = 'Query'"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), n("idle_s <= 5 and user = 'carol'"));
  }

  void kill_when_idle() {
    std::string out = run("KILL PROXYSESSION 2147483650 WHEN IDLE TIMEOUT 30", root);
    CPPUNIT_ASSERT(is_ok(out));
    CPPUNIT_ASSERT(dir.sent.back().type == control::RequestType::KillWhenIdle);
    CPPUNIT_ASSERT_EQUAL(uint32_t(30), dir.sent.back().timeout_s);
    CPPUNIT_ASSERT(is_ok(run("KILL PROXYSESSION 2147483650 WHEN IDLE", root)));
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), dir.sent.back().timeout_s);
    CPPUNIT_ASSERT_EQUAL(uint64_t(2), affected(run("KILL PROXYSESSION WHERE user = 'alice' WHEN IDLE TIMEOUT 5", root)));
    CPPUNIT_ASSERT(dir.sent.back().type == control::RequestType::KillWhenIdle);
    CPPUNIT_ASSERT_EQUAL(uint32_t(5), dir.sent.back().timeout_s);
    // The caller's own session ends after this statement's answer.
    dir.add(0x80000009, "sys", "root", 19, 9);
    admin::After after;
    CPPUNIT_ASSERT(is_ok(run("KILL PROXYSESSION 2147483657 WHEN IDLE", root, &after)));
    CPPUNIT_ASSERT(after == admin::After::Continue);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000009), dir.sent.back().cs_id);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), error_code(run("KILL PROXYSESSION 2147483652 WHEN IDLE", alice)));
  }

  void where_parse_errors() {
    auto msg = [&](const std::string& sql) {
      sql::AdminStatement st = sql::parse_admin(sql);
      return st.kind == sql::AdminStatement::Kind::Malformed ? st.error : std::string("(not malformed)");
    };
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), error_code(run("KILL PROXYSESSION WHERE", root)));
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE").find("expected a field (user, tenant") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE colour = 'x'").find("not 'colour'") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE user > 'x'").find("user takes =, != or LIKE") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE idle_s LIKE '1'").find("idle_s takes =, !=, <") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE user = bob").find("expected a quoted string after user") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE idle_s > 'x'").find("expected a whole number of seconds") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE user = 'a' OR user = 'b'").find("expected AND, LIMIT n, WHEN IDLE") !=
                   std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE user = 'a' LIMIT x").find("expected a number after LIMIT") !=
                   std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION 5 WHEN BUSY").find("expected IDLE after WHEN") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION 5 WHEN IDLE TIMEOUT 0").find("after TIMEOUT") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION 5 6 WHEN IDLE").find("expected KILL PROXYSESSION id [ss_id]") != std::string::npos);
    CPPUNIT_ASSERT(msg("EXPLAIN KILL 5").find("EXPLAIN KILL takes [GLOBAL] PROXYSESSION WHERE") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE db IS 'x'").find("expected NULL or NOT NULL") != std::string::npos);
    CPPUNIT_ASSERT(msg("KILL PROXYSESSION WHERE user IS NULL").find("user takes =, != or LIKE") != std::string::npos);
    // Any other EXPLAIN is the backend's.
    CPPUNIT_ASSERT(sql::parse_admin("EXPLAIN SELECT 1").kind == sql::AdminStatement::Kind::None);
    // myrelayctl's form: the conditions alone.
    SessionFilter f;
    std::string error;
    CPPUNIT_ASSERT(sql::parse_session_filter("user = 'app' AND idle_s > 600 LIMIT 10", f, error));
    CPPUNIT_ASSERT_EQUAL(std::string("user = 'app' AND idle_s > 600 LIMIT 10"), f.describe());
    CPPUNIT_ASSERT(!sql::parse_session_filter("user = 'app' ; drop", f, error));
    CPPUNIT_ASSERT(error.find("expected AND, LIMIT n or the end of the condition") != std::string::npos);
    CPPUNIT_ASSERT(sql::parse_session_filter("host like '10.%' and db is not null", f, error));
    CPPUNIT_ASSERT_EQUAL(std::string("host LIKE '10.%' AND db IS NOT NULL"), f.describe());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AdminCommandsTest);
