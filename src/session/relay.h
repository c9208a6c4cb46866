// The one routine that moves MySQL packets from one connection to the other,
// in either direction: backend responses to the client, and the client's
// long commands and LOCAL INFILE data to the backend.  It never copies a
// packet out of the buffers: it walks the chunk headers of what has arrived,
// shows the first bytes of each logical packet to a classifier, and tells the
// caller how many bytes may go on; the caller moves them in one piece.
#pragma once

#include <event2/buffer.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "protocol/codec.h"

namespace myrelay {

class PacketRelay {
 public:
  // What a classifier says of a logical packet when it starts.
  enum class Verdict {
    Pass,       // relay it and go on
    Last,       // relay it, then stop: it ends what the caller waits for
    Hold,       // stop before it: the caller takes it whole and rewrites it
    Malformed,  // makes no sense here: stop before it
  };
  enum class Stop {
    NeedInput,   // everything that has arrived may go; wait for more
    OutputFull,  // stopped before a packet: the receiver holds enough already
    Last,        // a packet the classifier marked Last is complete
    Held,        // stopped before a packet the classifier holds
    Malformed,   // stopped before a packet the classifier refused
    TooBig,      // stopped before a chunk that makes a packet exceed the limit
  };
  struct Step {
    size_t bytes;  // from the start of the input, to be moved by the caller
    Stop stop;
  };
  // Bytes of a packet's start a classifier sees (or the whole packet).
  static constexpr size_t kPeekBytes = 32;

  void reset() { *this = PacketRelay{}; }

  // Scans `in` from its start; whatever earlier steps returned has been moved
  // out of it.  A new packet starts only while fewer than `room` bytes were
  // given in this step.  `classify(head, head_len, length)` sees the first
  // min(length, kPeekBytes) bytes and the first chunk's length.
  template <class Classifier>
  Step scan(evbuffer* in, size_t room, uint64_t max_packet, Classifier& classify);

  // Inside a logical packet: a half-relayed packet cannot be followed by a
  // packet of the proxy's own.
  bool mid_packet() const { return in_packet_ || chunk_left_ > 0; }
  uint8_t last_seq() const { return last_seq_; }
  // A held packet was taken out whole: it was the last one relayed.
  void took_packet(uint8_t seq) { last_seq_ = seq; }
  // The payload length of the packet being (or last) relayed.
  uint64_t packet_len() const { return packet_len_; }

 private:
  void start_chunk(const proto::PacketHeader& h) {
    chunk_left_ = proto::kHeaderLen + h.length;
    more_chunks_ = h.length == proto::kMaxChunk;
    last_seq_ = h.seq;
  }

  uint64_t chunk_left_ = 0;  // bytes (header included) of the current chunk still to scan
  uint64_t packet_len_ = 0;
  bool in_packet_ = false;
  bool more_chunks_ = false;  // the current chunk is 16 MiB - 1: another one follows
  bool last_ = false;         // the current packet was marked Last
  uint8_t last_seq_ = 0;
};

template <class Classifier>
PacketRelay::Step PacketRelay::scan(evbuffer* in, size_t room, uint64_t max_packet,
                                    Classifier& classify) {
  using namespace proto;
  const size_t avail = evbuffer_get_length(in);
  size_t off = 0;
  BufferPeeker peek(in);
  uint8_t buf[kHeaderLen + kPeekBytes];
  for (;;) {
    if (chunk_left_ > 0) {
      size_t n = size_t(std::min<uint64_t>(chunk_left_, avail - off));
      off += n;
      chunk_left_ -= n;
      if (chunk_left_ > 0) return {off, Stop::NeedInput};
    }
    if (in_packet_ && !more_chunks_) {  // a logical packet is complete
      in_packet_ = false;
      if (last_) {
        last_ = false;
        return {off, Stop::Last};
      }
    }
    if (off >= room) return {off, Stop::OutputFull};
    if (avail - off < kHeaderLen) return {off, Stop::NeedInput};
    PacketHeader h = parse_header(peek.at(off, kHeaderLen, buf));
    if (in_packet_) {  // the next chunk of a long packet
      if (packet_len_ + h.length > max_packet) return {off, Stop::TooBig};
      packet_len_ += h.length;
      start_chunk(h);
      continue;
    }
    if (h.length > max_packet) return {off, Stop::TooBig};
    size_t need = std::min<size_t>(h.length, kPeekBytes);
    if (avail - off < kHeaderLen + need) return {off, Stop::NeedInput};
    const uint8_t* packet = peek.at(off, kHeaderLen + need, buf);
    Verdict v = classify(packet + kHeaderLen, need, uint64_t(h.length));
    if (v == Verdict::Malformed) return {off, Stop::Malformed};
    if (v == Verdict::Hold) return {off, Stop::Held};
    in_packet_ = true;
    last_ = v == Verdict::Last;
    packet_len_ = h.length;
    start_chunk(h);
  }
}

}  // namespace myrelay
