// TLS contexts of the peer links (see fleet_tls.h).
#include "control/fleet_tls.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
  // The certificate must name the address dialed: an IP address in its
  // subjectAltName, or the host name.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in6_addr a6;
  in_addr a4;
  if (inet_pton(AF_INET, peer_host.c_str(), &a4) == 1 || inet_pton(AF_INET6, peer_host.c_str(), &a6) == 1)
    X509_VERIFY_PARAM_set1_ip_asc(param, peer_host.c_str());
  else
    X509_VERIFY_PARAM_set1_host(param, peer_host.c_str(), 0);
  return ssl;
}

}  // namespace myrelay::fleet
