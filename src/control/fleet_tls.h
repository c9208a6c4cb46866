// TLS for the fleet's peer links (fleet.tls: the keys of proxy.tls): every
// proxy is a server on its peer port and a client of the others, so it holds
// one context of each, made from the same settings.  With `ca`, each side
// verifies the other's certificate against it, and a connecting side also
// checks that the certificate names the address it dialed (mutual TLS).  The
// request inside is signed as without TLS.
#pragma once

#include <memory>
#include <string>

#include "protocol/tls_context.h"

typedef struct ssl_st SSL;

namespace myrelay::fleet {

class TlsPair {
 public:
  // Both contexts, or nullptr and `error` naming the file and what is wrong
  // (messages start with `what`, "fleet.tls").
  static std::shared_ptr<const TlsPair> make(const TlsSettings& s, const std::string& what, std::string& error);

  // A connection's TLS state, or nullptr (out of memory).  `peer_host`: the
  // address dialed, which the peer's certificate must name when ca is set.
  SSL* server_ssl() const;
  SSL* client_ssl(const std::string& peer_host) const;

 private:
  std::shared_ptr<const TlsContext> server_, client_;
};

}  // namespace myrelay::fleet
