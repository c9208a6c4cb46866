// A small thread-safe logger: timestamped lines with a level, to a file, to
// standard error or to syslog.  reopen() serves SIGUSR1 (logrotate).
#pragma once

#include <cstdint>
#include <string>

namespace myrelay {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Parses "debug", "info", "warn"/"warning", "error"; false if unknown.
bool parse_log_level(const std::string& s, LogLevel& out);
const char* log_level_name(LogLevel l);

// Parses a syslog facility name ("daemon", "user", "local0".."local7", ...)
// into its LOG_* value; false if unknown.
bool parse_syslog_facility(const std::string& name, int& facility);

// path "-" means standard error, "syslog" the system log (ident "myrelayd",
// the given facility; -1 = daemon).  Returns false (with errno set) when the
// file cannot be opened; the previous destination is kept then.
bool log_open(const std::string& path, LogLevel level, int syslog_facility = -1);
// Opens the same path again (after logrotate moved it away).
bool log_reopen();
// From now on standard output and standard error (fds 1 and 2) follow the
// log: the log file itself, so that stray output and sanitizer reports land
// there, or /dev/null when logging to stderr or syslog; again at every
// reopen.  For a daemon that has left its terminal.  False + errno on error.
bool log_redirect_std_streams();
void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);
// Messages are written with control characters escaped and cut after 2 KiB,
// so nothing a client sends can forge a line or flood the log.
void log_write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// For a message that anyone can make recur (a failed accept, a request for a
// session that is gone): lets it through at most `per_second` times a second.
// Used by one thread.
class LogRateLimit {
 public:
  explicit LogRateLimit(int per_second) : per_second_(per_second) {}
  // True: log it now; `held_back` is how many were not logged since the
  // last one that was.
  bool allow(uint64_t& held_back);

 private:
  int per_second_;
  int64_t window_ = -1;  // the second being counted
  int count_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace myrelay

#define MR_LOG(level, ...)                                         \
  do {                                                             \
    if (::myrelay::log_enabled(level)) ::myrelay::log_write(level, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(...) MR_LOG(::myrelay::LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) MR_LOG(::myrelay::LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) MR_LOG(::myrelay::LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) MR_LOG(::myrelay::LogLevel::Error, __VA_ARGS__)
