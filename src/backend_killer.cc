// Side connections that stop statements on the backend (see backend_killer.h).
#include "myrelay/backend_killer.h"

#include <event2/buffer.h>

#include "myrelay/log.h"
#include "myrelay/proxy.h"
#include "myrelay/worker.h"

namespace myrelay {

using namespace proto;

BackendKiller::BackendKiller(Worker& worker, const BackendServer& server, const std::string& cluster,
                             const BackendLogin& login, uint32_t server_sessid, bool query_only)
    : worker_(worker), target_(server_sessid), query_only_(query_only) {
  auto cfg = worker.proxy().config();
  deadline_ = evtimer_new(worker.base(), on_deadline, this);
  int ms = 2 * cfg->backend_connect_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(deadline_, &tv);
  BackendLogin l = login;
  l.database.clear();  // KILL needs no database, and the session's may be gone
  l.attributes.emplace_back("_proxy_purpose", "kill");
  conn_ = std::make_unique<ServerSession>(*this, worker.proxy(), worker.base(), server,
                                          worker.proxy().ids().next_ss_id(), cfg->backend_connect_ms,
                                          cluster);
  conn_->connect(l);
}

BackendKiller::~BackendKiller() {
  if (deadline_) event_free(deadline_);
}

void BackendKiller::on_server_ready(ServerSession* ss) {
  std::string sql = std::string(query_only_ ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(target_);
  std::string payload(1, char(COM_QUERY));
  payload += sql;
  frame_packet(ss->conn()->output(), 0, payload);
  ss->conn()->flush();
}

void BackendKiller::on_server_readable(ServerSession* ss) {
  uint8_t fs, ls;
  std::string payload;
  if (read_packet(ss->conn()->input(), 64 * 1024, fs, ls, payload) != ReadStatus::Complete)
    return;
  ErrPacket e;
  if (!payload.empty() && uint8_t(payload[0]) == kErrHeader && parse_err(payload, e)) {
    // 1094: the statement or connection had already ended; nothing to stop.
    if (e.code == 1094)
      finish("already gone");
    else
      finish(("refused: " + e.message).c_str());
    return;
  }
  finish("done");
}

void BackendKiller::on_server_login_failed(ServerSession*, const std::string& err_payload) {
  ErrPacket e;
  parse_err(err_payload, e);
  finish(("login failed: " + e.message).c_str());
}

void BackendKiller::on_server_lost(ServerSession*, const std::string& why) {
  finish(("connection lost: " + why).c_str());
}

void BackendKiller::on_deadline(evutil_socket_t, short, void* arg) {
  static_cast<BackendKiller*>(arg)->finish("timed out");
}

void BackendKiller::finish(const char* outcome) {
  if (finished_) return;
  finished_ = true;
  LOG_DEBUG("backend %s: KILL %s%u: %s", conn_ ? conn_->server().address.str().c_str() : "?",
            query_only_ ? "QUERY " : "", target_, outcome);
  worker_.backend_killer_done(this);
}

}  // namespace myrelay
