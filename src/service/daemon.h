// Running as a traditional Unix daemon: leaving the terminal (double fork,
// setsid), the pid file, and switching to an unprivileged account once the
// privileged work (binding the listener) is done.
#pragma once

#include <sys/types.h>

#include <string>

namespace myrelay {

// Forks twice and returns in the grandchild: a new session without a
// controlling terminal, cwd "/", umask 027, stdin on /dev/null.  Standard
// output and error stay where they were until daemon_ready(), so start-up
// errors still reach whoever started us.  The original process waits until
// the daemon calls daemon_ready() (exit 0) or daemon_failed(status), or
// exits (status 1), and exits with that status: so `myrelayd -d` returns only
// once the daemon listens and its pid file is written, as init scripts and
// systemd's Type=forking expect.  Returns false (with a message) only if a
// fork or a pipe fails, in the original process.
bool daemon_detach(std::string& error);
// Closes every descriptor above 2, which a daemon must not keep from whoever
// started it (a shell's or a supervisor's pipes would never see EOF).
void close_inherited_fds();
// The daemon is up: the waiting parent exits 0.  No-op when not detached.
void daemon_ready();
// Start-up failed: the waiting parent exits with `status`.
void daemon_failed(int status);

// The pid file: created (or taken over) and locked for the daemon's whole
// life.  The lock (flock) is what tells a live daemon from a stale file: a
// file nobody holds the lock of names a dead process (or a reused pid) and is
// replaced; one whose lock is held belongs to a running daemon and start-up is
// refused, naming its pid.
class PidFile {
 public:
  PidFile() = default;
  ~PidFile() { remove(); }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  // Takes the file and writes getpid() into it.  False + message when another
  // daemon holds it or the file cannot be written.  `stale_pid` is set to the
  // pid a replaced stale file named (0 if none).
  bool acquire(const std::string& path, std::string& error, pid_t* stale_pid = nullptr);
  // Removes the file if it is still ours, and lets go of the lock.
  void remove();
  const std::string& path() const { return path_; }
  bool held() const { return fd_ >= 0; }

  // The pid a pid file names, if a live process holds its lock; 0 otherwise.
  static pid_t running_pid(const std::string& path);

 private:
  int fd_ = -1;
  std::string path_;
};

// The account to switch to (config proxy.user / proxy.group).
struct Credentials {
  bool change = false;  // false: stay who we are
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;  // for initgroups and messages
};

// Looks the names (or numeric ids) up.  False + message "KEY: what is wrong"
// for an unknown account, or when asked to change user without being root.
bool resolve_credentials(const std::string& user, const std::string& group, Credentials& out, std::string& error);

// mkdir -p for `dir`, mode `mode` (after the umask); the directories it creates
// are given to `owner` when it changes user.  An existing directory is left
// alone.  False + message on failure.
bool make_dirs(const std::string& dir, mode_t mode, const Credentials& owner, std::string& error);

// Gives the file to `owner` (group kept) when the account changes; for files
// created while still root that the daemon must later remove or reopen.
// Missing files are fine.
bool give_file(const std::string& path, const Credentials& owner, std::string& error);

// initgroups + setgid + setuid, checked: afterwards root cannot be regained.
// In a multi-threaded process glibc applies it to every thread.
bool drop_privileges(const Credentials& to, std::string& error);

// "/a/b" for "b" started in "/a": paths in the config are relative to the
// directory myrelayd started in, which a daemon leaves for "/".
std::string absolute_path(const std::string& path);
std::string dir_name(const std::string& path);

// SIGQUIT: remove the pid file and exit at once (status 1), with no draining.
// The segment and pipes stay; the next start replaces them.
void install_quit_handler(const std::string& pid_path);

}  // namespace myrelay
