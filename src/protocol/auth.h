// mysql_native_password, done the way a proxy needs it: check a client's
// answer against the stored SHA1(SHA1(pw)), recover SHA1(pw) from that answer,
// and use it to answer a backend's scramble, so no clear password is ever kept.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace myrelay {

using Sha1Digest = std::array<uint8_t, 20>;
constexpr size_t kScrambleLen = 20;
using Scramble = std::array<uint8_t, kScrambleLen>;

Sha1Digest sha1(const void* data, size_t len);
Sha1Digest sha1(const std::string& s);

// 20 random bytes, none of them NUL (the handshake sends them NUL-terminated).
Scramble make_scramble();

// "*" + 40 hex digits (as PASSWORD() prints it) -> digest.  Case-insensitive.
bool parse_password_hash(const std::string& text, Sha1Digest& out);
std::string format_password_hash(const Sha1Digest& hash2);  // "*HEX"

// Client side: token = SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
Sha1Digest native_token_from_hash1(const Sha1Digest& hash1, const uint8_t* scramble, size_t scramble_len);
Sha1Digest native_token(const std::string& password, const uint8_t* scramble, size_t scramble_len);

// Server side: checks `token` (20 bytes) against hash2.  On success stores
// SHA1(pw) in hash1_out and returns true.
bool native_verify(const uint8_t* token, size_t token_len, const uint8_t* scramble,
                   size_t scramble_len, const Sha1Digest& hash2, Sha1Digest& hash1_out);

}  // namespace myrelay
