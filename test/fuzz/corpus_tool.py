#!/usr/bin/python3
"""The fuzz harnesses' seed corpora (test/fuzz/corpus/NAME/), and the tools
that make them.  test/fuzz/record_corpus.sh runs it; by hand:

  corpus_tool.py relay LISTEN_PORT TARGET_PORT OUTDIR [SECONDS]
      a TCP relay on 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT that
      writes each connection's traffic, in arrival order, to OUTDIR/conn-N.rec
      (records: 1 byte direction 'C' client->server or 'S' server->client,
      4 bytes little-endian length, the bytes); stops after SECONDS (600)
  corpus_tool.py seeds RECDIR CORPUSDIR
      seeds for packets, response_tracker and prepared_statements from the
      recordings
  corpus_tool.py static CHECKOUT CORPUSDIR
      seeds for sql, config, login_name, control_pipe, shm_reader and fleet

Harnesses whose input is read with FuzzedDataProvider get seeds encoded the
way it reads them (Fdp below): numbers from the end of the input, bytes and
strings from its start.
"""
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

# ---------------------------------------------------------------- protocol

CLIENT_MYSQL = 1
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_SESSION_TRACK = 1 << 23
CLIENT_DEPRECATE_EOF = 1 << 24
MARIADB_CLIENT_CACHE_METADATA = 1 << 4

COM_QUERY, COM_FIELD_LIST, COM_STMT_PREPARE, COM_STMT_EXECUTE = 0x03, 0x04, 0x16, 0x17
COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE, COM_STMT_RESET, COM_STMT_FETCH = 0x18, 0x19, 0x1a, 0x1c
COM_STMT_BULK_EXECUTE = 0xfa
STMT_COMMANDS = (COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE, COM_STMT_RESET,
                 COM_STMT_FETCH, COM_STMT_BULK_EXECUTE)

# fuzz_response_tracker.cc's command list (its cmd_pick indexes it).
TRACKER_COMMANDS = [0x03, 0x17, 0x16, 0x04, 0x1c, 0x0e, 0x09, 0x02, 0x1a, 0x0a, 0x11, 0x1f, 0xfa, 0x1b,
                    0x19, 0x01]


def frame(seq, payload):
    return struct.pack('<I', len(payload))[:3] + bytes([seq & 0xff]) + payload


def split_packets(stream):
    """(seq, payload, end offset) of every whole packet in a byte stream."""
    out, off = [], 0
    while off + 4 <= len(stream):
        n = int.from_bytes(stream[off:off + 3], 'little')
        if off + 4 + n > len(stream):
            break
        out.append((stream[off + 3], stream[off + 4:off + 4 + n], off + 4 + n))
        off += 4 + n
    return out


def read_recording(path):
    """A connection's packets, each direction's in order, merged by arrival:
    [(dir, seq, payload)]."""
    data = open(path, 'rb').read()
    chunks, off = [], 0
    while off + 5 <= len(data):
        d, n = chr(data[off]), struct.unpack('<I', data[off + 1:off + 5])[0]
        chunks.append((d, data[off + 5:off + 5 + n]))
        off += 5 + n
    streams = {'C': b'', 'S': b''}
    events = []  # (arrival index, dir, packet index)
    done = {'C': 0, 'S': 0}
    for i, (d, b) in enumerate(chunks):
        streams[d] += b
        pk = split_packets(streams[d])
        while done[d] < len(pk):
            events.append((i, d, done[d]))
            done[d] += 1
    pk = {d: split_packets(streams[d]) for d in streams}
    return [(d, pk[d][k][0], pk[d][k][1]) for (_, d, k) in events]


