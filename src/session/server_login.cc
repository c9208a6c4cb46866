// A server session's login to its backend, and its reuse from the pool (see
// server_session.h).
#include <event2/buffer.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "protocol/auth_ed25519.h"
#include "service/log.h"
#include "session/server_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

// Login packets are small; anything bigger is not a MySQL server talking.
static constexpr size_t kMaxLoginPacket = 64 * 1024;
// Stop reading a backend once this much of its response waits for the client.
static constexpr size_t kReadHighWater = 1024 * 1024;
static constexpr size_t kWriteLowWater = 256 * 1024;

void ServerSession::connect(const BackendLogin& login) {
  login_ = login;
  schema_ = login.database;
  phase_ = Phase::Connecting;
  change_state(State::Init);
  if (server_.sockaddr_len == 0) {
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Unknown backend server host '" + server_.address.host + "' (" +
                   (server_.resolve_error.empty() ? "not resolved" : server_.resolve_error) + ")");
    return;
  }
  conn_ = std::make_unique<Connection>(host_.base(), -1);
  if (!conn_->ok()) {
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Can't create a socket for backend " + server_.address.str());
    return;
  }
  conn_->set_callbacks(on_read, on_write, on_event, this);
  conn_->set_read_high_water(kReadHighWater);
  conn_->set_write_low_water(kWriteLowWater);
  conn_->enable_read();  // once connected
  arm_login_timer();
  if (conn_->connect(&server_.sockaddr.sa, server_.sockaddr_len) < 0) {
    int err = errno;
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Can't connect to backend server " + server_.address.str() + " (" + std::to_string(err) +
                   " " + evutil_socket_error_to_string(err) + ")");
    return;
  }
  // A backend that vanishes without a FIN or RST (host down, network cut)
  // under an idle session is noticed, not kept until the next statement.
  if (int idle_s = host_.config()->backend_keepalive_s) conn_->set_keepalive(idle_s);
}

void ServerSession::arm_login_timer() {
  if (!login_timer_) login_timer_ = evtimer_new(host_.base(), on_login_timeout, this);
  timeval tv{connect_timeout_ms_ / 1000, (connect_timeout_ms_ % 1000) * 1000};
  evtimer_add(login_timer_, &tv);
}

void ServerSession::stop_login_timer() {
  if (login_timer_) {
    event_free(login_timer_);
    login_timer_ = nullptr;
  }
}

uint32_t ServerSession::negotiate_caps(uint32_t client_caps, bool with_db) const {
  // The client's capabilities, and session tracking whether or not the
  // client asked for it: the proxy keeps the session's state from it.
  uint32_t caps = (client_caps & server_caps_ & kProxyCapabilities) | (server_caps_ & CLIENT_SESSION_TRACK) |
                  CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
  caps &= ~(CLIENT_CONNECT_WITH_DB | CLIENT_CONNECT_ATTRS | CLIENT_PLUGIN_AUTH |
            CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA);
  if (with_db) caps |= CLIENT_CONNECT_WITH_DB;
  caps |= server_caps_ & (CLIENT_CONNECT_ATTRS | CLIENT_PLUGIN_AUTH | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA);
  return caps;
}

bool ServerSession::can_serve(uint32_t client_caps, uint32_t client_ext_caps) const {
  return ready() && negotiate_caps(client_caps, false) == (caps_ & ~uint32_t(CLIENT_CONNECT_WITH_DB)) &&
         client_ext_caps == ext_caps_;
}

// Whatever a client session left here is gone (a reset, a new login).
void ServerSession::forget_state() {
  holder_ = 0;
  held_state_.reset();
  shared_stmts_.reset();
}

void ServerSession::park() {
  phase_ = Phase::AwaitAuthResult;  // an OK or an ERR ends it, as a login's result
  tracking_on_ = false;  // the reset sets session_track_* back to the defaults
  synced_version_ = 0;
  forget_state();
  change_state(State::KeepAliveShared);
  seq_ = 0;
  arm_login_timer();
  send_to_backend(std::string(1, char(COM_RESET_CONNECTION)));
}

void ServerSession::reuse(const BackendLogin& login, bool reset) {
  // The reset at park() left the same user's session clean: only the
  // database may need setting, which COM_INIT_DB does without the backend
  // authenticating and resetting the session again.
  bool same_user =
      !reset && login.user == login_.user && login.charset == login_.charset && !login.database.empty();
  if (!same_user) {  // COM_CHANGE_USER resets the session, its trackers too
    forget_state();
    tracking_on_ = false;
  }
  login_ = login;
  schema_ = login.database;
  synced_version_ = 0;
  phase_ = Phase::AwaitAuthResult;
  change_state(State::Init);
  seq_ = 0;
  arm_login_timer();
  if (same_user) {
    send_to_backend(std::string(1, char(COM_INIT_DB)) + login_.database);
    return;
  }
  ChangeUser cu;
  cu.user = login_.user;
  if (login_.hash1) {
    Sha1Digest token = native_token_from_hash1(*login_.hash1, reinterpret_cast<const uint8_t*>(scramble_.data()),
                                               std::min<size_t>(scramble_.size(), kScrambleLen));
    cu.auth_response.assign(reinterpret_cast<const char*>(token.data()), token.size());
  }
  cu.database = login_.database;
  cu.charset = login_.charset;
  cu.auth_plugin = kNativePasswordPlugin;
  cu.attributes = login_.attributes;
  send_to_backend(build_change_user(cu, caps_));
}

