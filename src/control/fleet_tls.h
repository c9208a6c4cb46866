// TLS for the fleet's peer links (fleet.tls: cert, key, ca, min_version,
// ciphers): every proxy is a server on its peer port and a client of the
// others, so it holds one context of each, made from the same files.  With
// `ca`, each side verifies the other's certificate against it, and a
// connecting side also checks that the certificate names the address it
// dialed (mutual TLS).  The request inside is signed as without TLS.
#pragma once

#include <memory>
#include <string>

#include "service/config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace myrelay {
namespace fleet {

class TlsPair {
 public:
  ~TlsPair();
  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;

  // Loads and checks the files (a key readable by others, a certificate that
  // does not match its key, an unreadable file: an error naming the file).
  static std::shared_ptr<const TlsPair> make(const TlsFiles& files, std::string& error);

  // A connection's TLS state, or nullptr (out of memory).  `peer_host`: the
  // address dialed, which the peer's certificate must name when ca is set.
  SSL* server_ssl() const;
  SSL* client_ssl(const std::string& peer_host) const;
  bool verifies() const { return verify_; }

 private:
  TlsPair() = default;
  SSL_CTX* server_ = nullptr;
  SSL_CTX* client_ = nullptr;
  bool verify_ = false;
};

// The newest OpenSSL error, as text ("" when there is none).
std::string tls_error();

}  // namespace fleet
}  // namespace myrelay
