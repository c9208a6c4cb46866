// The packets the proxy builds or reads itself (see packets.h).
#include "protocol/packets.h"

#include <cstring>

namespace myrelay::proto {

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
  w.zeros(6);
  w.u32((hs.capabilities & CLIENT_MYSQL) ? 0 : hs.ext_capabilities);
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
  r.skip(6);  // reserved; MariaDB puts its extended capabilities in the last 4
  uint32_t ext = r.u32();
  if (!(hs.capabilities & CLIENT_MYSQL)) hs.ext_capabilities = ext;
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
  w.u32(resp.capabilities).u32(resp.max_packet).u8(resp.charset).zeros(19);
  w.u32((resp.capabilities & CLIENT_MYSQL) ? 0 : resp.ext_capabilities);
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
  r.skip(19);
  uint32_t ext = r.u32();
  if (!(hr.capabilities & CLIENT_MYSQL)) hr.ext_capabilities = ext;
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

std::string build_column_def(const ColumnDef& c, uint32_t ext_caps) {
  Writer w;
  w.lenenc_str("def").lenenc_str("").lenenc_str("").lenenc_str("");
  w.lenenc_str(c.name).lenenc_str(c.name);
  if (ext_caps & MARIADB_CLIENT_EXTENDED_METADATA) w.lenenc_str("");  // no type or format attributes
  w.lenenc_int(0x0c).u16(c.charset).u32(c.length).u8(c.type).u16(c.flags).u8(c.decimals).u16(0);
  return w.take();
}

std::string build_text_resultset(const std::vector<ColumnDef>& cols,
                                 const std::vector<TextRow>& rows, uint32_t caps,
                                 uint16_t status, uint8_t& seq, uint16_t warnings, uint32_t ext_caps) {
  std::string out;
  Writer count;
  count.lenenc_int(cols.size());
  if (ext_caps & MARIADB_CLIENT_CACHE_METADATA) count.u8(1);  // the definitions follow
  seq = frame_packet(out, seq, count.str());
  for (auto& c : cols) seq = frame_packet(out, seq, build_column_def(c, ext_caps));
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
    ok.warnings = warnings;
    seq = frame_packet(out, seq, build_ok(ok, caps, kEofHeader));
  } else {
    seq = frame_packet(out, seq, build_eof(status, warnings));
  }
  return out;
}

}  // namespace myrelay::proto
