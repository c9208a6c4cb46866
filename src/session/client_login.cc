// A client session's login: the proxy's handshake, authentication against the
// configured users, the first backend login, and COM_CHANGE_USER (see
// client_session.h).
#include <event2/buffer.h>

#include <cstring>

#include "routing/router.h"
#include "routing/server_pool.h"
#include "control/shm_table.h"
#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

static constexpr size_t kMaxLoginPacket = 64 * 1024;

void ClientSession::send_handshake() {
  scramble_ = make_scramble();
  std::shared_ptr<const BackendFacts> snapshot = host_.backend_facts(cfg_->default_cluster);
  const BackendFacts& facts = *snapshot;
  Handshake hs;
  hs.server_version = facts.known ? facts.server_version : cfg_->server_version;
  hs.connection_id = cs_id_;
  hs.scramble.assign(reinterpret_cast<const char*>(scramble_.data()), scramble_.size());
  // Offer only what the backend also has: responses are relayed unchanged.
  hs.capabilities =
      facts.known ? kProxyCapabilities & (facts.capabilities | CLIENT_LONG_PASSWORD) : kProxyCapabilities;
  // MariaDB's extended capabilities, when the backends have them (a client
  // reads them only without CLIENT_MYSQL).
  hs.ext_capabilities = facts.known ? facts.ext_capabilities & kProxyExtCapabilities : 0;
  // With metadata caching a backend skips column definitions it sent for a
  // statement before, to whichever session: multiplexed sessions could not
  // share their backend statements (see ClientSession::shared_key()).
  if (cfg_->multiplexes_anywhere()) hs.ext_capabilities &= ~MARIADB_CLIENT_CACHE_METADATA;
  if (hs.ext_capabilities) hs.capabilities &= ~CLIENT_MYSQL;
  ext_caps_ = hs.ext_capabilities;
  hs.charset = facts.known && facts.charset ? facts.charset : 45;  // utf8mb4_general_ci
  hs.status = SERVER_STATUS_AUTOCOMMIT;
  announced_plugin_ = cfg_->default_auth_plugin;
  hs.auth_plugin = auth_plugin_name(announced_plugin_);
  // TLS as configured now: a reload changes it for the next sessions only.
  tls_ = host_.tls_context();
  if (tls_) hs.capabilities |= CLIENT_SSL;
  caps_ = hs.capabilities;
  seq_ = 0;
  send_packet(build_handshake(hs));
}

void ClientSession::handle_handshake_response() {
  uint8_t first_seq = 0, last_seq = 0;
  std::string payload;
  ReadStatus st = read_packet(conn_->input(), kMaxLoginPacket, first_seq, last_seq, payload);
  if (st == ReadStatus::Incomplete) return;
  if (st == ReadStatus::TooBig) {
    LOG_WARN("cs_id=%u %s:%u sent an oversized login packet", cs_id_, peer_ip_.c_str(), peer_port_);
    close("oversized login packet");
    return;
  }
  seq_ = uint8_t(last_seq + 1);
  if (!slot_) {
    send_error_and_close(er::ER_CON_COUNT_ERROR, "Too many connections", "max_connections reached");
    return;
  }
  std::string error;
  // After an SSLRequest (sequence id 1) the handshake response goes on with 2.
  const uint8_t want_seq = conn_->tls() ? 2 : 1;
  if (first_seq != want_seq || !parse_handshake_response(payload, hello_, error)) {
    LOG_WARN("cs_id=%u %s:%u sent a bad handshake response: %s", cs_id_, peer_ip_.c_str(), peer_port_,
             error.empty() ? "wrong sequence id" : error.c_str());
    bump(counters_.errors);
    send_error_and_close(er::ER_HANDSHAKE_ERROR, "Bad handshake", "bad handshake");
    return;
  }
  if (hello_.is_ssl_request) {
    if (!tls_ || conn_->tls() || !(hello_.capabilities & CLIENT_SSL)) {
      LOG_WARN("cs_id=%u %s:%u sent an SSLRequest %s", cs_id_, peer_ip_.c_str(), peer_port_,
               !tls_ ? "but TLS is not offered" : conn_->tls() ? "over TLS" : "without CLIENT_SSL");
      bump(counters_.errors);
      send_error_and_close(er::ER_HANDSHAKE_ERROR, tls_ ? "Bad handshake" : "Bad handshake: myrelay does not offer SSL",
                           "unexpected SSLRequest");
      return;
    }
    start_tls();
    return;
  }
  caps_ &= hello_.capabilities;
  ext_caps_ &= hello_.ext_capabilities;
  charset_ = hello_.charset;
  db_ = (caps_ & CLIENT_CONNECT_WITH_DB) ? hello_.database : std::string();
  login_text_ = hello_.user;
  change_phase(Phase::AwaitAuthSwitchResponse);
  begin_auth(cfg_, hello_.user, hello_.auth_plugin, hello_.auth_response);
}

