// The MySQL protocol codec (see codec.h).
#include "protocol/codec.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstring>

namespace myrelay::proto {

const char* command_name(uint8_t cmd) {
  static const char* names[] = {
      "Sleep",          "Quit",         "Init DB",        "Query",         "Field List",
      "Create DB",      "Drop DB",      "Refresh",        "Shutdown",      "Statistics",
      "Processlist",    "Connect",      "Kill",           "Debug",         "Ping",
      "Time",           "Delayed insert", "Change user",  "Binlog Dump",   "Table Dump",
      "Connect Out",    "Register Slave", "Prepare",      "Execute",       "Long Data",
      "Close stmt",     "Reset stmt",   "Set option",     "Fetch",         "Daemon",
      "Binlog Dump GTID", "Reset connection"};
  if (cmd == COM_STMT_BULK_EXECUTE) return "Bulk_execute";
  return cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : "Unknown";
}

PacketHeader parse_header(const uint8_t* h) {
  PacketHeader r;
  r.length = uint32_t(h[0]) | uint32_t(h[1]) << 8 | uint32_t(h[2]) << 16;
  r.seq = h[3];
  return r;
}

void write_header(uint8_t* h, uint32_t length, uint8_t seq) {
  h[0] = uint8_t(length);
  h[1] = uint8_t(length >> 8);
  h[2] = uint8_t(length >> 16);
  h[3] = seq;
}

// ---- Reader ----

bool Reader::need(size_t n) {
  if (!ok_ || remaining() < n) {
    ok_ = false;
    p_ = end_;
    return false;
  }
  return true;
}

uint8_t Reader::u8() { return need(1) ? *p_++ : 0; }

uint16_t Reader::u16() {
  if (!need(2)) return 0;
  uint16_t v = uint16_t(p_[0] | p_[1] << 8);
  p_ += 2;
  return v;
}

uint32_t Reader::u24() {
  if (!need(3)) return 0;
  uint32_t v = uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16;
  p_ += 3;
  return v;
}

uint32_t Reader::u32() {
  if (!need(4)) return 0;
  uint32_t v = uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16 |
               uint32_t(p_[3]) << 24;
  p_ += 4;
  return v;
}

uint64_t Reader::u64() {
  uint64_t lo = u32();
  uint64_t hi = u32();
  return lo | hi << 32;
}

uint64_t Reader::lenenc_int(bool* is_null) {
  if (is_null) *is_null = false;
  uint8_t first = u8();
  if (!ok_) return 0;
  if (first < 0xfb) return first;
  switch (first) {
    case 0xfb:
      if (is_null) {
        *is_null = true;
        return 0;
      }
      ok_ = false;
      return 0;
    case 0xfc:
      return u16();
    case 0xfd:
      return u24();
    case 0xfe:
      return u64();
    default:
      ok_ = false;
      p_ = end_;
      return 0;
  }
}

std::string Reader::lenenc_str() { return std::string(lenenc_view()); }

std::string_view Reader::lenenc_view() {
  uint64_t n = lenenc_int();
  if (!ok_) return {};
  if (n > remaining()) {
    ok_ = false;
    p_ = end_;
    return {};
  }
  return bytes_view(static_cast<size_t>(n));
}

std::string_view Reader::bytes_view(size_t n) {
  if (!need(n)) return {};
  std::string_view s(reinterpret_cast<const char*>(p_), n);
  p_ += n;
  return s;
}

std::string Reader::nul_str() {
  const uint8_t* z = static_cast<const uint8_t*>(memchr(p_, 0, remaining()));
  if (!ok_ || !z) {
    ok_ = false;
    p_ = end_;
    return {};
  }
  std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(z - p_));
  p_ = z + 1;
  return s;
}

std::string Reader::bytes(size_t n) {
  if (!need(n)) return {};
  std::string s(reinterpret_cast<const char*>(p_), n);
  p_ += n;
  return s;
}

std::string Reader::rest() { return bytes(remaining()); }

void Reader::skip(size_t n) {
  if (need(n)) p_ += n;
}

// ---- Writer ----

Writer& Writer::u8(uint8_t v) {
  buf_.push_back(static_cast<char>(v));
  return *this;
}
Writer& Writer::u16(uint16_t v) { return u8(uint8_t(v)).u8(uint8_t(v >> 8)); }
Writer& Writer::u24(uint32_t v) { return u8(uint8_t(v)).u8(uint8_t(v >> 8)).u8(uint8_t(v >> 16)); }
Writer& Writer::u32(uint32_t v) { return u16(uint16_t(v)).u16(uint16_t(v >> 16)); }
Writer& Writer::u64(uint64_t v) { return u32(uint32_t(v)).u32(uint32_t(v >> 32)); }

Writer& Writer::lenenc_int(uint64_t v) {
  if (v < 0xfb) return u8(uint8_t(v));
  if (v <= 0xffff) return u8(0xfc).u16(uint16_t(v));
  if (v <= 0xffffff) return u8(0xfd).u24(uint32_t(v));
  return u8(0xfe).u64(v);
}

Writer& Writer::lenenc_str(std::string_view s) { return lenenc_int(s.size()).bytes(s); }
Writer& Writer::nul_str(std::string_view s) { return bytes(s).u8(0); }
Writer& Writer::bytes(std::string_view s) {
  buf_.append(s.data(), s.size());
  return *this;
}
Writer& Writer::bytes(const uint8_t* p, size_t n) {
  buf_.append(reinterpret_cast<const char*>(p), n);
  return *this;
}
Writer& Writer::zeros(size_t n) {
  buf_.append(n, '\0');
  return *this;
}

