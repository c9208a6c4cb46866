// A server session's commands and the relay of their responses (see
// server_session.h); the login is in server_login.cc.
#include "session/server_session.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <event2/buffer.h>
#include <sys/socket.h>

#include <cstring>
#include <limits>

#include "control/shm_table.h"
#include "routing/shared_servers.h"
#include "service/log.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

static_assert(PacketRelay::kPeekBytes == ResponseTracker::kPeekBytes, "the tracker sees what the relay shows");

// Relaying pauses while this much waits in the receiving side's output.
static constexpr size_t kOutputHighWater = 1024 * 1024;
// A response the proxy collects for itself (a side connection's KILL) is
// small; one this big is not an answer to what the proxy asked.
static constexpr size_t kMaxCollected = 16 * 1024 * 1024;
static constexpr size_t kMaxUnsolicited = 64 * 1024;
// A held packet's buffer bigger than this (a long message) is not kept.
static constexpr size_t kHeldBufferKeep = 4096;

const char* ServerSession::state_name(State s) {
  switch (s) {
    case State::Init: return "MSS_INIT";
    case State::Active: return "MSS_ACTIVE";
    case State::KeepAliveClientSlave: return "MSS_KA_CLIENT_SLAVE";
    case State::KeepAliveShared: return "MSS_KA_SHARED";
    case State::Closed: return "MSS_CLOSED";
  }
  return "MSS_UNKNOWN";
}

ServerSession::ServerSession(ServerSessionOwner& owner, BackendHost& host, const BackendServer& server,
                             std::string cluster, uint64_t ss_id, int connect_timeout_ms)
    : owner_(&owner),
      host_(host),
      counters_(host.counters()),
      server_(server),
      cluster_(std::move(cluster)),
      ss_id_(ss_id),
      connect_timeout_ms_(connect_timeout_ms),
      created_us_(host.loop_time_us()) {}

ServerSession::~ServerSession() {
  if (destroyed_) *destroyed_ = true;
  close();
  if (health_) health_->server_sessions.fetch_sub(1, std::memory_order_relaxed);
  if (line_) line_->closed();
}

void ServerSession::attach_line(ServerLine& line) {
  if (line_) return;
  line_ = &line;
  line.opened();
}

void ServerSession::attach_health(shm::ServerEntry& entry) {
  if (health_) return;
  health_ = &entry;
  entry.server_sessions.fetch_add(1, std::memory_order_relaxed);
}

void ServerSession::change_state(State s) {
  if (s == state_) return;
  state_ = s;
  owner_->on_server_state_changed(this);
}

void ServerSession::close() {
  stop_login_timer();
  if (conn_) {
    if (phase_ == Phase::Ready) {
      // COM_QUIT, so the backend ends the session cleanly instead of counting
      // an aborted connection.  Five bytes into an idle socket never block.
      static const uint8_t quit[5] = {1, 0, 0, 0, COM_QUIT};
      int fd = conn_->fd();
      if (fd >= 0 && evbuffer_get_length(conn_->output()) == 0) {
        ssize_t n = ::send(fd, quit, sizeof(quit), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
      }
    }
    conn_.reset();
  }
  in_command_ = false;
  streaming_ = false;
  client_ = nullptr;
  state_ = State::Closed;  // the owner is ending it: nobody to tell
}

void ServerSession::on_read(Connection*, void* arg) {
  auto* self = static_cast<ServerSession*>(arg);
  OwnerEvent event(self->owner_);
  if (self->phase_ != Phase::Ready)
    self->handle_login_packet();
  else if (self->in_command_ && !self->client_)
    self->collect_response();
  else if (self->in_command_)
    self->relay_response();
  else
    self->handle_unsolicited();
}

void ServerSession::on_write(Connection*, void* arg) {
  auto* self = static_cast<ServerSession*>(arg);
  OwnerEvent event(self->owner_);
  if (self->phase_ == Phase::Ready && self->wants_upload()) self->owner_->on_upload_possible(self);
}

void ServerSession::on_event(Connection*, short what, int err, void* arg) {
  auto* self = static_cast<ServerSession*>(arg);
  OwnerEvent event(self->owner_);
  if (what & Connection::kConnected) {  // the connection set TCP_NODELAY
    self->phase_ = Phase::AwaitHandshake;
    return;
  }
  if (what & Connection::kTlsReady) {
    if (self->phase_ == Phase::TlsHandshake) self->tls_ready();
    return;
  }
  std::string why = (what & Connection::kEof) ? "closed by the backend" : evutil_socket_error_to_string(err);
  if (self->phase_ == Phase::TlsHandshake) {
    // The certificate's check says more than OpenSSL's error line.
    const SSL* ssl = self->conn_ ? self->conn_->ssl() : nullptr;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    self->fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                     "TLS with backend server " + self->server_.address.str() + " failed: " +
                         (self->conn_ && !self->conn_->tls_error().empty() ? self->conn_->tls_error() : why) +
                         (v != X509_V_OK ? std::string(" (") + X509_verify_cert_error_string(v) + ")" : ""));
    return;
  }
  if (self->phase_ == Phase::Ready) {
    if (self->in_command_) {
      // What the backend sent before it went is relayed first: often the
      // error that says why it closed, or even the whole response.
      bool destroyed = false;
      self->destroyed_ = &destroyed;
      if (self->client_)
        self->relay_response();
      else
        self->collect_response();
      if (destroyed) return;
      self->destroyed_ = nullptr;
      if (self->state_ == State::Closed) return;  // lost in the meantime
    }
    self->lose(why);
    return;
  }
  const std::string addr = self->server_.address.str();
  if (self->phase_ == Phase::Connecting)
    self->fail_login(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE, "Can't connect to backend server " + addr + " (" + why + ")");
  else
    self->fail_login(er::ER_NET_READ_ERROR, "Lost connection to backend server " + addr + " during login (" + why + ")");
}