// An SSLRequest: the TLS handshake runs on the connection's own events;
// on_tls_ready() then waits for the handshake response over TLS.
void ClientSession::start_tls() {
  if (!conn_->start_tls(tls_->ctx())) {
    LOG_WARN("cs_id=%u %s:%u: %s", cs_id_, peer_ip_.c_str(), peer_port_, conn_->tls_error().c_str());
    close("cannot start TLS");
    return;
  }
  change_phase(Phase::TlsHandshake);
}

void ClientSession::on_tls_ready() {
  if (phase_ != Phase::TlsHandshake) return;
  LOG_DEBUG("cs_id=%u %s:%u: %s with %s", cs_id_, peer_ip_.c_str(), peer_port_, conn_->tls_version(),
            conn_->tls_cipher());
  identity_changed();  // using_ssl, tls_version and tls_cipher
  change_phase(Phase::AwaitHandshakeResponse);
  if (evbuffer_get_length(conn_->input()) > 0) handle_input();
}

bool ClientSession::read_auth_answer(std::string& payload) {
  uint8_t first_seq = 0, last_seq = 0;
  ReadStatus st = read_packet(conn_->input(), kMaxLoginPacket, first_seq, last_seq, payload);
  if (st == ReadStatus::Incomplete) return false;
  if (st == ReadStatus::TooBig) {
    close("oversized auth packet");
    return false;
  }
  seq_ = uint8_t(last_seq + 1);
  return true;
}

void ClientSession::handle_auth_switch_response() {
  std::string payload;
  if (read_auth_answer(payload)) auth_packet(payload);
}

void ClientSession::deny_access(bool used_password) {
  bump(counters_.logins_failed);
  LOG_INFO("cs_id=%u access denied for '%s' from %s:%u", cs_id_, login_text_.c_str(), peer_ip_.c_str(), peer_port_);
  send_error_and_close(er::ER_ACCESS_DENIED_ERROR,
                       "Access denied for user '" + login_text_ + "'@'" + peer_ip_ +
                           "' (using password: " + (used_password ? "YES" : "NO") + ")",
                       "access denied");
}

// Whether the configuration says this login must come over TLS.
static bool needs_tls(const Config& cfg, const Tenant* tenant, const LoginName& login) {
  const UserEntry* user = tenant ? cfg.find_user(*tenant, login.user) : nullptr;
  return user && Config::requires_tls(*tenant, *user);
}

