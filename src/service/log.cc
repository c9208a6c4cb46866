// The logger.  One FILE* behind a mutex; each line is formatted first and
// written with a single fwrite + fflush, so lines from different threads never
// interleave and a crash loses at most the line being written.  With
// log_file "syslog" the same text (without our timestamp: syslog adds its
// own) goes to syslog(3) instead.
#include "service/log.h"

// <syslog.h> names its priorities LOG_DEBUG, LOG_INFO...; this file uses none
// of our logging macros, so drop them before it clashes.
#undef LOG_DEBUG
#undef LOG_INFO
#undef LOG_WARN
#undef LOG_ERROR

#include <fcntl.h>
#include <strings.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace myrelay {

namespace {

// Constant-initialized, so logging works even from other static initializers.
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mutex;
FILE* g_out = nullptr;  // nullptr = stderr (or syslog); guarded by g_mutex
bool g_syslog = false;  // guarded by g_mutex
bool g_redirect = false;  // fds 1 and 2 follow the log; guarded by g_mutex

const char kSyslogPath[] = "syslog";
constexpr size_t kMaxMessage = 2048;

// The path given to log_open, for log_reopen.  A function-local static, as
// std::string is not constant-initialized.
std::string& log_path() {
  static std::string path;
  return path;
}

FILE* out_stream() { return g_out ? g_out : stderr; }

// Opens `path` for appending; the descriptor is close-on-exec so children
// (none today, but scripts run by the init system) don't inherit it.  A new
// file is 0640 whatever the umask: the log names users and clients.
FILE* open_log_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return nullptr;
  FILE* f = ::fdopen(fd, "a");
  if (!f) {
    int err = errno;
    ::close(fd);
    errno = err;
  }
  return f;
}

// A message as it may be written: control characters, which a client can
// put into a login name or a statement, are escaped so no line can forge
// another, and the message is cut after kMaxMessage bytes so no one can make
// the log grow faster than a line per event.
void sanitize(const char* text, size_t len, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  out.clear();
  size_t i = 0;
  for (; i < len && out.size() < kMaxMessage; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != 0x7f) {
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (i < len) out += " ... [" + std::to_string(len - i) + " more bytes]";
}

// Points fds 1 and 2 at the log file, or at /dev/null when there is none.
// Called with g_mutex held.
bool redirect_std_streams_locked() {
  int fd = g_out ? fileno(g_out) : ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::fflush(stdout);
  bool ok = ::dup2(fd, STDOUT_FILENO) >= 0 && ::dup2(fd, STDERR_FILENO) >= 0;
  int err = errno;
  if (!g_out) ::close(fd);
  errno = err;
  return ok;
}

// Replaces the destination under the lock and closes the old one outside it.
void swap_stream(FILE* f, const std::string& path) {
  FILE* old;
  bool was_syslog;
  {
    std::lock_guard<std::mutex> lk(g_mutex);
    old = g_out;
    was_syslog = g_syslog;
    g_out = f;
    g_syslog = path == kSyslogPath;
    log_path() = path;
    if (g_redirect) redirect_std_streams_locked();
  }
  if (old) std::fclose(old);
  if (was_syslog && path != kSyslogPath) closelog();
}

// Kernel thread id: the same number SHOW PROXYSESSION prints as `tid`.
long thread_id() {
  thread_local long tid = static_cast<long>(::syscall(SYS_gettid));
  return tid;
}

}  // namespace

bool parse_log_level(const std::string& s, LogLevel& out) {
  const char* p = s.c_str();
  if (strcasecmp(p, "debug") == 0) {
    out = LogLevel::Debug;
  } else if (strcasecmp(p, "info") == 0) {
    out = LogLevel::Info;
  } else if (strcasecmp(p, "warn") == 0 || strcasecmp(p, "warning") == 0) {
    out = LogLevel::Warn;
  } else if (strcasecmp(p, "error") == 0) {
    out = LogLevel::Error;
  } else {
    return false;
  }
  return true;
}

