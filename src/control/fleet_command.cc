// A proxy statement across the fleet (see fleet_command.h).
#include "control/fleet_command.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "control/id_resolver.h"
#include "control/session_directory.h"
#include "protocol/errors.h"
#include "service/log.h"

namespace myrelay::fleet {

using Kind = sql::AdminStatement::Kind;

namespace {

constexpr uint64_t kCsIdBit = 0x80000000u;

bool is_cs_id(uint64_t id) { return id <= UINT32_MAX && (id & kCsIdBit); }
int proxy_of(uint64_t id) { return int((id >> 24) & 0x7f); }

// The statements that name one session by id.
bool names_a_session(Kind k) {
  return k == Kind::KillConnection || k == Kind::KillQuery || k == Kind::KillProxySession ||
         k == Kind::ShowAttributes || k == Kind::ShowVariables;
}

// A row's number (Id, proxy_id); a peer's text that is not one sorts first.
uint64_t number(const proto::TextRow& row, size_t i) {
  if (i >= row.size() || !row[i]) return 0;
  return strtoull(row[i]->c_str(), nullptr, 10);
}

}  // namespace

bool FleetCommand::involves_peers(const sql::AdminStatement& st, const Config& cfg) {
  if (!cfg.fleet.enabled || cfg.fleet.peers.empty()) return false;
  if (st.global) return st.kind == Kind::ShowSessions || st.kind == Kind::KillWhere || st.kind == Kind::ExplainKillWhere;
  if (!st.has_id || !names_a_session(st.kind)) return false;
  if (is_cs_id(st.id)) return proxy_of(st.id) != cfg.proxy_id && cfg.fleet.find_peer(proxy_of(st.id));
  return true;  // a backend connection id: any proxy may hold it
}

Request FleetCommand::request_for(const Config& cfg, const admin::Caller& caller, Op op, const std::string& statement,
                                  uint64_t id) {
  Request r;
  r.sender = Sender::Proxy;
  r.sender_proxy_id = uint8_t(cfg.proxy_id);
  r.time_ms = now_ms();
  r.nonce = random_nonce();
  r.op = op;
  r.caller_cs_id = caller.cs_id;
  r.user = caller.user;
  r.tenant = caller.tenant;
  r.statement = statement;
  r.id = id;
  return r;
}

PeerAddress FleetCommand::address_of(const FleetPeer& p) {
  PeerAddress a;
  a.proxy_id = p.proxy_id;
  a.text = p.address.str();
  a.host = p.address.host;
  a.addr = p.addr;
  a.addr_len = p.addr_len;
  return a;
}

FleetCommand::FleetCommand(event_base* base, std::shared_ptr<const Config> cfg, SessionDirectory& directory,
                           admin::Caller caller, sql::AdminStatement st, std::string statement, Done done)
    : base_(base), cfg_(std::move(cfg)), directory_(directory), caller_(std::move(caller)), st_(std::move(st)),
      statement_(std::move(statement)), done_(std::move(done)) {}

FleetCommand::~FleetCommand() {
  if (later_) event_free(later_);
}

void FleetCommand::start() {
  if (st_.global) {
    plan_ = Plan::Global;
    local_ = admin::run(st_, caller_, directory_);
    if (local_.kind == admin::Answer::Kind::Error) {  // 1227 and the like: the fleet is not asked
      Result r;
      r.answer = std::move(local_);
      return finish(std::move(r));
    }
    for (const FleetPeer& p : cfg_->fleet.peers) ask(p, Op::Execute, 0);
    return;
  }
  if (is_cs_id(st_.id)) {
    plan_ = Plan::Forward;
    pending_.target_cs_id = uint32_t(st_.id);
    ask(*cfg_->fleet.find_peer(proxy_of(st_.id)), Op::Execute, 0);
    return;
  }
  plan_ = Plan::Resolve;
  for (const FleetPeer& p : cfg_->fleet.peers) ask(p, Op::Resolve, st_.id);
}

void FleetCommand::ask(const FleetPeer& peer, Op op, uint64_t id) {
  ++outstanding_;
  Request req = request_for(*cfg_, caller_, op, statement_, id);
  calls_.push_back(std::make_unique<PeerCall>(base_, address_of(peer), cfg_->fleet.secret, cfg_->fleet.tls, req,
                                              cfg_->fleet.timeout_ms, [this](PeerCall& c) { on_answer(c); }));
}

void FleetCommand::on_answer(PeerCall& call) {
  if (call.ok())
    LOG_DEBUG("cs_id=%u: fleet: proxy %d answered in %lld us", caller_.cs_id, call.peer().proxy_id,
              (long long)call.elapsed_us());
  else
    LOG_WARN("cs_id=%u: fleet: proxy %d at %s could not be asked: %s", caller_.cs_id, call.peer().proxy_id,
             call.peer().text.c_str(), call.error().c_str());
  if (--outstanding_ == 0) all_answered();
}

std::string FleetCommand::unreachable(const PeerCall& c) const {
  return "proxy " + std::to_string(c.peer().proxy_id) + " at " + c.peer().text + ": " + c.error();
}

void FleetCommand::all_answered() {
  switch (plan_) {
    case Plan::Forward: {
      const PeerCall& c = *calls_.back();
      Result r;
      r.target_cs_id = pending_.target_cs_id;
      r.forwarded_to = c.peer().proxy_id;
      if (c.ok()) {
        r.answer = c.answer();
        r.answer.after = admin::After::Continue;  // another proxy's answer never closes this session
        for (auto& w : pending_.answer.warnings) r.answer.warnings.push_back(w);
      } else {
        r.answer.error(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                       "Unable to connect to foreign data source: " + unreachable(c) + " (it holds thread " +
                           std::to_string(r.target_cs_id) + ")");
      }
      return finish(std::move(r));
    }
    case Plan::Resolve:
      return resolved();
    case Plan::Global: {
      Result r;
      merge_rows(r.answer);
      return finish(std::move(r));
    }
  }
}

// A backend connection id, asked of every peer: run the statement where the
// one session it names lives.
void FleetCommand::resolved() {
  std::vector<std::pair<uint32_t, int>> found;  // cs_id, proxy_id
  std::vector<std::string> missing;
  auto all = directory_.snapshot();
  IdMatch m = resolve_id(all, st_.id, [&](const shm::SessionRecord& r) { return admin::AccessRules::may_target(st_.kind, caller_, r); });
  if (m.outcome == IdMatch::Outcome::Found) found.emplace_back(m.session->cs_id, cfg_->proxy_id);
  for (uint32_t cs : m.candidates) found.emplace_back(cs, cfg_->proxy_id);
  for (const auto& c : calls_) {
    if (!c->ok()) {
      missing.push_back(unreachable(*c));
      continue;
    }
    // A peer names only its own sessions: anything else in its answer is ignored.
    for (const auto& row : c->answer().rows) {
      uint64_t cs = number(row, 0);
      if (is_cs_id(cs) && proxy_of(cs) == c->peer().proxy_id) found.emplace_back(uint32_t(cs), c->peer().proxy_id);
    }
  }
  Result r;
  if (found.empty()) {
    if (!missing.empty())
      r.answer.error(er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                     "Unable to connect to foreign data source: " + missing.front() + "; thread " +
                         std::to_string(st_.id) + " may be one of its sessions");
    else
      r.answer.error(er::ER_NO_SUCH_THREAD, "Unknown thread id: " + std::to_string(st_.id));
    return finish(std::move(r));
  }
  if (found.size() > 1) {
    IdMatch amb;
    amb.outcome = IdMatch::Outcome::Ambiguous;
    for (auto& f : found) amb.candidates.push_back(f.first);
    r.answer.error(er::ER_UNKNOWN_ERROR, "Thread id " + std::to_string(st_.id) + " is ambiguous: " + ambiguity(amb) +
                                             " across the fleet; use the proxy's Id from SHOW GLOBAL PROXYSESSION");
    return finish(std::move(r));
  }
  // Found once among the proxies that answered; one that did not cannot
  // change that (a backend gives each connection id once), but say so.
  for (const auto& why : missing)
    pending_.answer.warnings.push_back(
        {"Note", er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE.code,
         "Unable to connect to foreign data source: " + why + "; thread " + std::to_string(st_.id) +
             " was looked up on the other proxies only"});
  const uint32_t cs_id = found.front().first;
  const int where = found.front().second;
  if (where == cfg_->proxy_id) {
    st_.id = cs_id;
    r.answer = admin::run(st_, caller_, directory_);
    for (auto& w : pending_.answer.warnings) r.answer.warnings.push_back(w);
    return finish(std::move(r));
  }
  plan_ = Plan::Forward;
  pending_.target_cs_id = cs_id;
  calls_.clear();
  ask(*cfg_->fleet.find_peer(where), Op::Execute, cs_id);
}

// SHOW GLOBAL PROXYSESSION and EXPLAIN KILL GLOBAL: every proxy's rows with
// its proxy_id first; KILL GLOBAL: the sessions killed everywhere.
void FleetCommand::merge_rows(admin::Answer& out) {
  out = std::move(local_);
  auto peer_warning = [&](int proxy_id, const std::string& text) {
    out.warnings.push_back({"Warning", er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE.code,
                            "proxy " + std::to_string(proxy_id) + ": " + text});
  };
  const size_t width = out.columns.size();
  if (out.kind == admin::Answer::Kind::Rows) {
    proto::ColumnDef id_col;
    id_col.name = "proxy_id";
    id_col.type = proto::MYSQL_TYPE_LONGLONG;
    id_col.charset = 63;
    id_col.length = 3;
    id_col.flags = 0x8000 | 0x0020 | 0x0001;  // NUM, UNSIGNED, NOT NULL
    out.columns.insert(out.columns.begin(), id_col);
    for (auto& row : out.rows) row.insert(row.begin(), std::to_string(cfg_->proxy_id));
  }
  for (const auto& c : calls_) {
    const int pid = c->peer().proxy_id;
    if (!c->ok()) {
      out.warnings.push_back({"Warning", er::ER_CONNECT_TO_FOREIGN_DATA_SOURCE.code,
                              "Unable to connect to foreign data source: " + unreachable(*c) +
                                  "; its sessions are not included"});
      continue;
    }
    const admin::Answer& a = c->answer();
    for (const auto& w : a.warnings) out.warnings.push_back({w.level, w.code, "proxy " + std::to_string(pid) + ": " + w.message});
    if (a.kind == admin::Answer::Kind::Error) {
      peer_warning(pid, "ERROR " + std::to_string(a.error_code) + " (" + a.sqlstate + "): " + a.message);
      continue;
    }
    if (out.kind == admin::Answer::Kind::Ok) {
      if (a.kind == admin::Answer::Kind::Ok) out.affected_rows += a.affected_rows;
      continue;
    }
    if (a.kind != admin::Answer::Kind::Rows || a.columns.size() != width) {
      peer_warning(pid, "answered with " + std::to_string(a.columns.size()) + " columns where this proxy has " +
                            std::to_string(width) + " (another version?); its sessions are not included");
      continue;
    }
    for (const auto& row : a.rows) {
      proto::TextRow r;
      r.reserve(width + 1);
      r.emplace_back(std::to_string(pid));
      for (size_t i = 0; i < width; ++i) r.push_back(i < row.size() ? row[i] : std::nullopt);
      out.rows.push_back(std::move(r));
    }
  }
  if (out.kind == admin::Answer::Kind::Rows) {
    // proxy_id, then Id; the numbers parsed once, not at every comparison.
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, size_t>> order;
    order.reserve(out.rows.size());
    for (size_t i = 0; i < out.rows.size(); ++i) order.push_back({{number(out.rows[i], 0), number(out.rows[i], 2)}, i});
    std::sort(order.begin(), order.end());
    std::vector<proto::TextRow> sorted;
    sorted.reserve(order.size());
    for (const auto& o : order) sorted.push_back(std::move(out.rows[o.second]));
    out.rows = std::move(sorted);
  }
}

void FleetCommand::finish(Result r) {
  pending_ = std::move(r);
  // From the loop, never from inside start(): the owner may destroy this
  // command in `done`.
  if (!later_)
    later_ = evtimer_new(
        base_,
        [](evutil_socket_t, short, void* arg) {
          auto* self = static_cast<FleetCommand*>(arg);
          Done done = std::move(self->done_);
          if (done) done(std::move(self->pending_));  // may destroy the command
        },
        this);
  timeval tv{0, 0};
  evtimer_add(later_, &tv);
}

}  // namespace myrelay::fleet