// Looks the login name up (unknown users are denied only after the client
// has answered, so a client cannot tell them from a wrong password), then
// checks the answer with the user's method, asking for that method first
// when the client answered with another.
void ClientSession::begin_auth(std::shared_ptr<const Config> cfg, const std::string& login_text,
                               const std::string& client_plugin, const std::string& answer) {
  auth_ = std::make_unique<AuthAttempt>();
  auth_->cfg = std::move(cfg);
  auth_->login_text = login_text;
  const Config& c = *auth_->cfg;
  std::string error;
  if (parse_login_name(login_text, c.default_tenant, c.default_cluster, auth_->login, error)) {
    auth_->tenant = c.find_tenant(auth_->login.tenant);
    if (auth_->tenant && c.find_cluster(auth_->login.cluster)) auth_->user = c.find_user(*auth_->tenant, auth_->login.user);
  }
  auth_->plugin = auth_->user ? auth_->user->auth_plugin : c.default_auth_plugin;
  // (A view: "mysql_native_password" is too long for a string's own buffer,
  // and every login passes here.)
  const std::string_view spoken = client_plugin.empty() ? std::string_view(kNativePasswordPlugin) : client_plugin;
  const bool user_has_password = auth_->user && auth_->user->has_password;
  if (spoken == auth_plugin_name(auth_->plugin) &&
      !(answer.empty() && user_has_password && spoken != auth_plugin_name(announced_plugin_))) {
    check_answer(answer);
    return;
  }
  // Else the client answered for another method, or (libmariadb) kept its
  // answer back because the handshake's nonce was meant for another method.
  if (!(caps_ & CLIENT_PLUGIN_AUTH)) {
    // A client that cannot switch methods cannot log in as this user.
    LOG_INFO("cs_id=%u '%s' from %s:%u: the client cannot switch to %s", cs_id_, login_text.c_str(),
             peer_ip_.c_str(), peer_port_, auth_plugin_name(auth_->plugin));
    auth_finished(false);
    return;
  }
  // Ask for the user's method: mysql_native_password with the handshake's
  // scramble (as MariaDB does: a client may have answered already),
  // caching_sha2_password with a fresh nonce, which later answers use.
  if (auth_->plugin == AuthPlugin::CachingSha2) scramble_ = make_scramble();
  auth_->switched = true;
  send_packet(build_auth_switch(auth_plugin_name(auth_->plugin),
                                std::string_view(reinterpret_cast<const char*>(scramble_.data()), scramble_.size())));
}

void ClientSession::auth_packet(const std::string& payload) {
  if (!auth_) {  // not expected: the phases that read answers begin an authentication
    close("authentication data out of turn");
    return;
  }
  switch (auth_->step) {
    case AuthStep::Answer:
      check_answer(payload);
      return;
    case AuthStep::Sha2FullAuth:
      if (payload.size() == 1 && uint8_t(payload[0]) == kSha2RequestPublicKey && !conn_->tls()) {
        if (!auth_->cfg->rsa_key) {
          LOG_INFO("cs_id=%u '%s' from %s:%u: caching_sha2_password full authentication needs TLS or "
                   "proxy.rsa_private_key, and this session has neither",
                   cs_id_, auth_->login_text.c_str(), peer_ip_.c_str(), peer_port_);
          auth_finished(false);
          return;
        }
        auth_->step = AuthStep::Sha2Rsa;
        send_packet(std::string(1, char(kAuthMoreDataHeader)) + auth_->cfg->rsa_key->public_pem());
        return;
      }
      if (!conn_->tls()) {
        // A clear password on plain TCP: refused, as MySQL refuses it.
        LOG_INFO("cs_id=%u '%s' from %s:%u: caching_sha2_password full authentication over plain TCP without "
                 "RSA is refused (use TLS, or set proxy.rsa_private_key)",
                 cs_id_, auth_->login_text.c_str(), peer_ip_.c_str(), peer_port_);
        auth_finished(false);
        return;
      }
      // Over TLS: the clear password, NUL-terminated.
      check_clear_password(!payload.empty() && payload.back() == '\0' ? payload.substr(0, payload.size() - 1)
                                                                       : payload);
      return;
    case AuthStep::Sha2Rsa: {
      std::string plain, password;
      if (!auth_->cfg->rsa_key->decrypt_oaep(payload, plain) ||
          !sha2_unmask_password(plain, scramble_.data(), scramble_.size(), password)) {
        LOG_INFO("cs_id=%u '%s' from %s:%u sent an RSA-encrypted password that does not decrypt", cs_id_,
                 auth_->login_text.c_str(), peer_ip_.c_str(), peer_port_);
        auth_finished(false);
        return;
      }
      check_clear_password(password);
      std::fill(password.begin(), password.end(), '\0');
      std::fill(plain.begin(), plain.end(), '\0');
      return;
    }
  }
}

