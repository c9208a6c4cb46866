// Session state information (see session_track.h).
#include "protocol/session_track.h"

#include "protocol/codec.h"

namespace myrelay::proto {

namespace {

constexpr uint16_t kStateChanged = 0x4000;  // SERVER_SESSION_STATE_CHANGED

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

bool on(std::string_view v) {
  std::string l = lower(trim(v));
  return l == "on" || l == "1" || l == "true";
}

// One entry's data, as the server encodes it.
void write_entry_data(Writer& w, const StateChange& c) {
  switch (c.type) {
    case SESSION_TRACK_SYSTEM_VARIABLES: {
      Writer d;
      d.lenenc_str(c.name).lenenc_str(c.value);
      w.lenenc_str(d.str());
      break;
    }
    case SESSION_TRACK_GTIDS:
    case SESSION_TRACK_STATE_CHANGE:
      w.lenenc_str(c.value);  // the data itself: "1", or the GTIDs as they came
      break;
    default: {
      // A length-encoded string inside the entry's length-encoded data.
      uint64_t n = c.value.size();
      size_t inner = n < 251 ? 1 : n < 65536 ? 3 : n < 16777216 ? 4 : 9;
      w.lenenc_int(inner + n).lenenc_str(c.value);
      break;
    }
  }
}

bool parse_entries(std::string_view block, std::vector<StateChange>& out) {
  Reader b(block);
  while (b.ok() && !b.at_end()) {
    StateChange c;
    c.type = b.u8();
    std::string_view data = b.lenenc_view();
    if (!b.ok()) return false;
    Reader d(data);
    switch (c.type) {
      case SESSION_TRACK_SYSTEM_VARIABLES:
        c.name = d.lenenc_view();
        c.value = d.lenenc_view();
        break;
      case SESSION_TRACK_GTIDS:
      case SESSION_TRACK_STATE_CHANGE:
        c.value = data;
        break;
      default:
        c.value = d.lenenc_view();
        break;
    }
    if (!d.ok()) return false;
    out.push_back(c);
  }
  return b.ok();
}

bool is_lower(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return false;
  return true;
}

}  // namespace

bool parse_tracked_ok(std::string_view payload, TrackedOk& out) {
  Reader r(payload);
  out.changes.clear();
  out.info = {};
  out.header = r.u8();
  if (!r.ok() || (out.header != kOkHeader && out.header != kEofHeader)) return false;
  out.affected_rows = r.lenenc_int();
  out.last_insert_id = r.lenenc_int();
  out.status = r.u16();
  out.warnings = r.u16();
  if (!r.ok()) return false;
  if (r.at_end()) return true;  // an empty message may be left out
  out.info = r.lenenc_view();
  if (!r.ok()) return false;
  if (!(out.status & kStateChanged) || r.at_end()) return true;
  std::string_view block = r.lenenc_view();
  return r.ok() && parse_entries(block, out.changes);
}

size_t client_ok_prefix(std::string_view payload, const TrackedOk& ok, bool mariadb, size_t& status_at) {
  if (!mariadb) return 0;  // MySQL encodes the message otherwise for such a client
  Reader r(payload);
  r.u8();
  r.lenenc_int();
  r.lenenc_int();
  if (!r.ok()) return 0;
  status_at = size_t(r.pos() - reinterpret_cast<const uint8_t*>(payload.data()));
  if (!ok.info.empty()) return size_t(ok.info.data() + ok.info.size() - payload.data());
  return status_at + 4 <= payload.size() ? status_at + 4 : 0;  // status, warnings
}

TrackerSet TrackerSet::from(std::string_view system_variables, std::string_view schema, std::string_view state_change,
                            std::string_view transaction_info) {
  TrackerSet t;
  size_t pos = 0;
  while (pos <= system_variables.size()) {
    size_t comma = system_variables.find(',', pos);
    if (comma == std::string_view::npos) comma = system_variables.size();
    std::string name = lower(trim(system_variables.substr(pos, comma - pos)));
    if (name == "*")
      t.all_variables = true;
    else if (!name.empty())
      t.variables.insert(name);
    pos = comma + 1;
  }
  t.schema = on(schema);
  t.state_change = on(state_change);
  std::string ti = lower(trim(transaction_info));
  t.transaction_info = ti == "characteristics" || ti == "2" ? Characteristics : ti == "state" || ti == "1" ? State : Off;
  return t;
}

TrackerSet TrackerSet::mariadb_defaults() {
  return from("autocommit,character_set_client,character_set_connection,character_set_results,time_zone", "ON", "OFF",
              "OFF");
}

const std::shared_ptr<const TrackerSet>& TrackerSet::shared_mariadb_defaults() {
  static const auto kDefaults = std::make_shared<const TrackerSet>(mariadb_defaults());
  return kDefaults;
}

bool TrackerSet::reports(const StateChange& c) const {
  switch (c.type) {
    case SESSION_TRACK_SYSTEM_VARIABLES:
      return all_variables || (is_lower(c.name) ? variables.count(c.name) : variables.count(lower(c.name))) != 0;
    case SESSION_TRACK_SCHEMA:
      return schema;
    case SESSION_TRACK_STATE_CHANGE:
      return state_change;
    case SESSION_TRACK_TRANSACTION_STATE:
      return transaction_info != Off;
    case SESSION_TRACK_TRANSACTION_CHARACTERISTICS:
      return transaction_info == Characteristics;
    default:
      return false;
  }
}

void build_client_ok(const TrackedOk& ok, uint32_t client_caps, const TrackerSet& trackers, bool mariadb,
                     std::string& out) {
  // The entries the client's trackers report, written after the fixed part
  // once it is known whether there are any.
  Writer block;
  for (const StateChange& c : ok.changes) {
    if (!trackers.reports(c)) continue;
    block.u8(c.type);
    write_entry_data(block, c);
  }
  const bool tracks = client_caps & CLIENT_SESSION_TRACK;
  const bool state = tracks && !block.str().empty();
  Writer w(std::move(out));
  w.u8(ok.header).lenenc_int(ok.affected_rows).lenenc_int(ok.last_insert_id);
  // The server raises the flag only for a client that tracks, and only for
  // what its trackers report.
  w.u16(uint16_t((ok.status & ~kStateChanged) | (state ? kStateChanged : 0))).u16(ok.warnings);
  if (mariadb || tracks) {
    if (state || !ok.info.empty()) w.lenenc_str(ok.info);
  } else if (!ok.info.empty()) {
    w.bytes(ok.info);
  }
  if (state) w.lenenc_str(block.str());
  out = w.take();
}

std::string build_client_ok(const TrackedOk& ok, uint32_t client_caps, const TrackerSet& trackers, bool mariadb) {
  std::string out;
  build_client_ok(ok, client_caps, trackers, mariadb, out);
  return out;
}

}  // namespace myrelay::proto