class Connection:
    """A recorded connection: its login and its commands with their responses."""

    def __init__(self, packets):
        self.packets = packets
        self.server_caps = self.client_caps = self.server_ext = self.client_ext = 0
        self.login_s, self.login_c = [], []
        self.exchanges = []  # (command payload, [client packets after it], [server packets])
        state = 'handshake'
        for d, seq, p in packets:
            if state == 'handshake':
                if d == 'S' and p[:1] == b'\x0a':
                    self.parse_handshake(p)
                if d == 'S':
                    self.login_s.append((seq, p))
                    state = 'response'
                continue
            if state == 'response':
                if d == 'C':
                    if not self.login_c and len(p) >= 32:
                        self.client_caps = struct.unpack('<I', p[:4])[0]
                        self.client_ext = struct.unpack('<I', p[28:32])[0]
                    self.login_c.append((seq, p))
                else:
                    self.login_s.append((seq, p))
                    if p[:1] in (b'\x00', b'\xff'):
                        state = 'commands'
                continue
            if d == 'C' and seq == 0:
                self.exchanges.append((p, [], []))
            elif self.exchanges:
                self.exchanges[-1][1 if d == 'C' else 2].append((seq, p))

    def parse_handshake(self, p):
        try:
            z = p.index(b'\0', 1)
            r = z + 1 + 4 + 8 + 1
            caps = struct.unpack('<H', p[r:r + 2])[0]
            caps |= struct.unpack('<H', p[r + 5:r + 7])[0] << 16
            self.server_caps = caps
            self.server_ext = struct.unpack('<I', p[r + 14:r + 18])[0]
        except (ValueError, struct.error):
            pass

    @property
    def caps(self):
        return self.server_caps & self.client_caps

    @property
    def ext_caps(self):
        if (self.server_caps | self.client_caps) & CLIENT_MYSQL:
            return 0
        return self.server_ext & self.client_ext


# ---------------------------------------------------------------- FuzzedDataProvider

class Fdp:
    """Builds an input that LLVM's FuzzedDataProvider reads back as given."""

    def __init__(self):
        self.front = bytearray()
        self.back = bytearray()  # in the order they are consumed

    def integral(self, value, lo, hi, bits):
        rng, n, off = hi - lo, 0, 0
        while off < bits and (rng >> off) > 0:
            n += 1
            off += 8
        v = value - lo
        self.back += v.to_bytes(n, 'big') if n else b''

    def u8(self, v): self.integral(v, 0, 0xff, 8)
    def u16(self, v): self.integral(v, 0, 0xffff, 16)
    def u32(self, v): self.integral(v, 0, 0xffffffff, 32)
    def boolean(self, b): self.u8(1 if b else 0)

    def random_length_string(self, s, max_length):
        s = s[:max_length]
        self.front += s.replace(b'\\', b'\\\\')
        if len(s) < max_length:
            self.front += b'\\A'  # the end of the string

    def raw_front(self, b): self.front += b

    def data(self):
        return bytes(self.front) + bytes(reversed(self.back))


# ---------------------------------------------------------------- writing seeds

class Corpus:
    def __init__(self, root, name, limit_bytes):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.limit = limit_bytes
        self.total = sum(os.path.getsize(os.path.join(self.dir, f)) for f in os.listdir(self.dir))
        self.count = 0

    def add(self, data, label=''):
        if not data or self.total + len(data) > self.limit:
            return False
        h = hashlib.sha1(data).hexdigest()[:16]
        path = os.path.join(self.dir, (label + '-' if label else '') + h)
        if any(f.endswith(h) for f in os.listdir(self.dir)):
            return False
        with open(path, 'wb') as f:
            f.write(data)
        self.total += len(data)
        self.count += 1
        return True


def packets_seed(pkts):
    # Two parameter bytes at the end, read first: max_len index 6 (1 MiB),
    # then evbuffer chains of 16 bytes.
    return b''.join(frame(seq, p) for seq, p in pkts) + bytes([15, 6])


def tracker_seed(command, exec_flags, caps, ext, pkts):
    f = Fdp()
    pick = TRACKER_COMMANDS.index(command) if command in TRACKER_COMMANDS else 0x80 | (command & 0x7f)
    f.u8(pick)
    f.u8((1 if caps & CLIENT_DEPRECATE_EOF else 0) | (2 if caps & CLIENT_SESSION_TRACK else 0) |
         (0 if caps & CLIENT_MULTI_RESULTS else 4) | (8 if ext & MARIADB_CLIENT_CACHE_METADATA else 0))
    f.u8(exec_flags)
    f.u8(1)      # the whole command payload; then the next command of the list
    f.u32(0)     # no packet spans several chunks
    f.raw_front(b''.join(frame(seq, p) for seq, p in pkts))
    return f.data()