// The answer to a scramble, in the method being spoken.
void ClientSession::check_answer(const std::string& answer) {
  auth_->used_password = !answer.empty();
  const UserEntry* user = auth_->user;
  if (!user) {
    auth_finished(false);
    return;
  }
  if (!user->has_password) {
    auth_finished(answer.empty());
    return;
  }
  if (auth_->plugin == AuthPlugin::NativePassword) {
    Sha1Digest h1{};
    bool ok = user->has_native_hash &&
              native_verify(reinterpret_cast<const uint8_t*>(answer.data()), answer.size(), scramble_.data(),
                            scramble_.size(), user->hash2, h1);
    if (ok) {
      auth_->hash1 = h1;
      auth_->password = user->clear_password;
    }
    auth_finished(ok);
    return;
  }
  // caching_sha2_password.
  if (answer.empty()) {
    auth_finished(false);
    return;
  }
  if (user->has_sha2_hash) {
    // The fast path.
    Sha256Digest h1{};
    const uint8_t* token = reinterpret_cast<const uint8_t*>(answer.data());
    bool ok = sha2_verify(token, answer.size(), scramble_.data(), scramble_.size(), user->sha2_hash2, h1);
    if (!ok && auth_->switched) {
      // PyMySQL hashes the nonce of an auth switch with its terminating NUL.
      uint8_t nonce[kScrambleLen + 1];
      memcpy(nonce, scramble_.data(), kScrambleLen);
      nonce[kScrambleLen] = 0;
      ok = sha2_verify(token, answer.size(), nonce, sizeof nonce, user->sha2_hash2, h1);
    }
    if (ok) auth_->sha256 = h1;  // what a caching_sha2 backend's fast path needs
    std::fill(h1.begin(), h1.end(), 0);
    if (!ok) {
      auth_finished(false);
      return;
    }
    auth_->how = "fast path";
    send_packet(std::string{char(kAuthMoreDataHeader), char(kSha2FastAuthOk)});
    if (user->clear_password) {
      auth_->password = user->clear_password;
      auth_->hash1 = sha1(*user->clear_password);
    }
    auth_finished(true);
    return;
  }
  // Only the native hash: the clear password is needed (full authentication).
  auth_->step = AuthStep::Sha2FullAuth;
  send_packet(std::string{char(kAuthMoreDataHeader), char(kSha2PerformFullAuth)});
}

// caching_sha2_password's full authentication: the clear password, checked
// against whichever hash the configuration holds.
void ClientSession::check_clear_password(const std::string& password) {
  auth_->used_password = true;
  const UserEntry* user = auth_->user;
  bool ok = false;
  if (user->has_sha2_hash) {
    Sha256Digest h1 = sha256(password);
    Sha256Digest h2 = sha256(h1.data(), h1.size());
    ok = equal_secret(h2.data(), user->sha2_hash2.data(), h2.size());
  } else if (user->has_native_hash) {
    Sha1Digest h1 = sha1(password);
    Sha1Digest h2 = sha1(h1.data(), h1.size());
    ok = equal_secret(h2.data(), user->hash2.data(), h2.size());
  }
  auth_->how = conn_->tls() ? "full authentication over TLS" : "full authentication with RSA";
  if (ok) {
    auth_->hash1 = sha1(password);
    auth_->password = std::make_shared<const std::string>(password);
  }
  auth_finished(ok);
}

void ClientSession::auth_finished(bool ok) {
  if (ok)
    LOG_DEBUG("cs_id=%u '%s' from %s:%u authenticated with %s%s%s", cs_id_, auth_->login_text.c_str(),
              peer_ip_.c_str(), peer_port_, auth_plugin_name(auth_->plugin), *auth_->how ? ", " : "", auth_->how);
  if (phase_ == Phase::AwaitChangeUserAuth) {
    cu_->login = auth_->login;
    cu_->tenant = auth_->tenant;
    cu_->hash1 = auth_->hash1;
    cu_->password = auth_->password;
    cu_->sha256 = auth_->sha256;
    if (!ok) {
      LOG_INFO("cs_id=%u change user to '%s' denied", cs_id_, cu_->request.user.c_str());
      // As MySQL does, the session stays, logged in as before.
      send_error(er::ER_ACCESS_DENIED_ERROR, "Access denied for user '" + cu_->request.user + "'@'" + peer_ip_ +
                                                 "' (using password: " + (auth_->used_password ? "YES" : "NO") + ")");
      auth_.reset();
      cu_.reset();
      change_phase(Phase::Ready);
      handle_input();
      return;
    }
    change_user_authenticated();
    return;
  }
  login_ = auth_->login;
  tenant_ = auth_->tenant;
  hash1_ = auth_->hash1;
  password_ = auth_->password;
  sha256_ = auth_->sha256;
  bool used_password = auth_->used_password;
  auth_.reset();
  if (!ok) {
    deny_access(used_password);
    return;
  }
  if (!conn_->tls() && needs_tls(*cfg_, tenant_, login_)) {
    // As MySQL refuses a REQUIRE SSL account: the same 1045.
    LOG_INFO("cs_id=%u '%s' from %s:%u must log in over TLS", cs_id_, login_text_.c_str(), peer_ip_.c_str(),
             peer_port_);
    deny_access(used_password);
    return;
  }
  authenticated();
}

