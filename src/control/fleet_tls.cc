// TLS contexts of the peer links (see fleet_tls.h).
#include "control/fleet_tls.h"

#include <openssl/ssl.h>

namespace myrelay::fleet {

std::shared_ptr<const TlsPair> TlsPair::make(const TlsSettings& s, const std::string& what, std::string& error) {
  auto p = std::make_shared<TlsPair>();
  p->server_ = TlsContext::build(s, what, error, TlsRole::Server);
  if (p->server_) p->client_ = TlsContext::build(s, what, error, TlsRole::Client);
  if (!p->server_ || !p->client_) return nullptr;
  return p;
}

SSL* TlsPair::server_ssl() const { return SSL_new(server_->ctx()); }

SSL* TlsPair::client_ssl(const std::string& peer_host) const {
  SSL* ssl = SSL_new(client_->ctx());
  if (!ssl || !client_->verifies_peer()) return ssl;
  tls_expect_name(ssl, peer_host);  // the address dialed
  return ssl;
}

}  // namespace myrelay::fleet
