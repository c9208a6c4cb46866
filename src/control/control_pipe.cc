// Control pipe records and FIFOs (see control_pipe.h).
#include "control/control_pipe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace myrelay::control {

const char* request_type_name(RequestType t) {
  switch (t) {
    case RequestType::KillSession: return "kill session";
    case RequestType::KillServerSession: return "kill server session";
    case RequestType::KillQuery: return "kill query";
    case RequestType::KillWhenIdle: return "kill when idle";
  }
  return "unknown";
}

static uint32_t fnv1a(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

static void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
static void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
static uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
static uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

void encode(const Request& r, uint8_t out[kRecordSize]) {
  memset(out, 0, kRecordSize);
  put32(out + 0, kMagic);
  out[4] = uint8_t(kVersion);
  out[5] = uint8_t(kVersion >> 8);
  out[6] = uint8_t(uint16_t(r.type));
  out[7] = uint8_t(uint16_t(r.type) >> 8);
  put32(out + 8, r.cs_id);
  put64(out + 12, r.proxy_sessid);
  put64(out + 20, r.ss_id);
  put32(out + 28, uint32_t(r.sender_pid));
  put32(out + 32, r.sender_cs_id);
  put32(out + 36, r.timeout_s);
  memcpy(out + 40, r.sender_name.data(), std::min(r.sender_name.size(), kSenderNameLen - 1));
  put32(out + kRecordSize - 4, fnv1a(out, kRecordSize - 4));
}

void Decoder::feed(const uint8_t* data, size_t len) {
  buf_.append(reinterpret_cast<const char*>(data), len);
}

// Scans from off_ and drops what it passed only when it returns false, so a
// buffer full of near-records ("MCTL" over and over) costs linear time.
bool Decoder::next(Request& out) {
  static const char magic[4] = {0x4d, 0x43, 0x54, 0x4c};
  for (;;) {
    // Find the magic; everything before it is garbage.
    size_t pos = buf_.find(magic, off_, 4);
    if (pos == std::string::npos) {
      // Keep up to 3 bytes: they may be the start of a magic still arriving.
      size_t keep = std::min<size_t>(buf_.size() - off_, 3);
      garbage_ += buf_.size() - off_ - keep;
      moved_ += keep;
      buf_.erase(0, buf_.size() - keep);
      off_ = 0;
      return false;
    }
    garbage_ += pos - off_;
    off_ = pos;
    if (buf_.size() - off_ < kRecordSize) {
      moved_ += buf_.size() - off_;
      buf_.erase(0, off_);
      off_ = 0;
      return false;
    }
    const uint8_t* p = reinterpret_cast<const uint8_t*>(buf_.data()) + off_;
    uint16_t version = uint16_t(p[4] | p[5] << 8);
    uint16_t type = uint16_t(p[6] | p[7] << 8);
    bool valid = get32(p + kRecordSize - 4) == fnv1a(p, kRecordSize - 4) && version == kVersion && type >= 1 &&
                 type <= 4;
    if (!valid) {
      // Not a record after all: skip this magic and look for the next one.
      garbage_ += 1;
      off_ += 1;
      continue;
    }
    out.type = RequestType(type);
    out.cs_id = get32(p + 8);
    out.proxy_sessid = get64(p + 12);
    out.ss_id = get64(p + 20);
    out.sender_pid = int32_t(get32(p + 28));
    out.sender_cs_id = get32(p + 32);
    out.timeout_s = get32(p + 36);
    // The name up to its first NUL: a sender's bytes, never trusted to end.
    const char* name = reinterpret_cast<const char*>(p + 40);
    out.sender_name.assign(name, strnlen(name, kSenderNameLen - 1));
    off_ += kRecordSize;
    return true;
  }
}

bool make_fifo(const std::string& path, gid_t admin_gid, std::string& error) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) {
      error = path + " exists and is not a FIFO";
      return false;
    }
    ::unlink(path.c_str());
  }
  mode_t mode = admin_gid != gid_t(-1) ? 0620 : 0600;
  if (mkfifo(path.c_str(), mode) != 0) {
    error = "cannot create control pipe " + path + ": " + strerror(errno);
    return false;
  }
  // mkfifo applies the umask; set exactly what we want.
  if (chmod(path.c_str(), mode) != 0 ||
      (admin_gid != gid_t(-1) && chown(path.c_str(), uid_t(-1), admin_gid) != 0)) {
    error = "cannot set owner/mode of control pipe " + path + ": " + strerror(errno);
    ::unlink(path.c_str());
    return false;
  }
  return true;
}

bool send_fd(int fd, const Request& r, std::string& error) {
  uint8_t rec[kRecordSize];
  encode(r, rec);
  ssize_t n = ::write(fd, rec, sizeof(rec));
  if (n == ssize_t(sizeof(rec))) return true;
  if (n < 0 && errno == EAGAIN)
    error = "the worker's control pipe is full (the worker is not keeping up)";
  else
    error = std::string("write to control pipe failed: ") + (n < 0 ? strerror(errno) : "short write");
  return false;
}

bool send(const std::string& fifo_path, const Request& r, std::string& error) {
  int fd = ::open(fifo_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EACCES)
      error = "permission denied writing control pipe " + fifo_path +
              " (run as the daemon's user or a member of its admin_group)";
    else if (errno == ENXIO)
      error = "nobody reads control pipe " + fifo_path + ": the worker is gone";
    else
      error = "cannot open control pipe " + fifo_path + ": " + strerror(errno);
    return false;
  }
  bool ok = send_fd(fd, r, error);
  ::close(fd);
  return ok;
}

}  // namespace myrelay::control
