// A client session's prepared statements (see prepared_statements.h).
#include "session/prepared_statements.h"

#include <algorithm>

#include "protocol/codec.h"

namespace myrelay {

using namespace proto;

namespace {

// COM_STMT_BULK_EXECUTE's flag: parameter types precede the rows.
constexpr uint16_t kBulkSendTypes = 128;

// COM_STMT_EXECUTE: cmd(1) id(4) flags(1) iterations(4), then for a statement
// with parameters: the NULL bitmap, new_params_bound(1), the types.
size_t execute_bound_flag_at(const PreparedStatements::Statement& st) { return 10 + (st.params + 7) / 8; }

void put_u32(std::string& s, size_t at, uint32_t v) {
  const char le[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
  s.replace(at, 4, le, 4);
}

}  // namespace

uint64_t PreparedStatements::fold(uint64_t digest, std::string_view definition) {
  // FNV-1a over the length and the bytes: not a defence against anyone, a
  // check that two backends describe a statement alike.
  auto mix = [&](uint8_t b) {
    digest ^= b;
    digest *= 1099511628211ull;
  };
  for (int i = 0; i < 4; ++i) mix(uint8_t(definition.size() >> (8 * i)));
  for (char c : definition) mix(uint8_t(c));
  return digest;
}

std::string PreparedStatements::close_command(uint32_t backend_id) {
  std::string p(5, char(proto::COM_STMT_CLOSE));
  for (int i = 0; i < 4; ++i) p[1 + i] = char(uint8_t(backend_id >> (8 * i)));
  return p;
}

PreparedStatements::OnServer* PreparedStatements::Statement::on_server(uint64_t ss_id) {
  for (OnServer& o : on)
    if (o.ss_id == ss_id) return &o;
  return nullptr;
}

void PreparedStatements::Statement::forget_server(uint64_t ss_id) {
  for (auto it = on.begin(); it != on.end(); ++it)
    if (it->ss_id == ss_id) {
      on.erase(it);
      return;
    }
}

PreparedStatements::Statement& PreparedStatements::add(std::string sql, bool sql_kept, uint64_t ss_id,
                                                       uint32_t backend_id, uint16_t columns, uint16_t params) {
  uint32_t id = next_id_++;
  while (next_id_ == 0 || next_id_ == kLastPrepared || stmts_.count(next_id_)) ++next_id_;  // after 4e9 prepares
  Statement& st = stmts_[id];
  st.id = id;
  st.sql = std::move(sql);
  st.sql_kept = sql_kept;
  st.columns = columns;
  st.params = params;
  st.on.push_back({ss_id, backend_id, false});
  last_prepared_ = id;
  return st;
}

PreparedStatements::Statement* PreparedStatements::find(uint32_t id) {
  if (id == kLastPrepared) id = last_prepared_;
  if (id == cached_id_ && cached_) return cached_;  // a client mostly runs one statement again and again
  auto it = stmts_.find(id);
  if (it == stmts_.end()) return nullptr;
  cached_id_ = id;
  cached_ = &it->second;
  return cached_;
}

std::vector<PreparedStatements::OnServer> PreparedStatements::remove(uint32_t id) {
  if (id == kLastPrepared) id = last_prepared_;
  auto it = stmts_.find(id);
  if (it == stmts_.end()) return {};
  std::vector<OnServer> on = std::move(it->second.on);
  if (cached_ == &it->second) cached_ = nullptr;
  stmts_.erase(it);
  return on;
}

void PreparedStatements::forget_server(uint64_t ss_id) {
  for (auto& [id, st] : stmts_) {
    auto gone = std::remove_if(st.on.begin(), st.on.end(), [&](const OnServer& o) { return o.ss_id == ss_id; });
    st.on.erase(gone, st.on.end());
    // A cursor and long data live on one backend statement only.
    if (st.on.empty()) st.cursor_open = st.long_data = false;
  }
}

void PreparedStatements::clear() {
  cached_ = nullptr;
  stmts_.clear();
  last_prepared_ = 0;
}

bool PreparedStatements::any_cursor() const {
  for (const auto& [id, st] : stmts_)
    if (st.cursor_open) return true;
  return false;
}

bool PreparedStatements::any_long_data() const {
  for (const auto& [id, st] : stmts_)
    if (st.long_data) return true;
  return false;
}

bool PreparedStatements::any_unkept() const {
  for (const auto& [id, st] : stmts_)
    if (!st.sql_kept) return true;
  return false;
}

bool PreparedStatements::names_statement(uint8_t command) {
  switch (command) {
    case COM_STMT_EXECUTE:
    case COM_STMT_SEND_LONG_DATA:
    case COM_STMT_RESET:
    case COM_STMT_FETCH:
    case COM_STMT_CLOSE:
    case COM_STMT_BULK_EXECUTE:
      return true;
    default:
      return false;
  }
}

bool PreparedStatements::id_of(const uint8_t* p, size_t len, uint32_t& id) {
  if (len < 5) return false;
  id = uint32_t(p[1]) | uint32_t(p[2]) << 8 | uint32_t(p[3]) << 16 | uint32_t(p[4]) << 24;
  return true;
}

size_t PreparedStatements::head_needed(const Statement& st, const std::string& head) {
  const uint8_t command = head.empty() ? 0 : uint8_t(head[0]);
  const size_t types = 2 * size_t(st.params);
  if (command == COM_STMT_EXECUTE && st.params > 0) {
    size_t flag_at = execute_bound_flag_at(st);
    if (head.size() <= flag_at) return flag_at + 1;
    return flag_at + 1 + (head[flag_at] ? types : 0);
  }
  if (command == COM_STMT_BULK_EXECUTE) {
    if (head.size() < 7) return 7;
    uint16_t flags = uint16_t(uint8_t(head[5]) | uint8_t(head[6]) << 8);
    return 7 + ((flags & kBulkSendTypes) ? types : 0);
  }
  return 5;
}

bool PreparedStatements::rewrite(Statement& st, OnServer& on, std::string& head) {
  if (head.size() < 5) return true;  // malformed: the backend says so
  put_u32(head, 1, on.backend_id);
  const uint8_t command = uint8_t(head[0]);
  if (st.params == 0 || (command != COM_STMT_EXECUTE && command != COM_STMT_BULK_EXECUTE)) return true;
  const size_t types = 2 * size_t(st.params);
  size_t types_at = 0;
  bool bound = false;
  if (command == COM_STMT_EXECUTE) {
    size_t flag_at = execute_bound_flag_at(st);
    if (head.size() <= flag_at) return true;
    bound = head[flag_at] != 0;
    if (!bound && on.types_bound) return true;  // the usual execute: types sent before
    types_at = flag_at + 1;
    if (!bound && st.param_types.size() == types) head[flag_at] = 1;
  } else {
    if (head.size() < 7) return true;
    uint16_t flags = uint16_t(uint8_t(head[5]) | uint8_t(head[6]) << 8);
    bound = flags & kBulkSendTypes;
    types_at = 7;
    if (!bound && !on.types_bound && st.param_types.size() == types) head[5] = char(flags | kBulkSendTypes);
  }
  if (bound) {
    if (head.size() >= types_at + types) {
      st.param_types.assign(head, types_at, types);
      on.types_bound = true;
    }
    return true;
  }
  if (on.types_bound) return true;
  if (st.param_types.size() != types) return false;
  head.insert(types_at, st.param_types);
  on.types_bound = true;
  return true;
}

}  // namespace myrelay
