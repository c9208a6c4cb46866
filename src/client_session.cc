// Client sessions: handshake, authentication and the command relay (see
// client_session.h).
#include "myrelay/client_session.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>

#include "myrelay/admin_commands.h"
#include "myrelay/log.h"
#include "myrelay/session_view.h"
#include "myrelay/shm_table.h"
#include "myrelay/proxy.h"
#include "myrelay/sql_recognizer.h"
#include "myrelay/worker.h"

namespace myrelay {

using namespace proto;

// A command up to this size is read whole before it is forwarded, so the
// proxy can look at it; longer ones (bulk INSERTs, long data) stream through.
static constexpr size_t kWholeCommandMax = 64 * 1024;
static constexpr size_t kMaxLoginPacket = 64 * 1024;
// The largest command buffer an idle session keeps for the next command.
static constexpr size_t kSpareCommandMax = 512;
// Relaying pauses while this much waits in the receiving side's output.
static constexpr size_t kOutputHighWater = 1024 * 1024;
static constexpr size_t kReadHighWater = 1024 * 1024;
static constexpr size_t kWriteLowWater = 256 * 1024;
// A closing session gets this long to flush its last packets.
static constexpr int kCloseFlushSeconds = 5;

const char* ClientSession::state_name(State s) {
  switch (s) {
    case State::Init: return "MCS_INIT";
    case State::ActiveReader: return "MCS_ACTIVE_READER";
    case State::KeepAlive: return "MCS_KEEP_ALIVE";
    case State::HalfClosed: return "MCS_HALF_CLOSED";
    case State::Closed: return "MCS_CLOSED";
  }
  return "MCS_UNKNOWN";
}

ClientSession::ClientSession(Worker& worker, int fd, const std::string& peer_ip,
                             uint16_t peer_port, uint32_t cs_id, uint64_t proxy_sessid,
                             shm::Slot* slot, uint32_t slot_index)
    : worker_(worker),
      proxy_(worker.proxy()),
      cfg_(worker.proxy().config()),
      peer_ip_(peer_ip),
      peer_port_(peer_port),
      cs_id_(cs_id),
      proxy_sessid_(proxy_sessid),
      slot_(slot),
      slot_index_(slot_index) {
  conn_ = std::make_unique<Connection>(worker_.base(), fd);
  created_us_ = last_active_us_ = view::now_us();
}

// Writes this session's record into its slot (DESIGN section 2): called at
// every change that SHOW PROXYSESSION or its ATTRIBUTE form can see.
void ClientSession::publish() {
  if (!slot_) return;  // a refused connection has no slot
  shm::SessionRecord& r = rec_;
  r = shm::SessionRecord{};
  if (state_ == State::Closed) {
    ShmTable::write_changes(slot_, r, written_);  // all zero, in_use = 0: the slot is free
    return;
  }
  r.in_use = 1;
  r.cs_id = cs_id_;
  r.proxy_sessid = proxy_sessid_;
  r.worker = worker_.index();
  r.tid = worker_.tid();
  set_field(r.cluster, login_.cluster);
  set_field(r.tenant, login_.tenant);
  set_field(r.user, login_.user);
  set_field(r.host_ip, peer_ip_);
  r.host_port = peer_port_;
  r.has_db = !db_.empty();
  set_field(r.db, db_);
  r.using_ssl = 0;
  r.privileged = tenant_ && tenant_->privileged;
  r.created_us = created_us_;
  set_activity(r);
  uint32_t n = 0;
  for (const ServerSession* ss : {server_.get(), pending_server_.get()}) {
    if (!ss || n >= shm::kMaxServerSessions) continue;
    shm::ServerSessionRecord& sr = r.servers[n++];
    sr.ss_id = ss->ss_id();
    sr.server_sessid = ss->server_sessid();
    set_field(sr.server_ip, ss->server().address.host);
    sr.server_port = ss->server().address.port;
    sr.role = ss->server().role == ServerRole::Primary ? 0 : 1;
    sr.created_us = ss->created_us();
    set_server_activity(sr, *ss);
  }
  r.svr_session_count = n;
  ShmTable::write_changes(slot_, r, written_);
}

// The fields a command changes as it starts and ends; publish() sets them
// with the rest, publish_activity() alone.
void ClientSession::set_activity(shm::SessionRecord& r) const {
  r.state = uint32_t(state_);
  r.in_trans = in_trans_;
  set_field(r.command, state_ == State::ActiveReader ? command_name(command_) : "Sleep");
  r.trans_count = trans_count_;
  r.queries = queries_;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.last_active_us = last_active_us_;
}

void ClientSession::set_server_activity(shm::ServerSessionRecord& sr, const ServerSession& ss) {
  sr.state = uint32_t(ss.state());
  sr.transact_count = ss.transact_count();
  sr.requests = ss.requests();
}

// The per-command part of publish(): a command starting or ending changes
// only counters, state and times, unless its server session changed too.
void ClientSession::publish_activity() {
  if (!slot_) return;
  shm::SessionRecord& r = rec_;
  const ServerSession* ss = server_.get();
  if (state_ == State::Closed || pending_server_ || !ss || r.svr_session_count != 1 ||
      r.servers[0].ss_id != ss->ss_id() || r.has_db != !db_.empty() || !field_equals(r.db, db_)) {
    publish();
    return;
  }
  set_activity(r);
  set_server_activity(r.servers[0], *ss);
  // Just the words of the fields those two set.
  using R = shm::SessionRecord;
  using S = shm::ServerSessionRecord;
  static constexpr ShmTable::WordRange kActivityWords[] = {
      ShmTable::words_of(offsetof(R, state), sizeof(R::state)),
      ShmTable::words_of(offsetof(R, in_trans), sizeof(R::in_trans)),
      ShmTable::words_of(offsetof(R, command),
                         offsetof(R, bytes_out) + sizeof(R::bytes_out) - offsetof(R, command)),
      ShmTable::words_of(offsetof(R, last_active_us), sizeof(R::last_active_us)),
      ShmTable::words_of(offsetof(R, servers) + offsetof(S, state), sizeof(S::state)),
      ShmTable::words_of(offsetof(R, servers) + offsetof(S, transact_count),
                         offsetof(S, requests) + sizeof(S::requests) - offsetof(S, transact_count)),
  };
  ShmTable::write_changes(slot_, r, written_, kActivityWords, std::size(kActivityWords));
}

ClientSession::~ClientSession() {
  if (state_ != State::Closed) close("session freed");
}

void ClientSession::start() {
  if (!conn_->ok()) {
    close("cannot set up the connection");
    return;
  }
  conn_->set_callbacks(on_client_read, on_client_write, on_client_event, this);
  conn_->set_read_high_water(kReadHighWater);
  conn_->set_write_low_water(kWriteLowWater);
  conn_->enable_read();

  handshake_timer_ = evtimer_new(worker_.base(), on_handshake_timeout, this);
  timeval tv{cfg_->handshake_ms / 1000, (cfg_->handshake_ms % 1000) * 1000};
  evtimer_add(handshake_timer_, &tv);

  scramble_ = make_scramble();
  BackendFacts facts = proxy_.backend_facts(cfg_->default_cluster);
  Handshake hs;
  hs.server_version = facts.known ? facts.server_version : cfg_->server_version;
  hs.connection_id = cs_id_;
  hs.scramble.assign(reinterpret_cast<const char*>(scramble_.data()), scramble_.size());
  // Offer only what the backend also has: responses are relayed unchanged.
  hs.capabilities =
      facts.known ? kProxyCapabilities & (facts.capabilities | CLIENT_LONG_PASSWORD) : kProxyCapabilities;
  hs.charset = facts.known && facts.charset ? facts.charset : 45;  // utf8mb4_general_ci
  hs.status = SERVER_STATUS_AUTOCOMMIT;
  caps_ = hs.capabilities;
  seq_ = 0;
  send_packet(build_handshake(hs));
  publish();
}

// ---- libevent callbacks ----

void ClientSession::on_client_read(Connection*, void* arg) {
  static_cast<ClientSession*>(arg)->handle_input();
}

void ClientSession::on_client_write(Connection* c, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  if (self->phase_ == Phase::Closing) {
    if (evbuffer_get_length(c->output()) == 0) self->close("closed after final packet");
    return;
  }
  if (self->blocked_on_client_) {
    self->blocked_on_client_ = false;
    self->pump_server_to_client();
  }
}

void ClientSession::on_client_event(Connection*, short what, int err, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  if (what & Connection::kTimeout) {
    self->close("client stopped reading");  // the only timeout: close_after_flush's
  } else if (what & Connection::kEof) {
    self->close("client closed the connection");
  } else {
    std::string why = std::string("client connection error: ") + evutil_socket_error_to_string(err);
    self->close(why.c_str());
  }
}

void ClientSession::on_handshake_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  LOG_INFO("cs_id=%u %s:%u did not finish its login within %d ms", self->cs_id_,
           self->peer_ip_.c_str(), self->peer_port_, self->cfg_->handshake_ms);
  self->close("handshake timeout");
}

