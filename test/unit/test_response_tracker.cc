// Where responses end: every command shape, with and without DEPRECATE_EOF.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "protocol/packets.h"
#include "protocol/response_tracker.h"

using namespace myrelay;
using namespace myrelay::proto;
using Ev = ResponseTracker::Event;

namespace {

const uint32_t kClassic = CLIENT_PROTOCOL_41 | CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS;
const uint32_t kModern = kClassic | CLIENT_DEPRECATE_EOF;

std::string column_count(uint64_t n) {
  Writer w;
  w.lenenc_int(n);
  return w.take();
}
std::string coldef() {
  ColumnDef c;
  c.name = "c";
  return build_column_def(c);
}
std::string text_row(const std::string& v) {
  Writer w;
  w.lenenc_str(v);
  return w.take();
}
std::string terminator(uint32_t caps, uint16_t status) {
  if (caps & CLIENT_DEPRECATE_EOF) {
    OkPacket ok;
    ok.status = status;
    return build_ok(ok, caps, kEofHeader);
  }
  return build_eof(status);
}
std::string ok(uint16_t status) {
  OkPacket o;
  o.status = status;
  return build_ok(o, kClassic);
}

// Feeds packets; returns the events.
std::vector<Ev> feed(ResponseTracker& t, const std::vector<std::string>& pkts) {
  std::vector<Ev> evs;
  for (auto& p : pkts) {
    size_t n = std::min(p.size(), ResponseTracker::kPeekBytes);
    if (n && t.is_plain_row(uint8_t(p[0]), p.size())) {  // the relay's shortcut
      evs.push_back(Ev::Continue);
      continue;
    }
    evs.push_back(t.on_server_packet(reinterpret_cast<const uint8_t*>(p.data()), n, p.size()));
  }
  return evs;
}

void start(ResponseTracker& t, uint8_t cmd, uint32_t caps, std::string payload = "") {
  if (payload.empty()) payload = std::string(1, char(cmd));
  t.start(cmd, reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), caps);
}

}  // namespace

class ResponseTrackerTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ResponseTrackerTest);
  CPPUNIT_TEST(query_ok);
  CPPUNIT_TEST(query_error);
  CPPUNIT_TEST(resultset_classic);
  CPPUNIT_TEST(resultset_deprecate_eof);
  CPPUNIT_TEST(multi_results);
  CPPUNIT_TEST(error_in_the_middle_of_rows);
  CPPUNIT_TEST(local_infile);
  CPPUNIT_TEST(prepare_shapes);
  CPPUNIT_TEST(cached_metadata);
  CPPUNIT_TEST(execute_with_cursor_and_fetch);
  CPPUNIT_TEST(field_list);
  CPPUNIT_TEST(no_response_commands);
  CPPUNIT_TEST(statistics_string);
  CPPUNIT_TEST(transaction_status);
  CPPUNIT_TEST(huge_row_is_not_a_terminator);
  CPPUNIT_TEST(garbage_is_malformed);
  CPPUNIT_TEST(plain_row_shortcut_agrees);
  CPPUNIT_TEST_SUITE_END();

 public:
  void query_ok() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    CPPUNIT_ASSERT(feed(t, {ok(SERVER_STATUS_AUTOCOMMIT)}) == std::vector<Ev>{Ev::Done});
    CPPUNIT_ASSERT(t.done());
    CPPUNIT_ASSERT(!t.ended_with_error());
  }

  void query_error() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    CPPUNIT_ASSERT(feed(t, {build_err(1064, "42000", "syntax")}) == std::vector<Ev>{Ev::Done});
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), t.last_error_code());
  }

  void resultset_classic() {
    ResponseTracker t;
    start(t, COM_QUERY, kClassic);
    auto evs = feed(t, {column_count(2), coldef(), coldef(), build_eof(0), text_row("a"),
                        text_row("b"), build_eof(SERVER_STATUS_AUTOCOMMIT)});
    CPPUNIT_ASSERT(evs.back() == Ev::Done);
    for (size_t i = 0; i + 1 < evs.size(); ++i) CPPUNIT_ASSERT(evs[i] == Ev::Continue);
    CPPUNIT_ASSERT_EQUAL(1u, t.result_sets());
  }

  void resultset_deprecate_eof() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    auto evs = feed(t, {column_count(1), coldef(), text_row("x"), terminator(kModern, 2)});
    CPPUNIT_ASSERT(evs == (std::vector<Ev>{Ev::Continue, Ev::Continue, Ev::Continue, Ev::Done}));
    // An empty result set: the terminator right after the definitions.
    start(t, COM_QUERY, kModern);
    evs = feed(t, {column_count(1), coldef(), terminator(kModern, 2)});
    CPPUNIT_ASSERT(evs.back() == Ev::Done);
  }

  void multi_results() {
    for (uint32_t caps : {kClassic, kModern}) {
      ResponseTracker t;
      start(t, COM_QUERY, caps);
      std::vector<std::string> pkts = {column_count(1), coldef()};
      if (!(caps & CLIENT_DEPRECATE_EOF)) pkts.push_back(build_eof(0));
      pkts.push_back(text_row("1"));
      pkts.push_back(terminator(caps, SERVER_MORE_RESULTS_EXISTS));
      pkts.push_back(ok(SERVER_MORE_RESULTS_EXISTS));  // e.g. an UPDATE in between
      pkts.push_back(column_count(1));
      pkts.push_back(coldef());
      if (!(caps & CLIENT_DEPRECATE_EOF)) pkts.push_back(build_eof(0));
      pkts.push_back(terminator(caps, 0));
      auto evs = feed(t, pkts);
      CPPUNIT_ASSERT(evs.back() == Ev::Done);
      for (size_t i = 0; i + 1 < evs.size(); ++i) CPPUNIT_ASSERT(evs[i] == Ev::Continue);
      CPPUNIT_ASSERT_EQUAL(2u, t.result_sets());
    }
  }

  void error_in_the_middle_of_rows() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    auto evs = feed(t, {column_count(1), coldef(), text_row("1"),
                        build_err(1317, "70100", "Query execution was interrupted")});
    CPPUNIT_ASSERT(evs.back() == Ev::Done);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1317), t.last_error_code());
  }

  void local_infile() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    CPPUNIT_ASSERT(feed(t, {std::string("\xfb/tmp/file", 10)}) == std::vector<Ev>{Ev::LocalInfile});
    CPPUNIT_ASSERT(t.awaiting_client_upload());
    t.on_client_infile_packet(100);
    CPPUNIT_ASSERT(t.awaiting_client_upload());
    t.on_client_infile_packet(0);
    CPPUNIT_ASSERT(!t.awaiting_client_upload());
    CPPUNIT_ASSERT(feed(t, {ok(0)}) == std::vector<Ev>{Ev::Done});
    // A prepared LOAD DATA LOCAL INFILE asks for the file the same way.
    start(t, COM_STMT_EXECUTE, kModern);
    CPPUNIT_ASSERT(feed(t, {std::string("\xfb/x", 3)}) == std::vector<Ev>{Ev::LocalInfile});
    // A prepare's answer cannot be a file request.
    start(t, COM_STMT_PREPARE, kModern);
    CPPUNIT_ASSERT(feed(t, {std::string("\xfb/x", 3)}) == std::vector<Ev>{Ev::Malformed});
  }

  static std::string prepare_ok(uint16_t cols, uint16_t params) {
    Writer w;
    w.u8(0).u32(1).u16(cols).u16(params).u8(0).u16(0);
    return w.take();
  }

  // MARIADB_CLIENT_CACHE_METADATA: a column count carries "definitions
  // follow"; an execute whose columns did not change skips them.
  void cached_metadata() {
    for (uint32_t caps : {kClassic, kModern}) {
      ResponseTracker t;
      std::string exec(10, '\0');
      exec[0] = char(COM_STMT_EXECUTE);
      t.start(COM_STMT_EXECUTE, reinterpret_cast<const uint8_t*>(exec.data()), exec.size(), caps,
              MARIADB_CLIENT_CACHE_METADATA);
      std::vector<std::string> skipped = {column_count(2) + std::string(1, '\0')};
      if (!(caps & CLIENT_DEPRECATE_EOF)) skipped.push_back(terminator(caps, 0));
      skipped.push_back(text_row("x"));
      skipped.push_back(terminator(caps, 0));
      auto evs = feed(t, skipped);
      CPPUNIT_ASSERT(evs.back() == Ev::Done);
      for (size_t i = 0; i + 1 < evs.size(); ++i) CPPUNIT_ASSERT(evs[i] == Ev::Continue);
      // Definitions that follow are counted as always.
      t.start(COM_STMT_EXECUTE, reinterpret_cast<const uint8_t*>(exec.data()), exec.size(), caps,
              MARIADB_CLIENT_CACHE_METADATA);
      std::vector<std::string> full = {column_count(1) + std::string(1, '\1'), coldef()};
      if (!(caps & CLIENT_DEPRECATE_EOF)) full.push_back(terminator(caps, 0));
      full.push_back(text_row("x"));
      full.push_back(terminator(caps, 0));
      evs = feed(t, full);
      CPPUNIT_ASSERT(evs.back() == Ev::Done);
      for (size_t i = 0; i + 1 < evs.size(); ++i) CPPUNIT_ASSERT(evs[i] == Ev::Continue);
    }
  }

  void prepare_shapes() {
    for (uint32_t caps : {kClassic, kModern}) {
      bool eofs = !(caps & CLIENT_DEPRECATE_EOF);
      ResponseTracker t;
      start(t, COM_STMT_PREPARE, caps);
      std::vector<std::string> pkts = {prepare_ok(2, 1), coldef()};
      if (eofs) pkts.push_back(build_eof(0));
      pkts.push_back(coldef());
      pkts.push_back(coldef());
      if (eofs) pkts.push_back(build_eof(0));
      auto evs = feed(t, pkts);
      CPPUNIT_ASSERT(evs.back() == Ev::Done);
      for (size_t i = 0; i + 1 < evs.size(); ++i) CPPUNIT_ASSERT(evs[i] == Ev::Continue);

      start(t, COM_STMT_PREPARE, caps);
      CPPUNIT_ASSERT(feed(t, {prepare_ok(0, 0)}) == std::vector<Ev>{Ev::Done});
      start(t, COM_STMT_PREPARE, caps);
      pkts = {prepare_ok(0, 2), coldef(), coldef()};
      if (eofs) pkts.push_back(build_eof(0));
      CPPUNIT_ASSERT(feed(t, pkts).back() == Ev::Done);
      start(t, COM_STMT_PREPARE, caps);
      CPPUNIT_ASSERT(feed(t, {build_err(1146, "42S02", "no table")}) == std::vector<Ev>{Ev::Done});
    }
  }

  void execute_with_cursor_and_fetch() {
    for (uint32_t caps : {kClassic, kModern}) {
      ResponseTracker t;
      std::string exec("\x17\x01\x00\x00\x00\x01\x01\x00\x00\x00", 10);  // flags=1: read-only cursor
      start(t, COM_STMT_EXECUTE, caps, exec);
      // The server answers with the definitions and an EOF that says a cursor is open.
      std::vector<std::string> pkts = {column_count(1), coldef(),
                                       caps & CLIENT_DEPRECATE_EOF
                                           ? terminator(caps, SERVER_STATUS_CURSOR_EXISTS)
                                           : build_eof(SERVER_STATUS_CURSOR_EXISTS)};
      auto evs = feed(t, pkts);
      CPPUNIT_ASSERT(evs.back() == Ev::Done);
      // COM_STMT_FETCH: binary rows then EOF.
      start(t, COM_STMT_FETCH, caps);
      std::string binrow("\x00\x00\x01\x00\x00\x00", 6);
      evs = feed(t, {binrow, binrow, terminator(caps, SERVER_STATUS_CURSOR_EXISTS | SERVER_STATUS_LAST_ROW_SENT)});
      CPPUNIT_ASSERT(evs == (std::vector<Ev>{Ev::Continue, Ev::Continue, Ev::Done}));
    }
    // Without a cursor the rows follow the definitions.
    ResponseTracker t;
    std::string exec("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00", 10);
    start(t, COM_STMT_EXECUTE, kClassic, exec);
    std::string binrow("\x00\x00\x01\x00\x00\x00", 6);
    auto evs = feed(t, {column_count(1), coldef(), build_eof(0), binrow, build_eof(0)});
    CPPUNIT_ASSERT(evs.back() == Ev::Done);
    CPPUNIT_ASSERT(evs[3] == Ev::Continue);
  }

  void field_list() {
    ResponseTracker t;
    start(t, COM_FIELD_LIST, kClassic);
    CPPUNIT_ASSERT(feed(t, {coldef(), coldef(), build_eof(0)}).back() == Ev::Done);
    start(t, COM_FIELD_LIST, kClassic);
    CPPUNIT_ASSERT(feed(t, {build_err(1146, "42S02", "x")}).back() == Ev::Done);
  }

  void no_response_commands() {
    CPPUNIT_ASSERT(!ResponseTracker::expects_response(COM_STMT_CLOSE));
    CPPUNIT_ASSERT(!ResponseTracker::expects_response(COM_STMT_SEND_LONG_DATA));
    CPPUNIT_ASSERT(!ResponseTracker::expects_response(COM_QUIT));
    CPPUNIT_ASSERT(ResponseTracker::expects_response(COM_PING));
    ResponseTracker t;
    start(t, COM_STMT_CLOSE, kModern);
    CPPUNIT_ASSERT(t.done());
  }

  void statistics_string() {
    ResponseTracker t;
    start(t, COM_STATISTICS, kModern);
    CPPUNIT_ASSERT(feed(t, {"Uptime: 10  Threads: 1"}) == std::vector<Ev>{Ev::Done});
    start(t, COM_PING, kModern);
    CPPUNIT_ASSERT(feed(t, {ok(2)}) == std::vector<Ev>{Ev::Done});
  }

  void transaction_status() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    feed(t, {ok(SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT)});
    CPPUNIT_ASSERT(t.have_status());
    CPPUNIT_ASSERT(t.last_status() & SERVER_STATUS_IN_TRANS);
    start(t, COM_QUERY, kClassic);
    feed(t, {column_count(1), coldef(), build_eof(SERVER_STATUS_IN_TRANS), build_eof(SERVER_STATUS_AUTOCOMMIT)});
    CPPUNIT_ASSERT(!(t.last_status() & SERVER_STATUS_IN_TRANS));
  }

  void huge_row_is_not_a_terminator() {
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    feed(t, {column_count(1), coldef()});
    std::string head("\xfe\x00\x00\x00\x01\x00\x00\x00\x00", 9);  // 8-byte length prefix
    CPPUNIT_ASSERT(t.on_server_packet(reinterpret_cast<const uint8_t*>(head.data()), head.size(),
                                      kMaxChunk) == Ev::Continue);
    CPPUNIT_ASSERT(feed(t, {terminator(kModern, 0)}).back() == Ev::Done);
  }

  // is_plain_row() says yes only where on_server_packet() would pass the
  // packet as a row and stay among the rows; every first byte, short and
  // chunk-long packets, both row formats.
  void plain_row_shortcut_agrees() {
    for (uint32_t caps : {kClassic, kModern}) {
      ResponseTracker rows;
      start(rows, COM_QUERY, caps);
      std::vector<std::string> head = {column_count(1), coldef()};
      if (!(caps & CLIENT_DEPRECATE_EOF)) head.push_back(build_eof(0));
      feed(rows, head);
      int plain = 0;
      for (int b = 0; b < 256; ++b) {
        for (uint64_t len : {uint64_t(1), uint64_t(40), uint64_t(kMaxChunk)}) {
          uint8_t pkt[ResponseTracker::kPeekBytes] = {uint8_t(b)};
          size_t n = std::min<uint64_t>(len, sizeof(pkt));
          if (!rows.is_plain_row(uint8_t(b), len)) continue;
          ++plain;
          ResponseTracker t = rows;
          CPPUNIT_ASSERT(t.on_server_packet(pkt, n, len) == Ev::Continue);
          CPPUNIT_ASSERT(t.is_plain_row('x', 10));  // still among the rows
        }
      }
      CPPUNIT_ASSERT_EQUAL(254 * 3 + 2, plain);  // all but short 0xfe and 0xff
    }
    // Nowhere else.
    ResponseTracker t;
    start(t, COM_QUERY, kModern);
    CPPUNIT_ASSERT(!t.is_plain_row('x', 10));
    feed(t, {column_count(1)});
    CPPUNIT_ASSERT(!t.is_plain_row('x', 10));
  }

  void garbage_is_malformed() {
    ResponseTracker t;
    // Nothing was asked.
    CPPUNIT_ASSERT(feed(t, {ok(0)}) == std::vector<Ev>{Ev::Malformed});
    start(t, COM_QUERY, kModern);
    CPPUNIT_ASSERT(feed(t, {std::string("\xfc", 1)}) == std::vector<Ev>{Ev::Malformed});
    start(t, COM_QUERY, kClassic);
    CPPUNIT_ASSERT(feed(t, {column_count(1), coldef(), text_row("not an eof")}).back() == Ev::Malformed);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ResponseTrackerTest);
