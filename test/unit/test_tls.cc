// Tests of TLS towards clients: proxy.tls and require_tls in the
// configuration, and the checks TlsContext::build makes (key file
// permissions, a pair that does not match, unusable settings).  The
// certificates are made here with libcrypto, in a temporary directory.
#include <cppunit/extensions/HelperMacros.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/connection.h"
#include "protocol/tls_context.h"
#include "config_expect.h"
#include "service/config.h"

using namespace myrelay;
using myrelay::test::expect_error;
using myrelay::test::load;

namespace {

const std::string kRest =
    "clusters:\n"
    "  - name: main\n"
    "    servers:\n"
    "      - { address: 127.0.0.1:3306 }\n"
    "tenants:\n"
    "  - name: app\n"
    "    users:\n"
    "      - { name: app }\n";


// A key and a certificate for it, signed by `issuer_key` (itself when null).
struct Pair {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Pair() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

void make_pair(Pair& p, const char* cn, const Pair* issuer) {
  p.key = EVP_EC_gen("P-256");
  CPPUNIT_ASSERT(p.key);
  p.cert = X509_new();
  X509_set_version(p.cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(p.cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(p.cert), 3600);
  X509_set_pubkey(p.cert, p.key);
  X509_NAME* name = X509_get_subject_name(p.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(p.cert, issuer ? X509_get_subject_name(issuer->cert) : name);
  CPPUNIT_ASSERT(X509_sign(p.cert, issuer ? issuer->key : p.key, EVP_sha256()) > 0);
}

void write_key(const Pair& p, const std::string& path, mode_t mode) {
  FILE* f = fopen(path.c_str(), "w");
  CPPUNIT_ASSERT(f);
  CPPUNIT_ASSERT(PEM_write_PrivateKey(f, p.key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  fclose(f);
  chmod(path.c_str(), mode);
}

void write_cert(const Pair& p, const std::string& path) {
  FILE* f = fopen(path.c_str(), "w");
  CPPUNIT_ASSERT(f);
  CPPUNIT_ASSERT(PEM_write_X509(f, p.cert) == 1);
  fclose(f);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// What a server Connection reported.
struct Seen {
  std::string data;
  short events = 0;
  bool keep_input = false;  // leave input in the buffer (back-pressure)
};

void on_read(Connection* c, void* arg) {
  auto* s = static_cast<Seen*>(arg);
  if (s->keep_input) return;
  evbuffer* in = c->input();
  size_t n = evbuffer_get_length(in);
  std::string chunk(n, '\0');
  evbuffer_remove(in, &chunk[0], n);
  s->data += chunk;
}
void on_event(Connection*, short what, int, void* arg) { static_cast<Seen*>(arg)->events |= what; }

void pump(event_base* base, int turns = 4) {
  for (int i = 0; i < turns; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
}

}  // namespace

class TlsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(TlsTest);
  CPPUNIT_TEST(config_tls_keys);
  CPPUNIT_TEST(config_tls_paths_relative_to_the_file);
  CPPUNIT_TEST(config_tls_errors);
  CPPUNIT_TEST(config_require_tls);
  CPPUNIT_TEST(config_require_tls_needs_tls);
  CPPUNIT_TEST(context_good_pair);
  CPPUNIT_TEST(context_client_certificates);
  CPPUNIT_TEST(context_world_readable_key_refused);
  CPPUNIT_TEST(context_mismatched_pair_refused);
  CPPUNIT_TEST(context_missing_files_and_bad_settings);
  CPPUNIT_TEST(connection_handshake_with_hello_already_read);
  CPPUNIT_TEST(connection_big_transfers_and_back_pressure);
  CPPUNIT_TEST(connection_garbage_handshake_fails_cleanly);
  CPPUNIT_TEST(connection_eof_in_handshake);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    char tmpl[] = "/tmp/myrelay-tls-unit.XXXXXX";
    CPPUNIT_ASSERT(mkdtemp(tmpl));
    dir_ = tmpl;
    make_pair(ca_, "test CA", nullptr);
    make_pair(server_, "localhost", &ca_);
    make_pair(other_, "other", nullptr);
    write_cert(ca_, dir_ + "/ca.pem");
    write_cert(server_, dir_ + "/server.pem");
    write_key(server_, dir_ + "/server.key", 0600);
    write_key(other_, dir_ + "/other.key", 0600);
  }
  void tearDown() override {
    for (const char* f : {"ca.pem", "server.pem", "server.key", "other.key", "open.key", "junk.pem"})
      unlink((dir_ + "/" + f).c_str());
    rmdir(dir_.c_str());
  }

  void config_tls_keys() {
    Config c = load(
        "proxy:\n"
        "  tls: { cert: /a/server.pem, key: /a/server.key, ca: /a/ca.pem, min_version: TLSv1.3,"
        " ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256' }\n" +
        kRest);
    CPPUNIT_ASSERT(c.tls.enabled());
    CPPUNIT_ASSERT_EQUAL(std::string("/a/server.pem"), c.tls.cert);
    CPPUNIT_ASSERT_EQUAL(std::string("/a/server.key"), c.tls.key);
    CPPUNIT_ASSERT_EQUAL(std::string("/a/ca.pem"), c.tls.ca);
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.3"), c.tls.min_version);
    CPPUNIT_ASSERT_EQUAL(std::string("ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256"), c.tls.ciphers);
    // Defaults: off; min_version TLSv1.2; no client certificates.
    Config d = load(kRest);
    CPPUNIT_ASSERT(!d.tls.enabled());
    Config e = load("proxy:\n  tls: { cert: /s.pem, key: /s.key }\n" + kRest);
    CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.2"), e.tls.min_version);
    CPPUNIT_ASSERT(e.tls.ca.empty());
    // "tls:" with nothing under it: off.
    CPPUNIT_ASSERT(!load("proxy:\n  tls:\n" + kRest).tls.enabled());
  }

  void config_tls_paths_relative_to_the_file() {
    Config c = load("proxy:\n  tls: { cert: server.pem, key: keys/server.key, ca: /abs/ca.pem }\n" + kRest,
                    "/etc/myrelay/myrelay.yaml");
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/myrelay/server.pem"), c.tls.cert);
    CPPUNIT_ASSERT_EQUAL(std::string("/etc/myrelay/keys/server.key"), c.tls.key);
    CPPUNIT_ASSERT_EQUAL(std::string("/abs/ca.pem"), c.tls.ca);
  }

  void config_tls_errors() {
    expect_error("proxy:\n  tls: { key: /s.key }\n" + kRest, "t.yaml: proxy.tls: ", "missing key 'cert'");
    expect_error("proxy:\n  tls: { cert: /s.pem }\n" + kRest, "t.yaml: proxy.tls: ", "missing key 'key'");
    expect_error("proxy:\n  tls: { cert: '', key: /s.key }\n" + kRest, "t.yaml: proxy.tls.cert: ", "empty");
    expect_error("proxy:\n  tls: { cert: /s.pem, key: /s.key, min_version: TLSv1.1 }\n" + kRest,
                 "t.yaml: proxy.tls.min_version: ", "TLSv1.1");
    expect_error("proxy:\n  tls: { cert: /s.pem, key: /s.key, cet: x }\n" + kRest, "t.yaml: proxy.tls.cet: ",
                 "did you mean 'cert'");
    expect_error("proxy:\n  tls: /s.pem\n" + kRest, "t.yaml: proxy.tls: ", "expected a mapping");
  }

  void config_require_tls() {
    Config c = load(
        "proxy:\n  tls: { cert: /s.pem, key: /s.key }\n"
        "clusters:\n  - name: main\n    servers:\n      - { address: 127.0.0.1:3306 }\n"
        "tenants:\n"
        "  - name: app\n"
        "    require_tls: true\n"
        "    users:\n"
        "      - { name: a }\n"
        "      - { name: b, require_tls: false }\n"
        "  - name: other\n"
        "    users:\n"
        "      - { name: c, require_tls: true }\n"
        "      - { name: d }\n");
    const Tenant& app = c.tenants[0];
    const Tenant& other = c.tenants[1];
    CPPUNIT_ASSERT(Config::requires_tls(app, app.users[0]));
    CPPUNIT_ASSERT(!Config::requires_tls(app, app.users[1]));  // the user's own choice wins
    CPPUNIT_ASSERT(Config::requires_tls(other, other.users[0]));
    CPPUNIT_ASSERT(!Config::requires_tls(other, other.users[1]));
    expect_error(
        "proxy:\n  tls: { cert: /s.pem, key: /s.key }\n"
        "clusters:\n  - name: main\n    servers:\n      - { address: 127.0.0.1:3306 }\n"
        "tenants:\n  - name: app\n    users:\n      - { name: a, require_tls: maybe }\n",
        "t.yaml: tenants[0].users[0].require_tls: ", "true or false");
  }

  void config_require_tls_needs_tls() {
    std::string clusters = "clusters:\n  - name: main\n    servers:\n      - { address: 127.0.0.1:3306 }\n";
    expect_error(clusters + "tenants:\n  - name: app\n    require_tls: true\n    users:\n      - { name: a }\n",
                 "t.yaml: tenants[0].require_tls: ", "set proxy.tls");
    expect_error(clusters + "tenants:\n  - name: app\n    users:\n      - { name: a }\n      - { name: b, require_tls: true }\n",
                 "t.yaml: tenants[0].users[1].require_tls: ", "set proxy.tls");
    // require_tls: false needs nothing.
    load(clusters + "tenants:\n  - name: app\n    users:\n      - { name: a, require_tls: false }\n");
  }

  TlsSettings settings() const {
    TlsSettings s;
    s.cert = dir_ + "/server.pem";
    s.key = dir_ + "/server.key";
    return s;
  }

  void context_good_pair() {
    std::string error;
    auto ctx = TlsContext::build(settings(), "proxy.tls", error);
    CPPUNIT_ASSERT_MESSAGE(error, ctx != nullptr);
    CPPUNIT_ASSERT(ctx->ctx());
    CPPUNIT_ASSERT(!ctx->verifies_clients());
    CPPUNIT_ASSERT_EQUAL(long(TLS1_2_VERSION), long(SSL_CTX_get_min_proto_version(ctx->ctx())));
    CPPUNIT_ASSERT_EQUAL(SSL_VERIFY_NONE, SSL_CTX_get_verify_mode(ctx->ctx()));
    TlsSettings s = settings();
    s.min_version = "TLSv1.3";
    s.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384";
    ctx = TlsContext::build(s, "proxy.tls", error);
    CPPUNIT_ASSERT_MESSAGE(error, ctx != nullptr);
    CPPUNIT_ASSERT_EQUAL(long(TLS1_3_VERSION), long(SSL_CTX_get_min_proto_version(ctx->ctx())));
    // The holder hands out what was set last.
    TlsContextHolder holder;
    CPPUNIT_ASSERT(!holder.get());
    holder.set(ctx);
    CPPUNIT_ASSERT(holder.get() == ctx);
  }

  void context_client_certificates() {
    TlsSettings s = settings();
    s.ca = dir_ + "/ca.pem";
    std::string error;
    auto ctx = TlsContext::build(s, "proxy.tls", error);
    CPPUNIT_ASSERT_MESSAGE(error, ctx != nullptr);
    CPPUNIT_ASSERT(ctx->verifies_clients());
    CPPUNIT_ASSERT_EQUAL(SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, SSL_CTX_get_verify_mode(ctx->ctx()));
    // A CA file with no certificate in it.
    FILE* f = fopen((dir_ + "/junk.pem").c_str(), "w");
    fputs("not a certificate\n", f);
    fclose(f);
    s.ca = dir_ + "/junk.pem";
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.ca: ") && contains(error, dir_ + "/junk.pem"));
  }

  void context_world_readable_key_refused() {
    write_key(server_, dir_ + "/open.key", 0644);
    TlsSettings s = settings();
    s.key = dir_ + "/open.key";
    std::string error;
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.key: ") && contains(error, dir_ + "/open.key") &&
                                      contains(error, "0644"));
    CPPUNIT_ASSERT(!TlsContext::check_key_file(dir_ + "/open.key").empty());
    // Group-readable is the owner's choice (an ssl-cert group, say).
    chmod((dir_ + "/open.key").c_str(), 0640);
    CPPUNIT_ASSERT_EQUAL(std::string(), TlsContext::check_key_file(dir_ + "/open.key"));
    CPPUNIT_ASSERT_MESSAGE(error, TlsContext::build(s, "proxy.tls", error) != nullptr);
  }

  void context_mismatched_pair_refused() {
    TlsSettings s = settings();
    s.key = dir_ + "/other.key";
    std::string error;
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.key: ") && contains(error, dir_ + "/other.key") &&
                                      contains(error, dir_ + "/server.pem"));
  }

  void context_missing_files_and_bad_settings() {
    std::string error;
    TlsSettings s = settings();
    s.cert = dir_ + "/nosuch.pem";
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.cert: ") && contains(error, dir_ + "/nosuch.pem"));
    s = settings();
    s.key = dir_ + "/nosuch.key";
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.key: ") && contains(error, dir_ + "/nosuch.key"));
    s = settings();
    s.ciphers = "NO-SUCH-CIPHER";
    CPPUNIT_ASSERT(!TlsContext::build(s, "fleet.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "fleet.tls.ciphers: "));
    s = settings();
    s.min_version = "SSLv3";
    CPPUNIT_ASSERT(!TlsContext::build(s, "proxy.tls", error));
    CPPUNIT_ASSERT_MESSAGE(error, contains(error, "proxy.tls.min_version: "));
  }

  // A Connection on one end of a socket pair, a client SSL on the other.
  struct Link {
    event_base* base = event_base_new();
    int fds[2] = {-1, -1};
    Connection* conn = nullptr;
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    SSL* client = nullptr;
    Seen seen;
    std::shared_ptr<const TlsContext> server;
    explicit Link(const TlsSettings& s) {
      CPPUNIT_ASSERT_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds));
      std::string error;
      server = TlsContext::build(s, "proxy.tls", error);
      CPPUNIT_ASSERT_MESSAGE(error, server != nullptr);
      conn = new Connection(base, fds[0]);
      conn->set_callbacks(on_read, nullptr, on_event, &seen);
      conn->enable_read();
      client = SSL_new(cctx);
      SSL_set_fd(client, fds[1]);
      SSL_set_connect_state(client);
    }
    ~Link() {
      delete conn;
      SSL_free(client);
      SSL_CTX_free(cctx);
      close(fds[1]);
      event_base_free(base);
    }
    // Drives both ends until the client's handshake is done.
    bool handshake() {
      for (int i = 0; i < 200; ++i) {
        int rc = SSL_do_handshake(client);
        pump(base);
        if (rc == 1 && (seen.events & Connection::kTlsReady)) return true;
        if (rc != 1 && SSL_get_error(client, rc) != SSL_ERROR_WANT_READ) return false;
      }
      return false;
    }
  };

  void connection_handshake_with_hello_already_read() {
    Link l(settings());
    // The client's hello reaches the connection's input before TLS starts,
    // as it does when it follows an SSLRequest at once.
    l.seen.keep_input = true;
    CPPUNIT_ASSERT(SSL_do_handshake(l.client) != 1);
    pump(l.base);
    CPPUNIT_ASSERT(evbuffer_get_length(l.conn->input()) > 0);
    l.seen.keep_input = false;
    CPPUNIT_ASSERT(l.conn->start_tls(l.server->ctx()));
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(l.conn->input()));
    CPPUNIT_ASSERT(l.conn->tls() && l.conn->tls_handshaking());
    CPPUNIT_ASSERT(l.handshake());
    CPPUNIT_ASSERT(!l.conn->tls_handshaking());
    CPPUNIT_ASSERT(contains(l.conn->tls_version(), "TLSv1."));
    CPPUNIT_ASSERT(std::string(l.conn->tls_cipher()).size() > 0);
    // Both ways, plaintext.
    l.seen.data.clear();
    CPPUNIT_ASSERT_EQUAL(5, SSL_write(l.client, "hello", 5));
    pump(l.base);
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), l.seen.data);
    iovec iov{const_cast<char*>("world"), 5};
    l.conn->send(&iov, 1);
    CPPUNIT_ASSERT_EQUAL(size_t(0), l.conn->pending_output());
    char buf[16];
    CPPUNIT_ASSERT_EQUAL(5, SSL_read(l.client, buf, sizeof buf));
    CPPUNIT_ASSERT_EQUAL(std::string("world"), std::string(buf, 5));
    // The client's close_notify ends the connection as an end of file.
    SSL_shutdown(l.client);
    pump(l.base);
    CPPUNIT_ASSERT(l.seen.events & Connection::kEof);
    CPPUNIT_ASSERT(l.conn->tls_error().empty());
  }

