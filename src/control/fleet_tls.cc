// TLS contexts of the peer links (see fleet_tls.h).
#include "control/fleet_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstring>

namespace myrelay::fleet {

std::string tls_error() {
  unsigned long e = ERR_get_error();
  if (!e) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

namespace {

bool readable(const std::string& path, const char* what, std::string& error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = std::string(what) + " '" + path + "': " + strerror(errno);
    return false;
  }
  return true;
}

int tls_version(const std::string& name) {
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  return 0;
}

// One context; `server`: for accepting.
SSL_CTX* make_ctx(const TlsFiles& f, bool server, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) {
    error = "cannot make a TLS context: " + tls_error();
    return nullptr;
  }
  auto fail = [&](const std::string& what) {
    error = what + (what.find(": ") == std::string::npos ? ": " + tls_error() : "");
    SSL_CTX_free(ctx);
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, tls_version(f.min_version));
  if (!f.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, f.ciphers.c_str()) != 1)
    return fail("ciphers '" + f.ciphers + "' names no cipher OpenSSL knows");
  if (SSL_CTX_use_certificate_chain_file(ctx, f.cert.c_str()) != 1) return fail("cert '" + f.cert + "'");
  if (SSL_CTX_use_PrivateKey_file(ctx, f.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("key '" + f.key + "' (for cert '" + f.cert + "')");
  if (SSL_CTX_check_private_key(ctx) != 1) return fail("key '" + f.key + "' does not match cert '" + f.cert + "'");
  if (!f.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, f.ca.c_str(), nullptr) != 1) return fail("ca '" + f.ca + "'");
    SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

}  // namespace

std::shared_ptr<const TlsPair> TlsPair::make(const TlsFiles& f, std::string& error) {
  if (!tls_version(f.min_version)) {
    error = "min_version '" + f.min_version + "': expected TLSv1.2 or TLSv1.3";
    return nullptr;
  }
  if (!readable(f.cert, "cert", error) || !readable(f.key, "key", error) ||
      (!f.ca.empty() && !readable(f.ca, "ca", error)))
    return nullptr;
  struct stat st;
  if (stat(f.key.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
    error = "key '" + f.key + "' is readable by others; chmod o-rwx it";
    return nullptr;
  }
  ERR_clear_error();
  std::shared_ptr<TlsPair> p(new TlsPair);
  p->verify_ = !f.ca.empty();
  if (!(p->server_ = make_ctx(f, true, error)) || !(p->client_ = make_ctx(f, false, error))) return nullptr;
  return p;
}

TlsPair::~TlsPair() {
  if (server_) SSL_CTX_free(server_);
  if (client_) SSL_CTX_free(client_);
}

SSL* TlsPair::server_ssl() const { return SSL_new(server_); }

SSL* TlsPair::client_ssl(const std::string& peer_host) const {
  SSL* ssl = SSL_new(client_);
  if (!ssl || !verify_) return ssl;
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
