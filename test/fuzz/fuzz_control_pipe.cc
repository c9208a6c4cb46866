// Fuzzes the control pipes' record decoder.  A worker's FIFO takes records
// from other workers and from myrelayctl, and anyone allowed to write it (the
// daemon's user, the admin group) may write garbage; read() returns whatever
// arrived, in any chunks.  The decoder must drop garbage, never act on it,
// and decode the same records from the same bytes however read() cut them.
//
// Input: the bytes on the pipe; the chunk sizes come from a hash of them.
// Every fourth run also encodes a request made from the input's first bytes,
// which must decode back to itself.
#include <cstring>
#include <vector>

#include "control/control_pipe.h"
#include "fuzz_common.h"

using namespace myrelay;
using namespace myrelay::control;

namespace {

bool same(const Request& a, const Request& b) {
  return a.type == b.type && a.cs_id == b.cs_id && a.proxy_sessid == b.proxy_sessid && a.ss_id == b.ss_id &&
         a.sender_pid == b.sender_pid && a.sender_cs_id == b.sender_cs_id && a.timeout_s == b.timeout_s &&
         a.sender_name == b.sender_name;
}

// As the worker reads its pipe: feed, then take every record that is whole.
std::vector<Request> drain(Decoder& d) {
  std::vector<Request> out;
  Request r;
  while (d.next(r)) {
    FUZZ_CHECK(r.type == RequestType::KillSession || r.type == RequestType::KillServerSession ||
               r.type == RequestType::KillQuery || r.type == RequestType::KillWhenIdle);
    FUZZ_CHECK(r.sender_name.size() < kSenderNameLen && r.sender_name.find('\0') == std::string::npos);
    (void)request_type_name(r.type);
    out.push_back(r);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // All at once.
  Decoder whole;
  whole.feed(data, size);
  std::vector<Request> a = drain(whole);

  // In chunks.
  uint64_t s = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) s = (s ^ data[i]) * 1099511628211ull;
  s |= 1;
  Decoder chunked;
  std::vector<Request> b;
  for (size_t off = 0; off < size;) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    size_t n = std::min<size_t>(size - off, 1 + ((s >> 8) & 1 ? s % 8 : s % (2 * kRecordSize)));
    chunked.feed(data + off, n);
    off += n;
    for (const Request& r : drain(chunked)) b.push_back(r);
  }
  FUZZ_CHECK(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) FUZZ_CHECK(same(a[i], b[i]));
  FUZZ_CHECK(whole.garbage_bytes() == chunked.garbage_bytes());
  // Every byte is a record's, garbage, or still held for what may follow.
  FUZZ_CHECK(a.size() * kRecordSize + whole.garbage_bytes() <= size);

  // A request survives the pipe.
  if (size >= 33 && data[0] % 4 == 0) {
    Request r;
    r.type = RequestType(1 + data[1] % 4);
    memcpy(&r.cs_id, data + 2, 4);
    memcpy(&r.proxy_sessid, data + 6, 8);
    memcpy(&r.ss_id, data + 14, 8);
    memcpy(&r.sender_pid, data + 22, 4);
    memcpy(&r.sender_cs_id, data + 26, 4);
    memcpy(&r.timeout_s, data + 29, 4);
    // A name without NULs, cut as the record cuts it.
    for (size_t i = 33; i < size && r.sender_name.size() < kSenderNameLen - 1; ++i)
      if (data[i]) r.sender_name += char(data[i]);
    uint8_t rec[kRecordSize];
    encode(r, rec);
    Decoder d;
    // Garbage before it, which may hold a partial magic.
    d.feed(data + 30, 3);
    d.feed(rec, kRecordSize);
    std::vector<Request> got = drain(d);
    FUZZ_CHECK(!got.empty() && same(got.back(), r));
  }
  return 0;
}
