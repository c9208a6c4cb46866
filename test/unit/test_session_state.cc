// Session state: the OK packet's state information as MariaDB 10.11 sends it
// (bytes recorded from a real server), the OK rebuilt for clients with other
// trackers, the recogniser of what the server does not report, and the replay
// statement's quoting.
#include <cppunit/extensions/HelperMacros.h>

#include <deque>
#include <string>

#include "protocol/codec.h"
#include "protocol/session_track.h"
#include "session/session_state.h"
#include "session/statement_facts.h"

using namespace myrelay;
using namespace myrelay::proto;

namespace {

std::string unhex(const std::string& h) {
  std::string s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return s;
}
std::string hex(const std::string& s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Recorded from MariaDB 10.11 for a client that asked for CLIENT_SESSION_TRACK
// and set every tracker: SET session_track_system_variables='*', ...
const char kSetTrackers[] =
    "00000002400000009f00211e73657373696f6e5f747261636b5f73797374656d5f7661726961626c6573012a001e1a73657373696f6e"
    "5f747261636b5f73746174655f6368616e6765024f4e00181473657373696f6e5f747261636b5f736368656d61024f4e002f1e736573"
    "73696f6e5f747261636b5f7472616e73616374696f6e5f696e666f0f434841524143544552495354494353020131050908"
    "5f5f5f5f5f5f5f5f040100";
// SET @@session.sql_mode='ANSI_QUOTES' (status: ANSI_QUOTES, state changed).
const char kSqlMode[] = "00000002c00000001a00150873716c5f6d6f64650b414e53495f51554f544553020131";
// USE test, for a client with the default trackers (what the server sent it).
const char kUseTestDefault[] = "00000000c00000000701050474657374";

// Parses a recorded packet, kept alive: the OK's fields are views into it.
bool parse(const std::string& hexed, TrackedOk& ok) {
  static std::deque<std::string> kept;
  kept.push_back(unhex(hexed));
  return parse_tracked_ok(kept.back(), ok);
}

}  // namespace

class SessionStateTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SessionStateTest);
  CPPUNIT_TEST(parses_every_tracker_type);
  CPPUNIT_TEST(rejects_bad_lengths);
  CPPUNIT_TEST(rebuilds_for_other_clients);
  CPPUNIT_TEST(state_follows_reports);
  CPPUNIT_TEST(collation_after_set_names);
  CPPUNIT_TEST(replay_quoting);
  CPPUNIT_TEST(recogniser);
  CPPUNIT_TEST(difference_for_a_shared_connection);
  CPPUNIT_TEST(session_only_variables_pin);
  CPPUNIT_TEST_SUITE_END();

 public:
  void parses_every_tracker_type() {
    TrackedOk ok;
    CPPUNIT_ASSERT(parse(kSetTrackers, ok));
    CPPUNIT_ASSERT_EQUAL(size_t(7), ok.changes.size());
    CPPUNIT_ASSERT_EQUAL(std::string("session_track_system_variables"), std::string(ok.changes[0].name));
    CPPUNIT_ASSERT_EQUAL(std::string("*"), std::string(ok.changes[0].value));
    CPPUNIT_ASSERT_EQUAL(uint8_t(SESSION_TRACK_STATE_CHANGE), ok.changes[4].type);
    CPPUNIT_ASSERT_EQUAL(std::string("1"), std::string(ok.changes[4].value));
    CPPUNIT_ASSERT_EQUAL(uint8_t(SESSION_TRACK_TRANSACTION_STATE), ok.changes[5].type);
    CPPUNIT_ASSERT_EQUAL(std::string("________"), std::string(ok.changes[5].value));
    CPPUNIT_ASSERT_EQUAL(uint8_t(SESSION_TRACK_TRANSACTION_CHARACTERISTICS), ok.changes[6].type);
    CPPUNIT_ASSERT_EQUAL(std::string(""), std::string(ok.changes[6].value));
    // An OK without a message: the packet ends after the warnings.
    CPPUNIT_ASSERT(parse("00010002000000", ok));
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), ok.affected_rows);
    CPPUNIT_ASSERT(ok.info.empty() && ok.changes.empty());
    // The OK that ends a result set (0xfe) is read the same way.
    CPPUNIT_ASSERT(parse("fe000002000000", ok));
    // GTIDs (type 3): the data as it came; an 8-byte length-encoded count.
    CPPUNIT_ASSERT(parse("00fe00000000000100000002400000000e030c000a302d312d313030303030", ok));
    CPPUNIT_ASSERT_EQUAL(uint64_t(1) << 40, ok.affected_rows);
    CPPUNIT_ASSERT_EQUAL(size_t(1), ok.changes.size());
    CPPUNIT_ASSERT_EQUAL(uint8_t(SESSION_TRACK_GTIDS), ok.changes[0].type);
    CPPUNIT_ASSERT_EQUAL(size_t(12), ok.changes[0].value.size());
    // Multi-byte length-encoded counts.
    CPPUNIT_ASSERT(parse("00fc0001fd0000010200000000", ok));
    CPPUNIT_ASSERT_EQUAL(uint64_t(256), ok.affected_rows);
    CPPUNIT_ASSERT_EQUAL(uint64_t(65536), ok.last_insert_id);
  }

  void rejects_bad_lengths() {
    TrackedOk ok;
    std::string good = unhex(kSqlMode);
    for (size_t cut = 1; cut < good.size(); ++cut) {
      std::string s = good.substr(0, cut);
      // A cut packet either parses as the shorter OK it then is, or fails;
      // it never reads past its end (the sanitizer build checks that).
      parse_tracked_ok(s, ok);
    }
    std::string bad = good;
    bad[8] = char(0x7f);  // the state block claims 127 bytes
    CPPUNIT_ASSERT(!parse_tracked_ok(bad, ok));
    CPPUNIT_ASSERT(!parse("ff0000", ok));
  }

  void rebuilds_for_other_clients() {
    TrackedOk ok;
    CPPUNIT_ASSERT(parse(kSqlMode, ok));
    TrackerSet defaults = TrackerSet::mariadb_defaults();
    // sql_mode is not among a default client's variables: a plain OK, no
    // state flag, exactly what MariaDB sent such a client.
    CPPUNIT_ASSERT_EQUAL(std::string("00000002800000"), hex(build_client_ok(ok, CLIENT_SESSION_TRACK, defaults, true)));
    CPPUNIT_ASSERT_EQUAL(std::string("00000002800000"), hex(build_client_ok(ok, 0, defaults, true)));
    // USE test, as the proxy's connection sees it, rebuilt for a default client.
    TrackedOk use;
    use.header = 0;
    use.status = 0xc000;
    use.changes = {{SESSION_TRACK_SCHEMA, "", "test"}, {SESSION_TRACK_STATE_CHANGE, "", "1"}};
    CPPUNIT_ASSERT_EQUAL(std::string(kUseTestDefault), hex(build_client_ok(use, CLIENT_SESSION_TRACK, defaults, true)));
    // A client that tracks everything the proxy does gets the server's bytes
    // back, every kind of entry encoded as the server encodes it.
    TrackedOk all;
    CPPUNIT_ASSERT(parse(kSetTrackers, all));
    TrackerSet everything = TrackerSet::from("*", "ON", "ON", "CHARACTERISTICS");
    CPPUNIT_ASSERT_EQUAL(std::string(kSetTrackers), hex(build_client_ok(all, CLIENT_SESSION_TRACK, everything, true)));
    // A client without tracking gets no state flag at all.
    CPPUNIT_ASSERT_EQUAL(std::string("00000000800000"), hex(build_client_ok(use, 0, defaults, true)));
    // A MySQL server encodes a message for a non-tracking client to the end of the packet.
    TrackedOk upd;
    upd.info = "Rows matched: 1";
    CPPUNIT_ASSERT_EQUAL(std::string("00000000000000") + hex("Rows matched: 1"), hex(build_client_ok(upd, 0, defaults, false)));
    CPPUNIT_ASSERT_EQUAL(std::string("000000000000000f") + hex("Rows matched: 1"), hex(build_client_ok(upd, 0, defaults, true)));
  }

  void state_follows_reports() {
    SessionState st;
    uint64_t v = st.version();
    TrackedOk ok;
    CPPUNIT_ASSERT(parse(kSqlMode, ok));
    st.apply(ok);
    CPPUNIT_ASSERT(st.version() > v);
    CPPUNIT_ASSERT_EQUAL(size_t(1), st.variables().size());
    CPPUNIT_ASSERT_EQUAL(std::string("ANSI_QUOTES"), st.variables()[0].second);
    // The proxy's own tracker settings are never part of the state.
    CPPUNIT_ASSERT(parse(kSetTrackers, ok));
    st.apply(ok);
    CPPUNIT_ASSERT_EQUAL(size_t(1), st.variables().size());
    // A SET STATEMENT's report is temporary.
    TrackedOk tmp;
    tmp.status = 0x4000;
    tmp.changes = {{SESSION_TRACK_SYSTEM_VARIABLES, "time_zone", "+03:00"}};
    st.apply(tmp, true);
    CPPUNIT_ASSERT_EQUAL(size_t(1), st.variables().size());
    // A variable name that is not a plain identifier is never pasted into
    // the replayed SET: the session stays where it is instead.
    TrackedOk odd;
    odd.changes = {{SESSION_TRACK_SYSTEM_VARIABLES, "x = 1, @@session.sql_mode", "y"}};
    st.apply(odd);
    CPPUNIT_ASSERT(!st.restorable());
    CPPUNIT_ASSERT(st.replay_set("").find("x = 1") == std::string::npos);
    st.reset("");
    CPPUNIT_ASSERT(parse(kSqlMode, ok));
    st.apply(ok);
    // LOCK TABLES shows in the transaction state; an open transaction in the status.
    TrackedOk lock;
    lock.changes = {{SESSION_TRACK_TRANSACTION_STATE, "", "_______L"}};
    st.apply(lock);
    CPPUNIT_ASSERT(!st.restorable());
    CPPUNIT_ASSERT_EQUAL(std::string("LOCK TABLES"), SessionState::describe(st.reasons()));
    st.reset("");
    CPPUNIT_ASSERT(st.restorable());
    st.set_in_transaction(true);
    CPPUNIT_ASSERT_EQUAL(std::string("open transaction"), SessionState::describe(st.reasons()));
    // SET TRANSACTION outside a transaction is for the next one; reported
    // inside one it is that transaction's, used up.
    SessionState tx;
    TrackedOk next;
    next.status = 0x4002;
    next.changes = {{SESSION_TRACK_TRANSACTION_CHARACTERISTICS, "", "SET TRANSACTION READ ONLY;"}};
    tx.apply(next);
    CPPUNIT_ASSERT_EQUAL(std::string("SET TRANSACTION READ ONLY;"), tx.characteristics());
    uint64_t before = tx.version();
    TrackedOk started;
    started.status = 0x4003;  // IN_TRANS
    started.changes = {{SESSION_TRACK_TRANSACTION_CHARACTERISTICS, "", "SET TRANSACTION READ ONLY; START TRANSACTION;"}};
    tx.apply(started);
    CPPUNIT_ASSERT_EQUAL(std::string(""), tx.characteristics());
    CPPUNIT_ASSERT(tx.version() > before);
    // A plain BEGIN changes nothing that is replayed: the version stays.
    before = tx.version();
    started.changes = {{SESSION_TRACK_TRANSACTION_CHARACTERISTICS, "", "START TRANSACTION;"}};
    tx.apply(started);
    CPPUNIT_ASSERT_EQUAL(before, tx.version());
  }

  // SET NAMES x COLLATE y: the collation is not reported; kept once the
  // statement succeeded, dropped when a later SET NAMES brings the default.
  void collation_after_set_names() {
    SessionState st;
    TrackedOk names;
    names.changes = {{SESSION_TRACK_SYSTEM_VARIABLES, "character_set_connection", "utf8mb4"},
                     {SESSION_TRACK_SYSTEM_VARIABLES, "character_set_client", "utf8mb4"}};
    st.note(StatementFacts::of("SET NAMES utf8mb4 COLLATE utf8mb4_bin"));
    st.apply(names);
    st.statement_done(true);
    auto has = [&](const char* name, const char* value) {
      for (const auto& [n, v] : st.variables())
        if (n == name) return v == value;
      return false;
    };
    CPPUNIT_ASSERT(has("collation_connection", "utf8mb4_bin"));
    st.note(StatementFacts::of("SET NAMES latin1 COLLATE no_such_collation"));
    st.statement_done(false);  // it failed: nothing changed
    CPPUNIT_ASSERT(has("collation_connection", "utf8mb4_bin"));
    names.changes[0].value = "latin1";
    st.note(StatementFacts::of("SET NAMES latin1"));
    st.apply(names);
    st.statement_done(true);
    CPPUNIT_ASSERT(!has("collation_connection", "utf8mb4_bin"));
    CPPUNIT_ASSERT(has("character_set_connection", "latin1"));
  }

  void replay_quoting() {
    CPPUNIT_ASSERT_EQUAL(std::string("5"), SessionState::literal("sql_select_limit", "5"));
    CPPUNIT_ASSERT_EQUAL(std::string("'+03:00'"), SessionState::literal("time_zone", "+03:00"));
    CPPUNIT_ASSERT_EQUAL(std::string("'it''s'"), SessionState::literal("x", "it's"));
    CPPUNIT_ASSERT_EQUAL(std::string("NULL"), SessionState::literal("character_set_results", ""));
    // A backslash reads the same under any sql_mode only as a hex literal.
    CPPUNIT_ASSERT_EQUAL(std::string("X'615c62'"), SessionState::literal("x", "a\\b"));
    CPPUNIT_ASSERT_EQUAL(std::string("X'610062'"), SessionState::literal("x", std::string("a\0b", 3)));
    CPPUNIT_ASSERT_EQUAL(std::string("''"), SessionState::literal("x", ""));
    // Character sets before collations.
    SessionState st;
    TrackedOk ok;
    ok.changes = {{SESSION_TRACK_SYSTEM_VARIABLES, "collation_connection", "utf8mb4_bin"},
                  {SESSION_TRACK_SYSTEM_VARIABLES, "autocommit", "OFF"},
                  {SESSION_TRACK_SYSTEM_VARIABLES, "character_set_connection", "utf8mb4"}};
    st.apply(ok);
    CPPUNIT_ASSERT_EQUAL(std::string("SET @@SESSION.character_set_connection = 'utf8mb4', @@SESSION.collation_connection = "
                                     "'utf8mb4_bin', @@SESSION.autocommit = 'OFF'"),
                         st.replay_set(""));
    CPPUNIT_ASSERT_EQUAL(std::string(""), SessionState().replay_set(""));
  }

  void recogniser() {
    auto has = [](const char* sql, uint32_t f) { return StatementFacts::of(sql).has(f); };
    CPPUNIT_ASSERT(has("SET @a = 1", StatementFacts::kUserVariables));
    CPPUNIT_ASSERT(has("SELECT 7 INTO @w", StatementFacts::kUserVariables));
    CPPUNIT_ASSERT(has("SELECT @v := 5", StatementFacts::kUserVariables));
    CPPUNIT_ASSERT(!has("SELECT @@sql_mode", StatementFacts::kUserVariables));
    CPPUNIT_ASSERT(has("CREATE TEMPORARY TABLE t (i int)", StatementFacts::kTemporaryTables));
    CPPUNIT_ASSERT(has("create or replace temporary table t (i int)", StatementFacts::kTemporaryTables));
    CPPUNIT_ASSERT(has("SELECT GET_LOCK('x', 1)", StatementFacts::kUserLocks));
    CPPUNIT_ASSERT(has("LOCK TABLES t READ", StatementFacts::kLockTables));
    CPPUNIT_ASSERT(has("UNLOCK TABLES", StatementFacts::kUnlockTables));
    CPPUNIT_ASSERT(has("FLUSH TABLES WITH READ LOCK", StatementFacts::kLockTables));
    CPPUNIT_ASSERT(has("HANDLER t OPEN", StatementFacts::kHandler));
    CPPUNIT_ASSERT(has("PREPARE s FROM 'SELECT 1'", StatementFacts::kSqlPrepare));
    CPPUNIT_ASSERT(has("XA START 'x'", StatementFacts::kXaStart));
    CPPUNIT_ASSERT(has("CALL p()", StatementFacts::kStoredProgram));
    CPPUNIT_ASSERT(has("SELECT SQL_CALC_FOUND_ROWS * FROM t", StatementFacts::kFoundRows));
    CPPUNIT_ASSERT(has("SELECT LAST_INSERT_ID(42)", StatementFacts::kLastInsertIdSet));
    CPPUNIT_ASSERT(!has("SELECT LAST_INSERT_ID()", StatementFacts::kLastInsertIdSet));
    CPPUNIT_ASSERT(has("SET SESSION session_track_schema = OFF", StatementFacts::kTrackerChange));
    CPPUNIT_ASSERT(has("SET @@session.session_track_system_variables = ''", StatementFacts::kTrackerChange));
    CPPUNIT_ASSERT(has("set @@SESSION_TRACK_SCHEMA=0", StatementFacts::kTrackerChange));
    CPPUNIT_ASSERT(!has("SELECT @@session_track_schema", StatementFacts::kTrackerChange));
    CPPUNIT_ASSERT(has("SET STATEMENT max_statement_time=1 FOR SELECT 1", StatementFacts::kSetStatement));
    CPPUNIT_ASSERT(has("SET CHARACTER SET utf8", StatementFacts::kCharacterSet));
    CPPUNIT_ASSERT_EQUAL(std::string("utf8mb4_bin"), StatementFacts::of("SET NAMES utf8mb4 COLLATE utf8mb4_bin").collation);
    CPPUNIT_ASSERT(has("SELECT 1; /*!SET @a=1*/", StatementFacts::kUserVariables));
    CPPUNIT_ASSERT(!StatementFacts::worth_scanning("SELECT c FROM sbtest1 WHERE id=5"));
    CPPUNIT_ASSERT(StatementFacts::worth_scanning("select get_lock('a', 0)"));
    CPPUNIT_ASSERT(StatementFacts::worth_scanning("SELECT 1 INTO @x"));
    // Found by the fuzzer: FLUSH TABLES ... FOR EXPORT holds a lock too.
    CPPUNIT_ASSERT(StatementFacts::worth_scanning("FLUSH TABLES t FOR EXPORT"));
    CPPUNIT_ASSERT(has("flush tables t for export", StatementFacts::kLockTables));
  }

  static TrackedOk report(std::vector<std::pair<std::string, std::string>> vars) {
    TrackedOk ok;
    for (auto& [name, value] : vars) ok.changes.push_back({SESSION_TRACK_SYSTEM_VARIABLES, name, value});
    return ok;
  }

  // Multiplexing: a connection left by another session is brought to this
  // one's state by the difference only (DEFAULT for what only it had), and
  // one left with a login's character set changed cannot be.
  void difference_for_a_shared_connection() {
    // The views in TrackedOk point into these strings: they live here.
    const std::string ansi = "ANSI", tz = "+01:00", lock = "7", latin1 = "latin1";
    SessionState a, b;
    CPPUNIT_ASSERT(!a.snapshot());  // the server's defaults
    a.apply(report({{"sql_mode", ansi}, {"time_zone", tz}}));
    a.set_last_insert_id(42);
    std::shared_ptr<const SessionState::Snapshot> left = a.snapshot();
    CPPUNIT_ASSERT(left);
    CPPUNIT_ASSERT_EQUAL(size_t(2), left->vars.size());
    // B never set anything: what A left goes back to DEFAULT, and A's last
    // insert id is not B's.
    CPPUNIT_ASSERT(b.diff_possible(left.get()));
    CPPUNIT_ASSERT_EQUAL(std::string("SET @@SESSION.sql_mode = DEFAULT, @@SESSION.time_zone = DEFAULT, "
                                     "@@SESSION.last_insert_id = 0"),
                         b.replay_diff(left.get(), ""));
    // B shares one value and has one of its own: only the rest moves.
    b.apply(report({{"time_zone", tz}, {"lock_wait_timeout", lock}}));
    CPPUNIT_ASSERT_EQUAL(std::string("SET @@SESSION.sql_mode = DEFAULT, @@SESSION.lock_wait_timeout = 7, "
                                     "@@SESSION.last_insert_id = 0"),
                         b.replay_diff(left.get(), ""));
    // The same state: nothing to send.
    CPPUNIT_ASSERT_EQUAL(std::string(), a.replay_diff(left.get(), ""));
    // A fresh connection (the defaults): the whole state, with the prefix.
    CPPUNIT_ASSERT_EQUAL(b.replay_set("x = 1"), b.replay_diff(nullptr, "x = 1"));
    // SET NAMES left on a connection: DEFAULT would be the server's global,
    // not the taker's login character set.
    SessionState c;
    c.apply(report({{"character_set_client", latin1}}));
    std::shared_ptr<const SessionState::Snapshot> names = c.snapshot();
    SessionState d;
    CPPUNIT_ASSERT(!d.diff_possible(names.get()));
    d.apply(report({{"character_set_client", latin1}}));
    CPPUNIT_ASSERT(d.diff_possible(names.get()));
    CPPUNIT_ASSERT_EQUAL(std::string(), d.replay_diff(names.get(), ""));
  }

  // A fixed timestamp or insert id is the session's own and never replayed:
  // such a session cannot move to another connection until it is reset.
  void session_only_variables_pin() {
    const std::string ts = "1700000000", zero = "0", tz = "+02:00";
    SessionState st;
    st.apply(report({{"timestamp", ts}}), true);  // SET STATEMENT timestamp=... FOR: only that statement's
    CPPUNIT_ASSERT(st.restorable());
    st.apply(report({{"timestamp", ts}}));
    CPPUNIT_ASSERT(!st.restorable());
    CPPUNIT_ASSERT(st.reasons() & SessionState::kSessionOnly);
    CPPUNIT_ASSERT(st.variables().empty());  // never replayed
    st.reset("");
    CPPUNIT_ASSERT(st.restorable());
    st.apply(report({{"insert_id", zero}, {"time_zone", tz}}));
    CPPUNIT_ASSERT(!st.restorable());
    CPPUNIT_ASSERT_EQUAL(size_t(1), st.variables().size());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SessionStateTest);
