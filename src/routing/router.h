// Choosing the backend server a new server session goes to.  Today every
// session of a cluster uses its primary; read/write split and server health
// will decide here.
#pragma once

#include "service/config.h"

namespace myrelay::routing {

// The cluster's first primary, else its first server; null for a cluster
// without servers (the configuration does not allow one).
const BackendServer* primary_server(const Cluster& cluster);

}  // namespace myrelay::routing