  void connection_big_transfers_and_back_pressure() {
    Link l(settings());
    CPPUNIT_ASSERT(l.conn->start_tls(l.server->ctx()));
    CPPUNIT_ASSERT(l.handshake());
    // Client to proxy: 3 MiB while the owner leaves input unread past the
    // high-water mark; reading stops there and goes on once drained.
    const size_t kHigh = 256 * 1024, kBig = 3 * 1024 * 1024;
    l.conn->set_read_high_water(kHigh);
    l.seen.keep_input = true;
    std::string up(kBig, '\0');
    for (size_t i = 0; i < up.size(); ++i) up[i] = char('a' + i % 23);
    size_t sent = 0, got = 0;
    std::string received;
    for (int i = 0; i < 100000 && got < kBig; ++i) {
      if (sent < kBig) {
        size_t n = 0;
        if (SSL_write_ex(l.client, up.data() + sent, std::min<size_t>(kBig - sent, 100000), &n) == 1) sent += n;
      }
      pump(l.base, 1);
      size_t have = evbuffer_get_length(l.conn->input());
      CPPUNIT_ASSERT(have <= kHigh + 17 * 1024);
      if (i % 3 == 0 && have > 0) {  // the owner catches up now and then
        std::string chunk(have, '\0');
        evbuffer_remove(l.conn->input(), &chunk[0], have);
        received += chunk;
        got += have;
      }
    }
    CPPUNIT_ASSERT_EQUAL(kBig, got);
    CPPUNIT_ASSERT(up == received);
    // Proxy to client: 5 MiB through send(), the client reading slowly.
    std::string down(5 * 1024 * 1024, 'z');
    for (size_t i = 0; i < down.size(); i += 4096) down[i] = char('0' + i / 4096 % 10);
    iovec iov{&down[0], down.size()};
    l.conn->send(&iov, 1);
    std::string back;
    char buf[65536];
    for (int i = 0; i < 100000 && back.size() < down.size(); ++i) {
      size_t n = 0;
      if (SSL_read_ex(l.client, buf, sizeof buf, &n) == 1) back.append(buf, n);
      pump(l.base, 1);
    }
    CPPUNIT_ASSERT(down == back);
    CPPUNIT_ASSERT_EQUAL(size_t(0), l.conn->pending_output());
    CPPUNIT_ASSERT_EQUAL(short(0), short(l.seen.events & ~Connection::kTlsReady));
  }

