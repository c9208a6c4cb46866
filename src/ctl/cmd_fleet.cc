// myrelayctl --fleet sessions | kill: the whole fleet's view and kills from a
// shell (DESIGN section 6a).  It reads the daemon's configuration for the
// peer ports and the shared secret, and asks every proxy, this one included,
// on its peer port, as an administrator (whoever may read the secret may
// kill any session of the fleet).  All requests go out at once on one
// event loop, each bounded by fleet.timeout_ms.
#include <event2/event.h>

#include <algorithm>
#include <memory>

#include "control/fleet_call.h"
#include "control/fleet_command.h"
#include "control/id_resolver.h"
#include "control/sql_recognizer.h"
#include "ctl/ctl.h"
#include "service/config.h"

namespace myrelay::ctl {

namespace {

// Every proxy of the fleet: this one (by its own fleet.listen) and the peers.
std::vector<fleet::PeerAddress> fleet_targets(const Config& cfg) {
  std::vector<fleet::PeerAddress> out;
  fleet::PeerAddress self;
  self.proxy_id = cfg.proxy_id;
  self.text = cfg.fleet.listen.str();
  self.host = cfg.fleet.listen.host;
  std::string error;
  if (resolve_host_port(cfg.fleet.listen, false, self.addr, self.addr_len, error)) out.push_back(self);
  for (const FleetPeer& p : cfg.fleet.peers) out.push_back(fleet::FleetCommand::address_of(p));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.proxy_id < b.proxy_id; });
  return out;
}

struct Asked {
  fleet::PeerAddress to;
  bool ok = false;
  admin::Answer answer;
  std::string error;
};

// Sends `statement` (op, id) to each target and waits for every answer.
std::vector<Asked> ask_all(const Config& cfg, const std::vector<fleet::PeerAddress>& targets, fleet::Op op,
                           const std::string& statement, uint64_t id) {
  std::vector<Asked> out(targets.size());
  event_base* base = event_base_new();
  std::vector<std::unique_ptr<fleet::PeerCall>> calls;
  for (size_t i = 0; i < targets.size(); ++i) {
    fleet::Request r;
    r.sender = fleet::Sender::Tool;
    r.sender_proxy_id = 255;
    r.time_ms = fleet::now_ms();
    r.nonce = fleet::random_nonce();
    r.op = op;
    r.user = "myrelayctl";
    r.statement = statement;
    r.id = id;
    out[i].to = targets[i];
    calls.push_back(std::make_unique<fleet::PeerCall>(base, targets[i], cfg.fleet.secret, cfg.fleet.tls, r,
                                                      cfg.fleet.timeout_ms,
                                                      [&out, i](fleet::PeerCall& c) {
                                                        out[i].ok = c.ok();
                                                        out[i].answer = c.answer();
                                                        out[i].error = c.error();
                                                      }));
  }
  event_base_dispatch(base);  // returns once every call has finished
  calls.clear();
  event_base_free(base);
  return out;
}

std::string where(const fleet::PeerAddress& a) {
  return "proxy " + std::to_string(a.proxy_id) + " at " + a.text;
}

// Reports an unreachable proxy or a refused statement; true if there was one.
bool report(const Asked& a) {
  if (!a.ok) {
    fprintf(stderr, "%s: %s: %s\n", kProg, where(a.to).c_str(), a.error.c_str());
    return true;
  }
  for (const auto& w : a.answer.warnings)
    fprintf(stderr, "%s: %s: %s %u: %s\n", kProg, where(a.to).c_str(), w.level.c_str(), unsigned(w.code),
            w.message.c_str());
  if (a.answer.kind == admin::Answer::Kind::Error) {
    fprintf(stderr, "%s: %s: ERROR %u (%s): %s\n", kProg, where(a.to).c_str(), unsigned(a.answer.error_code),
            a.answer.sqlstate.c_str(), a.answer.message.c_str());
    return true;
  }
  return false;
}

// Rows from every proxy, with its proxy_id first.
int print_rows(const Options& o, const std::vector<Asked>& asked) {
  bool trouble = false;
  Table table;
  table.columns = {"proxy_id"};
  table.numeric = {true};
  const auto& cols = view::session_columns();
  for (size_t c = 0; c < cols.size(); ++c) {
    table.columns.push_back(cols[c]);
    table.numeric.push_back(view::session_column_is_numeric(c));
  }
  for (const auto& a : asked) {
    if (report(a)) {
      trouble = true;
      continue;
    }
    if (a.answer.columns.size() != cols.size()) {
      fprintf(stderr, "%s: %s: answered with %zu columns, not %zu (another version?)\n", kProg, where(a.to).c_str(),
              a.answer.columns.size(), cols.size());
      trouble = true;
      continue;
    }
    for (const auto& row : a.answer.rows) {
      Row r{std::to_string(a.to.proxy_id)};
      for (const auto& cell : row) r.push_back(cell);
      if (o.user && (r.size() < 6 || r[5] != *o.user)) continue;
      if (o.tenant && (r.size() < 5 || r[4] != *o.tenant)) continue;
      table.rows.push_back(std::move(r));
    }
  }
  if (o.json) {
    table.numeric[1] = false;  // proxy_sessid: wider than 2^53
    Json j;
    j.begin_object().key("sessions");
    json_rows(j, table);
    j.end_object();
    print_json(j);
  } else {
    if (!table.rows.empty()) print_table(stdout, table);
    print_row_count(table.rows.size());
  }
  return trouble ? kFailure : kOk;
}