void ClientSession::handle_input() {
  switch (phase_) {
    case Phase::AwaitHandshakeResponse:
      handle_handshake_response();
      break;
    case Phase::AwaitAuthSwitchResponse:
      handle_auth_switch_response();
      break;
    case Phase::Ready:
      process_commands();
      break;
    case Phase::InCommand:
      if (streaming_command_ || tracker_.awaiting_client_upload()) pump_client_to_server();
      // Anything else the client sends now waits for the response to end.
      break;
    case Phase::AwaitChangeUserAuth:
      handle_change_user_auth();
      break;
    case Phase::BackendLogin:
    case Phase::AwaitServer:
    case Phase::ChangeUserLogin:
    case Phase::Closing:
      break;
  }
}

// ---- login ----

void ClientSession::handle_handshake_response() {
  evbuffer* in = conn_->input();
  uint8_t first_seq = 0, last_seq = 0;
  std::string payload;
  ReadStatus st = read_packet(in, kMaxLoginPacket, first_seq, last_seq, payload);
  if (st == ReadStatus::Incomplete) return;
  if (st == ReadStatus::TooBig) {
    LOG_WARN("cs_id=%u %s:%u sent an oversized login packet", cs_id_, peer_ip_.c_str(), peer_port_);
    close("oversized login packet");
    return;
  }
  seq_ = uint8_t(last_seq + 1);
  if (!slot_) {
    send_error_and_close(1040, "08004", "Too many connections", "max_connections reached");
    return;
  }
  std::string error;
  if (first_seq != 1 || !parse_handshake_response(payload, hello_, error)) {
    LOG_WARN("cs_id=%u %s:%u sent a bad handshake response: %s", cs_id_, peer_ip_.c_str(),
             peer_port_, error.empty() ? "wrong sequence id" : error.c_str());
    bump(worker_.counters().errors);
    send_error_and_close(1043, "08S01", "Bad handshake", "bad handshake");
    return;
  }
  if (hello_.is_ssl_request) {
    send_error_and_close(1043, "08S01", "Bad handshake: myrelay does not offer SSL",
                         "client asked for SSL");
    return;
  }
  caps_ &= hello_.capabilities;
  charset_ = hello_.charset;
  db_ = (caps_ & CLIENT_CONNECT_WITH_DB) ? hello_.database : std::string();
  login_text_ = hello_.user;
  if (!hello_.auth_plugin.empty() && hello_.auth_plugin != kNativePasswordPlugin) {
    // The client wants another method: ask it for mysql_native_password.
    send_native_auth_switch();
    phase_ = Phase::AwaitAuthSwitchResponse;
    return;
  }
  authenticate(hello_.auth_response);
}

void ClientSession::send_native_auth_switch() {
  send_packet(build_auth_switch(
      kNativePasswordPlugin,
      std::string_view(reinterpret_cast<const char*>(scramble_.data()), scramble_.size())));
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
  if (read_auth_answer(payload)) authenticate(payload);
}

