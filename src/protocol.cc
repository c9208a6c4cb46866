// The MySQL protocol codec (see protocol.h).
#include "myrelay/protocol.h"

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

std::string Reader::lenenc_str() {
  uint64_t n = lenenc_int();
  if (!ok_) return {};
  if (n > remaining()) {
    ok_ = false;
    p_ = end_;
    return {};
  }
  return bytes(static_cast<size_t>(n));
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

// ---- handshake ----

std::string build_handshake(const Handshake& hs) {
  Writer w;
  w.u8(hs.protocol_version).nul_str(hs.server_version).u32(hs.connection_id);
  std::string scramble = hs.scramble;
  scramble.resize(20, '\0');
  w.bytes(std::string_view(scramble).substr(0, 8)).u8(0);
  w.u16(uint16_t(hs.capabilities)).u8(hs.charset).u16(hs.status);
  w.u16(uint16_t(hs.capabilities >> 16));
  w.u8(uint8_t(scramble.size() + 1));  // auth-plugin-data length, with its NUL
  w.zeros(10);
  w.bytes(std::string_view(scramble).substr(8)).u8(0);
  if (hs.capabilities & CLIENT_PLUGIN_AUTH) w.nul_str(hs.auth_plugin);
  return w.take();
}

bool parse_handshake(std::string_view payload, Handshake& out, std::string& error) {
  Reader r(payload);
  Handshake hs;
  hs.protocol_version = r.u8();
  if (r.ok() && hs.protocol_version == kErrHeader) {
    error = "server answered with an error instead of a handshake";
    return false;
  }
  if (r.ok() && hs.protocol_version != 10) {
    error = "unsupported protocol version " + std::to_string(hs.protocol_version);
    return false;
  }
  hs.server_version = r.nul_str();
  hs.connection_id = r.u32();
  hs.scramble = r.bytes(8);
  r.skip(1);
  hs.capabilities = r.u16();
  if (!r.ok()) {
    error = "handshake packet too short";
    return false;
  }
  if (r.at_end()) {
    out = hs;
    return true;
  }
  hs.charset = r.u8();
  hs.status = r.u16();
  hs.capabilities |= uint32_t(r.u16()) << 16;
  uint8_t auth_len = r.u8();
  r.skip(10);  // reserved (MariaDB puts its extended capabilities in the last 4)
  if (hs.capabilities & CLIENT_SECURE_CONNECTION) {
    size_t n = std::max<int>(13, int(auth_len) - 8);
    std::string part2 = r.bytes(std::min(n, r.remaining()));
    // The second part is NUL-terminated; the NUL is not scramble.
    if (!part2.empty() && part2.back() == '\0') part2.pop_back();
    hs.scramble += part2;
  }
  if (hs.capabilities & CLIENT_PLUGIN_AUTH) {
    if (r.remaining() > 0) {
      std::string rest = r.rest();
      size_t z = rest.find('\0');
      hs.auth_plugin = z == std::string::npos ? rest : rest.substr(0, z);
    }
  } else {
    hs.auth_plugin = kNativePasswordPlugin;
  }
  if (!r.ok()) {
    error = "malformed handshake packet";
    return false;
  }
  out = hs;
  return true;
}

static void write_attributes(Writer& w,
                             const std::vector<std::pair<std::string, std::string>>& attrs) {
  Writer a;
  for (auto& kv : attrs) a.lenenc_str(kv.first).lenenc_str(kv.second);
  w.lenenc_str(a.str());
}

static bool read_attributes(Reader& r, std::vector<std::pair<std::string, std::string>>& attrs) {
  std::string blob = r.lenenc_str();
  if (!r.ok()) return false;
  Reader a(blob);
  while (!a.at_end()) {
    std::string k = a.lenenc_str();
    std::string v = a.lenenc_str();
    if (!a.ok()) return false;
    attrs.emplace_back(std::move(k), std::move(v));
  }
  return true;
}

std::string build_handshake_response(const HandshakeResponse& resp) {
  Writer w;
  w.u32(resp.capabilities).u32(resp.max_packet).u8(resp.charset).zeros(23);
  w.nul_str(resp.user);
  if (resp.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    w.lenenc_str(resp.auth_response);
  } else if (resp.capabilities & CLIENT_SECURE_CONNECTION) {
    w.u8(uint8_t(resp.auth_response.size())).bytes(resp.auth_response);
  } else {
    w.nul_str(resp.auth_response);
  }
  if (resp.capabilities & CLIENT_CONNECT_WITH_DB) w.nul_str(resp.database);
  if (resp.capabilities & CLIENT_PLUGIN_AUTH) w.nul_str(resp.auth_plugin);
  if (resp.capabilities & CLIENT_CONNECT_ATTRS) write_attributes(w, resp.attributes);
  return w.take();
}

bool parse_handshake_response(std::string_view payload, HandshakeResponse& out,
                              std::string& error) {
  Reader r(payload);
  HandshakeResponse hr;
  hr.capabilities = r.u32();
  if (r.ok() && !(hr.capabilities & CLIENT_PROTOCOL_41)) {
    error = "client does not speak protocol 4.1";
    return false;
  }
  hr.max_packet = r.u32();
  hr.charset = r.u8();
  r.skip(23);
  if (!r.ok()) {
    error = "handshake response too short";
    return false;
  }
  if (r.at_end()) {  // an SSLRequest stops here
    hr.is_ssl_request = true;
    out = hr;
    return true;
  }
  hr.user = r.nul_str();
  if (hr.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    hr.auth_response = r.lenenc_str();
  } else if (hr.capabilities & CLIENT_SECURE_CONNECTION) {
    uint8_t n = r.u8();
    hr.auth_response = r.bytes(n);
  } else {
    hr.auth_response = r.nul_str();
  }
  // Trailing optional fields may be missing even when the flag is set; old
  // clients do that, and MySQL accepts it.
  if ((hr.capabilities & CLIENT_CONNECT_WITH_DB) && r.ok() && !r.at_end()) hr.database = r.nul_str();
  if ((hr.capabilities & CLIENT_PLUGIN_AUTH) && r.ok() && !r.at_end()) hr.auth_plugin = r.nul_str();
  if ((hr.capabilities & CLIENT_CONNECT_ATTRS) && r.ok() && !r.at_end()) {
    if (!read_attributes(r, hr.attributes)) {
      error = "malformed connection attributes";
      return false;
    }
  }
  if (!r.ok()) {
    error = "malformed handshake response";
    return false;
  }
  out = hr;
  return true;
}

std::string build_change_user(const ChangeUser& cu, uint32_t caps) {
  Writer w;
  w.u8(COM_CHANGE_USER).nul_str(cu.user);
  if (caps & CLIENT_SECURE_CONNECTION) {
    std::string_view auth(cu.auth_response);
    w.u8(uint8_t(std::min<size_t>(auth.size(), 255))).bytes(auth.substr(0, 255));
  } else {
    w.nul_str(cu.auth_response);
  }
  w.nul_str(cu.database);
  w.u16(cu.charset);
  if (caps & CLIENT_PLUGIN_AUTH) w.nul_str(cu.auth_plugin);
  if (caps & CLIENT_CONNECT_ATTRS) write_attributes(w, cu.attributes);
  return w.take();
}

bool parse_change_user(std::string_view payload, uint32_t client_caps, ChangeUser& out,
                       std::string& error) {
  Reader r(payload);
  if (r.u8() != COM_CHANGE_USER || !r.ok()) {
    error = "not a COM_CHANGE_USER packet";
    return false;
  }
  ChangeUser cu;
  cu.user = r.nul_str();
  if (client_caps & CLIENT_SECURE_CONNECTION) {
    uint8_t n = r.u8();
    cu.auth_response = r.bytes(n);
  } else {
    cu.auth_response = r.nul_str();
  }
  cu.database = r.nul_str();
  if (r.ok() && r.remaining() >= 2) cu.charset = r.u16();
  if (r.ok() && !r.at_end() && (client_caps & CLIENT_PLUGIN_AUTH)) cu.auth_plugin = r.nul_str();
  if (r.ok() && !r.at_end() && (client_caps & CLIENT_CONNECT_ATTRS)) {
    if (!read_attributes(r, cu.attributes)) {
      error = "malformed connection attributes";
      return false;
    }
  }
  if (!r.ok()) {
    error = "malformed COM_CHANGE_USER packet";
    return false;
  }
  out = cu;
  return true;
}

std::string build_auth_switch(std::string_view plugin, std::string_view scramble) {
  Writer w;
  w.u8(kAuthSwitchHeader).nul_str(plugin).bytes(scramble).u8(0);
  return w.take();
}

bool parse_auth_switch(std::string_view payload, AuthSwitch& out) {
  Reader r(payload);
  if (r.u8() != kAuthSwitchHeader || !r.ok()) return false;
  if (r.at_end()) {  // old-style "switch to mysql_old_password"
    out.plugin = "mysql_old_password";
    out.data.clear();
    return true;
  }
  out.plugin = r.nul_str();
  out.data = r.rest();
  if (!out.data.empty() && out.data.back() == '\0') out.data.pop_back();
  return r.ok();
}

// ---- OK / ERR / EOF ----

std::string build_ok(const OkPacket& ok, uint32_t caps, uint8_t header) {
  Writer w;
  w.u8(header).lenenc_int(ok.affected_rows).lenenc_int(ok.last_insert_id);
  w.u16(ok.status).u16(ok.warnings);
  if (caps & CLIENT_SESSION_TRACK) {
    // Session-state changes are never announced by the proxy's own OKs.
    w.lenenc_str(ok.info);
  } else {
    w.bytes(ok.info);
  }
  return w.take();
}

bool parse_ok(std::string_view payload, OkPacket& out) {
  Reader r(payload);
  uint8_t h = r.u8();
  if (!r.ok() || (h != kOkHeader && h != kEofHeader)) return false;
  out.affected_rows = r.lenenc_int();
  out.last_insert_id = r.lenenc_int();
  out.status = r.u16();
  out.warnings = r.u16();
  out.info.clear();
  return r.ok();
}

std::string build_err(uint16_t code, std::string_view sql_state, std::string_view message) {
  Writer w;
  std::string state(sql_state.substr(0, 5));
  state.resize(5, '0');
  w.u8(kErrHeader).u16(code).u8('#').bytes(state).bytes(message);
  return w.take();
}

bool parse_err(std::string_view payload, ErrPacket& out) {
  Reader r(payload);
  if (r.u8() != kErrHeader || !r.ok()) return false;
  out.code = r.u16();
  if (!r.ok()) return false;
  if (r.remaining() >= 6 && *r.pos() == '#') {
    r.skip(1);
    out.sql_state = r.bytes(5);
  } else {
    out.sql_state = "HY000";
  }
  out.message = r.rest();
  return r.ok();
}

std::string build_eof(uint16_t status, uint16_t warnings) {
  Writer w;
  w.u8(kEofHeader).u16(warnings).u16(status);
  return w.take();
}

bool is_eof_or_terminator(const uint8_t* payload, size_t len) {
  // A row can start with 0xfe only as the prefix of an 8-byte length, and such
  // a row is at least 16 MiB long; anything shorter starting with 0xfe is an
  // EOF packet or (CLIENT_DEPRECATE_EOF) an OK packet ending the rows.
  return len > 0 && len < kMaxChunk && payload[0] == kEofHeader;
}

std::string build_column_def(const ColumnDef& c) {
  Writer w;
  w.lenenc_str("def").lenenc_str("").lenenc_str("").lenenc_str("");
  w.lenenc_str(c.name).lenenc_str(c.name);
  w.lenenc_int(0x0c).u16(c.charset).u32(c.length).u8(c.type).u16(c.flags).u8(c.decimals).u16(0);
  return w.take();
}

std::string build_text_resultset(const std::vector<ColumnDef>& cols,
                                 const std::vector<TextRow>& rows, uint32_t caps,
                                 uint16_t status, uint8_t& seq) {
  std::string out;
  Writer count;
  count.lenenc_int(cols.size());
  seq = frame_packet(out, seq, count.str());
  for (auto& c : cols) seq = frame_packet(out, seq, build_column_def(c));
  bool deprecate_eof = caps & CLIENT_DEPRECATE_EOF;
  if (!deprecate_eof) seq = frame_packet(out, seq, build_eof(status));
  for (auto& row : rows) {
    Writer w;
    for (auto& v : row) {
      if (v)
        w.lenenc_str(*v);
      else
        w.u8(0xfb);
    }
    seq = frame_packet(out, seq, w.str());
  }
  if (deprecate_eof) {
    OkPacket ok;
    ok.status = status;
    seq = frame_packet(out, seq, build_ok(ok, caps, kEofHeader));
  } else {
    seq = frame_packet(out, seq, build_eof(status));
  }
  return out;
}

}  // namespace myrelay::proto
