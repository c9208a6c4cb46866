// The binary-protocol statements prepared on one shared backend connection
// (multiplexing): whichever client session prepared a text there, every
// session that takes the connection later uses that backend statement
// instead of preparing it again.  Client sessions keep their own ids
// (prepared_statements.h); this is the connection's side: text -> backend
// id, with what the statement described itself as, and who bound its
// parameter types last (another session's types must be sent again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace myrelay {

class BackendStatements {
 public:
  // At most this many per connection (MariaDB's max_prepared_stmt_count is
  // 16382 for the whole server); beyond it the oldest are closed.
  static constexpr size_t kMax = 256;

  struct Entry {
    uint32_t backend_id = 0;
    uint16_t columns = 0;
    uint16_t params = 0;
    uint64_t metadata = 0;
    uint32_t last_binder = 0;  // the cs_id whose parameter types the backend holds
  };

  // The backend statement kept under a key (its text), or null.
  Entry* find(const std::string& key);
  // Whether a backend statement is still prepared here.
  bool alive(uint32_t backend_id) const { return by_id_.count(backend_id) != 0; }
  // It, while it is (null: closed, or replaced by another of its key).
  Entry* by_id(uint32_t backend_id);
  // A statement prepared here; an older one of the same key is to be closed.
  void add(const std::string& key, const Entry& e);
  // Backend statements to close now (replaced, or over kMax), forgotten.
  std::vector<uint32_t> take_closable();
  size_t size() const { return by_key_.size(); }

 private:
  struct Kept {
    Entry entry;
    std::string key;
  };
  void forget(uint32_t backend_id);

  std::unordered_map<std::string, uint32_t> by_key_;  // key -> the live backend id
  std::unordered_map<uint32_t, Kept> by_id_;          // every live one
  std::deque<uint32_t> order_;                       // oldest first
  std::vector<uint32_t> closable_;
};

}  // namespace myrelay
