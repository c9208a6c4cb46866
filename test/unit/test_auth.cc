// mysql_native_password: scramble, verification, and recovering SHA1(pw).
#include <cppunit/extensions/HelperMacros.h>

#include <set>

#include <sodium.h>

#include "protocol/auth.h"
#include "protocol/auth_ed25519.h"
#include "protocol/caching_sha2_client.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

using namespace myrelay;

class AuthTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AuthTest);
  CPPUNIT_TEST(known_password_hash);
  CPPUNIT_TEST(parse_and_format_hash);
  CPPUNIT_TEST(scramble_has_no_nul_and_varies);
  CPPUNIT_TEST(verify_recovers_hash1);
  CPPUNIT_TEST(verify_rejects_wrong_password);
  CPPUNIT_TEST(recovered_hash1_answers_another_scramble);
  CPPUNIT_TEST(ed25519_key_and_signature);
  CPPUNIT_TEST(caching_sha2_fast_path_and_rsa);
  CPPUNIT_TEST_SUITE_END();

 public:
  void known_password_hash() {
    // MySQL's PASSWORD('secret').
    Sha1Digest h1 = sha1("secret");
    Sha1Digest h2 = sha1(h1.data(), h1.size());
    CPPUNIT_ASSERT_EQUAL(std::string("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"),
                         format_password_hash(h2));
  }

  void parse_and_format_hash() {
    Sha1Digest d{};
    CPPUNIT_ASSERT(parse_password_hash("*14e65567abdb5135d0cfd9a70b3032c179a49ee7", d));
    CPPUNIT_ASSERT_EQUAL(std::string("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"), format_password_hash(d));
    CPPUNIT_ASSERT(!parse_password_hash("14E65567ABDB5135D0CFD9A70B3032C179A49EE7", d));
    CPPUNIT_ASSERT(!parse_password_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EEZ", d));
    CPPUNIT_ASSERT(!parse_password_hash("*14E6", d));
  }

  // Printable, and never repeated, also across refills of the thread's pool
  // of random bytes (a few hundred scrambles, several refills).
  void scramble_has_no_nul_and_varies() {
    std::set<Scramble> seen;
    for (int i = 0; i < 300; ++i) {
      Scramble s = make_scramble();
      for (uint8_t c : s) CPPUNIT_ASSERT(c >= 33 && c < 127);
      CPPUNIT_ASSERT(seen.insert(s).second);
    }
  }

  void verify_recovers_hash1() {
    Scramble s = make_scramble();
    Sha1Digest token = native_token("secret", s.data(), s.size());
    Sha1Digest hash2{};
    parse_password_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", hash2);
    Sha1Digest hash1{};
    CPPUNIT_ASSERT(native_verify(token.data(), token.size(), s.data(), s.size(), hash2, hash1));
    CPPUNIT_ASSERT(hash1 == sha1("secret"));
  }

  void verify_rejects_wrong_password() {
    Scramble s = make_scramble();
    Sha1Digest token = native_token("wrong", s.data(), s.size());
    Sha1Digest hash2{};
    parse_password_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", hash2);
    Sha1Digest hash1{};
    CPPUNIT_ASSERT(!native_verify(token.data(), token.size(), s.data(), s.size(), hash2, hash1));
    CPPUNIT_ASSERT(!native_verify(token.data(), 19, s.data(), s.size(), hash2, hash1));
    // A token computed against another scramble fails too.
    Scramble other = make_scramble();
    Sha1Digest t2 = native_token("secret", other.data(), other.size());
    CPPUNIT_ASSERT(!native_verify(t2.data(), t2.size(), s.data(), s.size(), hash2, hash1));
  }

  void recovered_hash1_answers_another_scramble() {
    // What the proxy does: recover SHA1(pw) from the client, answer the backend.
    Scramble client_s = make_scramble(), backend_s = make_scramble();
    Sha1Digest token = native_token("s3cr3t!", client_s.data(), client_s.size());
    Sha1Digest h1 = sha1("s3cr3t!");
    Sha1Digest hash2 = sha1(h1.data(), h1.size());
    Sha1Digest recovered{};
    CPPUNIT_ASSERT(native_verify(token.data(), 20, client_s.data(), 20, hash2, recovered));
    Sha1Digest proxy_answer = native_token_from_hash1(recovered, backend_s.data(), 20);
    Sha1Digest direct_answer = native_token("s3cr3t!", backend_s.data(), 20);
    CPPUNIT_ASSERT(proxy_answer == direct_answer);
  }

  // MariaDB derives the key from the password itself: the public key of
  // 'ed-secret-1' is what MariaDB 10.11 stores for an account IDENTIFIED VIA
  // ed25519 USING PASSWORD('ed-secret-1') (t_login's backend_ed25519 checks it
  // against the server), and the signature verifies as any Ed25519 one.
  void ed25519_key_and_signature() {
    auto pk = ed25519_public_key("ed-secret-1");
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, pk.data(), pk.size(), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    CPPUNIT_ASSERT_EQUAL(std::string("l38YcgG1Zqi5tek+d+mactqeAhfYrScmxRmke3dkzhc"), std::string(b64));
    const std::string nonce(32, '\x5a');
    std::string sig = ed25519_sign("ed-secret-1", nonce);
    CPPUNIT_ASSERT_EQUAL(size_t(64), sig.size());
    auto verify = [&](const std::string& s, const std::string& m) {
      return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(s.data()),
                                         reinterpret_cast<const unsigned char*>(m.data()), m.size(), pk.data()) == 0;
    };
    CPPUNIT_ASSERT(verify(sig, nonce));
    CPPUNIT_ASSERT(!verify(sig, std::string(32, '\x5b')));
    CPPUNIT_ASSERT(!verify(ed25519_sign("ed-secret-2", nonce), nonce));
    CPPUNIT_ASSERT(sig == ed25519_sign("ed-secret-1", nonce));  // deterministic, as Ed25519 is
  }

  // The fast path's answer, against a vector computed independently:
  //   d1 = sha256(b"secret"); d3 = sha256(sha256(d1) + bytes(range(1, 21)))
  //   bytes(a ^ b for a, b in zip(d1, d3)).hex()   (Python's hashlib)
  // and the RSA step's ciphertext decrypting to password XOR nonce.
  void caching_sha2_fast_path_and_rsa() {
    std::string nonce;
    for (int i = 1; i <= 20; ++i) nonce.push_back(char(i));
    std::string s = caching_sha2_scramble(sha256_of("secret"), nonce + std::string(1, '\0'));
    static const char* hex = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) h += std::string{hex[c >> 4], hex[c & 15]};
    CPPUNIT_ASSERT_EQUAL(std::string("746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9"), h);

    EVP_PKEY* key = EVP_RSA_gen(2048);
    CPPUNIT_ASSERT(key);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* pem = nullptr;
    long pem_len = BIO_get_mem_data(bio, &pem);
    std::string out, error;
    CPPUNIT_ASSERT_MESSAGE(error, caching_sha2_rsa_encrypt("secret", nonce, std::string(pem, size_t(pem_len)), out, error));
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    EVP_PKEY_decrypt_init(ctx);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
    unsigned char plain[512];
    size_t plain_len = sizeof plain;
    CPPUNIT_ASSERT_EQUAL(1, EVP_PKEY_decrypt(ctx, plain, &plain_len, reinterpret_cast<const unsigned char*>(out.data()),
                                             out.size()));
    std::string expect = "secret";
    expect.push_back('\0');
    for (size_t i = 0; i < expect.size(); ++i) expect[i] = char(expect[i] ^ nonce[i % 20]);
    CPPUNIT_ASSERT_EQUAL(expect, std::string(reinterpret_cast<char*>(plain), plain_len));
    CPPUNIT_ASSERT(!caching_sha2_rsa_encrypt("secret", nonce, "not a key", out, error));
    CPPUNIT_ASSERT(error.find("not a PEM public key") != std::string::npos);
    EVP_PKEY_CTX_free(ctx);
    BIO_free(bio);
    EVP_PKEY_free(key);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AuthTest);