void ServerSession::on_login_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ServerSession*>(arg);
  OwnerEvent event(self->owner_);
  self->fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                   "Backend server " + self->server_.address.str() + " did not complete the login within " +
                       std::to_string(self->connect_timeout_ms_) + " ms");
}

void ServerSession::handle_login_packet() {
  evbuffer* in = conn_->input();
  while (conn_ && phase_ != Phase::Ready) {
    uint8_t first_seq = 0, last_seq = 0;
    std::string payload;
    ReadStatus st = read_packet(in, kMaxLoginPacket, first_seq, last_seq, payload);
    if (st == ReadStatus::Incomplete) return;
    if (st == ReadStatus::TooBig || payload.empty()) {
      fail_login(er::ER_NET_READ_ERROR, "Malformed packet from backend server " + server_.address.str());
      return;
    }
    seq_ = uint8_t(last_seq + 1);
    uint8_t head = uint8_t(payload[0]);
    if (head == kErrHeader) {
      fail_login(payload);
      return;
    }
    if (phase_ == Phase::AwaitHandshake) {
      if (!answer_handshake(payload)) return;
      if (phase_ == Phase::TlsHandshake) return;  // the rest comes over TLS
      phase_ = Phase::AwaitAuthResult;
      continue;
    }
    if (head == kOkHeader) {
      login_done(payload);
      return;
    }
    if (head == kAuthSwitchHeader) {
      if (!answer_auth_switch(payload)) return;
      continue;
    }
    if (head == kAuthMoreDataHeader && scratch_ && scratch_->sha2 != Sha2::None) {
      if (!answer_sha2_more(payload)) return;
      continue;
    }
    fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
               "Backend server " + server_.address.str() +
                   " asked for more authentication data than mysql_native_password gives");
    return;
  }
}

// The backend's greeting: answer it as the client's user.  False when the
// login failed (the owner has heard).
bool ServerSession::answer_handshake(const std::string& payload) {
  Handshake hs;
  std::string error;
  if (!parse_handshake(payload, hs, error)) {
    fail_login(er::ER_NET_READ_ERROR, "Bad handshake from backend server " + server_.address.str() + ": " + error);
    return false;
  }
  server_sessid_ = hs.connection_id;
  server_version_ = hs.server_version;
  mariadb_ = server_version_.find("MariaDB") != std::string::npos;
  server_caps_ = hs.capabilities;
  scramble_ = hs.scramble;
  host_.note_backend_handshake(cluster_, hs);
  uint32_t missing = (login_.client_caps & kResponseShapeCapabilities) & ~hs.capabilities;
  if (missing) {
    char flags[16];
    snprintf(flags, sizeof(flags), "%x", missing);
    fail_login(er::ER_UNKNOWN_ERROR, "Backend server " + server_.address.str() +
                                         " lacks capabilities the client asked for (flags 0x" + flags + ")");
    return false;
  }
  HandshakeResponse resp;
  caps_ = negotiate_caps(login_.client_caps, !login_.database.empty());
  // MariaDB's extended capabilities change packets: the backend must have
  // every one the client agreed on with the proxy.
  if (uint32_t missing = login_.client_ext_caps & ~hs.ext_capabilities) {
    char bits[16];
    snprintf(bits, sizeof(bits), "0x%x", missing);
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Backend server " + server_.address.str() + " lacks MariaDB capabilities " + bits +
                   " that this client uses; connect with them off, or give the cluster alike servers");
    return false;
  }
  ext_caps_ = login_.client_ext_caps;
  resp.capabilities = caps_;
  resp.ext_capabilities = ext_caps_;
  resp.max_packet = login_.max_packet ? login_.max_packet : 0x40000000;
  resp.charset = login_.charset ? login_.charset : hs.charset;
  resp.user = login_.user;
  resp.auth_plugin = kNativePasswordPlugin;
  if (login_.hash1) {
    Sha1Digest token = native_token_from_hash1(*login_.hash1, reinterpret_cast<const uint8_t*>(hs.scramble.data()),
                                               std::min<size_t>(hs.scramble.size(), kScrambleLen));
    resp.auth_response.assign(reinterpret_cast<const char*>(token.data()), token.size());
  } else if (login_.sha256) {
    // Only SHA256(pw) (a caching_sha2 client against a sha2: hash): answer
    // with caching_sha2_password's fast path; a backend whose account wants
    // mysql_native_password switches, and is told what is missing.
    LoginScratch& sc = scratch();
    sc.sha2_nonce = hs.scramble.substr(0, kScrambleLen);
    sc.sha2 = Sha2::Scrambled;
    Sha256Digest token = sha2_token_from_hash1(*login_.sha256, reinterpret_cast<const uint8_t*>(sc.sha2_nonce.data()),
                                               sc.sha2_nonce.size());
    resp.auth_response.assign(reinterpret_cast<const char*>(token.data()), token.size());
    resp.auth_plugin = kCachingSha2Plugin;
  }
  resp.database = login_.database;
  resp.attributes = login_.attributes;
  return answer_over_tls(hs, resp);
}

