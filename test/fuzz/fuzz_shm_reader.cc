// Fuzzes what myrelayctl (and SHOW PROXYSESSION) does with the shared-memory
// session table when the segment holds garbage: a daemon with a bug, memory
// corruption, another program that got the name, a segment of another
// version.  A reader maps the segment and must check what it finds before
// trusting it; nothing in it may make a reader crash or read outside it.
//
// One segment (ShmTable::create, 2 workers, 4 slots, 4 server entries,
// named myrelay-fuzz-PID or $MYRELAY_FUZZ_SHM_PREFIX-PID under /dev/shm) is
// made once and filled with two sessions and a server; it is removed at exit
// (atexit), and a segment a crashed run left behind (a crash skips atexit)
// is removed when the next run starts.  Per input the segment is restored,
// the input's patches are written over its header, slots, server entries and
// worker entries, and then what myrelayctl runs: ShmTable::attach, snapshot(),
// servers(), read_record/read_vars/read_statement on every slot,
// session_variables and session_statement, the views of session_view.h
// (session_row, session_attributes with and without the statement,
// session_variables, congestion_row) and the id resolver.
//
// Input (FuzzedDataProvider: numbers from the end, bytes from the start):
// the last byte says which header fields to keep valid after the patches
// (0x01 magic, 0x02 layout version, 0x04 record sizes, 0x08 offsets and
// counts, 0x10 the daemon's pid (else the segment is stale), 0x20 even
// changecounts), the 4 before it an id to resolve; then patches, each a
// target (header, slot i, server i, worker i, anywhere), a 16-bit offset
// and a length from the end, and that many bytes from the start.
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/id_resolver.h"
#include "control/session_view.h"
#include "control/shm_table.h"
#include "fuzz_common.h"

using namespace myrelay;
using namespace myrelay::shm;

namespace {

constexpr uint32_t kWorkers = 2, kSlots = 4, kServers = 4;

struct Segment {
  std::unique_ptr<ShmTable> table;
  std::string name;
  uint8_t* base = nullptr;
  size_t size = 0;
  std::vector<uint8_t> pristine;
  Header layout;  // the valid header's plain fields
  uint64_t ticks = 0;
};
Segment* g = nullptr;

void remove_segment() {
  if (g && g->table) {
    g->table->unlink();
    g->table.reset();
  }
}

std::string prefix() {
  const char* p = getenv("MYRELAY_FUZZ_SHM_PREFIX");
  return p && *p && !strchr(p, '/') ? p : "myrelay-fuzz";
}

// Segments of this prefix whose process is gone: a crashed run's.
void remove_stale_segments() {
  DIR* d = opendir("/dev/shm");
  if (!d) return;
  const std::string pre = prefix() + "-";
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.compare(0, pre.size(), pre) != 0) continue;
    char* end = nullptr;
    long pid = strtol(n.c_str() + pre.size(), &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (kill(pid_t(pid), 0) != 0 && errno == ESRCH) shm_unlink(("/" + n).c_str());
  }
  closedir(d);
}