int fleet_kill(const Options& o, const Config& cfg, const std::vector<fleet::PeerAddress>& targets) {
  if (o.where) {
    std::string stmt = std::string(o.dry_run ? "EXPLAIN " : "") + "KILL PROXYSESSION WHERE " + *o.where;
    if (o.when_idle)
      stmt += " WHEN IDLE" + (o.idle_timeout_s ? " TIMEOUT " + std::to_string(o.idle_timeout_s) : std::string());
    auto asked = ask_all(cfg, targets, fleet::Op::Execute, stmt, 0);
    if (o.dry_run) return print_rows(o, asked);
    bool trouble = false;
    uint64_t killed = 0;
    for (const auto& a : asked) {
      if (report(a)) {
        trouble = true;
        continue;
      }
      printf("proxy %d: %llu sessions asked to end\n", a.to.proxy_id, (unsigned long long)a.answer.affected_rows);
      killed += a.answer.affected_rows;
    }
    printf("%llu sessions asked to end across the fleet\n", (unsigned long long)killed);
    return trouble ? kFailure : kOk;
  }
  const uint64_t id = to_u64(o.args[1]);
  std::string stmt = "KILL PROXYSESSION " + o.args[1];
  if (o.args.size() > 2) stmt += " " + o.args[2];
  if (o.when_idle)
    stmt += " WHEN IDLE" + (o.idle_timeout_s ? " TIMEOUT " + std::to_string(o.idle_timeout_s) : std::string());
  // Which proxy holds it: a cs_id says so; a backend id is looked up on all.
  std::vector<fleet::PeerAddress> holder;
  uint64_t as_id = 0;
  if (id <= UINT32_MAX && (id & 0x80000000u)) {
    for (const auto& t : targets)
      if (t.proxy_id == int((id >> 24) & 0x7f)) holder.push_back(t);
    if (holder.empty()) {
      fprintf(stderr, "%s: no proxy of the fleet has proxy_id %d (the one in id %llu)\n", kProg, int((id >> 24) & 0x7f),
              (unsigned long long)id);
      return kBadId;
    }
  } else {
    std::vector<std::pair<uint32_t, fleet::PeerAddress>> found;
    bool trouble = false;
    for (const auto& a : ask_all(cfg, targets, fleet::Op::Resolve, stmt, id)) {
      if (report(a)) {
        trouble = true;
        continue;
      }
      for (const auto& row : a.answer.rows)
        if (!row.empty() && row[0]) found.emplace_back(uint32_t(to_u64(*row[0])), a.to);
    }
    if (found.size() != 1) {
      if (found.empty())
        fprintf(stderr, "%s: no session of the fleet has id %llu%s\n", kProg, (unsigned long long)id,
                trouble ? " (among the proxies that answered)" : "");
      else {
        IdMatch m;
        m.outcome = IdMatch::Outcome::Ambiguous;
        for (auto& f : found) m.candidates.push_back(f.first);
        fprintf(stderr, "%s: id %llu is ambiguous: %s; give the session's Id\n", kProg, (unsigned long long)id,
                ambiguity(m).c_str());
      }
      return kBadId;
    }
    holder.push_back(found.front().second);
    as_id = found.front().first;
  }
  auto asked = ask_all(cfg, holder, fleet::Op::Execute, stmt, as_id);
  if (report(asked.front())) {
    const auto& a = asked.front();
    return a.ok && (a.answer.error_code == 1094 || a.answer.error_code == 1095) ? kBadId : kFailure;
  }
  printf("%s: %s\n", where(asked.front().to).c_str(), o.when_idle ? "session asked to end when idle" : "killed");
  return kOk;
}

}  // namespace

int cmd_fleet(const Options& o) {
  std::string path = o.config_path.empty() ? std::string(MYRELAY_SYSCONFDIR) + "/myrelay.yaml" : o.config_path;
  Config cfg;
  try {
    cfg = load_config_file(path);
  } catch (const ConfigError& e) {
    fprintf(stderr, "%s: %s\n", kProg, e.what());
    return kUsage;
  }
  if (!cfg.fleet.enabled) {
    fprintf(stderr, "%s: %s has no fleet: section; --fleet needs the peer ports and the secret\n", kProg,
            path.c_str());
    return kUsage;
  }
  auto targets = fleet_targets(cfg);
  if (o.args[0] == "sessions") return print_rows(o, ask_all(cfg, targets, fleet::Op::Execute, "SHOW PROXYSESSION", 0));
  return fleet_kill(o, cfg, targets);
}

}  // namespace myrelay::ctl
