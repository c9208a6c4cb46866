// Daemonizing, the pid file and the privilege drop (see daemon.h).
#include "service/daemon.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace myrelay {

namespace {

// Write end of the pipe the original process waits on; -1 when not detached
// or once the outcome was reported.
int g_ready_fd = -1;

void report(unsigned char status) {
  if (g_ready_fd < 0) return;
  ssize_t n;
  do {
    n = ::write(g_ready_fd, &status, 1);
  } while (n < 0 && errno == EINTR);
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

std::string errno_text(int err) { return std::strerror(err); }

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The pid written in an open pid file, 0 if none.
pid_t read_pid(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  long v = std::strtol(buf, nullptr, 10);
  return v > 0 && v <= INT_MAX ? static_cast<pid_t>(v) : 0;
}

bool same_file(int fd, const std::string& path) {
  struct stat a, b;
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// For the SIGQUIT handler, which may only use async-signal-safe calls.
char g_quit_pid_path[PATH_MAX];
dev_t g_quit_pid_dev;
ino_t g_quit_pid_ino;

void on_quit(int) {
  struct stat st;
  if (g_quit_pid_path[0] && ::stat(g_quit_pid_path, &st) == 0 && st.st_dev == g_quit_pid_dev &&
      st.st_ino == g_quit_pid_ino)
    ::unlink(g_quit_pid_path);
  static const char msg[] = "myrelayd: SIGQUIT: exiting at once\n";
  ssize_t n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)n;
  ::_exit(1);
}

}  // namespace

bool daemon_detach(std::string& error) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) {
    error = "pipe: " + errno_text(errno);
    return false;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    error = "fork: " + errno_text(errno);
    ::close(p[0]);
    ::close(p[1]);
    return false;
  }
  if (pid > 0) {
    // The original process: wait for the daemon's verdict.
    ::close(p[1]);
    unsigned char status = 1;
    ssize_t n;
    do {
      n = ::read(p[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      std::fprintf(stderr, "myrelayd: the daemon exited during start-up (see its log)\n");
      status = 1;
    }
    ::waitpid(pid, nullptr, 0);  // the intermediate child
    ::_exit(status);
  }

  ::close(p[0]);
  g_ready_fd = p[1];
  // A new session: no controlling terminal, not in the shell's job control.
  if (::setsid() < 0) {
    std::fprintf(stderr, "myrelayd: setsid: %s\n", std::strerror(errno));
    report(1);
    ::_exit(1);
  }
  // The session leader leaves, so the daemon can never reacquire a
  // controlling terminal by opening one.
  pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "myrelayd: fork: %s\n", std::strerror(errno));
    report(1);
    ::_exit(1);
  }
  if (pid > 0) ::_exit(0);

  // Don't keep a mounted file system busy; paths were made absolute before.
  if (::chdir("/") < 0) {
    std::fprintf(stderr, "myrelayd: chdir /: %s\n", std::strerror(errno));
    report(1);
    ::_exit(1);
  }
  ::umask(027);
  int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    if (null != STDIN_FILENO) ::close(null);
  }
  return true;
}

void close_inherited_fds() {
  if (::close_range(3, ~0U, 0) == 0) return;
  // Kernels before 5.9: whatever /proc lists (the directory's own descriptor
  // among them, closed by closedir; EBADF on it is harmless).
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) {
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    return;
  }
  int own = ::dirfd(d);
  std::vector<int> fds;
  while (dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd > 2 && fd != own) fds.push_back(fd);
  }
  ::closedir(d);
  for (int fd : fds) ::close(fd);
}

void daemon_ready() { report(0); }

void daemon_failed(int status) { report(static_cast<unsigned char>(status == 0 ? 1 : status)); }

bool PidFile::acquire(const std::string& path, std::string& error, pid_t* stale_pid) {
  if (stale_pid) *stale_pid = 0;
  remove();
  // A few rounds: the file we opened may be unlinked by its exiting owner
  // between our open and our lock.
  for (int attempt = 0; attempt < 10; ++attempt) {
    // O_NOFOLLOW: the pid file directory may be shared; never write through
    // a symbolic link planted there.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      error = "cannot open the pid file " + path + ": " + errno_text(errno);
      return false;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      pid_t other = read_pid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        error = "another myrelayd is running (pid " + std::to_string(other) + ", pid file " + path + ")";
      } else {
        error = "cannot lock the pid file " + path + ": " + errno_text(err);
      }
      return false;
    }
    if (!same_file(fd, path)) {
      ::close(fd);
      continue;
    }
    pid_t old = read_pid(fd);
    if (stale_pid && old != getpid()) *stale_pid = old;
    std::string text = std::to_string(getpid()) + "\n";
    if (::ftruncate(fd, 0) < 0 ||
        ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      error = "cannot write the pid file " + path + ": " + errno_text(errno);
      ::close(fd);
      return false;
    }
    ::fchmod(fd, 0644);  // readable by status tools whatever the umask
    fd_ = fd;
    path_ = path;
    return true;
  }
  error = "cannot take the pid file " + path + ": it keeps being replaced";
  return false;
}

