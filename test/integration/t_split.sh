# Several server sessions per client session (DESIGN section 4): the
# read/write split over the run's primary and its GTID replica
# (MR_REPLICA_PORT), server health from the proxy's checker, causal reads,
# SHOW PROXYCONGESTION and myrelayctl servers, and, on a pair of servers of
# its own, a replica killed -9 and a failover to it.
# shellcheck shell=bash

# root on the primary and on the replica, over their sockets.
pq() { dq "$1"; }
rpq() { mariadb --no-defaults --socket="$MR_REPLICA_DIR/mysqld.sock" -uroot -N -B -e "$1"; }
# A statement counter of a server (SHOW GLOBAL STATUS).
com() { "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2; }
# Through the auxiliary daemon, as app and as root@sys.
# --comments: the client would strip the /*+ ... */ hints.
sq() { cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B --comments --skip-print-query-on-error -e "$1"; }
srq() { cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B --skip-print-query-on-error -e "$1"; }

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
monitor() { echo "{ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: ${1:-200} }"; }
MONITOR=$(monitor)

# congestion_has PATTERN [PORT]: SHOW PROXYCONGESTION (of the auxiliary daemon) matches.
congestion_has() {
  cli "${2:-$AUX_PORT}" app "$MR_APP_PASSWORD" -N -B -e 'SHOW PROXYCONGESTION' | grep -q "$1"
}

need_replica() {
  need_proxy
  [ -n "${MR_REPLICA_PORT:-}" ] || skip "no replica in this run"
}

# The shared replica back to normal whatever a test did to it.
restore_replica() {
  rpq "START SLAVE" >/dev/null 2>&1
  mariadb_wait_replica_caught_up "$MR_DB_DIR" "$MR_REPLICA_DIR" 30 >/dev/null 2>&1
}

# split_daemon NAME [write_config keys...]: the split on, checks every
# SPLIT_CHECK_MS (200) ms.
split_daemon() {
  local name=$1
  shift
  start_aux_daemon "$name" replica="$MR_REPLICA_PORT" cluster.read_write_split=on \
    "cluster.monitor=$(monitor "${SPLIT_CHECK_MS:-200}")" "$@"
}

# A table on the primary, there on the replica too.
split_table() {
  pq "CREATE TABLE IF NOT EXISTS test.split_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL);
      INSERT INTO test.split_t (v) VALUES (1)" || fail "split_t"
  mariadb_wait_replica_caught_up "$MR_DB_DIR" "$MR_REPLICA_DIR" 30 || fail "the replica did not catch up"
}

# A text over 64 KiB is streamed to the backend without being held whole:
# with the split on it runs where writes do.  It used to end the daemon (an
# empty statement text was cut at offset 1: std::out_of_range, found by
# scripts/netfuzz).
test_split_long_query() {
  need_replica
  split_daemon splitlong
  local long out
  long=$(head -c 70000 /dev/zero | tr '\0' x)
  out=$(printf "SELECT LENGTH('%s');\n" "$long" | cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B 2>&1)
  assert_eq 70000 "$out" "a 70 kB SELECT with the split on"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
  assert_eq 1 "$(sq 'SELECT 1')" "the daemon still answers"
}

# Writes on the primary only; autocommit reads on the replica; transactions,
# locking reads and session-bound functions on the primary.
test_split_routes_reads_and_writes() {
  need_replica
  split_table
  # Health checks count as SELECTs on both servers: one at start, then none.
  SPLIT_CHECK_MS=600000 split_daemon split cluster.max_replica_lag_s=10
  sleep 0.3
  local p0 r0 p1 r1 pi0 out
  p0=$(com pq Com_select) r0=$(com rpq Com_select)
  pi0=$(com pq Com_insert)
  out=$(sq "$(for i in $(seq 1 40); do printf 'SELECT v FROM split_t WHERE id = 1;'; done)") || fail "reads: $out"
  p1=$(com pq Com_select) r1=$(com rpq Com_select)
  [ $((r1 - r0)) -ge 40 ] || fail "40 reads, the replica ran $((r1 - r0)) SELECTs"
  [ $((p1 - p0)) -le 6 ] || fail "40 reads, the primary ran $((p1 - p0)) SELECTs (only health checks expected)"
  out=$(sq "INSERT INTO split_t (v) VALUES (2); INSERT INTO split_t (v) VALUES (3)") || fail "writes: $out"
  # Both on the primary (the replica, read_only, would have refused app's
  # INSERT; its own Com_insert counts the replicated ones too).
  [ $(($(com pq Com_insert) - pi0)) = 2 ] || fail "the primary did not run both INSERTs"
  # These stay on the primary.
  local q
  for q in "BEGIN; SELECT v FROM split_t WHERE id = 1; COMMIT" \
           "SELECT v FROM split_t WHERE id = 1 FOR UPDATE" \
           "SELECT v FROM split_t WHERE id = 1 LOCK IN SHARE MODE" \
           "SELECT GET_LOCK('split', 0), RELEASE_LOCK('split')" \
           "SELECT LAST_INSERT_ID()" \
           "SELECT @x := v FROM split_t WHERE id = 1" \
           "SET autocommit = 0; SELECT v FROM split_t WHERE id = 1; COMMIT" \
           "SELECT /*+ READ_CONSISTENCY(STRONG) */ v FROM split_t WHERE id = 1"; do
    r0=$(com rpq Com_select)
    out=$(sq "$q") || fail "$q: $out"
    [ "$(com rpq Com_select)" = "$r0" ] || fail "ran on the replica: $q"
  done
  # The weak hint sends a read to a replica even with the split off for the tenant.
  r0=$(com rpq Com_select)
  out=$(sq "SELECT /*+ READ_CONSISTENCY(WEAK) */ FOUND_ROWS()") || fail "weak hint: $out"
  [ $(($(com rpq Com_select) - r0)) -ge 1 ] || fail "READ_CONSISTENCY(WEAK) did not reach the replica"
  # One session, two server sessions: ATTRIBUTE shows both, with their roles.
  out=$(sq "SELECT v FROM split_t WHERE id = 1; INSERT INTO split_t (v) VALUES (4);
            SHOW PROXYSESSION ATTRIBUTE LIKE 'role'; SHOW PROXYSESSION ATTRIBUTE LIKE 'svr_session_cnt'")
  assert_contains "$out" "role	primary" "a primary server session"
  assert_contains "$out" "role	replica" "a replica server session"
  assert_contains "$out" "svr_session_cnt	2" "svr_session_cnt"
}

# A tenant that turns the split off keeps every read on the primary; reads
# spread over the servers by weight when the primary has a weight too.
test_split_tenant_override_and_weights() {
  need_replica
  split_table
  split_daemon splitoff app.read_write_split=off
  local r0 out
  r0=$(com rpq Com_select)
  out=$(sq "SELECT v FROM split_t WHERE id = 1; SELECT v FROM split_t WHERE id = 1") || fail "$out"
  [ "$(com rpq Com_select)" = "$r0" ] || fail "the tenant's read_write_split: off was not honoured"
  myrelayd_stop "$AUX_PID" 5
  split_daemon splitw primary_weight=1 workers=1
  local p0 p1 r1 i
  p0=$(com pq Com_select) r0=$(com rpq Com_select)
  for i in $(seq 1 8); do
    sq "$(for j in $(seq 1 10); do printf 'SELECT v FROM split_t WHERE id = 1;'; done)" >/dev/null || fail "session $i"
  done
  p1=$(com pq Com_select) r1=$(com rpq Com_select)
  echo "INFO: 8 sessions of 10 reads, weights 1:1: primary $((p1 - p0)) SELECTs, replica $((r1 - r0))"
  [ $((r1 - r0)) -ge 30 ] && [ $((p1 - p0)) -ge 30 ] || fail "reads not spread by weight: primary $((p1 - p0)), replica $((r1 - r0))"
}

# Binary prepared statements: a replica-safe SELECT executes on the replica
# (prepared again there under the proxy's id), an INSERT on the primary.
test_split_prepared_statements() {
  need_replica
  need_client
  split_table
  SPLIT_CHECK_MS=600000 split_daemon splitps
  local in=$TT/p.in out=$TT/p.out fd rp0 re0 pe0
  rp0=$(com rpq Com_stmt_prepare) re0=$(com rpq Com_stmt_execute) pe0=$(com pq Com_stmt_execute)
  mkfifo "$in"
  "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test script <"$in" >"$out" 2>&1 &
  exec {fd}>"$in"
  printf '%s\n' "prepare sel SELECT v FROM split_t WHERE id = ?" "prepare ins INSERT INTO split_t (v) VALUES (?)" \
    "bind sel 1" "exec sel" "exec sel" "bind ins 77" "exec ins" "exec sel" "mark done" >&"$fd"
  wait_until 20 grep -q "^mark done" "$out" || fail "session stuck: $(tail -5 "$out")"
  exec {fd}>&-
  grep -q "error\|ERROR" "$out" && fail "an error: $(cat "$out")"
  [ "$(grep -c '^ok affected' "$out")" = 4 ] || fail "four executions expected: $(cat "$out")"
  [ $(($(com rpq Com_stmt_execute) - re0)) = 3 ] || fail "the SELECT's three executions did not run on the replica"
  [ $(($(com rpq Com_stmt_prepare) - rp0)) = 1 ] || fail "the SELECT was not prepared once on the replica"
  [ $(($(com pq Com_stmt_execute) - pe0)) = 1 ] || fail "the INSERT did not execute on the primary"
}

# Causal reads: every read sees the session's own write, with the replica's
# SQL thread stopped for part of the loop (the read then goes to the primary
# once MASTER_GTID_WAIT times out).
test_split_causal_reads_see_own_writes() {
  need_replica
  split_table
  split_daemon causal cluster.causal_reads=on cluster.causal_reads_timeout_ms=300
  local out
  out=$(/usr/bin/python3 - "$AUX_PORT" "$MR_APP_PASSWORD" "$MR_REPLICA_DIR/mysqld.sock" <<'PY'
import sys, pymysql
port, pw, sock = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password=pw, database='test', autocommit=True)
admin = pymysql.connect(unix_socket=sock, user='root', autocommit=True)
cur = c.cursor()
seen = 0
for i in range(60):
    if i == 20:
        admin.cursor().execute("STOP SLAVE SQL_THREAD")
    if i == 40:
        admin.cursor().execute("START SLAVE SQL_THREAD")
    cur.execute("INSERT INTO split_t (v) VALUES (%s)", (100000 + i,))
    cur.execute("SELECT COUNT(*) FROM split_t WHERE v = %s", (100000 + i,))
    seen += cur.fetchone()[0]
print(seen)
PY
) || { restore_replica; fail "causal loop: $out"; }
  restore_replica
  assert_eq 60 "$out" "reads that saw their own write"
  local stats waits fallbacks
  stats=$("$CTL" -c "$TT/causal.yaml" stats --json)
  waits=$(sed -n 's/.*"global":{[^}]*"causal_waits":\([0-9]*\).*/\1/p' <<<"$stats")
  fallbacks=$(sed -n 's/.*"global":{[^}]*"causal_read_fallbacks":\([0-9]*\).*/\1/p' <<<"$stats")
  echo "INFO: 60 write-then-read pairs: $waits causal waits, $fallbacks ran on the primary"
  [ "${waits:-0}" -ge 1 ] || fail "no causal wait was counted: $stats"
  [ "${fallbacks:-0}" -ge 1 ] || fail "no read fell back to the primary while replication was stopped"
}

# A stopped replica SQL thread: the checker sees lag NULL, the replica is
# lagging, and reads go to the primary with no client error.
test_split_stopped_replica_moves_reads() {
  need_replica
  split_table
  split_daemon stopped
  local out r0 i
  wait_until 10 congestion_has "replica	alive" ||
    fail "the replica alive: $(srq 'SHOW PROXYCONGESTION')"
  rpq "STOP SLAVE SQL_THREAD"
  wait_until 10 congestion_has "replica	lagging	NULL" ||
    { restore_replica; fail "the replica is not lagging: $(srq 'SHOW PROXYCONGESTION')"; }
  r0=$(com rpq Com_select)
  for i in $(seq 1 10); do
    out=$(sq "SELECT v FROM split_t WHERE id = 1") || { restore_replica; fail "read $i: $out"; }
  done
  [ "$(com rpq Com_select)" -le $((r0 + 4)) ] || { restore_replica; fail "reads still reached the lagging replica"; }
  restore_replica
  wait_until 10 congestion_has "replica	alive	0" ||
    fail "the replica did not come back: $(srq 'SHOW PROXYCONGESTION')"
  grep -q "replica 127.0.0.1:$MR_REPLICA_PORT gets no reads: replication is not running" "$AUX_LOG" ||
    fail "the log does not say why the replica got no reads"
}

# KILL PROXYSESSION id ss_id on a client's replica server session: the client
# goes on with its state; the next read opens a new one there.
test_split_kill_replica_server_session() {
  need_replica
  need_client
  split_table
  split_daemon killss
  local in=$TT/k.in out=$TT/k.out fd id ss
  mkfifo "$in"
  "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test script <"$in" >"$out" 2>&1 &
  exec {fd}>"$in"
  printf '%s\n' "query SET SESSION time_zone = '+03:00'" "query SELECT v FROM split_t WHERE id = 1" \
    "query SHOW PROXYSESSION ATTRIBUTE" "mark one" >&"$fd"
  wait_until 20 grep -q "^mark one" "$out" || fail "session stuck: $(tail -5 "$out")"
  id=$(sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' "$out")
  ss=$(awk -F'|' '$1 == "ss_id" { ss = $2 } $1 == "role" && $2 == "replica" { print ss }' "$out")
  [ -n "$id" ] && [ -n "$ss" ] || fail "no replica server session: $(cat "$out")"
  out2=$(srq "KILL PROXYSESSION $id $ss") || fail "KILL PROXYSESSION $id $ss: $out2"
  printf '%s\n' "query SELECT @@time_zone, v FROM split_t WHERE id = 1" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'ss_id'" \
    "mark two" >&"$fd"
  wait_until 20 grep -q "^mark two" "$out" || fail "session stuck after the kill: $(tail -5 "$out")"
  local after
  after=$(sed -n '/^mark one/,/^mark two/p' "$out")
  assert_contains "$after" "+03:00|1" "the state on the new replica server session"
  grep -q "ss_id|$ss|" <<<"$after" && fail "the killed server session is still listed"
  [ "$(grep -c '^ss_id|' <<<"$after")" = 2 ] || fail "two server sessions again expected: $after"
  exec {fd}>&-
}

# Idle replica server sessions close after timeouts.replica_idle_s.
test_split_replica_idle_close() {
  need_replica
  need_client
  split_table
  split_daemon idle timeouts.replica_idle_s=1
  local in=$TT/i.in out=$TT/i.out fd
  mkfifo "$in"
  "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test script <"$in" >"$out" 2>&1 &
  exec {fd}>"$in"
  printf '%s\n' "query INSERT INTO split_t (v) VALUES (5)" "query SELECT v FROM split_t WHERE id = 1" \
    "query SHOW PROXYSESSION ATTRIBUTE LIKE 'svr_session_cnt'" "sleep 2.5" \
    "query SHOW PROXYSESSION ATTRIBUTE LIKE 'svr_session_cnt'" "mark done" >&"$fd"
  wait_until 20 grep -q "^mark done" "$out" || fail "session stuck: $(tail -5 "$out")"
  [ "$(grep '^svr_session_cnt' "$out" | cut -d'|' -f2 | tr '\n' ' ')" = "2 1 " ] ||
    fail "svr_session_cnt before and after replica_idle_s: $(grep '^svr_session_cnt' "$out")"
  exec {fd}>&-
}

# SHOW PROXYCONGESTION, myrelayctl servers and the metrics agree.
test_split_congestion_and_servers() {
  need_replica
  split_daemon cong
  wait_until 10 congestion_has "replica	alive	0" ||
    fail "replica alive: $(srq 'SHOW PROXYCONGESTION')"
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -B -e "SHOW PROXYCONGESTION main")
  assert_eq "cluster	server	role	state	lag_s	last_check	consecutive_failures	server_sessions	in_use	shared_idle	waiting" \
    "$(head -1 <<<"$out")" "columns"
  assert_contains "$out" "main	127.0.0.1:$MR_DB_PORT	primary	alive	NULL	" "the primary"
  assert_contains "$out" "main	127.0.0.1:$MR_REPLICA_PORT	replica	alive	0	" "the replica"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SHOW PROXYCONGESTION nosuch" 2>&1) && fail "unknown cluster accepted"
  assert_contains "$out" "ERROR 1049" "unknown cluster"
  out=$("$CTL" -c "$TT/cong.yaml" servers --json) || fail "myrelayctl servers: $out"
  assert_contains "$out" "\"server\":\"127.0.0.1:$MR_REPLICA_PORT\",\"role\":\"replica\",\"state\":\"alive\",\"lag_s\":0" \
    "myrelayctl servers --json"
  out=$("$CTL" -c "$TT/cong.yaml" metrics) || fail "metrics: $out"
  assert_contains "$out" "myrelay_server_up{cluster=\"main\",server=\"127.0.0.1:$MR_REPLICA_PORT\",role=\"replica\"} 1" "metrics"
  assert_contains "$out" "myrelay_server_lag_seconds{cluster=\"main\",server=\"127.0.0.1:$MR_REPLICA_PORT\"" "lag metric"
}

# SIGHUP adds a replica (reads go there) and removes it again (sessions on it
# move to the primary with no error).
test_split_reload_adds_and_removes_servers() {
  need_replica
  need_client
  split_table
  start_aux_daemon reload "cluster.monitor=$MONITOR"
  local in=$TT/h.in out=$TT/h.out fd r0 conf=$TT/reload.yaml
  mkfifo "$in"
  "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test script <"$in" >"$out" 2>&1 &
  exec {fd}>"$in"
  printf '%s\n' "query SELECT v FROM split_t WHERE id = 1" "mark one" >&"$fd"
  wait_until 20 grep -q "^mark one" "$out" || fail "session stuck"
  write_config "$conf" port="$AUX_PORT" backend_port="$MR_DB_PORT" workers=2 name=reload shutdown_grace_s=2 \
    replica="$MR_REPLICA_PORT" cluster.read_write_split=on "cluster.monitor=$MONITOR" || fail "write_config"
  kill -HUP "$AUX_PID"
  wait_until 10 grep -q "configuration reloaded" "$AUX_LOG" || fail "no reload: $(tail -3 "$AUX_LOG")"
  r0=$(com rpq Com_select)
  # The session keeps its login's choice (split off); a new one splits.
  sq "SELECT v FROM split_t WHERE id = 1" >/dev/null || fail "new session read"
  [ $(($(com rpq Com_select) - r0)) -ge 1 ] || fail "the added replica got no read"
  # Remove it again: a session reading there moves to the primary.
  printf '%s\n' "query SELECT /*+ READ_CONSISTENCY(WEAK) */ v FROM split_t WHERE id = 1" \
    "query SHOW PROXYSESSION ATTRIBUTE LIKE 'role'" "mark two" >&"$fd"
  wait_until 20 grep -q "^mark two" "$out" || fail "session stuck"
  grep -q "^role|replica" "$out" || fail "the old session did not read from the added replica: $(cat "$out")"
  write_config "$conf" port="$AUX_PORT" backend_port="$MR_DB_PORT" workers=2 name=reload shutdown_grace_s=2 \
    "cluster.monitor=$MONITOR" || fail "write_config"
  kill -HUP "$AUX_PID"
  wait_until 10 grep -q "removed from the configuration" "$AUX_LOG" || fail "not removed: $(tail -3 "$AUX_LOG")"
  printf '%s\n' "query SELECT /*+ READ_CONSISTENCY(WEAK) */ v FROM split_t WHERE id = 1" \
    "query SHOW PROXYSESSION ATTRIBUTE LIKE 'role'" "mark three" >&"$fd"
  wait_until 20 grep -q "^mark three" "$out" || fail "session stuck"
  local last
  last=$(sed -n '/^mark two/,/^mark three/p' "$out")
  assert_contains "$last" "1" "the read after the removal"
  grep -q "ERROR" <<<"$last" && fail "an error after the removal: $last"
  grep -q "^role|replica" <<<"$last" && fail "still on the removed replica: $last"
  out=$(srq "SHOW PROXYCONGESTION")
  grep -q "$MR_REPLICA_PORT" <<<"$out" && fail "the removed server is still listed: $out"
  exec {fd}>&-
}

# A pair of servers of the test's own: reads go on with no client error while
# the replica is killed -9; a write with no writable server waits and fails
# clearly; promoting the replica moves writes to it within two intervals.
test_split_replica_loss_and_failover() {
  need_proxy
  local pdir=$TT/p rdir=$TT/r pport rport
  pport=$(free_port) || fail "port"
  mariadb_start "$pdir" "$pport" --log-bin=mysql-bin --server-id=11 --log-slave-updates >/dev/null 2>&1 ||
    fail "primary did not start"
  mariadb_root "$pdir" <<SQL || fail "users"
CREATE USER 'repl'@'%' IDENTIFIED BY 'replpw'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE USER 'myrelay_monitor'@'%' IDENTIFIED BY '$MR_MONITOR_PASSWORD';
GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* TO 'myrelay_monitor'@'%';
CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD';
CREATE DATABASE test; GRANT ALL ON test.* TO 'app'@'%';
CREATE TABLE test.f (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
INSERT INTO test.f (v) VALUES (1);
SQL
  rport=$(free_port) || fail "port"
  mariadb_start_replica "$rdir" "$rport" "$pport" repl replpw --server-id=12 >/dev/null 2>&1 ||
    { mariadb_stop "$pdir"; fail "replica did not start"; }
  AUX_PORT=$(free_port)
  AUX_LOG=$MR_TMP/daemon-failover.log
  write_config "$TT/failover.yaml" port="$AUX_PORT" backend_port="$pport" workers=2 name=failover \
    replica="$rport" cluster.read_write_split=on timeouts.primary_wait_ms=600 \
    "cluster.monitor={ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: 200 }" || fail "config"
  myrelayd_start "$TT/failover.yaml" "$AUX_LOG" || fail "daemon"
  AUX_PIDS+=("$MYRELAYD_PID")
  wait_until 10 congestion_has "replica	alive	0" ||
    fail "replica alive: $(sq 'SHOW PROXYCONGESTION')"
  # Reads from 4 sessions while the replica is killed -9.
  /usr/bin/python3 - "$AUX_PORT" "$MR_APP_PASSWORD" >"$TT/reads.out" 2>&1 <<'PY' &
import sys, time, pymysql
port, pw = int(sys.argv[1]), sys.argv[2]
conns = [pymysql.connect(host='127.0.0.1', port=port, user='app', password=pw, database='test', autocommit=True)
         for _ in range(4)]
errors = reads = 0
deadline = time.time() + 4
while time.time() < deadline and reads < 20000:
    for c in conns:
        try:
            cur = c.cursor()
            cur.execute("SELECT v FROM f WHERE id = 1")
            reads += cur.fetchone()[0] == 1
        except Exception as e:
            errors += 1
            print("error:", e)
    time.sleep(0.002)
print("reads", reads, "errors", errors)
PY
  local loader=$!
  sleep 1
  local rpid
  rpid=$(cat "$rdir/mysqld.pid")
  kill -KILL "$rpid"
  wait "$loader"
  local res
  res=$(tail -1 "$TT/reads.out")
  echo "INFO: replica killed -9 under 4 reading sessions: $res"
  assert_contains "$res" "errors 0" "reads while the replica died: $(head -3 "$TT/reads.out")"
  wait_until 5 congestion_has "replica	down" ||
    fail "replica down: $(sq 'SHOW PROXYCONGESTION')"
  # Back, and caught up.
  mariadb_start "$rdir" "$rport" --server-id=12 --log-bin=mysql-bin --log-slave-updates --read-only=1 \
    --relay-log=relay-bin >/dev/null 2>&1 || fail "replica restart"
  mariadb_wait_replica_caught_up "$pdir" "$rdir" 30 || fail "replica caught up"
  wait_until 10 congestion_has "replica	alive" ||
    fail "replica back: $(sq 'SHOW PROXYCONGESTION')"
  # No writable server: a write waits primary_wait_ms, then a clear error.
  mariadb_root "$pdir" -e "SET GLOBAL read_only = 1"
  sleep 0.5
  local out t0 t1
  t0=$(now_ms)
  out=$(sq "INSERT INTO f (v) VALUES (2)" 2>&1) && fail "a write with no writable server succeeded"
  t1=$(now_ms)
  assert_contains "$out" "ERROR 1290" "no writable server"
  assert_contains "$out" "cluster 'main'" "the error names the cluster"
  [ $((t1 - t0)) -ge 500 ] || fail "the write did not wait for a writable server ($((t1 - t0)) ms)"
  # Promotion: the replica stops replicating and becomes writable.
  mariadb_root "$rdir" -e "STOP SLAVE; SET GLOBAL read_only = 0"
  sleep 0.45  # two check intervals, and a little
  out=$(sq "INSERT INTO f (v) VALUES (3); SELECT @@port") || fail "write after promotion: $out"
  assert_eq "$rport" "$(tail -1 <<<"$out")" "writes go to the promoted server"
  [ "$(mariadb_root "$rdir" -N -B -e 'SELECT COUNT(*) FROM test.f WHERE v = 3')" = 1 ] || fail "the row is not on the new primary"
  grep -q "server 127.0.0.1:$rport is writable now" "$AUX_LOG" || fail "the role change is not logged"
  myrelayd_stop "$MYRELAYD_PID" 5
  mariadb_stop "$rdir"
  mariadb_stop "$pdir"
}
