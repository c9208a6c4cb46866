// What the proxy's own statements see of the sessions of every worker: a
// consistent copy of the session table, and a way to ask a session's worker
// to act on it.  The daemon's directory reads the shared-memory table and
// writes to the workers' control pipes, so a SQL session sees exactly what
// myrelayctl sees; unit tests use a fake one.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/control_pipe.h"
#include "control/session_view.h"
#include "myrelay/shm_layout.h"

namespace myrelay {

class ShmTable;

class SessionDirectory {
 public:
  virtual ~SessionDirectory() = default;
  // Every session in use, in Id order.
  virtual std::vector<shm::SessionRecord> snapshot() const = 0;
  // Hands a request to the worker that owns `target`; false and why when it
  // cannot be delivered.
  virtual bool send(const shm::SessionRecord& target, const control::Request& req, std::string& error) = 0;
  // The session's variables area (see shm_layout.h); false when the
  // session has ended meanwhile.
  virtual bool variables(const shm::SessionRecord& r, std::string& area) const = 0;
  // The daemon's pid (SHOW PROXYSESSION's pid column).
  virtual int pid() const = 0;
  // The session's statement area; false when the session has ended meanwhile.
  virtual bool statement(const shm::SessionRecord& r, view::StatementInfo& out) const = 0;
  // The backend servers' health (SHOW PROXYCONGESTION).
  struct Server {
    shm::ServerHealthRecord rec;
    int64_t server_sessions;
    int64_t shared_idle;
    int64_t waiting;
  };
  virtual std::vector<Server> servers() const = 0;
  // The kill log, newest first: at most `limit` entries that `keep` accepts.
  virtual std::vector<shm::KillRecord> kills(size_t limit,
                                             const std::function<bool(const shm::KillRecord&)>& keep) const = 0;
};

class ShmSessionDirectory : public SessionDirectory {
 public:
  ShmSessionDirectory(const ShmTable& table, int pid) : table_(table), pid_(pid) {}
  // The workers' control pipes, open for writing, by worker index.
  void set_control_fds(std::vector<int> fds) { control_fds_ = std::move(fds); }

  std::vector<shm::SessionRecord> snapshot() const override;
  bool send(const shm::SessionRecord& target, const control::Request& req, std::string& error) override;
  bool variables(const shm::SessionRecord& r, std::string& area) const override;
  int pid() const override { return pid_; }
  std::vector<Server> servers() const override;
  bool statement(const shm::SessionRecord& r, view::StatementInfo& out) const override;
  std::vector<shm::KillRecord> kills(size_t limit,
                                     const std::function<bool(const shm::KillRecord&)>& keep) const override;

 private:
  const ShmTable& table_;
  int pid_;
  std::vector<int> control_fds_;
};

}  // namespace myrelay
