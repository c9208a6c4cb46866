// A proxy statement that needs other proxies of the fleet (DESIGN section
// 6a), run on the asking session's own loop:
//   - an id whose proxy_id is a peer's: the statement goes to that peer, which
//     judges the caller by its own rules and answers (OK, 1094, 1095, 1227...);
//   - a backend connection id: looked up here and on every peer, then run
//     where the one session it names lives (several: refused, as alone);
//   - SHOW GLOBAL PROXYSESSION, [EXPLAIN] KILL GLOBAL PROXYSESSION WHERE: here
//     and on every peer, merged, with a proxy_id column for listings; a peer
//     that cannot be asked leaves a warning and the rest still answers.
// A peer that cannot be asked about a statement meant for it gives ERROR 1429
// naming it, within fleet.timeout_ms.
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/admin_commands.h"
#include "control/fleet_call.h"
#include "service/config.h"

namespace myrelay {

class SessionDirectory;

namespace fleet {

class FleetCommand {
 public:
  struct Result {
    admin::Answer answer;
    int forwarded_to = -1;      // the peer that ran a statement about one session, or -1
    uint32_t target_cs_id = 0;  // that session
  };
  using Done = std::function<void(Result)>;

  // Whether running `st` here needs the fleet under `cfg`.
  static bool involves_peers(const sql::AdminStatement& st, const Config& cfg);

  // `statement` is the text as the client sent it (peers parse it again).
  FleetCommand(event_base* base, std::shared_ptr<const Config> cfg, SessionDirectory& directory, admin::Caller caller,
               sql::AdminStatement st, std::string statement, Done done);
  ~FleetCommand();
  FleetCommand(const FleetCommand&) = delete;
  FleetCommand& operator=(const FleetCommand&) = delete;
  // Starts the requests; `done` runs later, from the loop, exactly once
  // (unless the command is destroyed first, which cancels it).
  void start();

  // A request as this proxy sends it for `caller`.
  static Request request_for(const Config& cfg, const admin::Caller& caller, Op op, const std::string& statement,
                             uint64_t id);
  static PeerAddress address_of(const FleetPeer& p);

 private:
  void ask(const FleetPeer& peer, Op op, uint64_t id);
  void on_answer(PeerCall& call);
  void all_answered();
  void resolved();
  void forward(const FleetPeer& peer, uint64_t id);
  void merge_rows(admin::Answer& out);
  void finish(Result r);
  std::string unreachable(const PeerCall& c) const;

  enum class Plan { Forward, Resolve, Global };
  event_base* base_;
  std::shared_ptr<const Config> cfg_;
  SessionDirectory& directory_;
  admin::Caller caller_;
  sql::AdminStatement st_;
  std::string statement_;
  Done done_;
  Plan plan_ = Plan::Global;
  admin::Answer local_;
  std::vector<std::unique_ptr<PeerCall>> calls_;
  size_t outstanding_ = 0;
  event* later_ = nullptr;  // finishes from the loop when nothing was asked
  Result pending_;
};

}  // namespace fleet
}  // namespace myrelay
