// myrelayd: the proxy daemon's entry point.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "myrelay/config.h"
#include "myrelay/log.h"
#include "myrelay/proxy.h"

using namespace myrelay;

static void usage(FILE* out) {
  fprintf(out,
          "Usage: myrelayd [-c FILE] [--check]\n"
          "A MySQL/MariaDB proxy with session control.\n"
          "\n"
          "  -c, --config FILE   configuration file (default %s/myrelay.yaml)\n"
          "  -t, --check         validate the configuration and exit\n"
          "  -V, --version       print the version and exit\n"
          "  -h, --help          print this help and exit\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the configuration, SIGUSR1 reopens the log.\n",
          MYRELAY_SYSCONFDIR);
}

int main(int argc, char** argv) {
  std::string config_path = std::string(MYRELAY_SYSCONFDIR) + "/myrelay.yaml";
  bool check_only = false;
  static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                    {"check", no_argument, nullptr, 't'},
                                    {"version", no_argument, nullptr, 'V'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "c:tVh", longopts, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        config_path = optarg;
        break;
      case 't':
        check_only = true;
        break;
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

  std::shared_ptr<const Config> cfg;
  try {
    cfg = std::make_shared<const Config>(load_config_file(config_path));
  } catch (const ConfigError& e) {
    fprintf(stderr, "myrelayd: %s\n", e.what());
    return 1;
  }
  if (check_only) {
    printf("%s: configuration is valid\n", config_path.c_str());
    return 0;
  }

  if (!log_open(cfg->log_file, cfg->log_level)) {
    fprintf(stderr, "myrelayd: %s: proxy.log_file: cannot open '%s': %s\n", config_path.c_str(),
            cfg->log_file.c_str(), strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);

  Proxy proxy(cfg);
  std::string error;
  if (!proxy.start(error)) {
    LOG_ERROR("cannot start: %s", error.c_str());
    if (cfg->log_file != "-") fprintf(stderr, "myrelayd: cannot start: %s\n", error.c_str());
    return 1;
  }
  proxy.run();
  return 0;
}
