// mysql_native_password, done the way a proxy needs it: check a client's
// answer against the stored SHA1(SHA1(pw)), recover SHA1(pw) from that answer,
// and use it to answer a backend's scramble, so no clear password is ever kept.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

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

// ---- caching_sha2_password (MySQL 8's default method) ----
//
// The client's answer to a 20-byte nonce is
//   SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce)
// so a server holding SHA256(SHA256(pw)) (the config form "sha2:<hex>")
// recovers SHA256(pw) and checks it, as mysql_native_password does with SHA-1.
using Sha256Digest = std::array<uint8_t, 32>;
constexpr const char* kCachingSha2Plugin = "caching_sha2_password";
// The server's one-byte answers after the 0x01 "more data" header.
constexpr uint8_t kSha2FastAuthOk = 3;
constexpr uint8_t kSha2PerformFullAuth = 4;
constexpr uint8_t kSha2RequestPublicKey = 2;  // what a client sends to ask for the RSA key

Sha256Digest sha256(const void* data, size_t len);
Sha256Digest sha256(const std::string& s);

// "sha2:" + 64 hex digits -> SHA256(SHA256(pw)).  Case-insensitive.
bool parse_sha2_hash(const std::string& text, Sha256Digest& out);
std::string format_sha2_hash(const Sha256Digest& hash2);  // "sha2:<lowercase hex>"

// Client side (tests, and the proxy answering a backend): the fast path's
// answer, from the clear password or from SHA256(pw) alone.
Sha256Digest sha2_token(const std::string& password, const uint8_t* nonce, size_t nonce_len);
Sha256Digest sha2_token_from_hash1(const Sha256Digest& hash1, const uint8_t* nonce, size_t nonce_len);

// Full authentication without TLS, the client side: RSA-OAEP(password NUL
// XOR nonce) with the server's PEM public key.  False with `error` when the
// key cannot be read or used.
bool sha2_encrypt_password(const std::string& password, const uint8_t* nonce, size_t nonce_len,
                           const std::string& pem_public_key, std::string& out, std::string& error);

// Server side: checks a 32-byte answer against SHA256(SHA256(pw)); on
// success stores SHA256(pw) in hash1_out.
bool sha2_verify(const uint8_t* token, size_t token_len, const uint8_t* nonce, size_t nonce_len,
                 const Sha256Digest& hash2, Sha256Digest& hash1_out);

// Constant-time equality of two byte ranges of one length.
bool equal_secret(const uint8_t* a, const uint8_t* b, size_t len);

// An RSA private key for caching_sha2_password's full authentication over
// plain TCP: the client asks for the public key, then sends
// RSA-OAEP(password NUL XOR nonce).  Loaded on the main thread (start,
// SIGHUP); decrypting is thread-safe and takes no locks.
class RsaKey {
 public:
  // Reads a PEM private key; null with `error` set when it cannot.
  static std::shared_ptr<const RsaKey> load_pem_file(const std::string& path, std::string& error);
  ~RsaKey();
  RsaKey(const RsaKey&) = delete;
  RsaKey& operator=(const RsaKey&) = delete;
  const std::string& public_pem() const { return public_pem_; }
  // RSA-OAEP (SHA-1, as MySQL's clients use) decryption; false on garbage.
  bool decrypt_oaep(const std::string& cipher, std::string& plain) const;

 private:
  RsaKey() = default;
  ::evp_pkey_st* key_ = nullptr;
  std::string public_pem_;
};

// The clear password in an RSA-decrypted caching_sha2 answer: XOR with the
// nonce (repeated), up to the first NUL.  False when no NUL ends it.
bool sha2_unmask_password(const std::string& plain, const uint8_t* nonce, size_t nonce_len, std::string& password);

}  // namespace myrelay