void ServerSession::send_to_backend(const std::string& payload) {
  seq_ = frame_packet(conn_->output(), seq_, payload);
  conn_->flush();
}

void ServerSession::start_command(uint8_t command, const uint8_t* head, size_t head_len, Connection* client) {
  in_command_ = true;
  client_ = client;
  response_bytes_ = 0;
  blocked_on_client_ = false;
  held_ = Held::None;
  down_.reset();
  if (client) ++requests_;  // the client's commands, not the proxy's own
  tracker_.start(command, head, head_len, caps_, ext_caps_);
  change_state(State::Active);
}

void ServerSession::send_quiet(const std::string& payload) {
  if (!ready() || in_command_) return;
  frame_packet(conn_->output(), 0, payload);
  conn_->flush();
}

void ServerSession::run_internal(std::vector<std::string> payloads) {
  if (!internal_) internal_ = std::make_unique<InternalRun>();
  internal_->commands = std::move(payloads);
  internal_->next = 0;
  internal_->results.assign(internal_->commands.size(), {});
  // All at once: the server answers them in order, one round trip for all.
  for (const std::string& p : internal_->commands) frame_packet(conn_->output(), 0, p);
  conn_->flush();
  const std::string& first = internal_->commands[0];
  start_command(uint8_t(first[0]), reinterpret_cast<const uint8_t*>(first.data()), first.size(),
                nullptr);
  collect_response();
}

// Reads the responses to the internal commands, whole packets at a time.
void ServerSession::collect_response() {
  if (!in_command_ || client_ || !conn_) return;
  for (;;) {
    uint8_t fs, ls;
    std::string payload;
    ReadStatus st = read_packet(conn_->input(), kMaxCollected, fs, ls, payload);
    if (st == ReadStatus::Incomplete) return;
    if (st == ReadStatus::TooBig) {
      lose("response to the proxy's own command is too large");
      return;
    }
    auto head = reinterpret_cast<const uint8_t*>(payload.data());
    ResponseTracker::Event ev =
        tracker_.on_server_packet(head, std::min(payload.size(), ResponseTracker::kPeekBytes), payload.size());
    if (ev == ResponseTracker::Event::Malformed || ev == ResponseTracker::Event::LocalInfile) {
      lose("unexpected packet in the response to the proxy's own command");
      return;
    }
    internal_->results[internal_->next].push_back(std::move(payload));
    if (ev == ResponseTracker::Event::Continue) continue;
    if (++internal_->next < internal_->commands.size()) {
      const std::string& next = internal_->commands[internal_->next];
      tracker_.start(uint8_t(next[0]), reinterpret_cast<const uint8_t*>(next.data()), next.size(), caps_, ext_caps_);
      continue;
    }
    in_command_ = false;
    internal_->commands.clear();
    change_state(State::KeepAliveClientSlave);
    bool destroyed = false;
    bool* outer = destroyed_;
    destroyed_ = &destroyed;
    owner_->on_internal_done(this);  // may delete this
    if (destroyed) {
      if (outer) *outer = true;
      return;
    }
    destroyed_ = outer;
    // The owner has read them; an idle session keeps nothing (unless the
    // owner ran more of its own commands meanwhile).
    if (!in_command_) internal_.reset();
    return;
  }
}

