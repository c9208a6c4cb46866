// Codec tests: framing, split packets, length-encoded values, handshake and
// handshake response, OK/ERR/EOF, text result sets.
#include <cppunit/extensions/HelperMacros.h>
#include <event2/buffer.h>

#include <cstring>

#include "protocol/packets.h"

using namespace myrelay::proto;

class ProtocolTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ProtocolTest);
  CPPUNIT_TEST(lenenc_round_trip);
  CPPUNIT_TEST(lenenc_rejects_bad_prefix);
  CPPUNIT_TEST(reader_stops_at_end);
  CPPUNIT_TEST(frame_small_packet);
  CPPUNIT_TEST(frame_exact_16mib_adds_empty_chunk);
  CPPUNIT_TEST(read_packet_joins_chunks);
  CPPUNIT_TEST(read_packet_incomplete_and_too_big);
  CPPUNIT_TEST(read_packet_from_evbuffer_split_arrival);
  CPPUNIT_TEST(buffer_peeker_across_chains);
  CPPUNIT_TEST(handshake_round_trip);
  CPPUNIT_TEST(handshake_rejects_garbage);
  CPPUNIT_TEST(handshake_response_round_trip);
  CPPUNIT_TEST(handshake_response_secure_connection_form);
  CPPUNIT_TEST(ssl_request_is_recognised);
  CPPUNIT_TEST(change_user_parse);
  CPPUNIT_TEST(ok_err_eof);
  CPPUNIT_TEST(auth_switch_round_trip);
  CPPUNIT_TEST(terminator_detection);
  CPPUNIT_TEST(text_resultset_shapes);
  CPPUNIT_TEST_SUITE_END();

 public:
  void lenenc_round_trip() {
    const uint64_t values[] = {0, 1, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000,
                               0xffffffffffffffffull};
    const size_t sizes[] = {1, 1, 1, 3, 3, 4, 4, 9, 9};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); ++i) {
      Writer w;
      w.lenenc_int(values[i]);
      CPPUNIT_ASSERT_EQUAL(sizes[i], w.str().size());
      CPPUNIT_ASSERT_EQUAL(sizes[i], lenenc_int_size(values[i]));
      Reader r(w.str());
      CPPUNIT_ASSERT_EQUAL(values[i], r.lenenc_int());
      CPPUNIT_ASSERT(r.ok());
      CPPUNIT_ASSERT(r.at_end());
    }
    Writer w;
    w.lenenc_str("hello").lenenc_str("");
    Reader r(w.str());
    CPPUNIT_ASSERT_EQUAL(std::string("hello"), r.lenenc_str());
    CPPUNIT_ASSERT_EQUAL(std::string(""), r.lenenc_str());
    CPPUNIT_ASSERT(r.ok());
  }

  void lenenc_rejects_bad_prefix() {
    const uint8_t ff[] = {0xff, 1, 2};
    Reader r1(ff, sizeof(ff));
    r1.lenenc_int();
    CPPUNIT_ASSERT(!r1.ok());
    const uint8_t null[] = {0xfb};
    Reader r2(null, 1);
    bool is_null = false;
    r2.lenenc_int(&is_null);
    CPPUNIT_ASSERT(r2.ok());
    CPPUNIT_ASSERT(is_null);
    Reader r3(null, 1);
    r3.lenenc_int();
    CPPUNIT_ASSERT(!r3.ok());
    // A length that runs past the packet.
    const uint8_t longer[] = {0x05, 'a', 'b'};
    Reader r4(longer, sizeof(longer));
    r4.lenenc_str();
    CPPUNIT_ASSERT(!r4.ok());
    // Truncated 0xfc prefix.
    const uint8_t trunc[] = {0xfc, 0x01};
    Reader r5(trunc, sizeof(trunc));
    r5.lenenc_int();
    CPPUNIT_ASSERT(!r5.ok());
  }

  void reader_stops_at_end() {
    const uint8_t b[] = {1, 2, 3};
    Reader r(b, 3);
    CPPUNIT_ASSERT_EQUAL(uint16_t(0x0201), r.u16());
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), r.u32());
    CPPUNIT_ASSERT(!r.ok());
    CPPUNIT_ASSERT_EQUAL(std::string(), r.nul_str());
    const uint8_t s[] = {'a', 'b'};
    Reader r2(s, 2);
    r2.nul_str();  // no terminating NUL
    CPPUNIT_ASSERT(!r2.ok());
  }

  void frame_small_packet() {
    std::string out;
    uint8_t next = frame_packet(out, 3, "abc");
    CPPUNIT_ASSERT_EQUAL(uint8_t(4), next);
    CPPUNIT_ASSERT_EQUAL(std::string("\x03\x00\x00\x03" "abc", 7), out);
    std::string empty;
    frame_packet(empty, 0, "");
    CPPUNIT_ASSERT_EQUAL(std::string("\x00\x00\x00\x00", 4), empty);
  }

  void frame_exact_16mib_adds_empty_chunk() {
    std::string payload(kMaxChunk, 'x');
    std::string out;
    uint8_t next = frame_packet(out, 0, payload);
    CPPUNIT_ASSERT_EQUAL(uint8_t(2), next);
    CPPUNIT_ASSERT_EQUAL(kMaxChunk + 8, out.size());
    PacketHeader h2 = parse_header(reinterpret_cast<const uint8_t*>(out.data()) + 4 + kMaxChunk);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), h2.length);
    CPPUNIT_ASSERT_EQUAL(uint8_t(1), h2.seq);
    // Sequence ids wrap at 256.
    std::string o2;
    CPPUNIT_ASSERT_EQUAL(uint8_t(0), frame_packet(o2, 255, "z"));
  }

  void read_packet_joins_chunks() {
    std::string payload(kMaxChunk + 10, 'y');
    payload[0] = 'A';
    payload.back() = 'Z';
    std::string wire = framed(7, payload) + framed(0, "next");
    uint8_t fs = 0, ls = 0;
    std::string got;
    size_t used = 0;
    CPPUNIT_ASSERT(read_packet(wire, 1u << 30, fs, ls, got, used) == ReadStatus::Complete);
    CPPUNIT_ASSERT_EQUAL(uint8_t(7), fs);
    CPPUNIT_ASSERT_EQUAL(uint8_t(8), ls);
    CPPUNIT_ASSERT(got == payload);
    CPPUNIT_ASSERT_EQUAL(payload.size() + 8, used);
    CPPUNIT_ASSERT(read_packet(std::string_view(wire).substr(used), 100, fs, ls, got, used) ==
                   ReadStatus::Complete);
    CPPUNIT_ASSERT_EQUAL(std::string("next"), got);
  }

  void read_packet_incomplete_and_too_big() {
    std::string wire = framed(0, "hello world");
    uint8_t fs, ls;
    std::string got;
    size_t used = 0;
    for (size_t cut = 0; cut < wire.size(); ++cut)
      CPPUNIT_ASSERT(read_packet(std::string_view(wire).substr(0, cut), 100, fs, ls, got, used) ==
                     ReadStatus::Incomplete);
    CPPUNIT_ASSERT(read_packet(wire, 5, fs, ls, got, used) == ReadStatus::TooBig);
  }

  // Copies inside a chain, across chains and past the chains looked up at
  // first (here twelve one-to-three-byte chains) all give the same bytes.
  void buffer_peeker_across_chains() {
    static const char* pieces[] = {"ab", "c", "def", "g", "hi", "j", "kl", "m", "nop", "q", "rs", "t"};
    evbuffer* b = evbuffer_new();
    std::string all;
    for (const char* p : pieces) {
      evbuffer_add_reference(b, p, strlen(p), nullptr, nullptr);
      all += p;
    }
    for (size_t n = 1; n <= 5; ++n) {
      BufferPeeker peek(b);
      for (size_t off = 0; off + n <= all.size(); off += 1) {
        char got[8] = {};
        peek.copy(off, got, n);
        CPPUNIT_ASSERT_EQUAL(all.substr(off, n), std::string(got, n));
      }
    }
    // read_packet over a packet split into many chains.
    evbuffer* p = evbuffer_new();
    std::string wire = framed(0, "abcdefghijklmnopqrstuvwxyz");
    for (size_t i = 0; i < wire.size(); ++i) evbuffer_add_reference(p, &wire[i], 1, nullptr, nullptr);
    uint8_t fs, ls;
    std::string got;
    CPPUNIT_ASSERT(read_packet(p, 1000, fs, ls, got) == ReadStatus::Complete);
    CPPUNIT_ASSERT_EQUAL(std::string("abcdefghijklmnopqrstuvwxyz"), got);
    evbuffer_free(p);
    evbuffer_free(b);
  }

  void read_packet_from_evbuffer_split_arrival() {
    std::string wire = framed(1, "split across arrivals") + framed(2, "second");
    evbuffer* b = evbuffer_new();
    uint8_t fs, ls;
    std::string got;
    size_t i = 0;
    for (; i < 10; ++i) {  // first ten bytes one at a time: never complete
      evbuffer_add(b, &wire[i], 1);
      CPPUNIT_ASSERT(read_packet(b, 1000, fs, ls, got) == ReadStatus::Incomplete);
    }
    evbuffer_add(b, wire.data() + i, wire.size() - i);
    CPPUNIT_ASSERT(read_packet(b, 1000, fs, ls, got) == ReadStatus::Complete);
    CPPUNIT_ASSERT_EQUAL(std::string("split across arrivals"), got);
    CPPUNIT_ASSERT(read_packet(b, 1000, fs, ls, got) == ReadStatus::Complete);
    CPPUNIT_ASSERT_EQUAL(std::string("second"), got);
    CPPUNIT_ASSERT_EQUAL(uint8_t(2), fs);
    CPPUNIT_ASSERT_EQUAL(size_t(0), evbuffer_get_length(b));
    evbuffer_free(b);
  }

  void handshake_round_trip() {
    Handshake hs;
    hs.server_version = "5.5.5-10.11.6-MariaDB";
    hs.connection_id = 0x80000007;
    hs.scramble = "abcdefghijklmnopqrst";
    hs.capabilities = kProxyCapabilities;
    hs.charset = 45;
    hs.status = SERVER_STATUS_AUTOCOMMIT;
    std::string wire = build_handshake(hs);
    Handshake back;
    std::string err;
    CPPUNIT_ASSERT(parse_handshake(wire, back, err));
    CPPUNIT_ASSERT_EQUAL(hs.server_version, back.server_version);
    CPPUNIT_ASSERT_EQUAL(hs.connection_id, back.connection_id);
    CPPUNIT_ASSERT_EQUAL(hs.scramble, back.scramble);
    CPPUNIT_ASSERT_EQUAL(hs.capabilities, back.capabilities);
    CPPUNIT_ASSERT_EQUAL(hs.charset, back.charset);
    CPPUNIT_ASSERT_EQUAL(hs.status, back.status);
    CPPUNIT_ASSERT_EQUAL(std::string(kNativePasswordPlugin), back.auth_plugin);
    // The wire form MySQL documents: protocol 10, version NUL, thread id.
    CPPUNIT_ASSERT_EQUAL(char(10), wire[0]);
    CPPUNIT_ASSERT_EQUAL(char(0), wire[1 + hs.server_version.size()]);
    // CLIENT_MYSQL set: no extended capabilities on the wire, none read.
    hs.ext_capabilities = MARIADB_CLIENT_CACHE_METADATA;
    CPPUNIT_ASSERT(parse_handshake(build_handshake(hs), back, err));
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), back.ext_capabilities);
    // MariaDB's form: the last 4 of the 10 reserved bytes.
    hs.capabilities &= ~CLIENT_MYSQL;
    wire = build_handshake(hs);
    CPPUNIT_ASSERT(parse_handshake(wire, back, err));
    CPPUNIT_ASSERT_EQUAL(uint32_t(MARIADB_CLIENT_CACHE_METADATA), back.ext_capabilities);
    size_t reserved = 1 + hs.server_version.size() + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1;
    CPPUNIT_ASSERT_EQUAL(char(MARIADB_CLIENT_CACHE_METADATA), wire[reserved + 6]);
  }

  void handshake_rejects_garbage() {
    Handshake hs;
    std::string err;
    CPPUNIT_ASSERT(!parse_handshake(std::string("\x09junk", 5), hs, err));
    CPPUNIT_ASSERT(!parse_handshake(std::string("\x0a" "abc", 4), hs, err));
    CPPUNIT_ASSERT(!parse_handshake(build_err(1040, "08004", "Too many connections"), hs, err));
    CPPUNIT_ASSERT(err.find("error") != std::string::npos);
  }

  void handshake_response_round_trip() {
    HandshakeResponse r;
    r.capabilities = kProxyCapabilities;
    r.max_packet = 1 << 24;
    r.charset = 33;
    r.user = "app@app#main";
    r.auth_response = std::string(20, '\x01');
    r.database = "test";
    r.auth_plugin = kNativePasswordPlugin;
    r.attributes = {{"_client_name", "libmariadb"}, {"program_name", "mysql"}};
    std::string wire = build_handshake_response(r);
    HandshakeResponse back;
    std::string err;
    CPPUNIT_ASSERT(parse_handshake_response(wire, back, err));
    CPPUNIT_ASSERT_EQUAL(r.capabilities, back.capabilities);
    CPPUNIT_ASSERT_EQUAL(r.max_packet, back.max_packet);
    CPPUNIT_ASSERT_EQUAL(r.charset, back.charset);
    CPPUNIT_ASSERT_EQUAL(r.user, back.user);
    CPPUNIT_ASSERT(r.auth_response == back.auth_response);
    CPPUNIT_ASSERT_EQUAL(r.database, back.database);
    CPPUNIT_ASSERT_EQUAL(r.auth_plugin, back.auth_plugin);
    CPPUNIT_ASSERT(r.attributes == back.attributes);
    CPPUNIT_ASSERT(!back.is_ssl_request);
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), back.ext_capabilities);  // CLIENT_MYSQL is set
    HandshakeResponse m = r;
    m.capabilities &= ~CLIENT_MYSQL;
    m.ext_capabilities = kProxyExtCapabilities;
    std::string mwire = build_handshake_response(m);
    CPPUNIT_ASSERT_EQUAL(char(kProxyExtCapabilities), mwire[4 + 4 + 1 + 19]);  // after 19 of the 23 reserved
    CPPUNIT_ASSERT(parse_handshake_response(mwire, back, err));
    CPPUNIT_ASSERT_EQUAL(kProxyExtCapabilities, back.ext_capabilities);
    CPPUNIT_ASSERT_EQUAL(r.user, back.user);
    // Every truncation is either rejected or parsed without reading past the end.
    for (size_t cut = 0; cut < wire.size(); ++cut) {
      HandshakeResponse t;
      parse_handshake_response(std::string_view(wire).substr(0, cut), t, err);
    }
  }

  void handshake_response_secure_connection_form() {
    HandshakeResponse r;
    r.capabilities = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
    r.user = "u";
    r.auth_response = "12345678901234567890";
    std::string wire = build_handshake_response(r);
    HandshakeResponse back;
    std::string err;
    CPPUNIT_ASSERT(parse_handshake_response(wire, back, err));
    CPPUNIT_ASSERT_EQUAL(r.auth_response, back.auth_response);
    CPPUNIT_ASSERT(back.database.empty());
    HandshakeResponse old;
    old.capabilities = 0;  // pre-4.1 client
    CPPUNIT_ASSERT(!parse_handshake_response(build_handshake_response(old), back, err));
  }

  void ssl_request_is_recognised() {
    Writer w;
    w.u32(CLIENT_PROTOCOL_41 | CLIENT_SSL).u32(1 << 24).u8(33).zeros(23);
    HandshakeResponse r;
    std::string err;
    CPPUNIT_ASSERT(parse_handshake_response(w.str(), r, err));
    CPPUNIT_ASSERT(r.is_ssl_request);
  }

  void change_user_parse() {
    Writer w;
    w.u8(COM_CHANGE_USER).nul_str("app2").u8(20).bytes(std::string(20, 'k')).nul_str("db1");
    w.u16(45).nul_str(kNativePasswordPlugin);
    ChangeUser cu;
    std::string err;
    CPPUNIT_ASSERT(parse_change_user(w.str(), kProxyCapabilities, cu, err));
    CPPUNIT_ASSERT_EQUAL(std::string("app2"), cu.user);
    CPPUNIT_ASSERT_EQUAL(size_t(20), cu.auth_response.size());
    CPPUNIT_ASSERT_EQUAL(std::string("db1"), cu.database);
    CPPUNIT_ASSERT_EQUAL(uint16_t(45), cu.charset);
    CPPUNIT_ASSERT_EQUAL(std::string(kNativePasswordPlugin), cu.auth_plugin);
    CPPUNIT_ASSERT(!parse_change_user(std::string("\x11" "nonul", 6), kProxyCapabilities, cu, err));
    // What the proxy builds for a pooled session parses back, attributes too.
    ChangeUser out;
    out.user = "root";
    out.auth_response = std::string(20, '\x01');
    out.charset = 224;
    out.auth_plugin = kNativePasswordPlugin;
    out.attributes = {{"_client_name", "myrelay"}, {"proxy_sessid", "42"}};
    for (uint32_t caps : {uint32_t(kProxyCapabilities | CLIENT_CONNECT_ATTRS),
                          uint32_t(CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION)}) {
      ChangeUser back;
      CPPUNIT_ASSERT(parse_change_user(build_change_user(out, caps), caps, back, err));
      CPPUNIT_ASSERT_EQUAL(out.user, back.user);
      CPPUNIT_ASSERT(out.auth_response == back.auth_response);
      CPPUNIT_ASSERT_EQUAL(std::string(), back.database);
      CPPUNIT_ASSERT_EQUAL(uint16_t(224), back.charset);
      bool full = caps & CLIENT_CONNECT_ATTRS;
      CPPUNIT_ASSERT_EQUAL(std::string(full ? kNativePasswordPlugin : ""), back.auth_plugin);
      CPPUNIT_ASSERT_EQUAL(full ? size_t(2) : size_t(0), back.attributes.size());
    }
  }

  void ok_err_eof() {
    OkPacket ok;
    ok.affected_rows = 300;
    ok.last_insert_id = 7;
    ok.status = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT;
    ok.warnings = 2;
    OkPacket back;
    CPPUNIT_ASSERT(parse_ok(build_ok(ok, kProxyCapabilities), back));
    CPPUNIT_ASSERT_EQUAL(uint64_t(300), back.affected_rows);
    CPPUNIT_ASSERT_EQUAL(uint64_t(7), back.last_insert_id);
    CPPUNIT_ASSERT_EQUAL(ok.status, back.status);
    CPPUNIT_ASSERT_EQUAL(uint16_t(2), back.warnings);
    std::string as_eof = build_ok(ok, kProxyCapabilities, kEofHeader);
    CPPUNIT_ASSERT_EQUAL(char(0xfe), as_eof[0]);

    std::string e = build_err(1045, "28000", "Access denied");
    ErrPacket ep;
    CPPUNIT_ASSERT(parse_err(e, ep));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1045), ep.code);
    CPPUNIT_ASSERT_EQUAL(std::string("28000"), ep.sql_state);
    CPPUNIT_ASSERT_EQUAL(std::string("Access denied"), ep.message);
    CPPUNIT_ASSERT_EQUAL(std::string("\xff\x15\x04#28000Access denied", 22), e);

    std::string eof = build_eof(SERVER_MORE_RESULTS_EXISTS, 1);
    CPPUNIT_ASSERT_EQUAL(size_t(5), eof.size());
    CPPUNIT_ASSERT(is_eof_or_terminator(reinterpret_cast<const uint8_t*>(eof.data()), eof.size()));
  }

  void auth_switch_round_trip() {
    std::string p = build_auth_switch(kNativePasswordPlugin, "01234567890123456789");
    AuthSwitch sw;
    CPPUNIT_ASSERT(parse_auth_switch(p, sw));
    CPPUNIT_ASSERT_EQUAL(std::string(kNativePasswordPlugin), sw.plugin);
    CPPUNIT_ASSERT_EQUAL(std::string("01234567890123456789"), sw.data);
  }

  void terminator_detection() {
    uint8_t b[16] = {0xfe};
    CPPUNIT_ASSERT(is_eof_or_terminator(b, 5));
    CPPUNIT_ASSERT(is_eof_or_terminator(b, 12));  // a DEPRECATE_EOF OK with info
    CPPUNIT_ASSERT(!is_eof_or_terminator(b, kMaxChunk));  // a huge row
    b[0] = 0x00;
    CPPUNIT_ASSERT(!is_eof_or_terminator(b, 5));
  }

  void text_resultset_shapes() {
    std::vector<ColumnDef> cols(2);
    cols[0].name = "a";
    cols[1].name = "b";
    std::vector<TextRow> rows = {{std::string("1"), std::nullopt}};
    uint8_t seq = 1;
    std::string classic = build_text_resultset(cols, rows, CLIENT_PROTOCOL_41, 0, seq);
    // count, 2 defs, EOF, row, EOF
    CPPUNIT_ASSERT_EQUAL(uint8_t(7), seq);
    seq = 1;
    std::string modern = build_text_resultset(cols, rows, CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF, 0, seq);
    CPPUNIT_ASSERT_EQUAL(uint8_t(6), seq);  // no EOF after the definitions
    // The row: "1" then NULL (0xfb).
    size_t used = 0, off = 0;
    uint8_t fs, ls;
    std::string pkt;
    for (int i = 0; i < 4; ++i) {
      CPPUNIT_ASSERT(read_packet(std::string_view(modern).substr(off), 1000, fs, ls, pkt, used) == ReadStatus::Complete);
      off += used;
    }
    CPPUNIT_ASSERT_EQUAL(std::string("\x01" "1\xfb", 3), pkt);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ProtocolTest);
