// myrelayd: the proxy daemon's entry point.  The start-up order matters:
//   config -> directories -> log -> (detach) -> pid file -> bind + start
//   -> hand our files to proxy.user -> drop privileges -> ready -> run
// so that errors up to "ready" still reach the terminal or init script that
// started us, a second daemon is refused before it touches the listener, and
// only binding and file creation happen as root.
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "service/config.h"
#include "service/daemon.h"
#include "service/log.h"
#include "service/proxy.h"
#include "control/shm_table.h"

using namespace myrelay;

static void usage(FILE* out) {
  fprintf(out,
          "Usage: myrelayd [-c FILE] [-d | -F] [-p PIDFILE] [--check]\n"
          "       myrelayd --hash-password\n"
          "A MySQL/MariaDB proxy with session control.\n"
          "\n"
          "  -c, --config FILE    configuration file (default %s/myrelay.yaml)\n"
          "  -d, --daemon         run in the background (as proxy.daemonize: true)\n"
          "  -F, --foreground     stay in the foreground (as proxy.daemonize: false)\n"
          "  -p, --pid-file FILE  pid file (overrides proxy.pid_file)\n"
          "  -t, --check          validate the configuration and exit\n"
          "      --hash-password  read a password (one line) from standard input and print\n"
          "                       every form a user's password key takes, then exit\n"
          "  -V, --version        print the version and exit\n"
          "  -h, --help           print this help and exit\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop after draining, SIGQUIT stops at once, SIGHUP reloads\n"
          "the configuration, SIGUSR1 reopens the log.  See myrelayd(8).\n",
          MYRELAY_SYSCONFDIR);
}

// Gives the segment and the control pipes (their paths as the segment's
// header records them for myrelayctl) to the account we are about to become,
// so that it can remove them at exit.
static bool give_runtime_files(Proxy& proxy, const Credentials& creds, std::string& error) {
  if (!creds.change) return true;
  ShmTable& shm = proxy.shm();
  if (!give_file("/dev/shm/" + shm.name(), creds, error)) return false;
  for (uint32_t i = 0; i < shm.worker_count(); ++i) {
    const char* pipe = shm.worker(i)->control_pipe;
    std::string path(pipe, strnlen(pipe, sizeof shm.worker(i)->control_pipe));
    if (!path.empty() && !give_file(path, creds, error)) return false;
  }
  return true;
}

// True if `uid` (with primary group `gid`) may create files in `dir`.
static bool writable_by(const std::string& dir, const Credentials& c) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return false;
  if (st.st_uid == c.uid) return st.st_mode & S_IWUSR;
  if (st.st_gid == c.gid) return st.st_mode & S_IWGRP;
  return st.st_mode & S_IWOTH;
}

// myrelayd --hash-password: one line from standard input (not echoed on a
// terminal), printed in every stored form, labelled by the method it serves.
static int hash_password() {
  const bool tty = isatty(STDIN_FILENO);
  termios saved{};
  if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    fputs("Password: ", stderr);
    fflush(stderr);
  }
  std::string line;
  int c;
  while ((c = getchar()) != EOF && c != '\n') line += static_cast<char>(c);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);
  }
  if (line.empty()) {
    fprintf(stderr, "myrelayd: --hash-password: no password on standard input\n");
    return 1;
  }
  Sha1Digest h1 = sha1(line);
  Sha256Digest s1 = sha256(line);
  std::fill(line.begin(), line.end(), '\0');
  printf("mysql_native_password: %s\n", format_password_hash(sha1(h1.data(), h1.size())).c_str());
  printf("caching_sha2_password: %s\n", format_sha2_hash(sha256(s1.data(), s1.size())).c_str());
  return fflush(stdout) == 0 ? 0 : 1;
}

// What the command line says.
struct Args {
  std::string config_path = std::string(MYRELAY_SYSCONFDIR) + "/myrelay.yaml";
  std::string pid_override;
  bool check_only = false;
  int daemon_override = -1;  // -1: as configured
};

