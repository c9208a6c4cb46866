// Tests of the pid file (lock, refuse if live, replace if stale, remove only
// our own), the directory helper and the account lookup of daemon.cc.
#include <cppunit/extensions/HelperMacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "service/daemon.h"

using namespace myrelay;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

class DaemonTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(DaemonTest);
  CPPUNIT_TEST(testPidFileLifecycle);
  CPPUNIT_TEST(testPidFileRefusesLiveOwner);
  CPPUNIT_TEST(testPidFileReplacesStale);
  CPPUNIT_TEST(testPidFileOfDeadProcess);
  CPPUNIT_TEST(testRemoveKeepsSomeoneElsesFile);
  CPPUNIT_TEST(testPidFileErrors);
  CPPUNIT_TEST(testPaths);
  CPPUNIT_TEST(testMakeDirs);
  CPPUNIT_TEST(testCredentials);
  CPPUNIT_TEST_SUITE_END();

  std::string dir_;

 public:
  void setUp() override {
    char tmpl[] = "/tmp/myrelay-unit-daemon.XXXXXX";
    CPPUNIT_ASSERT(::mkdtemp(tmpl));
    dir_ = tmpl;
  }

  void tearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    CPPUNIT_ASSERT_EQUAL(0, std::system(cmd.c_str()));
  }

  void testPidFileLifecycle() {
    std::string path = dir_ + "/d.pid", err;
    {
      PidFile pf;
      pid_t stale = -1;
      CPPUNIT_ASSERT_MESSAGE(err, pf.acquire(path, err, &stale));
      CPPUNIT_ASSERT_EQUAL(pid_t(0), stale);
      CPPUNIT_ASSERT(pf.held());
      CPPUNIT_ASSERT_EQUAL(std::to_string(getpid()) + "\n", read_all(path));
      CPPUNIT_ASSERT_EQUAL(getpid(), PidFile::running_pid(path));
      struct stat st;
      CPPUNIT_ASSERT_EQUAL(0, ::stat(path.c_str(), &st));
      CPPUNIT_ASSERT_EQUAL(mode_t(0644), mode_t(st.st_mode & 07777));
    }  // the destructor removes it
    CPPUNIT_ASSERT(!exists(path));
    CPPUNIT_ASSERT_EQUAL(pid_t(0), PidFile::running_pid(path));
  }

  void testPidFileRefusesLiveOwner() {
    std::string path = dir_ + "/d.pid", err;
    PidFile a, b;
    CPPUNIT_ASSERT(a.acquire(path, err));
    // flock locks belong to the open file, so even this process conflicts.
    CPPUNIT_ASSERT(!b.acquire(path, err));
    CPPUNIT_ASSERT_MESSAGE(err, err.find("another myrelayd is running (pid " + std::to_string(getpid())) == 0);
    CPPUNIT_ASSERT(!b.held());
    // The refused one did not touch the file.
    CPPUNIT_ASSERT_EQUAL(std::to_string(getpid()) + "\n", read_all(path));
    a.remove();
    CPPUNIT_ASSERT(b.acquire(path, err));
  }

  void testPidFileReplacesStale() {
    std::string path = dir_ + "/d.pid", err;
    write_all(path, "999999999\nleftover text that is longer than a pid\n");
    CPPUNIT_ASSERT_EQUAL(pid_t(0), PidFile::running_pid(path));  // nobody holds it
    PidFile pf;
    pid_t stale = 0;
    CPPUNIT_ASSERT_MESSAGE(err, pf.acquire(path, err, &stale));
    CPPUNIT_ASSERT_EQUAL(pid_t(999999999), stale);
    CPPUNIT_ASSERT_EQUAL(std::to_string(getpid()) + "\n", read_all(path));
  }

  // A daemon killed with SIGKILL leaves its file, but the lock dies with it.
  void testPidFileOfDeadProcess() {
    std::string path = dir_ + "/d.pid", err;
    pid_t child = ::fork();
    CPPUNIT_ASSERT(child >= 0);
    if (child == 0) {
      PidFile pf;
      std::string e;
      if (!pf.acquire(path, e)) ::_exit(1);
      ::_exit(0);  // no destructor: the file stays, as after SIGKILL
    }
    int status = 0;
    CPPUNIT_ASSERT_EQUAL(child, ::waitpid(child, &status, 0));
    CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CPPUNIT_ASSERT_EQUAL(std::to_string(child) + "\n", read_all(path));
    PidFile pf;
    pid_t stale = 0;
    CPPUNIT_ASSERT_MESSAGE(err, pf.acquire(path, err, &stale));
    CPPUNIT_ASSERT_EQUAL(child, stale);
  }

  // If the file was replaced behind our back, remove() must leave it.
  void testRemoveKeepsSomeoneElsesFile() {
    std::string path = dir_ + "/d.pid", err;
    PidFile pf;
    CPPUNIT_ASSERT(pf.acquire(path, err));
    CPPUNIT_ASSERT_EQUAL(0, ::unlink(path.c_str()));
    write_all(path, "12345\n");
    pf.remove();
    CPPUNIT_ASSERT_EQUAL(std::string("12345\n"), read_all(path));
  }

  void testPidFileErrors() {
    std::string err;
    PidFile pf;
    CPPUNIT_ASSERT(!pf.acquire(dir_ + "/missing/d.pid", err));
    CPPUNIT_ASSERT_MESSAGE(err, err.find("cannot open the pid file " + dir_ + "/missing/d.pid: ") == 0);
    // Never through a symbolic link.
    std::string link = dir_ + "/link.pid";
    CPPUNIT_ASSERT_EQUAL(0, ::symlink((dir_ + "/target").c_str(), link.c_str()));
    CPPUNIT_ASSERT(!pf.acquire(link, err));
    CPPUNIT_ASSERT(!exists(dir_ + "/target"));
  }

  void testPaths() {
    CPPUNIT_ASSERT_EQUAL(std::string("/a/b"), dir_name("/a/b/c.pid"));
    CPPUNIT_ASSERT_EQUAL(std::string("/"), dir_name("/c.pid"));
    CPPUNIT_ASSERT_EQUAL(std::string("."), dir_name("c.pid"));
    CPPUNIT_ASSERT_EQUAL(std::string("/x/y"), absolute_path("/x/y"));
    char cwd[4096];
    CPPUNIT_ASSERT(::getcwd(cwd, sizeof cwd));
    std::string base = std::string(cwd) == "/" ? "" : cwd;
    CPPUNIT_ASSERT_EQUAL(base + "/run/x.pid", absolute_path("run/x.pid"));
    CPPUNIT_ASSERT_EQUAL(base + "/x.pid", absolute_path("./x.pid"));
  }

  void testMakeDirs() {
    std::string err;
    Credentials none;
    std::string d = dir_ + "/a/b/c";
    CPPUNIT_ASSERT_MESSAGE(err, make_dirs(d, 0750, none, err));
    struct stat st;
    CPPUNIT_ASSERT_EQUAL(0, ::stat(d.c_str(), &st));
    CPPUNIT_ASSERT(S_ISDIR(st.st_mode));
    CPPUNIT_ASSERT_EQUAL(mode_t(0750), mode_t(st.st_mode & 07777));
    CPPUNIT_ASSERT(make_dirs(d, 0750, none, err));  // existing: fine
    write_all(dir_ + "/file", "x");
    CPPUNIT_ASSERT(!make_dirs(dir_ + "/file/sub", 0755, none, err));
    CPPUNIT_ASSERT_MESSAGE(err, err.find("is not a directory") != std::string::npos);
  }

  void testCredentials() {
    Credentials c;
    std::string err;
    CPPUNIT_ASSERT(resolve_credentials("", "", c, err));
    CPPUNIT_ASSERT(!c.change);
    CPPUNIT_ASSERT(!resolve_credentials("no-such-user-myrelay", "", c, err));
    CPPUNIT_ASSERT_MESSAGE(err, err.find("proxy.user: no such user 'no-such-user-myrelay'") == 0);
    CPPUNIT_ASSERT(!resolve_credentials("", "no-such-group-myrelay", c, err));
    CPPUNIT_ASSERT_MESSAGE(err, err.find("proxy.group: no such group 'no-such-group-myrelay'") == 0);
    if (::geteuid() == 0) {
      CPPUNIT_ASSERT_MESSAGE(err, resolve_credentials("nobody", "", c, err));
      CPPUNIT_ASSERT(c.change);
      CPPUNIT_ASSERT_EQUAL(std::string("nobody"), c.user);
      CPPUNIT_ASSERT(c.uid != 0);
    } else {
      // Not root: only "switching" to ourselves is possible.
      CPPUNIT_ASSERT_MESSAGE(err, resolve_credentials(std::to_string(::geteuid()), std::to_string(::getegid()), c, err));
      CPPUNIT_ASSERT(!c.change);
      CPPUNIT_ASSERT(!resolve_credentials("root", "", c, err));
      CPPUNIT_ASSERT_MESSAGE(err, err.find("needs root") != std::string::npos);
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DaemonTest);
