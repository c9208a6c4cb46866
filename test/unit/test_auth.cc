// mysql_native_password: scramble, verification, and recovering SHA1(pw).
#include <cppunit/extensions/HelperMacros.h>

#include <cstdio>
#include <cstdlib>
#include <set>

#include <stdlib.h>

#include <sodium.h>

#include "protocol/auth.h"
#include "protocol/auth_ed25519.h"

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
  CPPUNIT_TEST(sha2_known_vector);
  CPPUNIT_TEST(sha2_verify_recovers_hash1);
  CPPUNIT_TEST(sha2_rejects_wrong_and_malformed);
  CPPUNIT_TEST(sha2_parse_and_format);
  CPPUNIT_TEST(sha2_unmask);
  CPPUNIT_TEST(rsa_oaep_round_trip);
  CPPUNIT_TEST_SUITE_END();

 public:
  void sha2_known_vector();
  void sha2_verify_recovers_hash1();
  void sha2_rejects_wrong_and_malformed();
  void sha2_parse_and_format();
  void sha2_unmask();
  void rsa_oaep_round_trip();

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
    Sha256Digest t = sha2_token_from_hash1(sha256(std::string("secret")), reinterpret_cast<const uint8_t*>(nonce.data()), 20);
    std::string s(reinterpret_cast<const char*>(t.data()), t.size());
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
    const auto* n = reinterpret_cast<const uint8_t*>(nonce.data());
    CPPUNIT_ASSERT_MESSAGE(error, sha2_encrypt_password("secret", n, 20, std::string(pem, size_t(pem_len)), out, error));
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
    CPPUNIT_ASSERT(!sha2_encrypt_password("secret", n, 20, "not a key", out, error));
    CPPUNIT_ASSERT(error.find("not a PEM public key") != std::string::npos);
    EVP_PKEY_CTX_free(ctx);
    BIO_free(bio);
    EVP_PKEY_free(key);
  }
};

static std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// Computed independently with Python's hashlib:
//   h1 = sha256(b"secret"); h2 = sha256(h1)
//   nonce = bytes(range(0x41, 0x41 + 20))          # "ABCDEFGHIJKLMNOPQRST"
//   token = h1 XOR sha256(h2 + nonce)
static const char* kSecretSha2 = "sha2:3881219d087dd9c634373fd33dfa33a2cb6bfc6c520b64b8bb60ef2ceb534ae7";
static const char* kSecretSha2Token = "d721e183c1f036a196c1389201b8d53f38064a16f1d0923683ab886763152d75";
static const char* kSecretSha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
static const uint8_t* kNonce = reinterpret_cast<const uint8_t*>("ABCDEFGHIJKLMNOPQRST");

void AuthTest::sha2_known_vector() {
  Sha256Digest h1 = sha256("secret");
  CPPUNIT_ASSERT_EQUAL(std::string(kSecretSha256), hex(h1.data(), h1.size()));
  CPPUNIT_ASSERT_EQUAL(std::string(kSecretSha2), format_sha2_hash(sha256(h1.data(), h1.size())));
  Sha256Digest t = sha2_token("secret", kNonce, 20);
  CPPUNIT_ASSERT_EQUAL(std::string(kSecretSha2Token), hex(t.data(), t.size()));
}

void AuthTest::sha2_verify_recovers_hash1() {
  Sha256Digest hash2{}, got{};
  CPPUNIT_ASSERT(parse_sha2_hash(kSecretSha2, hash2));
  Sha256Digest t = sha2_token("secret", kNonce, 20);
  CPPUNIT_ASSERT(sha2_verify(t.data(), t.size(), kNonce, 20, hash2, got));
  CPPUNIT_ASSERT_EQUAL(std::string(kSecretSha256), hex(got.data(), got.size()));
}

void AuthTest::sha2_rejects_wrong_and_malformed() {
  Sha256Digest hash2{}, got{};
  CPPUNIT_ASSERT(parse_sha2_hash(kSecretSha2, hash2));
  Sha256Digest t = sha2_token("Secret", kNonce, 20);
  CPPUNIT_ASSERT(!sha2_verify(t.data(), t.size(), kNonce, 20, hash2, got));
  t = sha2_token("secret", kNonce, 20);
  // Another nonce, a short answer, an empty one.
  CPPUNIT_ASSERT(!sha2_verify(t.data(), t.size(), reinterpret_cast<const uint8_t*>("BBCDEFGHIJKLMNOPQRST"), 20,
                              hash2, got));
  CPPUNIT_ASSERT(!sha2_verify(t.data(), 31, kNonce, 20, hash2, got));
  CPPUNIT_ASSERT(!sha2_verify(t.data(), 0, kNonce, 20, hash2, got));
  // A native (20-byte) answer is not a caching_sha2 one.
  CPPUNIT_ASSERT(!sha2_verify(t.data(), 20, kNonce, 20, hash2, got));
}