size_t lenenc_int_size(uint64_t v) {
  if (v < 0xfb) return 1;
  if (v <= 0xffff) return 3;
  if (v <= 0xffffff) return 4;
  return 9;
}

// ---- framing ----

uint8_t frame_packet(std::string& out, uint8_t seq, std::string_view payload) {
  size_t off = 0;
  for (;;) {
    size_t n = std::min(payload.size() - off, kMaxChunk);
    uint8_t h[4];
    write_header(h, uint32_t(n), seq++);
    out.append(reinterpret_cast<char*>(h), 4);
    out.append(payload.data() + off, n);
    off += n;
    if (n < kMaxChunk) break;  // a full chunk is always followed by another, maybe empty
  }
  return seq;
}

std::string framed(uint8_t seq, std::string_view payload) {
  std::string out;
  frame_packet(out, seq, payload);
  return out;
}

uint8_t frame_packet(evbuffer* out, uint8_t seq, std::string_view payload) {
  size_t off = 0;
  for (;;) {
    size_t n = std::min(payload.size() - off, kMaxChunk);
    uint8_t h[4];
    write_header(h, uint32_t(n), seq++);
    evbuffer_add(out, h, 4);
    evbuffer_add(out, payload.data() + off, n);
    off += n;
    if (n < kMaxChunk) break;
  }
  return seq;
}

// Walks the chunk headers of one logical packet.  `peek(off, dst, n)` copies
// n bytes at offset off; returns false when they have not arrived.
template <typename Peek>
static ReadStatus scan_packet(size_t avail, size_t max_len, Peek peek, size_t& total_payload,
                              size_t& consumed, uint8_t& first_seq, uint8_t& last_seq) {
  size_t off = 0;
  total_payload = 0;
  bool first = true;
  for (;;) {
    if (avail - off < kHeaderLen) return ReadStatus::Incomplete;
    uint8_t h[4];
    peek(off, h, 4);
    PacketHeader ph = parse_header(h);
    if (first) first_seq = ph.seq;
    first = false;
    last_seq = ph.seq;
    total_payload += ph.length;
    if (total_payload > max_len) return ReadStatus::TooBig;
    if (avail - off - kHeaderLen < ph.length) return ReadStatus::Incomplete;
    off += kHeaderLen + ph.length;
    if (ph.length < kMaxChunk) break;
  }
  consumed = off;
  return ReadStatus::Complete;
}

BufferPeeker::BufferPeeker(evbuffer* b) : buf_(b) {
  n_vecs_ = std::min(evbuffer_peek(b, -1, nullptr, vecs_, kVecs), kVecs);
}

const uint8_t* BufferPeeker::at_slow(size_t off, size_t n, uint8_t* scratch) {
  while (cur_ < n_vecs_ && off >= cur_start_ + vecs_[cur_].iov_len) {
    cur_start_ += vecs_[cur_].iov_len;
    ++cur_;
  }
  if (cur_ < n_vecs_ && off + n <= cur_start_ + vecs_[cur_].iov_len)
    return static_cast<const uint8_t*>(vecs_[cur_].iov_base) + (off - cur_start_);
  evbuffer_ptr p;  // across chains, or past the ones looked up
  evbuffer_ptr_set(buf_, &p, off, EVBUFFER_PTR_SET);
  evbuffer_copyout_from(buf_, &p, scratch, n);
  return scratch;
}

void BufferPeeker::copy(size_t off, void* dst, size_t n) {
  const uint8_t* p = at(off, n, static_cast<uint8_t*>(dst));
  if (p != dst) memcpy(dst, p, n);
}

ReadStatus read_packet(evbuffer* in, size_t max_len, uint8_t& first_seq, uint8_t& last_seq,
                       std::string& payload) {
  size_t avail = evbuffer_get_length(in);
  BufferPeeker peeker(in);
  auto peek = [&peeker](size_t off, uint8_t* dst, size_t n) { peeker.copy(off, dst, n); };
  size_t total = 0, consumed = 0;
  ReadStatus st = scan_packet(avail, max_len, peek, total, consumed, first_seq, last_seq);
  if (st != ReadStatus::Complete) return st;
  payload.clear();
  payload.reserve(total);
  size_t left = consumed;
  while (left > 0) {
    uint8_t h[4];
    evbuffer_remove(in, h, 4);
    PacketHeader ph = parse_header(h);
    size_t old = payload.size();
    payload.resize(old + ph.length);
    if (ph.length) evbuffer_remove(in, &payload[old], ph.length);
    left -= kHeaderLen + ph.length;
  }
  return ReadStatus::Complete;
}

ReadStatus read_packet(std::string_view in, size_t max_len, uint8_t& first_seq,
                       uint8_t& last_seq, std::string& payload, size_t& consumed) {
  auto peek = [in](size_t off, uint8_t* dst, size_t n) { memcpy(dst, in.data() + off, n); };
  size_t total = 0;
  ReadStatus st = scan_packet(in.size(), max_len, peek, total, consumed, first_seq, last_seq);
  if (st != ReadStatus::Complete) return st;
  payload.clear();
  payload.reserve(total);
  size_t off = 0;
  while (off < consumed) {
    PacketHeader ph = parse_header(reinterpret_cast<const uint8_t*>(in.data() + off));
    payload.append(in.data() + off + kHeaderLen, ph.length);
    off += kHeaderLen + ph.length;
  }
  return ReadStatus::Complete;
}

}  // namespace myrelay::proto
