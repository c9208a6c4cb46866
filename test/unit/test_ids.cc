// Session ids: cs_id layout, reuse skipping, proxy_sessid uniqueness.
#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <thread>
#include <vector>

#include "session/ids.h"

using namespace myrelay;

class IdsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(IdsTest);
  CPPUNIT_TEST(cs_id_layout);
  CPPUNIT_TEST(cs_id_skips_ids_in_use);
  CPPUNIT_TEST(cs_ids_unique_across_threads);
  CPPUNIT_TEST(proxy_sessid_layout_and_wrap);
  CPPUNIT_TEST_SUITE_END();

 public:
  void cs_id_layout() {
    IdAllocator ids(5, 1700000000);
    uint32_t id = ids.acquire_cs_id();
    CPPUNIT_ASSERT(is_cs_id(id));
    CPPUNIT_ASSERT_EQUAL(5, cs_id_proxy(id));
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), id & kCsIdSeqMask);
    CPPUNIT_ASSERT(!is_cs_id(12345));  // a backend connection id
    CPPUNIT_ASSERT(ids.cs_id_in_use(id));
    ids.release_cs_id(id);
    CPPUNIT_ASSERT(!ids.cs_id_in_use(id));
  }

  void cs_id_skips_ids_in_use() {
    IdAllocator ids(0, 0);
    std::vector<uint32_t> held;
    // Take every sequence value but one, then wrap around.
    uint32_t first = ids.acquire_cs_id();
    held.push_back(first);
    for (uint32_t i = 1; i < kCsIdSeqMask - 1; ++i) held.push_back(ids.acquire_cs_id());
    uint32_t last = ids.acquire_cs_id();  // the final free value
    CPPUNIT_ASSERT(last != 0);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), ids.acquire_cs_id());  // all taken
    ids.release_cs_id(held[100]);
    CPPUNIT_ASSERT_EQUAL(held[100], ids.acquire_cs_id());  // the only free one, after a wrap
  }

  void cs_ids_unique_across_threads() {
    IdAllocator ids(1, 0);
    std::vector<std::vector<uint32_t>> got(4);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 20000; ++i) got[t].push_back(ids.acquire_cs_id());
      });
    for (auto& t : ts) t.join();
    std::set<uint32_t> all;
    for (auto& v : got) all.insert(v.begin(), v.end());
    CPPUNIT_ASSERT_EQUAL(size_t(80000), all.size());
  }

  void proxy_sessid_layout_and_wrap() {
    IdAllocator ids(3, 1000);
    uint64_t a = ids.next_proxy_sessid();
    CPPUNIT_ASSERT_EQUAL(uint64_t(3), a >> 56);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1000), (a >> 24) & 0xffffffff);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), a & 0xffffff);
    CPPUNIT_ASSERT(a < (uint64_t(1) << 63));
    uint64_t prev = a;
    for (uint32_t i = 1; i < kCsIdSeqMask + 5; ++i) {
      uint64_t n = ids.next_proxy_sessid();
      if (n <= prev) CPPUNIT_FAIL("proxy_sessid not increasing across the sequence wrap");
      prev = n;
    }
    CPPUNIT_ASSERT_EQUAL(uint64_t(1001), (prev >> 24) & 0xffffffff);
    CPPUNIT_ASSERT(ids.next_ss_id() < ids.next_ss_id());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(IdsTest);
