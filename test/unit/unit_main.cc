// CppUnit runner for every unit test registered with CPPUNIT_TEST_SUITE_REGISTRATION.
#include <cppunit/BriefTestProgressListener.h>
#include <cppunit/CompilerOutputter.h>
#include <cppunit/TestResult.h>
#include <cppunit/TestResultCollector.h>
#include <cppunit/TestRunner.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <iostream>

int main(int argc, char** argv) {
  CppUnit::TestResult controller;
  CppUnit::TestResultCollector result;
  controller.addListener(&result);
  CppUnit::BriefTestProgressListener progress;
  controller.addListener(&progress);

  CppUnit::TestRunner runner;
  runner.addTest(CppUnit::TestFactoryRegistry::getRegistry().makeTest());
  // An optional argument runs one suite or test by name ("ProtocolTest").
  runner.run(controller, argc > 1 ? argv[1] : "");

  CppUnit::CompilerOutputter outputter(&result, std::cerr);
  outputter.write();
  int failed = result.testFailuresTotal();
  int passed = result.runTests() - failed;
  std::cout << "unit: " << passed << " passed, " << failed << " failed" << std::endl;
  return result.wasSuccessful() ? 0 : 1;
}
