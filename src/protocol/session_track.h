// Session state information in OK packets (CLIENT_SESSION_TRACK): what the
// server reports a statement changed in the session, the proxy's only
// reliable view of a session's state.  The proxy asks every backend for all
// of it (session_track_system_variables='*' and the rest) and gives each
// client what the client's own trackers would have reported: the OK is
// parsed whole and rebuilt for the client.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace myrelay::proto {

enum : uint8_t {
  SESSION_TRACK_SYSTEM_VARIABLES = 0,
  SESSION_TRACK_SCHEMA = 1,
  SESSION_TRACK_STATE_CHANGE = 2,
  SESSION_TRACK_GTIDS = 3,
  SESSION_TRACK_TRANSACTION_CHARACTERISTICS = 4,
  SESSION_TRACK_TRANSACTION_STATE = 5,
};

// One entry of the state information.  Views into the packet it came from
// (an OK is looked at on the relay path: nothing is copied).
struct StateChange {
  uint8_t type = 0;
  std::string_view name;   // SYSTEM_VARIABLES: the variable
  std::string_view value;  // its value; SCHEMA: the schema; STATE_CHANGE: "1" (the data itself);
                           // TRANSACTION_*: the text; GTIDS: the raw data
};

// An OK packet (or the OK that ends a result set, header 0xfe) as a backend
// with CLIENT_SESSION_TRACK sends it; its views live as long as the packet.
struct TrackedOk {
  uint8_t header = 0;
  uint64_t affected_rows = 0;
  uint64_t last_insert_id = 0;
  uint16_t status = 0;
  uint16_t warnings = 0;
  std::string_view info;  // the message ("Rows matched: ..."), often empty
  std::vector<StateChange> changes;
};

// False for anything that is not a well-formed OK of that kind: every length
// is checked against the packet.  `out` is reused (its vector keeps its
// capacity).
bool parse_tracked_ok(std::string_view payload, TrackedOk& out);

// The length of the OK the server would send a client whose trackers
// report none of `ok`'s entries, when that OK is the start of `payload`
// with the state flag cleared (a MariaDB server's encoding); 0 otherwise.
// `status_at`: where the status flags are in `payload`.
size_t client_ok_prefix(std::string_view payload, const TrackedOk& ok, bool mariadb, size_t& status_at);

// What a session's trackers report (its session_track_* variables).
struct TrackerSet {
  bool all_variables = false;        // session_track_system_variables='*'
  std::set<std::string, std::less<>> variables;   // lower-case names
  bool schema = false;
  bool state_change = false;
  enum { Off, State, Characteristics } transaction_info = Off;

  // From the variables' values (as SELECT @@session_track_... prints them).
  static TrackerSet from(std::string_view system_variables, std::string_view schema,
                         std::string_view state_change, std::string_view transaction_info);
  // MariaDB's defaults.
  static TrackerSet mariadb_defaults();
  static const std::shared_ptr<const TrackerSet>& shared_mariadb_defaults();
  bool reports(const StateChange& c) const;
};

// The OK as the server would have sent it to a client with capabilities
// `client_caps` and trackers `trackers`: only what they report, the
// SERVER_SESSION_STATE_CHANGED flag only for a tracking client with something
// reported, and the message encoded as that server encodes it (`mariadb`:
// length-encoded always).
std::string build_client_ok(const TrackedOk& ok, uint32_t client_caps, const TrackerSet& trackers, bool mariadb);
// The same into `out` (emptied first, its allocation kept).
void build_client_ok(const TrackedOk& ok, uint32_t client_caps, const TrackerSet& trackers, bool mariadb,
                     std::string& out);

}  // namespace myrelay::proto