void ClientSession::deny_access(bool used_password) {
  bump(worker_.counters().logins_failed);
  LOG_INFO("cs_id=%u access denied for '%s' from %s:%u", cs_id_, login_text_.c_str(),
           peer_ip_.c_str(), peer_port_);
  send_error_and_close(1045, "28000",
                       "Access denied for user '" + login_text_ + "'@'" + peer_ip_ +
                           "' (using password: " + (used_password ? "YES" : "NO") + ")",
                       "access denied");
}

// Looks a login name up and checks a mysql_native_password answer against
// the configured hash; on success returns SHA1(pw) (or nothing for users
// without a password).
static bool check_user(const Config& cfg, const std::string& login_text,
                       const std::string& auth_response, const Scramble& scramble, LoginName& login,
                       const Tenant*& tenant, std::optional<Sha1Digest>& hash1) {
  std::string error;
  if (!parse_login_name(login_text, cfg.default_tenant, cfg.default_cluster, login, error))
    return false;
  tenant = cfg.find_tenant(login.tenant);
  if (!tenant || !cfg.find_cluster(login.cluster)) return false;
  const UserEntry* user = cfg.find_user(*tenant, login.user);
  if (!user) return false;
  if (!user->has_password) {
    hash1.reset();
    return auth_response.empty();
  }
  Sha1Digest h1{};
  if (!native_verify(reinterpret_cast<const uint8_t*>(auth_response.data()), auth_response.size(),
                     scramble.data(), scramble.size(), user->hash2, h1))
    return false;
  hash1 = h1;
  return true;
}

void ClientSession::authenticate(const std::string& auth_response) {
  if (!check_user(*cfg_, login_text_, auth_response, scramble_, login_, tenant_, hash1_)) {
    deny_access(!auth_response.empty());
    return;
  }
  begin_backend_login(Phase::BackendLogin);
}

static BackendLogin make_backend_login(const LoginName& login, const std::optional<Sha1Digest>& hash1,
                                       const std::string& db, uint8_t charset, uint32_t caps,
                                       const HandshakeResponse& hello, uint64_t proxy_sessid,
                                       uint32_t cs_id, const std::string& peer) {
  BackendLogin bl;
  bl.user = login.user;
  bl.hash1 = hash1;
  bl.database = db;
  bl.charset = charset;
  bl.client_caps = caps;
  bl.max_packet = hello.max_packet;
  bl.attributes = hello.attributes;
  // Lets a DBA map a backend thread to its proxy session.
  bl.attributes.emplace_back("_proxy_sessid", std::to_string(proxy_sessid));
  bl.attributes.emplace_back("_proxy_cs_id", std::to_string(cs_id));
  bl.attributes.emplace_back("_proxy_client", peer);
  return bl;
}

// Picks the cluster's servers in order, primaries first.
static std::vector<BackendServer> servers_in_order(const Cluster& c) {
  std::vector<BackendServer> v;
  for (auto& s : c.servers)
    if (s.role == ServerRole::Primary) v.push_back(s);
  for (auto& s : c.servers)
    if (s.role != ServerRole::Primary) v.push_back(s);
  return v;
}

void ClientSession::begin_backend_login(Phase phase) {
  phase_ = phase;
  const Cluster* cluster = cfg_->find_cluster(login_.cluster);
  if (!cluster || cluster->servers.empty()) {
    send_error_and_close(1049, "42000", "Unknown cluster '" + login_.cluster + "'", "unknown cluster");
    return;
  }
  BackendServer server = servers_in_order(*cluster).front();
  BackendLogin login = make_backend_login(login_, hash1_, db_, charset_, caps_, hello_, proxy_sessid_,
                                          cs_id_, peer_ip_ + ":" + std::to_string(peer_port_));
  bool may_reuse = cfg_->server_pool_size > 0 && !skip_pool_once_;
  skip_pool_once_ = false;
  if (may_reuse) {
    if (auto pooled = worker_.server_pool().take(cluster->name, server, caps_)) {
      server_ = std::move(pooled);
      server_->set_owner(*this);
      reused_server_ = true;
      server_->reuse(login);  // COM_CHANGE_USER: heard like a login
      return;
    }
  }
  reused_server_ = false;
  server_ = std::make_unique<ServerSession>(*this, proxy_, worker_.base(), server,
                                            proxy_.ids().next_ss_id(), cfg_->backend_connect_ms,
                                            cluster->name);
  server_->connect(login);
}

// A client that quits cleanly, idle and outside a transaction, leaves its
// server session to the worker's pool instead of closing it.
void ClientSession::pool_server_session() {
  if (cfg_->server_pool_size <= 0 || !server_ || worker_.draining() || in_trans_ || lost_transaction_ ||
      phase_ != Phase::Ready || !server_->conn() ||
      server_->state() != ServerSession::State::KeepAliveClientSlave ||
      evbuffer_get_length(server_->conn()->input()) != 0 ||
      evbuffer_get_length(server_->conn()->output()) != 0)
    return;
  worker_.server_pool().put(std::move(server_), login_.cluster, size_t(cfg_->server_pool_size),
                            cfg_->server_pool_idle_s);
}

void ClientSession::on_server_ready(ServerSession* ss) {
  if (ss == pending_server_.get()) {
    finish_change_user(true, std::string());
    return;
  }
  if (phase_ == Phase::BackendLogin) {
    if (handshake_timer_) {
      event_free(handshake_timer_);
      handshake_timer_ = nullptr;
    }
    LOG_DEBUG("cs_id=%u '%s' logged in from %s:%u (ss_id=%llu, backend thread %u)", cs_id_,
              login_text_.c_str(), peer_ip_.c_str(), peer_port_,
              (unsigned long long)ss->ss_id(), ss->server_sessid());
    in_trans_ = ss->login_status() & SERVER_STATUS_IN_TRANS;
    bump(reused_server_ ? worker_.counters().backend_reuses : worker_.counters().backend_connects);
    send_ok();
    phase_ = Phase::Ready;
    state_ = State::KeepAlive;
    arm_idle_timer();
    publish();
    process_commands();
    return;
  }
  if (phase_ == Phase::AwaitServer) {
    bump(reused_server_ ? worker_.counters().backend_reuses : worker_.counters().backend_connects);
    phase_ = Phase::Ready;
    if (!held_command_.empty()) {
      forward_command(std::move(held_command_));
      held_command_.clear();
    } else {
      process_commands();  // a long command still in the input
    }
  }
}

