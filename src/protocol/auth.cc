// mysql_native_password for a proxy (see auth.h).
#include "protocol/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace myrelay {

// SHA-1 fetched once: with OpenSSL 3, EVP_sha1() makes every digest look the
// algorithm up again, which cost more than the hashing in a login.
static const EVP_MD* sha1_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    return m ? m : EVP_sha1();
  }();
  return md;
}

// One digest context per thread, reused (workers hash at every login).
static EVP_MD_CTX* thread_md_ctx() {
  struct Holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Holder h;
  return h.ctx;
}

static Sha1Digest sha1_parts(const void* a, size_t alen, const void* b, size_t blen) {
  EVP_MD_CTX* ctx = thread_md_ctx();
  Sha1Digest out{};
  unsigned int n = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, sha1_md(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, a, alen) == 1 && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
            EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == out.size();
  if (!ok) throw std::runtime_error("SHA-1 digest failed");
  return out;
}

Sha1Digest sha1(const void* data, size_t len) { return sha1_parts(data, len, nullptr, 0); }

Sha1Digest sha1(const std::string& s) { return sha1(s.data(), s.size()); }

// Scrambles come from OpenSSL's generator, drawn a few hundred bytes at a
// time per thread: one RAND_bytes call per login cost as much as the rest of
// the handshake.
Scramble make_scramble() {
  thread_local uint8_t pool[640];
  thread_local size_t left = 0;
  Scramble s{};
  if (left < s.size()) {
    if (RAND_bytes(pool, static_cast<int>(sizeof(pool))) != 1)
      throw std::runtime_error("RAND_bytes failed");
    left = sizeof(pool);
  }
  uint8_t* src = pool + sizeof(pool) - left;
  memcpy(s.data(), src, s.size());
  memset(src, 0, s.size());  // each byte is used once
  left -= s.size();
  // Keep every byte printable ASCII (MySQL does the same), so none is NUL.
  for (auto& b : s) b = static_cast<uint8_t>(33 + (b % 94));
  return s;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_password_hash(const std::string& text, Sha1Digest& out) {
  if (text.size() != 41 || text[0] != '*') return false;
  for (size_t i = 0; i < 20; ++i) {
    int hi = hexval(text[1 + 2 * i]), lo = hexval(text[2 + 2 * i]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string format_password_hash(const Sha1Digest& hash2) {
  static const char* digits = "0123456789ABCDEF";
  std::string s = "*";
  for (uint8_t b : hash2) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

Sha1Digest native_token_from_hash1(const Sha1Digest& hash1, const uint8_t* scramble,
                                   size_t scramble_len) {
  Sha1Digest hash2 = sha1(hash1.data(), hash1.size());
  Sha1Digest mix = sha1_parts(scramble, scramble_len, hash2.data(), hash2.size());
  Sha1Digest token{};
  for (size_t i = 0; i < token.size(); ++i) token[i] = hash1[i] ^ mix[i];
  return token;
}

Sha1Digest native_token(const std::string& password, const uint8_t* scramble, size_t scramble_len) {
  return native_token_from_hash1(sha1(password), scramble, scramble_len);
}

bool native_verify(const uint8_t* token, size_t token_len, const uint8_t* scramble,
                   size_t scramble_len, const Sha1Digest& hash2, Sha1Digest& hash1_out) {
  if (token_len != 20) return false;
  Sha1Digest mix = sha1_parts(scramble, scramble_len, hash2.data(), hash2.size());
  Sha1Digest hash1{};
  for (size_t i = 0; i < hash1.size(); ++i) hash1[i] = token[i] ^ mix[i];
  Sha1Digest check = sha1(hash1.data(), hash1.size());
  // Constant-time compare: the answer must not leak how many bytes matched.
  uint8_t diff = 0;
  for (size_t i = 0; i < check.size(); ++i) diff |= check[i] ^ hash2[i];
  if (diff != 0) return false;
  hash1_out = hash1;
  return true;
}

}  // namespace myrelay