void ClientSession::authenticated() {
  std::shared_ptr<const BackendFacts> facts = host_.backend_facts(login_.cluster);
  client_trackers_ = facts->trackers ? facts->trackers : proto::TrackerSet::shared_mariadb_defaults();
  state_.reset(db_);
  note_routing();
  identity_changed();
  begin_backend_login(Phase::BackendLogin);
}

static BackendLogin make_backend_login(const Config& cfg, const LoginName& login,
                                       const std::optional<Sha1Digest>& hash1,
                                       const std::shared_ptr<const std::string>& password,
                                       const std::optional<Sha256Digest>& sha256, const std::string& db,
                                       uint8_t charset,
                                       uint32_t caps, uint32_t ext_caps, const HandshakeResponse& hello,
                                       uint64_t proxy_sessid, uint32_t cs_id, const std::string& peer) {
  BackendLogin bl;
  bl.user = login.user;
  bl.hash1 = hash1;
  // The clear password, for backends whose method needs it (client_ed25519),
  // when the configuration gives it so or the client sent it
  // (caching_sha2_password's full authentication).
  bl.password = password;
  bl.sha256 = sha256;
  const int proxy_id = cfg.proxy_id;
  bl.database = db;
  bl.charset = charset;
  bl.client_caps = caps;
  bl.client_ext_caps = ext_caps;
  bl.max_packet = hello.max_packet;
  // Lets a DBA map a backend thread to its proxy and session
  // (performance_schema.session_connect_attrs); a client's own "_proxy_*"
  // attributes would only mislead, so they never reach the backend.
  for (const auto& a : hello.attributes)
    if (a.first.compare(0, 7, "_proxy_") != 0) bl.attributes.push_back(a);
  bl.attributes.emplace_back("_proxy_id", std::to_string(proxy_id));
  bl.attributes.emplace_back("_proxy_sessid", std::to_string(proxy_sessid));
  bl.attributes.emplace_back("_proxy_cs_id", std::to_string(cs_id));
  bl.attributes.emplace_back("_proxy_client", peer);
  return bl;
}

BackendLogin ClientSession::backend_login() const {
  return make_backend_login(*cfg_, login_, hash1_, password_, sha256_, db_, charset_, caps_, ext_caps_, hello_, proxy_sessid_, cs_id_,
                            peer_ip_ + ":" + std::to_string(peer_port_));
}

// Whether this login's statements are split (the user's, the tenant's or
// the cluster's choice), and whether it is multiplexed.
void ClientSession::note_routing() {
  const Cluster* cl = cfg_->find_cluster(login_.cluster);
  const UserEntry* user = tenant_ ? cfg_->find_user(*tenant_, login_.user) : nullptr;
  splits_ = cl && Config::splits(*cl, tenant_, user);
  causal_reads_ = cl && cl->causal_reads;
  multiplexed_ = cl && Config::multiplexes(*cl, tenant_);
  mux_cap_ = cl ? cl->worker_share(host_.index(), host_.worker_count()) : 0;
}

// The server a login's first server session goes to: the writable one, as
// the health checker sees the cluster now.
const BackendServer* ClientSession::login_server(const Cluster& cluster) {
  return routing::login_server(cluster, [this](const BackendServer& s) {
    return host_.server_entry(s).routing.load(std::memory_order_acquire);
  });
}