// The handshake response, over TLS when the cluster's tls.mode and the
// server's offer say so: first the SSLRequest (the response's first 32
// bytes), then the TLS handshake, then the whole response (on_event's
// kTlsReady).  False when the login failed.
bool ServerSession::answer_over_tls(const Handshake& hs, HandshakeResponse& resp) {
  std::shared_ptr<const Config> cfg = host_.config();
  const Cluster* cl = cfg->find_cluster(cluster_);
  const BackendTls::Mode mode = cl ? cl->tls.mode : BackendTls::Mode::Disabled;
  const bool offered = hs.capabilities & CLIENT_SSL;
  if (mode == BackendTls::Mode::Disabled || (!offered && mode == BackendTls::Mode::Preferred)) {
    send_to_backend(build_handshake_response(resp));
    return true;
  }
  if (!offered) {
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Backend server " + server_.address.str() + " does not offer TLS, and cluster '" + cluster_ +
                   "' has tls.mode " + BackendTls::mode_name(mode));
    return false;
  }
  caps_ |= CLIENT_SSL;
  resp.capabilities = caps_;
  std::string whole = build_handshake_response(resp);
  send_to_backend(whole.substr(0, 32));  // the SSLRequest
  scratch().tls_response = std::move(whole);
  const std::string verify = mode == BackendTls::Mode::VerifyIdentity ? server_.address.host : "";
  if (!conn_->start_tls_client(cl->tls.ctx->ctx(), verify)) {
    fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
               "Cannot start TLS with backend server " + server_.address.str() + ": " + conn_->tls_error());
    return false;
  }
  phase_ = Phase::TlsHandshake;
  return true;
}

// TLS with the backend is up: the handshake response follows, encrypted.
void ServerSession::tls_ready() {
  phase_ = Phase::AwaitAuthResult;
  std::string resp = std::move(scratch().tls_response);
  scratch_->tls_response.clear();
  send_to_backend(resp);
}

bool ServerSession::answer_auth_switch(const std::string& payload) {
  AuthSwitch sw;
  if (!parse_auth_switch(payload, sw)) {
    fail_login(er::ER_NET_READ_ERROR, "Malformed auth switch from backend server " + server_.address.str());
    return false;
  }
  if (sw.plugin == kEd25519Plugin) {
    // The nonce signed with the password's key: only the clear password does.
    if (!login_.password) {
      fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
                 "Backend server " + server_.address.str() + " wants client_ed25519 for user '" + login_.user +
                     "', which needs the user's clear password: give it in clear text in myrelay's configuration "
                     "(its password key), or use mysql_native_password for this account on the backend");
      return false;
    }
    if (sw.data.size() < kEd25519NonceLen) {
      fail_login(er::ER_NET_READ_ERROR, "Backend server " + server_.address.str() + " sent a short ed25519 nonce");
      return false;
    }
    send_to_backend(ed25519_sign(*login_.password, std::string_view(sw.data).substr(0, kEd25519NonceLen)));
    return true;
  }
  if (sw.plugin == kCachingSha2Plugin) {
    // The fast path needs SHA256(pw): from the client's own caching_sha2
    // answer, or the clear password.
    std::optional<Sha256Digest> h = login_.sha256;
    if (!h && login_.password) h = sha256(*login_.password);
    if (!h) {
      fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
                 "Backend server " + server_.address.str() + " wants caching_sha2_password for user '" + login_.user +
                     "', which needs SHA256 of the password: give the user's password in clear text in myrelay's "
                     "configuration, or let the client log in with caching_sha2_password");
      return false;
    }
    LoginScratch& sc = scratch();
    sc.sha2_nonce = sw.data.substr(0, kScrambleLen);
    sc.sha2 = Sha2::Scrambled;
    Sha256Digest token =
        sha2_token_from_hash1(*h, reinterpret_cast<const uint8_t*>(sc.sha2_nonce.data()), sc.sha2_nonce.size());
    send_to_backend(std::string(reinterpret_cast<const char*>(token.data()), token.size()));
    return true;
  }
  if (sw.plugin != kNativePasswordPlugin) {
    fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
               "Backend server " + server_.address.str() + " wants authentication plugin '" + sw.plugin +
                   "' for user '" + login_.user +
                   "'; myrelay logs in to backends with mysql_native_password, caching_sha2_password or "
                   "client_ed25519: use one of them for this account on the backend");
    return false;
  }
  if (!login_.hash1 && login_.sha256) {
    fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
               "Backend server " + server_.address.str() + " wants mysql_native_password for user '" + login_.user +
                   "', which needs SHA1 of the password, and a caching_sha2_password login against a 'sha2:' hash "
                   "does not reveal it; give this user's password in clear text in myrelay's configuration, or use "
                   "auth_plugin: mysql_native_password for it");
    return false;
  }
  std::string answer;
  if (login_.hash1) {
    Sha1Digest token = native_token_from_hash1(*login_.hash1, reinterpret_cast<const uint8_t*>(sw.data.data()),
                                               std::min<size_t>(sw.data.size(), kScrambleLen));
    answer.assign(reinterpret_cast<const char*>(token.data()), token.size());
  }
  send_to_backend(answer);
  return true;
}

