// The fleet (DESIGN section 6a) without sockets: the peer frames and their
// signatures, the replay guard, what the peer port answers and by whose
// rules, which statements need the fleet, the GLOBAL forms, and the fleet:
// section of the configuration.
#include <cppunit/extensions/HelperMacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "control/fleet_command.h"
#include "control/fleet_message.h"
#include "control/fleet_server.h"
#include "control/sql_recognizer.h"
#include "fake_directory.h"
#include "service/config.h"

using namespace myrelay;
using namespace myrelay::fleet;

namespace {

const std::string kSecret = "0123456789abcdef-fleet-secret";

Request a_request(const std::string& statement, uint8_t sender_id = 1, const std::string& user = "root",
                  const std::string& tenant = "sys") {
  Request r;
  r.sender = Sender::Proxy;
  r.sender_proxy_id = sender_id;
  r.time_ms = now_ms();
  r.nonce = random_nonce();
  r.op = Op::Execute;
  r.caller_cs_id = 0x81000007;
  r.user = user;
  r.tenant = tenant;
  r.statement = statement;
  return r;
}

Frame one_frame(const std::string& bytes, const std::string& secret = kSecret) {
  std::string buf = bytes, why;
  Frame f;
  CPPUNIT_ASSERT_EQUAL(int(Take::Frame), int(take_frame(buf, secret, f, why)));
  CPPUNIT_ASSERT(buf.empty());
  return f;
}

}  // namespace

class FleetTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FleetTest);
  CPPUNIT_TEST(request_round_trip);
  CPPUNIT_TEST(reply_round_trip);
  CPPUNIT_TEST(frames_not_signed_with_the_secret_are_refused);
  CPPUNIT_TEST(every_altered_byte_is_caught);
  CPPUNIT_TEST(reply_decoder_rejects_lies);
  CPPUNIT_TEST(replay_guard);
  CPPUNIT_TEST(server_judges_by_its_own_rules);
  CPPUNIT_TEST(server_refuses);
  CPPUNIT_TEST(server_resolves_backend_ids);
  CPPUNIT_TEST(which_statements_need_the_fleet);
  CPPUNIT_TEST(global_statements_parse);
  CPPUNIT_TEST(configuration);
  CPPUNIT_TEST_SUITE_END();

  FakeDirectory dir;
  std::shared_ptr<Config> cfg;

 public:
  void setUp() override {
    dir = FakeDirectory{};
    dir.add(0x82000001, "app", "alice", 11, 1);
    dir.add(0x82000002, "app", "bob", 12, 2);
    dir.add(0x82000003, "other", "carol", 11, 3);  // backend id 11 again: another backend
    cfg = std::make_shared<Config>();
    cfg->proxy_id = 2;
    cfg->fleet.enabled = true;
    cfg->fleet.secret = kSecret;
    Tenant sys;
    sys.name = "sys";
    sys.privileged = true;
    Tenant app;
    app.name = "app";
    cfg->tenants = {sys, app};
  }

  std::unique_ptr<FleetServer> server() {
    auto c = cfg;
    return std::make_unique<FleetServer>(nullptr, [c] { return std::shared_ptr<const Config>(c); }, dir);
  }

  // The peer's answer to `req`, checked to be a signed answer to it.
  admin::Answer ask(FleetServer& s, const Request& req) {
    std::string log;
    bool refused = true;
    Frame reply = one_frame(s.answer(one_frame(encode_request(req, kSecret)), log, refused));
    CPPUNIT_ASSERT_MESSAGE(log, !refused);
    CPPUNIT_ASSERT_EQUAL(int(FrameType::Reply), int(reply.type));
    Reply r;
    std::string why;
    CPPUNIT_ASSERT_MESSAGE(why, decode_reply(reply.body, r, why));
    CPPUNIT_ASSERT(r.nonce == req.nonce);
    CPPUNIT_ASSERT_EQUAL(2, int(r.sender_proxy_id));
    return r.answer;
  }

  std::string refusal(FleetServer& s, const std::string& frame) {
    std::string log;
    bool refused = false;
    Frame f = one_frame(frame);
    Frame reply = one_frame(s.answer(f, log, refused));
    CPPUNIT_ASSERT(refused);
    CPPUNIT_ASSERT_EQUAL(int(FrameType::Refusal), int(reply.type));
    return decode_refusal(reply.body);
  }

  void request_round_trip() {
    Request r = a_request("KILL 2164260865");
    r.id = 42;
    Frame f = one_frame(encode_request(r, kSecret));
    CPPUNIT_ASSERT_EQUAL(int(FrameType::Request), int(f.type));
    Request back;
    std::string why;
    CPPUNIT_ASSERT_MESSAGE(why, decode_request(f.body, back, why));
    CPPUNIT_ASSERT_EQUAL(r.statement, back.statement);
    CPPUNIT_ASSERT_EQUAL(r.user, back.user);
    CPPUNIT_ASSERT_EQUAL(r.tenant, back.tenant);
    CPPUNIT_ASSERT_EQUAL(r.caller_cs_id, back.caller_cs_id);
    CPPUNIT_ASSERT_EQUAL(r.time_ms, back.time_ms);
    CPPUNIT_ASSERT_EQUAL(uint64_t(42), back.id);
    CPPUNIT_ASSERT(r.nonce == back.nonce);
    CPPUNIT_ASSERT(random_nonce() != random_nonce());
  }

  void reply_round_trip() {
    Reply r;
    r.sender_proxy_id = 3;
    r.nonce = random_nonce();
    r.answer.kind = admin::Answer::Kind::Rows;
    r.answer.columns.resize(2);
    r.answer.columns[0].name = "Id";
    r.answer.columns[0].type = proto::MYSQL_TYPE_LONGLONG;
    r.answer.columns[1].name = "db";
    r.answer.rows = {{std::string("7"), std::nullopt}, {std::string("8"), std::string("test")}};
    r.answer.warnings.push_back({"Note", 1105, "a note"});
    Reply back;
    std::string why;
    CPPUNIT_ASSERT_MESSAGE(why, decode_reply(one_frame(encode_reply(r, kSecret)).body, back, why));
    CPPUNIT_ASSERT_EQUAL(3, int(back.sender_proxy_id));
    CPPUNIT_ASSERT_EQUAL(size_t(2), back.answer.rows.size());
    CPPUNIT_ASSERT(!back.answer.rows[0][1]);
    CPPUNIT_ASSERT_EQUAL(std::string("test"), *back.answer.rows[1][1]);
    CPPUNIT_ASSERT_EQUAL(std::string("Id"), back.answer.columns[0].name);
    CPPUNIT_ASSERT_EQUAL(int(proto::MYSQL_TYPE_LONGLONG), int(back.answer.columns[0].type));
    CPPUNIT_ASSERT_EQUAL(std::string("a note"), back.answer.warnings.at(0).message);

    Reply err;
    err.answer.error(er::ER_KILL_DENIED_ERROR, "You are not owner of thread 5");
    CPPUNIT_ASSERT(decode_reply(one_frame(encode_reply(err, kSecret)).body, back = Reply{}, why));
    CPPUNIT_ASSERT_EQUAL(int(admin::Answer::Kind::Error), int(back.answer.kind));
    CPPUNIT_ASSERT_EQUAL(uint16_t(1095), back.answer.error_code);
    CPPUNIT_ASSERT_EQUAL(std::string("HY000"), back.answer.sqlstate);
  }

  void frames_not_signed_with_the_secret_are_refused() {
    std::string bytes = encode_request(a_request("SHOW PROXYSESSION"), "another secret, same length!!");
    std::string why;
    Frame f;
    CPPUNIT_ASSERT_EQUAL(int(Take::Bad), int(take_frame(bytes, kSecret, f, why)));
    CPPUNIT_ASSERT(why.find("wrong signature") != std::string::npos);
    // A stranger is refused at its first bytes, not after a length it never meant.
    std::string http = "GE";
    CPPUNIT_ASSERT_EQUAL(int(Take::Bad), int(take_frame(http, kSecret, f, why)));
    // Too short yet: wait.
    std::string part = encode_request(a_request("SHOW PROXYSESSION"), kSecret).substr(0, 20);
    CPPUNIT_ASSERT_EQUAL(int(Take::NeedMore), int(take_frame(part, kSecret, f, why)));
    // A length beyond the limit is refused without waiting for it.
    std::string huge = std::string("MYRF\x01\x01\x00\x00\x7f\xff\xff\xff", 12);
    CPPUNIT_ASSERT_EQUAL(int(Take::Bad), int(take_frame(huge, kSecret, f, why)));
  }

  void every_altered_byte_is_caught() {
    const std::string good = encode_request(a_request("KILL 2164260865"), kSecret);
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = char(bad[i] ^ 0x20);
      std::string why;
      Frame f;
      Take t = take_frame(bad, kSecret, f, why);
      CPPUNIT_ASSERT_MESSAGE("byte " + std::to_string(i), t != Take::Frame);
    }
  }

  void reply_decoder_rejects_lies() {
    Reply r;
    r.answer.kind = admin::Answer::Kind::Rows;
    r.answer.columns.resize(1);
    r.answer.rows = {{std::string("1")}};
    std::string body = one_frame(encode_reply(r, kSecret)).body;
    Reply back;
    std::string why;
    CPPUNIT_ASSERT(!decode_reply(body + "x", back, why));  // trailing bytes
    // Claims a billion rows it does not hold.
    size_t rows_at = 1 + 16 + 1 + 8 + 2 + 4 + 4 + 4 + (4 + 0 + 1 + 4 + 2 + 1 + 1);
    std::string lie = body;
    lie[rows_at] = char(0x40);
    CPPUNIT_ASSERT(!decode_reply(lie, back = Reply{}, why));
    CPPUNIT_ASSERT(!decode_reply(body.substr(0, body.size() / 2), back = Reply{}, why));
    std::string kind = body;
    kind[17] = 9;
    CPPUNIT_ASSERT(!decode_reply(kind, back = Reply{}, why));
  }

  void replay_guard() {
    ReplayGuard g;
    std::string why;
    const int64_t now = 1700000000000;
    Nonce a = random_nonce(), b = random_nonce();
    CPPUNIT_ASSERT(g.accept(now, a, now, why));
    CPPUNIT_ASSERT(!g.accept(now, a, now + 10, why));
    CPPUNIT_ASSERT(why.find("replayed") != std::string::npos);
    CPPUNIT_ASSERT(!g.accept(now - kReplayWindowMs - 1, b, now, why));
    CPPUNIT_ASSERT(!g.accept(now + kReplayWindowMs + 1, b, now, why));
    CPPUNIT_ASSERT(g.accept(now + 5, b, now, why));
    // Past the window the nonces are forgotten (a replay then fails on its time).
    Nonce c = random_nonce();
    CPPUNIT_ASSERT(g.accept(now + 3 * kReplayWindowMs, c, now + 3 * kReplayWindowMs, why));
    CPPUNIT_ASSERT_EQUAL(size_t(1), g.remembered());
    CPPUNIT_ASSERT(!g.accept(now, a, now + 3 * kReplayWindowMs, why));
  }

  void server_judges_by_its_own_rules() {
    auto s = server();
    // root of the privileged tenant sys (by this proxy's configuration).
    admin::Answer a = ask(*s, a_request("KILL 2181038081"));
    CPPUNIT_ASSERT_EQUAL(int(admin::Answer::Kind::Ok), int(a.kind));
    CPPUNIT_ASSERT_EQUAL(size_t(1), dir.sent.size());
    CPPUNIT_ASSERT_EQUAL(0x82000001u, dir.sent[0].cs_id);
    CPPUNIT_ASSERT_EQUAL(std::string("root@sys via proxy 1"), dir.sent[0].sender_name);
    // alice may not kill bob's session (same tenant): 1095; carol's tenant is
    // not hers: 1094; she is no privileged user here: 1227.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1095), ask(*s, a_request("KILL 2181038082", 1, "alice", "app")).error_code);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1094), ask(*s, a_request("KILL 2181038083", 1, "alice", "app")).error_code);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227),
                         ask(*s, a_request("KILL PROXYSESSION 2181038081", 1, "alice", "app")).error_code);
    CPPUNIT_ASSERT_EQUAL(int(admin::Answer::Kind::Ok),
                         int(ask(*s, a_request("KILL QUERY 2181038081", 1, "alice", "app")).kind));
    // A tenant this proxy does not know is nobody's privileged tenant.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1227), ask(*s, a_request("KILL PROXYSESSION 2181038081", 1, "root", "nosuch")).error_code);
    // Listings by the same visibility rules.
    CPPUNIT_ASSERT_EQUAL(size_t(3), ask(*s, a_request("SHOW GLOBAL PROXYSESSION")).rows.size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), ask(*s, a_request("SHOW PROXYSESSION", 1, "bob", "app")).rows.size());
    // Only what peers may ask for.
    CPPUNIT_ASSERT_EQUAL(uint16_t(1235), ask(*s, a_request("SHOW PROXYKILLS")).error_code);
    CPPUNIT_ASSERT_EQUAL(uint16_t(1064), ask(*s, a_request("KILL PROXYSESSION WHERE colour = 'red'")).error_code);
    // myrelayctl --fleet holds the secret: an administrator.
    Request tool = a_request("KILL PROXYSESSION 2181038083", 0, "myrelayctl", "");
    tool.sender = Sender::Tool;
    CPPUNIT_ASSERT_EQUAL(int(admin::Answer::Kind::Ok), int(ask(*s, tool).kind));
    CPPUNIT_ASSERT_EQUAL(std::string("myrelayctl@ via myrelayctl --fleet"), dir.sent.back().sender_name);
  }

  void server_refuses() {
    auto s = server();
    Request r = a_request("SHOW PROXYSESSION");
    std::string frame = encode_request(r, kSecret);
    std::string log;
    bool refused = true;
    s->answer(one_frame(frame), log, refused);
    CPPUNIT_ASSERT(!refused);
    CPPUNIT_ASSERT(refusal(*s, frame).find("replayed") != std::string::npos);
    CPPUNIT_ASSERT(refusal(*s, encode_request(a_request("SHOW PROXYSESSION", 2), kSecret)).find("this proxy's own") !=
                   std::string::npos);
    Request old = a_request("SHOW PROXYSESSION");
    old.time_ms -= 120000;
    CPPUNIT_ASSERT(refusal(*s, encode_request(old, kSecret)).find("clock") != std::string::npos);
    cfg->fleet.enabled = false;
    CPPUNIT_ASSERT(refusal(*s, encode_request(a_request("SHOW PROXYSESSION"), kSecret)).find("no fleet") !=
                   std::string::npos);
  }

  void server_resolves_backend_ids() {
    auto s = server();
    Request r = a_request("KILL 11");
    r.op = Op::Resolve;
    r.id = 11;
    admin::Answer a = ask(*s, r);
    CPPUNIT_ASSERT_EQUAL(size_t(2), a.rows.size());  // alice's and carol's
    r = a_request("KILL 11", 1, "alice", "app");
    r.op = Op::Resolve;
    r.id = 11;
    a = ask(*s, r);
    CPPUNIT_ASSERT_EQUAL(size_t(1), a.rows.size());  // carol's tenant is not alice's
    CPPUNIT_ASSERT_EQUAL(std::to_string(0x82000001u), *a.rows[0][0]);
    // Execute as the cs_id the asking proxy resolved it to.
    r = a_request("KILL 11");
    r.id = 0x82000003;
    CPPUNIT_ASSERT_EQUAL(int(admin::Answer::Kind::Ok), int(ask(*s, r).kind));
    CPPUNIT_ASSERT_EQUAL(0x82000003u, dir.sent.back().cs_id);
  }

  void which_statements_need_the_fleet() {
    Config c;
    c.proxy_id = 1;
    auto needs = [&](const std::string& sql) { return FleetCommand::involves_peers(sql::parse_admin(sql), c); };
    CPPUNIT_ASSERT(!needs("KILL 2181038081"));  // no fleet
    c.fleet.enabled = true;
    FleetPeer p;
    p.proxy_id = 2;
    c.fleet.peers.push_back(p);
    CPPUNIT_ASSERT(needs("KILL 2181038081"));            // proxy 2's
    CPPUNIT_ASSERT(needs("KILL QUERY 2181038081"));
    CPPUNIT_ASSERT(needs("KILL PROXYSESSION 2181038081 5"));
    CPPUNIT_ASSERT(needs("SHOW PROXYSESSION ATTRIBUTE 2181038081"));
    CPPUNIT_ASSERT(!needs("KILL 2164260865"));           // this proxy's own (proxy_id 1)
    CPPUNIT_ASSERT(!needs("KILL 2231369729"));           // proxy 5: no such peer, 1094 here
    CPPUNIT_ASSERT(needs("KILL 1234"));                  // a backend id: anyone's
    CPPUNIT_ASSERT(!needs("SHOW PROXYSESSION"));
    CPPUNIT_ASSERT(needs("SHOW GLOBAL PROXYSESSION"));
    CPPUNIT_ASSERT(needs("KILL GLOBAL PROXYSESSION WHERE user = 'a'"));
    CPPUNIT_ASSERT(!needs("KILL PROXYSESSION WHERE user = 'a'"));
    CPPUNIT_ASSERT(!needs("SHOW PROXYSESSION ATTRIBUTE"));  // one's own
  }

  void global_statements_parse() {
    using K = sql::AdminStatement::Kind;
    auto st = sql::parse_admin("show global proxysession");
    CPPUNIT_ASSERT_EQUAL(int(K::ShowSessions), int(st.kind));
    CPPUNIT_ASSERT(st.global);
    st = sql::parse_admin("SHOW GLOBAL PROXYSESSION LIKE 'app%';");
    CPPUNIT_ASSERT(st.global && st.has_like && st.like == "app%");
    st = sql::parse_admin("SHOW PROXYSESSION LIKE 'bob'");
    CPPUNIT_ASSERT(!st.global && st.has_like);
    CPPUNIT_ASSERT_EQUAL(int(K::None), int(sql::parse_admin("SHOW GLOBAL STATUS").kind));
    CPPUNIT_ASSERT_EQUAL(int(K::None), int(sql::parse_admin("SHOW GLOBAL VARIABLES LIKE 'x'").kind));
    CPPUNIT_ASSERT_EQUAL(int(K::Malformed), int(sql::parse_admin("SHOW GLOBAL PROXYSESSION ATTRIBUTE 5").kind));
    st = sql::parse_admin("KILL GLOBAL PROXYSESSION WHERE user = 'x' LIMIT 3 WHEN IDLE");
    CPPUNIT_ASSERT_EQUAL(int(K::KillWhere), int(st.kind));
    CPPUNIT_ASSERT(st.global && st.when_idle && st.filter.has_limit);
    st = sql::parse_admin("EXPLAIN KILL GLOBAL PROXYSESSION WHERE idle_s > 5");
    CPPUNIT_ASSERT_EQUAL(int(K::ExplainKillWhere), int(st.kind));
    CPPUNIT_ASSERT(st.global);
    st = sql::parse_admin("KILL GLOBAL 5");
    CPPUNIT_ASSERT_EQUAL(int(K::Malformed), int(st.kind));
    CPPUNIT_ASSERT(st.error.find("KILL GLOBAL takes PROXYSESSION WHERE") != std::string::npos);
  }

  void configuration() {
    char dirname[] = "/tmp/myrelay-fleet-XXXXXX";
    CPPUNIT_ASSERT(mkdtemp(dirname));
    const std::string d = dirname, secret = d + "/fleet.secret";
    std::ofstream(secret) << "0123456789abcdef0123456789abcdef\n";
    chmod(secret.c_str(), 0600);
    const std::string base =
        "proxy: { proxy_id: 1 }\n"
        "clusters: [ { name: main, servers: [ { address: 127.0.0.1:3306 } ] } ]\n"
        "tenants: [ { name: app, users: [ { name: app } ] } ]\n";
    auto fleet = [&](const std::string& peers, const std::string& extra = "") {
      return base + "fleet: { listen: 127.0.0.1:2884, secret_file: fleet.secret, peers: [ " + peers + " ]" + extra +
             " }\n";
    };
    auto error_of = [&](const std::string& yaml) -> std::string {
      try {
        load_config_string(yaml, d + "/myrelay.yaml");
      } catch (const ConfigError& e) {
        return e.what();
      }
      return "";
    };
    Config c = load_config_string(fleet("{ proxy_id: 2, address: 127.0.0.1:2885 }, { proxy_id: 3, address: '[::1]:2886' }",
                                        ", timeout_ms: 500"),
                                  d + "/myrelay.yaml");
    CPPUNIT_ASSERT(c.fleet.enabled);
    CPPUNIT_ASSERT_EQUAL(std::string("0123456789abcdef0123456789abcdef"), c.fleet.secret);  // newline dropped
    CPPUNIT_ASSERT_EQUAL(500, c.fleet.timeout_ms);
    CPPUNIT_ASSERT_EQUAL(size_t(2), c.fleet.peers.size());
    CPPUNIT_ASSERT(c.fleet.find_peer(3) && c.fleet.find_peer(3)->addr_len > 0);
    CPPUNIT_ASSERT(!c.fleet.find_peer(1));
    CPPUNIT_ASSERT(!load_config_string(base, "x.yaml").fleet.enabled);

    std::string e = error_of(fleet("{ proxy_id: 1, address: 127.0.0.1:2885 }"));
    CPPUNIT_ASSERT_MESSAGE(e, e.find("fleet.peers[0].proxy_id: 1 is this proxy's own") != std::string::npos);
    e = error_of(fleet("{ proxy_id: 2, address: 127.0.0.1:2885 }, { proxy_id: 2, address: 127.0.0.1:2886 }"));
    CPPUNIT_ASSERT_MESSAGE(e, e.find("fleet.peers[1].proxy_id: 2 is listed twice") != std::string::npos);
    e = error_of(base + "fleet: { secret_file: fleet.secret }\n");
    CPPUNIT_ASSERT_MESSAGE(e, e.find("fleet.listen: required") != std::string::npos);
    e = error_of(base + "fleet: { listen: 127.0.0.1:2883, secret_file: fleet.secret }\n");
    CPPUNIT_ASSERT_MESSAGE(e, e.find("must differ from proxy.listen") != std::string::npos);
    chmod(secret.c_str(), 0644);
    e = error_of(fleet(""));
    CPPUNIT_ASSERT_MESSAGE(e, e.find("fleet.secret_file: '" + secret + "' is readable by others") != std::string::npos);
    std::ofstream(secret) << "short\n";
    chmod(secret.c_str(), 0600);
    e = error_of(fleet(""));
    CPPUNIT_ASSERT_MESSAGE(e, e.find("at least 16") != std::string::npos);
    unlink(secret.c_str());
    e = error_of(fleet(""));
    CPPUNIT_ASSERT_MESSAGE(e, e.find("cannot read") != std::string::npos);
    rmdir(dirname);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FleetTest);
