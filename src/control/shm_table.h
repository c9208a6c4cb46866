// The shared-memory session table (layout in shm_layout.h): created by the
// daemon, attached read-only by readers.  It implements the changecount
// protocol for slots and keeps the daemon's free list of slots.
#pragma once

#include <string.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "myrelay/shm_layout.h"

namespace myrelay {

// Copies `s` into a fixed field, cut to fit and always NUL-terminated.
template <size_t N>
void set_field(char (&dst)[N], std::string_view s) {
  size_t n = s.size() < N - 1 ? s.size() : N - 1;
  memcpy(dst, s.data(), n);
  memset(dst + n, 0, N - n);
}
// Whether a fixed field holds what set_field(dst, s) would store.
template <size_t N>
bool field_equals(const char (&dst)[N], std::string_view s) {
  size_t n = s.size() < N - 1 ? s.size() : N - 1;
  return strnlen(dst, N) == n && memcmp(dst, s.data(), n) == 0;
}
// Reads a fixed field even if a writer forgot the NUL.
template <size_t N>
std::string get_field(const char (&src)[N]) {
  size_t n = 0;
  while (n < N && src[n] != '\0') ++n;
  return std::string(src, n);
}

// Lock-free single-writer counter bump (only the owning thread adds).
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Whether process `pid` is alive and (when start_ticks != 0) still the
// process that started at that time, not a later one with the pid reused.
bool process_alive(pid_t pid, uint64_t start_ticks);
uint64_t process_start_ticks(pid_t pid);

class ShmTable {
 public:
  enum class AttachError { None, NotFound, Permission, BadLayout, VersionMismatch, Stale, Other };

  ~ShmTable();
  ShmTable(const ShmTable&) = delete;
  ShmTable& operator=(const ShmTable&) = delete;

  struct CreateOptions {
    std::string name;
    uint32_t worker_count = 1;
    uint32_t slot_count = 1;
    int proxy_id = 0;
    std::string listen;
    std::string version;
    gid_t admin_gid = gid_t(-1);  // -1: no admin group
    uint32_t server_count = shm::kMaxServers;
    uint32_t kill_log_size = 1000;  // proxy.kill_log_size
  };
  // Daemon side.  Replaces a segment left by a dead daemon; refuses (with its
  // pid in the message) one that belongs to a live daemon.
  static std::unique_ptr<ShmTable> create(const CreateOptions& opts, std::string& error);
  // Reader side (read-only mapping).
  static std::unique_ptr<ShmTable> attach(const std::string& name, AttachError& code,
                                          std::string& error);
  // Removes the segment's name (the daemon at clean exit).
  void unlink();

  shm::Header* header() const { return header_; }
  shm::WorkerInfo* worker(uint32_t i) const;
  shm::Slot* slot(uint32_t i) const;
  uint32_t slot_count() const { return header_->slot_count; }
  uint32_t worker_count() const { return header_->worker_count; }
  shm::ServerEntry* server(uint32_t i) const;
  uint32_t server_count() const { return header_->server_count; }
  const std::string& name() const { return name_; }

  // Daemon side: a free slot, or -1.
  int acquire_slot();
  void release_slot(uint32_t index);

  // The changecount protocol.
  static void write_record(shm::Slot* slot, const shm::SessionRecord& rec);
  // The same, storing only the words that differ from what the slot holds,
  // and nothing at all when none does (the slot's single writer only).
  static void write_changes(shm::Slot* slot, const shm::SessionRecord& rec);
  // The same, looking only at the words in `ranges`: for a writer that knows
  // the rest of `rec` still equals the slot.
  struct WordRange {
    size_t begin, end;  // word indexes, end exclusive
  };
  static void write_changes(shm::Slot* slot, const shm::SessionRecord& rec, const WordRange* ranges,
                            size_t n_ranges);
  // The words that hold bytes [offset, offset + size) of a record.
  static constexpr WordRange words_of(size_t offset, size_t size) {
    return WordRange{offset / 8, (offset + size + 7) / 8};
  }
  // false if the record kept changing (a writer rewriting it non-stop).
  static bool read_record(const shm::Slot* slot, shm::SessionRecord& out, int max_tries = 1000);
  // The variables area, the same way (at most kVarsBytes; longer is cut).
  static void write_vars(shm::Slot* slot, std::string_view bytes);
  static bool read_vars(const shm::Slot* slot, std::string& out, int max_tries = 1000);
  // The statement area (the slot's writer only; `text` is cut at
  // kStatementBytes), and its end.
  static void write_statement(shm::Slot* slot, std::string_view text, int64_t start_us);
  static void end_statement(shm::Slot* slot, int64_t end_us);
  struct Statement {
    std::string text;
    int64_t start_us = 0;
    int64_t end_us = 0;  // 0: still running
  };
  static bool read_statement(const shm::Slot* slot, Statement& out, int max_tries = 1000);
  // The statement area of the session `r` (a record from snapshot()): false
  // when its slot holds another session by now.
  bool session_statement(const shm::SessionRecord& r, Statement& out) const;
  // The variables area of the session `r` (a record from snapshot()):
  // false when its slot holds another session by now.
  bool session_variables(const shm::SessionRecord& r, std::string& out) const;

  // A server's health record, the same way (its single writer: the checker).
  static void write_server(shm::ServerEntry* e, const shm::ServerHealthRecord& rec);
  static bool read_server(const shm::ServerEntry* e, shm::ServerHealthRecord& out, int max_tries = 1000);
  // Every server entry in use, with its routing bits and session count.
  struct ServerView {
    uint32_t index;
    shm::ServerHealthRecord rec;
    uint32_t routing;
    int64_t server_sessions;
    int64_t shared_idle;  // of them, idle in shared sets (multiplexing)
    int64_t waiting;      // statements and logins waiting for a connection under the cap
  };
  std::vector<ServerView> servers() const;

  // Every slot in use, copied consistently.
  std::vector<shm::SessionRecord> snapshot() const;

  // The kill log.  Any thread may add an entry (the oldest is overwritten);
  // readers get the newest first, at most `limit`, each copied consistently.
  // Returns the entry's id (its number + 1).
  uint64_t record_kill(const shm::KillRecord& rec);
  // The backend's side of entry `id`, learnt later; nothing if the ring has
  // come round over it since.
  void update_kill_backend(uint64_t id, shm::BackendStop outcome);
  std::vector<shm::KillRecord> recent_kills(size_t limit,
                                            const std::function<bool(const shm::KillRecord&)>& keep = nullptr) const;
  shm::KillEntry* kill_entry(uint32_t i) const;

 private:
  ShmTable() = default;

  std::string name_;
  void* base_ = nullptr;
  size_t size_ = 0;
  bool owner_ = false;
  shm::Header* header_ = nullptr;
  std::mutex free_mu_;
  std::vector<uint32_t> free_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace myrelay