void ServerSession::run(const std::string& payload, Connection* client) {
  start_command(uint8_t(payload[0]), reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), client);
  if (payload.size() < kMaxChunk) {  // always, for a command read whole
    uint8_t hdr[kHeaderLen];
    write_header(hdr, uint32_t(payload.size()), 0);
    iovec iov[2] = {{hdr, kHeaderLen}, {const_cast<char*>(payload.data()), payload.size()}};
    conn_->send(iov, 2);
  } else {
    frame_packet(conn_->output(), 0, payload);
    conn_->flush();
  }
  if (!ResponseTracker::expects_response(tracker_.command())) {
    finish_response();
    return;
  }
  relay_response();  // nothing yet, unless the backend was quick
}

void ServerSession::begin_streamed(uint8_t command, const uint8_t* head, size_t head_len, Connection* client) {
  start_command(command, head, head_len, client);
  streaming_ = true;
}

size_t ServerSession::upload_room() const {
  size_t out = conn_ ? evbuffer_get_length(conn_->output()) : kOutputHighWater;
  return out >= kOutputHighWater ? 0 : kOutputHighWater - out;
}

void ServerSession::forward_upload(evbuffer* client_in, size_t n) {
  conn_->send_from(client_in, n);
}

bool ServerSession::upload_packet_done(uint64_t payload_len) {
  if (streaming_) {
    // The streamed command has gone whole; its response follows.
    streaming_ = false;
    if (!ResponseTracker::expects_response(tracker_.command())) {
      finish_response();
      return false;
    }
    relay_response();
    return false;
  }
  if (payload_len != 0) return true;  // more of the LOCAL INFILE file
  tracker_.on_client_infile_packet(0);  // the empty packet ends the file
  relay_response();
  return false;
}

void ServerSession::on_client_drained() {
  if (!blocked_on_client_) return;
  blocked_on_client_ = false;
  relay_response();
}

// What the tracker says of each packet of a response, with the common case,
// one more row, decided inline.  A packet the client must get rewritten is
// held: an OK with session state its trackers do not report or a message to
// re-encode, and COM_STMT_PREPARE's OK (the client gets the proxy's id).
struct ResponseClassifier {
  ResponseTracker& tracker;
  bool rebuild_messages;  // every OK with a message needs rebuilding
  bool clear_eof_flags;   // the client does not track: no EOF may say the state changed
  bool hold_errors;       // an error may have to be replaced (a statement timeout)
  PacketRelay::Verdict operator()(const uint8_t* head, size_t head_len, uint64_t length) {
    if (head_len && tracker.is_plain_row(head[0], length)) return PacketRelay::Verdict::Pass;
    ResponseTracker::Event ev = tracker.on_server_packet(head, head_len, length);
    if (ev == ResponseTracker::Event::Malformed) return PacketRelay::Verdict::Malformed;
    if (hold_errors && head_len && head[0] == kErrHeader && ev == ResponseTracker::Event::Done)
      return PacketRelay::Verdict::Hold;
    if (tracker.saw_ok() &&
        ((tracker.last_status() & SERVER_SESSION_STATE_CHANGED) || (rebuild_messages && tracker.ok_has_tail())))
      return PacketRelay::Verdict::Hold;
    if (tracker.saw_prepare_ok() || tracker.saw_prepare_def()) return PacketRelay::Verdict::Hold;
    if (clear_eof_flags && tracker.saw_flagged_eof()) return PacketRelay::Verdict::Hold;
    return ev == ResponseTracker::Event::Continue ? PacketRelay::Verdict::Pass : PacketRelay::Verdict::Last;
  }
};

