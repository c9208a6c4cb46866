// The MySQL client/server protocol codec: constants, packet framing,
// length-encoded values, and reading packets out of buffers.  The packets
// themselves are in packets.h.  Pure byte work, unit-tested without sockets.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace myrelay::proto {

// Capability flags.
enum : uint32_t {
  CLIENT_LONG_PASSWORD = 1u << 0,  // CLIENT_MYSQL for MariaDB
  CLIENT_FOUND_ROWS = 1u << 1,
  CLIENT_LONG_FLAG = 1u << 2,
  CLIENT_CONNECT_WITH_DB = 1u << 3,
  CLIENT_NO_SCHEMA = 1u << 4,
  CLIENT_COMPRESS = 1u << 5,
  CLIENT_ODBC = 1u << 6,
  CLIENT_LOCAL_FILES = 1u << 7,
  CLIENT_IGNORE_SPACE = 1u << 8,
  CLIENT_PROTOCOL_41 = 1u << 9,
  CLIENT_INTERACTIVE = 1u << 10,
  CLIENT_SSL = 1u << 11,
  CLIENT_IGNORE_SIGPIPE = 1u << 12,
  CLIENT_TRANSACTIONS = 1u << 13,
  CLIENT_RESERVED = 1u << 14,
  CLIENT_SECURE_CONNECTION = 1u << 15,
  CLIENT_MULTI_STATEMENTS = 1u << 16,
  CLIENT_MULTI_RESULTS = 1u << 17,
  CLIENT_PS_MULTI_RESULTS = 1u << 18,
  CLIENT_PLUGIN_AUTH = 1u << 19,
  CLIENT_CONNECT_ATTRS = 1u << 20,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1u << 21,
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1u << 22,
  CLIENT_SESSION_TRACK = 1u << 23,
  CLIENT_DEPRECATE_EOF = 1u << 24,
};

// What the proxy offers clients.  No SSL and no compression (the proxy would
// have to terminate them).  CLIENT_LONG_PASSWORD (CLIENT_MYSQL) is dropped
// when the backends offer MariaDB's extended capabilities.
constexpr uint32_t kProxyCapabilities =
    CLIENT_LONG_PASSWORD | CLIENT_FOUND_ROWS | CLIENT_LONG_FLAG | CLIENT_CONNECT_WITH_DB |
    CLIENT_NO_SCHEMA | CLIENT_ODBC | CLIENT_LOCAL_FILES | CLIENT_IGNORE_SPACE |
    CLIENT_PROTOCOL_41 | CLIENT_INTERACTIVE | CLIENT_IGNORE_SIGPIPE | CLIENT_TRANSACTIONS |
    CLIENT_SECURE_CONNECTION | CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS |
    CLIENT_PS_MULTI_RESULTS | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS |
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_SESSION_TRACK | CLIENT_DEPRECATE_EOF;

// MariaDB's extended capabilities: a second 32-bit word, in the handshake's
// and the handshake response's reserved bytes, used when CLIENT_MYSQL
// (CLIENT_LONG_PASSWORD) is not set.
enum : uint32_t {
  MARIADB_CLIENT_PROGRESS = 1u << 0,                // progress reports (0xff 0xffff packets)
  MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1u << 2,    // COM_STMT_BULK_EXECUTE
  MARIADB_CLIENT_EXTENDED_METADATA = 1u << 3,       // a type/format block in column definitions
  MARIADB_CLIENT_CACHE_METADATA = 1u << 4,          // executes may skip unchanged column definitions
};
constexpr uint32_t CLIENT_MYSQL = CLIENT_LONG_PASSWORD;
// What the proxy passes through when client and backend both have it; every
// one of them changes what packets look like, so the two must agree.
constexpr uint32_t kProxyExtCapabilities = MARIADB_CLIENT_PROGRESS | MARIADB_CLIENT_STMT_BULK_OPERATIONS |
                                           MARIADB_CLIENT_EXTENDED_METADATA | MARIADB_CLIENT_CACHE_METADATA;

