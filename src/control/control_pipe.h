// Control pipes: each worker reads requests (kills) from a named FIFO in
// run_dir.  A request is a fixed 128-byte record, written with one write() so
// that the kernel keeps it whole (it is under PIPE_BUF); the same records come
// from other workers (SQL KILL) and from myrelayctl.  A reader resynchronises
// on the magic and checks a checksum, so garbage is dropped, never acted on.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace myrelay::control {

constexpr uint32_t kMagic = 0x4c54434d;  // "MCTL"
constexpr uint16_t kVersion = 2;  // 2: 128 bytes, with the sender's name and a timeout
constexpr size_t kRecordSize = 128;
constexpr size_t kSenderNameLen = 64;

enum class RequestType : uint16_t {
  KillSession = 1,        // end the client session and its server sessions
  KillServerSession = 2,  // end one server session; the client session goes on
  KillQuery = 3,          // stop the statement running on the backend
  KillWhenIdle = 4,       // end the client session at its next idle moment outside a transaction
};
const char* request_type_name(RequestType t);

struct Request {
  RequestType type = RequestType::KillSession;
  uint32_t cs_id = 0;
  uint64_t proxy_sessid = 0;  // the target must still be this session
  uint64_t ss_id = 0;         // KillServerSession
  int32_t sender_pid = 0;
  uint32_t sender_cs_id = 0;  // 0 when not from a SQL session
  uint32_t timeout_s = 0;     // KillWhenIdle: a plain kill after this (0: none)
  std::string sender_name;    // "user@tenant" of the SQL session (at most 63 bytes kept)
};

// 128 bytes: magic, version, type, cs_id, proxy_sessid, ss_id, sender pid and
// cs_id, timeout_s, sender_name (NUL-padded), reserved zeros, FNV-1a checksum
// of the first 124 bytes.
void encode(const Request& r, uint8_t out[kRecordSize]);

// Reassembles records from whatever read() returned.
class Decoder {
 public:
  void feed(const uint8_t* data, size_t len);
  // The next valid record, if any; garbage before it is skipped and counted.
  bool next(Request& out);
  uint64_t garbage_bytes() const { return garbage_; }
  // Bytes copied to keep the buffer compact: what decoding has cost beyond
  // one look at each byte (linear in what was fed).
  uint64_t bytes_moved() const { return moved_; }

 private:
  std::string buf_;
  size_t off_ = 0;  // where the next scan starts; buf_ before it is used up
  uint64_t garbage_ = 0;
  uint64_t moved_ = 0;
};

// Creates the FIFO (replacing a stale one) with mode 0600, or 0620 and the
// admin group when admin_gid is set, so the group may write requests.
bool make_fifo(const std::string& path, gid_t admin_gid, std::string& error);

// Writes one request to a worker's FIFO without blocking.
bool send(const std::string& fifo_path, const Request& r, std::string& error);
// The same to an already-open descriptor.
bool send_fd(int fd, const Request& r, std::string& error);

}  // namespace myrelay::control