void ClientSession::on_server_login_failed(ServerSession* ss, const std::string& err_payload) {
  if (ss == pending_server_.get()) {
    finish_change_user(false, err_payload);
    return;
  }
  if (ss != server_.get()) return;
  server_.reset();
  if (reused_server_ && (phase_ == Phase::BackendLogin || phase_ == Phase::AwaitServer)) {
    ErrPacket e;
    if (parse_err(err_payload, e) && e.code == kErrBackendLost) {
      // The pooled connection had died (backend restart, wait_timeout): a
      // fresh one may well work, so this is not the client's error.
      LOG_DEBUG("cs_id=%u: pooled server session lost, connecting afresh", cs_id_);
      skip_pool_once_ = true;
      begin_backend_login(phase_);
      return;
    }
  }
  bump(worker_.counters().backend_connect_failures);
  if (phase_ == Phase::BackendLogin) {
    send_packet(err_payload);
    close_after_flush("backend login failed");
    return;
  }
  if (phase_ == Phase::AwaitServer) {
    seq_ = 1;
    send_packet(err_payload);
    if (held_command_.empty()) {  // a long command we cannot skip over
      close_after_flush("backend login failed");
      return;
    }
    held_command_.clear();
    phase_ = Phase::Ready;
    state_ = State::KeepAlive;
    process_commands();
  }
}

void ClientSession::send_ok(uint16_t status_extra) {
  OkPacket ok;
  ok.status = client_status() | status_extra;
  send_packet(build_ok(ok, caps_));
}

uint16_t ClientSession::client_status() const {
  uint16_t st = SERVER_STATUS_AUTOCOMMIT;
  if (server_) st = server_->login_status() & SERVER_STATUS_AUTOCOMMIT;
  if (in_trans_) st |= SERVER_STATUS_IN_TRANS;
  return st;
}

// ---- commands ----

// The idle timeout is one timer per session that checks, when it fires,
// how long the session has really been idle; re-arming a timeout at every
// command would cost two event operations per query.
void ClientSession::arm_idle_timer() {
  if (idle_timer_ || !conn_) return;
  idle_timer_ = evtimer_new(worker_.base(), on_idle_timer, this);
  timeval tv{cfg_->client_idle_s, 0};
  evtimer_add(idle_timer_, &tv);
}

void ClientSession::on_idle_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  int64_t limit_us = int64_t(self->cfg_->client_idle_s) * 1000000;
  int64_t idle_us = view::now_us() - self->last_active_us_;
  bool idle = self->state_ == State::KeepAlive;
  if (idle && idle_us >= limit_us) {
    LOG_INFO("cs_id=%u '%s' from %s:%u idle for %d s: closing", self->cs_id_,
             self->login_text_.c_str(), self->peer_ip_.c_str(), self->peer_port_,
             self->cfg_->client_idle_s);
    self->close("client idle timeout");
    return;
  }
  int64_t wait_us = idle ? limit_us - idle_us : limit_us;
  timeval tv{time_t(wait_us / 1000000), suseconds_t(wait_us % 1000000)};
  evtimer_add(self->idle_timer_, &tv);
}

void ClientSession::process_commands() {
  evbuffer* in = conn_->input();
  while (phase_ == Phase::Ready && !closed()) {
    size_t avail = evbuffer_get_length(in);
    if (avail < kHeaderLen) return;
    uint8_t hdr[kHeaderLen + ResponseTracker::kPeekBytes];
    evbuffer_copyout(in, hdr, kHeaderLen);
    PacketHeader h = parse_header(hdr);
    if (h.seq != 0 || h.length == 0) {
      LOG_WARN("cs_id=%u %s:%u sent a malformed command packet (length %u, sequence id %u); closing",
               cs_id_, peer_ip_.c_str(), peer_port_, h.length, h.seq);
      bump(worker_.counters().errors);
      close("malformed command packet");
      return;
    }
    if (h.length < kMaxChunk && h.length <= kWholeCommandMax) {
      if (avail < kHeaderLen + h.length) return;
      uint8_t first_seq = 0, last_seq = 0;
      // Reuses the last command's allocation; a command handled further down
      // this call (after a quick reply) finds none and makes its own.
      std::string payload;
      payload.swap(spare_command_);
      read_packet(in, kWholeCommandMax, first_seq, last_seq, payload);
      handle_command(std::move(payload));
      if (payload.capacity() <= kSpareCommandMax && payload.capacity() > spare_command_.capacity()) {
        payload.clear();
        spare_command_.swap(payload);
      }
      continue;
    }
    if (h.length > cfg_->max_packet_size) {
      LOG_WARN("cs_id=%u sent a %u-byte packet, over max_packet_size; closing", cs_id_, h.length);
      send_error_and_close(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes",
                           "oversized packet");
      return;
    }
    if (avail < kHeaderLen + ResponseTracker::kPeekBytes) return;
    evbuffer_copyout(in, hdr, sizeof(hdr));
    start_streamed_command(hdr[kHeaderLen], hdr + kHeaderLen, ResponseTracker::kPeekBytes);
  }
}