// Opens the session's first server session (from the worker's pool when one
// is there).
void ClientSession::begin_backend_login(Phase phase) {
  change_phase(phase);
  const Cluster* cluster = cfg_->find_cluster(login_.cluster);
  const BackendServer* server = cluster ? login_server(*cluster) : nullptr;
  if (!server) {
    send_error_and_close(er::ER_BAD_DB_ERROR, "Unknown cluster '" + login_.cluster + "'", "unknown cluster");
    return;
  }
  if (multiplexed_ || mux_cap_ > 0) {
    // A connection of this user in the login's database is logged in
    // already; otherwise the login waits for one like a statement.
    if (take_shared(*server, cluster->name, true) == Route::Go) login_complete(current_);
    return;
  }
  if (take_pooled(*server, cluster->name)) return;
  reused_server_ = false;
  current_ = open_server(*server, cluster->name);
  current_->connect(backend_login());
}

// A server session to `server` from the worker's pool, made current and
// switched to this login (COM_CHANGE_USER: heard like a login).
bool ClientSession::take_pooled(const BackendServer& server, const std::string& cluster) {
  bool may_reuse = cfg_->server_pool_size > 0 && !skip_pool_once_;
  skip_pool_once_ = false;
  if (!may_reuse) return false;
  auto pooled = host_.server_pool().take(cluster, server, caps_, ext_caps_);
  if (!pooled) return false;
  servers_.push_back(std::move(pooled));
  current_ = servers_.back().get();
  adopt_server(current_);
  reused_server_ = true;
  current_->reuse(backend_login());
  return true;
}

void ClientSession::on_server_ready(ServerSession* ss) {
  Step step(*this);
  identity_changed();  // the backend's thread id is known now
  if (ss == pending_.get()) {
    finish_change_user(true, std::string());
    return;
  }
  if (ss != current_) return;
  read_opening_ = false;
  bump(reused_server_ ? counters_.backend_reuses : counters_.backend_connects);
  // A backend that does not report session state leaves the proxy blind to
  // what the client changes: such a session can never be carried.
  if (!ss->tracks_state()) state_.set_reason(SessionState::kUnknownState, true);
  if (phase_ == Phase::BackendLogin) {
    login_complete(ss);
    return;
  }
  if (phase_ == Phase::AwaitServer) continue_after_server();
}

void ClientSession::login_complete(ServerSession* ss) {
  if (handshake_timer_) {
    event_free(handshake_timer_);
    handshake_timer_ = nullptr;
  }
  end_pending_login();
  LOG_DEBUG("cs_id=%u '%s' logged in from %s:%u (ss_id=%llu, backend thread %u)", cs_id_, login_text_.c_str(),
            peer_ip_.c_str(), peer_port_, (unsigned long long)ss->ss_id(), ss->server_sessid());
  in_trans_ = ss->login_status() & SERVER_STATUS_IN_TRANS;
  if (in_trans_) trans_started_us_ = host_.loop_time_us();
  autocommit_ = ss->login_status() & SERVER_STATUS_AUTOCOMMIT;
  send_ok();
  arm_idle_timer();
  // The client has its answer; the server session's trackers are set up
  // meanwhile, and its first command waits for that.
  change_phase(Phase::AwaitServer);
  continue_after_server();
}

