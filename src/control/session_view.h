// How a session record reads to people: the columns of SHOW PROXYSESSION, the
// rows of SHOW PROXYSESSION ATTRIBUTE.  Shared by the SQL
// admin commands and myrelayctl so both print the same thing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "myrelay/shm_layout.h"

namespace myrelay::view {

const char* client_state_name(uint32_t state);
const char* server_state_name(uint32_t state);

// SHOW PROXYSESSION.
const std::vector<std::string>& session_columns();
// Which of those columns are numbers (for alignment and column types).
bool session_column_is_numeric(size_t i);
std::vector<std::optional<std::string>> session_row(const shm::SessionRecord& r, int pid);

// SHOW PROXYSESSION ATTRIBUTE.
struct Attribute {
  std::string name;
  std::optional<std::string> value;
  std::string info;
};
// What a slot's statement area held (ShmTable::read_statement).
struct StatementInfo {
  std::string text;
  int64_t start_us = 0;  // 0: none yet
  int64_t end_us = 0;    // 0: still running
};
// With `st`, the rows `statement` and `statement_time_ms` too (the running
// statement's time so far, or the last one's duration).
std::vector<Attribute> session_attributes(const shm::SessionRecord& r, int pid, int64_t now_us,
                                          const StatementInfo* st = nullptr);
// Why a session cannot be carried to another server session (NotRestorable bits).
uint32_t reasons_of(const shm::SessionRecord& r);
// The reasons a session cannot be carried, comma-separated ("" when it can).
std::string not_restorable_because(uint32_t reasons);
// Why an idle multiplexed session keeps its connection (SessionRecord::pinned).
std::string pinned_because(uint32_t pinned);

// SHOW PROXYSESSION VARIABLES: the entries of a slot's variables area.
struct Variable {
  std::string name;
  std::string value;
  std::string info;  // "system variable", "schema", "next transaction"
};
std::vector<Variable> session_variables(std::string_view area);

// SHOW PROXYCONGESTION and myrelayctl servers: one backend server's health.
const std::vector<std::string>& congestion_columns();
bool congestion_column_is_numeric(size_t i);
// `server_sessions` open, of them `shared_idle` idle in shared sets;
// `waiting` statements waiting for one under max_server_connections.
std::vector<std::optional<std::string>> congestion_row(const shm::ServerHealthRecord& rec, int64_t server_sessions,
                                                       int64_t shared_idle, int64_t waiting);

// The kill log's words: a KillReason's name ("kill", "client_idle_timeout",
// ...), and what became of the statement on the backend.
const char* kill_reason_name(uint8_t reason);
const char* backend_stop_name(uint8_t stop);
// SHOW PROXYKILLS and myrelayctl kills.
const std::vector<std::string>& kill_columns();
bool kill_column_is_numeric(size_t i);
std::vector<std::optional<std::string>> kill_row(const shm::KillRecord& r);

int64_t now_us();

}  // namespace myrelay::view
