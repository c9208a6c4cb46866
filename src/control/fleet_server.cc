// The peer port (see fleet_server.h).
#include "control/fleet_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <netinet/in.h>

#include <cstring>

#include "control/fleet_tls.h"
#include "control/id_resolver.h"
#include "control/session_directory.h"
#include "protocol/errors.h"

namespace myrelay::fleet {

using Kind = sql::AdminStatement::Kind;

namespace {

constexpr size_t kMaxConnections = 256;
constexpr size_t kMaxRequest = 1u << 20;  // a statement and two names

// What another proxy may ask: its sessions, and the kill forms.
bool runs_for_peers(Kind k) {
  switch (k) {
    case Kind::Malformed:  // answered with 1064, as to a client
    case Kind::ShowSessions:
    case Kind::ShowAttributes:
    case Kind::ShowVariables:
    case Kind::KillConnection:
    case Kind::KillQuery:
    case Kind::KillProxySession:
    case Kind::KillWhere:
    case Kind::ExplainKillWhere:
      return true;
    default:
      return false;
  }
}

std::string address_text(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

// The first 100 bytes of a statement, on one line, for the log.
std::string shown(const std::string& statement) {
  std::string s = statement.substr(0, 100);
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return statement.size() > 100 ? s + "..." : s;
}

}  // namespace

struct FleetServer::Peer {
  FleetServer* server = nullptr;
  bufferevent* bev = nullptr;
  std::string from;
  std::string buf;
  bool answered = false;
};

FleetServer::FleetServer(event_base* base, ConfigSource config, SessionDirectory& directory)
    : base_(base), config_(std::move(config)), directory_(directory) {}

FleetServer::~FleetServer() {
  if (listener_) evconnlistener_free(listener_);
  for (Peer* p : peers_) {
    bufferevent_free(p->bev);
    delete p;
  }
}

bool FleetServer::start(const HostPort& listen, std::string& error) {
  sockaddr_storage addr;
  int len = 0;
  if (!resolve_host_port(listen, true, addr, len, error)) return false;
  listener_ = evconnlistener_new_bind(base_, on_accept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                      reinterpret_cast<sockaddr*>(&addr), len);
  if (!listener_) {
    error = "fleet.listen " + listen.str() + ": cannot listen: " + strerror(errno);
    return false;
  }
  listen_ = listen;
  LOG_INFO("fleet: peer port listening on %s", listen.str().c_str());
  return true;
}

void FleetServer::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* self = static_cast<FleetServer*>(arg);
  std::string from = address_text(addr);
  if (self->peers_.size() >= kMaxConnections) {
    uint64_t held = 0;
    if (self->refusal_log_.allow(held))
      LOG_WARN("fleet: refused a connection from %s: %zu peer connections open already", from.c_str(),
               self->peers_.size());
    evutil_closesocket(fd);
    return;
  }
  auto* p = new Peer;
  p->server = self;
  p->from = from;
  auto cfg = self->config_();
  if (cfg->fleet.tls) {
    SSL* ssl = cfg->fleet.tls->server_ssl();
    p->bev = ssl ? bufferevent_openssl_socket_new(self->base_, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
                 : nullptr;
    if (p->bev) bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
  } else {
    p->bev = bufferevent_socket_new(self->base_, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!p->bev) {
    evutil_closesocket(fd);
    delete p;
    return;
  }
  self->peers_.insert(p);
  bufferevent_setcb(p->bev, on_read, on_write, on_event, p);
  // The request must come whole within the fleet's timeout.
  int ms = cfg->fleet.timeout_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  bufferevent_set_timeouts(p->bev, &tv, &tv);
  bufferevent_enable(p->bev, EV_READ);
}

void FleetServer::on_read(bufferevent* bev, void* arg) {
  auto* p = static_cast<Peer*>(arg);
  FleetServer* self = p->server;
  if (p->answered) return;
  evbuffer* in = bufferevent_get_input(bev);
  size_t n = evbuffer_get_length(in);
  if (p->buf.size() + n > kHeaderLen + kMaxRequest + kMacLen) return self->refuse(p, "request too large");
  size_t old = p->buf.size();
  p->buf.resize(old + n);
  evbuffer_remove(in, &p->buf[old], n);
  auto cfg = self->config_();
  Frame f;
  std::string why;
  switch (take_frame(p->buf, cfg->fleet.secret, f, why)) {
    case Take::NeedMore:
      return;
    case Take::Bad:
      return self->refuse(p, why);
    case Take::Frame:
      break;
  }
  std::string log;
  bool refused = false;
  std::string reply = self->answer(f, log, refused);
  if (refused)
    self->note_refusal(*p, log);
  else
    LOG_INFO("fleet: %s from %s", log.c_str(), p->from.c_str());
  self->send_last(p, reply);
}

// The answer is out: the connection has served its one request.
void FleetServer::on_write(bufferevent* bev, void* arg) {
  auto* p = static_cast<Peer*>(arg);
  if (p->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0) p->server->drop(p);
}

void FleetServer::on_event(bufferevent* bev, short what, void* arg) {
  auto* p = static_cast<Peer*>(arg);
  FleetServer* self = p->server;
  if (what & BEV_EVENT_CONNECTED) return;  // the TLS handshake is done: the request follows
  uint64_t held = 0;
  if ((what & BEV_EVENT_TIMEOUT) && !p->answered) {
    if (self->refusal_log_.allow(held))
      LOG_WARN("fleet: %s sent no whole request within %d ms; closed", p->from.c_str(),
               self->config_()->fleet.timeout_ms);
  } else if (unsigned long e = (what & BEV_EVENT_ERROR) ? bufferevent_get_openssl_error(bev) : 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (self->refusal_log_.allow(held)) LOG_WARN("fleet: TLS with %s failed: %s", p->from.c_str(), buf);
  }
  self->drop(p);
}

// Refusals are logged, but at most a few a second: a stranger hammering the
// peer port must not flood the log.
void FleetServer::note_refusal(const Peer& p, const std::string& why) {
  uint64_t held = 0;
  if (refusal_log_.allow(held))
    LOG_WARN("fleet: refused %s: %s (%llu more refusals not logged)", p.from.c_str(), why.c_str(),
             (unsigned long long)held);
}

void FleetServer::refuse(Peer* p, const std::string& why) {
  note_refusal(*p, why);
  send_last(p, encode_refusal(why));
}

// The connection's one answer; it closes once that is out (on_write).
void FleetServer::send_last(Peer* p, const std::string& frame) {
  p->answered = true;
  bufferevent_disable(p->bev, EV_READ);
  bufferevent_write(p->bev, frame.data(), frame.size());
}

void FleetServer::drop(Peer* p) {
  peers_.erase(p);
  bufferevent_free(p->bev);
  delete p;
}

std::string FleetServer::answer(const Frame& frame, std::string& log, bool& refused) {
  auto cfg = config_();
  refused = true;
  Request req;
  std::string why;
  if (frame.type != FrameType::Request) {
    log = "a frame that is not a request";
    return encode_refusal(log);
  }
  if (!cfg->fleet.enabled) {
    log = "this proxy has no fleet configured";
    return encode_refusal(log);
  }
  if (!decode_request(frame.body, req, why)) {
    log = why;
    return encode_refusal(why);
  }
  if (req.sender == Sender::Proxy && req.sender_proxy_id == cfg->proxy_id) {
    log = "the sender reports proxy_id " + std::to_string(req.sender_proxy_id) +
          ", this proxy's own: every proxy of a fleet needs its own proxy.proxy_id";
    LOG_ERROR("fleet: %s", log.c_str());
    return encode_refusal(log);
  }
  if (!replay_.accept(req.time_ms, req.nonce, now_ms(), why)) {
    log = "request " + why;
    return encode_refusal(log);
  }
  refused = false;
  admin::Caller caller;
  caller.cs_id = req.caller_cs_id;
  caller.user = req.user;
  caller.tenant = req.tenant;
  if (req.sender == Sender::Tool) {
    caller.privileged = true;  // whoever holds the fleet's secret administers it
    caller.via = "myrelayctl --fleet";
  } else {
    const Tenant* t = cfg->find_tenant(req.tenant);
    caller.privileged = t && t->privileged;  // by this proxy's configuration, not the sender's word
    caller.via = "proxy " + std::to_string(req.sender_proxy_id);
  }
  sql::AdminStatement st = sql::parse_admin(req.statement);
  Reply reply;
  reply.sender_proxy_id = uint8_t(cfg->proxy_id);
  reply.nonce = req.nonce;
  const std::string who = (req.sender == Sender::Tool ? std::string("myrelayctl") : "proxy " + std::to_string(req.sender_proxy_id)) +
                          " ('" + caller.user + "@" + caller.tenant + "' cs_id=" + std::to_string(caller.cs_id) + ")";
  if (!runs_for_peers(st.kind)) {
    reply.answer.error(er::ER_NOT_SUPPORTED_YET, "This statement is not run for other proxies of the fleet");
  } else if (req.op == Op::Resolve) {
    // Which of this proxy's sessions the backend connection id names.
    auto all = directory_.snapshot();
    IdMatch m = resolve_id(all, req.id, [&](const shm::SessionRecord& r) {
      return admin::AccessRules::may_target(st.kind, caller, r);
    });
    reply.answer.kind = admin::Answer::Kind::Rows;
    proto::ColumnDef c;
    c.name = "cs_id";
    reply.answer.columns.push_back(c);
    if (m.outcome == IdMatch::Outcome::Found) reply.answer.rows.push_back({std::to_string(m.session->cs_id)});
    for (uint32_t cs : m.candidates) reply.answer.rows.push_back({std::to_string(cs)});
  } else {
    st.global = false;  // a peer's share of a GLOBAL statement is its own sessions
    if (req.id && st.has_id) st.id = req.id;
    reply.answer = admin::run(st, caller, directory_);
  }
  const admin::Answer& a = reply.answer;
  log = who + (req.op == Op::Resolve ? " looked up " + std::to_string(req.id) + " for '" : " ran '") +
        shown(req.statement) + "'" + (req.id && req.op == Op::Execute ? " as id " + std::to_string(req.id) : "") +
        ": " +
        (a.kind == admin::Answer::Kind::Error ? "ERROR " + std::to_string(a.error_code)
         : a.kind == admin::Answer::Kind::Ok ? "OK, " + std::to_string(a.affected_rows) + " affected"
                                             : std::to_string(a.rows.size()) + " rows");
  return encode_reply(reply, cfg->fleet.secret);
}

}  // namespace myrelay::fleet
