// A worker's inbox: items are never lost, whatever the notify pipe holds,
// and they come out in the order they went in.
#include <cppunit/extensions/HelperMacros.h>
#include <poll.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "service/worker_inbox.h"

using namespace myrelay;

namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

InboxItem drain(int grace) {
  InboxItem it;
  it.kind = InboxItem::Kind::Drain;
  it.grace_s = grace;
  return it;
}

}  // namespace

class WorkerInboxTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(WorkerInboxTest);
  CPPUNIT_TEST(one_wakeup_for_a_burst);
  CPPUNIT_TEST(nothing_lost_past_the_pipe_capacity);
  CPPUNIT_TEST(posts_from_many_threads);
  CPPUNIT_TEST_SUITE_END();

 public:
  void one_wakeup_for_a_burst() {
    WorkerInbox inbox;
    std::string error;
    CPPUNIT_ASSERT(inbox.open(error));
    CPPUNIT_ASSERT(!readable(inbox.wake_fd()));
    inbox.post(drain(1));
    CPPUNIT_ASSERT(readable(inbox.wake_fd()));
    inbox.post(drain(2));
    InboxItem stop;
    stop.kind = InboxItem::Kind::Stop;
    inbox.post(stop);
    auto items = inbox.take_all();
    CPPUNIT_ASSERT_EQUAL(size_t(3), items.size());
    CPPUNIT_ASSERT_EQUAL(2, items[1].grace_s);
    CPPUNIT_ASSERT(items[2].kind == InboxItem::Kind::Stop);
    CPPUNIT_ASSERT(!readable(inbox.wake_fd()));  // the wake-up was consumed
    CPPUNIT_ASSERT(inbox.take_all().empty());
  }

  void nothing_lost_past_the_pipe_capacity() {
    // Far more items than a pipe holds bytes: a stop at the end still arrives.
    WorkerInbox inbox;
    std::string error;
    CPPUNIT_ASSERT(inbox.open(error));
    const int n = 200000;
    for (int i = 0; i < n; ++i) inbox.post(drain(i));
    InboxItem stop;
    stop.kind = InboxItem::Kind::Stop;
    inbox.post(stop);
    CPPUNIT_ASSERT(readable(inbox.wake_fd()));
    auto items = inbox.take_all();
    CPPUNIT_ASSERT_EQUAL(size_t(n + 1), items.size());
    CPPUNIT_ASSERT(items.back().kind == InboxItem::Kind::Stop);
    for (int i = 0; i < n; i += 9973) CPPUNIT_ASSERT_EQUAL(i, items[size_t(i)].grace_s);
  }

  void posts_from_many_threads() {
    WorkerInbox inbox;
    std::string error;
    CPPUNIT_ASSERT(inbox.open(error));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&inbox, t] {
        for (int i = 0; i < 5000; ++i) inbox.post(drain(t));
      });
    size_t got = 0;
    int rounds = 0;
    while (got < 20000 && rounds++ < 100000) {
      pollfd p{inbox.wake_fd(), POLLIN, 0};
      poll(&p, 1, 10);
      got += inbox.take_all().size();
    }
    for (auto& th : threads) th.join();
    got += inbox.take_all().size();
    CPPUNIT_ASSERT_EQUAL(size_t(20000), got);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(WorkerInboxTest);
