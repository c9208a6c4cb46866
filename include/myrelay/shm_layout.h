// The shared-memory session table's layout (kLayoutVersion).  This header is the
// contract between myrelayd, which writes the segment, and any outside reader
// (myrelayctl, monitoring tools): fixed-size records, offsets instead of
// pointers, always NUL-terminated strings.
//
// Segment:  Header | WorkerInfo[worker_count] | Slot[slot_count] | ServerEntry[server_count]
//
// Writers: each slot and each WorkerInfo is written only by its owning worker
// thread.  A slot's record is written under `changecount` (odd while being
// written, as PostgreSQL's st_changecount): the writer bumps it to odd, stores
// the record with relaxed atomic stores after a release fence, then stores the
// next even value with release order.  A reader loads the count (acquire),
// copies the record with relaxed atomic loads, issues an acquire fence,
// reloads the count, and retries unless both loads saw the same even value
// (Boehm, "Can seqlocks get along with programming language memory models?").
// Readers never block a writer and never see a torn record.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace myrelay::shm {

constexpr uint64_t kMagic = 0x3159414c4552594dull;  // "MYRELAY1" little-endian
// 2: sessions' state (restorable, last insert id, prepared statements) and
// their variables area.
// 3: the backend servers' health (ServerEntry).  4: each slot's statement area.
// 5: a session's transaction start and pending graceful kill; the kill log;
// statement latency histograms.  6: a TLS session's version and cipher.
constexpr uint32_t kLayoutVersion = 7;

constexpr size_t kNameLen = 64;       // cluster, tenant, user
constexpr size_t kDbLen = 196;        // 64 characters of utf8mb3
constexpr size_t kIpLen = 48;         // an IPv6 address and then some
constexpr size_t kPathLen = 256;      // control pipe paths
constexpr size_t kMaxServerSessions = 4;  // per client session slot
constexpr size_t kCommandLen = 24;
constexpr size_t kTlsVersionLen = 16;  // "TLSv1.3"
constexpr size_t kTlsCipherLen = 64;   // "TLS_AES_256_GCM_SHA384"
// Backend servers (of every cluster) the table holds; a configuration with
// more is refused.
constexpr size_t kMaxServers = 128;
// Per session: the state the proxy would replay (SHOW PROXYSESSION
// VARIABLES), as entries "K name\0value\0" (K: 'v' a system variable, 's'
// the schema, 'c' the next transaction's characteristics).  What does not
// fit is left out and counted (SessionRecord::vars_dropped); the proxy
// itself keeps all of it.
constexpr size_t kVarsBytes = 2048;
// Per session: the text of the current (or last) statement, its first
// proxy.statement_text_bytes bytes (at most this many).
constexpr size_t kStatementBytes = 512;

// The writer and the readers use these across processes: they must be
// lock-free, hence address-free.
static_assert(std::atomic<uint64_t>::is_always_lock_free, "64-bit atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "32-bit atomics must be lock-free");

enum class DaemonState : uint32_t { Starting = 0, Running = 1, Stopping = 2 };

struct Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t header_size;       // sizeof(Header)
  uint32_t worker_info_size;  // sizeof(WorkerInfo)
  uint32_t slot_size;         // sizeof(Slot)
  uint64_t workers_offset;    // from the start of the segment
  uint64_t slots_offset;
  uint32_t worker_count;
  uint32_t slot_count;
  int32_t pid;                // the daemon
  int32_t proxy_id;
  uint64_t start_time;        // Unix seconds
  uint64_t pid_start_ticks;   // /proc/PID/stat starttime: tells a reused pid apart
  char version[32];           // myrelayd's version
  char listen[kIpLen + 16];
  std::atomic<uint32_t> state;  // DaemonState
  uint32_t pad;
  std::atomic<uint64_t> sessions_in_use;      // slots in use, for a quick look
  std::atomic<uint64_t> connections_refused;  // over max_connections (written by the acceptor)
  uint64_t servers_offset;    // the ServerEntry table
  uint32_t server_count;
  uint32_t server_entry_size; // sizeof(ServerEntry)
  uint64_t kills_offset;      // the kill log: KillEntry[kill_count], a ring
  uint32_t kill_count;
  uint32_t kill_entry_size;   // sizeof(KillEntry)
  std::atomic<uint64_t> kill_next;  // entries ever written; the next goes to kill_next % kill_count
  std::atomic<uint64_t> reserved[1];
};

