// A client session's state and its server sessions (see client_session.h
// and session_state.h): what the server reports updates the state; a server
// session that does not hold the state's version gets it replayed, in one
// round trip, before the next command runs on it.
#include <event2/buffer.h>

#include "control/shm_table.h"
#include "protocol/text_result.h"
#include "service/log.h"
#include "session/client_session.h"
#include "session/session_host.h"

namespace myrelay {

using namespace proto;

namespace {

// Every server session reports everything to the proxy.
const char kTrackEverything[] =
    "session_track_system_variables = '*', session_track_schema = ON, session_track_state_change = ON, "
    "session_track_transaction_info = 'CHARACTERISTICS'";
const char kReadTrackers[] =
    "SELECT @@global.session_track_system_variables, @@global.session_track_schema, "
    "@@global.session_track_state_change, @@global.session_track_transaction_info";

std::string query(const std::string& sql) { return std::string(1, char(COM_QUERY)) + sql; }

// "SET TRANSACTION READ ONLY; SET TRANSACTION ISOLATION LEVEL ...;"
std::vector<std::string> statements_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string::npos) end = text.size();
    std::string st = text.substr(pos, end - pos);
    size_t b = st.find_first_not_of(" \t\n");
    if (b != std::string::npos) out.push_back(st.substr(b));
    pos = end + 1;
  }
  return out;
}

}  // namespace

// What a server session needs to hold the session's state: the server's
// tracker defaults (once per cluster), the database, the variables and the
// proxy's own trackers in one SET, and the next transaction's
// characteristics.  All go in one write; the server answers in order.
std::vector<std::string> ClientSession::sync_commands(ServerSession* ss) const {
  std::vector<std::string> cmds;
  if (!host_.backend_facts(login_.cluster)->trackers) cmds.push_back(query(kReadTrackers));
  if (!state_.schema().empty() && state_.schema() != ss->schema())
    cmds.push_back(std::string(1, char(COM_INIT_DB)) + state_.schema());
  // A shared connection holds another session's state: only the difference.
  std::string set = state_.replay_diff(ss->held(), ss->tracking_on() ? "" : kTrackEverything);
  if (!set.empty()) cmds.push_back(query(set));
  for (const std::string& st : statements_of(state_.characteristics())) cmds.push_back(query(st));
  return cmds;
}

bool ClientSession::start_sync(ServerSession* ss) {
  if (!ss->tracks_state() || ss->synced_version() == state_.version()) return false;
  std::vector<std::string> cmds = sync_commands(ss);
  if (cmds.empty()) {
    ss->set_synced_version(state_.version());
    return false;
  }
  change_phase(Phase::AwaitServer);
  internal_ = Internal::Sync;
  ss->run_internal(std::move(cmds));
  return true;
}

// Whether every command of the sync did what it should: OKs throughout, and
// the SET's echo showing the variables as the session has them.
bool ClientSession::sync_succeeded(ServerSession* ss, std::string& why) {
  const auto& results = ss->internal_results();
  size_t i = 0;
  auto failed = [&](const std::vector<std::string>& packets) {
    ErrPacket e;
    if (!packets.empty() && parse_err(packets.front(), e)) {
      why = std::to_string(e.code) + " " + e.message;
      return true;
    }
    return packets.empty();
  };
  if (!host_.backend_facts(login_.cluster)->trackers) {
    TextResult res;
    if (failed(results[i]) || !parse_text_result(results[i], res, why) || res.rows.size() != 1 ||
        res.columns.size() != 4) {
      if (why.empty()) why = "the tracker defaults could not be read";
      return false;
    }
    auto cell = [&](size_t c) { return res.rows[0][c].value_or(std::string()); };
    TrackerSet t = TrackerSet::from(cell(0), cell(1), cell(2), cell(3));
    host_.note_backend_trackers(login_.cluster, t);
    client_trackers_ = host_.backend_facts(login_.cluster)->trackers;
    ++i;
  }
  for (; i < results.size(); ++i) {
    if (failed(results[i])) return false;
    TrackedOk echo;
    if (parse_tracked_ok(results[i].front(), echo) && !state_.echo_matches(echo, why)) return false;
  }
  ss->set_tracking_on(true);
  if (!state_.schema().empty()) ss->set_schema(state_.schema());
  ss->set_synced_version(state_.version());
  ss->set_held(nullptr);  // it holds this session's state now
  return true;
}

void ClientSession::on_internal_done(ServerSession* ss) {
  Step step(*this);
  if (ss != current_ || phase_ != Phase::AwaitServer) return;
  if (internal_ == Internal::Reprepare) {
    finish_reprepare(ss);
    return;
  }
  if (internal_ == Internal::CausalWait) {
    finish_causal_wait(ss);
    return;
  }
  std::string why;
  if (sync_succeeded(ss, why)) {
    continue_after_server();
    return;
  }
  if (!ss->tracking_on() && state_.variables().empty() && state_.characteristics().empty()) {
    // The trackers themselves were refused (a server without them): the
    // session goes on, but can never be carried.
    LOG_WARN("cs_id=%u: backend %s does not take session tracking (%s): this session cannot be carried", cs_id_,
             ss->server().address.str().c_str(), why.c_str());
    state_.set_reason(SessionState::kUnknownState, true);
    ss->set_synced_version(state_.version());
    continue_after_server();
    return;
  }
  LOG_WARN("cs_id=%u '%s': the session's state could not be given to server session %llu on %s (%s): closing",
           cs_id_, login_text_.c_str(), (unsigned long long)ss->ss_id(), ss->server().address.str().c_str(),
           why.c_str());
  close_after_flush("state could not be carried");
}

// The current server session is logged in: once it holds the session's
// state, the command that waited for it runs, or the input is read on.
void ClientSession::continue_after_server() {
  if (start_sync(current_)) return;  // on_internal_done comes back here
  change_phase(Phase::Ready);
  if (!held_command_.empty()) {
    std::string held = std::move(held_command_);
    held_command_.clear();
    send_to_server(std::move(held));
  } else {
    release_to_shared();  // nothing to run (a login's sync): multiplexed, it lets it go
    handle_input();  // a long command still in the input
  }
}

void ClientSession::on_session_state(ServerSession* ss, const TrackedOk& ok) {
  if (ss != current_) return;
  std::string schema = state_.schema();
  state_.apply(ok, temporary_report_);
  if (state_.schema() != schema) {
    db_ = state_.schema();
    identity_changed();
  }
}

}  // namespace myrelay