def seeds_from_recordings(recdir, corpus):
    conns = []
    for name in sorted(os.listdir(recdir)):
        if name.endswith('.rec'):
            conns.append(Connection(read_recording(os.path.join(recdir, name))))
    pk = Corpus(corpus, 'packets', 96 * 1024)
    rt = Corpus(corpus, 'response_tracker', 96 * 1024)
    ps = Corpus(corpus, 'prepared_statements', 48 * 1024)
    per_command = {}
    for c in conns:
        # packets: the login (both sides), then the commands and responses in
        # groups of at most 64 packets and 8 KiB.
        pk.add(packets_seed(c.login_s), 'login-server')
        pk.add(packets_seed(c.login_c), 'login-client')
        group = []
        for cmd, client_more, server in c.exchanges:
            for item in [(0, cmd)] + client_more + server:
                if len(item[1]) > 4096:
                    continue
                group.append(item)
                if len(group) >= 64 or sum(len(p) for _, p in group) > 8192:
                    pk.add(packets_seed(group), 'stream')
                    group = []
        if group:
            pk.add(packets_seed(group), 'stream')
        # response_tracker: each response, with its command and capabilities.
        for cmd, client_more, server in c.exchanges:
            command = cmd[0]
            server = [(s, p) for s, p in server if len(p) <= 4096][:256]
            key = (command, c.caps & (CLIENT_DEPRECATE_EOF | CLIENT_SESSION_TRACK), len(server) > 3)
            if per_command.get(key, 0) >= 12:
                continue
            exec_flags = cmd[5] if command == COM_STMT_EXECUTE and len(cmd) > 5 else 0
            if rt.add(tracker_seed(command, exec_flags, c.caps, c.ext_caps, server), 'cmd%02x' % command):
                per_command[key] = per_command.get(key, 0) + 1
        # prepared_statements: the statements a connection prepared, and the
        # commands that name them.
        prepared_statement_seeds(c, ps)
    print('seeds: packets %d (%d bytes), response_tracker %d (%d bytes), prepared_statements %d (%d bytes)' %
          (pk.count, pk.total, rt.count, rt.total, ps.count, ps.total))


def prepared_statement_seeds(c, corpus):
    stmts = {}    # the server's id -> (our id, params, columns)
    order = []
    commands = []
    for cmd, _, server in c.exchanges:
        if cmd[0] == COM_STMT_PREPARE:
            ok = next((p for _, p in server if p[:1] == b'\x00' and len(p) >= 12), None)
            if ok and len(stmts) < 4:
                sid, cols, params = struct.unpack('<IHH', ok[1:9])
                stmts[sid] = (len(stmts) + 1, params, cols)
                order.append(sid)
        elif cmd[0] in STMT_COMMANDS and len(cmd) >= 5:
            sid = struct.unpack('<I', cmd[1:5])[0]
            if sid in stmts or sid == 0xffffffff:
                ours = stmts[sid][0] if sid in stmts else 0xffffffff
                commands.append(cmd[:1] + struct.pack('<I', ours) + cmd[5:])
    if not order or not commands:
        return
    for variant in range(2):
        f = Fdp()
        f.u32(1000)                       # the backend ids' base
        f.integral(len(order) - 1, 0, 3, 32)
        for sid in order:
            _, params, cols = stmts[sid]
            if params <= 9:
                f.boolean(True)
                f.integral(params, 0, 9, 16)
            else:
                f.boolean(False)
                f.u16(params)
            f.u16(cols)
        for i, cmd in enumerate(commands[:60]):
            if variant == 1 and i == len(commands) // 2:
                f.integral(0, 0, 9, 32)   # the next server session: prepared again there
                f.integral(1, 0, 3, 64)
            f.integral(4, 0, 9, 32)       # a command
            f.random_length_string(cmd, 512)
            if len(cmd[:512]) >= 5:
                f.boolean(False)          # as recorded
        corpus.add(f.data(), 'conn')


# ---------------------------------------------------------------- static seeds

