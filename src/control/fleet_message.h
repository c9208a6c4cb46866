// What proxies of a fleet say to each other on their peer ports (DESIGN
// section 6a): a request to run a proxy statement on the peer's own sessions
// as a caller named in it, and the peer's answer.  Every message is a frame
//
//   "MYRF" | version 1 | type | 0 0 | body length (4, big-endian) | body | HMAC
//
// where the HMAC (SHA-256, keyed with the fleet's shared secret) covers
// everything before it.  A request carries its sender's proxy_id, the time
// and a random nonce, so a recorded request is refused when played again
// (ReplayGuard); an answer echoes the nonce, so it cannot be passed off as the
// answer to another request.  The only unsigned frame is a refusal, whose
// reason the asking side shows as untrusted text.  Decoding checks every
// length against what is left: a peer's bytes are untrusted input.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "control/admin_commands.h"

namespace myrelay::fleet {

constexpr size_t kHeaderLen = 12;
constexpr size_t kMacLen = 32;
constexpr size_t kMaxBody = 64u << 20;  // SHOW GLOBAL PROXYSESSION of 100,000 sessions fits
constexpr uint8_t kVersion = 1;
// How far a request's time may be from the receiver's clock; nonces are
// remembered that long.
constexpr int64_t kReplayWindowMs = 30000;

enum class FrameType : uint8_t { Request = 1, Reply = 2, Refusal = 3 };

using Nonce = std::array<uint8_t, 16>;

enum class Op : uint8_t {
  Execute = 1,  // run `statement` (SHOW PROXYSESSION, a kill form) here, as the caller
  Resolve = 2,  // which of my sessions has backend connection id `id` (that the caller may name)
};

enum class Sender : uint8_t {
  Proxy = 1,  // another myrelayd of the fleet
  Tool = 2,   // myrelayctl --fleet: holds the secret, acts as an administrator
};

struct Request {
  Sender sender = Sender::Proxy;
  uint8_t sender_proxy_id = 0;
  int64_t time_ms = 0;  // CLOCK_REALTIME
  Nonce nonce{};
  Op op = Op::Execute;
  uint32_t caller_cs_id = 0;  // the asking SQL session on the sender (0: myrelayctl)
  std::string user, tenant;   // who asks; the receiver applies its own rules to them
  std::string statement;      // Execute
  uint64_t id = 0;            // Resolve: the id; Execute: the cs_id it stands for (0: as written)
};

struct Reply {
  uint8_t sender_proxy_id = 0;
  Nonce nonce{};  // the request's
  admin::Answer answer;
};

std::string encode_request(const Request& r, std::string_view secret);
std::string encode_reply(const Reply& r, std::string_view secret);
std::string encode_refusal(std::string_view reason);

// Takes one whole frame off the front of `buf`.  NeedMore: not all there yet;
// Bad: not a frame of ours, or its HMAC does not match (`why` says which),
// and the connection should close.
enum class Take { NeedMore, Frame, Bad };
struct Frame {
  FrameType type = FrameType::Request;
  std::string body;
};
Take take_frame(std::string& buf, std::string_view secret, Frame& out, std::string& why);

bool decode_request(std::string_view body, Request& out, std::string& why);
bool decode_reply(std::string_view body, Reply& out, std::string& why);
// A refusal's reason, cut short and with anything unprintable replaced.
std::string decode_refusal(std::string_view body);

Nonce random_nonce();
int64_t now_ms();

// Refuses requests too far from now, and any nonce seen within the window.
class ReplayGuard {
 public:
  bool accept(int64_t time_ms, const Nonce& nonce, int64_t now_ms, std::string& why);
  size_t remembered() const { return seen_.size(); }

 private:
  std::map<Nonce, int64_t> seen_;
  std::multimap<int64_t, Nonce> by_time_;
};

}  // namespace myrelay::fleet
