// Control pipe records: round trip, split arrival, garbage, and a real FIFO.
#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "control/control_pipe.h"

using namespace myrelay::control;

class ControlPipeTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ControlPipeTest);
  CPPUNIT_TEST(round_trip);
  CPPUNIT_TEST(split_arrival);
  CPPUNIT_TEST(garbage_is_dropped);
  CPPUNIT_TEST(corrupted_record_is_dropped);
  CPPUNIT_TEST(near_records_cost_linear_work);
  CPPUNIT_TEST(fifo_send_and_modes);
  CPPUNIT_TEST_SUITE_END();

  static Request sample() {
    Request r;
    r.type = RequestType::KillServerSession;
    r.cs_id = 0x80000042;
    r.proxy_sessid = 0x0123456789abcdefull;
    r.ss_id = 77;
    r.sender_pid = 4242;
    r.sender_cs_id = 0x80000001;
    r.timeout_s = 30;
    r.sender_name = "root@sys";
    return r;
  }

  static bool same(const Request& a, const Request& b) {
    return a.type == b.type && a.cs_id == b.cs_id && a.proxy_sessid == b.proxy_sessid &&
           a.ss_id == b.ss_id && a.sender_pid == b.sender_pid && a.sender_cs_id == b.sender_cs_id &&
           a.timeout_s == b.timeout_s && a.sender_name == b.sender_name;
  }

 public:
  void round_trip() {
    uint8_t rec[kRecordSize];
    encode(sample(), rec);
    Decoder d;
    d.feed(rec, sizeof(rec));
    Request out;
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT(same(sample(), out));
    CPPUNIT_ASSERT(!d.next(out));
    CPPUNIT_ASSERT_EQUAL(uint64_t(0), d.garbage_bytes());
  }

  void split_arrival() {
    uint8_t rec[kRecordSize];
    encode(sample(), rec);
    Decoder d;
    Request out;
    for (size_t i = 0; i < kRecordSize; ++i) {
      CPPUNIT_ASSERT(!d.next(out));
      d.feed(rec + i, 1);
    }
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT(same(sample(), out));
  }

  void garbage_is_dropped() {
    uint8_t rec[kRecordSize];
    encode(sample(), rec);
    Decoder d;
    const char junk[] = "hello world, this is not a request\n";
    d.feed(reinterpret_cast<const uint8_t*>(junk), sizeof(junk) - 1);
    d.feed(rec, sizeof(rec));
    d.feed(reinterpret_cast<const uint8_t*>("MC"), 2);  // a partial magic, then the rest later
    Request out;
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT(same(sample(), out));
    CPPUNIT_ASSERT_EQUAL(uint64_t(sizeof(junk) - 1), d.garbage_bytes());
    CPPUNIT_ASSERT(!d.next(out));
  }

  // 1 MiB of "MCTL" over and over: every 4 bytes look like the start of a
  // record.  Dropping them one at a time from the front of the buffer took
  // time quadratic in the length (issue 17: 4.3 s, stalling the worker).
  void near_records_cost_linear_work() {
    std::string junk;
    for (int i = 0; i < 256 * 1024; ++i) junk += "MCTL";
    uint8_t rec[kRecordSize];
    encode(sample(), rec);
    Decoder d;
    d.feed(reinterpret_cast<const uint8_t*>(junk.data()), junk.size());
    d.feed(rec, sizeof(rec));
    Request out;
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT(same(sample(), out));
    CPPUNIT_ASSERT_EQUAL(uint64_t(junk.size()), d.garbage_bytes());
    CPPUNIT_ASSERT(!d.next(out));
    CPPUNIT_ASSERT(d.bytes_moved() <= 2 * (junk.size() + kRecordSize));
  }

  void corrupted_record_is_dropped() {
    uint8_t rec[kRecordSize];
    encode(sample(), rec);
    rec[9] ^= 0x40;  // a flipped bit in cs_id: the checksum no longer matches
    uint8_t good[kRecordSize];
    Request second = sample();
    second.cs_id = 0x80000099;
    encode(second, good);
    Decoder d;
    d.feed(rec, sizeof(rec));
    d.feed(good, sizeof(good));
    Request out;
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT_EQUAL(uint32_t(0x80000099), out.cs_id);
    CPPUNIT_ASSERT_EQUAL(uint64_t(kRecordSize), d.garbage_bytes());
  }

  void fifo_send_and_modes() {
    char dir[] = "/tmp/myrelay-unit-XXXXXX";
    CPPUNIT_ASSERT(mkdtemp(dir));
    std::string path = std::string(dir) + "/w0.ctl";
    std::string err;
    CPPUNIT_ASSERT_MESSAGE(err, make_fifo(path, gid_t(-1), err));
    struct stat st;
    CPPUNIT_ASSERT_EQUAL(0, stat(path.c_str(), &st));
    CPPUNIT_ASSERT(S_ISFIFO(st.st_mode));
    CPPUNIT_ASSERT_EQUAL(mode_t(0600), st.st_mode & 0777);
    // Nobody reads yet: send says so instead of blocking.
    CPPUNIT_ASSERT(!send(path, sample(), err));
    CPPUNIT_ASSERT(err.find("nobody reads") != std::string::npos);
    int rfd = open(path.c_str(), O_RDWR | O_NONBLOCK);
    CPPUNIT_ASSERT(rfd >= 0);
    CPPUNIT_ASSERT_MESSAGE(err, send(path, sample(), err));
    uint8_t buf[256];
    ssize_t n = read(rfd, buf, sizeof(buf));
    CPPUNIT_ASSERT_EQUAL(ssize_t(kRecordSize), n);
    Decoder d;
    d.feed(buf, size_t(n));
    Request out;
    CPPUNIT_ASSERT(d.next(out));
    CPPUNIT_ASSERT(same(sample(), out));
    // Re-creating replaces a stale FIFO; a regular file in the way is an error.
    CPPUNIT_ASSERT(make_fifo(path, gid_t(-1), err));
    close(rfd);
    std::string file = std::string(dir) + "/file";
    close(open(file.c_str(), O_CREAT | O_WRONLY, 0600));
    CPPUNIT_ASSERT(!make_fifo(file, gid_t(-1), err));
    unlink(file.c_str());
    unlink(path.c_str());
    rmdir(dir);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ControlPipeTest);