SQL = [
    "SHOW PROXYSESSION",
    "show proxysession;",
    "SHOW PROXYSESSION ATTRIBUTE",
    "SHOW PROXYSESSION ATTRIBUTE 2147483649",
    "SHOW PROXYSESSION ATTRIBUTE 2147483649 LIKE 'ss%'",
    "SHOW PROXYSESSION VARIABLES",
    "SHOW PROXYSESSION VARIABLES 2147483650 LIKE 'auto\\_commit%'",
    "SHOW PROXYSESSION VARIABLES LIKE '%time_zone%'",
    "/* c */ SHOW /*!PROXYSESSION*/ ATTRIBUTE -- x\n",
    "KILL PROXYSESSION 2147483649",
    "KILL PROXYSESSION 2147483649 12",
    "KILL CONNECTION 42",
    "KILL QUERY 2147483649;",
    "KILL 42",
    "KILL USER app",
    "KILL CONNECTION USER 'app'@'127.0.0.1'",
    "KILL QUERY USER app2",
    "KILL QUERY ID 7",
    "kill/**/query 3",
    "SHOW PROXYCONGESTION",
    "SHOW PROXYCONGESTION main",
    "SHOW FULL PROCESSLIST",
    "SHOW PROCESSLIST",
    "SHOW WARNINGS LIMIT 5",
    "USE test",
    "USE `we``ird`;",
    "use /* c */ test2",
    "SELECT 1",
    "SELECT * FROM t WHERE id = 5 FOR UPDATE",
    "SELECT * FROM t LOCK IN SHARE MODE",
    "SELECT /*+ READ_CONSISTENCY(WEAK) */ * FROM t",
    "/*+ READ_CONSISTENCY(STRONG) */ SELECT 1",
    "SELECT /*+ READ_CONSISTENCY(WEAK) */ id INTO @x FROM t",
    "SELECT LAST_INSERT_ID(), FOUND_ROWS(), GET_LOCK('a', 1)",
    "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
    "SELECT @@last_insert_id, @@session.port, @a := 1",
    "SELECT 'it''s', \"dq\\\"x\", 'a\\'b' -- tail\n; SELECT 2",
    "SELECT 1 /*! , 2 */ /*M!100100 , 3 */ /*!50100 , 4 */",
    "SELECT NEXTVAL(s), LASTVAL(s), PREVIOUS VALUE FOR s",
    "SELECT * FROM information_schema.PROCESSLIST",
    "SELECT * FROM performance_schema.threads",
    "SELECT * FROM sys.x$processlist; SELECT * FROM sys.session",
    "PREPARE s FROM 'KILL 3'; EXECUTE s",
    "EXECUTE IMMEDIATE 'SHOW PROCESSLIST'",
    "EXECUTE IMMEDIATE CONCAT('KI', 'LL 1')",
    "SET @a = 1",
    "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
    "SET CHARACTER SET latin1",
    "SET STATEMENT max_statement_time=1 FOR SELECT SLEEP(2)",
    "SET SESSION session_track_system_variables='*'",
    "CREATE TEMPORARY TABLE tt (a INT)",
    "LOCK TABLES t WRITE; UNLOCK TABLES",
    "FLUSH TABLES WITH READ LOCK",
    "XA START 'x'; XA END 'x'; XA PREPARE 'x'; XA COMMIT 'x'",
    "HANDLER t OPEN; HANDLER t READ FIRST; HANDLER t CLOSE",
    "CALL p_out(1, @y)",
    "SELECT LAST_INSERT_ID(5)",
    "START TRANSACTION READ ONLY; COMMIT",
    "INSERT INTO t VALUES (1), ('x\\\\'), (x'00ff'), (0x1F), (b'101'), (1e3), (.5)",
    "UPDATE t SET a = a + 1 WHERE b LIKE '%x\\%' ESCAPE '\\\\'",
    "# comment\nSELECT `a``b`.`c` FROM `a``b`",
    "SELECT 1;;;SELECT 2;",
    "DO RELEASE_LOCK('a')",
    "SELECT * FROM t WHERE a = ? AND b = ?",
    "autocommit\0auto%",
    "session_track_system_variables\0%\\_track\\_%",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0%a%a%a%a%a%a%a%a%a%a%b",
]