// -1 to go on, else the exit status.
static int parse_args(int argc, char** argv, Args& a) {
  static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                    {"daemon", no_argument, nullptr, 'd'},
                                    {"foreground", no_argument, nullptr, 'F'},
                                    {"pid-file", required_argument, nullptr, 'p'},
                                    {"check", no_argument, nullptr, 't'},
                                    {"hash-password", no_argument, nullptr, 'H'},
                                    {"version", no_argument, nullptr, 'V'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "c:dFp:tVh", longopts, nullptr)) != -1) {
    switch (opt) {
      case 'c': a.config_path = optarg; break;
      case 'd': a.daemon_override = 1; break;
      case 'F': a.daemon_override = 0; break;
      case 'p': a.pid_override = optarg; break;
      case 't': a.check_only = true; break;
      case 'H': return hash_password();
      case 'V':
        printf("myrelayd %s\n", MYRELAY_VERSION);
        return 0;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "myrelayd: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  // Absolute, so that SIGHUP finds the file again after the daemon's chdir.
  a.config_path = absolute_path(a.config_path);
  return -1;
}

// Loads the configuration and applies the command line to it; false after
// printing why.
static bool load(const Args& a, Config& loaded) {
  try {
    loaded = load_config_file(a.config_path);
  } catch (const ConfigError& e) {
    fprintf(stderr, "myrelayd: %s\n", e.what());
    return false;
  }
  if (!a.pid_override.empty()) loaded.pid_file = a.pid_override;
  if (a.daemon_override >= 0) loaded.daemonize = a.daemon_override == 1;
  // The daemon leaves its start directory: relative paths keep meaning what
  // they meant there.
  loaded.pid_file = absolute_path(loaded.pid_file);
  loaded.run_dir = absolute_path(loaded.run_dir);
  if (loaded.log_file != "-" && loaded.log_file != "syslog") loaded.log_file = absolute_path(loaded.log_file);
  // Backend names are resolved here, once, and again at every reload: a
  // worker never waits for DNS.  One that does not resolve is only warned of:
  // its logins fail until a reload finds it.
  resolve_backends(loaded);
  return true;
}

// The directories and the log, made (and given to proxy.user) while still
// root; false after printing why.
static bool prepare_files(const std::string& config_path, const Config& cfg, const Credentials& creds) {
  std::string error;
  const bool log_is_file = cfg.log_file != "-" && cfg.log_file != "syslog";
  // Missing directories are created (and given to proxy.user); /run is
  // emptied at every boot.
  if (!make_dirs(cfg.run_dir, 0755, creds, error) || !make_dirs(dir_name(cfg.pid_file), 0755, creds, error) ||
      (log_is_file && !make_dirs(dir_name(cfg.log_file), 0750, creds, error))) {
    fprintf(stderr, "myrelayd: %s\n", error.c_str());
    return false;
  }
  int facility = -1;
  parse_syslog_facility(cfg.syslog_facility, facility);  // validated by the loader
  struct stat log_st;
  bool log_existed = log_is_file && stat(cfg.log_file.c_str(), &log_st) == 0;
  if (!log_open(cfg.log_file, cfg.log_level, facility)) {
    fprintf(stderr, "myrelayd: %s: proxy.log_file: cannot open '%s': %s\n", config_path.c_str(),
            cfg.log_file.c_str(), strerror(errno));
    return false;
  }
  // The log stays reopenable (SIGUSR1) after the switch: a file we created,
  // or one root left, goes to proxy.user; someone else's is left alone.
  if (log_is_file && (!log_existed || (S_ISREG(log_st.st_mode) && log_st.st_uid == 0)) &&
      !give_file(cfg.log_file, creds, error)) {
    fprintf(stderr, "myrelayd: %s\n", error.c_str());
    return false;
  }
  if (creds.change) {
    for (const std::string& dir : {cfg.run_dir, dir_name(cfg.pid_file)})
      if (!writable_by(dir, creds))
        LOG_WARN("%s is not writable by uid %u: files there cannot be removed at exit", dir.c_str(),
                 unsigned(creds.uid));
    if (log_is_file && !writable_by(dir_name(cfg.log_file), creds))
      LOG_WARN("%s is not writable by uid %u: the log cannot be recreated after rotation",
               dir_name(cfg.log_file).c_str(), unsigned(creds.uid));
  }
  return true;
}

// A configuration with passwords in it that every local user can read.
static void warn_if_world_readable(const Config& cfg) {
  struct stat st;
  if (stat(cfg.file.c_str(), &st) != 0 || !(st.st_mode & S_IROTH)) return;
  for (const Tenant& t : cfg.tenants)
    for (const UserEntry& u : t.users)
      if (u.has_password) {
        LOG_WARN("%s holds passwords and every local user can read it (mode %04o): chmod o-r %s", cfg.file.c_str(),
                 unsigned(st.st_mode & 07777), cfg.file.c_str());
        return;
      }
}

// From the pid file to the end of the proxy's run; the exit status.
static int run(std::shared_ptr<const Config> cfg, const Credentials& creds) {
  // Errors from here on go to the log and, while someone waits for us, to
  // standard error too.
  auto fail = [&](const std::string& what) {
    LOG_ERROR("cannot start: %s", what.c_str());
    if (cfg->log_file != "-") fprintf(stderr, "myrelayd: cannot start: %s\n", what.c_str());
    daemon_failed(1);
    return 1;
  };
  std::string error;
  PidFile pid_file;
  pid_t stale = 0;
  if (!pid_file.acquire(cfg->pid_file, error, &stale)) return fail(error);
  if (stale > 0) LOG_INFO("took over the stale pid file %s (pid %d named in it is not a running myrelayd)",
                           cfg->pid_file.c_str(), int(stale));
  signal(SIGPIPE, SIG_IGN);
  // A reload or log rotation that arrives while we are still starting must
  // not kill us (their default action); the proxy handles them once running.
  signal(SIGHUP, SIG_IGN);
  signal(SIGUSR1, SIG_IGN);
  install_quit_handler(cfg->pid_file);
  warn_if_world_readable(*cfg);
  {
    Proxy proxy(cfg);
    if (!proxy.start(error)) return fail(error);
    if (creds.change) {
      if (!give_runtime_files(proxy, creds, error) || !drop_privileges(creds, error))
        return fail("cannot switch to user " + (creds.user.empty() ? std::to_string(creds.uid) : creds.user) + ": " +
                    error);
      LOG_INFO("running as uid %u gid %u", unsigned(creds.uid), unsigned(creds.gid));
    }
    if (cfg->daemonize) {
      LOG_INFO("running in the background, pid %d", int(getpid()));
      if (!log_redirect_std_streams()) LOG_WARN("cannot redirect standard output and error: %s", strerror(errno));
    }
    daemon_ready();
    proxy.run();
  }
  // Last, so that a pid file gone means the daemon is gone.
  pid_file.remove();
  return 0;
}

int main(int argc, char** argv) {
  Args args;
  int rc = parse_args(argc, argv, args);
  if (rc >= 0) return rc;
  Config loaded;
  if (!load(args, loaded)) return 1;
  Credentials creds;
  std::string error;
  if (!resolve_credentials(loaded.user, loaded.group, creds, error)) {
    fprintf(stderr, "myrelayd: %s: %s\n", args.config_path.c_str(), error.c_str());
    return 1;
  }
  if (args.check_only) {
    if (loaded.tls.enabled() && !TlsContext::build(loaded.tls, "proxy.tls", error)) {
      fprintf(stderr, "myrelayd: %s: %s\n", args.config_path.c_str(), error.c_str());
      return 1;
    }
    printf("%s: configuration is valid\n", args.config_path.c_str());
    return 0;
  }
  auto cfg = std::make_shared<const Config>(std::move(loaded));
  if (cfg->daemonize) close_inherited_fds();
  if (!prepare_files(args.config_path, *cfg, creds)) return 1;
  if (cfg->daemonize) {
    if (cfg->log_file == "-")
      fprintf(stderr,
              "myrelayd: warning: proxy.log_file is \"-\" (standard error) but the daemon leaves the terminal: "
              "its messages are discarded; log to a file or to syslog\n");
    if (!daemon_detach(error)) {
      fprintf(stderr, "myrelayd: cannot run in the background: %s\n", error.c_str());
      return 1;
    }
  }
  return run(cfg, creds);
}
