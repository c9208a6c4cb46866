// Fuzzes what a proxy reads from another proxy of the fleet: the bytes on a
// peer connection (frames, in any chunks), and the bodies of requests and
// answers, which a holder of the secret could make anything.  Nothing may
// crash or allocate what the bytes do not hold; a frame comes out only with
// a valid signature; whatever decodes must encode and decode again to the
// same thing.
//
// Input: the bytes on the connection; also taken whole as a request body, an
// answer body and a refusal body.
#include "control/fleet_message.h"
#include "fuzz_common.h"

using namespace myrelay;
using namespace myrelay::fleet;

namespace {
const std::string kSecret = "fuzzing-secret-0123456789";

bool same(const admin::Answer& a, const admin::Answer& b) {
  if (a.kind != b.kind || a.affected_rows != b.affected_rows || a.error_code != b.error_code ||
      a.message != b.message || a.columns.size() != b.columns.size() || a.rows.size() != b.rows.size() ||
      a.warnings.size() != b.warnings.size())
    return false;
  for (size_t i = 0; i < a.rows.size(); ++i)
    if (a.rows[i] != b.rows[i]) return false;
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  // As a peer connection delivers it, a few bytes at a time.
  std::string buf;
  uint64_t s = 0x9e3779b97f4a7c15ull ^ size;
  for (size_t off = 0; off < size;) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    size_t n = std::min<size_t>(size - off, 1 + s % 64);
    buf.append(bytes, off, n);
    off += n;
    Frame f;
    std::string why;
    Take t;
    while ((t = take_frame(buf, kSecret, f, why)) == Take::Frame) {
      Request rq;
      Reply rp;
      (void)decode_request(f.body, rq, why);
      (void)decode_reply(f.body, rp, why);
      (void)decode_refusal(f.body);
    }
    if (t == Take::Bad) {
      FUZZ_CHECK(!why.empty());
      break;  // the connection closes
    }
  }

  // As bodies: what decodes survives a round trip.
  Request rq;
  std::string why;
  if (decode_request(bytes, rq, why)) {
    std::string again = encode_request(rq, kSecret);
    Frame f;
    FUZZ_CHECK(take_frame(again, kSecret, f, why) == Take::Frame);
    Request back;
    FUZZ_CHECK(decode_request(f.body, back, why));
    FUZZ_CHECK(back.statement == rq.statement && back.user == rq.user && back.tenant == rq.tenant &&
               back.id == rq.id && back.nonce == rq.nonce && back.time_ms == rq.time_ms);
  }
  Reply rp;
  if (decode_reply(bytes, rp, why)) {
    FUZZ_CHECK(rp.answer.columns.size() <= 64);
    for (const auto& row : rp.answer.rows) FUZZ_CHECK(row.size() == rp.answer.columns.size());
    std::string again = encode_reply(rp, kSecret);
    Frame f;
    FUZZ_CHECK(take_frame(again, kSecret, f, why) == Take::Frame);
    Reply back;
    FUZZ_CHECK(decode_reply(f.body, back, why));
    FUZZ_CHECK(same(rp.answer, back.answer));
  }
  std::string reason = decode_refusal(bytes);
  FUZZ_CHECK(reason.size() <= 200);
  for (char c : reason) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
  return 0;
}
