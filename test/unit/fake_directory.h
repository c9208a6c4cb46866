// A session directory without a daemon: sessions are records the test adds,
// and what would go to the workers' control pipes is kept in `sent`.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "control/session_directory.h"
#include "control/shm_table.h"

namespace myrelay {

class FakeDirectory : public SessionDirectory {
 public:
  std::vector<shm::SessionRecord> sessions;
  std::vector<control::Request> sent;
  bool fail_send = false;

  std::vector<shm::SessionRecord> snapshot() const override { return sessions; }
  bool send(const shm::SessionRecord&, const control::Request& req, std::string& error) override {
    if (fail_send) {
      error = "pipe full";
      return false;
    }
    sent.push_back(req);
    return true;
  }
  int pid() const override { return 4242; }
  std::vector<Server> server_list;
  std::vector<Server> servers() const override { return server_list; }
  std::vector<shm::KillRecord> kill_log;  // newest first
  std::vector<shm::KillRecord> kills(size_t limit,
                                     const std::function<bool(const shm::KillRecord&)>& keep) const override {
    std::vector<shm::KillRecord> out;
    for (const auto& r : kill_log)
      if (out.size() < limit && (!keep || keep(r))) out.push_back(r);
    return out;
  }
  std::map<uint32_t, view::StatementInfo> statements;  // by cs_id
  bool statement(const shm::SessionRecord& r, view::StatementInfo& out) const override {
    auto it = statements.find(r.cs_id);
    if (it == statements.end()) return false;
    out = it->second;
    return true;
  }
  void add_server(const std::string& cluster, const std::string& addr, uint8_t role, uint8_t state, int64_t lag,
                  int failures, int64_t sessions, int64_t shared_idle = 0, int64_t waiting = 0) {
    Server s{};
    s.rec.in_use = shm::kServerConfigured;
    set_field(s.rec.cluster, cluster);
    set_field(s.rec.address, addr);
    s.rec.role = role;
    s.rec.state = state;
    s.rec.lag_s = lag;
    s.rec.consecutive_failures = failures;
    s.rec.last_check_us = 1700000000123456;
    s.server_sessions = sessions;
    s.shared_idle = shared_idle;
    s.waiting = waiting;
    server_list.push_back(s);
  }
  std::map<uint32_t, std::string> vars;  // by cs_id
  bool variables(const shm::SessionRecord& r, std::string& area) const override {
    auto it = vars.find(r.cs_id);
    if (it == vars.end()) return false;
    area = it->second;
    return true;
  }

  void add(uint32_t cs_id, const std::string& tenant, const std::string& user, uint32_t backend_id,
           uint64_t ss_id) {
    shm::SessionRecord r{};
    r.in_use = 1;
    r.cs_id = cs_id;
    r.proxy_sessid = 1000 + cs_id;
    set_field(r.tenant, tenant);
    set_field(r.user, user);
    set_field(r.cluster, "main");
    r.svr_session_count = 1;
    r.servers[0].ss_id = ss_id;
    r.servers[0].server_sessid = backend_id;
    sessions.push_back(r);
  }
};

}  // namespace myrelay