// Relays the backend's response to the client packet by packet, as far as
// it has arrived and the client takes it, and notices where it ends.
void ServerSession::relay_response() {
  if (!in_command_ || tracker_.awaiting_client_upload() || !conn_) return;
  evbuffer* in = conn_->input();
  // A MySQL backend encodes an OK's message for a tracking client only.
  const bool tracking_client = client_caps_ & CLIENT_SESSION_TRACK;
  ResponseClassifier classify{tracker_, tracks_state() && !mariadb() && !tracking_client,
                              tracks_state() && !tracking_client, !interrupt_error_.empty()};
  for (;;) {
    if (held_ != Held::None && !rewrite_held(in)) return;  // not whole yet, or lost
    if (held_ == Held::None && tracker_.done()) break;    // a held packet ended it
    size_t out_len = evbuffer_get_length(client_->output());
    size_t room = out_len >= kOutputHighWater ? 0 : kOutputHighWater - out_len;
    PacketRelay::Step step = down_.scan(in, room, std::numeric_limits<uint64_t>::max(), classify);
    if (step.bytes) {
      // Before a held packet, the bytes wait for it: one write for both.
      if (step.stop == PacketRelay::Stop::Held)
        client_->queue_from(in, step.bytes);
      else
        client_->send_from(in, step.bytes);
      bump(counters_.bytes_to_clients, step.bytes);
      response_bytes_ += step.bytes;
    }
    switch (step.stop) {
      case PacketRelay::Stop::NeedInput:
      case PacketRelay::Stop::TooBig:  // no limit downwards
        return;
      case PacketRelay::Stop::OutputFull:
        blocked_on_client_ = true;
        return;
      case PacketRelay::Stop::Held:
        held_ = tracker_.ended_with_error()  ? Held::Err
                : tracker_.saw_prepare_ok()  ? Held::PrepareOk
                : tracker_.saw_prepare_def() ? Held::PrepareDefinition
                : tracker_.saw_flagged_eof() ? Held::Eof
                                             : Held::Ok;
        continue;
      case PacketRelay::Stop::Malformed: {
        uint8_t first = 0;
        evbuffer_copyout(in, &first, 1);
        LOG_WARN("ss_id=%llu: unexpected packet (0x%02x) from backend %s in the response to %s",
                 (unsigned long long)ss_id_, first, server_.address.str().c_str(), command_name(tracker_.command()));
        bump(counters_.errors);
        lose("malformed response from the backend");
        return;
      }
      case PacketRelay::Stop::Last:
        break;
    }
    break;
  }
  if (tracker_.awaiting_client_upload()) {
    // LOAD DATA LOCAL INFILE: the client's file comes next.
    owner_->on_upload_possible(this);
    return;
  }
  if (streaming_) {
    // The backend answered before the whole command arrived (it refused
    // it); the rest of the command cannot be told apart from new ones.
    lose("backend answered a command still being sent");
    return;
  }
  finish_response();
}

// The held packet, taken out whole once it has arrived, and rewritten for
// the client.  False while it has not arrived (or when the session was lost
// over it).  The buffers are the session's own, reused: every statement
// inside a transaction ends with an OK to rewrite.
bool ServerSession::rewrite_held(evbuffer* in) {
  if (held_ == Held::Eof) {
    // 0xfe, warnings, status: the state flag the client never asked for
    // goes, where the EOF lies.
    constexpr size_t kEof = kHeaderLen + 5;
    if (evbuffer_get_length(in) < kEof) return false;
    uint8_t* q = evbuffer_pullup(in, kEof);
    held_ = Held::None;
    q[kHeaderLen + 4] &= uint8_t(~(SERVER_SESSION_STATE_CHANGED >> 8));
    const uint8_t seq = q[3];
    client_->send_from(in, kEof);
    bump(counters_.bytes_to_clients, kEof);
    response_bytes_ += kEof;
    down_.took_packet(seq);
    return true;
  }
  if (!held_buf_) held_buf_ = std::make_unique<HeldBuffers>();
  HeldBuffers& hb = *held_buf_;
  if (held_ == Held::Ok) {
    // The usual OK, one chunk: read where it lies, without copying it out.
    uint8_t hdr[kHeaderLen];
    if (evbuffer_copyout(in, hdr, kHeaderLen) < ev_ssize_t(kHeaderLen)) return false;
    PacketHeader h = parse_header(hdr);
    if (h.length < kMaxChunk) {
      const size_t total = kHeaderLen + h.length;
      if (evbuffer_get_length(in) < total) return false;
      const char* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ev_ssize_t(total)));
      held_ = Held::None;
      if (!p || !parse_tracked_ok(std::string_view(p + kHeaderLen, h.length), hb.ok)) {
        bump(counters_.errors);
        lose("malformed OK packet from the backend");  // may delete this
        return false;
      }
      owner_->on_session_state(this, hb.ok);
      static const proto::TrackerSet kNone;
      const proto::TrackerSet& trackers = trackers_ && *trackers_ ? **trackers_ : kNone;
      bool reported = false;
      for (const proto::StateChange& c : hb.ok.changes) reported = reported || trackers.reports(c);
      std::string_view payload(p + kHeaderLen, h.length);
      size_t status_at = 0;
      if (size_t prefix = reported ? 0 : client_ok_prefix(payload, hb.ok, mariadb(), status_at)) {
        // Nothing the client tracks: its OK is the start of this one, the
        // state flag cleared.  Rewritten where it lies, sent from there.
        auto* q = reinterpret_cast<uint8_t*>(const_cast<char*>(p));
        write_header(q, uint32_t(prefix), h.seq);
        q[kHeaderLen + status_at + 1] &= uint8_t(~(SERVER_SESSION_STATE_CHANGED >> 8));
        client_->send_from(in, kHeaderLen + prefix);
        evbuffer_drain(in, h.length - prefix);
        bump(counters_.bytes_to_clients, kHeaderLen + prefix);
        response_bytes_ += kHeaderLen + prefix;
        down_.took_packet(h.seq);
        return true;
      }
      build_client_ok(hb.ok, client_caps_, trackers, mariadb(), hb.client_ok);
      evbuffer_drain(in, total);  // the views into it are done with
      frame_packet(client_->output(), h.seq, hb.client_ok);
      client_->flush();
      bump(counters_.bytes_to_clients, hb.client_ok.size() + kHeaderLen);
      response_bytes_ += hb.client_ok.size() + kHeaderLen;
      down_.took_packet(h.seq);
      return true;
    }
  }
  uint8_t first_seq, last_seq;
  ReadStatus st = read_packet(in, kMaxCollected, first_seq, last_seq, hb.packet);
  if (st == ReadStatus::Incomplete) return false;
  if (st == ReadStatus::TooBig) {
    bump(counters_.errors);
    lose("oversized packet from the backend");
    return false;
  }
  const Held kind = held_;
  held_ = Held::None;
  const std::string* out = &hb.packet;
  switch (kind) {
    case Held::PrepareOk:
      renumber_prepare_ok(hb.packet);
      break;
    case Held::PrepareDefinition:
      owner_->on_statement_metadata(this, hb.packet);
      break;
    case Held::Err: {
      ErrPacket e;
      if (parse_err(hb.packet, e) && e.code == er::ER_QUERY_INTERRUPTED.code) out = &interrupt_error_;
      break;
    }
    default:
      if (!parse_tracked_ok(hb.packet, hb.ok)) {
        bump(counters_.errors);
        lose("malformed OK packet from the backend");  // may delete this
        return false;
      }
      owner_->on_session_state(this, hb.ok);
      static const proto::TrackerSet kNone;
      build_client_ok(hb.ok, client_caps_, trackers_ && *trackers_ ? **trackers_ : kNone, mariadb(), hb.client_ok);
      out = &hb.client_ok;
      break;
  }
  frame_packet(client_->output(), first_seq, *out);
  client_->flush();
  bump(counters_.bytes_to_clients, out->size() + kHeaderLen);
  response_bytes_ += out->size() + kHeaderLen;
  down_.took_packet(last_seq);
  if (hb.packet.capacity() > kHeldBufferKeep) std::string().swap(hb.packet);
  return true;
}

