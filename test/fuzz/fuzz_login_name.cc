// Fuzzes the login name parser: the user name a client sends in its
// handshake response or COM_CHANGE_USER ("user", "user@tenant",
// "user@tenant#cluster", "user#cluster"), which picks the tenant and the
// cluster before any password is checked.  Besides crashes: a name that
// parses has non-empty parts without separators in them, and the same parts
// written out in full parse to themselves.
//
// Input: the login name; after a NUL, the default tenant, after another
// NUL, the default cluster (else "app" and "main").
#include <string>

#include "fuzz_common.h"
#include "session/login_name.h"

using namespace myrelay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz::view(data, size);
  std::string login(in.substr(0, in.find('\0')));
  std::string tenant = "app", cluster = "main";
  if (login.size() < in.size()) {
    std::string_view rest = in.substr(login.size() + 1);
    size_t z = rest.find('\0');
    tenant = std::string(rest.substr(0, z));
    if (z != std::string_view::npos) cluster = std::string(rest.substr(z + 1));
  }
  LoginName out;
  std::string error;
  if (!parse_login_name(login, tenant, cluster, out, error)) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(!out.user.empty());
  FUZZ_CHECK(out.user.find_first_of("@#") == std::string::npos);
  bool explicit_tenant = login.find('@') != std::string::npos;
  bool explicit_cluster = login.find('#') != std::string::npos;
  if (explicit_tenant) FUZZ_CHECK(!out.tenant.empty() && out.tenant.find_first_of("@#") == std::string::npos);
  else FUZZ_CHECK(out.tenant == tenant);
  if (explicit_cluster) FUZZ_CHECK(!out.cluster.empty() && out.cluster.find_first_of("@#") == std::string::npos);
  else FUZZ_CHECK(out.cluster == cluster);
  // Written out in full, the same parts.
  if (!out.tenant.empty() && !out.cluster.empty() && out.tenant.find_first_of("@#") == std::string::npos &&
      out.cluster.find_first_of("@#") == std::string::npos) {
    LoginName again;
    FUZZ_CHECK(parse_login_name(out.user + "@" + out.tenant + "#" + out.cluster, "x", "y", again, error));
    FUZZ_CHECK(again.user == out.user && again.tenant == out.tenant && again.cluster == out.cluster);
  }
  return 0;
}
