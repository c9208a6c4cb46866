// The shared-memory session table (see shm_table.h and shm_layout.h).
#include "control/shm_table.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "service/log.h"

namespace bip = boost::interprocess;

namespace myrelay {

using namespace shm;

struct ShmTable::Impl {
  bip::shared_memory_object object;
  bip::mapped_region region;
};

uint64_t process_start_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  // The command name may contain spaces and parentheses: fields count from
  // the last ')'.  starttime is field 22; after ')' comes field 3.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return 0;
  }
  return std::strtoull(field.c_str(), nullptr, 10);
}

// The state letter of /proc/PID/stat ('Z' for a zombie), or 0.
static char process_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : 0;
}

bool process_alive(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  // A dead daemon nobody has reaped yet is not running.
  char state = process_state(pid);
  if (state == 'Z' || state == 'X') return false;
  if (start_ticks == 0) return true;
  uint64_t now = process_start_ticks(pid);
  return now == 0 || now == start_ticks;  // unreadable /proc: assume it is the same
}

static size_t align64(size_t n) { return (n + 63) & ~size_t(63); }

ShmTable::~ShmTable() = default;

WorkerInfo* ShmTable::worker(uint32_t i) const {
  return reinterpret_cast<WorkerInfo*>(static_cast<char*>(base_) + header_->workers_offset +
                                       size_t(i) * header_->worker_info_size);
}

ServerEntry* ShmTable::server(uint32_t i) const {
  return reinterpret_cast<ServerEntry*>(static_cast<char*>(base_) + header_->servers_offset +
                                        size_t(i) * header_->server_entry_size);
}

KillEntry* ShmTable::kill_entry(uint32_t i) const {
  return reinterpret_cast<KillEntry*>(static_cast<char*>(base_) + header_->kills_offset +
                                      size_t(i) * header_->kill_entry_size);
}

Slot* ShmTable::slot(uint32_t i) const {
  return reinterpret_cast<Slot*>(static_cast<char*>(base_) + header_->slots_offset +
                                 size_t(i) * header_->slot_size);
}

// A segment already under our name that another account made was not made
// by this daemon, whatever its header claims: it is never trusted.  Root
// removes it; anyone else is told whose it is.  False + message: refused.
static bool foreign_segment_removed(const std::string& name, std::string& error) {
  struct stat st;
  if (::stat(("/dev/shm/" + name).c_str(), &st) != 0 || st.st_uid == geteuid()) return true;
  if (geteuid() == 0) {
    LOG_WARN("shared memory segment '%s' belongs to uid %u, not to myrelayd: removing it", name.c_str(),
             unsigned(st.st_uid));
    bip::shared_memory_object::remove(name.c_str());
    return true;
  }
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
  error = "shared memory segment '" + name + "' (/dev/shm/" + name + ") belongs to uid " + std::to_string(st.st_uid) +
          " (mode " + mode + "), not to this daemon's uid " + std::to_string(geteuid()) +
          ": it was not made by myrelayd; have it removed, or choose another proxy.shm_name";
  return false;
}

