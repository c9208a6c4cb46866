// TLS contexts (see tls_context.h).
#include "protocol/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace myrelay {

std::string tls_error_string() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no further detail from OpenSSL" : out;
}

void tls_expect_name(SSL* ssl, const std::string& name) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in6_addr a6;
  in_addr a4;
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1)
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  else
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
}

bool tls_version_known(const std::string& v) { return v == "TLSv1.2" || v == "TLSv1.3"; }

std::string TlsContext::check_key_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "cannot read it: " + std::string(strerror(errno));
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (st.st_mode & (S_IROTH | S_IWOTH)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return std::string("every local user can read it (mode ") + mode + "): chmod o-rw " + path;
  }
  return "";
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<const TlsContext> TlsContext::build(const TlsSettings& s, const std::string& what,
                                                    std::string& error, TlsRole role) {
  auto failed = [&](const std::string& key, const std::string& why) {
    error = what + "." + key + ": " + why;
    return nullptr;
  };
  const bool server = role == TlsRole::Server;
  if (server && s.cert.empty()) return failed("cert", "missing (the server certificate, PEM)");
  if (server && s.key.empty()) return failed("key", "missing (the certificate's private key, PEM)");
  if (s.cert.empty() != s.key.empty()) return failed(s.cert.empty() ? "cert" : "key", "goes only with a key and a cert");
  if (!tls_version_known(s.min_version))
    return failed("min_version", "unknown TLS version '" + s.min_version + "' (expected TLSv1.2 or TLSv1.3)");
  std::string why = s.key.empty() ? "" : check_key_file(s.key);
  if (!why.empty()) return failed("key", "key file " + s.key + ": " + why);

  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) return failed("cert", "cannot make a TLS context: " + tls_error_string());
  // Owned from here: freed on every failure below.
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> hold(ctx, SSL_CTX_free);

  SSL_CTX_set_min_proto_version(ctx, s.min_version == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // No renegotiation (a client could make the proxy work for nothing), the
  // server's cipher order, and no compression.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle sessions give their read and write buffers back (10 000 idle
  // clients would otherwise hold some 34 KiB each).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

  if (!s.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, s.cert.c_str()) != 1)
      return failed("cert", "cannot load certificate file " + s.cert + ": " + tls_error_string());
    if (SSL_CTX_use_PrivateKey_file(ctx, s.key.c_str(), SSL_FILETYPE_PEM) != 1)
      return failed("key", "cannot use key file " + s.key + " with certificate file " + s.cert + ": " +
                               tls_error_string());
    if (SSL_CTX_check_private_key(ctx) != 1)
      return failed("key", "key file " + s.key + " does not match certificate file " + s.cert + ": " +
                               tls_error_string());
  }

  if (!s.ciphers.empty()) {
    // TLS_* names are TLSv1.3 suites (set apart in OpenSSL); the rest are
    // TLSv1.2 cipher names.
    std::string suites, list;
    size_t at = 0;
    while (at <= s.ciphers.size()) {
      size_t end = s.ciphers.find(':', at);
      if (end == std::string::npos) end = s.ciphers.size();
      std::string name = s.ciphers.substr(at, end - at);
      if (!name.empty()) {
        std::string& into = name.compare(0, 4, "TLS_") == 0 ? suites : list;
        into += (into.empty() ? "" : ":") + name;
      }
      at = end + 1;
    }
    if (!list.empty() && SSL_CTX_set_cipher_list(ctx, list.c_str()) != 1)
      return failed("ciphers", "no usable TLSv1.2 cipher in '" + list + "': " + tls_error_string());
    if (!suites.empty() && SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1)
      return failed("ciphers", "no usable TLSv1.3 suite in '" + suites + "': " + tls_error_string());
  }

  if (!server) {
    // A client checks the server's certificate against ca (its name is the
    // caller's to check, on each SSL object); without ca, none is checked.
    if (!s.ca.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, s.ca.c_str(), nullptr) != 1)
        return failed("ca", "cannot load CA file " + s.ca + ": " + tls_error_string());
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    hold.release();
    return std::shared_ptr<const TlsContext>(new TlsContext(ctx, s));
  }
  if (!s.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.ca.c_str(), nullptr) != 1)
      return failed("ca", "cannot load CA file " + s.ca + ": " + tls_error_string());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ca.c_str());
    if (!names) return failed("ca", "no CA certificate in " + s.ca + ": " + tls_error_string());
    SSL_CTX_set_client_CA_list(ctx, names);  // takes them
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  // Resumed sessions must belong to this server (OpenSSL refuses to resume
  // a verified session without one).
  static const unsigned char kSessionContext[] = "myrelay";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);

  hold.release();
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx, s));
}

}  // namespace myrelay