const char* log_level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "?";
}

bool parse_syslog_facility(const std::string& name, int& facility) {
  static const struct {
    const char* name;
    int value;
  } kFacilities[] = {{"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
                     {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
                     {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}, {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}};
  for (const auto& f : kFacilities) {
    if (strcasecmp(name.c_str(), f.name) == 0) {
      facility = f.value;
      return true;
    }
  }
  return false;
}

bool log_open(const std::string& path, LogLevel level, int syslog_facility) {
  FILE* f = nullptr;
  if (path == kSyslogPath) {
    // LOG_NDELAY connects to /dev/log now, before a chroot or privilege drop
    // could make it unreachable.
    openlog("myrelayd", LOG_PID | LOG_NDELAY, syslog_facility < 0 ? LOG_DAEMON : syslog_facility);
  } else if (path != "-") {
    f = open_log_file(path);
    if (!f) return false;  // errno from fopen; the old destination stays
  }
  swap_stream(f, path);
  log_set_level(level);
  return true;
}

bool log_reopen() {
  std::string path;
  {
    std::lock_guard<std::mutex> lk(g_mutex);
    path = log_path();
  }
  // stderr and syslog: nothing to reopen.
  if (path.empty() || path == "-" || path == kSyslogPath) return true;
  FILE* f = open_log_file(path);
  if (!f) return false;
  swap_stream(f, path);
  return true;
}

bool log_redirect_std_streams() {
  std::lock_guard<std::mutex> lk(g_mutex);
  g_redirect = true;
  return redirect_std_streams_locked();
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void log_write(LogLevel level, const char* fmt, ...) {
  // Callers often log and then look at errno (or log a strerror(errno)
  // computed before); keep it intact.
  int saved_errno = errno;

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);

  char line[1024];
  size_t n = std::strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
  size_t stamp = n + 5;  // the date, time and milliseconds, which syslog adds itself
  n += std::snprintf(line + n, sizeof line - n, ".%03ld %ld [%s] ", ts.tv_nsec / 1000000L, thread_id(),
                     log_level_name(level));
  size_t prefix = n;

  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int len = std::vsnprintf(line + prefix, sizeof line - prefix, fmt, ap);
  va_end(ap);

  // Long messages (a big query in a debug line) go through the heap.
  std::string big;
  const char* text = line;
  if (len < 0) {
    len = 0;
    line[prefix] = '\0';
  }
  size_t total = prefix + static_cast<size_t>(len);
  if (total >= sizeof line) {  // vsnprintf truncated
    big.assign(line, prefix);
    big.resize(total + 1);
    std::vsnprintf(&big[prefix], static_cast<size_t>(len) + 1, fmt, ap2);
    big.resize(total);
    text = big.data();
  }
  va_end(ap2);

  // Exactly one newline per line, whether or not the message brought its own.
  while (total > prefix && (text[total - 1] == '\n' || text[total - 1] == '\r')) --total;
  std::string clean(text, prefix);
  std::string message;
  sanitize(text + prefix, total - prefix, message);
  clean += message;
  text = clean.data();
  total = clean.size();

  {
    std::lock_guard<std::mutex> lk(g_mutex);
    if (g_syslog) {
      static const int kPriority[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
      syslog(kPriority[static_cast<int>(level)], "%.*s", static_cast<int>(total - stamp), text + stamp);
      errno = saved_errno;
      return;
    }
    FILE* out = out_stream();
    std::fwrite(text, 1, total, out);
    std::fputc('\n', out);
    std::fflush(out);
  }
  errno = saved_errno;
}

bool LogRateLimit::allow(uint64_t& held_back) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  if (ts.tv_sec != window_) {
    window_ = ts.tv_sec;
    count_ = 0;
  }
  if (count_ >= per_second_) {
    ++dropped_;
    return false;
  }
  ++count_;
  held_back = dropped_;
  dropped_ = 0;
  return true;
}

}  // namespace myrelay