LOGIN_NAMES = [
    "app", "app@app", "app@app#main", "root@sys", "root@sys#main", "app#main", "app2@app#other",
    "@app", "app@", "app#", "app@#main", "a@b@c", "a#b#c", "a#b@c", "", "u\0tenant\0cluster",
    "app@app#main\0app\0main", "very.long.user-name_with$chars@tenant-1#cluster_2",
]


def control_record(rtype, cs_id, sessid, ss_id, pid, sender, timeout_s=0, name=b''):
    rec = bytearray(128)
    struct.pack_into('<IHHIQQIII', rec, 0, 0x4c54434d, 2, rtype, cs_id, sessid, ss_id, pid, sender, timeout_s)
    rec[40:40 + min(len(name), 63)] = name[:63]
    h = 2166136261
    for b in rec[:124]:
        h = ((h ^ b) * 16777619) & 0xffffffff
    struct.pack_into('<I', rec, 124, h)
    return bytes(rec)


def static_seeds(checkout, corpus):
    sql = Corpus(corpus, 'sql', 32 * 1024)
    for s in SQL:
        sql.add(s.encode(), 'sql')
    ln = Corpus(corpus, 'login_name', 8 * 1024)
    for s in LOGIN_NAMES:
        ln.add(s.encode(), 'name')
    cp = Corpus(corpus, 'control_pipe', 16 * 1024)
    a = control_record(1, 0x80000001, (3 << 56) | 7, 0, 1234, 0)
    b = control_record(2, 0x80000002, 9, 11, 1234, 0x80000005, name=b'root@sys')
    c = control_record(3, 0x80000003, 10, 0, 99, 0)
    d = control_record(4, 0x80000004, 12, 0, 0, 0x80000006, 30, b'x' * 80)
    cp.add(a, 'kill')
    cp.add(b, 'kill-ss')
    cp.add(c, 'kill-query')
    cp.add(a + b + c, 'three')
    cp.add(b'MCTL' + b'garbage' + a + b'MC' + b + b'\0' * 7 + c[:40], 'garbage')
    cp.add(a[:-1] + bytes([a[-1] ^ 1]) + b, 'bad-checksum')
    cp.add(b'MCTL' * 40 + c, 'near-magic')
    cp.add(b'\x00' + a + b'\xff\xfe', 'around')
    cp.add(d, 'kill-when-idle-long-name')
    cfg = Corpus(corpus, 'config', 64 * 1024)
    cfg.add(open(os.path.join(checkout, 'etc', 'myrelay.yaml'), 'rb').read(), 'etc-myrelay')
    for name, text in CONFIGS:
        cfg.add(text.encode(), name)
    shm_seeds(Corpus(corpus, 'shm_reader', 16 * 1024))
    print('seeds: sql %d, login_name %d, control_pipe %d, config %d' % (sql.count, ln.count, cp.count, cfg.count))


CONFIGS = [
    ('minimal', "clusters:\n  - name: main\n    servers:\n      - { address: 127.0.0.1:3306 }\n"
                "tenants:\n  - name: app\n    users:\n      - { name: app }\n"),
    ('split', """# generated the way scripts/lib/common.sh write_config writes them
proxy:
  listen: 127.0.0.1:2883
  proxy_id: 1
  workers: 2
  max_connections: 1000
  run_dir: "/tmp/run-x"
  shm_name: "myrelay-test-x"
  admin_group: ""
  pid_file: "/tmp/run-x/myrelayd.pid"
  log_file: "-"
  log_level: info
  server_pool_size: 4
timeouts:
  handshake_ms: 10000
  backend_connect_ms: 3000
  client_idle_s: 28800
  shutdown_grace_s: 5
  server_pool_idle_s: 60
defaults:
  tenant: app
  cluster: main
clusters:
  - name: main
    servers:
      - { address: 127.0.0.1:3306, role: primary, weight: 1 }
      - { address: 127.0.0.1:3307, role: replica }
      - { address: "[::1]:3308", role: replica, weight: 3 }
    read_write_split: on
    max_replica_lag_s: 5
    causal_reads: on
    causal_reads_timeout_ms: 500
    monitor: { user: myrelay_monitor, password: "monitorpw", interval_ms: 200 }
  - name: other
    servers:
      - { address: db.example:3306, role: primary }
tenants:
  - name: sys
    privileged: true
    users:
      - { name: root, password: "rootpw" }
  - name: app
    read_write_split: off
    users:
      - { name: app, password: "secret", read_write_split: on }
      - { name: app2, password: "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7" }
"""),
    ('errors', "proxy:\n  workers: -1\n  listen: nohost\nclusters: []\ntenants:\n  - { name: app, users: [ {name: app} ] }\n"),
    ('flow', "{clusters: [{name: main, servers: [{address: '127.0.0.1:1'}]}], tenants: [{name: app, users: [{name: app}]}], proxy: {max_packet_size: 16M, daemonize: yes}}\n"),
    ('shared', "proxy: { allow_shared_backend_accounts: true }\nclusters:\n  - name: main\n    servers: [ { address: 127.0.0.1:3306 } ]\n"
               "tenants:\n  - name: app\n    users: [ { name: u } ]\n  - name: b\n    users: [ { name: u } ]\n"),
]


