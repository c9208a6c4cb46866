#!/bin/bash
# test/fuzz/record_corpus.sh: (re)makes the seed corpora in test/fuzz/corpus.
#
# usage: test/fuzz/record_corpus.sh [--static-only]
#
# Starts a throwaway MariaDB (scripts/lib/common.sh mariadb_start) on a free
# port and a recording TCP relay in front of it (corpus_tool.py relay), runs
# the mariadb command line client, PyMySQL and test/integration/mr_client
# through the relay, and turns what went over the wire into seeds for the
# packets, response_tracker and prepared_statements harnesses
# (corpus_tool.py seeds).  The other harnesses' seeds are written out by
# corpus_tool.py static.  Existing seeds are kept (same content, same file).
# Everything runs on 127.0.0.1 and is bounded in time; the server and the
# relay are stopped at the end.  Needs mariadb-server, mariadb-client,
# python3-pymysql and a built test/integration/mr_client.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../scripts/lib/common.sh"
CORPUS=$HERE/corpus
PY=/usr/bin/python3

"$PY" "$HERE/corpus_tool.py" static "$MR_SRCDIR" "$CORPUS" || exit 1
[ "${1:-}" = --static-only ] && exit 0

TMP=$(mktemp -d /tmp/myrelay-fuzz-record.XXXXXX) || exit 1
DB=$TMP/db
RELAY_PID=""
cleanup() {
  [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null
  mariadb_stop "$DB"
  rm -rf "$TMP"
}
trap cleanup EXIT

DB_PORT=$(free_port) || exit 1
RELAY_PORT=$(free_port) || exit 1
mariadb_start "$DB" "$DB_PORT" || exit 1
{ cat <<'SQL'
CREATE USER 'app'@'%' IDENTIFIED BY 'secret';
CREATE USER 'app2'@'%' IDENTIFIED BY 'secret2';
CREATE DATABASE test;
CREATE DATABASE test2;
GRANT ALL PRIVILEGES ON test.* TO 'app'@'%', 'app2'@'%';
GRANT ALL PRIVILEGES ON test2.* TO 'app'@'%', 'app2'@'%';
GRANT PROCESS ON *.* TO 'app'@'%';
SQL
  sed 's/@BIG_ROWS@/4000/' "$HERE/../integration/schema.sql"; } | mariadb_root "$DB" || exit 1

timeout 900 "$PY" "$HERE/corpus_tool.py" relay "$RELAY_PORT" "$DB_PORT" "$TMP/rec" 600 &
RELAY_PID=$!
for _ in $(seq 50); do port_open "$RELAY_PORT" && break; sleep 0.1; done

CLI=(timeout 60 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$RELAY_PORT" -uapp -psecret --force)
mr_log "recording: mariadb command line client"
"${CLI[@]}" test <<'SQL' >/dev/null
SELECT 1, 'a', NULL, 2.5, NOW() - NOW();
SELECT * FROM types;
SELECT id, h FROM big ORDER BY id LIMIT 40;
SHOW TABLES;
SHOW VARIABLES LIKE 'session_track%';
SET SESSION session_track_system_variables = '*';
SET SESSION session_track_state_change = ON;
SET SESSION session_track_schema = ON;
SET SESSION session_track_transaction_info = CHARACTERISTICS;
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;
SET @u = 5, time_zone = '+02:00', sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES';
SET sql_mode = DEFAULT;
USE test;
START TRANSACTION READ ONLY;
SELECT COUNT(*) FROM big;
COMMIT;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
INSERT INTO big VALUES (100001, 'x', 'y', 1, NOW());
UPDATE big SET pad = 'z' WHERE id > 3990;
DELETE FROM big WHERE id = 100001;
CREATE TEMPORARY TABLE tt (a INT);
INSERT INTO tt VALUES (1), (2);
SELECT * FROM tt;
CALL p2();
CALL p_out(4, @y);
SELECT @y;
SELECT * FROM nosuchtable;
SELECT 1; SELECT 2, 3;
SHOW WARNINGS;
SELECT GET_LOCK('fz', 0), RELEASE_LOCK('fz');
SELECT LAST_INSERT_ID(7), @@last_insert_id;
DO SLEEP(0);
SHOW PROCESSLIST;
SQL
printf '1\tone\n2\ttwo\n' >"$TMP/infile.tsv"
"${CLI[@]}" --local-infile=1 test -e "CREATE TEMPORARY TABLE li (a INT, b TEXT); LOAD DATA LOCAL INFILE '$TMP/infile.tsv' INTO TABLE li; SELECT * FROM li" >/dev/null
"${CLI[@]}" test -e "SELECT * FROM big WHERE id <= 300" >/dev/null

mr_log "recording: PyMySQL"
timeout 60 "$PY" - "$RELAY_PORT" <<'PY'
import sys, pymysql
port = int(sys.argv[1])
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password='secret', database='test',
                    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, local_infile=False)
with c.cursor() as cur:
    cur.execute("SELECT id, h, pad, n, d FROM big WHERE id < %s", (20,))
    cur.fetchall()
    cur.execute("SELECT * FROM types")
    cur.fetchall()
    cur.executemany("INSERT INTO big VALUES (%s, %s, %s, %s, NOW())", [(200000 + i, 'h', 'p' * i, i) for i in range(5)])
    cur.execute("DELETE FROM big WHERE id >= 200000")
    try:
        cur.execute("SELEC broken")
    except pymysql.MySQLError:
        pass
    cur.execute("SELECT 1; SELECT 'two'; SET @x = 1")
    while cur.nextset():
        pass
    c.begin()
    cur.execute("SELECT * FROM big WHERE id = 1 FOR UPDATE")
    c.rollback()
    c.ping()
    c.select_db('test')
c.close()
PY

mr_log "recording: mr_client"
MRC=$MR_SRCDIR/test/integration/mr_client
if [ -x "$MRC" ]; then
  for args in "prepared" "cursor 3000 7" "call" "multi" "reset" "ping" "stat" "list_fields" "select_db" \
      "change_user app2 secret2" "ids" "longdata 1"; do
    # shellcheck disable=SC2086
    timeout 60 "$MRC" 127.0.0.1 "$RELAY_PORT" app secret test $args >/dev/null 2>&1 || mr_log "mr_client $args failed (recorded anyway)"
  done
  timeout 60 "$MRC" 127.0.0.1 "$RELAY_PORT" app secret test query "SELECT * FROM types; SELECT 1" >/dev/null 2>&1
else
  mr_log "no $MRC: build it (make test/integration/mr_client) for the binary protocol's seeds"
fi

sleep 1
kill "$RELAY_PID" 2>/dev/null
wait "$RELAY_PID" 2>/dev/null
RELAY_PID=""
mr_log "recorded $(ls "$TMP/rec" | wc -l) connections"
"$PY" "$HERE/corpus_tool.py" seeds "$TMP/rec" "$CORPUS"