void AuthTest::sha2_parse_and_format() {
  Sha256Digest d{};
  std::string upper = "sha2:3881219D087DD9C634373FD33DFA33A2CB6BFC6C520B64B8BB60EF2CEB534AE7";
  CPPUNIT_ASSERT(parse_sha2_hash(upper, d));
  CPPUNIT_ASSERT_EQUAL(std::string(kSecretSha2), format_sha2_hash(d));
  CPPUNIT_ASSERT(!parse_sha2_hash("sha2:3881", d));
  CPPUNIT_ASSERT(!parse_sha2_hash(std::string(kSecretSha2).substr(0, 68) + "g", d));
  CPPUNIT_ASSERT(!parse_sha2_hash(std::string("sha3:") + (kSecretSha2 + 5), d));
}

void AuthTest::sha2_unmask() {
  std::string masked = std::string("pw") + '\0';
  for (size_t i = 0; i < masked.size(); ++i) masked[i] = char(masked[i] ^ kNonce[i % 20]);
  std::string pw;
  CPPUNIT_ASSERT(sha2_unmask_password(masked, kNonce, 20, pw));
  CPPUNIT_ASSERT_EQUAL(std::string("pw"), pw);
  // Without the terminating NUL: refused.
  CPPUNIT_ASSERT(!sha2_unmask_password(masked.substr(0, 2), kNonce, 20, pw));
  CPPUNIT_ASSERT(pw.empty());
  // Longer than the nonce: the nonce repeats.
  std::string longpw(45, 'x');
  std::string m = longpw + '\0';
  for (size_t i = 0; i < m.size(); ++i) m[i] = char(m[i] ^ kNonce[i % 20]);
  CPPUNIT_ASSERT(sha2_unmask_password(m, kNonce, 20, pw));
  CPPUNIT_ASSERT_EQUAL(longpw, pw);
}

// The key made with the openssl command line, encrypted as a client does
// (OAEP, SHA-1) with the public PEM the proxy would send.
void AuthTest::rsa_oaep_round_trip() {
  char dir[] = "/tmp/myrelay-rsa-XXXXXX";
  CPPUNIT_ASSERT(mkdtemp(dir));
  std::string key = std::string(dir) + "/key.pem", pub = std::string(dir) + "/pub.pem",
              msg = std::string(dir) + "/msg", enc = std::string(dir) + "/enc";
  std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + key + " 2>/dev/null";
  CPPUNIT_ASSERT_EQUAL(0, system(cmd.c_str()));
  std::string error;
  auto k = RsaKey::load_pem_file(key, error);
  CPPUNIT_ASSERT_MESSAGE(error, k != nullptr);
  CPPUNIT_ASSERT(k->public_pem().find("-----BEGIN PUBLIC KEY-----") == 0);
  FILE* f = fopen(pub.c_str(), "w");
  fwrite(k->public_pem().data(), 1, k->public_pem().size(), f);
  fclose(f);
  f = fopen(msg.c_str(), "w");
  fputs("hello", f);
  fclose(f);
  cmd = "openssl pkeyutl -encrypt -pubin -inkey " + pub + " -pkeyopt rsa_padding_mode:oaep -in " + msg + " -out " +
        enc + " 2>/dev/null";
  CPPUNIT_ASSERT_EQUAL(0, system(cmd.c_str()));
  std::string cipher;
  f = fopen(enc.c_str(), "r");
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  cipher.assign(buf, n);
  std::string plain;
  CPPUNIT_ASSERT(k->decrypt_oaep(cipher, plain));
  CPPUNIT_ASSERT_EQUAL(std::string("hello"), plain);
  // Garbage and a flipped bit: refused, nothing crashes.
  cipher[10] = char(cipher[10] ^ 1);
  CPPUNIT_ASSERT(!k->decrypt_oaep(cipher, plain));
  CPPUNIT_ASSERT(!k->decrypt_oaep("short", plain));
  CPPUNIT_ASSERT(!k->decrypt_oaep("", plain));
  // Not a key.
  CPPUNIT_ASSERT(!RsaKey::load_pem_file(msg, error));
  CPPUNIT_ASSERT(!RsaKey::load_pem_file(std::string(dir) + "/none", error));
  cmd = std::string("rm -rf ") + dir;
  CPPUNIT_ASSERT_EQUAL(0, system(cmd.c_str()));
}

CPPUNIT_TEST_SUITE_REGISTRATION(AuthTest);
