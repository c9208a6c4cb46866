# What each session is running (SHOW PROXYSESSION ATTRIBUTE's statement and
# statement_time_ms, from the slot's statement area, by SQL and by
# myrelayctl), and the limits the proxy enforces on idle transactions.
# shellcheck shell=bash

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
arq() { cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B --skip-print-query-on-error -e "$1"; }

# The session's cs_id (st_open/st_run: lib.sh).
st_cs_id() {
  st_run "$1" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$OUT"
}

test_statement_running_and_last() {
  need_proxy
  need_client
  start_aux_daemon stmt
  ST_PORT=$AUX_PORT
  st_open s
  local id out ms
  id=$(st_cs_id s)
  printf '%s\n' "query SELECT SLEEP(1.5), 'marker-7781' AS m" "mark slept" >&"${ST_FD[s]}"
  sleep 0.6
  out=$(arq "SHOW PROXYSESSION ATTRIBUTE $id")
  assert_contains "$out" "statement	SELECT SLEEP(1.5), 'marker-7781' AS m	client session" "the running statement"
  assert_contains "$out" "active	true" "running: active"
  ms=$(awk -F'\t' '$1 == "statement_time_ms" { print $2 }' <<<"$out")
  [ "${ms:-0}" -ge 400 ] && [ "$ms" -lt 1500 ] || fail "statement_time_ms while running: $ms"
  out=$("$CTL" -c "$TT/stmt.yaml" session "$id" --like 'statement%') || fail "myrelayctl session: $out"
  assert_contains "$out" "marker-7781" "myrelayctl sees the statement"
  wait_until 30 grep -q "^mark slept" s.out || fail "session stuck: $(tail -5 s.out)"
  out=$(arq "SHOW PROXYSESSION ATTRIBUTE $id")
  assert_contains "$out" "statement	SELECT SLEEP(1.5), 'marker-7781' AS m	client session" "the last statement once done"
  assert_contains "$out" "active	false" "done: not active"
  ms=$(awk -F'\t' '$1 == "statement_time_ms" { print $2 }' <<<"$out")
  [ "${ms:-0}" -ge 1400 ] && [ "$ms" -lt 3000 ] || fail "the last statement's time: $ms"
  # Prepared statements show their text; the proxy's own statements too.
  st_run s "prepare p SELECT ? + 1 AS marker_ps" "bind p 41" "exec p"
  out=$(arq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'statement'")
  assert_contains "$out" "SELECT ? + 1 AS marker_ps" "an executed prepared statement's text"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SHOW PROXYSESSION ATTRIBUTE LIKE 'statement'")
  assert_contains "$out" "statement	SHOW PROXYSESSION ATTRIBUTE LIKE 'statement'	client session" "own statement"
  st_close s
}

test_statement_text_bound() {
  need_proxy
  need_client
  start_aux_daemon stmt16 proxy.statement_text_bytes=16
  ST_PORT=$AUX_PORT
  st_open s
  local id out
  id=$(st_cs_id s)
  st_run s "query SELECT 'abcdefghijklmnopqrstuvwxyz'"
  out=$(arq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'statement'")
  assert_eq "statement	SELECT 'abcdefgh	client session" "$out" "16 bytes of the text"
  st_close s
  myrelayd_stop "$AUX_PID" 5
  start_aux_daemon stmt0 proxy.statement_text_bytes=0
  ST_PORT=$AUX_PORT
  st_open z
  id=$(st_cs_id z)
  out=$(arq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'statement%'")
  assert_contains "$out" "statement	NULL" "statement_text_bytes: 0 keeps no text"
  assert_contains "$out" "statement_time_ms	" "but the time"
  st_close z
}

# A session idle inside a transaction past idle_in_transaction_s is killed and
# its transaction rolls back; a tenant may have its own limit (0: none).
test_idle_in_transaction_killed() {
  need_proxy
  need_client
  dq "CREATE TABLE IF NOT EXISTS test.iit (id INT PRIMARY KEY)" || fail "table"
  start_aux_daemon iit timeouts.idle_in_transaction_s=1
  ST_PORT=$AUX_PORT
  st_open t
  st_run t "query BEGIN" "query INSERT INTO iit VALUES (1)" "query SELECT 'busy', SLEEP(1.3)"
  grep -q "Lost connection\|server has gone away\|2013\|2006" t.out && fail "killed while busy: $(cat t.out)"
  st_run t "sleep 2.2" "query SELECT 1"
  grep -q "2013\|2006\|Lost connection\|gone away" <<<"$OUT" || fail "not killed when idle in the transaction: $(cat t.out)"
  [ "$(dq 'SELECT COUNT(*) FROM test.iit WHERE id = 1')" = 0 ] || fail "the transaction was not rolled back"
  grep -q "inside a transaction (idle_in_transaction_s): killed" "$AUX_LOG" || fail "not logged"
  # Idle outside a transaction: nothing happens.
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B -e "SELECT 1; DO SLEEP(1.5); SELECT 2") || fail "outside: $out"
  myrelayd_stop "$AUX_PID" 5
  # The tenant's own 0 wins over the global 1.
  start_aux_daemon iit0 timeouts.idle_in_transaction_s=1 "app.timeouts={ idle_in_transaction_s: 0 }"
  ST_PORT=$AUX_PORT
  st_open u
  st_run u "query BEGIN" "query INSERT INTO iit VALUES (2)" "sleep 2" "query COMMIT"
  grep -q "2013\|2006\|Lost connection\|gone away" u.out && fail "killed despite the tenant's 0: $(cat u.out)"
  [ "$(dq 'SELECT COUNT(*) FROM test.iit WHERE id = 2')" = 1 ] || fail "the tenant's transaction did not commit"
  dq "DROP TABLE test.iit"
  st_close u
}

# A statement running past statement_ms is stopped on the backend and the
# client gets MariaDB's own ERROR 1969; the session goes on.  A tenant may
# have its own limit.
test_statement_timeout() {
  need_proxy
  start_aux_daemon stmtto timeouts.statement_ms=400
  local out t0 t1
  t0=$(now_ms)
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B -e \
    "SELECT COUNT(*) FROM big a JOIN big b ON a.n + b.n < 0; SELECT 'after'" 2>&1) && fail "not stopped: $out"
  t1=$(now_ms)
  assert_contains "$out" "ERROR 1969 (70100)" "the timeout's error"
  assert_contains "$out" "Query execution was interrupted (max_statement_time exceeded)" "its message"
  [ $((t1 - t0)) -lt 5000 ] || fail "stopped only after $((t1 - t0)) ms"
  wait_until 10 bash -c "[ -z \"\$(mariadb --no-defaults --socket='$MR_DB_DIR/mysqld.sock' -uroot -N -B -e \"SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT COUNT(*) FROM big a JOIN%'\")\" ]" ||
    fail "the statement still runs on the backend"
  # The session goes on after it (--force: the client reads on after an error).
  out=$(printf '%s\n' "SELECT COUNT(*) FROM big a JOIN big b ON a.n + b.n < 0;" "SELECT CONCAT('af', 'ter');" |
    cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B --force 2>&1)
  assert_contains "$out" "ERROR 1969" "the timeout in a session that goes on"
  assert_contains "$out" "after" "the next statement of the same session"
  grep -q "ran over statement_ms (400 ms)" "$AUX_LOG" || fail "not logged"
  # Statements under the limit are untouched; a tenant's own 0 lifts it.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(0.1), 7") || fail "short statement: $out"
  myrelayd_stop "$AUX_PID" 5
  start_aux_daemon stmtto0 timeouts.statement_ms=400 "app.timeouts={ statement_ms: 0 }"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(1), 'done'") || fail "tenant without a limit: $out"
  assert_contains "$out" "done" "the tenant's 0"
}
