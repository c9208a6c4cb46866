// The statements a shared backend connection holds for every session that
// takes it (multiplexing): found by text, replaced, bounded.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "session/backend_statements.h"

using namespace myrelay;

class BackendStatementsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(BackendStatementsTest);
  CPPUNIT_TEST(found_by_text);
  CPPUNIT_TEST(replaced_one_is_closed);
  CPPUNIT_TEST(bounded);
  CPPUNIT_TEST_SUITE_END();

 public:
  static BackendStatements::Entry entry(uint32_t id, uint32_t binder = 1) {
    BackendStatements::Entry e;
    e.backend_id = id;
    e.columns = 1;
    e.params = 2;
    e.metadata = 99;
    e.last_binder = binder;
    return e;
  }

  void found_by_text() {
    BackendStatements b;
    CPPUNIT_ASSERT(!b.find("SELECT ?"));
    b.add("SELECT ?", entry(7));
    BackendStatements::Entry* e = b.find("SELECT ?");
    CPPUNIT_ASSERT(e);
    CPPUNIT_ASSERT_EQUAL(uint32_t(7), e->backend_id);
    CPPUNIT_ASSERT(b.alive(7));
    CPPUNIT_ASSERT(!b.alive(8));
    CPPUNIT_ASSERT_EQUAL(e, b.by_id(7));
    CPPUNIT_ASSERT(!b.find("select ?"));  // the text as the client sent it
    CPPUNIT_ASSERT(b.take_closable().empty());
  }

  // A second session prepared the same text: the newer backend statement
  // serves everyone, the older is closed (no session uses it any more: each
  // finds it dead and takes the newer by its text).
  void replaced_one_is_closed() {
    BackendStatements b;
    b.add("SELECT ?", entry(7));
    b.add("SELECT ?", entry(9, 2));
    CPPUNIT_ASSERT(!b.alive(7));
    CPPUNIT_ASSERT(b.alive(9));
    CPPUNIT_ASSERT(!b.by_id(7));
    CPPUNIT_ASSERT_EQUAL(uint32_t(2), b.find("SELECT ?")->last_binder);
    std::vector<uint32_t> closable = b.take_closable();
    CPPUNIT_ASSERT_EQUAL(size_t(1), closable.size());
    CPPUNIT_ASSERT_EQUAL(uint32_t(7), closable[0]);
    CPPUNIT_ASSERT(b.take_closable().empty());  // once
    b.add("SELECT ?", entry(9));  // the same again: nothing changes
    CPPUNIT_ASSERT(b.take_closable().empty());
    CPPUNIT_ASSERT_EQUAL(size_t(1), b.size());
  }

  // The oldest go beyond kMax, so one connection never holds more than
  // the server allows many connections together.
  void bounded() {
    BackendStatements b;
    const uint32_t n = uint32_t(BackendStatements::kMax) + 10;
    for (uint32_t i = 1; i <= n; ++i) b.add("SELECT " + std::to_string(i), entry(i));
    CPPUNIT_ASSERT_EQUAL(BackendStatements::kMax, b.size());
    std::vector<uint32_t> closable = b.take_closable();
    CPPUNIT_ASSERT_EQUAL(size_t(10), closable.size());
    for (uint32_t i = 1; i <= 10; ++i) {
      CPPUNIT_ASSERT_EQUAL(i, closable[i - 1]);
      CPPUNIT_ASSERT(!b.alive(i));
      CPPUNIT_ASSERT(!b.find("SELECT " + std::to_string(i)));
    }
    CPPUNIT_ASSERT(b.alive(n));
    // Replacements keep counting right after evictions.
    for (int round = 0; round < 3; ++round)
      for (uint32_t i = 11; i <= n; ++i) b.add("SELECT " + std::to_string(i), entry(n * (round + 1) + i));
    CPPUNIT_ASSERT_EQUAL(BackendStatements::kMax, b.size());
    CPPUNIT_ASSERT_EQUAL(size_t(3) * BackendStatements::kMax, b.take_closable().size());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(BackendStatementsTest);
