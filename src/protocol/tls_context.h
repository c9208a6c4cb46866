// A TLS context (OpenSSL): what `proxy.tls` configures towards clients, and
// what `fleet.tls` (the same keys) configures for peers, both ends.
//
// A TlsContext is built whole from TlsSettings and never changes: a reload
// builds a new one, and only once it is complete does it replace the old one
// (TlsContextHolder).  Connections already using the old one keep it (every
// SSL object holds a reference on its SSL_CTX).  Everything here runs where
// waiting on files is harmless (start, SIGHUP on the main thread); a worker
// only takes the current context and makes an SSL object from it.
#pragma once

#include <memory>
#include <mutex>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace myrelay {

struct TlsSettings {
  std::string cert;         // PEM: the certificate, then any intermediate ones
  std::string key;          // PEM private key; must not be readable by others
  std::string ca;           // PEM CA bundle: "" = no client certificates asked
  std::string min_version = "TLSv1.2";  // TLSv1.2 | TLSv1.3
  std::string ciphers;      // OpenSSL names, ':'-separated; TLS_* ones are TLSv1.3 suites; "" = OpenSSL's defaults

  bool enabled() const { return !cert.empty(); }
  bool operator==(const TlsSettings& o) const {
    return cert == o.cert && key == o.key && ca == o.ca && min_version == o.min_version && ciphers == o.ciphers;
  }
  bool operator!=(const TlsSettings& o) const { return !(*this == o); }
};

// Whether `v` names a TLS version min_version accepts (TLSv1.2, TLSv1.3).
bool tls_version_known(const std::string& v);

// Which end of the TLS sessions a context makes.
enum class TlsRole {
  Server,  // cert and key required; ca: client certificates asked for and checked
  Client,  // cert and key: presented when the server asks; ca: the server's certificate checked
};

class TlsContext {
 public:
  // Builds a context; nullptr with `error` naming the file (or the setting)
  // and what is wrong.  `what` prefixes messages ("proxy.tls").
  static std::shared_ptr<const TlsContext> build(const TlsSettings& s, const std::string& what, std::string& error,
                                                 TlsRole role = TlsRole::Server);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  const TlsSettings& settings() const { return settings_; }
  bool verifies_clients() const { return !settings_.ca.empty(); }
  bool verifies_peer() const { return !settings_.ca.empty(); }

  // A key file's permissions: "" when only its owner (and group) may read
  // it, else why not.  Exposed for tests and for --check.
  static std::string check_key_file(const std::string& path);

 private:
  TlsContext(SSL_CTX* ctx, const TlsSettings& s) : ctx_(ctx), settings_(s) {}
  SSL_CTX* ctx_;
  TlsSettings settings_;
};

// The context now in force, shared by every worker: set on the main thread,
// taken by workers when a client asks for TLS.
class TlsContextHolder {
 public:
  std::shared_ptr<const TlsContext> get() const {
    std::lock_guard<std::mutex> g(mu_);
    return ctx_;
  }
  void set(std::shared_ptr<const TlsContext> c) {
    std::lock_guard<std::mutex> g(mu_);
    ctx_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> ctx_;
};

// The last OpenSSL errors of this thread as one line (and the queue cleared).
std::string tls_error_string();

// Makes a client-side SSL accept only a certificate that names `name`: an
// IP address (in subjectAltName) or a host name.
void tls_expect_name(SSL* ssl, const std::string& name);

}  // namespace myrelay