void setup() {
  g = new Segment;
  remove_stale_segments();
  g->name = prefix() + "-" + std::to_string(getpid());
  ShmTable::CreateOptions o;
  o.name = g->name;
  o.worker_count = kWorkers;
  o.slot_count = kSlots;
  o.server_count = kServers;
  o.proxy_id = 3;
  o.listen = "127.0.0.1:2883";
  o.version = "fuzz";
  std::string error;
  g->table = ShmTable::create(o, error);
  if (!g->table) {
    fprintf(stderr, "fuzz_shm_reader: cannot create segment %s: %s\n", g->name.c_str(), error.c_str());
    abort();
  }
  atexit(remove_segment);
  ShmTable& t = *g->table;
  Header* h = t.header();
  h->state.store(uint32_t(DaemonState::Running));
  g->base = reinterpret_cast<uint8_t*>(h);
  g->size = size_t(h->servers_offset) + size_t(h->server_count) * h->server_entry_size;
  memcpy(static_cast<void*>(&g->layout), h, sizeof(Header));  // only its plain fields are used
  g->ticks = h->pid_start_ticks;

  // Two sessions (one with two server sessions and variables) and a server.
  for (uint32_t i = 0; i < 2; ++i) {
    int s = t.acquire_slot();
    SessionRecord r{};
    r.in_use = 1;
    r.cs_id = 0x80000001u + i;
    r.proxy_sessid = (uint64_t(3) << 56) | (i + 1);
    r.worker = int32_t(i);
    r.tid = 1000 + int32_t(i);
    r.state = 1 + i;
    r.svr_session_count = 1 + i;
    set_field(r.cluster, "main");
    set_field(r.tenant, "app");
    set_field(r.user, i ? "app2" : "app");
    set_field(r.host_ip, "127.0.0.1");
    r.host_port = uint16_t(40000 + i);
    r.has_db = uint8_t(i);
    set_field(r.db, "test");
    set_field(r.command, i ? "Query" : "Sleep");
    r.trans_count = 5;
    r.queries = 42;
    r.created_us = 1700000000000000ll;
    r.last_active_us = 1700000001000000ll;
    for (uint32_t k = 0; k <= i; ++k) {
      ServerSessionRecord& ss = r.servers[k];
      ss.ss_id = 10 + k;
      ss.server_sessid = 77 + k;
      ss.state = 1;
      ss.role = uint8_t(k);
      set_field(ss.server_ip, "127.0.0.1");
      ss.server_port = 3306;
      ss.created_us = 1700000000000000ll;
    }
    r.not_restorable = kNrUserVariables;
    r.slot = uint32_t(s);
    ShmTable::write_record(t.slot(uint32_t(s)), r);
    if (i) ShmTable::write_vars(t.slot(uint32_t(s)), std::string("vautocommit\0OFF\0stest\0cREAD ONLY\0", 33));
    ShmTable::write_statement(t.slot(uint32_t(s)), i ? "SELECT SLEEP(10)" : "SELECT 1", 1700000050000000ll);
    if (!i) ShmTable::end_statement(t.slot(uint32_t(s)), 1700000050001000ll);
  }
  ServerHealthRecord sr{};
  sr.in_use = kServerConfigured;
  sr.state = uint8_t(ServerState::Alive);
  sr.read_only = 2;
  set_field(sr.cluster, "main");
  set_field(sr.address, "127.0.0.1:3306");
  sr.lag_s = -1;
  sr.last_check_us = 1700000000123456ll;
  sr.checks = 9;
  ShmTable::write_server(t.server(0), sr);
  t.server(0)->routing.store(kRouteUp | kRouteWritable);
  g->pristine.assign(g->base, g->base + g->size);
}

template <typename T>
void put(uint8_t* at, T v) {
  memcpy(at, &v, sizeof v);
}

void apply_patches(FuzzedDataProvider& fdp) {
  const Header& l = g->layout;
  while (fdp.remaining_bytes() >= 4) {
    uint8_t target = fdp.ConsumeIntegral<uint8_t>();
    uint16_t off = fdp.ConsumeIntegral<uint16_t>();
    std::vector<uint8_t> bytes = fdp.ConsumeBytes<uint8_t>(1 + fdp.ConsumeIntegral<uint8_t>() % 64);
    size_t start = 0, len = 0;
    switch (target % 12) {
      case 0: start = 0, len = sizeof(Header); break;
      case 1: case 2: case 3: case 4:
        start = size_t(l.slots_offset) + (target % 12 - 1) * size_t(l.slot_size), len = l.slot_size; break;
      case 5: case 6: case 7: case 8:
        start = size_t(l.servers_offset) + (target % 12 - 5) * size_t(l.server_entry_size), len = l.server_entry_size;
        break;
      case 9: case 10:
        start = size_t(l.workers_offset) + (target % 12 - 9) * size_t(l.worker_info_size), len = l.worker_info_size;
        break;
      default: start = 0, len = g->size; break;
    }
    size_t at = start + off % len;
    size_t n = std::min(bytes.size(), g->size - at);
    if (n) memcpy(g->base + at, bytes.data(), n);
  }
}

void fix_up(uint8_t flags) {
  const Header& l = g->layout;
  uint8_t* b = g->base;
  if (flags & 0x01) put(b + offsetof(Header, magic), kMagic);
  if (flags & 0x02) put(b + offsetof(Header, layout_version), kLayoutVersion);
  if (flags & 0x04) {
    put(b + offsetof(Header, header_size), l.header_size);
    put(b + offsetof(Header, worker_info_size), l.worker_info_size);
    put(b + offsetof(Header, slot_size), l.slot_size);
    put(b + offsetof(Header, server_entry_size), l.server_entry_size);
  }
  if (flags & 0x08) {
    put(b + offsetof(Header, workers_offset), l.workers_offset);
    put(b + offsetof(Header, slots_offset), l.slots_offset);
    put(b + offsetof(Header, servers_offset), l.servers_offset);
    put(b + offsetof(Header, worker_count), l.worker_count);
    put(b + offsetof(Header, slot_count), l.slot_count);
    put(b + offsetof(Header, server_count), l.server_count);
  }
  // Deterministic either way: our own pid (alive), or none (stale).
  put(b + offsetof(Header, pid), int32_t((flags & 0x10) ? getpid() : 0));
  if (flags & 0x10) put(b + offsetof(Header, pid_start_ticks), g->ticks);
  if (flags & 0x20) {
    for (uint32_t i = 0; i < kSlots; ++i) {
      // Where the valid layout has them (the header may say otherwise now).
      auto* s = reinterpret_cast<Slot*>(b + size_t(l.slots_offset) + i * size_t(l.slot_size));
      s->changecount.store(s->changecount.load() & ~1u);
      s->vars_changecount.store(s->vars_changecount.load() & ~1u);
      s->stmt_changecount.store(s->stmt_changecount.load() & ~1u);
    }
    for (uint32_t i = 0; i < kServers; ++i) {
      auto* e = reinterpret_cast<ServerEntry*>(b + size_t(l.servers_offset) + i * size_t(l.server_entry_size));
      e->changecount.store(e->changecount.load() & ~1u);
    }
  }
}

