// mysql_native_password for a proxy (see auth.h).
#include "protocol/auth.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
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

static const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m ? m : EVP_sha256();
  }();
  return md;
}

template <typename Digest>
static Digest digest_parts(const EVP_MD* md, const void* a, size_t alen, const void* b, size_t blen) {
  EVP_MD_CTX* ctx = thread_md_ctx();
  Digest out{};
  unsigned int n = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx, a, alen) == 1 && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
            EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == out.size();
  if (!ok) throw std::runtime_error("digest failed");
  return out;
}

static Sha1Digest sha1_parts(const void* a, size_t alen, const void* b, size_t blen) {
  return digest_parts<Sha1Digest>(sha1_md(), a, alen, b, blen);
}

static Sha256Digest sha256_parts(const void* a, size_t alen, const void* b, size_t blen) {
  return digest_parts<Sha256Digest>(sha256_md(), a, alen, b, blen);
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
  if (!equal_secret(check.data(), hash2.data(), check.size())) return false;
  hash1_out = hash1;
  return true;
}

bool equal_secret(const uint8_t* a, const uint8_t* b, size_t len) {
  uint8_t diff = 0;
  for (size_t i = 0; i < len; ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// ---- caching_sha2_password ----

Sha256Digest sha256(const void* data, size_t len) { return sha256_parts(data, len, nullptr, 0); }

Sha256Digest sha256(const std::string& s) { return sha256(s.data(), s.size()); }

bool parse_sha2_hash(const std::string& text, Sha256Digest& out) {
  if (text.size() != 5 + 64 || text.compare(0, 5, "sha2:") != 0) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hexval(text[5 + 2 * i]), lo = hexval(text[6 + 2 * i]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string format_sha2_hash(const Sha256Digest& hash2) {
  static const char* digits = "0123456789abcdef";
  std::string s = "sha2:";
  for (uint8_t b : hash2) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

Sha256Digest sha2_token(const std::string& password, const uint8_t* nonce, size_t nonce_len) {
  return sha2_token_from_hash1(sha256(password), nonce, nonce_len);
}

Sha256Digest sha2_token_from_hash1(const Sha256Digest& h1, const uint8_t* nonce, size_t nonce_len) {
  Sha256Digest h2 = sha256(h1.data(), h1.size());
  Sha256Digest mix = sha256_parts(h2.data(), h2.size(), nonce, nonce_len);
  Sha256Digest token{};
  for (size_t i = 0; i < token.size(); ++i) token[i] = h1[i] ^ mix[i];
  return token;
}

bool sha2_verify(const uint8_t* token, size_t token_len, const uint8_t* nonce, size_t nonce_len,
                 const Sha256Digest& hash2, Sha256Digest& hash1_out) {
  if (token_len != 32) return false;
  Sha256Digest mix = sha256_parts(hash2.data(), hash2.size(), nonce, nonce_len);
  Sha256Digest hash1{};
  for (size_t i = 0; i < hash1.size(); ++i) hash1[i] = token[i] ^ mix[i];
  Sha256Digest check = sha256(hash1.data(), hash1.size());
  if (!equal_secret(check.data(), hash2.data(), check.size())) return false;
  hash1_out = hash1;
  return true;
}

bool sha2_unmask_password(const std::string& plain, const uint8_t* nonce, size_t nonce_len, std::string& password) {
  password.clear();
  if (nonce_len == 0) return false;
  for (size_t i = 0; i < plain.size(); ++i) {
    char c = static_cast<char>(static_cast<uint8_t>(plain[i]) ^ nonce[i % nonce_len]);
    if (c == '\0') return true;
    password += c;
  }
  password.clear();
  return false;
}

RsaKey::~RsaKey() { EVP_PKEY_free(key_); }

std::shared_ptr<const RsaKey> RsaKey::load_pem_file(const std::string& path, std::string& error) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) {
    error = "cannot read " + path + ": " + strerror(errno);
    return nullptr;
  }
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (!key) {
    ERR_clear_error();
    error = path + " holds no PEM private key";
    return nullptr;
  }
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    error = path + " holds a private key that is not RSA";
    return nullptr;
  }
  std::shared_ptr<RsaKey> k(new RsaKey());
  k->key_ = key;
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1) {
    BIO_free(bio);
    error = "cannot write the public key of " + path;
    return nullptr;
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  k->public_pem_.assign(data, static_cast<size_t>(len));
  BIO_free(bio);
  return k;
}

bool RsaKey::decrypt_oaep(const std::string& cipher, std::string& plain) const {
  plain.clear();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_, nullptr);
  if (!ctx) return false;
  size_t out_len = 0;
  bool ok = EVP_PKEY_decrypt_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
            EVP_PKEY_decrypt(ctx, nullptr, &out_len, reinterpret_cast<const unsigned char*>(cipher.data()),
                             cipher.size()) == 1;
  if (ok) {
    plain.resize(out_len);
    ok = EVP_PKEY_decrypt(ctx, reinterpret_cast<unsigned char*>(&plain[0]), &out_len,
                          reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size()) == 1;
    plain.resize(ok ? out_len : 0);
  }
  EVP_PKEY_CTX_free(ctx);
  // A failed decryption leaves errors on the thread's queue, where the
  // worker's next TLS call would read them as its own.
  if (!ok) ERR_clear_error();
  return ok;
}

bool sha2_encrypt_password(const std::string& password, const uint8_t* nonce, size_t nonce_len,
                           const std::string& pem_public_key, std::string& out, std::string& error) {
  std::string plain = password;
  plain.push_back('\0');
  if (nonce_len)
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = char(plain[i] ^ nonce[i % nonce_len]);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem_public_key.data(), int(pem_public_key.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(key ? EVP_PKEY_CTX_new(key.get(), nullptr) : nullptr,
                                                                  EVP_PKEY_CTX_free);
  size_t len = 0;
  bool ok = key && ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
            EVP_PKEY_encrypt(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                             plain.size()) == 1;
  if (ok) {
    out.resize(len);
    ok = EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(&out[0]), &len,
                          reinterpret_cast<const unsigned char*>(plain.data()), plain.size()) == 1;
    out.resize(ok ? len : 0);
  }
  std::fill(plain.begin(), plain.end(), '\0');
  ERR_clear_error();  // a worker's next TLS call must not find this one's errors
  if (!ok) error = key ? "cannot encrypt with the server's public key" : "the server's public key is not a PEM public key";
  return ok;
}

}  // namespace myrelay