std::unique_ptr<ShmTable> ShmTable::create(const CreateOptions& opts, std::string& error) {
  if (!foreign_segment_removed(opts.name, error)) return nullptr;
  // A segment already there: a live daemon's is refused, a dead one's replaced.
  try {
    bip::shared_memory_object old(bip::open_only, opts.name.c_str(), bip::read_only);
    bip::offset_t size = 0;
    if (old.get_size(size) && size_t(size) >= sizeof(Header)) {
      bip::mapped_region r(old, bip::read_only, 0, sizeof(Header));
      auto* h = static_cast<const Header*>(r.get_address());
      if (h->magic == kMagic && process_alive(h->pid, h->pid_start_ticks) && h->pid != getpid()) {
        error = "shared memory segment '" + opts.name + "' belongs to a running myrelayd (pid " +
                std::to_string(h->pid) + ")";
        return nullptr;
      }
    }
  } catch (const bip::interprocess_exception&) {
    // Not there, or unreadable: either way a fresh one is made below.
  }
  bip::shared_memory_object::remove(opts.name.c_str());

  auto t = std::unique_ptr<ShmTable>(new ShmTable());
  t->name_ = opts.name;
  t->owner_ = true;
  size_t workers_off = align64(sizeof(Header));
  size_t slots_off = align64(workers_off + opts.worker_count * sizeof(WorkerInfo));
  size_t servers_off = align64(slots_off + size_t(opts.slot_count) * sizeof(Slot));
  size_t kills_off = align64(servers_off + size_t(opts.server_count) * sizeof(ServerEntry));
  const uint32_t kill_count = std::max<uint32_t>(opts.kill_log_size, 1);
  t->size_ = kills_off + size_t(kill_count) * sizeof(KillEntry);
  try {
    // Owner read-write; the admin group may read (it never writes here).
    mode_t mode = opts.admin_gid != gid_t(-1) ? 0640 : 0600;
    bip::permissions perm(mode);
    t->impl_ = std::make_unique<Impl>();
    t->impl_->object = bip::shared_memory_object(bip::create_only, opts.name.c_str(),
                                                 bip::read_write, perm);
    int fd = t->impl_->object.get_mapping_handle().handle;
    // The umask may have taken bits away; set exactly what we want.
    if (fchmod(fd, mode) != 0) {
      error = std::string("cannot set the segment's mode: ") + strerror(errno);
      bip::shared_memory_object::remove(opts.name.c_str());
      return nullptr;
    }
    if (opts.admin_gid != gid_t(-1) && fchown(fd, uid_t(-1), opts.admin_gid) != 0) {
      error = std::string("cannot give the segment to the admin group: ") + strerror(errno);
      bip::shared_memory_object::remove(opts.name.c_str());
      return nullptr;
    }
    t->impl_->object.truncate(bip::offset_t(t->size_));
    t->impl_->region = bip::mapped_region(t->impl_->object, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    error = "cannot create shared memory segment '" + opts.name + "': " + e.what();
    bip::shared_memory_object::remove(opts.name.c_str());
    return nullptr;
  }
  t->base_ = t->impl_->region.get_address();
  memset(t->base_, 0, t->size_);  // fresh pages are zero already; this also touches them once
  Header* h = static_cast<Header*>(t->base_);
  t->header_ = h;
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(Header);
  h->worker_info_size = sizeof(WorkerInfo);
  h->slot_size = sizeof(Slot);
  h->workers_offset = workers_off;
  h->slots_offset = slots_off;
  h->worker_count = opts.worker_count;
  h->slot_count = opts.slot_count;
  h->servers_offset = servers_off;
  h->server_count = opts.server_count;
  h->server_entry_size = sizeof(ServerEntry);
  h->kills_offset = kills_off;
  h->kill_count = kill_count;
  h->kill_entry_size = sizeof(KillEntry);
  h->pid = getpid();
  h->proxy_id = opts.proxy_id;
  h->start_time = uint64_t(time(nullptr));
  h->pid_start_ticks = process_start_ticks(getpid());
  set_field(h->version, opts.version);
  set_field(h->listen, opts.listen);
  h->state.store(uint32_t(DaemonState::Starting), std::memory_order_relaxed);
  for (uint32_t i = 0; i < opts.worker_count; ++i) t->worker(i)->index = int32_t(i);
  t->free_.reserve(opts.slot_count);
  for (uint32_t i = opts.slot_count; i > 0; --i) t->free_.push_back(i - 1);
  // The magic goes in last: a reader that sees it sees a complete header.
  std::atomic_thread_fence(std::memory_order_release);
  reinterpret_cast<std::atomic<uint64_t>*>(&h->magic)->store(kMagic, std::memory_order_release);
  return t;
}

std::unique_ptr<ShmTable> ShmTable::attach(const std::string& name, AttachError& code,
                                           std::string& error) {
  auto t = std::unique_ptr<ShmTable>(new ShmTable());
  t->name_ = name;
  t->impl_ = std::make_unique<Impl>();
  try {
    t->impl_->object = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_only);
    bip::offset_t size = 0;
    t->impl_->object.get_size(size);
    if (size_t(size) < sizeof(Header)) {
      code = AttachError::BadLayout;
      error = "shared memory segment '" + name + "' is too small to be myrelay's";
      return nullptr;
    }
    // Readers go through every slot: fault the pages in with one mmap
    // instead of one page fault per 4 KiB.
    t->impl_->region = bip::mapped_region(t->impl_->object, bip::read_only, 0, 0, nullptr, MAP_POPULATE);
  } catch (const bip::interprocess_exception& e) {
    if (e.get_native_error() == ENOENT || e.get_error_code() == bip::not_found_error) {
      code = AttachError::NotFound;
      error = "no shared memory segment '" + name + "': is myrelayd running?";
    } else if (e.get_native_error() == EACCES || e.get_error_code() == bip::security_error) {
      code = AttachError::Permission;
      error = "permission denied reading shared memory segment '" + name +
              "' (run as the daemon's user or a member of its admin_group)";
    } else {
      code = AttachError::Other;
      error = "cannot open shared memory segment '" + name + "': " + e.what();
    }
    return nullptr;
  }
  t->base_ = t->impl_->region.get_address();
  t->size_ = t->impl_->region.get_size();
  Header* h = static_cast<Header*>(t->base_);
  t->header_ = h;
  uint64_t magic = reinterpret_cast<std::atomic<uint64_t>*>(&h->magic)->load(std::memory_order_acquire);
  if (magic != kMagic) {
    code = AttachError::BadLayout;
    error = "shared memory segment '" + name + "' is not a myrelay session table (or is still being set up)";
    return nullptr;
  }
  if (h->layout_version != kLayoutVersion) {
    code = AttachError::VersionMismatch;
    error = "shared memory segment '" + name + "' has layout version " +
            std::to_string(h->layout_version) + ", this program reads version " +
            std::to_string(kLayoutVersion) + ": use the myrelayctl that came with the running myrelayd";
    return nullptr;
  }
  // A broken or hostile writer may have put anything here: every region
  // must lie whole inside the mapping (no overflow on the way) and be
  // aligned for its atomics.
  auto region_ok = [&](uint64_t offset, uint64_t count, uint64_t size) {
    uint64_t bytes;
    return offset % 64 == 0 && offset >= sizeof(Header) && !__builtin_mul_overflow(count, size, &bytes) &&
           offset <= t->size_ && bytes <= t->size_ - offset;
  };
  if (h->header_size != sizeof(Header) || h->worker_info_size != sizeof(WorkerInfo) ||
      h->slot_size != sizeof(Slot) || h->server_entry_size != sizeof(ServerEntry) ||
      h->kill_entry_size != sizeof(KillEntry) || h->kill_count == 0 ||
      !region_ok(h->kills_offset, h->kill_count, h->kill_entry_size) ||
      !region_ok(h->servers_offset, h->server_count, h->server_entry_size) ||
      !region_ok(h->slots_offset, h->slot_count, h->slot_size) ||
      !region_ok(h->workers_offset, h->worker_count, h->worker_info_size)) {
    code = AttachError::BadLayout;
    error = "shared memory segment '" + name + "' has inconsistent sizes";
    return nullptr;
  }
  if (!process_alive(h->pid, h->pid_start_ticks)) {
    code = AttachError::Stale;
    error = "shared memory segment '" + name + "' is stale: its daemon (pid " +
            std::to_string(h->pid) + ") is not running";
    return nullptr;
  }
  code = AttachError::None;
  return t;
}