void ClientSession::handle_command(std::string&& payload) {
  uint8_t cmd = uint8_t(payload[0]);
  switch (cmd) {
    case COM_QUIT:
      pool_server_session();
      close("client quit");
      return;
    case COM_CHANGE_USER:
      handle_change_user(payload);
      return;
    case COM_BINLOG_DUMP:
    case COM_BINLOG_DUMP_GTID:
    case COM_REGISTER_SLAVE:
    case COM_TABLE_DUMP:
    case COM_CONNECT_OUT:
    case COM_CONNECT:
    case COM_DAEMON:
    case COM_DELAYED_INSERT:
    case COM_TIME:
    case COM_SLEEP:
      seq_ = 1;
      send_error(1047, "08S01", std::string("Unknown command: ") + command_name(cmd) +
                                    " is not supported through myrelay");
      return;
    default:
      break;
  }
  if (cmd > COM_RESET_CONNECTION) {
    seq_ = 1;
    send_error(1047, "08S01", "Unknown command");
    return;
  }
  if (lost_transaction_) {
    lost_transaction_ = false;
    seq_ = 1;
    send_error(kErrBackendLost, "08S01",
               "Lost connection to the backend server during an open transaction; the "
               "transaction was rolled back");
    return;
  }
  if (cmd == COM_QUERY && run_admin_command(std::string_view(payload).substr(1))) return;
  if (cmd == COM_PROCESS_KILL && payload.size() >= 5) {
    // COM_PROCESS_KILL carries the id; it means KILL CONNECTION id.
    uint32_t id = uint32_t(uint8_t(payload[1])) | uint32_t(uint8_t(payload[2])) << 8 |
                  uint32_t(uint8_t(payload[3])) << 16 | uint32_t(uint8_t(payload[4])) << 24;
    run_admin_command("KILL CONNECTION " + std::to_string(id));
    return;
  }
  use_db_.clear();
  if (cmd == COM_QUERY) sql::parse_use(std::string_view(payload).substr(1), use_db_);
  if (cmd == COM_INIT_DB) use_db_ = payload.substr(1);
  if (!ensure_server()) {
    held_command_ = std::move(payload);
    return;
  }
  forward_command(std::move(payload));
}

bool ClientSession::ensure_server() {
  if (server_) return true;
  // The server session was lost or killed while idle: open a new one, with
  // the session's current database, before the command goes on.
  state_ = State::ActiveReader;
  begin_backend_login(Phase::AwaitServer);
  return false;
}

void ClientSession::forward_command(std::string&& payload) {
  command_ = uint8_t(payload[0]);
  state_ = State::ActiveReader;
  server_->set_state(ServerSession::State::Active);
  server_->count_request();
  ++queries_;
  bytes_in_ += payload.size() + kHeaderLen;
  bump(worker_.counters().queries);
  bump(worker_.counters().bytes_from_clients, payload.size() + kHeaderLen);
  last_active_us_ = worker_.loop_time_us();
  publish_activity();
  tracker_.start(command_, reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), caps_);
  down_ = Relay{};
  last_down_seq_ = 0;
  if (payload.size() < kMaxChunk) {  // always, for a command read whole
    uint8_t hdr[kHeaderLen];
    write_header(hdr, uint32_t(payload.size()), 0);
    iovec iov[2] = {{hdr, kHeaderLen}, {const_cast<char*>(payload.data()), payload.size()}};
    server_->conn()->send(iov, 2);
  } else {
    frame_packet(server_->conn()->output(), 0, payload);
    server_->conn()->flush();
  }
  if (!ResponseTracker::expects_response(command_)) {
    complete_command();
    return;
  }
  phase_ = Phase::InCommand;
  pump_server_to_client();  // nothing yet, unless the backend was quick
}

void ClientSession::start_streamed_command(uint8_t command, const uint8_t* head, size_t head_len) {
  switch (command) {
    case COM_QUERY:
    case COM_STMT_PREPARE:
    case COM_STMT_EXECUTE:
    case COM_STMT_SEND_LONG_DATA:
      break;
    default:
      LOG_WARN("cs_id=%u sent a %s command longer than %zu bytes; closing", cs_id_,
               command_name(command), kWholeCommandMax);
      send_error_and_close(1047, "08S01", "Malformed packet", "malformed long command");
      return;
  }
  if (lost_transaction_) {
    // The long command cannot be skipped; the connection must go.
    send_error_and_close(kErrBackendLost, "08S01",
                         "Lost connection to the backend server during an open transaction",
                         "backend lost in transaction");
    return;
  }
  if (!ensure_server()) return;  // the command stays in the input meanwhile
  command_ = command;
  use_db_.clear();
  state_ = State::ActiveReader;
  server_->set_state(ServerSession::State::Active);
  server_->count_request();
  ++queries_;
  bump(worker_.counters().queries);
  last_active_us_ = worker_.loop_time_us();
  publish_activity();
  tracker_.start(command, head, head_len, caps_);
  down_ = Relay{};
  up_ = Relay{};
  last_down_seq_ = 0;
  streaming_command_ = true;
  phase_ = Phase::InCommand;
  pump_client_to_server();
}

void ClientSession::complete_command() {
  if (tracker_.have_status()) {
    bool now_in_trans = tracker_.last_status() & SERVER_STATUS_IN_TRANS;
    if (now_in_trans && !in_trans_) {
      ++trans_count_;
      if (server_) server_->count_transaction();
    }
    in_trans_ = now_in_trans;
  }
  if (!use_db_.empty() && !tracker_.ended_with_error()) db_ = use_db_;
  use_db_.clear();
  streaming_command_ = false;
  phase_ = Phase::Ready;
  state_ = State::KeepAlive;
  if (server_) server_->set_state(ServerSession::State::KeepAliveClientSlave);
  last_active_us_ = worker_.loop_time_us();
  publish_activity();
  if (worker_.draining() && !in_trans_) {
    close_after_flush("proxy shutting down");
    return;
  }
  process_commands();
}

void ClientSession::drain() {
  bool idle = phase_ == Phase::Ready || phase_ == Phase::AwaitHandshakeResponse ||
              phase_ == Phase::AwaitAuthSwitchResponse;
  if (idle && !in_trans_) close_after_flush("proxy shutting down");
}