void PidFile::remove() {
  if (fd_ < 0) return;
  // Unlink while still holding the lock, and only our own file: a daemon
  // that replaced a stale file of ours must keep its own.
  if (same_file(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

pid_t PidFile::running_pid(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  pid_t pid = 0;
  if (::flock(fd, LOCK_SH | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) pid = read_pid(fd);
  }
  ::close(fd);  // also drops a shared lock we got
  return pid;
}

bool resolve_credentials(const std::string& user, const std::string& group, Credentials& out, std::string& error) {
  out = Credentials{};
  if (user.empty() && group.empty()) return true;

  std::vector<char> buf(16384);
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  std::string name;
  if (!user.empty()) {
    struct passwd pw, *res = nullptr;
    int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &res);
    if (!res && all_digits(user)) rc = ::getpwuid_r(static_cast<uid_t>(std::strtoul(user.c_str(), nullptr, 10)), &pw,
                                                    buf.data(), buf.size(), &res);
    if (!res && all_digits(user)) {
      uid = static_cast<uid_t>(std::strtoul(user.c_str(), nullptr, 10));  // an id without a passwd entry
      if (group.empty()) {
        error = "proxy.user: user id " + user + " has no passwd entry, so proxy.group must be set too";
        return false;
      }
    } else if (!res) {
      error = "proxy.user: no such user '" + user + "'" + (rc ? " (" + errno_text(rc) + ")" : "");
      return false;
    } else {
      uid = pw.pw_uid;
      gid = pw.pw_gid;
      name = pw.pw_name;
    }
  } else {
    struct passwd pw, *res = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) == 0 && res) name = pw.pw_name;
  }
  if (!group.empty()) {
    struct group gr, *res = nullptr;
    int rc = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &res);
    if (!res && all_digits(group)) {
      gid = static_cast<gid_t>(std::strtoul(group.c_str(), nullptr, 10));
    } else if (!res) {
      error = "proxy.group: no such group '" + group + "'" + (rc ? " (" + errno_text(rc) + ")" : "");
      return false;
    } else {
      gid = gr.gr_gid;
    }
  }

  if (::geteuid() != 0) {
    if (uid == ::geteuid() && gid == ::getegid()) return true;  // already that account
    error = std::string(user.empty() ? "proxy.group" : "proxy.user") +
            ": switching to another account needs root; myrelayd runs as uid " + std::to_string(::geteuid());
    return false;
  }
  out.change = true;
  out.uid = uid;
  out.gid = gid;
  out.user = name;
  return true;
}

bool make_dirs(const std::string& dir, mode_t mode, const Credentials& owner, std::string& error) {
  if (dir.empty()) return true;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty() || part == "/") continue;
    struct stat st;
    if (::stat(part.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        error = part + " exists and is not a directory";
        return false;
      }
      continue;
    }
    if (errno != ENOENT || (::mkdir(part.c_str(), mode) < 0 && errno != EEXIST)) {
      error = "cannot create the directory " + part + ": " + errno_text(errno);
      return false;
    }
    ::chmod(part.c_str(), mode);  // whatever the umask
    if (owner.change && ::chown(part.c_str(), owner.uid, owner.gid) < 0) {
      error = "cannot give the directory " + part + " to uid " + std::to_string(owner.uid) + ": " + errno_text(errno);
      return false;
    }
  }
  return true;
}

bool give_file(const std::string& path, const Credentials& owner, std::string& error) {
  if (!owner.change) return true;
  if (::lchown(path.c_str(), owner.uid, static_cast<gid_t>(-1)) < 0 && errno != ENOENT) {
    error = "cannot give " + path + " to uid " + std::to_string(owner.uid) + ": " + errno_text(errno);
    return false;
  }
  return true;
}

bool drop_privileges(const Credentials& to, std::string& error) {
  if (!to.change) return true;
  int rc = to.user.empty() ? ::setgroups(1, &to.gid) : ::initgroups(to.user.c_str(), to.gid);
  if (rc < 0) {
    error = "cannot set the supplementary groups: " + errno_text(errno);
    return false;
  }
  if (::setgid(to.gid) < 0) {
    error = "setgid(" + std::to_string(to.gid) + "): " + errno_text(errno);
    return false;
  }
  if (::setuid(to.uid) < 0) {
    error = "setuid(" + std::to_string(to.uid) + "): " + errno_text(errno);
    return false;
  }
  if (to.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    error = "root privileges could be regained after setuid";
    return false;
  }
  return true;
}

std::string absolute_path(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return path;
  std::string base = cwd;
  std::string rel = path;
  while (rel.compare(0, 2, "./") == 0) rel.erase(0, 2);
  return base == "/" ? "/" + rel : base + "/" + rel;
}

std::string dir_name(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void install_quit_handler(const std::string& pid_path) {
  g_quit_pid_path[0] = '\0';
  struct stat st;
  if (!pid_path.empty() && pid_path.size() < sizeof g_quit_pid_path && ::stat(pid_path.c_str(), &st) == 0) {
    g_quit_pid_dev = st.st_dev;
    g_quit_pid_ino = st.st_ino;
    std::memcpy(g_quit_pid_path, pid_path.c_str(), pid_path.size() + 1);
  }
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_quit;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGQUIT, &sa, nullptr);
}

}  // namespace myrelay
