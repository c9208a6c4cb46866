// The packet relay's scan: packet boundaries over any split of the input,
// long packets, the room limit, and what it refuses.
#include <cppunit/extensions/HelperMacros.h>
#include <event2/buffer.h>

#include <string>
#include <vector>

#include "protocol/codec.h"
#include "session/relay.h"

using namespace myrelay;
using namespace myrelay::proto;
using V = PacketRelay::Verdict;
using Stop = PacketRelay::Stop;

namespace {

// Remembers the first byte and length of every packet it is shown; marks the
// packet whose first byte is `last_byte` Last, and `bad_byte` Malformed.
struct Recorder {
  uint8_t last_byte = 0xfe;
  uint8_t bad_byte = 0xee;
  std::vector<std::pair<uint8_t, uint64_t>> seen;
  V operator()(const uint8_t* head, size_t head_len, uint64_t length) {
    uint8_t first = head_len ? head[0] : 0;
    seen.emplace_back(first, length);
    if (head_len && first == bad_byte) return V::Malformed;
    return head_len && first == last_byte ? V::Last : V::Pass;
  }
};

std::string packet(uint8_t first, size_t len, uint8_t seq) {
  std::string payload(len, 'x');
  if (len) payload[0] = char(first);
  return framed(seq, payload);
}

struct Buffer {
  evbuffer* b = evbuffer_new();
  ~Buffer() { evbuffer_free(b); }
  void add(const std::string& s) { evbuffer_add(b, s.data(), s.size()); }
  void drain(size_t n) { evbuffer_drain(b, n); }
};

}  // namespace

class RelayTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RelayTest);
  CPPUNIT_TEST(stops_after_the_last_packet);
  CPPUNIT_TEST(any_split_of_the_input_gives_the_same_packets);
  CPPUNIT_TEST(long_packets_span_chunks);
  CPPUNIT_TEST(too_big_stops_before_the_chunk);
  CPPUNIT_TEST(room_stops_before_a_new_packet);
  CPPUNIT_TEST(malformed_stops_before_the_packet);
  CPPUNIT_TEST(empty_packet_is_one_packet);
  CPPUNIT_TEST_SUITE_END();

 public:
  void stops_after_the_last_packet() {
    Buffer in;
    std::string a = packet(1, 10, 1), b = packet(0xfe, 7, 2), c = packet(3, 5, 3);
    in.add(a + b + c);
    PacketRelay relay;
    Recorder rec;
    PacketRelay::Step st = relay.scan(in.b, 1 << 20, UINT64_MAX, rec);
    CPPUNIT_ASSERT(st.stop == Stop::Last);
    CPPUNIT_ASSERT_EQUAL(a.size() + b.size(), st.bytes);  // c is the next response's
    CPPUNIT_ASSERT_EQUAL(uint8_t(2), relay.last_seq());
    CPPUNIT_ASSERT(!relay.mid_packet());
    CPPUNIT_ASSERT_EQUAL(size_t(2), rec.seen.size());
  }

  void any_split_of_the_input_gives_the_same_packets() {
    std::string all = packet(1, 40, 1) + packet(2, 0, 2) + packet(3, 100, 3) + packet(0xfe, 9, 4);
    for (size_t step = 1; step <= 13; ++step) {
      Buffer in;
      PacketRelay relay;
      Recorder rec;
      size_t fed = 0, moved = 0;
      bool done = false;
      while (!done) {
        size_t n = std::min(step, all.size() - fed);
        in.add(all.substr(fed, n));
        fed += n;
        PacketRelay::Step st = relay.scan(in.b, 1 << 20, UINT64_MAX, rec);
        in.drain(st.bytes);
        moved += st.bytes;
        if (st.stop == Stop::Last) done = true;
        else CPPUNIT_ASSERT(st.stop == Stop::NeedInput && fed < all.size());
      }
      CPPUNIT_ASSERT_EQUAL(all.size(), moved);
      CPPUNIT_ASSERT_EQUAL(size_t(4), rec.seen.size());
      CPPUNIT_ASSERT_EQUAL(uint64_t(100), rec.seen[2].second);
      CPPUNIT_ASSERT_EQUAL(uint8_t(3), rec.seen[2].first);
    }
  }

  void long_packets_span_chunks() {
    // One logical packet of 16 MiB - 1 + 10 bytes: two chunks.
    std::string payload(kMaxChunk + 10, 'r');
    payload[0] = 0x05;
    Buffer in;
    in.add(framed(1, payload) + packet(0xfe, 3, 3));
    PacketRelay relay;
    Recorder rec;
    PacketRelay::Step st = relay.scan(in.b, SIZE_MAX, UINT64_MAX, rec);
    CPPUNIT_ASSERT(st.stop == Stop::Last);
    CPPUNIT_ASSERT_EQUAL(size_t(2), rec.seen.size());  // the second chunk is not a packet
    CPPUNIT_ASSERT_EQUAL(uint64_t(kMaxChunk), rec.seen[0].second);
    CPPUNIT_ASSERT_EQUAL(size_t(kMaxChunk + 10 + 8 + 7), st.bytes);
  }

  void too_big_stops_before_the_chunk() {
    std::string payload(kMaxChunk + 10, 'r');
    Buffer in;
    in.add(framed(0, payload));
    PacketRelay relay;
    Recorder rec;
    PacketRelay::Step st = relay.scan(in.b, SIZE_MAX, kMaxChunk + 5, rec);
    CPPUNIT_ASSERT(st.stop == Stop::TooBig);
    CPPUNIT_ASSERT_EQUAL(size_t(kHeaderLen + kMaxChunk), st.bytes);  // the first chunk may go
    Buffer small;
    small.add(packet(1, 50, 0));
    PacketRelay r2;
    CPPUNIT_ASSERT(r2.scan(small.b, SIZE_MAX, 49, rec).stop == Stop::TooBig);
  }

  void room_stops_before_a_new_packet() {
    Buffer in;
    std::string a = packet(1, 100, 1), b = packet(2, 100, 2);
    in.add(a + b);
    PacketRelay relay;
    Recorder rec;
    PacketRelay::Step st = relay.scan(in.b, 50, UINT64_MAX, rec);
    CPPUNIT_ASSERT(st.stop == Stop::OutputFull);
    CPPUNIT_ASSERT_EQUAL(a.size(), st.bytes);  // a packet once started is finished
    in.drain(st.bytes);
    st = relay.scan(in.b, 1000, UINT64_MAX, rec);
    CPPUNIT_ASSERT(st.stop == Stop::NeedInput);
    CPPUNIT_ASSERT_EQUAL(b.size(), st.bytes);
  }

  void malformed_stops_before_the_packet() {
    Buffer in;
    std::string a = packet(1, 10, 1);
    in.add(a + packet(0xee, 10, 2));
    PacketRelay relay;
    Recorder rec;
    PacketRelay::Step st = relay.scan(in.b, 1 << 20, UINT64_MAX, rec);
    CPPUNIT_ASSERT(st.stop == Stop::Malformed);
    CPPUNIT_ASSERT_EQUAL(a.size(), st.bytes);
  }

  void empty_packet_is_one_packet() {
    Buffer in;
    in.add(packet(0, 0, 5));
    PacketRelay relay;
    auto every = [](const uint8_t*, size_t, uint64_t) { return V::Last; };
    PacketRelay::Step st = relay.scan(in.b, 1 << 20, UINT64_MAX, every);
    CPPUNIT_ASSERT(st.stop == Stop::Last);
    CPPUNIT_ASSERT_EQUAL(size_t(kHeaderLen), st.bytes);
    CPPUNIT_ASSERT_EQUAL(uint64_t(0), relay.packet_len());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(RelayTest);