// Relays the backend's response to the client packet by packet, as far as it
// has arrived, and notices where it ends.
void ClientSession::pump_server_to_client() {
  if (phase_ != Phase::InCommand || !server_ || tracker_.awaiting_client_upload()) return;
  evbuffer* in = server_->conn()->input();
  evbuffer* out = conn_->output();
  size_t avail = evbuffer_get_length(in);
  size_t out_len = evbuffer_get_length(out);
  size_t off = 0;
  BufferPeeker peek(in);
  ResponseTracker::Event outcome = ResponseTracker::Event::Continue;
  for (;;) {
    if (down_.chunk_left > 0) {
      size_t n = std::min<uint64_t>(down_.chunk_left, avail - off);
      off += n;
      down_.chunk_left -= n;
      if (down_.chunk_left > 0) break;
    }
    if (down_.in_packet && !down_.more_chunks) {  // a logical packet is complete
      down_.in_packet = false;
      if (down_.pending != ResponseTracker::Event::Continue) {
        outcome = down_.pending;
        break;
      }
    }
    if (out_len + off >= kOutputHighWater) {
      blocked_on_client_ = true;
      break;
    }
    if (avail - off < kHeaderLen) break;
    uint8_t buf[kHeaderLen + ResponseTracker::kPeekBytes];
    PacketHeader h = parse_header(peek.at(off, kHeaderLen, buf));
    if (down_.in_packet) {  // the next chunk of a long packet
      down_.chunk_left = kHeaderLen + h.length;
      down_.more_chunks = h.length == kMaxChunk;
      last_down_seq_ = h.seq;
      continue;
    }
    size_t need = std::min<size_t>(h.length, ResponseTracker::kPeekBytes);
    if (avail - off < kHeaderLen + need) break;
    const uint8_t* packet = peek.at(off, kHeaderLen + need, buf);
    ResponseTracker::Event ev =
        need && tracker_.is_plain_row(packet[kHeaderLen], h.length)
            ? ResponseTracker::Event::Continue
            : tracker_.on_server_packet(packet + kHeaderLen, need, h.length);
    if (ev == ResponseTracker::Event::Malformed) {
      LOG_WARN("cs_id=%u ss_id=%llu: unexpected packet (0x%02x, %u bytes) in the response to %s; closing",
               cs_id_, (unsigned long long)server_->ss_id(), need ? packet[kHeaderLen] : 0, h.length,
               command_name(command_));
      if (off) evbuffer_remove_buffer(in, out, off);
      bump(worker_.counters().errors);
      close_after_flush("malformed response from backend");
      return;
    }
    down_.in_packet = true;
    down_.pending = ev;
    down_.chunk_left = kHeaderLen + h.length;
    down_.more_chunks = h.length == kMaxChunk;
    last_down_seq_ = h.seq;
  }
  if (off) {
    conn_->send_from(in, off);
    bytes_out_ += off;
    bump(worker_.counters().bytes_to_clients, off);
  }
  if (outcome == ResponseTracker::Event::Done) {
    if (streaming_command_) {
      // The backend answered before the whole command arrived (it refused
      // it); the rest of the command cannot be told apart from new ones.
      close_after_flush("backend answered a command still being sent");
      return;
    }
    complete_command();
  } else if (outcome == ResponseTracker::Event::LocalInfile) {
    up_ = Relay{};
    pump_client_to_server();
  }
}

// Relays client packets to the backend: the rest of a long command, or the
// file of a LOAD DATA LOCAL INFILE up to its empty end packet.
void ClientSession::pump_client_to_server() {
  if (!server_ || !(streaming_command_ || tracker_.awaiting_client_upload())) return;
  evbuffer* in = conn_->input();
  evbuffer* out = server_->conn()->output();
  size_t avail = evbuffer_get_length(in);
  size_t out_len = evbuffer_get_length(out);
  size_t off = 0;
  BufferPeeker peek(in);
  bool packet_done = false;
  for (;;) {
    if (up_.chunk_left > 0) {
      size_t n = std::min<uint64_t>(up_.chunk_left, avail - off);
      off += n;
      up_.chunk_left -= n;
      if (up_.chunk_left > 0) break;
    }
    if (up_.in_packet && !up_.more_chunks) {
      up_.in_packet = false;
      packet_done = true;
      break;
    }
    if (out_len + off >= kOutputHighWater) {
      blocked_on_server_ = true;
      break;
    }
    if (avail - off < kHeaderLen) break;
    uint8_t hdr[kHeaderLen];
    peek.copy(off, hdr, kHeaderLen);
    PacketHeader h = parse_header(hdr);
    if (!up_.in_packet) {
      up_.in_packet = true;
      up_.packet_len = 0;
    }
    up_.packet_len += h.length;
    if (up_.packet_len > cfg_->max_packet_size) {
      LOG_WARN("cs_id=%u sent a packet over max_packet_size (%llu bytes); closing", cs_id_,
               (unsigned long long)cfg_->max_packet_size);
      if (off) evbuffer_remove_buffer(in, out, off);
      send_error_and_close(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes",
                           "oversized packet");
      return;
    }
    up_.chunk_left = kHeaderLen + h.length;
    up_.more_chunks = h.length == kMaxChunk;
  }
  if (off) {
    server_->conn()->send_from(in, off);
    bytes_in_ += off;
    bump(worker_.counters().bytes_from_clients, off);
  }
  if (!packet_done) return;
  if (streaming_command_) {
    streaming_command_ = false;
    if (!ResponseTracker::expects_response(command_)) {
      complete_command();
      return;
    }
    pump_server_to_client();
    return;
  }
  // A LOAD DATA upload packet; the empty one ends the file.
  if (up_.packet_len == 0) {
    tracker_.on_client_infile_packet(0);
    pump_server_to_client();
  } else {
    up_ = Relay{};
    pump_client_to_server();
  }
}

void ClientSession::on_server_readable(ServerSession* ss) {
  if (ss != server_.get()) return;
  if (phase_ == Phase::InCommand) {
    pump_server_to_client();
    return;
  }
  // Nothing was asked: the backend is talking out of turn (it usually sends
  // an error just before it closes a connection it killed).
  evbuffer* in = ss->conn()->input();
  uint8_t first_seq, last_seq;
  std::string payload;
  if (read_packet(in, kMaxLoginPacket, first_seq, last_seq, payload) == ReadStatus::Complete) {
    ErrPacket e;
    if (parse_err(payload, e))
      LOG_INFO("cs_id=%u ss_id=%llu: backend says %u (%s) %s", cs_id_,
               (unsigned long long)ss->ss_id(), e.code, e.sql_state.c_str(), e.message.c_str());
    drop_server("backend sent an unsolicited packet");
  }
}

