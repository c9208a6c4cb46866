// The session test harness (see session_harness.h).
#include "session_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/shm_table.h"
#include "protocol/auth.h"

namespace myrelay::test {

using namespace proto;

void turn(event_base* base, int ms) {
  timeval tv{0, ms * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

// ---- FakeBackend ----

struct FakeBackend::Conn {
  FakeBackend* owner;
  bufferevent* bev;
  uint32_t id;
  bool logged_in = false;
  uint32_t caps = 0;  // what the proxy asked for
  std::vector<uint8_t> sleeping;  // sequence ids of SLEEPs waiting for answers
};

FakeBackend::FakeBackend(event_base* base) : base_(base) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  listener_ = evconnlistener_new_bind(base, on_accept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                      reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&sin), &len);
  port_ = ntohs(sin.sin_port);
}

FakeBackend::~FakeBackend() {
  drop_all();
  evconnlistener_free(listener_);
}

void FakeBackend::drop_all() {
  for (auto& kv : conns_) bufferevent_free(kv.first);
  conns_.clear();
}

void FakeBackend::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<FakeBackend*>(arg);
  bufferevent* bev = bufferevent_socket_new(self->base_, fd, BEV_OPT_CLOSE_ON_FREE);
  auto c = std::make_unique<Conn>();
  c->owner = self;
  c->bev = bev;
  c->id = self->next_id_++;
  bufferevent_setcb(bev, on_read, nullptr, on_event, c.get());
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  Handshake hs;
  hs.server_version = "10.11.0-fake";
  hs.connection_id = c->id;
  hs.scramble = std::string(20, 'S');
  hs.capabilities = kProxyCapabilities;
  hs.charset = 45;
  hs.status = SERVER_STATUS_AUTOCOMMIT;
  uint8_t seq = 0;
  self->send(*c, seq, build_handshake(hs));
  self->conns_[bev] = std::move(c);
}

void FakeBackend::send(Conn& c, uint8_t& seq, const std::string& payload) {
  std::string out = framed(seq++, payload);
  bufferevent_write(c.bev, out.data(), out.size());
}

void FakeBackend::on_read(bufferevent* bev, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  for (;;) {
    uint8_t fs, ls;
    std::string payload;
    if (read_packet(bufferevent_get_input(bev), 1 << 24, fs, ls, payload) != ReadStatus::Complete) return;
    FakeBackend* self = c->owner;
    self->handle(*c, uint8_t(ls + 1), payload);
    if (!self->conns_.count(bev)) return;  // closed
  }
}

void FakeBackend::on_event(bufferevent* bev, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  FakeBackend* self = c->owner;
  self->conns_.erase(bev);
  bufferevent_free(bev);
}

void FakeBackend::send_row_result(Conn& c, uint8_t seq, const std::string& value, int pieces) {
  send_row(c, seq, {value}, pieces);
}

void FakeBackend::send_row(Conn& c, uint8_t seq, const std::vector<std::string>& values, int pieces) {
  ColumnDef col;
  col.name = "v";
  Writer count;
  count.lenenc_int(values.size());
  Writer row;
  for (const auto& v : values) row.lenenc_str(v);
  std::vector<std::string> parts = {count.str()};
  for (size_t i = 0; i < values.size(); ++i) parts.push_back(build_column_def(col));
  bool modern = c.caps & CLIENT_DEPRECATE_EOF;
  if (!modern) parts.push_back(build_eof(SERVER_STATUS_AUTOCOMMIT));
  parts.push_back(row.str());
  OkPacket end;
  end.status = SERVER_STATUS_AUTOCOMMIT;
  parts.push_back(modern ? build_ok(end, c.caps, kEofHeader) : build_eof(SERVER_STATUS_AUTOCOMMIT));
  if (pieces <= 1) {
    for (auto& p : parts) send(c, seq, p);
    return;
  }
  // One packet now, the rest later, a piece at a time.
  send(c, seq, parts[0]);
  auto* l = new Later{this, c.id, parts, 1, seq, nullptr};
  l->ev = event_new(base_, -1, 0, send_later, l);
  timeval tv{0, 20000};
  evtimer_add(l->ev, &tv);
}

void FakeBackend::send_later(evutil_socket_t, short, void* arg) {
  auto* l = static_cast<Later*>(arg);
  for (auto& kv : l->self->conns_) {
    if (kv.second->id != l->id) continue;
    l->self->send(*kv.second, l->seq, l->parts[l->next++]);
    if (l->next < l->parts.size()) {
      timeval tv{0, 20000};
      evtimer_add(l->ev, &tv);
      return;
    }
  }
  event_free(l->ev);
  delete l;
}