// Counters of one worker; only that worker adds to them (relaxed atomics).
struct WorkerCounters {
  std::atomic<uint64_t> connections_accepted;
  std::atomic<uint64_t> sessions_open;
  std::atomic<uint64_t> logins_failed;
  std::atomic<uint64_t> queries;
  std::atomic<uint64_t> bytes_from_clients;
  std::atomic<uint64_t> bytes_to_clients;
  std::atomic<uint64_t> kills;                // sessions and server sessions ended by a kill
  std::atomic<uint64_t> errors;               // protocol errors, lost backends
  std::atomic<uint64_t> backend_connects;
  std::atomic<uint64_t> backend_connect_failures;
  std::atomic<uint64_t> control_requests;
  std::atomic<uint64_t> control_garbage;      // bytes dropped from the control pipe
  std::atomic<uint64_t> backend_reuses;       // logins served by a pooled server session
  std::atomic<uint64_t> pool_idle;            // server sessions in the pool now (a gauge)
  std::atomic<uint64_t> reads_to_replicas;    // statements the read/write split sent to a replica
  std::atomic<uint64_t> causal_waits;         // MASTER_GTID_WAITs before a causal read
  std::atomic<uint64_t> causal_read_fallbacks;  // causal reads that ran on the primary instead
  std::atomic<uint64_t> shared_takes;         // statements of multiplexed sessions that took a shared connection
  std::atomic<uint64_t> queue_timeouts;       // statements and logins that found no connection under the cap
  std::atomic<uint64_t> kills_by_reason[16];  // kill log entries by KillReason
  std::atomic<uint64_t> shared_idle;          // backend connections idle in the shared set now (a gauge)
  std::atomic<uint64_t> queue_waits;          // statements and logins that waited for a connection under the cap
  std::atomic<uint64_t> reserved[2];          // zero
};
static_assert(sizeof(WorkerCounters) == 39 * 8,
              "WorkerCounters: 19 words until layout v4, the kill reasons since v5, multiplexing's since v7");

// Statement latency (COM_QUERY and COM_STMT_EXECUTE, from the command's
// arrival to the end of its response), one histogram per backend server per
// worker, in Prometheus's cumulative-bucket form once summed.  Bucket i
// counts durations up to kLatencyBoundsUs[i]; the last one, the rest.
constexpr size_t kLatencyBuckets = 15;
constexpr int64_t kLatencyBoundsUs[kLatencyBuckets - 1] = {500,    1000,    2500,    5000,    10000,
                                                           25000,  50000,   100000,  250000,  500000,
                                                           1000000, 2500000, 5000000, 10000000};
struct LatencyHistogram {
  std::atomic<uint64_t> buckets[kLatencyBuckets];  // not cumulative: each duration counts once
  std::atomic<uint64_t> count;
  std::atomic<uint64_t> sum_us;
};

struct WorkerInfo {
  int32_t index;
  std::atomic<int32_t> tid;  // kernel thread id
  char control_pipe[kPathLen];
  WorkerCounters counters;
  LatencyHistogram latency[kMaxServers];  // by ServerEntry index; written by this worker only
};

struct ServerSessionRecord {
  uint64_t ss_id;                 // 0 = unused entry
  uint32_t server_sessid;         // the backend's connection id
  uint16_t state;                 // ServerSession::State
  uint8_t role;                   // 0 primary, 1 replica
  uint8_t in_sync;                // holds its client session's current state
  char server_ip[kIpLen];
  uint16_t server_port;
  uint16_t pad16;
  uint32_t pad;
  uint64_t transact_count;
  uint64_t requests;
  int64_t created_us;             // Unix microseconds
};