void ClientSession::on_server_drained(ServerSession* ss) {
  if (ss != server_.get() || !blocked_on_server_) return;
  blocked_on_server_ = false;
  pump_client_to_server();
}

void ClientSession::drop_server(const char* why) {
  if (!server_) return;
  LOG_INFO("cs_id=%u ss_id=%llu to %s closed: %s", cs_id_, (unsigned long long)server_->ss_id(),
           server_->server().address.str().c_str(), why);
  if (in_trans_) {
    lost_transaction_ = true;
    in_trans_ = false;
  }
  release_server(server_);
  publish();
}

BackendLogin ClientSession::backend_login() const {
  return make_backend_login(login_, hash1_, db_, charset_, caps_, hello_, proxy_sessid_, cs_id_,
                            peer_ip_ + ":" + std::to_string(peer_port_));
}

void ClientSession::release_server(std::unique_ptr<ServerSession>& ss) {
  if (!ss) return;
  if (ss->state() == ServerSession::State::Active && ss->server_sessid() != 0) {
    const Cluster* cluster = cfg_->find_cluster(login_.cluster);
    worker_.start_backend_kill(ss->server(), cluster ? cluster->name : login_.cluster,
                               backend_login(), ss->server_sessid(), false);
  }
  ss.reset();
}

// ---- kills (requests arrive through the worker's control pipe) ----

void ClientSession::kill(const std::string& by) {
  LOG_INFO("cs_id=%u '%s' from %s:%u killed (%s)", cs_id_, login_text_.c_str(), peer_ip_.c_str(),
           peer_port_, by.c_str());
  close(("killed: " + by).c_str());
}

bool ClientSession::kill_server_session(uint64_t ss_id, const std::string& by) {
  if (!server_ || server_->ss_id() != ss_id) {
    LOG_INFO("cs_id=%u: kill of ss_id=%llu ignored: no such server session any more", cs_id_,
             (unsigned long long)ss_id);
    return false;
  }
  LOG_INFO("cs_id=%u ss_id=%llu killed (%s)", cs_id_, (unsigned long long)ss_id, by.c_str());
  if (phase_ == Phase::BackendLogin || phase_ == Phase::AwaitServer || phase_ == Phase::ChangeUserLogin) {
    // Still logging in: there is nothing to go on with.
    close(("server session killed during login: " + by).c_str());
    return true;
  }
  if (phase_ == Phase::InCommand) {
    // The client waits for an answer that will not come: tell it, and end
    // only the server session; the next statement opens a new one.
    bool clean = !down_.in_packet && !streaming_command_ && !tracker_.awaiting_client_upload();
    release_server(server_);
    if (!clean) {
      close_after_flush("server session killed in the middle of a packet");
      return true;
    }
    seq_ = uint8_t(last_down_seq_ + 1);
    send_error(1927, "70100", "Connection was killed");
    if (in_trans_) {
      in_trans_ = false;
      lost_transaction_ = true;
    }
    streaming_command_ = false;
    phase_ = Phase::Ready;
    state_ = State::KeepAlive;
    publish();
    process_commands();
    return true;
  }
  drop_server(("killed: " + by).c_str());
  lost_transaction_ = false;  // an explicit kill: the next statement simply goes on
  return true;
}

void ClientSession::kill_query(const std::string& by) {
  if (!server_ || server_->state() != ServerSession::State::Active) {
    LOG_DEBUG("cs_id=%u: KILL QUERY (%s) found no running statement", cs_id_, by.c_str());
    return;
  }
  LOG_INFO("cs_id=%u: KILL QUERY of backend thread %u (%s)", cs_id_, server_->server_sessid(), by.c_str());
  const Cluster* cluster = cfg_->find_cluster(login_.cluster);
  worker_.start_backend_kill(server_->server(), cluster ? cluster->name : login_.cluster,
                             backend_login(), server_->server_sessid(), true);
}

bool ClientSession::run_admin_command(std::string_view sql_text) {
  sql::AdminStatement st = sql::parse_admin(sql_text);
  if (st.kind == sql::AdminStatement::Kind::None) return false;
  command_ = COM_QUERY;
  state_ = State::ActiveReader;  // as the session sees itself in SHOW PROXYSESSION
  ++queries_;
  bump(worker_.counters().queries);
  last_active_us_ = view::now_us();
  publish();
  admin::Caller caller;
  caller.cs_id = cs_id_;
  caller.tenant = login_.tenant;
  caller.user = login_.user;
  caller.privileged = tenant_ && tenant_->privileged;
  std::string out;
  admin::After after = admin::execute(st, caller, proxy_, caps_, out);
  evbuffer_add(conn_->output(), out.data(), out.size());
  conn_->flush();
  bytes_out_ += out.size();
  bytes_in_ += sql_text.size() + kHeaderLen + 1;
  bump(worker_.counters().bytes_to_clients, out.size());
  bump(worker_.counters().bytes_from_clients, sql_text.size() + kHeaderLen + 1);
  if (after == admin::After::CloseSession) {
    LOG_INFO("cs_id=%u '%s' killed itself", cs_id_, login_text_.c_str());
    close_after_flush("killed itself");
    return true;
  }
  state_ = State::KeepAlive;
  publish();
  return true;
}