void ClientSession::on_server_login_failed(ServerSession* ss, const std::string& err_payload) {
  Step step(*this);
  if (ss == pending_.get()) {
    finish_change_user(false, err_payload);
    return;
  }
  if (ss != current_) {
    take_server(ss);
    return;
  }
  const std::string addr = ss->server().address.str();
  take_server(ss);  // deleted here
  if (phase_ == Phase::AwaitServer && read_opening_ && !held_command_.empty()) {
    // A replica that cannot take a session (down before its checker saw
    // it): the read runs where writes do, and the client never knows.
    LOG_INFO("cs_id=%u: read server %s refused a session: the read goes to the primary", cs_id_, addr.c_str());
    read_opening_ = false;
    force_write_ = true;
    resume_held();
    return;
  }
  bool logging_in = phase_ == Phase::BackendLogin || phase_ == Phase::AwaitServer;
  if (phase_ == Phase::AwaitServer && end_if_unrestorable("its replacement could not log in")) return;
  if (reused_server_ && logging_in) {
    ErrPacket e;
    if (parse_err(err_payload, e) && e.code == er::ER_NET_READ_ERROR.code) {
      // The pooled connection had died (backend restart, wait_timeout): a
      // fresh one may well work, so this is not the client's error.
      LOG_DEBUG("cs_id=%u: pooled server session lost, connecting afresh", cs_id_);
      skip_pool_once_ = true;
      begin_backend_login(phase_);
      return;
    }
  }
  bump(counters_.backend_connect_failures);
  if (phase_ == Phase::BackendLogin) {
    send_packet(err_payload);
    close_after_flush("backend login failed");
    return;
  }
  if (phase_ != Phase::AwaitServer) return;
  seq_ = 1;
  send_packet(err_payload);
  if (held_command_.empty()) {  // a long command we cannot skip over
    close_after_flush("backend login failed");
    return;
  }
  held_command_.clear();
  change_phase(Phase::Ready);
  handle_input();
}

// A client that quits cleanly, idle and outside a transaction, leaves its
// server session to the worker's pool instead of closing it.
void ClientSession::pool_server_session() {
  if (multiplexed_ || mux_cap_ > 0) {  // its server sessions go back to the shared set, if it can let them go
    release_to_shared(true);
    return;
  }
  ServerSession* ss = current_;
  if (cfg_->server_pool_size <= 0 || !ss || servers_.size() != 1 || host_.draining() || in_trans_ ||
      phase_ != Phase::Ready || !ss->ready() ||
      ss->state() != ServerSession::State::KeepAliveClientSlave ||
      evbuffer_get_length(ss->conn()->input()) != 0 || evbuffer_get_length(ss->conn()->output()) != 0)
    return;
  host_.server_pool().put(take_server(ss), login_.cluster, size_t(cfg_->server_pool_size),
                          cfg_->server_pool_idle_s);
}

// ---- COM_CHANGE_USER: checked by the proxy, then a new backend login ----

void ClientSession::handle_change_user(const std::string& payload) {
  std::string error;
  seq_ = 1;
  cu_ = std::make_unique<ChangeUserAttempt>();
  if (!parse_change_user(payload, caps_, cu_->request, error)) {
    cu_.reset();
    send_error(er::ER_UNKNOWN_COM_ERROR, "Malformed COM_CHANGE_USER packet: " + error);
    return;
  }
  change_phase(Phase::AwaitChangeUserAuth);
  // As MariaDB does, the answer is checked against the handshake's scramble;
  // a client that answered for another method than the user's is asked
  // again, with a fresh nonce.  The current configuration: users may have changed.
  begin_auth(host_.config(), cu_->request.user, cu_->request.auth_plugin, cu_->request.auth_response);
}

void ClientSession::handle_change_user_auth() {
  std::string payload;
  if (read_auth_answer(payload)) auth_packet(payload);
}

void ClientSession::change_user_authenticated() {
  std::shared_ptr<const Config> cfg = std::move(auth_->cfg);
  auth_.reset();
  auto refuse = [&](const std::string& why) {
    LOG_INFO("cs_id=%u change user to '%s' denied: %s", cs_id_, cu_->request.user.c_str(), why.c_str());
    cu_.reset();
    change_phase(Phase::Ready);
    handle_input();
  };
  if (!conn_->tls() && needs_tls(*cfg, cu_->tenant, cu_->login)) {
    send_error(er::ER_ACCESS_DENIED_ERROR, "Access denied for user '" + cu_->request.user + "'@'" + peer_ip_ +
                                               "' (using password: YES)");
    refuse("that user must log in over TLS");
    return;
  }
  change_phase(Phase::ChangeUserLogin);
  cu_->cfg = cfg;
  start_change_user_login();
}

