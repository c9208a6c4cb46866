#!/bin/bash
# test/fuzz/net/record.sh: (re)records the sessions the network fuzzer
# replays (test/fuzz/net/sessions/*.nfs; format in scripts/netfuzz's help).
#
# usage: test/fuzz/net/record.sh [MYRELAYD]
#
# Starts the fuzz world (env.sh up: MariaDB + myrelayd, default the
# sanitizer build), puts the recording relay (scripts/netfuzz relay) between
# the clients and myrelayd, and runs the mariadb command line, PyMySQL and
# test/integration/mr_client (from build-asan, else the checkout) through it:
# client -> relay -> myrelayd.  Then packs every connection into a session
# file named after what ran (cli-..., py-..., c-...).  Recorded sessions only
# write to tables named nf_*, ps_t, multi_t, longdata_t or temporary tables.
# Everything runs on 127.0.0.1 and is bounded in time.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../scripts/lib/common.sh"
PY=/usr/bin/python3
NETFUZZ=$MR_SRCDIR/scripts/netfuzz
OUT=$HERE/sessions

TMP=$(mktemp -d /tmp/netfuzz-record.XXXXXX) || exit 1
RELAY_PID=""
cleanup() {
  [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null
  bash "$HERE/env.sh" down "$TMP/env"
  rm -rf "$TMP"
}
trap cleanup EXIT

bash "$HERE/env.sh" up "$TMP/env" "${1:-}" || exit 1
. "$TMP/env/env"
RELAY_PORT=$(free_port) || exit 1
RAW=$TMP/raw
mkdir -p "$RAW"
timeout 600 "$PY" "$NETFUZZ" relay "$RELAY_PORT" "$PORT" "$RAW" 500 &
RELAY_PID=$!
for _ in $(seq 50); do port_open "$RELAY_PORT" && break; sleep 0.1; done
label() { echo "$1" >"$RAW/label"; sleep 0.2; }

CLI=(timeout 60 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$RELAY_PORT" -uapp -psecret --force)

label cli-queries
"${CLI[@]}" test <<'SQL' >/dev/null 2>&1
SELECT 1, 'a', NULL, 2.5, NOW() - NOW();
SELECT * FROM types;
SELECT id, h, pad FROM big ORDER BY id LIMIT 30;
SHOW TABLES;
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;
SET @u = 5, time_zone = '+02:00', sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES';
SET sql_mode = DEFAULT;
USE test2;
SELECT DATABASE();
USE test;
CREATE TABLE IF NOT EXISTS nf_cli (id INT PRIMARY KEY, v VARCHAR(50));
REPLACE INTO nf_cli VALUES (1, 'one'), (2, 'two');
START TRANSACTION;
UPDATE nf_cli SET v = 'uno' WHERE id = 1;
SELECT * FROM nf_cli ORDER BY id;
ROLLBACK;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
CREATE TEMPORARY TABLE tt (a INT);
INSERT INTO tt VALUES (1), (2);
SELECT * FROM tt;
CALL p2();
CALL p_out(4, @y);
SELECT @y;
SELECT * FROM nosuchtable;
SELECT 1; SELECT 2, 3;
SHOW WARNINGS;
SELECT LAST_INSERT_ID(7), @@last_insert_id;
SELECT CONNECTION_ID() > 0;
SQL

label cli-proxy
"${CLI[@]}" test <<'SQL' >/dev/null 2>&1
SHOW PROXYSESSION;
SHOW PROXYSESSION ATTRIBUTE;
SHOW PROXYSESSION ATTRIBUTE LIKE 'st%';
SHOW PROXYSESSION VARIABLES;
SHOW PROXYCONGESTION;
KILL QUERY 2147483000;
KILL 2147480001;
KILL QUERY USER 'nobody';
KILL PROXYSESSION 1;
SHOW PROXYKILLS LIMIT 3;
SHOW PROCESSLIST;
SHOW FULL PROCESSLIST;
SELECT 'after the proxy statements';
SQL

label cli-loaddata
printf '1\tone\n2\ttwo\n3\t\\N\n' >"$TMP/infile.tsv"
seq 1 400 | sed 's/$/\tline/' >"$TMP/infile2.tsv"
"${CLI[@]}" --local-infile=1 test -e "CREATE TEMPORARY TABLE li (a INT, b TEXT);
LOAD DATA LOCAL INFILE '$TMP/infile.tsv' INTO TABLE li;
LOAD DATA LOCAL INFILE '$TMP/infile2.tsv' INTO TABLE li;
LOAD DATA LOCAL INFILE '$TMP/nonexistent.tsv' INTO TABLE li;
SELECT COUNT(*) FROM li" >/dev/null 2>&1

label py-queries
timeout 60 "$PY" - "$RELAY_PORT" <<'PY'
import sys, pymysql
port = int(sys.argv[1])
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password='secret', database='test',
                    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
with c.cursor() as cur:
    cur.execute("SELECT id, h, pad, n, d FROM big WHERE id < %s", (20,))
    cur.fetchall()
    cur.execute("SELECT * FROM types")
    cur.fetchall()
    try:
        cur.execute("SELEC broken")
    except pymysql.MySQLError:
        pass
    cur.execute("SELECT 1; SELECT 'two'; SET @x = 1")
    while cur.nextset():
        pass
    c.ping()
    c.select_db('test2')
    c.select_db('test')
    cur.execute("SHOW PROXYSESSION ATTRIBUTE LIKE '%%db%%'")
    cur.fetchall()
c.close()
PY

label py-executemany
timeout 60 "$PY" - "$RELAY_PORT" <<'PY'
import sys, pymysql
port = int(sys.argv[1])
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password='secret', database='test', autocommit=True)
with c.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS nf_py (id INT PRIMARY KEY, v VARCHAR(200), b BLOB)")
    cur.execute("DELETE FROM nf_py")
    cur.executemany("INSERT INTO nf_py VALUES (%s, %s, %s)", [(i, 'v%d' % i, bytes(range(i % 50))) for i in range(40)])
    cur.execute("SELECT * FROM nf_py ORDER BY id")
    cur.fetchall()
    cur.executemany("UPDATE nf_py SET v = %s WHERE id = %s", [('w%d' % i, i) for i in range(5)])
c.close()
PY

label py-txn
timeout 60 "$PY" - "$RELAY_PORT" <<'PY'
import sys, pymysql
port = int(sys.argv[1])
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password='secret', database='test')
with c.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS nf_py (id INT PRIMARY KEY, v VARCHAR(200), b BLOB)")
    c.begin()
    cur.execute("SELECT * FROM nf_py WHERE id = 1 FOR UPDATE")
    cur.execute("UPDATE nf_py SET v = 'tx' WHERE id = 1")
    c.rollback()
    c.begin()
    cur.execute("INSERT INTO nf_py VALUES (1000, 'c', NULL) ON DUPLICATE KEY UPDATE v = 'c'")
    c.commit()
    cur.execute("SET SESSION wait_timeout = 1234, autocommit = 0")
    cur.execute("SELECT @@wait_timeout, @@autocommit")
    cur.fetchall()
    c.rollback()
