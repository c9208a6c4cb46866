// Parsing of ODP-style login names (see login_name.h).
#include "session/login_name.h"

namespace myrelay {

bool parse_login_name(const std::string& login, const std::string& default_tenant,
                      const std::string& default_cluster, LoginName& out, std::string& error) {
  size_t at = login.find('@');
  size_t hash = login.find('#');
  if (login.find('@', at == std::string::npos ? at : at + 1) != std::string::npos) {
    error = "more than one '@' in login name";
    return false;
  }
  if (hash != std::string::npos && login.find('#', hash + 1) != std::string::npos) {
    error = "more than one '#' in login name";
    return false;
  }
  if (at != std::string::npos && hash != std::string::npos && hash < at) {
    error = "'#cluster' must come after '@tenant'";
    return false;
  }
  size_t user_end = at != std::string::npos ? at : hash;
  LoginName r;
  r.user = login.substr(0, user_end);
  if (at != std::string::npos) {
    size_t tenant_end = hash == std::string::npos ? login.size() : hash;
    r.tenant = login.substr(at + 1, tenant_end - at - 1);
    if (r.tenant.empty()) {
      error = "empty tenant after '@'";
      return false;
    }
  } else {
    r.tenant = default_tenant;
  }
  if (hash != std::string::npos) {
    r.cluster = login.substr(hash + 1);
    if (r.cluster.empty()) {
      error = "empty cluster after '#'";
      return false;
    }
  } else {
    r.cluster = default_cluster;
  }
  if (r.user.empty()) {
    error = "empty user name";
    return false;
  }
  out = r;
  return true;
}

}  // namespace myrelay