// Why a session's state cannot be carried to another server session
// (SessionRecord::not_restorable), with the words that name each reason.
enum NotRestorable : uint32_t {
  kNrTransaction = 1u << 0,
  kNrLockTables = 1u << 1,
  kNrXa = 1u << 2,
  kNrUserVariables = 1u << 3,
  kNrTemporaryTables = 1u << 4,
  kNrSqlPrepare = 1u << 5,
  kNrUserLocks = 1u << 6,
  kNrHandler = 1u << 7,
  kNrCursor = 1u << 8,
  kNrFoundRows = 1u << 9,
  kNrStoredProgram = 1u << 10,
  kNrUnknownState = 1u << 11,    // something changed that the proxy could not see
  kNrLongData = 1u << 12,        // COM_STMT_SEND_LONG_DATA not yet executed
  kNrUnkeptStatement = 1u << 13, // a prepared statement too long to keep
  kNrSessionOnly = 1u << 14,     // timestamp, insert_id, pseudo_thread_id, rand_seed: set, never carried
};
// SessionRecord::pinned also says, beyond the NotRestorable bits:
constexpr uint32_t kPinCharacteristics = 1u << 31;  // SET TRANSACTION for the next transaction pending
struct NotRestorableName {
  uint32_t bit;
  const char* name;
};
inline constexpr NotRestorableName kNotRestorableNames[] = {
    {kNrTransaction, "open transaction"},
    {kNrLockTables, "LOCK TABLES"},
    {kNrXa, "XA transaction"},
    {kNrUserVariables, "user variables"},
    {kNrTemporaryTables, "temporary tables"},
    {kNrSqlPrepare, "SQL PREPARE"},
    {kNrUserLocks, "GET_LOCK"},
    {kNrHandler, "HANDLER"},
    {kNrCursor, "open cursor"},
    {kNrFoundRows, "pending SQL_CALC_FOUND_ROWS"},
    {kNrStoredProgram, "stored procedure call"},
    {kNrUnknownState, "state the server did not report"},
    {kNrLongData, "pending long data"},
    {kNrUnkeptStatement, "prepared statement too long to keep"},
    {kNrSessionOnly, "session-only variables (timestamp, insert_id, pseudo_thread_id, rand_seed)"},
};

// One client session, as SHOW PROXYSESSION and SHOW PROXYSESSION ATTRIBUTE
// print it.  Plain data: copied word by word under the slot's changecount.
struct SessionRecord {
  uint32_t in_use;                // 0 = free slot
  uint32_t cs_id;
  uint64_t proxy_sessid;          // unique: a reused slot never repeats it
  int32_t worker;
  int32_t tid;
  uint32_t state;                 // ClientSession::State
  uint32_t svr_session_count;
  char cluster[kNameLen];
  char tenant[kNameLen];
  char user[kNameLen];
  char host_ip[kIpLen];
  uint16_t host_port;
  uint8_t has_db;                 // 0: db is NULL
  uint8_t in_trans;
  uint8_t using_ssl;
  uint8_t privileged;
  uint8_t kill_pending;           // KILL ... WHEN IDLE: ends at its next idle moment
  uint8_t multiplexed;            // its cluster (or tenant) multiplexes: it holds server sessions only while busy
  char db[kDbLen];
  char command[kCommandLen];      // the command in flight, or "Sleep"
  uint64_t trans_count;
  uint64_t queries;
  uint64_t bytes_in;
  uint64_t bytes_out;
  int64_t created_us;
  int64_t last_active_us;         // when the last command started or ended
  int64_t trans_started_us;       // when the open transaction began (0: none)
  ServerSessionRecord servers[kMaxServerSessions];
  // Session state (DESIGN section 3a).
  uint32_t not_restorable;        // NotRestorable bits but kNrTransaction (see in_trans)
  uint32_t prepared_statements;
  uint64_t last_insert_id;
  uint64_t server_session_moves;  // times a statement of a multiplexed session ran on another connection than its last
  uint32_t pinned;                // a multiplexed session idle but holding its connection: NotRestorable bits, kPin*
  uint32_t pad2;
  uint32_t slot;                  // this record's slot, for the variables area
  uint32_t vars_dropped;          // entries that did not fit the variables area
  // TLS towards the client (using_ssl = 1): as OpenSSL names them.
  char tls_version[kTlsVersionLen];
  char tls_cipher[kTlsCipherLen];
};
static_assert(std::is_trivially_copyable_v<SessionRecord>, "SessionRecord is copied word by word");
static_assert(offsetof(SessionRecord, kill_pending) / 8 == offsetof(SessionRecord, in_trans) / 8,
              "kill_pending is published with in_trans, as an activity word");
