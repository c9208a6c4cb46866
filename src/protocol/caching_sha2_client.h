// caching_sha2_password, the client side, as the proxy answers a backend
// (MySQL 8's default method):
//   fast path:  SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce), from
//               SHA256(pw) alone (a client's own caching_sha2 answer gives
//               it, as does the clear password);
//   full authentication, when the server has no cached entry: the clear
//               password, in the clear over TLS, else encrypted with the
//               server's RSA public key (RSA-OAEP of password XOR nonce).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace myrelay {

constexpr const char* kCachingSha2Plugin = "caching_sha2_password";
using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256_of(std::string_view data);

// The fast path's 32-byte answer to `nonce` (its first 20 bytes are used).
std::string caching_sha2_scramble(const Sha256Digest& sha256_pw, std::string_view nonce);

// Full authentication without TLS: the password (NUL-terminated) XOR the
// nonce, encrypted with the server's PEM public key.  False with `error`
// when the key cannot be read or used.
bool caching_sha2_rsa_encrypt(const std::string& password, std::string_view nonce, std::string_view pem_public_key,
                              std::string& out, std::string& error);

}  // namespace myrelay