FLEET_SECRET = b'fuzzing-secret-0123456789'  # fuzz_fleet.cc's


def fleet_seeds(corpus):
    """fuzz_fleet.cc's input: signed frames as they arrive on a peer port, and
    request and answer bodies (src/control/fleet_message.h)."""
    import hmac
    c = Corpus(corpus, 'fleet', 64 * 1024)

    def s(b):
        return struct.pack('>I', len(b)) + b

    def framed(ftype, body, sign=True):
        data = b'MYRF' + struct.pack('>BBHI', 1, ftype, 0, len(body)) + body
        return data + (hmac.new(FLEET_SECRET, data, hashlib.sha256).digest() if sign else b'')

    nonce = bytes(range(16))
    def request(stmt, op=1, cs_id=0, ident=0):
        return struct.pack('>BBQ', 1, 2, 1700000000000) + nonce + struct.pack('>BI', op, 0x81000001) + \
            s(b'root') + s(b'sys') + s(stmt) + struct.pack('>Q', ident)

    def column(name, ctype=0xfd):
        return s(name) + struct.pack('>BIHBB', ctype, 256, 0, 33, 0)

    def reply(kind, affected=0, code=0, state=b'', msg=b'', cols=(), rows=(), warnings=()):
        b = struct.pack('>B', 3) + nonce + struct.pack('>BQH', kind, affected, code) + s(state) + s(msg)
        b += struct.pack('>I', len(cols)) + b''.join(column(n) for n in cols)
        b += struct.pack('>I', len(rows))
        for row in rows:
            for cell in row:
                b += b'\x00' if cell is None else b'\x01' + s(cell)
        b += struct.pack('>I', len(warnings)) + b''.join(s(l) + struct.pack('>H', code) + s(m) for l, code, m in warnings)
        return b

    bodies = [
        ('req-kill', request(b'KILL 2181038081')),
        ('req-resolve', request(b'KILL 1234', op=2, ident=1234)),
        ('req-show', request(b'SHOW PROXYSESSION LIKE \'app%\'')),
        ('rep-ok', reply(0, affected=3, warnings=[(b'Note', 1429, b'a note')])),
        ('rep-err', reply(1, code=1095, state=b'HY000', msg=b'You are not owner of thread 5')),
        ('rep-rows', reply(2, cols=[b'Id', b'db'], rows=[[b'2181038081', None], [b'2181038082', b'test']])),
        ('refusal', s(b'wrong signature')),
    ]
    for label, body in bodies:
        c.add(body, 'body-' + label)
        c.add(framed(3 if label == 'refusal' else (1 if label.startswith('req') else 2), body, label != 'refusal'),
              'frame-' + label)
    # Two frames in one stream, and a frame signed with another secret.
    c.add(framed(1, bodies[0][1]) + framed(2, bodies[3][1]), 'stream')
    c.add(b'MYRF' + struct.pack('>BBHI', 1, 1, 0, 4) + b'abcd' + bytes(32), 'bad-mac')
    return c.count