// What myrelayctl and SHOW PROXYSESSION do with an attached table.
void read_all(const ShmTable& t, uint64_t some_id) {
  const Header* h = t.header();
  (void)get_field(h->version);
  (void)get_field(h->listen);
  (void)h->state.load();
  (void)h->sessions_in_use.load();
  const int pid = h->pid;
  const int64_t now = 1700000100000000ll;
  for (uint32_t i = 0; i < t.worker_count(); ++i) {
    const WorkerInfo* w = t.worker(i);
    (void)get_field(w->control_pipe);
    (void)w->counters.queries.load();
  }
  std::vector<SessionRecord> recs = t.snapshot();
  for (const SessionRecord& r : recs) {
    FUZZ_CHECK(r.in_use);
    auto row = view::session_row(r, pid);
    FUZZ_CHECK(row.size() == view::session_columns().size());
    for (const view::Attribute& a : view::session_attributes(r, pid, now)) (void)a;
    // myrelayctl session ID: the attributes with the statement area's text.
    ShmTable::Statement st;
    if (t.session_statement(r, st)) {
      FUZZ_CHECK(st.text.size() <= kStatementBytes);
      view::StatementInfo info{st.text, st.start_us, st.end_us};
      for (const view::Attribute& a : view::session_attributes(r, pid, now, &info)) (void)a;
    }
    (void)view::not_restorable_because(view::reasons_of(r));
    (void)has_server_session(r, r.servers[0].ss_id);
    std::string area;
    if (t.session_variables(r, area)) {
      FUZZ_CHECK(area.size() <= kVarsBytes);
      for (const view::Variable& v : view::session_variables(area)) (void)v;
    }
  }
  for (uint32_t i = 0; i < t.slot_count(); ++i) {
    SessionRecord r;
    (void)ShmTable::read_record(t.slot(i), r, 3);
    std::string vars;
    if (ShmTable::read_vars(t.slot(i), vars, 3)) FUZZ_CHECK(vars.size() <= kVarsBytes);
    ShmTable::Statement st;
    if (ShmTable::read_statement(t.slot(i), st, 3)) FUZZ_CHECK(st.text.size() <= kStatementBytes);
  }
  for (const ShmTable::ServerView& v : t.servers()) {
    FUZZ_CHECK(v.index < t.server_count());
    auto row = view::congestion_row(v.rec, v.server_sessions, v.shared_idle, v.waiting);
    FUZZ_CHECK(row.size() == view::congestion_columns().size());
  }
  // myrelayctl session ID / kill ID: an id resolved among the sessions.
  for (uint64_t id : {some_id, recs.empty() ? uint64_t(0) : uint64_t(recs[0].cs_id), uint64_t(77)}) {
    IdMatch m = resolve_id(recs, id);
    if (m.outcome == IdMatch::Outcome::Ambiguous) (void)ambiguity(m);
    if (m.outcome == IdMatch::Outcome::Found)
      FUZZ_CHECK(m.session >= recs.data() && m.session < recs.data() + recs.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  if (!g) setup();
  memcpy(g->base, g->pristine.data(), g->size);
  FuzzedDataProvider fdp(data, size);
  const uint8_t flags = fdp.ConsumeIntegral<uint8_t>();
  const uint64_t some_id = fdp.ConsumeIntegral<uint32_t>();
  apply_patches(fdp);
  fix_up(flags);

  ShmTable::AttachError code = ShmTable::AttachError::Other;
  std::string error;
  std::unique_ptr<ShmTable> t = ShmTable::attach(g->name, code, error);
  if (!t) {
    FUZZ_CHECK(code != ShmTable::AttachError::None && !error.empty());
    return 0;
  }
  FUZZ_CHECK(code == ShmTable::AttachError::None);
  read_all(*t, some_id);
  return 0;
}
