// Fuzzes the configuration loader with any text as the YAML file.  The
// daemon and myrelayctl both read the file; an operator's typo, or a file
// someone else may write, must end in a ConfigError that names the problem,
// never in a crash or another exception.  Any exception but ConfigError that
// escapes load_config_string() is a finding (the harness aborts with its type
// and message).  A file that loads must hold what the loader promises.
//
// Input: the YAML text.
#include <cxxabi.h>

#include <exception>
#include <string>
#include <typeinfo>

#include "fuzz_common.h"
#include "service/config.h"
#include "myrelay/shm_layout.h"

using namespace myrelay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  const std::string text(reinterpret_cast<const char*>(data), size);
  Config c;
  try {
    c = load_config_string(text, "fuzz.yaml");
  } catch (const ConfigError& e) {
    FUZZ_CHECK(std::string(e.what()).rfind("fuzz.yaml", 0) == 0);  // names the file
    return 0;
  } catch (const std::exception& e) {
    int status = 0;
    char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    fprintf(stderr, "load_config_string threw %s (not ConfigError): %s\n", name ? name : typeid(e).name(), e.what());
    free(name);
    abort();
  } catch (...) {
    fprintf(stderr, "load_config_string threw something that is not a std::exception\n");
    abort();
  }
  // What a loaded configuration promises.
  FUZZ_CHECK(!c.clusters.empty());
  size_t servers = 0;
  for (const Cluster& cl : c.clusters) {
    FUZZ_CHECK(!cl.servers.empty());
    FUZZ_CHECK(c.find_cluster(cl.name) != nullptr);
    servers += cl.servers.size();
    for (const BackendServer& s : cl.servers) {
      (void)s.address.str();
      (void)server_role_name(s.role);
    }
  }
  FUZZ_CHECK(servers <= shm::kMaxServers);
  FUZZ_CHECK(c.proxy_id >= 0 && c.proxy_id <= 127);
  FUZZ_CHECK(c.workers >= 0 && c.workers <= kMaxWorkers);
  FUZZ_CHECK(c.max_connections > 0);
  FUZZ_CHECK(c.find_tenant(c.default_tenant) != nullptr);
  FUZZ_CHECK(c.find_cluster(c.default_cluster) != nullptr);
  for (const Tenant& t : c.tenants) {
    FUZZ_CHECK(c.find_tenant(t.name) != nullptr);
    for (const UserEntry& u : t.users) {
      FUZZ_CHECK(c.find_user(t, u.name) != nullptr);
      for (const Cluster& cl : c.clusters) (void)Config::splits(cl, &t, &u);
    }
  }
  (void)c.listen.str();
  log_config_warnings(c);
  return 0;
}
