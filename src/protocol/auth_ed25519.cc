// client_ed25519 (see auth_ed25519.h), on libsodium's Ed25519 group and
// scalar operations; the key derivation is MariaDB's.
#include "protocol/auth_ed25519.h"

#include <sodium.h>

#include <cstring>

namespace myrelay {

namespace {

using Scalar = std::array<uint8_t, crypto_core_ed25519_SCALARBYTES>;

// The expanded key: SHA-512 of the password, its first half clamped (the
// secret scalar), its second half the nonce prefix.
std::array<uint8_t, 64> expanded_key(std::string_view password) {
  std::array<uint8_t, 64> az{};
  crypto_hash_sha512(az.data(), reinterpret_cast<const unsigned char*>(password.data()), password.size());
  az[0] &= 248;
  az[31] &= 63;
  az[31] |= 64;
  return az;
}

// A 64-byte little-endian number modulo the group order.
Scalar reduce64(const uint8_t* wide) {
  Scalar s{};
  unsigned char buf[crypto_core_ed25519_NONREDUCEDSCALARBYTES];
  memcpy(buf, wide, sizeof buf);
  crypto_core_ed25519_scalar_reduce(s.data(), buf);
  sodium_memzero(buf, sizeof buf);
  return s;
}

}  // namespace

std::array<uint8_t, 32> ed25519_public_key(std::string_view password) {
  if (sodium_init() < 0) return {};
  auto az = expanded_key(password);
  std::array<uint8_t, 32> a{};
  crypto_scalarmult_ed25519_base_noclamp(a.data(), az.data());
  sodium_memzero(az.data(), az.size());
  return a;
}

std::string ed25519_sign(std::string_view password, std::string_view message) {
  if (sodium_init() < 0) return {};
  auto az = expanded_key(password);
  std::array<uint8_t, 32> pub{};
  crypto_scalarmult_ed25519_base_noclamp(pub.data(), az.data());
  const auto* m = reinterpret_cast<const unsigned char*>(message.data());

  // r = SHA-512(prefix || M) mod L;  R = rB
  unsigned char h[64];
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, az.data() + 32, 32);
  crypto_hash_sha512_update(&st, m, message.size());
  crypto_hash_sha512_final(&st, h);
  Scalar r = reduce64(h);
  unsigned char big_r[32];
  crypto_scalarmult_ed25519_base_noclamp(big_r, r.data());

  // k = SHA-512(R || A || M) mod L;  S = r + k a mod L
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, big_r, sizeof big_r);
  crypto_hash_sha512_update(&st, pub.data(), pub.size());
  crypto_hash_sha512_update(&st, m, message.size());
  crypto_hash_sha512_final(&st, h);
  Scalar k = reduce64(h);
  uint8_t a_wide[64] = {};
  memcpy(a_wide, az.data(), 32);
  Scalar a = reduce64(a_wide);
  Scalar ka{}, s{};
  crypto_core_ed25519_scalar_mul(ka.data(), k.data(), a.data());
  crypto_core_ed25519_scalar_add(s.data(), ka.data(), r.data());

  std::string sig(reinterpret_cast<const char*>(big_r), sizeof big_r);
  sig.append(reinterpret_cast<const char*>(s.data()), s.size());
  sodium_memzero(az.data(), az.size());
  sodium_memzero(a_wide, sizeof a_wide);
  sodium_memzero(a.data(), a.size());
  sodium_memzero(r.data(), r.size());
  return sig;
}

}  // namespace myrelay