// caching_sha2_password's further steps: the fast path's verdict (0x03: the
// OK follows), or a request for full authentication (0x04), which takes the
// clear password: as is over TLS, else encrypted with the server's public
// key, asked for first (0x02).  False when the login failed.
bool ServerSession::answer_sha2_more(const std::string& payload) {
  const std::string addr = server_.address.str();
  LoginScratch& sc = scratch();
  if (sc.sha2 == Sha2::Scrambled && payload.size() == 2 && payload[1] == kSha2FastAuthOk) return true;
  if (sc.sha2 == Sha2::Scrambled && payload.size() == 2 && payload[1] == kSha2PerformFullAuth) {
    if (!login_.password) {
      fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE,
                 "Backend server " + addr + " asks for full caching_sha2_password authentication of user '" +
                     login_.user + "' (it holds no cached entry for it), which needs the clear password: give it "
                     "in clear text in myrelay's configuration, or log in once directly so that the server caches it");
      return false;
    }
    if (conn_->tls()) {
      sc.sha2 = Sha2::Sent;
      send_to_backend(*login_.password + std::string(1, '\0'));
      return true;
    }
    sc.sha2 = Sha2::AwaitKey;
    send_to_backend(std::string(1, char(kSha2RequestPublicKey)));
    return true;
  }
  if (sc.sha2 == Sha2::AwaitKey && payload.size() > 1) {
    std::string encrypted, error;
    if (!sha2_encrypt_password(*login_.password, reinterpret_cast<const uint8_t*>(sc.sha2_nonce.data()),
                               sc.sha2_nonce.size(), payload.substr(1), encrypted, error)) {
      fail_login(er::ER_NOT_SUPPORTED_AUTH_MODE, "Backend server " + addr + ": " + error);
      return false;
    }
    sc.sha2 = Sha2::Sent;
    send_to_backend(encrypted);
    return true;
  }
  fail_login(er::ER_NET_READ_ERROR, "Backend server " + addr + " sent caching_sha2_password data out of turn");
  return false;
}

void ServerSession::login_done(const std::string& ok_payload) {
  OkPacket ok;
  if (parse_ok(ok_payload, ok)) login_status_ = ok.status;
  stop_login_timer();
  phase_ = Phase::Ready;
  scratch_.reset();
  if (state_ == State::KeepAliveShared) {  // park()'s reset is done
    LOG_DEBUG("ss_id=%llu reset for the pool (backend thread %u)", (unsigned long long)ss_id_, server_sessid_);
  } else {
    LOG_DEBUG("ss_id=%llu logged in to %s as '%s' (backend thread %u)", (unsigned long long)ss_id_,
              server_.address.str().c_str(), login_.user.c_str(), server_sessid_);
    change_state(State::KeepAliveClientSlave);
  }
  owner_->on_server_ready(this);
}

void ServerSession::fail_login(const er::Error& e, const std::string& message) {
  fail_login(build_err(e, message));
}

void ServerSession::fail_login(const std::string& err_payload) {
  ErrPacket e;
  if (parse_err(err_payload, e))
    LOG_WARN("ss_id=%llu login to backend %s (cluster %s) as '%s' failed: %u (%s) %s",
             (unsigned long long)ss_id_, server_.address.str().c_str(), cluster_.c_str(),
             login_.user.c_str(), e.code, e.sql_state.c_str(), e.message.c_str());
  stop_login_timer();
  conn_.reset();
  change_state(State::Closed);
  owner_->on_server_login_failed(this, err_payload);  // may delete this
}

}  // namespace myrelay