  void connection_garbage_handshake_fails_cleanly() {
    Link l(settings());
    const char junk[] = "\x16\x03\x01\x00\x05hello and then a great deal of nonsense";
    l.seen.keep_input = true;
    CPPUNIT_ASSERT(write(l.fds[1], junk, sizeof junk) > 0);
    pump(l.base);
    CPPUNIT_ASSERT(l.conn->start_tls(l.server->ctx()));
    pump(l.base);
    CPPUNIT_ASSERT(l.seen.events & Connection::kError);
    CPPUNIT_ASSERT(!(l.seen.events & Connection::kTlsReady));
    CPPUNIT_ASSERT_MESSAGE(l.conn->tls_error(), contains(l.conn->tls_error(), "TLS handshake failed"));
    // A second start is refused, not crashed on.
    CPPUNIT_ASSERT(!l.conn->start_tls(l.server->ctx()));
  }

  void connection_eof_in_handshake() {
    Link l(settings());
    CPPUNIT_ASSERT(l.conn->start_tls(l.server->ctx()));
    shutdown(l.fds[1], SHUT_WR);
    pump(l.base);
    CPPUNIT_ASSERT(l.seen.events & Connection::kEof);
    CPPUNIT_ASSERT(!l.conn->tls_error().empty());
  }

 private:
  std::string dir_;
  Pair ca_, server_, other_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(TlsTest);