// Capabilities that change the shape of responses: client and backend must
// agree on every one of these, since the proxy relays responses unchanged.
constexpr uint32_t kResponseShapeCapabilities =
    CLIENT_PROTOCOL_41 | CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS | CLIENT_SESSION_TRACK |
    CLIENT_DEPRECATE_EOF | CLIENT_TRANSACTIONS | CLIENT_LOCAL_FILES;

// Server status flags.
enum : uint16_t {
  SERVER_STATUS_IN_TRANS = 0x0001,
  SERVER_STATUS_AUTOCOMMIT = 0x0002,
  SERVER_MORE_RESULTS_EXISTS = 0x0008,
  SERVER_STATUS_CURSOR_EXISTS = 0x0040,
  SERVER_STATUS_LAST_ROW_SENT = 0x0080,
  SERVER_STATUS_IN_TRANS_READONLY = 0x2000,
  SERVER_SESSION_STATE_CHANGED = 0x4000,
};

// Commands.
enum : uint8_t {
  COM_SLEEP = 0x00,
  COM_QUIT = 0x01,
  COM_INIT_DB = 0x02,
  COM_QUERY = 0x03,
  COM_FIELD_LIST = 0x04,
  COM_CREATE_DB = 0x05,
  COM_DROP_DB = 0x06,
  COM_REFRESH = 0x07,
  COM_SHUTDOWN = 0x08,
  COM_STATISTICS = 0x09,
  COM_PROCESS_INFO = 0x0a,
  COM_CONNECT = 0x0b,
  COM_PROCESS_KILL = 0x0c,
  COM_DEBUG = 0x0d,
  COM_PING = 0x0e,
  COM_TIME = 0x0f,
  COM_DELAYED_INSERT = 0x10,
  COM_CHANGE_USER = 0x11,
  COM_BINLOG_DUMP = 0x12,
  COM_TABLE_DUMP = 0x13,
  COM_CONNECT_OUT = 0x14,
  COM_REGISTER_SLAVE = 0x15,
  COM_STMT_PREPARE = 0x16,
  COM_STMT_EXECUTE = 0x17,
  COM_STMT_SEND_LONG_DATA = 0x18,
  COM_STMT_CLOSE = 0x19,
  COM_STMT_RESET = 0x1a,
  COM_SET_OPTION = 0x1b,
  COM_STMT_FETCH = 0x1c,
  COM_DAEMON = 0x1d,
  COM_BINLOG_DUMP_GTID = 0x1e,
  COM_RESET_CONNECTION = 0x1f,
  COM_STMT_BULK_EXECUTE = 0xfa,  // MariaDB (MARIADB_CLIENT_STMT_BULK_OPERATIONS)
};
const char* command_name(uint8_t cmd);

// Packet headers.
constexpr uint8_t kOkHeader = 0x00;
constexpr uint8_t kEofHeader = 0xfe;
constexpr uint8_t kErrHeader = 0xff;
constexpr uint8_t kLocalInfileHeader = 0xfb;
constexpr uint8_t kAuthSwitchHeader = 0xfe;
constexpr uint8_t kAuthMoreDataHeader = 0x01;

constexpr size_t kHeaderLen = 4;
constexpr size_t kMaxChunk = 0xffffff;  // a payload this long continues in the next chunk

constexpr const char* kNativePasswordPlugin = "mysql_native_password";

struct PacketHeader {
  uint32_t length = 0;  // payload length of this chunk
  uint8_t seq = 0;
};
PacketHeader parse_header(const uint8_t* h);
void write_header(uint8_t* h, uint32_t length, uint8_t seq);

