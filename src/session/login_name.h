// The login name a client sends: "user", "user@tenant", "user@tenant#cluster"
// (ODP's form) or "user#cluster".  Missing parts take the configured defaults.
#pragma once

#include <string>

namespace myrelay {

struct LoginName {
  std::string user;
  std::string tenant;
  std::string cluster;
};

// Returns false and sets `error` for names that cannot be parsed (empty user,
// empty tenant after '@', empty cluster after '#', repeated separators).
bool parse_login_name(const std::string& login, const std::string& default_tenant,
                      const std::string& default_cluster, LoginName& out, std::string& error);

}  // namespace myrelay
