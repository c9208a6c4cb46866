// Routing without sessions: which statements a replica may run, the choice
// of the write and read servers from the health words, the health table's
// state transitions, and reading a text result set.
#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "control/shm_table.h"
#include "protocol/codec.h"
#include "protocol/packets.h"
#include "protocol/text_result.h"
#include "routing/router.h"
#include "routing/server_health.h"
#include "routing/statement_route.h"
#include "service/log.h"

using namespace myrelay;
using namespace myrelay::routing;

namespace {

Cluster two_replicas() {
  Cluster c;
  c.name = "main";
  for (int i = 0; i < 3; ++i) {
    BackendServer s;
    s.address = {"127.0.0.1", uint16_t(3306 + i)};
    s.role = i == 0 ? ServerRole::Primary : ServerRole::Replica;
    s.health = i;
    c.servers.push_back(s);
  }
  return c;
}

}  // namespace

class RoutingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RoutingTest);
  CPPUNIT_TEST(replica_safe_selects);
  CPPUNIT_TEST(hints);
  CPPUNIT_TEST(write_server_follows_read_only);
  CPPUNIT_TEST(reads_by_weight);
  CPPUNIT_TEST(health_transitions);
  CPPUNIT_TEST(text_result);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override { log_set_level(LogLevel::Error); }
  void tearDown() override { log_set_level(LogLevel::Info); }

  void replica_safe_selects() {
    for (const char* sql : {"SELECT 1", "select * from t where id = 3", "  SELECT a, @@sql_mode FROM t",
                            "(SELECT 1) UNION (SELECT 2)", "/* c */ SELECT 'FOR UPDATE' FROM t",
                            "SELECT `lock` FROM t", "SELECT 1;", "SELECT NOW()"}) {
      StatementRoute r = classify_statement(sql);
      CPPUNIT_ASSERT_MESSAGE(sql, r.select && r.replica_safe);
    }
    for (const char* sql :
         {"SELECT * FROM t FOR UPDATE", "SELECT * FROM t LOCK IN SHARE MODE", "SELECT GET_LOCK('a', 1)",
          "select release_lock('a')", "SELECT LAST_INSERT_ID()", "SELECT FOUND_ROWS()", "SELECT ROW_COUNT()",
          "SELECT NEXTVAL(s)", "SELECT NEXT VALUE FOR s", "SELECT LASTVAL(s)", "SELECT SETVAL(s, 1)",
          "SELECT @a := 1", "SELECT @a", "SELECT 1 INTO @x", "SELECT * INTO OUTFILE '/tmp/x' FROM t",
          "SELECT SQL_CALC_FOUND_ROWS * FROM t", "SELECT @@last_insert_id", "SELECT @@session.last_gtid",
          "SELECT CONNECTION_ID()", "SELECT 1; SELECT 2", "SELECT 1; DELETE FROM t", "SELECT /*! 1 FOR UPDATE */",
          "SELECT MASTER_GTID_WAIT('0-1-1')", "SELECT 'a\\' FOR UPDATE -- '"}) {
      StatementRoute r = classify_statement(sql);
      CPPUNIT_ASSERT_MESSAGE(sql, !r.replica_safe);
    }
    for (const char* sql : {"INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "SET @a = 1", "SHOW TABLES",
                            "CALL p()", "DO 1", "WITH x AS (SELECT 1) DELETE FROM t", ""}) {
      StatementRoute r = classify_statement(sql);
      CPPUNIT_ASSERT_MESSAGE(sql, !r.select && !r.replica_safe);
    }
  }

  void hints() {
    CPPUNIT_ASSERT(classify_statement("SELECT /*+ READ_CONSISTENCY(WEAK) */ FOUND_ROWS()").hint == Consistency::Weak);
    CPPUNIT_ASSERT(classify_statement("select /*+read_consistency( strong )*/ 1").hint == Consistency::Strong);
    CPPUNIT_ASSERT(classify_statement("/*+ READ_CONSISTENCY(WEAK) */ SELECT 1").hint == Consistency::Weak);
    CPPUNIT_ASSERT(classify_statement("SELECT 1 /* READ_CONSISTENCY(WEAK) */").hint == Consistency::Default);
    CPPUNIT_ASSERT(classify_statement("SELECT '/*+ READ_CONSISTENCY(WEAK)'").hint == Consistency::Default);
  }

  void write_server_follows_read_only() {
    Cluster c = two_replicas();
    uint32_t bits[3] = {shm::kRouteUp | shm::kRouteWritable, shm::kRouteUp | shm::kRouteReadable,
                        shm::kRouteUp | shm::kRouteReadable};
    Routing r = [&](const BackendServer& s) { return bits[s.health]; };
    CPPUNIT_ASSERT_EQUAL(3306, int(write_server(c, r)->address.port));
    // A failover: the primary read-only, a replica promoted.
    bits[0] = shm::kRouteUp;
    bits[2] = shm::kRouteUp | shm::kRouteWritable;
    CPPUNIT_ASSERT_EQUAL(3308, int(write_server(c, r)->address.port));
    // None writable: writes wait; a login still goes where it can.
    bits[2] = shm::kRouteUp;
    CPPUNIT_ASSERT(write_server(c, r) == nullptr);
    CPPUNIT_ASSERT_EQUAL(3306, int(login_server(c, r)->address.port));
    bits[0] = 0;  // the primary down
    CPPUNIT_ASSERT_EQUAL(3307, int(login_server(c, r)->address.port));
  }

  void reads_by_weight() {
    Cluster c = two_replicas();
    c.servers[1].weight = 3;  // 3:1 between the replicas, none for the primary
    uint32_t bits[3] = {shm::kRouteUp | shm::kRouteWritable, shm::kRouteUp | shm::kRouteReadable,
                        shm::kRouteUp | shm::kRouteReadable};
    Routing r = [&](const BackendServer& s) { return bits[s.health]; };
    ReadBalancer b;
    std::map<int, int> got;
    for (int i = 0; i < 400; ++i) ++got[b.pick(c, r)->address.port];
    CPPUNIT_ASSERT_EQUAL(300, got[3307]);
    CPPUNIT_ASSERT_EQUAL(100, got[3308]);
    CPPUNIT_ASSERT_EQUAL(0, got[3306]);
    // A primary with a weight reads too; a lagging replica does not.
    c.servers[0].weight = 1;
    bits[1] = shm::kRouteUp;
    got.clear();
    for (int i = 0; i < 100; ++i) ++got[b.pick(c, r)->address.port];
    CPPUNIT_ASSERT_EQUAL(50, got[3306]);
    CPPUNIT_ASSERT_EQUAL(50, got[3308]);
    bits[0] = bits[2] = shm::kRouteUp;  // nobody may take reads
    c.servers[0].weight = -1;
    CPPUNIT_ASSERT(b.pick(c, r) == nullptr);
  }

  void health_transitions() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = "myrelay-unit-health-" + std::to_string(getpid());
    o.server_count = 4;
    auto shm = ShmTable::create(o, err);
    CPPUNIT_ASSERT_MESSAGE(err, shm != nullptr);
    ServerHealthTable table(*shm);
    Config cfg;
    cfg.clusters.push_back(two_replicas());
    cfg.clusters[0].max_replica_lag_s = 5;
    table.assign(cfg);
    const Cluster& cl = cfg.clusters[0];
    auto bits = [&](int i) { return table.entry(cl.servers[size_t(i)].health).routing.load(); };
    // Unchecked: as configured.
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp | shm::kRouteWritable), bits(0));
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp | shm::kRouteReadable), bits(1));
    CheckResult ok;
    ok.ok = true;
    ok.read_only = true;
    ok.replicating = true;
    ok.lag_s = 2;
    table.record(cl.servers[1].health, cl, ok, 1);
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp | shm::kRouteReadable), bits(1));
    ok.lag_s = 9;  // over max_replica_lag_s: lagging
    table.record(cl.servers[1].health, cl, ok, 2);
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp), bits(1));
    ok.lag_s = -1;  // replication stopped (NULL)
    table.record(cl.servers[1].health, cl, ok, 3);
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp), bits(1));
    shm::ServerHealthRecord rec;
    ShmTable::read_server(&table.entry(cl.servers[1].health), rec);
    CPPUNIT_ASSERT_EQUAL(uint8_t(shm::ServerState::Lagging), rec.state);
    // Down after three failed checks, at once when refused.
    CheckResult bad;
    bad.error = "timed out";
    table.record(cl.servers[2].health, cl, bad, 4);
    table.record(cl.servers[2].health, cl, bad, 5);
    CPPUNIT_ASSERT(bits(2) & shm::kRouteUp);
    table.record(cl.servers[2].health, cl, bad, 6);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), bits(2));
    bad.refused = true;
    table.record(cl.servers[0].health, cl, bad, 7);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), bits(0));
    // Back, and read-only now: a replica.
    table.record(cl.servers[0].health, cl, ok, 8);
    CPPUNIT_ASSERT_EQUAL(uint32_t(shm::kRouteUp), bits(0));  // lag NULL: no reads either
    ShmTable::read_server(&table.entry(cl.servers[0].health), rec);
    CPPUNIT_ASSERT_EQUAL(uint8_t(1), rec.role);
    CPPUNIT_ASSERT_EQUAL(int64_t(8), rec.last_check_us);
    // A reload keeps entries of servers that stay, frees the removed ones'.
    int kept = cl.servers[1].health;
    Config again;
    again.clusters.push_back(two_replicas());
    again.clusters[0].servers.erase(again.clusters[0].servers.begin() + 2);
    table.assign(again);
    CPPUNIT_ASSERT_EQUAL(kept, again.clusters[0].servers[1].health);
    ShmTable::read_server(&table.entry(2), rec);
    CPPUNIT_ASSERT(rec.in_use != shm::kServerConfigured);
    shm->unlink();
  }

  void text_result() {
    using namespace proto;
    ColumnDef a, b;
    a.name = "Slave_SQL_Running";
    b.name = "Seconds_Behind_Master";
    std::vector<std::string> packets;
    uint8_t seq = 1;
    std::string wire = build_text_resultset({a, b}, {{std::string("Yes"), std::nullopt}}, CLIENT_PROTOCOL_41, 0, seq);
    size_t off = 0;
    while (off < wire.size()) {
      uint8_t fs, ls;
      std::string p;
      size_t used = 0;
      CPPUNIT_ASSERT(read_packet(std::string_view(wire).substr(off), 1 << 24, fs, ls, p, used) == ReadStatus::Complete);
      packets.push_back(p);
      off += used;
    }
    TextResult r;
    std::string err;
    CPPUNIT_ASSERT_MESSAGE(err, parse_text_result(packets, r, err));
    CPPUNIT_ASSERT_EQUAL(1, r.column("seconds_behind_master"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), r.rows.size());
    CPPUNIT_ASSERT(!r.rows[0][1]);
    CPPUNIT_ASSERT_EQUAL(std::string("Yes"), *r.rows[0][0]);
    CPPUNIT_ASSERT(!parse_text_result({build_err(1227, "42000", "denied")}, r, err));
    CPPUNIT_ASSERT_EQUAL(std::string("1227 denied"), err);
    packets.pop_back();  // no end
    CPPUNIT_ASSERT(!parse_text_result(packets, r, err));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(RoutingTest);