c.close()
PY

label py-changeuser
# PyMySQL has no change_user: COM_CHANGE_USER and COM_RESET_CONNECTION by hand.
timeout 60 "$PY" - "$RELAY_PORT" <<'PY'
import sys, struct, hashlib, pymysql
port = int(sys.argv[1])
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password='secret', database='test')
def tok(pw, salt):
    h1 = hashlib.sha1(pw).digest(); h2 = hashlib.sha1(h1).digest()
    return bytes(a ^ b for a, b in zip(h1, hashlib.sha1(salt + h2).digest()))
a = tok(b'secret2', c.salt)
payload = b'\x11app2\0' + bytes([len(a)]) + a + b'test2\0' + struct.pack('<H', 45) + b'mysql_native_password\0'
c._next_seq_id = 0
c.write_packet(payload)
pkt = c._read_packet()
if pkt.is_auth_switch_request():
    plugin, data = pkt.read_string(), pkt.read_all()
    c.write_packet(tok(b'secret2', data[:20]))
    c._read_packet()
with c.cursor() as cur:
    cur.execute("SELECT CURRENT_USER(), DATABASE()")
    cur.fetchall()
c._next_seq_id = 0
c.write_packet(b'\x1f')
c._read_packet()
with c.cursor() as cur:
    cur.execute("SELECT 'after reset'")
    cur.fetchall()
c.close()
PY

MRC=$MR_SRCDIR/build-asan/test/integration/mr_client
[ -x "$MRC" ] || MRC=$MR_SRCDIR/test/integration/mr_client
if [ -x "$MRC" ]; then
  for args in "prepared" "cursor 3000 50" "call" "multi" "reset" "ping" "stat" "list_fields" "select_db" \
      "change_user app2 secret2" "ids" "longdata 1"; do
    label "c-${args%% *}"
    # shellcheck disable=SC2086
    timeout 60 "$MRC" 127.0.0.1 "$RELAY_PORT" app secret test $args >/dev/null 2>&1 || mr_log "mr_client $args failed (recorded anyway)"
  done
  label c-query
  timeout 60 "$MRC" 127.0.0.1 "$RELAY_PORT" app secret test query "SELECT * FROM types; SELECT 1" >/dev/null 2>&1
else
  mr_log "no mr_client: build it for the binary protocol's sessions"
fi

sleep 1
kill "$RELAY_PID" 2>/dev/null
wait "$RELAY_PID" 2>/dev/null
RELAY_PID=""
rm -f "$OUT"/*.nfs
mkdir -p "$OUT"
"$PY" "$NETFUZZ" pack "$RAW" "$OUT"
mr_log "recorded $(ls "$OUT" | wc -l) sessions, $(du -sk "$OUT" | cut -f1) KiB in $OUT"