// COM_STMT_PREPARE's OK: 0x00, stmt_id(4), columns(2), params(2), ... with
// the owner's id for the statement.
void ServerSession::renumber_prepare_ok(std::string& payload) {
  auto b = [&](size_t i) { return uint32_t(uint8_t(payload[i])); };
  uint32_t backend_id = b(1) | b(2) << 8 | b(3) << 16 | b(4) << 24;
  uint16_t columns = uint16_t(b(5) | b(6) << 8);
  uint16_t params = uint16_t(b(7) | b(8) << 8);
  uint32_t id = owner_->on_statement_prepared(this, backend_id, columns, params);
  for (int i = 0; i < 4; ++i) payload[1 + i] = char(uint8_t(id >> (8 * i)));
}

void ServerSession::finish_response() {
  in_command_ = false;
  if (!interrupt_error_.empty()) interrupt_error_.clear();
  client_ = nullptr;
  change_state(State::KeepAliveClientSlave);
  owner_->on_response_done(this);  // may delete this
}

// Nothing was asked: the backend is talking out of turn (it usually sends
// an error just before it closes a connection it killed).
void ServerSession::handle_unsolicited() {
  uint8_t first_seq, last_seq;
  std::string payload;
  ReadStatus st = read_packet(conn_->input(), kMaxUnsolicited, first_seq, last_seq, payload);
  if (st == ReadStatus::Incomplete) return;
  ErrPacket e;
  if (st == ReadStatus::Complete && parse_err(payload, e))
    LOG_INFO("ss_id=%llu: backend %s says %u (%s) %s", (unsigned long long)ss_id_, server_.address.str().c_str(),
             e.code, e.sql_state.c_str(), e.message.c_str());
  lose("backend sent an unsolicited packet");
}

void ServerSession::lose(const std::string& why) {
  LOG_DEBUG("ss_id=%llu to %s lost: %s", (unsigned long long)ss_id_, server_.address.str().c_str(), why.c_str());
  stop_login_timer();
  conn_.reset();
  state_ = State::Closed;
  owner_->on_server_lost(this, why);  // may delete this
}

}  // namespace myrelay