static_assert(sizeof(SessionRecord) % 8 == 0, "SessionRecord is copied in 64-bit words");

constexpr size_t kRecordWords = sizeof(SessionRecord) / 8;

struct Slot {
  std::atomic<uint32_t> changecount;
  std::atomic<uint32_t> occupied;  // a hint for readers: skip never-used, free slots quickly
  std::atomic<uint64_t> words[kRecordWords];
  // The variables area, under a changecount of its own: it changes seldom.
  std::atomic<uint32_t> vars_changecount;
  std::atomic<uint32_t> vars_len;
  std::atomic<uint64_t> vars[kVarsBytes / 8];
  // The statement area, under a changecount of its own: the text of the
  // statement running (or run last), when it started, and when it ended
  // (0 while it runs).  Written once as a statement starts and once as it ends.
  std::atomic<uint32_t> stmt_changecount;
  std::atomic<uint32_t> stmt_len;
  std::atomic<int64_t> stmt_start_us;
  std::atomic<int64_t> stmt_end_us;
  std::atomic<uint64_t> stmt[kStatementBytes / 8];
};

// ---- Backend servers: their health, as the proxy's checker sees it ----

constexpr size_t kAddressLen = kIpLen + 16;  // host:port
constexpr size_t kErrorLen = 160;

// SHOW PROXYCONGESTION's state column.
enum class ServerState : uint8_t { Unchecked = 0, Alive = 1, Down = 2, Lagging = 3 };
enum ServerEntryUse : uint32_t { kServerFree = 0, kServerConfigured = 1, kServerRemoved = 2 };

// One server's record, written by the health checker (the daemon's main
// thread) under the entry's changecount, read like a session's record.
struct ServerHealthRecord {
  uint32_t in_use;                // ServerEntryUse
  uint8_t role;                   // as it acts now: 0 primary (writable), 1 replica
  uint8_t configured_role;        // as configured
  uint8_t state;                  // ServerState
  uint8_t read_only;              // 0, 1, or 2 = not known (no monitor account, not checked yet)
  char cluster[kNameLen];
  char address[kAddressLen];      // host:port as configured
  int32_t weight;
  int32_t consecutive_failures;
  int64_t lag_s;                  // seconds behind its primary; -1 = NULL (replication stopped) or not a replica
  int64_t last_check_us;          // Unix microseconds; 0 = never
  uint64_t checks;
  uint64_t failed_checks;
  char last_error[kErrorLen];     // why the last failed check failed
};
static_assert(std::is_trivially_copyable_v<ServerHealthRecord>, "copied word by word");
static_assert(sizeof(ServerHealthRecord) % 8 == 0, "copied in 64-bit words");
constexpr size_t kServerWords = sizeof(ServerHealthRecord) / 8;

// What a worker routes by: one word, loaded once per choice.
enum ServerRouting : uint32_t {
  kRouteUp = 1u << 0,        // new server sessions may go there
  kRouteWritable = 1u << 1,  // writes go there (read_only = 0, or configured primary while unchecked)
  kRouteReadable = 1u << 2,  // replica reads may go there (up, replicating, lag within max_replica_lag_s)
};

