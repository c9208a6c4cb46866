// The session core without a proxy around it: a client session on a
// socketpair, server sessions to scripted backends, one event loop turned by
// the test.  The command state machine, response completion, the set of
// server sessions and what reaches shared memory.
#include <cppunit/extensions/HelperMacros.h>

#include <map>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "control/shm_table.h"
#include "session_harness.h"

using namespace myrelay;
using namespace myrelay::proto;
using namespace myrelay::test;

namespace {

const uint32_t kClientCaps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH |
                             CLIENT_TRANSACTIONS | CLIENT_MULTI_RESULTS | CLIENT_DEPRECATE_EOF;

}  // namespace

class SessionCoreTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SessionCoreTest);
  CPPUNIT_TEST(login_and_query);
  CPPUNIT_TEST(backend_knows_the_proxy_session);
  CPPUNIT_TEST(kill_when_idle_during_login);
  CPPUNIT_TEST(pipelined_commands_answer_in_order);
  CPPUNIT_TEST(response_in_pieces_completes_once);
  CPPUNIT_TEST(classic_eof_responses);
  CPPUNIT_TEST(two_server_sessions_kill_one);
  CPPUNIT_TEST(kill_server_session_mid_command);
  CPPUNIT_TEST(backend_lost_mid_command_closes_the_session);
  CPPUNIT_TEST(backend_lost_in_transaction_closes_the_session);
  CPPUNIT_TEST(change_user_is_published_at_once);
  CPPUNIT_TEST(change_user_auth_switch_answer_already_buffered);
  CPPUNIT_TEST(sha2_fast_path_login_and_change_user);
  CPPUNIT_TEST_SUITE_END();

  event_base* base_ = nullptr;
  std::unique_ptr<FakeBackend> a_, b_;
  std::unique_ptr<FakeHost> host_;
  ClientSession* session_ = nullptr;
  std::unique_ptr<TestClient> client_;

  shm::SessionRecord record() {
    shm::SessionRecord r{};
    CPPUNIT_ASSERT(ShmTable::read_record(&host_->slot, r));
    return r;
  }
  const BackendServer& server(size_t i) { return host_->config()->clusters[0].servers.at(i); }

 public:
  void setUp() override {
    log_set_level(LogLevel::Error);
    base_ = event_base_new();
    a_ = std::make_unique<FakeBackend>(base_);
    b_ = std::make_unique<FakeBackend>(base_);
    host_ = std::make_unique<FakeHost>(base_);
    start_session(false);
  }

  // A session of a cluster with A as primary and B as replica.
  void start_session(bool split) {
    if (session_) delete session_;
    client_.reset();
    std::string yaml =
        "clusters:\n  - name: main\n    servers:\n"
        "      - { address: 127.0.0.1:" + std::to_string(a_->port()) + ", role: primary }\n"
        "      - { address: 127.0.0.1:" + std::to_string(b_->port()) + ", role: replica }\n"
        "    read_write_split: " + (split ? "on" : "off") + "\n"
        "tenants:\n  - name: app\n    users:\n      - { name: app, password: secret }\n"
        "      - { name: other, password: pw2 }\n"
        "      - { name: sha, password: pw3, auth_plugin: caching_sha2_password }\n";
    Config cfg = load_config_string(yaml, "t.yaml");
    CPPUNIT_ASSERT_EQUAL(0, resolve_backends(cfg));
    host_->set_config(std::move(cfg));
    int fds[2];
    CPPUNIT_ASSERT_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds));
    session_ = new ClientSession(*host_, fds[0], "127.0.0.1", 5555, 0x80000001, 77, &host_->slot, 0);
    session_->start();
    client_ = std::make_unique<TestClient>(base_, fds[1]);
  }

  void tearDown() override {
    delete session_;
    client_.reset();
    host_.reset();
    a_.reset();
    b_.reset();
    event_base_free(base_);
    log_set_level(LogLevel::Info);
  }

  void login_and_query() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    // The client has its OK before the server session's trackers are set
    // up (the session is MCS_ACTIVE_READER meanwhile): wait for that, at
    // most 2 s, as a slow (sanitizer) build may need.
    for (int i = 0; i < 200 && record().state != uint32_t(ClientSession::State::KeepAlive); ++i) turn(base_, 10);
    shm::SessionRecord r = record();
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), r.in_use);
    CPPUNIT_ASSERT_EQUAL(std::string("app"), get_field(r.user));
    CPPUNIT_ASSERT_EQUAL(uint32_t(ClientSession::State::KeepAlive), r.state);
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), r.svr_session_count);
    CPPUNIT_ASSERT_EQUAL(uint32_t(100), r.servers[0].server_sessid);
    auto rows = client_->query("SELECT 1");
    CPPUNIT_ASSERT_EQUAL(size_t(1), rows.size());
    CPPUNIT_ASSERT_EQUAL(std::string("100"), rows[0]);
    r = record();
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), r.queries);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), r.servers[0].requests);
    CPPUNIT_ASSERT_EQUAL(std::string("Sleep"), get_field(r.command));
    CPPUNIT_ASSERT_EQUAL(uint16_t(ServerSession::State::KeepAliveClientSlave), r.servers[0].state);
    // The statement's latency went into its server's histogram, once.
    uint64_t counted = 0, in_buckets = 0;
    for (const auto& h : host_->latency) {
      counted += h.count.load();
      for (const auto& b : h.buckets) in_buckets += b.load();
    }
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), counted);
    CPPUNIT_ASSERT_EQUAL(uint64_t(1), in_buckets);
  }

  // The backend learns which proxy and session a connection serves; a
  // client cannot pass itself off as another session.
  void backend_knows_the_proxy_session() {
    client_->attributes = {{"_client_name", "unit"}, {"_proxy_sessid", "666"}, {"_proxy_id", "99"}};
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps | CLIENT_CONNECT_ATTRS));
    std::map<std::string, std::vector<std::string>> got;
    for (const auto& [k, v] : a_->login_attributes()) got[k].push_back(v);
    CPPUNIT_ASSERT_EQUAL(std::string("unit"), got["_client_name"].at(0));
    CPPUNIT_ASSERT_EQUAL(size_t(1), got["_proxy_sessid"].size());
    CPPUNIT_ASSERT_EQUAL(std::to_string(session_->proxy_sessid()), got["_proxy_sessid"][0]);
    CPPUNIT_ASSERT_EQUAL(size_t(1), got["_proxy_id"].size());
    CPPUNIT_ASSERT_EQUAL(std::to_string(host_->config()->proxy_id), got["_proxy_id"][0]);
  }

  // KILL ... WHEN IDLE that arrives while the session still logs in: it
  // ends once the login is done and the session is idle, not at its first
  // statement's end.
  void kill_when_idle_during_login() {
    session_->kill_when_idle(KilledBy{0, 0, -1, "test"}, 0);
    CPPUNIT_ASSERT(!session_->closed());
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    turn(base_, 5);
    CPPUNIT_ASSERT(session_->closed());
    CPPUNIT_ASSERT_EQUAL(size_t(1), host_->kills_.size());
    CPPUNIT_ASSERT_EQUAL(uint8_t(shm::KillReason::KillWhenIdle), host_->kills_[0].reason);
  }

  void pipelined_commands_answer_in_order() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    std::string q = std::string(1, char(COM_QUERY));
    client_->send_raw(framed(0, q + "SET a=1") + framed(0, q + "SELECT 2") + framed(0, q + "DO 3"));
    std::string p;
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));  // OK
    for (int i = 0; i < 4; ++i) CPPUNIT_ASSERT(client_->read(p));  // count, def, row, end
    CPPUNIT_ASSERT_EQUAL(0xfe, int(uint8_t(p[0])));
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));
    CPPUNIT_ASSERT_EQUAL(size_t(3), a_->log().size());
    CPPUNIT_ASSERT_EQUAL(uint64_t(3), record().queries);
  }

  void response_in_pieces_completes_once() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    client_->send(0, std::string(1, char(COM_QUERY)) + "SPLIT");
    std::string p;
    CPPUNIT_ASSERT(client_->read(p));  // the column count only, so far
    turn(base_, 5);
    shm::SessionRecord r = record();
    CPPUNIT_ASSERT_EQUAL(uint32_t(ClientSession::State::ActiveReader), r.state);
    CPPUNIT_ASSERT_EQUAL(std::string("Query"), get_field(r.command));
    CPPUNIT_ASSERT_EQUAL(uint16_t(ServerSession::State::Active), r.servers[0].state);
    for (int i = 0; i < 3; ++i) CPPUNIT_ASSERT(client_->read(p));
    turn(base_, 5);
    CPPUNIT_ASSERT_EQUAL(uint32_t(ClientSession::State::KeepAlive), record().state);
    CPPUNIT_ASSERT_EQUAL(std::string("100"), client_->query("SELECT x").at(0));  // the next one goes on
  }

  void classic_eof_responses() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps & ~CLIENT_DEPRECATE_EOF));
    CPPUNIT_ASSERT_EQUAL(std::string("100"), client_->query("SELECT 1").at(0));
    CPPUNIT_ASSERT_EQUAL(std::string("OK"), client_->query("SET x=1").at(0));
  }

  void two_server_sessions_kill_one() {
    start_session(true);  // the read/write split on: SELECT 1 goes to the replica
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    uint64_t first = session_->current_server()->ss_id();
    CPPUNIT_ASSERT_EQUAL(std::string("OK"), client_->query("SET x=1").at(0));  // a write: A
    CPPUNIT_ASSERT_EQUAL(std::string("100"), client_->query("SELECT 1").at(0));  // B's first thread is 100 too
    CPPUNIT_ASSERT_EQUAL(size_t(2), session_->server_sessions().size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), b_->log().size());
    CPPUNIT_ASSERT_EQUAL(std::string("100:3:SELECT 1"), b_->log().back());
    shm::SessionRecord r = record();
    CPPUNIT_ASSERT_EQUAL(uint32_t(2), r.svr_session_count);
    CPPUNIT_ASSERT_EQUAL(uint8_t(1), r.servers[1].role);  // the replica
    CPPUNIT_ASSERT_EQUAL(uint16_t(b_->port()), r.servers[1].server_port);
    // A write goes back to the first one: it is still there, and in use again.
    CPPUNIT_ASSERT_EQUAL(std::string("OK"), client_->query("SET y=2").at(0));
    CPPUNIT_ASSERT_EQUAL(first, session_->current_server()->ss_id());
    // Kill the idle one: the session goes on, on the other.
    uint64_t second = session_->server_sessions()[1]->ss_id();
    CPPUNIT_ASSERT(session_->kill_server_session(second, KilledBy{0, 0, -1, "test"}));
    CPPUNIT_ASSERT(!session_->kill_server_session(second, KilledBy{0, 0, -1, "test"}));  // gone already
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), record().svr_session_count);
    CPPUNIT_ASSERT(host_->stopped.empty());  // nothing was running on it
    // The next read opens a new one there.
    CPPUNIT_ASSERT_EQUAL(std::string("101"), client_->query("SELECT 1").at(0));
    CPPUNIT_ASSERT_EQUAL(0, b_->log().back().compare(0, 4, "101:"));
    const size_t b_commands = b_->log().size();
    // Kill the writer: the next write opens a new one.
    CPPUNIT_ASSERT(session_->kill_server_session(first, KilledBy{0, 0, -1, "test"}));
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), record().svr_session_count);
    CPPUNIT_ASSERT_EQUAL(std::string("OK"), client_->query("SET z=3").at(0));
    CPPUNIT_ASSERT(session_->current_server()->ss_id() != first);
    // The replica down: reads go to the primary.
    host_->entries[1].routing.store(0);
    CPPUNIT_ASSERT_EQUAL(std::string("101"), client_->query("SELECT 1").at(0));  // A's second thread
    for (size_t i = b_commands; i < b_->log().size(); ++i)
      CPPUNIT_ASSERT(b_->log()[i].find("SELECT") == std::string::npos);
    turn(base_, 5);
    CPPUNIT_ASSERT_EQUAL(uint32_t(1), record().svr_session_count);  // the one to the down server closed
  }

  void kill_server_session_mid_command() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    client_->send(0, std::string(1, char(COM_QUERY)) + "SLEEP");
    turn(base_, 5);
    uint64_t ss_id = session_->current_server()->ss_id();
    CPPUNIT_ASSERT(session_->kill_server_session(ss_id, KilledBy{0, 0, -1, "test"}));
    CPPUNIT_ASSERT_EQUAL(size_t(1), host_->stopped.size());  // the statement is stopped on the backend
    CPPUNIT_ASSERT_EQUAL(std::string("100:connection"), host_->stopped[0]);
    // The kill log has it: a server session killed while its statement ran.
    CPPUNIT_ASSERT_EQUAL(size_t(1), host_->kills_.size());
    CPPUNIT_ASSERT_EQUAL(uint8_t(shm::KillReason::KillServerSession), host_->kills_[0].reason);
    CPPUNIT_ASSERT_EQUAL(uint8_t(shm::BackendStop::KillSent), host_->kills_[0].backend);
    CPPUNIT_ASSERT_EQUAL(std::string("test"), get_field(host_->kills_[0].by));
    CPPUNIT_ASSERT_EQUAL(std::string("app"), get_field(host_->kills_[0].user));
    std::string p;
    uint8_t seq = 0;
    CPPUNIT_ASSERT(client_->read(p, &seq));
    ErrPacket e;
    CPPUNIT_ASSERT(parse_err(p, e));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1927), e.code);
    CPPUNIT_ASSERT_EQUAL(uint8_t(1), seq);
    CPPUNIT_ASSERT_EQUAL(std::string("101"), client_->query("SELECT 1").at(0));
  }

  void backend_lost_mid_command_closes_the_session() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    client_->send(0, std::string(1, char(COM_QUERY)) + "SLEEP");
    turn(base_, 5);
    a_->drop_all();
    std::string p;
    CPPUNIT_ASSERT(client_->read(p));
    ErrPacket e;
    CPPUNIT_ASSERT(parse_err(p, e));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1158), e.code);
    CPPUNIT_ASSERT(!client_->read(p));  // then the connection closes
    CPPUNIT_ASSERT(session_->closed());
    CPPUNIT_ASSERT_EQUAL(uint32_t(0), record().in_use);  // the slot is free
  }

  // An idle session's backend goes away in the middle of a transaction: the
  // transaction cannot be carried to another backend, so the client's
  // connection closes, as it would have directly.
  void backend_lost_in_transaction_closes_the_session() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    CPPUNIT_ASSERT_EQUAL(std::string("OK"), client_->query("BEGIN").at(0));
    CPPUNIT_ASSERT(session_->in_transaction());
    CPPUNIT_ASSERT(!session_->session_state().restorable());
    a_->drop_all();
    turn(base_, 10);
    CPPUNIT_ASSERT(session_->closed());
    CPPUNIT_ASSERT_EQUAL(std::string("CLOSED"), client_->query("INSERT 1").at(0));
  }

  void change_user_is_published_at_once() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    ChangeUser cu;
    cu.user = "other";
    Sha1Digest t = native_token("pw2", reinterpret_cast<const uint8_t*>(client_->scramble.data()), 20);
    cu.auth_response.assign(reinterpret_cast<const char*>(t.data()), t.size());
    cu.charset = 45;
    cu.auth_plugin = kNativePasswordPlugin;
    client_->send(0, build_change_user(cu, client_->caps | CLIENT_PLUGIN_AUTH | CLIENT_SECURE_CONNECTION));
    std::string p;
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));
    // No further command: the record already names the new user.
    shm::SessionRecord r = record();
    CPPUNIT_ASSERT_EQUAL(std::string("other"), get_field(r.user));
    CPPUNIT_ASSERT_EQUAL(uint32_t(ClientSession::State::KeepAlive), r.state);
    CPPUNIT_ASSERT_EQUAL(uint32_t(101), r.servers[0].server_sessid);
  }

  // caching_sha2_password: the fast path at login (the client answers the
  // handshake's scramble with the user's method: 0x01 0x03, then OK), and a
  // COM_CHANGE_USER answered for mysql_native_password: switched, with a
  // fresh nonce, to caching_sha2_password.
  void sha2_fast_path_login_and_change_user() {
    std::string p;
    Handshake hs;
    std::string error;
    CPPUNIT_ASSERT(client_->read(p) && parse_handshake(p, hs, error));
    CPPUNIT_ASSERT_EQUAL(std::string(kNativePasswordPlugin), hs.auth_plugin);
    HandshakeResponse r;
    r.capabilities = (kClientCaps & hs.capabilities) | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    client_->caps = r.capabilities;
    r.max_packet = 1 << 24;
    r.charset = 45;
    r.user = "sha";
    Sha256Digest t = sha2_token("pw3", reinterpret_cast<const uint8_t*>(hs.scramble.data()), 20);
    r.auth_response.assign(reinterpret_cast<const char*>(t.data()), t.size());
    r.auth_plugin = kCachingSha2Plugin;
    client_->send(1, build_handshake_response(r));
    uint8_t seq = 0;
    CPPUNIT_ASSERT(client_->read(p, &seq));
    CPPUNIT_ASSERT_EQUAL(std::string("\x01\x03"), p);
    CPPUNIT_ASSERT_EQUAL(2, int(seq));
    CPPUNIT_ASSERT(client_->read(p, &seq));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));
    CPPUNIT_ASSERT_EQUAL(3, int(seq));
    for (int i = 0; i < 200 && record().state != uint32_t(ClientSession::State::KeepAlive); ++i) turn(base_, 10);
    CPPUNIT_ASSERT_EQUAL(std::string("sha"), get_field(record().user));

    // Change user to "sha" again, answering for mysql_native_password.
    ChangeUser cu;
    cu.user = "sha";
    Sha1Digest nt = native_token("pw3", reinterpret_cast<const uint8_t*>(hs.scramble.data()), 20);
    cu.auth_response.assign(reinterpret_cast<const char*>(nt.data()), nt.size());
    cu.charset = 45;
    cu.auth_plugin = kNativePasswordPlugin;
    client_->send(0, build_change_user(cu, client_->caps));
    CPPUNIT_ASSERT(client_->read(p, &seq));
    AuthSwitch sw;
    CPPUNIT_ASSERT(parse_auth_switch(p, sw));
    CPPUNIT_ASSERT_EQUAL(std::string(kCachingSha2Plugin), sw.plugin);
    CPPUNIT_ASSERT_EQUAL(size_t(20), sw.data.size());
    CPPUNIT_ASSERT(sw.data != hs.scramble);  // a fresh nonce
    // A wrong answer first would end the change user: the right one.
    t = sha2_token("pw3", reinterpret_cast<const uint8_t*>(sw.data.data()), 20);
    client_->send(uint8_t(seq + 1), std::string(reinterpret_cast<const char*>(t.data()), t.size()));
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(std::string("\x01\x03"), p);
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));

    // And a wrong password: 1045, the session stays.
    client_->send(0, build_change_user(cu, client_->caps));
    CPPUNIT_ASSERT(client_->read(p, &seq));
    CPPUNIT_ASSERT(parse_auth_switch(p, sw));
    t = sha2_token("nope", reinterpret_cast<const uint8_t*>(sw.data.data()), 20);
    client_->send(uint8_t(seq + 1), std::string(reinterpret_cast<const char*>(t.data()), t.size()));
    CPPUNIT_ASSERT(client_->read(p));
    ErrPacket e;
    CPPUNIT_ASSERT(parse_err(p, e));
    CPPUNIT_ASSERT_EQUAL(1045, int(e.code));
    CPPUNIT_ASSERT_EQUAL(std::string("Access denied for user 'sha'@'127.0.0.1' (using password: YES)"), e.message);
    auto rows = client_->query("SELECT 1");
    CPPUNIT_ASSERT(!rows.empty() && rows[0] != "CLOSED");
  }

  // A COM_CHANGE_USER for another method and the answer to the auth switch
  // the proxy will send, in one write, and then nothing: the answer is
  // already buffered when the switch goes out, and no read event will come
  // for it (issue 17, defect 1: such a session never ended).
  void change_user_auth_switch_answer_already_buffered() {
    CPPUNIT_ASSERT(client_->login("app", "secret", kClientCaps));
    ChangeUser cu;
    cu.user = "other";
    cu.auth_response = std::string(32, 'x');
    cu.charset = 45;
    cu.auth_plugin = "caching_sha2_password";
    Sha1Digest t = native_token("pw2", reinterpret_cast<const uint8_t*>(client_->scramble.data()), 20);
    std::string answer(reinterpret_cast<const char*>(t.data()), t.size());
    client_->send_raw(framed(0, build_change_user(cu, client_->caps | CLIENT_PLUGIN_AUTH | CLIENT_SECURE_CONNECTION)) +
                      framed(2, answer));
    std::string p;
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0xfe, int(uint8_t(p[0])));  // the auth switch
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));  // the change user's OK
    CPPUNIT_ASSERT_EQUAL(std::string("other"), get_field(record().user));
    // A long command (streamed through) and a short one behind it.
    std::string big = std::string(1, char(COM_QUERY)) + "SELECT 1 /*" + std::string(1200 * 1024, 'p') + "*/";
    client_->send_raw(framed(0, big) + framed(0, std::string(1, char(COM_PING))));
    for (int i = 0; i < 4; ++i) CPPUNIT_ASSERT(client_->read(p));  // the long query's result
    CPPUNIT_ASSERT_EQUAL(0xfe, int(uint8_t(p[0])));
    CPPUNIT_ASSERT(client_->read(p));
    CPPUNIT_ASSERT_EQUAL(0, int(p[0]));  // the ping's OK
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SessionCoreTest);
