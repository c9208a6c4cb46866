// The shared-memory session table: layout, stale segments, and the
// changecount protocol under load (writers rewriting slots as fast as they
// can, reader threads and a reader process checking for torn records).
#include <cppunit/extensions/HelperMacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "control/shm_table.h"

using namespace myrelay;
using namespace myrelay::shm;

namespace {

std::string unique_name(const char* what) {
  return std::string("myrelay-unit-") + what + "-" + std::to_string(getpid());
}

// A record whose every word derives from one number, so a mix of two
// writes is detectable.
void fill(SessionRecord& r, uint64_t v) {
  memset(&r, 0, sizeof(r));
  uint64_t* w = reinterpret_cast<uint64_t*>(&r);
  for (size_t i = 0; i < kRecordWords; ++i) w[i] = v * 0x9E3779B97F4A7C15ull + i;
  r.in_use = 1;
}

bool consistent(const SessionRecord& r) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(&r);
  uint64_t base = w[1] - 1;  // word 1 is untouched by in_use
  for (size_t i = 1; i < kRecordWords; ++i)
    if (w[i] != base + i) return false;
  return true;
}

}  // namespace

class ShmTableTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ShmTableTest);
  CPPUNIT_TEST(create_attach_and_layout);
  CPPUNIT_TEST(live_segment_is_refused_dead_one_replaced);
  CPPUNIT_TEST(attach_errors);
  CPPUNIT_TEST(slots_are_handed_out_once);
  CPPUNIT_TEST(fields_always_terminated);
  CPPUNIT_TEST(no_torn_records_under_load);
  CPPUNIT_TEST(write_changes_stores_only_differences);
  CPPUNIT_TEST(write_changes_in_ranges);
  CPPUNIT_TEST(statement_area);
  CPPUNIT_TEST(kill_log_ring);
  CPPUNIT_TEST_SUITE_END();

 public:
  void create_attach_and_layout() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("layout");
    o.worker_count = 3;
    o.slot_count = 17;
    o.proxy_id = 9;
    o.version = "test";
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT_MESSAGE(err, t != nullptr);
    ShmTable::AttachError code;
    auto r = ShmTable::attach(o.name, code, err);
    CPPUNIT_ASSERT_MESSAGE(err, r != nullptr);
    CPPUNIT_ASSERT_EQUAL(uint32_t(3), r->worker_count());
    CPPUNIT_ASSERT_EQUAL(uint32_t(17), r->slot_count());
    CPPUNIT_ASSERT_EQUAL(9, r->header()->proxy_id);
    CPPUNIT_ASSERT_EQUAL(int32_t(getpid()), r->header()->pid);
    CPPUNIT_ASSERT_EQUAL(int32_t(2), r->worker(2)->index);
    // A record written by the daemon side is read back by the reader side.
    SessionRecord rec{};
    rec.in_use = 1;
    rec.cs_id = 0x80000005;
    set_field(rec.user, "app");
    ShmTable::write_record(t->slot(4), rec);
    auto snap = r->snapshot();
    CPPUNIT_ASSERT_EQUAL(size_t(1), snap.size());
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000005), snap[0].cs_id);
    CPPUNIT_ASSERT_EQUAL(std::string("app"), get_field(snap[0].user));
    // Freed: gone from the snapshot.
    rec.in_use = 0;
    ShmTable::write_record(t->slot(4), rec);
    CPPUNIT_ASSERT(r->snapshot().empty());
    t->unlink();
    auto gone = ShmTable::attach(o.name, code, err);
    CPPUNIT_ASSERT(!gone);
    CPPUNIT_ASSERT(code == ShmTable::AttachError::NotFound);
  }

  void live_segment_is_refused_dead_one_replaced() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("stale");
    // A child creates the segment and exits without removing it: stale.
    pid_t child = fork();
    if (child == 0) {
      std::string e;
      auto t = ShmTable::create(o, e);
      _exit(t ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ShmTable::AttachError code;
    CPPUNIT_ASSERT(!ShmTable::attach(o.name, code, err));
    CPPUNIT_ASSERT(code == ShmTable::AttachError::Stale);
    CPPUNIT_ASSERT(err.find("stale") != std::string::npos);
    auto t = ShmTable::create(o, err);  // replaces the dead daemon's segment
    CPPUNIT_ASSERT_MESSAGE(err, t != nullptr);
    // Now a live one (a child process checks, so the pid differs from its own).
    pid_t checker = fork();
    if (checker == 0) {
      std::string e;
      auto again = ShmTable::create(o, e);
      bool refused = !again && e.find("running myrelayd (pid " + std::to_string(getppid())) != std::string::npos;
      _exit(refused ? 0 : 1);
    }
    waitpid(checker, &status, 0);
    CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    t->unlink();
  }

  void attach_errors() {
    std::string err;
    ShmTable::AttachError code;
    CPPUNIT_ASSERT(!ShmTable::attach(unique_name("none"), code, err));
    CPPUNIT_ASSERT(code == ShmTable::AttachError::NotFound);
    CPPUNIT_ASSERT(err.find("is myrelayd running") != std::string::npos);
    // A segment with another layout version.
    ShmTable::CreateOptions o;
    o.name = unique_name("version");
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT(t);
    t->header()->layout_version = kLayoutVersion + 1;
    CPPUNIT_ASSERT(!ShmTable::attach(o.name, code, err));
    CPPUNIT_ASSERT(code == ShmTable::AttachError::VersionMismatch);
    t->header()->layout_version = kLayoutVersion;
    // Regions outside the mapping, past it by overflow, or misaligned (what
    // the fuzzer of the reader found): refused, never read.
    const uint64_t good = t->header()->slots_offset;
    for (uint64_t bad : {good + 8, ~uint64_t(0) - 63, uint64_t(1) << 40}) {
      t->header()->slots_offset = bad;
      CPPUNIT_ASSERT(!ShmTable::attach(o.name, code, err));
      CPPUNIT_ASSERT(code == ShmTable::AttachError::BadLayout);
    }
    t->header()->slots_offset = good;
    const uint32_t slots = t->header()->slot_count;
    t->header()->slot_count = 0xffffffffu;
    CPPUNIT_ASSERT(!ShmTable::attach(o.name, code, err));
    CPPUNIT_ASSERT(code == ShmTable::AttachError::BadLayout);
    t->header()->slot_count = slots;
    CPPUNIT_ASSERT(ShmTable::attach(o.name, code, err));
    t->header()->magic = 0x1234;
    CPPUNIT_ASSERT(!ShmTable::attach(o.name, code, err));
    CPPUNIT_ASSERT(code == ShmTable::AttachError::BadLayout);
    t->unlink();
  }

  void slots_are_handed_out_once() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("slots");
    o.slot_count = 3;
    auto t = ShmTable::create(o, err);
    int a = t->acquire_slot(), b = t->acquire_slot(), c = t->acquire_slot();
    CPPUNIT_ASSERT(a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c);
    CPPUNIT_ASSERT_EQUAL(-1, t->acquire_slot());
    CPPUNIT_ASSERT_EQUAL(uint64_t(3), t->header()->sessions_in_use.load());
    t->release_slot(uint32_t(b));
    CPPUNIT_ASSERT_EQUAL(b, t->acquire_slot());
    t->unlink();
  }

  void fields_always_terminated() {
    char f[8];
    set_field(f, "much too long for this");
    CPPUNIT_ASSERT_EQUAL(std::string("much to"), get_field(f));
    memset(f, 'x', sizeof(f));  // a writer that forgot the NUL
    CPPUNIT_ASSERT_EQUAL(size_t(8), get_field(f).size());
  }

  // The ranged form looks only at its words: a change elsewhere is not
  // stored (the caller promises there is none), a change inside is.
  void write_changes_in_ranges() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("ranges");
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT(t);
    Slot* s = t->slot(0);
    SessionRecord rec{};
    rec.in_use = 1;
    set_field(rec.user, "app");
    ShmTable::write_changes(s, rec);
    uint32_t c = s->changecount.load();
    const ShmTable::WordRange queries_only[] = {
        ShmTable::words_of(offsetof(SessionRecord, queries), sizeof(rec.queries))};
    rec.cs_id = 42;  // outside the range
    ShmTable::write_changes(s, rec, queries_only, 1);
    CPPUNIT_ASSERT_EQUAL(c, s->changecount.load());
    rec.queries = 9;
    rec.in_use = 0;  // not in the range: a partial writer's record need not say
    ShmTable::write_changes(s, rec, queries_only, 1);
    CPPUNIT_ASSERT_EQUAL(c + 2, s->changecount.load());
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), s->occupied.load());  // readers still look at the slot
    SessionRecord back;
    CPPUNIT_ASSERT(ShmTable::read_record(s, back));
    CPPUNIT_ASSERT_EQUAL(uint64_t(9), back.queries);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), back.cs_id);
    CPPUNIT_ASSERT_EQUAL(std::string("app"), get_field(back.user));
    // words_of covers every byte of a field, straddling words or not.
    CPPUNIT_ASSERT_EQUAL(size_t(1), ShmTable::words_of(8, 8).begin);
    CPPUNIT_ASSERT_EQUAL(size_t(2), ShmTable::words_of(8, 8).end);
    CPPUNIT_ASSERT_EQUAL(size_t(0), ShmTable::words_of(6, 4).begin);
    CPPUNIT_ASSERT_EQUAL(size_t(2), ShmTable::words_of(6, 4).end);
  }

  void write_changes_stores_only_differences() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("changes");
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT(t);
    Slot* s = t->slot(0);
    SessionRecord rec{};
    rec.in_use = 1;
    rec.cs_id = 0x80000001;
    set_field(rec.user, "app");
    ShmTable::write_changes(s, rec);
    uint32_t c1 = s->changecount.load();
    CPPUNIT_ASSERT_EQUAL(uint32_t(2), c1);
    // Nothing changed: the slot is not touched at all.
    ShmTable::write_changes(s, rec);
    CPPUNIT_ASSERT_EQUAL(c1, s->changecount.load());
    rec.queries = 7;
    ShmTable::write_changes(s, rec);
    CPPUNIT_ASSERT_EQUAL(c1 + 2, s->changecount.load());
    SessionRecord back;
    CPPUNIT_ASSERT(ShmTable::read_record(s, back));
    CPPUNIT_ASSERT(memcmp(&back, &rec, sizeof(rec)) == 0);
    // Freeing writes the all-zero record.
    SessionRecord freed{};
    ShmTable::write_changes(s, freed);
    CPPUNIT_ASSERT(ShmTable::read_record(s, back));
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), back.in_use);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), back.cs_id);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), s->occupied.load());
    t->unlink();
  }

  void no_torn_records_under_load() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("torn");
    o.slot_count = 4;
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT(t);
    SessionRecord init;
    for (uint32_t i = 0; i < 4; ++i) {
      fill(init, i);
      ShmTable::write_record(t->slot(i), init);
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> writes{0}, reads{0}, torn{0};
    // Two writer threads, each owning two slots (only the owner writes a slot).
    std::vector<std::thread> threads;
    for (uint32_t w = 0; w < 2; ++w)
      threads.emplace_back([&, w] {
        // Writer 0 stores whole records, writer 1 only changed words (as
        // sessions do); the readers must see neither torn.
        SessionRecord r;
        uint64_t v = 1000 * (w + 1);
        while (!stop.load(std::memory_order_relaxed)) {
          for (uint32_t s = w * 2; s < w * 2 + 2; ++s) {
            fill(r, ++v);
            if (w == 0)
              ShmTable::write_record(t->slot(s), r);
            else
              ShmTable::write_changes(t->slot(s), r);
            writes.fetch_add(1, std::memory_order_relaxed);
          }
        }
      });
    for (int rd = 0; rd < 2; ++rd)
      threads.emplace_back([&] {
        SessionRecord r;
        while (!stop.load(std::memory_order_relaxed)) {
          for (uint32_t s = 0; s < 4; ++s) {
            if (ShmTable::read_record(t->slot(s), r, 1000000)) {
              reads.fetch_add(1, std::memory_order_relaxed);
              if (!consistent(r)) torn.fetch_add(1, std::memory_order_relaxed);
            }
          }
        }
      });
    // And a reader in another process, through its own read-only mapping.
    pid_t child = fork();
    if (child == 0) {
      std::string e;
      ShmTable::AttachError code;
      auto r = ShmTable::attach(o.name, code, e);
      if (!r) _exit(2);
      SessionRecord rec;
      uint64_t n = 0;
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
      while (std::chrono::steady_clock::now() < until) {
        for (uint32_t s = 0; s < 4; ++s) {
          if (ShmTable::read_record(r->slot(s), rec, 1000000)) {
            ++n;
            if (!consistent(rec)) _exit(1);
          }
        }
      }
      _exit(n > 0 ? 0 : 3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    stop = true;
    for (auto& th : threads) th.join();
    int status = 0;
    waitpid(child, &status, 0);
    t->unlink();
    CPPUNIT_ASSERT_MESSAGE("the reader process saw a torn record or none",
                           WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CPPUNIT_ASSERT(writes.load() > 1000);
    CPPUNIT_ASSERT(reads.load() > 1000);
    CPPUNIT_ASSERT_EQUAL(uint64_t(0), torn.load());
  }

  // The statement area: cut at kStatementBytes, emptied (an empty view may
  // have no data pointer), and ended.
  void statement_area() {
    auto slot = std::make_unique<shm::Slot>();
    ShmTable::Statement st;
    ShmTable::write_statement(slot.get(), std::string(600, 'x'), 5);
    CPPUNIT_ASSERT(ShmTable::read_statement(slot.get(), st));
    CPPUNIT_ASSERT_EQUAL(shm::kStatementBytes, st.text.size());
    CPPUNIT_ASSERT_EQUAL(int64_t(5), st.start_us);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), st.end_us);
    ShmTable::end_statement(slot.get(), 9);
    CPPUNIT_ASSERT(ShmTable::read_statement(slot.get(), st));
    CPPUNIT_ASSERT_EQUAL(int64_t(9), st.end_us);
    ShmTable::write_statement(slot.get(), "SELECT 1", 10);
    CPPUNIT_ASSERT(ShmTable::read_statement(slot.get(), st));
    CPPUNIT_ASSERT_EQUAL(std::string("SELECT 1"), st.text);
    ShmTable::write_statement(slot.get(), std::string_view(), 0);
    CPPUNIT_ASSERT(ShmTable::read_statement(slot.get(), st));
    CPPUNIT_ASSERT(st.text.empty());
    CPPUNIT_ASSERT_EQUAL(int64_t(0), st.start_us);
  }

  // The kill log: a ring of the newest entries, written by several threads
  // at once, never torn, newest first, and found by an outside reader.
  void kill_log_ring() {
    std::string err;
    ShmTable::CreateOptions o;
    o.name = unique_name("kills");
    o.kill_log_size = 16;
    auto t = ShmTable::create(o, err);
    CPPUNIT_ASSERT_MESSAGE(err, t != nullptr);
    CPPUNIT_ASSERT(t->recent_kills(10).empty());
    auto entry = [](uint32_t n) {
      KillRecord r{};
      r.cs_id = n;
      r.time_us = n;
      r.statement_ms = -1;
      for (size_t i = 0; i < sizeof r.statement - 1; ++i) r.statement[i] = char('a' + n % 26);
      return r;
    };
    for (uint32_t i = 1; i <= 5; ++i) t->record_kill(entry(i));
    auto k = t->recent_kills(100);
    CPPUNIT_ASSERT_EQUAL(size_t(5), k.size());
    CPPUNIT_ASSERT_EQUAL(uint32_t(5), k[0].cs_id);  // newest first
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), k[4].cs_id);
    // Four threads, 2,000 entries each: the ring keeps the last 16, whole.
    std::vector<std::thread> writers;
    for (uint32_t w = 0; w < 4; ++w)
      writers.emplace_back([&, w] {
        for (uint32_t i = 0; i < 2000; ++i) t->record_kill(entry(1000000 * (w + 1) + i));
      });
    std::atomic<bool> torn{false};
    std::thread reader([&] {
      for (int i = 0; i < 200; ++i)
        for (const auto& r : t->recent_kills(16))
          if (r.statement[0] != char('a' + r.cs_id % 26) || r.statement[100] != r.statement[0]) torn = true;
    });
    for (auto& w : writers) w.join();
    reader.join();
    CPPUNIT_ASSERT(!torn);
    k = t->recent_kills(100);
    CPPUNIT_ASSERT_EQUAL(size_t(16), k.size());
    CPPUNIT_ASSERT_EQUAL(uint64_t(8005), t->header()->kill_next.load());
    // A filter, and a limit.
    auto odd = t->recent_kills(100, [](const KillRecord& r) { return r.cs_id % 2 == 1; });
    for (const auto& r : odd) CPPUNIT_ASSERT(r.cs_id % 2 == 1);
    CPPUNIT_ASSERT_EQUAL(size_t(3), t->recent_kills(3).size());
    // What myrelayctl sees.
    ShmTable::AttachError code;
    auto reader_view = ShmTable::attach(o.name, code, err);
    CPPUNIT_ASSERT_MESSAGE(err, reader_view != nullptr);
    CPPUNIT_ASSERT_EQUAL(size_t(16), reader_view->recent_kills(100).size());
    t->unlink();
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ShmTableTest);