struct ServerEntry {
  std::atomic<uint32_t> changecount;
  std::atomic<uint32_t> routing;          // ServerRouting bits (the checker stores them)
  std::atomic<int64_t> server_sessions;   // open server sessions to it, of every worker (fetch_add)
  std::atomic<int64_t> shared_idle;       // of them, idle in a worker's shared set (multiplexing)
  std::atomic<int64_t> waiting;           // statements and logins waiting for a connection under the cap
  std::atomic<uint64_t> words[kServerWords];
};

// ---- The kill log: every session end that was not the client's own quit ----

// Why a session (or its statement, or one server session) was ended.
enum class KillReason : uint8_t {
  Kill = 1,                  // KILL [CONNECTION] / KILL PROXYSESSION / myrelayctl kill
  KillWhenIdle = 2,          // ... WHEN IDLE, at the session's idle moment
  KillWhenIdleTimeout = 3,   // ... WHEN IDLE TIMEOUT s, not idle in time
  KillServerSession = 4,     // KILL PROXYSESSION id ss_id: the session went on
  KillQuery = 5,             // KILL QUERY: the statement stopped, the session went on
  ClientIdleTimeout = 6,     // timeouts.client_idle_s
  IdleInTransaction = 7,     // timeouts.idle_in_transaction_s
  StatementTimeout = 8,      // timeouts.statement_ms: the statement stopped
  Shutdown = 9,              // the drain at shutdown
  BackendLost = 10,          // its backend went away in the middle of a command
  StateLost = 11,            // its server session went, with state that cannot be carried
  Forwarded = 12,            // a kill of another proxy's session, sent to that proxy (its own log has the end)
};
constexpr size_t kKillReasonCount = 13;  // reasons are 1..12

// What became of the statement the target was running on a backend.
enum class BackendStop : uint8_t {
  NoStatement = 0,  // none was running
  KillSent = 1,     // KILL [QUERY] sent on a side connection; the outcome not known yet
  Confirmed = 2,    // the process list shows it stopped (or its connection gone)
  Escalated = 3,    // KILL QUERY was not heeded in time; KILL CONNECTION ended it
  Failed = 4,       // not confirmed: the side connection failed, or it still ran
};

constexpr size_t kKillTextLen = 160;  // the statement, cut there

struct KillRecord {
  int64_t time_us;        // CLOCK_REALTIME
  uint64_t proxy_sessid;
  uint32_t cs_id;
  uint32_t by_cs_id;      // the killing SQL session, or 0
  int32_t by_pid;         // myrelayctl's pid, or 0
  int32_t by_uid;         // its uid, or -1
  uint8_t reason;         // KillReason
  uint8_t backend;        // BackendStop
  uint16_t host_port;
  uint32_t pad;
  int64_t statement_ms;   // how long the statement had run, -1: none ran
  int64_t trans_ms;       // the open transaction's age, -1: none was open
  char user[kNameLen];
  char tenant[kNameLen];
  char host_ip[kIpLen];
  char by[kNameLen * 2];  // "user@tenant" of the killer, or the timeout's name
  char statement[kKillTextLen];
};
static_assert(std::is_trivially_copyable_v<KillRecord> && sizeof(KillRecord) % 8 == 0, "copied in words");

// A ring entry: written by any worker under its changecount (a writer
// takes it from even to odd with a compare-and-swap), read like a slot.
// words[0] is the entry's number plus one (0: never written), so a reader
// knows an entry that was overwritten since it looked; the record follows.
constexpr size_t kKillEntryWords = 1 + sizeof(KillRecord) / 8;
struct KillEntry {
  std::atomic<uint32_t> changecount;
  uint32_t pad;
  std::atomic<uint64_t> words[kKillEntryWords];
};

}  // namespace myrelay::shm
