// The fleet's frames (see fleet_message.h).
#include "control/fleet_message.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <ctime>

namespace myrelay::fleet {

namespace {

constexpr char kMagic[4] = {'M', 'Y', 'R', 'F'};
constexpr size_t kMaxColumns = 64;
constexpr size_t kMaxWarnings = 1024;

void put8(std::string& o, uint8_t v) { o.push_back(char(v)); }
void put16(std::string& o, uint16_t v) {
  put8(o, uint8_t(v >> 8));
  put8(o, uint8_t(v));
}
void put32(std::string& o, uint32_t v) {
  put16(o, uint16_t(v >> 16));
  put16(o, uint16_t(v));
}
void put64(std::string& o, uint64_t v) {
  put32(o, uint32_t(v >> 32));
  put32(o, uint32_t(v));
}
void put_str(std::string& o, std::string_view s) {
  put32(o, uint32_t(s.size()));
  o.append(s);
}
void put_nonce(std::string& o, const Nonce& n) { o.append(reinterpret_cast<const char*>(n.data()), n.size()); }

// Reads what the writers above wrote; any read past the end sets `bad` and
// returns zeros, so a decoder checks once at the end.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  uint8_t u8() { return need(1) ? uint8_t(s_[pos_++]) : 0; }
  uint16_t u16() {
    uint16_t hi = u8();
    return uint16_t(hi << 8 | u8());
  }
  uint32_t u32() {
    uint32_t hi = u16();
    return hi << 16 | u16();
  }
  uint64_t u64() {
    uint64_t hi = u32();
    return hi << 32 | u32();
  }
  std::string str() {
    uint32_t n = u32();
    if (!need(n)) return {};
    std::string out(s_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  Nonce nonce() {
    Nonce n{};
    if (need(n.size())) {
      for (auto& b : n) b = uint8_t(s_[pos_++]);
    }
    return n;
  }
  size_t left() const { return bad_ ? 0 : s_.size() - pos_; }
  bool ok_and_done() const { return !bad_ && pos_ == s_.size(); }
  bool bad() const { return bad_; }
  void fail() { bad_ = true; }

 private:
  bool need(size_t n) {
    if (bad_ || s_.size() - pos_ < n) {
      bad_ = true;
      return false;
    }
    return true;
  }
  std::string_view s_;
  size_t pos_ = 0;
  bool bad_ = false;
};

void mac(std::string_view secret, std::string_view data, unsigned char out[kMacLen]) {
  unsigned int len = kMacLen;
  HMAC(EVP_sha256(), secret.data(), int(secret.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
}

std::string frame(FrameType type, const std::string& body, std::string_view secret, bool sign) {
  std::string out(kMagic, sizeof kMagic);
  put8(out, kVersion);
  put8(out, uint8_t(type));
  put16(out, 0);
  put32(out, uint32_t(body.size()));
  out += body;
  if (sign) {
    unsigned char m[kMacLen];
    mac(secret, out, m);
    out.append(reinterpret_cast<const char*>(m), kMacLen);
  }
  return out;
}

}  // namespace

std::string encode_request(const Request& r, std::string_view secret) {
  std::string b;
  put8(b, uint8_t(r.sender));
  put8(b, r.sender_proxy_id);
  put64(b, uint64_t(r.time_ms));
  put_nonce(b, r.nonce);
  put8(b, uint8_t(r.op));
  put32(b, r.caller_cs_id);
  put_str(b, r.user);
  put_str(b, r.tenant);
  put_str(b, r.statement);
  put64(b, r.id);
  return frame(FrameType::Request, b, secret, true);
}

std::string encode_reply(const Reply& r, std::string_view secret) {
  const admin::Answer& a = r.answer;
  std::string b;
  put8(b, r.sender_proxy_id);
  put_nonce(b, r.nonce);
  put8(b, uint8_t(a.kind));
  put64(b, a.affected_rows);
  put16(b, a.error_code);
  put_str(b, a.sqlstate);
  put_str(b, a.message);
  put32(b, uint32_t(a.columns.size()));
  for (const auto& c : a.columns) {
    put_str(b, c.name);
    put8(b, c.type);
    put32(b, c.length);
    put16(b, c.flags);
    put8(b, c.charset);
    put8(b, c.decimals);
  }
  put32(b, uint32_t(a.rows.size()));
  for (const auto& row : a.rows) {
    for (size_t i = 0; i < a.columns.size(); ++i) {
      const bool present = i < row.size() && row[i];
      put8(b, present ? 1 : 0);
      if (present) put_str(b, *row[i]);
    }
  }
  put32(b, uint32_t(a.warnings.size()));
  for (const auto& w : a.warnings) {
    put_str(b, w.level);
    put16(b, w.code);
    put_str(b, w.message);
  }
  return frame(FrameType::Reply, b, secret, true);
}

std::string encode_refusal(std::string_view reason) {
  std::string b;
  put_str(b, reason.substr(0, 200));
  return frame(FrameType::Refusal, b, {}, false);
}

Take take_frame(std::string& buf, std::string_view secret, Frame& out, std::string& why) {
  // Judge the magic as soon as it is there: a stranger's bytes are refused
  // at once, not after waiting for a length they never meant.
  for (size_t i = 0; i < sizeof kMagic && i < buf.size(); ++i)
    if (buf[i] != kMagic[i]) {
      why = "not a fleet frame (bad magic)";
      return Take::Bad;
    }
  if (buf.size() < kHeaderLen) return Take::NeedMore;
  Reader h(std::string_view(buf).substr(4, kHeaderLen - 4));
  uint8_t version = h.u8(), type = h.u8();
  h.u16();
  uint32_t len = h.u32();
  if (version != kVersion) {
    why = "fleet frame version " + std::to_string(version) + ", this proxy speaks " + std::to_string(kVersion);
    return Take::Bad;
  }
  if (type < uint8_t(FrameType::Request) || type > uint8_t(FrameType::Refusal)) {
    why = "unknown fleet frame type " + std::to_string(type);
    return Take::Bad;
  }
  if (len > kMaxBody) {
    why = "fleet frame of " + std::to_string(len) + " bytes, more than the " + std::to_string(kMaxBody) + " allowed";
    return Take::Bad;
  }
  const bool signed_frame = FrameType(type) != FrameType::Refusal;
  const size_t total = kHeaderLen + len + (signed_frame ? kMacLen : 0);
  if (buf.size() < total) return Take::NeedMore;
  if (signed_frame) {
    unsigned char m[kMacLen];
    mac(secret, std::string_view(buf).substr(0, kHeaderLen + len), m);
    if (CRYPTO_memcmp(m, buf.data() + kHeaderLen + len, kMacLen) != 0) {
      why = "wrong signature (not signed with this fleet's secret)";
      return Take::Bad;
    }
  }
  out.type = FrameType(type);
  out.body.assign(buf, kHeaderLen, len);
  buf.erase(0, total);
  return Take::Frame;
}

bool decode_request(std::string_view body, Request& r, std::string& why) {
  Reader in(body);
  uint8_t sender = in.u8();
  r.sender_proxy_id = in.u8();
  r.time_ms = int64_t(in.u64());
  r.nonce = in.nonce();
  uint8_t op = in.u8();
  r.caller_cs_id = in.u32();
  r.user = in.str();
  r.tenant = in.str();
  r.statement = in.str();
  r.id = in.u64();
  if (!in.ok_and_done()) {
    why = "malformed request";
    return false;
  }
  if (sender != uint8_t(Sender::Proxy) && sender != uint8_t(Sender::Tool)) {
    why = "unknown sender kind " + std::to_string(sender);
    return false;
  }
  if (op != uint8_t(Op::Execute) && op != uint8_t(Op::Resolve)) {
    why = "unknown operation " + std::to_string(op);
    return false;
  }
  if (r.sender_proxy_id > 127 && sender == uint8_t(Sender::Proxy)) {
    why = "proxy_id " + std::to_string(r.sender_proxy_id) + " out of range";
    return false;
  }
  r.sender = Sender(sender);
  r.op = Op(op);
  return true;
}

bool decode_reply(std::string_view body, Reply& r, std::string& why) {
  Reader in(body);
  admin::Answer& a = r.answer;
  r.sender_proxy_id = in.u8();
  r.nonce = in.nonce();
  uint8_t kind = in.u8();
  a.affected_rows = in.u64();
  a.error_code = in.u16();
  a.sqlstate = in.str();
  a.message = in.str();
  uint32_t ncols = in.u32();
  if (ncols > kMaxColumns) in.fail();
  for (uint32_t i = 0; i < ncols && !in.bad(); ++i) {
    proto::ColumnDef c;
    c.name = in.str();
    c.type = in.u8();
    c.length = in.u32();
    c.flags = in.u16();
    c.charset = in.u8();
    c.decimals = in.u8();
    a.columns.push_back(std::move(c));
  }
  uint32_t nrows = in.u32();
  // Every cell takes at least a byte: a count the body cannot hold is a lie.
  if (ncols == 0 ? nrows != 0 : nrows > in.left() / ncols) in.fail();
  for (uint32_t i = 0; i < nrows && !in.bad(); ++i) {
    proto::TextRow row;
    row.reserve(ncols);
    for (uint32_t j = 0; j < ncols; ++j) {
      uint8_t present = in.u8();
      if (present > 1) in.fail();
      if (present)
        row.emplace_back(in.str());
      else
        row.emplace_back(std::nullopt);
    }
    a.rows.push_back(std::move(row));
  }
  uint32_t nwarn = in.u32();
  if (nwarn > kMaxWarnings) in.fail();
  for (uint32_t i = 0; i < nwarn && !in.bad(); ++i) {
    admin::Warning w;
    w.level = in.str();
    w.code = in.u16();
    w.message = in.str();
    a.warnings.push_back(std::move(w));
  }
  if (!in.ok_and_done()) {
    why = "malformed answer";
    return false;
  }
  if (kind > uint8_t(admin::Answer::Kind::Rows)) {
    why = "unknown answer kind " + std::to_string(kind);
    return false;
  }
  a.kind = admin::Answer::Kind(kind);
  if (a.kind == admin::Answer::Kind::Error && a.sqlstate.size() != 5) {
    why = "an error without a five-character SQLSTATE";
    return false;
  }
  return true;
}

std::string decode_refusal(std::string_view body) {
  Reader in(body);
  std::string reason = in.str();
  if (in.bad()) return "(unreadable refusal)";
  if (reason.size() > 200) reason.resize(200);
  for (char& c : reason)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return reason;
}

Nonce random_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), int(n.size())) != 1) {
    // Not expected; a time-and-counter nonce is still unique to this process.
    static uint64_t counter = 0;
    uint64_t t = uint64_t(now_ms()), c = ++counter;
    for (size_t i = 0; i < 8; ++i) n[i] = uint8_t(t >> (8 * i)), n[8 + i] = uint8_t(c >> (8 * i));
  }
  return n;
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool ReplayGuard::accept(int64_t time_ms, const Nonce& nonce, int64_t now, std::string& why) {
  while (!by_time_.empty() && by_time_.begin()->first < now - kReplayWindowMs) {
    seen_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
  if (time_ms < now - kReplayWindowMs || time_ms > now + kReplayWindowMs) {
    why = "its time is " + std::to_string((time_ms - now) / 1000) +
          " s off this proxy's clock (more than the 30 s allowed: are the clocks synchronised?)";
    return false;
  }
  if (!seen_.emplace(nonce, time_ms).second) {
    why = "replayed (its nonce was seen before)";
    return false;
  }
  by_time_.emplace(time_ms, nonce);
  return true;
}

}  // namespace myrelay::fleet