void ClientSession::on_server_lost(ServerSession* ss, const std::string& why) {
  if (ss == pending_server_.get()) {
    finish_change_user(false, build_err(kErrBackendLost, "08S01", "Lost connection to backend server"));
    return;
  }
  if (ss != server_.get()) return;
  std::string addr = ss->server().address.str();
  if (phase_ == Phase::InCommand) {
    // Relay what the backend still sent (often the error saying why it
    // closed), then tell the client unless a packet was cut in half.
    pump_server_to_client();
    if (closed() || phase_ != Phase::InCommand) {
      if (!closed()) drop_server(why.c_str());
      return;
    }
    LOG_WARN("cs_id=%u lost backend %s during %s: %s", cs_id_, addr.c_str(),
             command_name(command_), why.c_str());
    bump(worker_.counters().errors);
    server_.reset();
    if (!down_.in_packet && !streaming_command_) {
      seq_ = uint8_t(last_down_seq_ + 1);
      send_packet(build_err(kErrBackendLost, "08S01",
                            "Lost connection to backend server " + addr + " during query"));
    }
    close_after_flush("backend connection lost during a command");
    return;
  }
  drop_server(("backend closed the connection: " + why).c_str());
}

// ---- COM_CHANGE_USER: checked by the proxy, then a new backend login ----

void ClientSession::handle_change_user(const std::string& payload) {
  std::string error;
  state_ = State::ActiveReader;
  if (!parse_change_user(payload, caps_, change_user_, error)) {
    seq_ = 1;
    send_error(1047, "08S01", "Malformed COM_CHANGE_USER packet: " + error);
    state_ = State::KeepAlive;
    return;
  }
  // As MariaDB does, the answer is checked against the handshake's scramble;
  // a client that answered for another method is asked again for
  // mysql_native_password with that same scramble.
  seq_ = 1;
  if (!change_user_.auth_plugin.empty() && change_user_.auth_plugin != kNativePasswordPlugin) {
    send_native_auth_switch();
    phase_ = Phase::AwaitChangeUserAuth;
    return;
  }
  check_change_user(change_user_.auth_response);
}

void ClientSession::handle_change_user_auth() {
  std::string payload;
  if (read_auth_answer(payload)) check_change_user(payload);
}

void ClientSession::check_change_user(const std::string& payload) {
  std::shared_ptr<const Config> cfg = proxy_.config();  // the current one: users may have changed
  if (!check_user(*cfg, change_user_.user, payload, scramble_, change_user_login_,
                  change_user_tenant_, change_user_hash1_)) {
    LOG_INFO("cs_id=%u change user to '%s' denied", cs_id_, change_user_.user.c_str());
    // As MySQL does, the session stays, logged in as before.
    send_error(1045, "28000",
               "Access denied for user '" + change_user_.user + "'@'" + peer_ip_ +
                   "' (using password: " + (payload.empty() ? "NO" : "YES") + ")");
    phase_ = Phase::Ready;
    state_ = State::KeepAlive;
    process_commands();
    return;
  }
  const Cluster* cluster = cfg->find_cluster(change_user_login_.cluster);
  phase_ = Phase::ChangeUserLogin;
  cfg_pending_ = cfg;
  uint8_t charset = change_user_.charset ? uint8_t(change_user_.charset) : charset_;
  HandshakeResponse hello = hello_;
  if (!change_user_.attributes.empty()) hello.attributes = change_user_.attributes;
  pending_server_ = std::make_unique<ServerSession>(
      *this, proxy_, worker_.base(), servers_in_order(*cluster).front(), proxy_.ids().next_ss_id(),
      cfg->backend_connect_ms, cluster->name);
  pending_server_->connect(make_backend_login(change_user_login_, change_user_hash1_,
                                              change_user_.database, charset, caps_, hello,
                                              proxy_sessid_, cs_id_,
                                              peer_ip_ + ":" + std::to_string(peer_port_)));
}

void ClientSession::finish_change_user(bool ok, const std::string& err_payload) {
  if (!ok) {
    pending_server_.reset();
    send_packet(err_payload);
  } else {
    server_ = std::move(pending_server_);  // the old backend session ends here
    cfg_ = cfg_pending_;
    login_ = change_user_login_;
    login_text_ = change_user_.user;
    tenant_ = change_user_tenant_;
    hash1_ = change_user_hash1_;
    db_ = change_user_.database;
    if (change_user_.charset) charset_ = uint8_t(change_user_.charset);
    in_trans_ = false;
    lost_transaction_ = false;
    send_ok();
  }
  cfg_pending_.reset();
  phase_ = Phase::Ready;
  state_ = State::KeepAlive;
  process_commands();
}

// ---- output and closing ----

void ClientSession::send_packet(const std::string& payload) {
  if (!conn_) return;
  seq_ = frame_packet(conn_->output(), seq_, payload);
  conn_->flush();
}

void ClientSession::send_error(uint16_t code, const char* sql_state, const std::string& message) {
  send_packet(build_err(code, sql_state, message));
}

void ClientSession::send_error_and_close(uint16_t code, const char* sql_state,
                                         const std::string& message, const char* why) {
  send_error(code, sql_state, message);
  close_after_flush(why);
}

void ClientSession::close_after_flush(const char* why) {
  if (closed()) return;
  LOG_DEBUG("cs_id=%u closing: %s", cs_id_, why);
  phase_ = Phase::Closing;
  state_ = State::HalfClosed;
  pending_server_.reset();
  release_server(server_);
  publish();
  if (!conn_ || evbuffer_get_length(conn_->output()) == 0) {
    close(why);
    return;
  }
  // on_client_write closes once the output is empty; a client that stops
  // reading gets kCloseFlushSeconds without progress.
  conn_->disable_read();
  conn_->set_write_low_water(0);
  conn_->set_write_timeout(kCloseFlushSeconds);
  conn_->flush();
}

void ClientSession::close(const char* why) {
  if (state_ == State::Closed) return;
  LOG_DEBUG("cs_id=%u %s:%u closed: %s", cs_id_, peer_ip_.c_str(), peer_port_, why);
  state_ = State::Closed;
  phase_ = Phase::Closing;
  pending_server_.reset();
  release_server(server_);
  publish();  // frees the slot for readers before the worker reuses it
  if (handshake_timer_) {
    event_free(handshake_timer_);
    handshake_timer_ = nullptr;
  }
  if (idle_timer_) {
    event_free(idle_timer_);
    idle_timer_ = nullptr;
  }
  conn_.reset();
  worker_.session_closed(this);
}

}  // namespace myrelay