def shm_seeds(corpus):
    """fuzz_shm_reader.cc's input: its flags byte and an id (from the end),
    then patches (target, offset, length from the end; bytes from the start)."""
    # Offsets in the layout of include/myrelay/shm_layout.h (version 4).
    HDR_VERSION, HDR_SLOTS_OFFSET, HDR_SLOT_COUNT = 72, 32, 44
    SLOT_WORDS, REC_USER, REC_SVR_COUNT, REC_STATE, REC_SLOT = 8, 160, 28, 24, 952
    SLOT_VARS_LEN, SLOT_VARS = 972, 976
    SLOT_STMT_LEN, SLOT_STMT_START, SLOT_STMT = 3028, 3032, 3048

    def seed(flags, some_id, patches, label):
        f = Fdp()
        f.u8(flags)
        f.u32(some_id)
        for target, off, data in patches:
            f.u8(target)
            f.u16(off)
            f.u8(len(data) - 1)
            f.raw_front(data)
        corpus.add(f.data(), label)

    seed(0x3f, 0x80000001, [], 'valid')
    seed(0x2f, 77, [], 'stale')
    seed(0x00, 0, [(0, 0, b'NOTMAGIC')], 'bad-magic')
    seed(0x3d, 0, [(0, 8, struct.pack('<I', 3))], 'old-version')
    seed(0x37, 0, [(0, HDR_SLOT_COUNT, struct.pack('<I', 5))], 'too-many-slots')
    seed(0x37, 0, [(0, HDR_SLOTS_OFFSET, struct.pack('<Q', 0x10000000))], 'far-offset')
    seed(0x3f, 0x80000002, [(0, HDR_VERSION, b'v' * 64), (0, HDR_VERSION + 64, b'l' * 64)], 'unterminated-header')
    seed(0x3f, 0x80000001, [(1, SLOT_WORDS + REC_USER, b'U' * 64), (1, SLOT_WORDS + REC_USER + 64, b'H' * 64),
                            (1, SLOT_WORDS + REC_SVR_COUNT, b'\xff\xff\xff\xff'),
                            (1, SLOT_WORDS + REC_STATE, b'\x63\0\0\0')], 'unterminated-record')
    seed(0x3f, 0x80000002, [(2, SLOT_VARS_LEN, struct.pack('<I', 0xffffffff)), (2, SLOT_VARS, b'v' * 64)],
         'vars-len')
    seed(0x3f, 0x80000002, [(2, SLOT_WORDS + REC_SLOT, struct.pack('<I', 9))], 'other-slot')
    seed(0x1f, 0x80000001, [(1, 0, b'\x01\0\0\0')], 'odd-changecount')
    seed(0x3f, 0x80000002, [(2, SLOT_STMT_LEN, struct.pack('<I', 0x7fffffff)),
                            (2, SLOT_STMT_START, struct.pack('<qq', 1 << 62, -(1 << 62))), (2, SLOT_STMT, b'S' * 64)],
         'statement')
    seed(0x3f, 5, [(5, 16 + 72, b'A' * 64), (5, 16 + 144, struct.pack('<qq', -5, -1))], 'server')


# ---------------------------------------------------------------- the relay

def relay(listen_port, target_port, outdir, seconds):
    os.makedirs(outdir, exist_ok=True)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', listen_port))
    srv.listen(64)
    srv.settimeout(0.5)
    deadline = time.time() + seconds
    counter = [0]

    def serve(client, n):
        try:
            server = socket.create_connection(('127.0.0.1', target_port), timeout=10)
        except OSError:
            client.close()
            return
        out = open(os.path.join(outdir, 'conn-%04d.rec' % n), 'wb')
        peers = {client: (server, b'C'), server: (client, b'S')}
        try:
            while time.time() < deadline:
                ready, _, _ = select.select(list(peers), [], [], 0.5)
                stop = False
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        stop = True
                        break
                    other, d = peers[s]
                    out.write(d + struct.pack('<I', len(data)) + data)
                    other.sendall(data)
                if stop:
                    break
        except OSError:
            pass
        finally:
            out.close()
            client.close()
            server.close()

    while time.time() < deadline:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        counter[0] += 1
        threading.Thread(target=serve, args=(c, counter[0]), daemon=True).start()


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == 'relay':
        relay(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 600)
    elif len(sys.argv) == 4 and sys.argv[1] == 'seeds':
        seeds_from_recordings(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == 'static':
        static_seeds(sys.argv[2], sys.argv[3])
        fleet_seeds(sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == '__main__':
    main()
