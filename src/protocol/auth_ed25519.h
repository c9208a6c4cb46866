// MariaDB's client_ed25519 authentication, the client side: the server sends
// a 32-byte nonce and the client signs it with Ed25519, where the key is
// derived from the clear password by SHA-512 directly (where RFC 8032 would
// hash a 32-byte seed).  The server checks the signature against the public
// key it stores (what ED25519_PASSWORD('pw') prints, base64).  A proxy can
// only answer with the clear password at hand, so this needs one.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace myrelay {

constexpr const char* kEd25519Plugin = "client_ed25519";
constexpr size_t kEd25519NonceLen = 32;

// The 64-byte signature (R || S) of `message` under the password's key.
std::string ed25519_sign(std::string_view password, std::string_view message);
// The password's 32-byte public key.
std::array<uint8_t, 32> ed25519_public_key(std::string_view password);

}  // namespace myrelay
