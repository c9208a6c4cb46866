// Fuzzes the protocol codec and the packet parsers with bytes as a client or
// a backend could send them: the input is a stream of framed packets, read
// with read_packet() (over a string, and over an evbuffer in random chains,
// which must agree), and every payload goes to each parser the proxy runs on
// packets it did not make: the handshake, the handshake response (as sent and
// with a few capability sets forced in), COM_CHANGE_USER, auth switch, OK,
// ERR, an OK's session-state information (and the OK rebuilt for a client,
// and the session state it feeds), and the whole stream as a text result set.
// Where parsed fields travel on (a client's user, database and attributes to
// the backend login; a backend's OK to the client), building the packet again
// and parsing it must give the same fields back.
//
// Input: the packet stream, then 2 parameter bytes at the end (consumed
// first: the largest packet read_packet accepts, the evbuffer chain size).
#include <event2/buffer.h>

#include <string>
#include <vector>

#include "fuzz_common.h"
#include "protocol/codec.h"
#include "protocol/packets.h"
#include "protocol/session_track.h"
#include "protocol/text_result.h"
#include "session/session_state.h"

using namespace myrelay;
using namespace myrelay::proto;

namespace {

constexpr size_t kMaxPackets = 64;

// read_packet() over an evbuffer made of chains of `piece` bytes must read
// what read_packet() over the string reads.
void compare_evbuffer_reader(std::string_view stream, size_t max_len, size_t piece) {
  evbuffer* buf = evbuffer_new();
  for (size_t off = 0; off < stream.size(); off += piece) {
    size_t n = std::min(piece, stream.size() - off);
    evbuffer_add_reference(buf, stream.data() + off, n, nullptr, nullptr);
  }
  std::string_view rest = stream;
  for (size_t i = 0; i < kMaxPackets; ++i) {
    uint8_t f1 = 0, l1 = 0, f2 = 0, l2 = 0;
    std::string p1, p2;
    size_t consumed = 0;
    ReadStatus s1 = read_packet(rest, max_len, f1, l1, p1, consumed);
    size_t before = evbuffer_get_length(buf);
    ReadStatus s2 = read_packet(buf, max_len, f2, l2, p2);
    FUZZ_CHECK(s1 == s2);
    if (s1 != ReadStatus::Complete) {
      FUZZ_CHECK(evbuffer_get_length(buf) == before);  // nothing consumed
      break;
    }
    FUZZ_CHECK(p1 == p2 && f1 == f2 && l1 == l2);
    FUZZ_CHECK(before - evbuffer_get_length(buf) == consumed);
    FUZZ_CHECK(p1.size() <= max_len);
    rest.remove_prefix(consumed);
  }
  evbuffer_free(buf);
}

// A client's handshake response travels on to the backend login (user,
// database, attributes, rebuilt by server_login with the capabilities
// negotiated there): what the backend parses must be what the client sent.
void handshake_response_round_trip(const HandshakeResponse& hr, uint32_t backend_caps) {
  HandshakeResponse resp;
  bool with_db = !hr.database.empty();
  uint32_t caps = (backend_caps & kProxyCapabilities) | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
  caps &= ~uint32_t(CLIENT_CONNECT_WITH_DB);
  if (with_db) caps |= CLIENT_CONNECT_WITH_DB;
  resp.capabilities = caps;
  resp.ext_capabilities = hr.ext_capabilities;
  resp.max_packet = hr.max_packet;
  resp.charset = hr.charset;
  resp.user = hr.user;
  resp.auth_response = std::string(20, '\x5a');
  resp.database = hr.database;
  resp.auth_plugin = kNativePasswordPlugin;
  resp.attributes = hr.attributes;
  resp.attributes.emplace_back("_proxy_sessid", "12345");
  std::string built = build_handshake_response(resp);
  HandshakeResponse back;
  std::string error;
  FUZZ_CHECK(parse_handshake_response(built, back, error));
  FUZZ_CHECK(back.user == resp.user);
  FUZZ_CHECK(back.auth_response == resp.auth_response);
  if (with_db) FUZZ_CHECK(back.database == resp.database);
  if (caps & CLIENT_PLUGIN_AUTH) FUZZ_CHECK(back.auth_plugin == resp.auth_plugin);
  if (caps & CLIENT_CONNECT_ATTRS) FUZZ_CHECK(back.attributes == resp.attributes);
}

// The same for COM_CHANGE_USER (a pooled server session switched to the
// client's user, with the client's attributes).
void change_user_round_trip(const ChangeUser& cu, uint32_t backend_caps) {
  uint32_t caps = (backend_caps & kProxyCapabilities) | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
  ChangeUser out;
  out.user = cu.user;
  out.auth_response = std::string(20, '\0');
  out.database = cu.database;
  out.charset = cu.charset;
  out.auth_plugin = kNativePasswordPlugin;
  out.attributes = cu.attributes;
  std::string built = build_change_user(out, caps);
  ChangeUser back;
  std::string error;
  FUZZ_CHECK(parse_change_user(built, caps, back, error));
  FUZZ_CHECK(back.user == out.user && back.database == out.database && back.charset == out.charset);
  FUZZ_CHECK(back.auth_response == out.auth_response);
  if (caps & CLIENT_PLUGIN_AUTH) FUZZ_CHECK(back.auth_plugin == out.auth_plugin);
  if (caps & CLIENT_CONNECT_ATTRS) FUZZ_CHECK(back.attributes == out.attributes);
}

// A backend's OK: where its client form starts (the relay rewrites its
// status byte in place) and the OK rebuilt for the client, which a tracking
// client must parse back to what its trackers report.
void tracked_ok(std::string_view payload, const std::string& trackers_text, SessionState& state) {
  TrackedOk ok;
  if (!parse_tracked_ok(payload, ok)) return;
  for (const StateChange& c : ok.changes) {
    // The views point into the packet.
    FUZZ_CHECK(c.name.empty() || (c.name.data() >= payload.data() &&
                                  c.name.data() + c.name.size() <= payload.data() + payload.size()));
    FUZZ_CHECK(c.value.empty() || (c.value.data() >= payload.data() &&
                                   c.value.data() + c.value.size() <= payload.data() + payload.size()));
  }
  for (bool mariadb : {true, false}) {
    size_t status_at = 0;
    if (size_t prefix = client_ok_prefix(payload, ok, mariadb, status_at)) {
      // server_session.cc writes payload[status_at + 1] and sends `prefix` bytes.
      FUZZ_CHECK(prefix <= payload.size());
      FUZZ_CHECK(status_at + 2 <= prefix);
    }
  }
  // The trackers a session asks for, as SELECT @@session_track_... prints them.
  std::vector<std::string_view> cells;
  std::string_view t = trackers_text;
  for (int i = 0; i < 3; ++i) {
    size_t z = t.find('\0');
    cells.push_back(t.substr(0, z));
    t = z == std::string_view::npos ? std::string_view() : t.substr(z + 1);
  }
  cells.push_back(t);
  TrackerSet from_text = TrackerSet::from(cells[0], cells[1], cells[2], cells[3]);
  TrackerSet everything = TrackerSet::from("*", "ON", "ON", "CHARACTERISTICS");
  const TrackerSet none;
  const TrackerSet* sets[] = {&none, &everything, &from_text, TrackerSet::shared_mariadb_defaults().get()};
  std::string out;
  for (const TrackerSet* ts : sets) {
    for (uint32_t caps : {uint32_t(CLIENT_PROTOCOL_41), uint32_t(kProxyCapabilities)}) {
      for (bool mariadb : {true, false}) {
        build_client_ok(ok, caps, *ts, mariadb, out);
        if (!(caps & CLIENT_SESSION_TRACK)) continue;
        // A tracking client reads the OK as the backend's, less what it does not track.
        TrackedOk back;
        FUZZ_CHECK(parse_tracked_ok(out, back));
        FUZZ_CHECK(back.header == ok.header && back.affected_rows == ok.affected_rows &&
                   back.last_insert_id == ok.last_insert_id && back.warnings == ok.warnings);
        FUZZ_CHECK((back.status & ~SERVER_SESSION_STATE_CHANGED) == (ok.status & ~SERVER_SESSION_STATE_CHANGED));
        FUZZ_CHECK(back.info == ok.info);
        std::vector<StateChange> reported;
        for (const StateChange& c : ok.changes)
          if (ts->reports(c)) reported.push_back(c);
        FUZZ_CHECK(back.changes.size() == reported.size());
        for (size_t i = 0; i < reported.size(); ++i) {
          FUZZ_CHECK(back.changes[i].type == reported[i].type);
          FUZZ_CHECK(back.changes[i].name == reported[i].name);
          FUZZ_CHECK(back.changes[i].value == reported[i].value);
        }
      }
    }
  }
  // What the session keeps of it, and the SET that replays it elsewhere.
  state.apply(ok, payload.size() & 1);
  std::string difference;
  (void)state.echo_matches(ok, difference);
  // Every name it keeps is written into SQL as is: plain identifiers only.
  for (const auto& [name, value] : state.variables()) FUZZ_CHECK(SessionState::plain_identifier(name));
  (void)state.replay_set("");
  (void)SessionState::describe(state.reasons());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  FuzzedDataProvider fdp(data, size);
  static const size_t kMaxLens[] = {0, 1, 4, 16, 255, 4096, 1u << 20, 1u << 30};
  const size_t max_len = kMaxLens[fdp.ConsumeIntegral<uint8_t>() % 8];
  const size_t piece = 1 + fdp.ConsumeIntegral<uint8_t>() % 64;
  const std::string stream = fdp.ConsumeRemainingBytesAsString();

  compare_evbuffer_reader(stream, max_len, piece);
  // The parsers see packets up to the configured maximum (1 GiB by default).
  std::vector<std::string> packets = fuzz::split_packets(stream, 1u << 30, kMaxPackets);

  static const uint32_t kCapSets[] = {
      kProxyCapabilities,
      kProxyCapabilities & ~uint32_t(CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA),
      CLIENT_PROTOCOL_41,
      CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH |
          CLIENT_CONNECT_ATTRS,
      0xffffffffu,
  };
  SessionState state;
  for (size_t i = 0; i < packets.size(); ++i) {
    const std::string& p = packets[i];
    std::string error;
    Handshake hs;
    if (parse_handshake(p, hs, error)) FUZZ_CHECK(hs.server_version.find('\0') == std::string::npos);

    HandshakeResponse hr;
    if (parse_handshake_response(p, hr, error) && !hr.is_ssl_request)
      handshake_response_round_trip(hr, kCapSets[i % 5]);
    if (p.size() >= 4) {
      for (uint32_t caps : kCapSets) {
        std::string forced = p;
        for (int b = 0; b < 4; ++b) forced[b] = char(caps >> (8 * b));
        HandshakeResponse h;
        if (parse_handshake_response(forced, h, error) && !h.is_ssl_request)
          handshake_response_round_trip(h, caps);
      }
    }
    for (uint32_t caps : kCapSets) {
      ChangeUser cu;
      if (parse_change_user(p, caps, cu, error)) change_user_round_trip(cu, caps);
    }
    AuthSwitch as;
    if (parse_auth_switch(p, as)) FUZZ_CHECK(as.plugin.find('\0') == std::string::npos);
    OkPacket ok;
    (void)parse_ok(p, ok);
    ErrPacket err;
    if (parse_err(p, err)) FUZZ_CHECK(err.sql_state.size() == 5);
    (void)is_eof_or_terminator(fuzz::bytes(p), p.size());
    tracked_ok(p, i + 1 < packets.size() ? packets[i + 1] : std::string(), state);
  }

  TextResult result;
  std::string error;
  if (parse_text_result(packets, result, error)) {
    for (const auto& row : result.rows) FUZZ_CHECK(row.size() == result.columns.size());
    if (!result.columns.empty()) (void)result.column(result.columns.back());
  }
  if (packets.size() > 1) {
    std::vector<std::string> tail(packets.begin() + 1, packets.end());
    (void)parse_text_result(tail, result, error);
  }
  return 0;
}
