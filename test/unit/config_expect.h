// What the configuration tests share: loading YAML text as file t.yaml, and
// checking that a text is refused with the right message.
#pragma once

#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "service/config.h"

namespace myrelay::test {

inline Config load(const std::string& yaml, const std::string& file = "t.yaml") {
  return load_config_string(yaml, file);
}

// Loads `yaml`, which must fail with a message that starts with `prefix`
// (normally "t.yaml: KEY: ") and contains `part`.
inline void expect_error(const std::string& yaml, const std::string& prefix, const std::string& part = "") {
  try {
    load(yaml);
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    CPPUNIT_ASSERT_MESSAGE("message '" + msg + "' should start with '" + prefix + "'",
                           msg.compare(0, prefix.size(), prefix) == 0);
    CPPUNIT_ASSERT_MESSAGE("message '" + msg + "' should contain '" + part + "'", msg.find(part) != std::string::npos);
    return;
  }
  CPPUNIT_FAIL("no error for:\n" + yaml);
}

}  // namespace myrelay::test
