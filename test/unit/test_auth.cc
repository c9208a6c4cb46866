// mysql_native_password: scramble, verification, and recovering SHA1(pw).
#include <cppunit/extensions/HelperMacros.h>

#include <set>

#include "protocol/auth.h"

using namespace myrelay;

class AuthTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AuthTest);
  CPPUNIT_TEST(known_password_hash);
  CPPUNIT_TEST(parse_and_format_hash);
  CPPUNIT_TEST(scramble_has_no_nul_and_varies);
  CPPUNIT_TEST(verify_recovers_hash1);
  CPPUNIT_TEST(verify_rejects_wrong_password);
  CPPUNIT_TEST(recovered_hash1_answers_another_scramble);
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(AuthTest);
