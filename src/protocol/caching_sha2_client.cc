// caching_sha2_password towards backends (see caching_sha2_client.h).
#include "protocol/caching_sha2_client.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>

#include "protocol/tls_context.h"

namespace myrelay {

namespace {
constexpr size_t kNonceLen = 20;
}

Sha256Digest sha256_of(std::string_view data) {
  Sha256Digest d{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

std::string caching_sha2_scramble(const Sha256Digest& sha256_pw, std::string_view nonce) {
  Sha256Digest stage2 = sha256_of(std::string_view(reinterpret_cast<const char*>(sha256_pw.data()), sha256_pw.size()));
  std::string buf(reinterpret_cast<const char*>(stage2.data()), stage2.size());
  buf.append(nonce.substr(0, kNonceLen));
  Sha256Digest stage3 = sha256_of(buf);
  std::string out(32, '\0');
  for (size_t i = 0; i < 32; ++i) out[i] = char(sha256_pw[i] ^ stage3[i]);
  return out;
}

bool caching_sha2_rsa_encrypt(const std::string& password, std::string_view nonce, std::string_view pem_public_key,
                              std::string& out, std::string& error) {
  std::string plain = password;
  plain.push_back('\0');
  std::string_view n = nonce.substr(0, kNonceLen);
  if (!n.empty())
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = char(plain[i] ^ n[i % n.size()]);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem_public_key.data(), int(pem_public_key.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) {
    error = "the server's public key is not a PEM public key: " + tls_error_string();
    return false;
  }
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(key.get(), nullptr),
                                                                  EVP_PKEY_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                       plain.size()) != 1) {
    error = "cannot encrypt with the server's public key: " + tls_error_string();
    return false;
  }
  out.resize(len);
  if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(&out[0]), &len,
                       reinterpret_cast<const unsigned char*>(plain.data()), plain.size()) != 1) {
    error = "cannot encrypt with the server's public key: " + tls_error_string();
    return false;
  }
  out.resize(len);
  std::fill(plain.begin(), plain.end(), '\0');
  return true;
}

}  // namespace myrelay
