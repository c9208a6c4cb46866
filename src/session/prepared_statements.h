// A client session's binary-protocol prepared statements (DESIGN section
// 3a).  Clients see the proxy's own statement ids; each statement remembers
// its text, its counts and the parameter types the client last bound, and,
// per server session, the backend's id for it.  A statement that a server
// session lacks is prepared there again when the client next uses it, and
// the command is rewritten for the backend: its id, and the parameter types
// when the client sends new_params_bound=0 to a backend statement that never
// had them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace myrelay {

class PreparedStatements {
 public:
  // MariaDB's "the statement prepared last" (mariadb_stmt_execute_direct).
  static constexpr uint32_t kLastPrepared = 0xffffffff;
  static constexpr uint64_t kNoMetadata = 14695981039346656037ull;  // FNV-1a's offset basis
  // One more definition packet into a statement's metadata digest.
  static uint64_t fold(uint64_t digest, std::string_view definition);

  struct OnServer {
    uint64_t ss_id;
    uint32_t backend_id;
    bool types_bound;  // the backend statement has had parameter types
  };
  struct Statement {
    uint32_t id = 0;  // the client's
    std::string sql;
    bool sql_kept = true;  // false: too long to keep, cannot be prepared again
    uint16_t columns = 0;
    uint16_t params = 0;
    // The parameter and column definitions the client got, folded: a
    // statement prepared again must describe itself the same way (a client
    // that caches metadata never sees it again).
    uint64_t metadata = kNoMetadata;
    std::string param_types;  // 2 bytes per parameter, as the client last bound them
    bool cursor_open = false;
    bool long_data = false;   // COM_STMT_SEND_LONG_DATA waits for an EXECUTE
    bool broken = false;      // prepared again with other counts: every use fails
    int8_t replica_ok = -1;   // a replica may execute it (read/write split); -1 not yet judged
    std::vector<OnServer> on;
    OnServer* on_server(uint64_t ss_id);
    void forget_server(uint64_t ss_id);
  };

  // A statement the client prepared on server session `ss_id`; returns it
  // with its new client id.
  Statement& add(std::string sql, bool sql_kept, uint64_t ss_id, uint32_t backend_id, uint16_t columns,
                 uint16_t params);
  // The statement a client id names (kLastPrepared: the last one prepared).
  Statement* find(uint32_t id);
  // COM_STMT_CLOSE: forgets the statement; returns where it was prepared.
  std::vector<OnServer> remove(uint32_t id);
  // A server session is gone or reset: its backend statements with it.
  void forget_server(uint64_t ss_id);
  // COM_RESET_CONNECTION or COM_CHANGE_USER: the server drops them all.
  void clear();

  size_t size() const { return stmts_.size(); }
  bool any_cursor() const;
  bool any_long_data() const;
  bool any_unkept() const;

  // ---- the commands that name a statement ----
  // COM_STMT_EXECUTE, _SEND_LONG_DATA, _RESET, _FETCH, _CLOSE, _BULK_EXECUTE.
  static bool names_statement(uint8_t command);
  // COM_STMT_CLOSE of a backend statement (it gets no response).
  static std::string close_command(uint32_t backend_id);
  // The statement id at bytes 1..4 of a command.
  static bool id_of(const uint8_t* payload, size_t len, uint32_t& id);
  // How many bytes of the command's start rewrite() needs to see (it may
  // ask again with more once it sees them).
  static size_t head_needed(const Statement& st, const std::string& head);
  // Rewrites a command's start for the backend statement `on`: its id,
  // and for EXECUTE and BULK_EXECUTE, the parameter types (remembered when
  // the client binds them, added when the backend statement has none).
  // `head` holds at least head_needed() bytes, or the whole command.
  // False when the backend statement needs types the client never bound:
  // the command then goes as the client sent it, to fail as it would have.
  static bool rewrite(Statement& st, OnServer& on, std::string& head);

 private:
  uint32_t next_id_ = 1;
  uint32_t last_prepared_ = 0;
  uint32_t cached_id_ = 0;          // the statement find() found last
  Statement* cached_ = nullptr;
  std::unordered_map<uint32_t, Statement> stmts_;
};

}  // namespace myrelay