void ShmTable::unlink() {
  // Once only: a second call could remove the segment of a daemon started since.
  if (owner_) bip::shared_memory_object::remove(name_.c_str());
  owner_ = false;
}

int ShmTable::acquire_slot() {
  std::lock_guard<std::mutex> lock(free_mu_);
  if (free_.empty()) return -1;
  uint32_t i = free_.back();
  free_.pop_back();
  header_->sessions_in_use.fetch_add(1, std::memory_order_relaxed);
  return int(i);
}

void ShmTable::release_slot(uint32_t index) {
  std::lock_guard<std::mutex> lock(free_mu_);
  free_.push_back(index);
  header_->sessions_in_use.fetch_sub(1, std::memory_order_relaxed);
}

// The changecount protocol's two halves (shm_layout.h): `n` words stored
// under an odd count, and copied out until a copy was made under one even
// count that did not change.
static void store_words(std::atomic<uint32_t>& count, std::atomic<uint64_t>* dst, const void* src, size_t n) {
  uint32_t c = count.load(std::memory_order_relaxed);
  count.store(c + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const auto* bytes = static_cast<const unsigned char*>(src);
  for (size_t i = 0; i < n; ++i) {
    uint64_t w;
    memcpy(&w, bytes + i * 8, 8);
    dst[i].store(w, std::memory_order_relaxed);
  }
  count.store(c + 2, std::memory_order_release);
}

// `words(before)` gives how many words to copy (it may read a length stored
// with them); false when the writer kept changing them.
template <typename WordsFn>
static bool load_words(const std::atomic<uint32_t>& count, const std::atomic<uint64_t>* src, uint64_t* dst,
                       WordsFn words, int max_tries) {
  for (int attempt = 0; attempt < max_tries; ++attempt) {
    uint32_t before = count.load(std::memory_order_acquire);
    if (before & 1) continue;  // being written
    size_t n = words();
    for (size_t i = 0; i < n; ++i) dst[i] = src[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (count.load(std::memory_order_relaxed) == before) return true;
  }
  return false;
}

void ShmTable::write_record(Slot* slot, const SessionRecord& rec) {
  store_words(slot->changecount, slot->words, &rec, kRecordWords);
  slot->occupied.store(rec.in_use, std::memory_order_relaxed);
}

// Compares with what the slot holds, word by word, and touches it only where
// a word differs: this runs for every event a session handles.  Only the
// owning worker writes a slot, so what it reads back is what it wrote, and no
// copy of the record needs to be kept beside it.
void ShmTable::write_changes(Slot* slot, const SessionRecord& rec, const WordRange* ranges, size_t n_ranges) {
  auto* now = reinterpret_cast<const unsigned char*>(&rec);
  bool open = false;
  uint32_t c = 0;
  for (size_t r = 0; r < n_ranges; ++r) {
    for (size_t i = ranges[r].begin; i < ranges[r].end && i < kRecordWords; ++i) {
      uint64_t w;
      memcpy(&w, now + i * 8, 8);
      if (w == slot->words[i].load(std::memory_order_relaxed)) continue;
      if (!open) {  // the first difference: readers must retry from here on
        open = true;
        c = slot->changecount.load(std::memory_order_relaxed);
        slot->changecount.store(c + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
      }
      slot->words[i].store(w, std::memory_order_relaxed);
    }
  }
  if (!open) return;  // nothing changed: readers keep their copy valid
  slot->changecount.store(c + 2, std::memory_order_release);
  slot->occupied.store(rec.in_use, std::memory_order_relaxed);
}

void ShmTable::write_changes(Slot* slot, const SessionRecord& rec) {
  static constexpr WordRange whole{0, kRecordWords};
  write_changes(slot, rec, &whole, 1);
}

bool ShmTable::read_record(const Slot* slot, SessionRecord& out, int max_tries) {
  uint64_t words[kRecordWords];
  if (!load_words(slot->changecount, slot->words, words, [] { return kRecordWords; }, max_tries)) return false;
  memcpy(&out, words, sizeof(out));
  return true;
}

void ShmTable::write_vars(Slot* slot, std::string_view bytes) {
  size_t n = std::min(bytes.size(), kVarsBytes);
  uint64_t words[kVarsBytes / 8] = {};
  memcpy(words, bytes.data(), n);
  // The length is a word of its own, stored under the same count.
  uint32_t c = slot->vars_changecount.load(std::memory_order_relaxed);
  slot->vars_changecount.store(c + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot->vars_len.store(uint32_t(n), std::memory_order_relaxed);
  for (size_t i = 0; i < (n + 7) / 8; ++i) slot->vars[i].store(words[i], std::memory_order_relaxed);
  slot->vars_changecount.store(c + 2, std::memory_order_release);
}

bool ShmTable::read_vars(const Slot* slot, std::string& out, int max_tries) {
  uint64_t words[kVarsBytes / 8];
  size_t n = 0;
  auto count = [&] {
    n = std::min<size_t>(slot->vars_len.load(std::memory_order_relaxed), kVarsBytes);
    return (n + 7) / 8;
  };
  if (!load_words(slot->vars_changecount, slot->vars, words, count, max_tries)) return false;
  out.assign(reinterpret_cast<const char*>(words), n);
  return true;
}

void ShmTable::write_statement(Slot* slot, std::string_view text, int64_t start_us) {
  size_t n = std::min(text.size(), kStatementBytes);
  uint64_t words[kStatementBytes / 8];
  size_t nw = (n + 7) / 8;
  if (nw) {  // an empty text may have no data pointer at all
    words[nw - 1] = 0;
    memcpy(words, text.data(), n);
  }
  uint32_t c = slot->stmt_changecount.load(std::memory_order_relaxed);
  slot->stmt_changecount.store(c + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot->stmt_len.store(uint32_t(n), std::memory_order_relaxed);
  slot->stmt_start_us.store(start_us, std::memory_order_relaxed);
  slot->stmt_end_us.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < nw; ++i) slot->stmt[i].store(words[i], std::memory_order_relaxed);
  slot->stmt_changecount.store(c + 2, std::memory_order_release);
}

void ShmTable::end_statement(Slot* slot, int64_t end_us) {
  uint32_t c = slot->stmt_changecount.load(std::memory_order_relaxed);
  slot->stmt_changecount.store(c + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot->stmt_end_us.store(end_us, std::memory_order_relaxed);
  slot->stmt_changecount.store(c + 2, std::memory_order_release);
}

bool ShmTable::read_statement(const Slot* slot, Statement& out, int max_tries) {
  uint64_t words[kStatementBytes / 8];
  size_t n = 0;
  int64_t start = 0, end = 0;
  auto count = [&] {
    n = std::min<size_t>(slot->stmt_len.load(std::memory_order_relaxed), kStatementBytes);
    start = slot->stmt_start_us.load(std::memory_order_relaxed);
    end = slot->stmt_end_us.load(std::memory_order_relaxed);
    return (n + 7) / 8;
  };
  if (!load_words(slot->stmt_changecount, slot->stmt, words, count, max_tries)) return false;
  out.text.assign(reinterpret_cast<const char*>(words), n);
  out.start_us = start;
  out.end_us = end;
  return true;
}

bool ShmTable::session_statement(const SessionRecord& r, Statement& out) const {
  if (r.slot >= slot_count()) return false;
  const Slot* s = slot(r.slot);
  SessionRecord now;
  if (!read_statement(s, out) || !read_record(s, now)) return false;
  return now.in_use && now.proxy_sessid == r.proxy_sessid;
}

bool ShmTable::session_variables(const SessionRecord& r, std::string& out) const {
  if (r.slot >= slot_count()) return false;
  const Slot* s = slot(r.slot);
  SessionRecord now;
  if (!read_vars(s, out) || !read_record(s, now)) return false;
  return now.in_use && now.proxy_sessid == r.proxy_sessid;
}

void ShmTable::write_server(ServerEntry* e, const ServerHealthRecord& rec) {
  store_words(e->changecount, e->words, &rec, kServerWords);
}

bool ShmTable::read_server(const ServerEntry* e, ServerHealthRecord& out, int max_tries) {
  uint64_t words[kServerWords];
  if (!load_words(e->changecount, e->words, words, [] { return kServerWords; }, max_tries)) return false;
  memcpy(&out, words, sizeof(out));
  return true;
}

std::vector<ShmTable::ServerView> ShmTable::servers() const {
  std::vector<ServerView> v;
  for (uint32_t i = 0; i < server_count(); ++i) {
    const ServerEntry* e = server(i);
    ServerView sv{i, {}, 0, 0, 0, 0};
    if (!read_server(e, sv.rec) || sv.rec.in_use == kServerFree) continue;
    sv.routing = e->routing.load(std::memory_order_relaxed);
    sv.server_sessions = e->server_sessions.load(std::memory_order_relaxed);
    sv.shared_idle = e->shared_idle.load(std::memory_order_relaxed);
    sv.waiting = e->waiting.load(std::memory_order_relaxed);
    v.push_back(sv);
  }
  return v;
}

std::vector<SessionRecord> ShmTable::snapshot() const {
  std::vector<SessionRecord> v;
  SessionRecord rec;
  for (uint32_t i = 0; i < slot_count(); ++i) {
    const Slot* s = slot(i);
    if (!s->occupied.load(std::memory_order_relaxed)) continue;
    if (read_record(s, rec) && rec.in_use) v.push_back(rec);
  }
  return v;
}

// ---- the kill log ----

// Takes entry e from even to odd (waiting for another writer of it, when
// the ring came round during its write); returns the even count it had.
static uint32_t lock_entry(KillEntry* e) {
  uint32_t c = e->changecount.load(std::memory_order_relaxed);
  for (;;) {
    if (c & 1) {
      sched_yield();
      c = e->changecount.load(std::memory_order_relaxed);
      continue;
    }
    if (e->changecount.compare_exchange_weak(c, c + 1, std::memory_order_acquire, std::memory_order_relaxed)) break;
  }
  std::atomic_thread_fence(std::memory_order_release);
  return c;
}

uint64_t ShmTable::record_kill(const KillRecord& rec) {
  const uint64_t seq = header_->kill_next.fetch_add(1, std::memory_order_relaxed);
  KillEntry* e = kill_entry(uint32_t(seq % header_->kill_count));
  uint32_t c = lock_entry(e);
  uint64_t words[kKillEntryWords];
  words[0] = seq + 1;
  memcpy(words + 1, &rec, sizeof rec);
  for (size_t i = 0; i < kKillEntryWords; ++i) e->words[i].store(words[i], std::memory_order_relaxed);
  e->changecount.store(c + 2, std::memory_order_release);
  return seq + 1;
}

void ShmTable::update_kill_backend(uint64_t id, BackendStop outcome) {
  if (id == 0) return;
  KillEntry* e = kill_entry(uint32_t((id - 1) % header_->kill_count));
  uint32_t c = lock_entry(e);
  if (e->words[0].load(std::memory_order_relaxed) == id) {
    constexpr size_t word = 1 + offsetof(KillRecord, backend) / 8;
    uint64_t w = e->words[word].load(std::memory_order_relaxed);
    unsigned char bytes[8];
    memcpy(bytes, &w, 8);
    bytes[offsetof(KillRecord, backend) % 8] = uint8_t(outcome);
    memcpy(&w, bytes, 8);
    e->words[word].store(w, std::memory_order_relaxed);
  }
  e->changecount.store(c + 2, std::memory_order_release);
}

std::vector<KillRecord> ShmTable::recent_kills(size_t limit, const std::function<bool(const KillRecord&)>& keep) const {
  std::vector<KillRecord> out;
  const uint64_t next = header_->kill_next.load(std::memory_order_acquire);
  const uint64_t count = header_->kill_count;
  for (uint64_t s = next; s > 0 && next - s < count && out.size() < limit; --s) {
    const KillEntry* e = kill_entry(uint32_t((s - 1) % count));
    uint64_t words[kKillEntryWords];
    bool ok = load_words(e->changecount, e->words, words, [] { return kKillEntryWords; }, 1000);
    if (!ok || words[0] != s) continue;  // being rewritten, or overwritten since
    KillRecord r;
    memcpy(&r, words + 1, sizeof r);
    if (!keep || keep(r)) out.push_back(r);
  }
  return out;
}

}  // namespace myrelay