// The new login's backend connection.  Under max_server_connections it
// takes a place on the server's line like any other: a new one while there
// is room, else one of the session's own (whose state the new login ends
// anyway) or an idle one, switched to the new login (COM_CHANGE_USER), else
// it waits (queue_timeout_ms).
void ClientSession::start_change_user_login() {
  const Config& cfg = *cu_->cfg;
  const Cluster* cluster = cfg.find_cluster(cu_->login.cluster);
  const BackendServer* server = login_server(*cluster);
  uint8_t charset = cu_->request.charset ? uint8_t(cu_->request.charset) : charset_;
  HandshakeResponse hello = hello_;
  if (!cu_->request.attributes.empty()) hello.attributes = cu_->request.attributes;
  BackendLogin login = make_backend_login(cfg, cu_->login, cu_->hash1, cu_->password,
                                          cu_->sha256, cu_->request.database, charset, caps_, ext_caps_, hello,
                                          proxy_sessid_, cs_id_, peer_ip_ + ":" + std::to_string(peer_port_));
  const int cap = cluster->worker_share(host_.index(), host_.worker_count());
  if (cap > 0) {
    SharedServers& shared = host_.shared_servers();
    ServerLine& line = shared.line(host_.server_entry(*server), *server);
    line.set_cap(cap);
    if (!SharedServers::has_room(line, cap)) {
      SharedServers::Fit got;
      std::unique_ptr<ServerSession> idle = shared.take(
          line,
          [&](const ServerSession& ss) {
            return ss.cluster() == cluster->name && ss.can_serve(caps_, ext_caps_) ? SharedServers::Fit::Usable
                                                                                   : SharedServers::Fit::No;
          },
          true, got);
      if (!idle)
        for (const auto& own : servers_)
          if (own->ready() && own->line() == &line && own->state() == ServerSession::State::KeepAliveClientSlave) {
            idle = take_server(own.get());
            break;
          }
      if (idle) {
        stop_queue_wait();
        pending_ = std::move(idle);
        adopt_server(pending_.get());
        pending_->set_holder(cs_id_);
        pending_->reuse(login, true);  // heard as a login: on_server_ready
        return;
      }
      if (!shared.close_oldest(line)) {
        queue_for(line, *server, cap);
        return;
      }
    }
  }
  stop_queue_wait();
  pending_ = std::make_unique<ServerSession>(*this, host_, *server, cluster->name, host_.next_ss_id(),
                                             cfg.backend_connect_ms);
  adopt_server(pending_.get());
  pending_->set_holder(cs_id_);
  if (multiplexed_ || Config::multiplexes(*cluster, cu_->tenant)) pending_->share_statements();
  pending_->connect(login);
}

void ClientSession::finish_change_user(bool ok, const std::string& err_payload) {
  if (!ok) {
    if (pending_) take_server(pending_.get());
    send_packet(err_payload);
    cu_.reset();
    // Its own connection went to the new login (a full line): what it held
    // that cannot be carried is gone.
    if (servers_.empty() && end_if_unrestorable("its connection went to a COM_CHANGE_USER that failed")) return;
    change_phase(Phase::Ready);
    handle_input();
    return;
  }
  std::unique_ptr<ServerSession> fresh = std::move(pending_);
  release_all_servers();  // the old backend sessions end here
  servers_.push_back(std::move(fresh));
  current_ = servers_.back().get();
  cfg_ = cu_->cfg;
  login_ = cu_->login;
  login_text_ = cu_->request.user;
  tenant_ = cu_->tenant;
  hash1_ = cu_->hash1;
  password_ = cu_->password;
  sha256_ = cu_->sha256;
  db_ = cu_->request.database;
  if (cu_->request.charset) charset_ = uint8_t(cu_->request.charset);
  in_trans_ = false;
  autocommit_ = current_->login_status() & SERVER_STATUS_AUTOCOMMIT;
  note_routing();
  // A new login: the server's defaults, nothing left to carry, no statements.
  state_.reset(db_);
  stmts_.clear();
  running_stmt_ = nullptr;
  if (!current_->tracks_state()) state_.set_reason(SessionState::kUnknownState, true);
  identity_changed();
  send_ok();
  cu_.reset();
  change_phase(Phase::AwaitServer);
  continue_after_server();
}

}  // namespace myrelay