void FakeBackend::handle(Conn& c, uint8_t seq, const std::string& payload) {
  if (!c.logged_in) {
    HandshakeResponse r;
    std::string error;
    parse_handshake_response(payload, r, error);
    c.caps = r.capabilities;
    login_attributes_ = r.attributes;
    c.logged_in = true;
    OkPacket ok;
    ok.status = SERVER_STATUS_AUTOCOMMIT;
    send(c, seq, build_ok(ok, c.caps));
    return;
  }
  uint8_t cmd = payload.empty() ? 0 : uint8_t(payload[0]);
  std::string text = payload.size() > 1 ? payload.substr(1) : "";
  bool own = text.rfind("SELECT @@global.session_track", 0) == 0 || text.rfind("SET session_track", 0) == 0;
  if (!own) log_.push_back(std::to_string(c.id) + ":" + std::to_string(cmd) + ":" + text);
  if (cmd == COM_QUIT) {
    bufferevent* bev = c.bev;
    conns_.erase(bev);
    bufferevent_free(bev);
    return;
  }
  if (cmd == COM_QUERY && text.rfind("SELECT @@global.session_track", 0) == 0) {
    send_row(c, seq, {"autocommit,character_set_client,character_set_connection,character_set_results,time_zone", "ON",
                      "OFF", "OFF"}, 1);
    return;
  }
  if (cmd == COM_QUERY && text.rfind("SELECT", 0) == 0) {
    send_row_result(c, seq, std::to_string(c.id), 1);
    return;
  }
  if (cmd == COM_QUERY && text == "SPLIT") {
    send_row_result(c, seq, std::to_string(c.id), 4);
    return;
  }
  if (cmd == COM_QUERY && text == "SLEEP") {
    c.sleeping.push_back(seq);
    return;
  }
  OkPacket ok;
  ok.status = SERVER_STATUS_AUTOCOMMIT;
  if (cmd == COM_QUERY && text == "BEGIN") ok.status |= SERVER_STATUS_IN_TRANS;
  send(c, seq, build_ok(ok, c.caps));
}

void FakeBackend::answer_sleepers() {
  for (auto& kv : conns_) {
    for (uint8_t seq : kv.second->sleeping) {
      OkPacket ok;
      ok.status = SERVER_STATUS_AUTOCOMMIT;
      send(*kv.second, seq, build_ok(ok, kv.second->caps));
    }
    kv.second->sleeping.clear();
  }
}

// ---- FakeHost ----

int64_t FakeHost::loop_time_us() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return int64_t(tv.tv_sec) * 1000000 + tv.tv_usec;
}

std::vector<shm::SessionRecord> FakeHost::snapshot() const {
  shm::SessionRecord r{};
  std::vector<shm::SessionRecord> v;
  if (ShmTable::read_record(&slot, r) && r.in_use) v.push_back(r);
  return v;
}

// ---- TestClient ----

TestClient::~TestClient() { ::close(fd_); }

void TestClient::send_raw(const std::string& bytes) {
  size_t off = 0;
  for (int tries = 0; off < bytes.size() && tries < 2000; ++tries) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      off += size_t(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      turn(base_, 1);  // let the proxy read
    } else {
      return;
    }
  }
}

void TestClient::send(uint8_t seq, const std::string& payload) { send_raw(framed(seq, payload)); }

bool TestClient::read(std::string& payload, uint8_t* seq) {
  for (int i = 0; i < 2000; ++i) {
    uint8_t fs, ls;
    size_t used = 0;
    if (read_packet(in_, 1 << 26, fs, ls, payload, used) == ReadStatus::Complete) {
      in_.erase(0, used);
      if (seq) *seq = fs;
      return true;
    }
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, size_t(n));
      continue;
    }
    if (n == 0) return false;  // closed
    turn(base_, 1);
  }
  return false;
}

bool TestClient::login(const std::string& user, const std::string& password, uint32_t want_caps) {
  std::string hs_payload;
  Handshake hs;
  std::string error;
  if (!read(hs_payload) || !parse_handshake(hs_payload, hs, error)) return false;
  scramble = hs.scramble;
  caps = want_caps & hs.capabilities;
  HandshakeResponse r;
  r.capabilities = caps | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
  r.max_packet = 1 << 24;
  r.charset = 45;
  r.user = user;
  Sha1Digest token = native_token(password, reinterpret_cast<const uint8_t*>(scramble.data()), 20);
  r.auth_response.assign(reinterpret_cast<const char*>(token.data()), token.size());
  r.auth_plugin = kNativePasswordPlugin;
  if (!attributes.empty()) {
    r.capabilities |= CLIENT_CONNECT_ATTRS;
    r.attributes = attributes;
  }
  send(1, build_handshake_response(r));
  std::string ok;
  return read(ok) && !ok.empty() && ok[0] == 0;
}

std::vector<std::string> TestClient::query(const std::string& sql) {
  std::vector<std::string> out;
  send(0, std::string(1, char(COM_QUERY)) + sql);
  std::string p;
  if (!read(p) || p.empty()) return {"CLOSED"};
  ErrPacket e;
  if (parse_err(p, e)) return {"ERR " + std::to_string(e.code)};
  if (uint8_t(p[0]) == 0) return {"OK"};
  Reader cr(p);
  uint64_t cols = cr.lenenc_int();
  for (uint64_t i = 0; i < cols; ++i)
    if (!read(p)) return {"CLOSED"};
  if (!(caps & CLIENT_DEPRECATE_EOF) && !read(p)) return {"CLOSED"};
  for (;;) {
    if (!read(p)) return {"CLOSED"};
    if (uint8_t(p[0]) == kEofHeader && p.size() < 0xffffff) break;
    Reader rr(p);
    out.push_back(rr.lenenc_str());
  }
  return out;
}

}  // namespace myrelay::test
