// Side connections that stop statements on the backend (see backend_killer.h).
#include "control/backend_killer.h"

#include "service/log.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

BackendKiller::BackendKiller(BackendHost& host, std::function<void(BackendKiller*)> done,
                             const BackendServer& server, const std::string& cluster, const BackendLogin& login,
                             uint32_t server_sessid, bool query_only)
    : done_(std::move(done)), target_(server_sessid), query_only_(query_only) {
  auto cfg = host.config();
  deadline_ = evtimer_new(host.base(), on_deadline, this);
  int ms = 2 * cfg->backend_connect_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(deadline_, &tv);
  BackendLogin l = login;
  l.database.clear();  // KILL needs no database, and the session's may be gone
  l.attributes.emplace_back("_proxy_purpose", "kill");
  conn_ = std::make_unique<ServerSession>(*this, host, server, cluster, host.next_ss_id(), cfg->backend_connect_ms);
  conn_->connect(l);
}

BackendKiller::~BackendKiller() {
  if (deadline_) event_free(deadline_);
}

void BackendKiller::on_server_ready(ServerSession* ss) {
  std::string sql = std::string(query_only_ ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(target_);
  ss->run_internal({std::string(1, char(COM_QUERY)) + sql});
}

void BackendKiller::on_internal_done(ServerSession* ss) {
  const std::vector<std::string>& packets = ss->internal_results().at(0);
  ErrPacket e;
  if (!packets.empty() && parse_err(packets.front(), e)) {
    // 1094: the statement or connection had already ended; nothing to stop.
    finish(e.code == er::ER_NO_SUCH_THREAD.code ? "already gone" : "refused: " + e.message);
    return;
  }
  finish("done");
}

void BackendKiller::on_server_login_failed(ServerSession*, const std::string& err_payload) {
  ErrPacket e;
  parse_err(err_payload, e);
  finish("login failed: " + e.message);
}

void BackendKiller::on_server_lost(ServerSession*, const std::string& why) { finish("connection lost: " + why); }

void BackendKiller::on_deadline(evutil_socket_t, short, void* arg) {
  static_cast<BackendKiller*>(arg)->finish("timed out");
}

void BackendKiller::finish(const std::string& outcome) {
  if (finished_) return;
  finished_ = true;
  LOG_DEBUG("backend %s: KILL %s%u: %s", conn_ ? conn_->server().address.str().c_str() : "?",
            query_only_ ? "QUERY " : "", target_, outcome.c_str());
  done_(this);
}

}  // namespace myrelay
