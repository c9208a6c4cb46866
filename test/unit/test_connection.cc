// Connection: immediate writes, the rest on writability, reads, read
// back-pressure, end of file, deleting a connection in its own callback, and
// direct sends that keep their order behind queued output.
#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "protocol/connection.h"

using namespace myrelay;

namespace {

struct Seen {
  std::string data;
  int reads = 0;
  int drains = 0;
  short events = 0;
  bool delete_on_read = false;
  Connection* conn = nullptr;
};

void on_read(Connection* c, void* arg) {
  auto* s = static_cast<Seen*>(arg);
  ++s->reads;
  evbuffer* in = c->input();
  size_t n = evbuffer_get_length(in);
  std::string chunk(n, '\0');
  evbuffer_remove(in, &chunk[0], n);
  s->data += chunk;
  if (s->delete_on_read) {
    delete s->conn;  // the owner may end a connection inside its callback
    s->conn = nullptr;
  }
}
void on_drained(Connection*, void* arg) { ++static_cast<Seen*>(arg)->drains; }
void on_event(Connection*, short what, int, void* arg) { static_cast<Seen*>(arg)->events |= what; }

void pump(event_base* base, int turns = 20) {
  for (int i = 0; i < turns; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
}

std::string drain_fd(int fd) {
  std::string got;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, size_t(n));
  }
  return got;
}

}  // namespace

class ConnectionTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ConnectionTest);
  CPPUNIT_TEST(write_now_and_the_rest_later);
  CPPUNIT_TEST(reads_and_eof);
  CPPUNIT_TEST(read_stops_at_high_water);
  CPPUNIT_TEST(delete_inside_callback);
  CPPUNIT_TEST(send_directly_and_in_order);
  CPPUNIT_TEST(send_from_another_buffer);
  CPPUNIT_TEST_SUITE_END();

  event_base* base_ = nullptr;
  int fds_[2] = {-1, -1};

 public:
  void setUp() override {
    base_ = event_base_new();
    CPPUNIT_ASSERT_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_));
  }
  void tearDown() override {
    if (fds_[1] >= 0) close(fds_[1]);
    event_base_free(base_);
  }

  void write_now_and_the_rest_later() {
    Seen seen;
    auto* c = new Connection(base_, fds_[0]);
    c->set_callbacks(on_read, on_drained, on_event, &seen);
    c->set_write_low_water(0);
    // Small: the kernel takes it inside flush(), before any loop turn.
    evbuffer_add(c->output(), "hello", 5);
    c->flush();
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(c->output()));
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), drain_fd(fds_[1]));
    // Larger than the socket buffer: the rest goes as the peer reads.
    std::string big(8 * 1024 * 1024, 'x');
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = char('a' + (i / 4096) % 26);
    evbuffer_add(c->output(), big.data(), big.size());
    c->flush();
    CPPUNIT_ASSERT(evbuffer_get_length(c->output()) > 0);
    std::string got;
    for (int i = 0; i < 10000 && got.size() < big.size(); ++i) {
      got += drain_fd(fds_[1]);
      pump(base_, 1);
    }
    CPPUNIT_ASSERT_EQUAL(big.size(), got.size());
    CPPUNIT_ASSERT(got == big);
    CPPUNIT_ASSERT(seen.drains > 0);
    delete c;
  }

  void reads_and_eof() {
    Seen seen;
    auto* c = new Connection(base_, fds_[0]);
    c->set_callbacks(on_read, on_drained, on_event, &seen);
    c->enable_read();
    CPPUNIT_ASSERT_EQUAL(ssize_t(3), write(fds_[1], "abc", 3));
    pump(base_);
    CPPUNIT_ASSERT_EQUAL(std::string("abc"), seen.data);
    close(fds_[1]);
    fds_[1] = -1;
    pump(base_);
    CPPUNIT_ASSERT(seen.events & Connection::kEof);
    delete c;
  }

  void read_stops_at_high_water() {
    Seen seen;
    auto* c = new Connection(base_, fds_[0]);
    // A reader that does not consume: input must stop near the mark.
    c->set_callbacks([](Connection*, void* a) { ++static_cast<Seen*>(a)->reads; }, on_drained,
                     on_event, &seen);
    c->set_read_high_water(64 * 1024);
    c->enable_read();
    std::string chunk(16 * 1024, 'z');
    size_t sent = 0;
    for (int i = 0; i < 64; ++i) {
      ssize_t n = write(fds_[1], chunk.data(), chunk.size());
      if (n > 0) sent += size_t(n);
      pump(base_, 2);
    }
    size_t held = evbuffer_get_length(c->input());
    CPPUNIT_ASSERT(held >= 64 * 1024);
    CPPUNIT_ASSERT(held < 64 * 1024 + 512 * 1024);  // stopped: the rest waits in the kernel
    CPPUNIT_ASSERT(sent > held);
    // Draining the input resumes reading.
    evbuffer_drain(c->input(), held);
    pump(base_, 4);
    CPPUNIT_ASSERT(evbuffer_get_length(c->input()) > 0);
    delete c;
  }

  void delete_inside_callback() {
    Seen seen;
    seen.delete_on_read = true;
    seen.conn = new Connection(base_, fds_[0]);
    seen.conn->set_callbacks(on_read, on_drained, on_event, &seen);
    seen.conn->enable_read();
    CPPUNIT_ASSERT_EQUAL(ssize_t(4), write(fds_[1], "bye!", 4));
    pump(base_);
    CPPUNIT_ASSERT(seen.conn == nullptr);
    CPPUNIT_ASSERT_EQUAL(1, seen.reads);
    // The socket was closed by the deletion: the peer sees end of file.
    char b;
    CPPUNIT_ASSERT_EQUAL(ssize_t(0), read(fds_[1], &b, 1));
  }

  // Bytes go straight to the socket only while nothing waits before them.
  void send_directly_and_in_order() {
    Seen seen;
    auto* c = new Connection(base_, fds_[0]);
    c->set_callbacks(on_read, on_drained, on_event, &seen);
    char ab[] = "ab", cd[] = "cd";
    iovec two[2] = {{ab, 2}, {cd, 2}};
    c->send(two, 2);
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(c->output()));
    CPPUNIT_ASSERT_EQUAL(std::string("abcd"), drain_fd(fds_[1]));
    // More than the kernel takes: the rest is queued, and what follows,
    // sent or moved from another buffer, queues behind it.
    std::string big(8 * 1024 * 1024, 'x');
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = char('a' + (i / 4096) % 26);
    iovec one{&big[0], big.size()};
    c->send(&one, 1);
    CPPUNIT_ASSERT(evbuffer_get_length(c->output()) > 0);
    char tail[] = "tail";
    iovec t{tail, 4};
    c->send(&t, 1);
    evbuffer* src = evbuffer_new();
    evbuffer_add(src, "moved!extra", 11);
    c->send_from(src, 6);
    CPPUNIT_ASSERT_EQUAL(size_t(5), evbuffer_get_length(src));
    std::string got;
    std::string want = big + "tail" + "moved!";
    for (int i = 0; i < 10000 && got.size() < want.size(); ++i) {
      got += drain_fd(fds_[1]);
      pump(base_, 1);
    }
    CPPUNIT_ASSERT_EQUAL(want.size(), got.size());
    CPPUNIT_ASSERT(got == want);
    CPPUNIT_ASSERT(seen.drains > 0);
    evbuffer_free(src);
    delete c;
  }

  // send_from takes exactly n bytes across the source's chains.
  void send_from_another_buffer() {
    Seen seen;
    auto* c = new Connection(base_, fds_[0]);
    c->set_callbacks(on_read, on_drained, on_event, &seen);
    evbuffer* src = evbuffer_new();
    static const char a[] = "abc", b[] = "defg", d[] = "hij";
    evbuffer_add_reference(src, a, 3, nullptr, nullptr);  // three chains
    evbuffer_add_reference(src, b, 4, nullptr, nullptr);
    evbuffer_add_reference(src, d, 3, nullptr, nullptr);
    c->send_from(src, 8);
    CPPUNIT_ASSERT_EQUAL(std::string("abcdefgh"), drain_fd(fds_[1]));
    CPPUNIT_ASSERT_EQUAL(size_t(2), evbuffer_get_length(src));
    c->send_from(src, 2);
    CPPUNIT_ASSERT_EQUAL(std::string("ij"), drain_fd(fds_[1]));
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(c->output()));
    // A peer that has gone: the error is reported from the loop.
    close(fds_[1]);
    fds_[1] = -1;
    evbuffer_add(src, "lost", 4);
    c->send_from(src, 4);
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(src));
    CPPUNIT_ASSERT_EQUAL(short(0), seen.events);
    pump(base_);
    CPPUNIT_ASSERT(seen.events & Connection::kError);
    evbuffer_free(src);
    delete c;
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConnectionTest);
