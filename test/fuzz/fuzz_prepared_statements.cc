// Fuzzes the prepared-statement commands a client sends (COM_STMT_EXECUTE,
// _BULK_EXECUTE, _SEND_LONG_DATA, _FETCH, _RESET, _CLOSE) as the client
// session handles them: id_of(), the statement found, head_needed() and
// rewrite() for the backend statement, both the way a whole command is
// rewritten (route_statement) and the way a long, streamed one is, its start
// read in steps of head_needed() (route_streamed_statement).  The two must
// give the same bytes and leave the same state: a command must not change
// meaning with the size it happens to arrive in.  The client controls every
// byte of these commands; the statements' parameter counts come from the
// input as well.
//
// Input: a few statements (parameter and column counts, backend ids), then
// operations: a command to route (its bytes), a statement prepared again on
// another server session, one closed, a server session forgotten.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "protocol/codec.h"
#include "session/prepared_statements.h"

using namespace myrelay;
using namespace myrelay::proto;
using St = PreparedStatements::Statement;
using On = PreparedStatements::OnServer;

namespace {

const uint8_t kCommands[] = {COM_STMT_EXECUTE, COM_STMT_BULK_EXECUTE, COM_STMT_SEND_LONG_DATA,
                             COM_STMT_FETCH,   COM_STMT_RESET,        COM_STMT_CLOSE};

// The whole command, rewritten (ClientSession::route_statement).
bool whole(St& st, On& on, std::string& cmd) { return PreparedStatements::rewrite(st, on, cmd); }

// The command's start, read as a streamed command reads it, rewritten; the
// rest follows unchanged (ClientSession::route_streamed_statement).
bool streamed(St& st, On& on, std::string& cmd) {
  const size_t length = cmd.size();
  std::string head = cmd.substr(0, 5);
  int steps = 0;
  for (size_t need; (need = PreparedStatements::head_needed(st, head)) > head.size();) {
    FUZZ_CHECK(++steps < 8);  // each step reads more; a few steps at most
    if (need > length) break;  // malformed: the backend says so
    head = cmd.substr(0, need);
  }
  std::string rewritten = head;
  bool ok = PreparedStatements::rewrite(st, on, rewritten);
  cmd = rewritten + cmd.substr(head.size());
  return ok;
}

void route(PreparedStatements& ps, uint64_t ss_id, uint32_t backend_base, const std::string& cmd) {
  uint32_t id = 0;
  if (!PreparedStatements::id_of(fuzz::bytes(cmd), cmd.size(), id)) {
    FUZZ_CHECK(cmd.size() < 5);
    return;
  }
  FUZZ_CHECK(cmd.size() >= 5);
  St* st = ps.find(id);
  if (!st) return;  // ER_UNKNOWN_STMT_HANDLER
  FUZZ_CHECK(id == PreparedStatements::kLastPrepared || st->id == id);
  On* on = st->on_server(ss_id);
  if (!on) {
    // Prepared again on this server session (the re-prepare's answer).
    st->on.push_back({ss_id, backend_base + st->id, false});
    on = &st->on.back();
  }
  // Both ways from the same state.
  St st2 = *st;
  On* on2 = st2.on_server(ss_id);
  FUZZ_CHECK(on2);
  std::string a = cmd, b = cmd;
  bool ra = whole(*st, *on, a);
  bool rb = streamed(st2, *on2, b);
  FUZZ_CHECK(ra == rb);
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(st->param_types == st2.param_types);
  FUZZ_CHECK(on->types_bound == on2->types_bound);
  // The backend's id replaces the client's; the rest grows only by the types.
  uint32_t backend = 0;
  FUZZ_CHECK(PreparedStatements::id_of(fuzz::bytes(a), a.size(), backend));
  FUZZ_CHECK(backend == on->backend_id);
  FUZZ_CHECK(a[0] == cmd[0]);
  FUZZ_CHECK(a.size() == cmd.size() || a.size() == cmd.size() + 2 * size_t(st->params));
  if (!st->param_types.empty()) FUZZ_CHECK(st->param_types.size() == 2 * size_t(st->params));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  FuzzedDataProvider fdp(data, size);
  PreparedStatements ps;
  const uint32_t backend_base = fdp.ConsumeIntegral<uint32_t>();
  uint64_t ss_id = 1;

  const int n_statements = 1 + fdp.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < n_statements; ++i) {
    // Mostly few parameters, sometimes many (the NULL bitmap and the types grow with them).
    uint16_t params = fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<uint16_t>(0, 9) : fdp.ConsumeIntegral<uint16_t>();
    uint16_t columns = fdp.ConsumeIntegral<uint16_t>();
    St& st = ps.add("SELECT ?", true, ss_id, backend_base + uint32_t(i), columns, params);
    FUZZ_CHECK(ps.find(st.id) == &st);
  }
  int ops = 0;
  while (fdp.remaining_bytes() > 0 && ++ops < 64) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 9)) {
      case 0: {  // the next server session (the split, a failover)
        ss_id = 1 + fdp.ConsumeIntegralInRange<uint64_t>(0, 3);
        break;
      }
      case 1: {
        auto on = ps.remove(fdp.ConsumeIntegralInRange<uint32_t>(0, 5));
        (void)on;
        break;
      }
      case 2:
        ps.forget_server(1 + fdp.ConsumeIntegralInRange<uint64_t>(0, 3));
        (void)ps.any_cursor();
        (void)ps.any_long_data();
        (void)ps.any_unkept();
        break;
      case 3: {
        uint16_t params = fdp.ConsumeIntegralInRange<uint16_t>(0, 9);
        ps.add("SELECT ?", fdp.ConsumeBool(), ss_id, backend_base + 100, 1, params);
        break;
      }
      default: {
        // A command: its type and a statement id that mostly names one of ours.
        std::string cmd = fdp.ConsumeRandomLengthString(512);
        if (cmd.size() >= 5 && fdp.ConsumeBool()) {
          cmd[0] = char(kCommands[uint8_t(cmd[0]) % sizeof(kCommands)]);
          uint32_t id = fdp.ConsumeBool() ? PreparedStatements::kLastPrepared : 1 + uint8_t(cmd[1]) % 5;
          for (int b = 0; b < 4; ++b) cmd[1 + b] = char(id >> (8 * b));
        }
        if (!cmd.empty()) (void)PreparedStatements::names_statement(uint8_t(cmd[0]));
        route(ps, ss_id, backend_base, cmd);
        break;
      }
    }
  }
  ps.clear();
  FUZZ_CHECK(ps.size() == 0);
  return 0;
}
