// Session records as SHOW PROXYSESSION prints them, and id lookup: a cs_id
// names one session; a connection_id may name several, which callers refuse.
#include <cppunit/extensions/HelperMacros.h>

#include "control/id_resolver.h"
#include "control/session_view.h"
#include "control/shm_table.h"

using namespace myrelay;
using namespace myrelay::shm;

namespace {

SessionRecord make(uint32_t cs_id, uint32_t server_sessid, uint64_t ss_id) {
  SessionRecord r{};
  r.in_use = 1;
  r.cs_id = cs_id;
  r.proxy_sessid = cs_id;
  r.servers[0].ss_id = ss_id;
  r.servers[0].server_sessid = server_sessid;
  r.svr_session_count = 1;
  set_field(r.cluster, "main");
  set_field(r.tenant, "app");
  set_field(r.user, "app");
  set_field(r.host_ip, "127.0.0.1");
  r.host_port = 5000;
  r.state = 2;
  return r;
}

}  // namespace

class SessionViewTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SessionViewTest);
  CPPUNIT_TEST(find_by_cs_id);
  CPPUNIT_TEST(find_by_connection_id_may_be_ambiguous);
  CPPUNIT_TEST(row_matches_columns);
  CPPUNIT_TEST(attributes_of_server_sessions);
  CPPUNIT_TEST(tls_attributes);
  CPPUNIT_TEST_SUITE_END();

 public:
  void find_by_cs_id() {
    std::vector<SessionRecord> all = {make(0x80000001, 10, 1), make(0x80000002, 11, 2)};
    IdMatch m = resolve_id(all, 0x80000002);
    CPPUNIT_ASSERT(m.outcome == IdMatch::Outcome::Found);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000002), m.session->cs_id);
    CPPUNIT_ASSERT(resolve_id(all, 0x80000003).outcome == IdMatch::Outcome::Unknown);
    CPPUNIT_ASSERT(resolve_id(all, 0).outcome == IdMatch::Outcome::Unknown);
    CPPUNIT_ASSERT(resolve_id(all, 1ull << 40).outcome == IdMatch::Outcome::Unknown);
    // Only eligible sessions count.
    auto not_second = [](const SessionRecord& r) { return r.cs_id != 0x80000002; };
    CPPUNIT_ASSERT(resolve_id(all, 0x80000002, not_second).outcome == IdMatch::Outcome::Unknown);
  }

  void find_by_connection_id_may_be_ambiguous() {
    // Two backends gave the same thread id to two sessions' server sessions.
    std::vector<SessionRecord> all = {make(0x80000001, 42, 1), make(0x80000002, 42, 2),
                                      make(0x80000003, 43, 3)};
    IdMatch two = resolve_id(all, 42);
    CPPUNIT_ASSERT(two.outcome == IdMatch::Outcome::Ambiguous);
    CPPUNIT_ASSERT(two.session == nullptr);
    CPPUNIT_ASSERT_EQUAL(std::string("it is the backend connection id of 2 sessions (Id 2147483649, 2147483650)"),
                         ambiguity(two));
    // The eligibility rule can make it unambiguous.
    IdMatch first = resolve_id(all, 42, [](const SessionRecord& r) { return r.cs_id == 0x80000001; });
    CPPUNIT_ASSERT(first.outcome == IdMatch::Outcome::Found);
    IdMatch one = resolve_id(all, 43);
    CPPUNIT_ASSERT(one.outcome == IdMatch::Outcome::Found);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000003), one.session->cs_id);
    // A free server-session entry (ss_id 0) never matches.
    all[2].servers[0].ss_id = 0;
    CPPUNIT_ASSERT(resolve_id(all, 43).outcome == IdMatch::Outcome::Unknown);
    CPPUNIT_ASSERT(has_server_session(all[0], 1));
    CPPUNIT_ASSERT(!has_server_session(all[0], 2));
    CPPUNIT_ASSERT(!has_server_session(all[0], 0));
  }

  void row_matches_columns() {
    SessionRecord r = make(0x80000007, 5, 9);
    auto row = view::session_row(r, 1234);
    CPPUNIT_ASSERT_EQUAL(view::session_columns().size(), row.size());
    CPPUNIT_ASSERT_EQUAL(std::string("2147483655"), *row[1]);
    CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1:5000"), *row[5]);
    CPPUNIT_ASSERT(!row[6]);  // no database: NULL
    CPPUNIT_ASSERT_EQUAL(std::string("MCS_KEEP_ALIVE"), *row[9]);
    CPPUNIT_ASSERT_EQUAL(std::string("1234"), *row[11]);
    r.has_db = 1;
    set_field(r.db, "test");
    CPPUNIT_ASSERT_EQUAL(std::string("test"), *view::session_row(r, 1)[6]);
  }

  void attributes_of_server_sessions() {
    SessionRecord r = make(0x80000007, 5, 9);
    r.servers[1].ss_id = 10;
    r.servers[1].server_sessid = 6;
    auto attrs = view::session_attributes(r, 1, view::now_us());
    int ss_rows = 0;
    for (auto& a : attrs) {
      if (a.name == "ss_id") {
        ++ss_rows;
        CPPUNIT_ASSERT(a.info.find("ss_id " + *a.value) != std::string::npos);
      }
    }
    CPPUNIT_ASSERT_EQUAL(2, ss_rows);
    CPPUNIT_ASSERT_EQUAL(std::string("proxy_sessid"), attrs.front().name);
  }

  // using_ssl, and tls_version and tls_cipher: NULL without TLS.
  void tls_attributes() {
    SessionRecord r = make(0x80000008, 5, 9);
    auto value = [](const std::vector<view::Attribute>& attrs, const std::string& name) {
      for (auto& a : attrs)
        if (a.name == name) return a.value ? *a.value : std::string("NULL");
      return std::string("(missing)");
    };
    auto plain = view::session_attributes(r, 1, view::now_us());
    CPPUNIT_ASSERT_EQUAL(std::string("0"), value(plain, "using_ssl"));
    CPPUNIT_ASSERT_EQUAL(std::string("NULL"), value(plain, "tls_version"));
    CPPUNIT_ASSERT_EQUAL(std::string("NULL"), value(plain, "tls_cipher"));
    r.using_ssl = 1;
    set_field(r.tls_version, "TLSv1.3");
    set_field(r.tls_cipher, "TLS_AES_256_GCM_SHA384");
    auto tls = view::session_attributes(r, 1, view::now_us());
    CPPUNIT_ASSERT_EQUAL(std::string("1"), value(tls, "using_ssl"));
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.3"), value(tls, "tls_version"));
    CPPUNIT_ASSERT_EQUAL(std::string("TLS_AES_256_GCM_SHA384"), value(tls, "tls_cipher"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), *view::session_row(r, 1)[12]);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SessionViewTest);
