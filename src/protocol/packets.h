// The packets the proxy builds or reads itself: the handshake and the
// client's answer, COM_CHANGE_USER, auth switch, OK, ERR and EOF, and the
// column definitions and rows of the result sets it answers with.  Pure byte
// work, unit-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/codec.h"
#include "protocol/errors.h"

namespace myrelay::proto {

// Initial handshake packet, protocol version 10.
struct Handshake {
  uint8_t protocol_version = 10;
  std::string server_version;
  uint32_t connection_id = 0;
  std::string scramble;  // 20 bytes for mysql_native_password (8 + 12)
  uint32_t capabilities = 0;
  uint32_t ext_capabilities = 0;  // MariaDB's, when CLIENT_MYSQL is not set
  uint8_t charset = 0;
  uint16_t status = 0;
  std::string auth_plugin = kNativePasswordPlugin;
};
std::string build_handshake(const Handshake& hs);
bool parse_handshake(std::string_view payload, Handshake& out, std::string& error);

// The client's answer, HandshakeResponse41.
struct HandshakeResponse {
  uint32_t capabilities = 0;
  uint32_t ext_capabilities = 0;  // MariaDB's, when CLIENT_MYSQL is not set
  uint32_t max_packet = 0;
  uint8_t charset = 0;
  std::string user;
  std::string auth_response;
  std::string database;
  std::string auth_plugin;
  // Connection attributes as (key, value) pairs, in the client's order.
  std::vector<std::pair<std::string, std::string>> attributes;
  bool is_ssl_request = false;  // only the first 32 bytes were sent
};
std::string build_handshake_response(const HandshakeResponse& r);
bool parse_handshake_response(std::string_view payload, HandshakeResponse& out, std::string& error);

// COM_CHANGE_USER's payload (after the command byte is checked).
struct ChangeUser {
  std::string user;
  std::string auth_response;
  std::string database;
  uint16_t charset = 0;  // 0 = not sent
  std::string auth_plugin;
  std::vector<std::pair<std::string, std::string>> attributes;
};
bool parse_change_user(std::string_view payload, uint32_t client_caps, ChangeUser& out,
                       std::string& error);
// The packet a proxy sends to switch a pooled backend session to another user.
std::string build_change_user(const ChangeUser& cu, uint32_t caps);

struct AuthSwitch {
  std::string plugin;
  std::string data;  // the scramble, without the trailing NUL
};
std::string build_auth_switch(std::string_view plugin, std::string_view scramble);
bool parse_auth_switch(std::string_view payload, AuthSwitch& out);

struct OkPacket {
  uint64_t affected_rows = 0;
  uint64_t last_insert_id = 0;
  uint16_t status = 0;
  uint16_t warnings = 0;
  std::string info;
};
// `caps` decides the info field's form (CLIENT_SESSION_TRACK) and whether the
// header is 0x00 or, for a DEPRECATE_EOF end-of-rows marker, 0xfe.
std::string build_ok(const OkPacket& ok, uint32_t caps, uint8_t header = kOkHeader);
bool parse_ok(std::string_view payload, OkPacket& out);

struct ErrPacket {
  uint16_t code = 0;
  std::string sql_state = "HY000";
  std::string message;
};
std::string build_err(uint16_t code, std::string_view sql_state, std::string_view message);
inline std::string build_err(const er::Error& e, std::string_view message) {
  return build_err(e.code, e.sql_state, message);
}
bool parse_err(std::string_view payload, ErrPacket& out);

// Pre-DEPRECATE_EOF end-of-data marker.
std::string build_eof(uint16_t status, uint16_t warnings = 0);
bool is_eof_or_terminator(const uint8_t* payload, size_t len);

// Column definition (Protocol::ColumnDefinition41) for result sets the proxy
// generates itself.
struct ColumnDef {
  std::string name;
  uint8_t type = 0xfd;  // MYSQL_TYPE_VAR_STRING
  uint32_t length = 256;
  uint16_t flags = 0;
  uint8_t charset = 33;  // utf8_general_ci
  uint8_t decimals = 0;
};
enum : uint8_t { MYSQL_TYPE_LONG = 0x03, MYSQL_TYPE_LONGLONG = 0x08, MYSQL_TYPE_VAR_STRING = 0xfd };
std::string build_column_def(const ColumnDef& c, uint32_t ext_caps = 0);

// A whole text-protocol result set (column count, definitions, rows, end
// markers) in the form `caps` asks for; rows hold nullopt for SQL NULL.
using TextRow = std::vector<std::optional<std::string>>;
// `ext_caps`: the client's MariaDB capabilities (extended metadata and
// metadata caching change the packets).
std::string build_text_resultset(const std::vector<ColumnDef>& cols,
                                 const std::vector<TextRow>& rows, uint32_t caps,
                                 uint16_t status, uint8_t& seq, uint16_t warnings = 0,
                                 uint32_t ext_caps = 0);

}  // namespace myrelay::proto
