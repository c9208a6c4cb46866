// The proxy's SQL recogniser.
#include <cppunit/extensions/HelperMacros.h>

#include "control/sql_recognizer.h"

using namespace myrelay;

class SqlRecognizerTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SqlRecognizerTest);
  CPPUNIT_TEST(use_forms);
  CPPUNIT_TEST(not_use);
  CPPUNIT_TEST(comments_are_space);
  CPPUNIT_TEST_SUITE_END();

 public:
  void use_forms() {
    std::string db;
    CPPUNIT_ASSERT(sql::parse_use("USE test", db));
    CPPUNIT_ASSERT_EQUAL(std::string("test"), db);
    CPPUNIT_ASSERT(sql::parse_use("  use   `my db` ;  ", db));
    CPPUNIT_ASSERT_EQUAL(std::string("my db"), db);
    CPPUNIT_ASSERT(sql::parse_use("use `a``b`", db));
    CPPUNIT_ASSERT_EQUAL(std::string("a`b"), db);
    CPPUNIT_ASSERT(sql::parse_use("/* hi */ Use d1; -- trailing\n", db));
    CPPUNIT_ASSERT_EQUAL(std::string("d1"), db);
  }

  void not_use() {
    std::string db = "unchanged";
    CPPUNIT_ASSERT(!sql::parse_use("user_table", db));
    CPPUNIT_ASSERT(!sql::parse_use("USER", db));
    CPPUNIT_ASSERT(!sql::parse_use("USE", db));
    CPPUNIT_ASSERT(!sql::parse_use("USE a b", db));
    CPPUNIT_ASSERT(!sql::parse_use("USE a; SELECT 1", db));
    CPPUNIT_ASSERT(!sql::parse_use("USE `unterminated", db));
    CPPUNIT_ASSERT(!sql::parse_use("SELECT 1", db));
    CPPUNIT_ASSERT_EQUAL(std::string("unchanged"), db);
  }

  void comments_are_space() {
    CPPUNIT_ASSERT_EQUAL(size_t(7), sql::skip_space("/*x*/  a", 0));
    CPPUNIT_ASSERT_EQUAL(size_t(4), sql::skip_space("#c\n a", 0));
    CPPUNIT_ASSERT_EQUAL(size_t(0), sql::skip_space("--x", 0));  // "--" needs a space after it
    CPPUNIT_ASSERT_EQUAL(size_t(15), sql::skip_space("/* unterminated", 0));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SqlRecognizerTest);
