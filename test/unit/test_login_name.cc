// Tests of parse_login_name: ODP's "user@tenant#cluster" and its short forms.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "session/login_name.h"

using namespace myrelay;

class LoginNameTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(LoginNameTest);
  CPPUNIT_TEST(testUserOnly);
  CPPUNIT_TEST(testUserTenant);
  CPPUNIT_TEST(testUserTenantCluster);
  CPPUNIT_TEST(testUserCluster);
  CPPUNIT_TEST(testOtherCharacters);
  CPPUNIT_TEST(testErrors);
  CPPUNIT_TEST_SUITE_END();

  LoginName parse(const std::string& login) {
    LoginName n;
    std::string err;
    CPPUNIT_ASSERT_MESSAGE("'" + login + "': " + err, parse_login_name(login, "dt", "dc", n, err));
    return n;
  }

  void check(const std::string& login, const std::string& user, const std::string& tenant, const std::string& cluster) {
    LoginName n = parse(login);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(login, user, n.user);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(login, tenant, n.tenant);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(login, cluster, n.cluster);
  }

  void bad(const std::string& login) {
    LoginName n;
    n.user = "untouched";
    std::string err;
    CPPUNIT_ASSERT_MESSAGE("'" + login + "' should be refused", !parse_login_name(login, "dt", "dc", n, err));
    CPPUNIT_ASSERT_MESSAGE("'" + login + "' should say why", !err.empty());
    // A failed parse leaves the output alone.
    CPPUNIT_ASSERT_EQUAL(std::string("untouched"), n.user);
  }

 public:
  void testUserOnly() {
    check("root", "root", "dt", "dc");
    check("a", "a", "dt", "dc");
  }

  void testUserTenant() { check("root@sys", "root", "sys", "dc"); }

  void testUserTenantCluster() { check("root@sys#main", "root", "sys", "main"); }

  void testUserCluster() { check("app#main", "app", "dt", "main"); }

  void testOtherCharacters() {
    // Dots, dashes and the like are ordinary characters in every part.
    check("app.user-1@t_1#c.2", "app.user-1", "t_1", "c.2");
  }

  void testErrors() {
    bad("");
    bad("@t");
    bad("u@");
    bad("u@t#");
    bad("u@@t");
    bad("u@t#c#d");
    bad("#c");
    bad("u#");
    bad("u@t@x");
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(LoginNameTest);