// Reads fields out of one payload.  A read past the end sets ok() to false
// and yields zeros/empties, so parsers check ok() once at the end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t len) : p_(data), end_(data + len) {}
  explicit Reader(std::string_view s)
      : Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool at_end() const { return p_ == end_; }
  const uint8_t* pos() const { return p_; }

  uint8_t u8();
  uint16_t u16();
  uint32_t u24();
  uint32_t u32();
  uint64_t u64();
  // Length-encoded integer.  0xfb (SQL NULL in rows) sets *is_null if given,
  // otherwise it is an error; 0xff is always an error.
  uint64_t lenenc_int(bool* is_null = nullptr);
  std::string lenenc_str();
  std::string nul_str();  // up to a NUL, which is consumed
  std::string bytes(size_t n);
  // The same without copying: views into the reader's buffer.
  std::string_view lenenc_view();
  std::string_view bytes_view(size_t n);
  std::string rest();
  void skip(size_t n);

 private:
  bool need(size_t n);
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// Appends fields to a payload.
class Writer {
 public:
  Writer() = default;
  // Writes into `buf` (emptied first), keeping its allocation: take() gives it back.
  explicit Writer(std::string&& buf) : buf_(std::move(buf)) { buf_.clear(); }
  Writer& u8(uint8_t v);
  Writer& u16(uint16_t v);
  Writer& u24(uint32_t v);
  Writer& u32(uint32_t v);
  Writer& u64(uint64_t v);
  Writer& lenenc_int(uint64_t v);
  Writer& lenenc_str(std::string_view s);
  Writer& nul_str(std::string_view s);
  Writer& bytes(std::string_view s);
  Writer& bytes(const uint8_t* p, size_t n);
  Writer& zeros(size_t n);
  const std::string& str() const { return buf_; }
  std::string take() { return std::move(buf_); }

 private:
  std::string buf_;
};

size_t lenenc_int_size(uint64_t v);

// Frames a payload into one or more chunks (16 MiB - 1 each, the last one
// shorter, possibly empty).  Returns the sequence id after the last chunk.
uint8_t frame_packet(std::string& out, uint8_t seq, std::string_view payload);
std::string framed(uint8_t seq, std::string_view payload);
// The same straight into an evbuffer.
uint8_t frame_packet(evbuffer* out, uint8_t seq, std::string_view payload);

// Reads bytes at increasing offsets of an evbuffer.  The first chains are
// looked up once, so bytes inside one of them are read in place; anything
// else is copied by libevent.  The evbuffer must not change while the peeker
// is in use.
class BufferPeeker {
 public:
  explicit BufferPeeker(evbuffer* b);
  // Points at the n bytes at `off`: inside the buffer when they are in one
  // chain, else at `scratch` (n bytes of room), where they were copied.
  const uint8_t* at(size_t off, size_t n, uint8_t* scratch) {
    if (cur_ < n_vecs_ && off >= cur_start_ && off + n <= cur_start_ + vecs_[cur_].iov_len)
      return static_cast<const uint8_t*>(vecs_[cur_].iov_base) + (off - cur_start_);
    return at_slow(off, n, scratch);
  }
  void copy(size_t off, void* dst, size_t n);

 private:
  const uint8_t* at_slow(size_t off, size_t n, uint8_t* scratch);

  static constexpr int kVecs = 8;
  evbuffer* buf_;
  evbuffer_iovec vecs_[kVecs];
  int n_vecs_ = 0;
  int cur_ = 0;           // the chain where the last read started
  size_t cur_start_ = 0;  // its offset in the buffer
};

// Reads one whole logical packet (joining 16 MiB chunks) from the front of
// `in`, if all of it has arrived.  Returns Incomplete, or TooBig when the
// payload would exceed max_len (nothing consumed then).
enum class ReadStatus { Complete, Incomplete, TooBig };
ReadStatus read_packet(evbuffer* in, size_t max_len, uint8_t& first_seq, uint8_t& last_seq,
                       std::string& payload);
// The same over a plain byte string (for tests and scanning).
ReadStatus read_packet(std::string_view in, size_t max_len, uint8_t& first_seq,
                       uint8_t& last_seq, std::string& payload, size_t& consumed);

}  // namespace myrelay::proto
