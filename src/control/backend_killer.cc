// Side connections that stop statements on the backend (see backend_killer.h).
#include "control/backend_killer.h"

#include <atomic>

#include "protocol/auth.h"
#include "protocol/text_result.h"
#include "service/log.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

namespace {
constexpr int kPollMs = 100;  // between looks at the process list
}

BackendKiller::BackendKiller(BackendHost& host, std::function<void(BackendKiller*, shm::BackendStop)> done,
                             const BackendServer& server, const std::string& cluster, const BackendLogin& login,
                             uint32_t server_sessid, bool query_only)
    : host_(host), done_(std::move(done)), target_(server_sessid), query_only_(query_only), server_(server),
      cluster_(cluster) {
  auto cfg = host.config();
  escalate_ms_ = cfg->kill_escalate_ms;
  deadline_ = evtimer_new(host.base(), on_timer, this);
  poll_ = evtimer_new(host.base(), on_timer, this);
  // Logging in, then up to two watches (KILL QUERY, then KILL CONNECTION).
  int ms = 2 * cfg->backend_connect_ms + 2 * escalate_ms_ + 1000;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(deadline_, &tv);
  session_login_ = login;
  session_login_.database.clear();  // KILL needs no database, and the session's may be gone
  session_login_.attributes.emplace_back("_proxy_purpose", "kill");
  BackendLogin l = session_login_;
  const Cluster* c = cfg->find_cluster(cluster);
  if (c && !c->monitor.user.empty()) {
    as_monitor_ = true;
    l.user = c->monitor.user;
    l.hash1.reset();
    if (!c->monitor.password.empty()) l.hash1 = sha1(c->monitor.password);
  }
  log_in(l);
}

void BackendKiller::log_in(const BackendLogin& login) {
  step_ = Step::Login;
  conn_ = std::make_unique<ServerSession>(*this, host_, server_, cluster_, host_.next_ss_id(),
                                          host_.config()->backend_connect_ms);
  conn_->connect(login);
}

BackendKiller::~BackendKiller() {
  if (deadline_) event_free(deadline_);
  if (poll_) event_free(poll_);
}

void BackendKiller::on_server_ready(ServerSession*) { send_kill(!query_only_); }

void BackendKiller::send_kill(bool connection) {
  step_ = step_ == Step::Login ? Step::Kill : Step::Escalate;
  std::string sql = std::string(connection ? "KILL CONNECTION " : "KILL QUERY ") + std::to_string(target_);
  conn_->run_internal({std::string(1, char(COM_QUERY)) + sql});
}

void BackendKiller::look() {
  conn_->run_internal({std::string(1, char(COM_QUERY)) +
                       "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(target_)});
}

void BackendKiller::on_internal_done(ServerSession* ss) {
  const std::vector<std::string>& packets = ss->internal_results().at(0);
  if (step_ == Step::Kill || step_ == Step::Escalate) {
    ErrPacket e;
    if (!packets.empty() && parse_err(packets.front(), e)) {
      if (as_monitor_ && step_ == Step::Kill &&
          (e.code == er::ER_KILL_DENIED_ERROR.code || e.code == er::ER_SPECIFIC_ACCESS_DENIED_ERROR.code)) {
        static std::atomic<bool> told{false};
        if (!told.exchange(true))
          LOG_WARN("backend %s: the monitor account may not KILL other users' threads (%s): side connections "
                   "log in as the session's user instead; GRANT CONNECTION ADMIN (or SUPER) to the monitor account",
                   conn_->server().address.str().c_str(), e.message.c_str());
        as_monitor_ = false;
        relogin_ = true;  // from the loop: this callback's connection must outlive it
        timeval now{0, 0};
        evtimer_add(poll_, &now);
        return;
      }
      // 1094: the statement or connection had already ended: nothing runs.
      if (e.code == er::ER_NO_SUCH_THREAD.code)
        finish(step_ == Step::Kill ? shm::BackendStop::Confirmed : shm::BackendStop::Escalated, "already gone");
      else
        finish(shm::BackendStop::Failed, "refused: " + e.message);
      return;
    }
    step_ = step_ == Step::Kill ? Step::Watch : Step::WatchEscalated;
    watch_until_us_ = host_.loop_time_us() + int64_t(escalate_ms_) * 1000;
    look();
    return;
  }
  // A look at the process list: gone, or idle ("Sleep"), is stopped.
  TextResult r;
  std::string error;
  if (!parse_text_result(packets, r, error)) {
    finish(shm::BackendStop::Failed, "cannot read the process list: " + error);
    return;
  }
  bool running = !r.rows.empty() && r.rows[0].size() == 1 && r.rows[0][0] && *r.rows[0][0] != "Sleep";
  bool want_gone = step_ == Step::WatchEscalated || !query_only_;
  if (r.rows.empty() || (!want_gone && !running)) {
    finish(step_ == Step::WatchEscalated ? shm::BackendStop::Escalated : shm::BackendStop::Confirmed,
           r.rows.empty() ? "gone" : "stopped");
    return;
  }
  if (host_.loop_time_us() < watch_until_us_) {
    timeval tv{0, kPollMs * 1000};
    evtimer_add(poll_, &tv);
    return;
  }
  if (step_ == Step::Watch && query_only_) {
    LOG_INFO("backend %s: thread %u still runs its statement %d ms after KILL QUERY: KILL CONNECTION",
             conn_->server().address.str().c_str(), target_, escalate_ms_);
    send_kill(true);
    return;
  }
  finish(shm::BackendStop::Failed, "still there " + std::to_string(escalate_ms_) + " ms after KILL CONNECTION");
}

void BackendKiller::on_server_login_failed(ServerSession*, const std::string& err_payload) {
  ErrPacket e;
  parse_err(err_payload, e);
  finish(shm::BackendStop::Failed, "login failed: " + e.message);
}

void BackendKiller::on_server_lost(ServerSession*, const std::string& why) {
  finish(shm::BackendStop::Failed, "connection lost: " + why);
}

void BackendKiller::on_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<BackendKiller*>(arg);
  if (self->finished_) return;
  if (self->relogin_) {
    self->relogin_ = false;
    self->log_in(self->session_login_);
    return;
  }
  if (self->step_ == Step::Watch || self->step_ == Step::WatchEscalated) {
    if (evtimer_pending(self->deadline_, nullptr)) {  // the poll timer
      self->look();
      return;
    }
  }
  self->finish(shm::BackendStop::Failed, "timed out");
}

void BackendKiller::finish(shm::BackendStop outcome, const std::string& what) {
  if (finished_) return;
  finished_ = true;
  evtimer_del(poll_);
  evtimer_del(deadline_);
  const std::string addr = conn_ ? conn_->server().address.str() : "?";
  if (outcome == shm::BackendStop::Failed)
    LOG_WARN("backend %s: KILL %s%u not confirmed: %s", addr.c_str(), query_only_ ? "QUERY " : "", target_,
             what.c_str());
  else
    LOG_DEBUG("backend %s: KILL %s%u: %s", addr.c_str(), query_only_ ? "QUERY " : "", target_, what.c_str());
  done_(this, outcome);
}

}  // namespace myrelay
