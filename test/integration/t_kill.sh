# Session control by condition (DESIGN section 5): KILL PROXYSESSION WHERE,
# EXPLAIN KILL PROXYSESSION WHERE, KILL ... WHEN IDLE [TIMEOUT s], and
# myrelayctl kill --where.  Each test runs its own myrelayd so that the
# sessions it counts are its own.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}

# kq SQL: root@sys on the test's daemon, with the server's "Query OK, N rows
# affected" lines (mariadb -vvv) kept.
kq() { cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -vvv -e "$1" 2>&1; }
# krows SQL: the rows of a result, as root.
krows() { cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "$1" 2>&1; }
affected() { sed -n 's/^Query OK, \([0-9]*\) rows\{0,1\} affected.*/\1/p' <<<"$1" | head -1; }

# kill_daemon NAME [write_config key=value...]: a daemon of its own; sessions
# opened with st_open go to it.
kill_daemon() {
  need_proxy
  start_aux_daemon "$@"
  ST_PORT=$AUX_PORT
  CFG="$TT/$1.yaml"
}

# open_sessions PREFIX N: N idle sessions as ST_USER (default app), logged in.
open_sessions() {
  local i
  for ((i = 1; i <= $2; i++)); do
    st_open "$1$i"
    st_run "$1$i" "query SELECT 1"
  done
}

# running: one session of the test's daemon has run a statement for a second.
running() { [ "$(krows "EXPLAIN KILL PROXYSESSION WHERE command = 'Query' AND time_s >= 1" | grep -c .)" = 1 ]; }

# st_id_of OUTPUT: the cs_id in a scripted session's "SHOW PROXYSESSION
# ATTRIBUTE LIKE 'cs_id'" output.
st_id_of() { sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$1"; }

# session_gone ID: SHOW PROXYSESSION no longer lists session ID.
session_gone() { ! krows "SHOW PROXYSESSION" | cut -f2 | grep -qx "$1"; }

# session_ended NAME: the scripted session's connection is gone.
session_ended() {
  st_run "$1" "query SELECT 'still here'"
  ! grep -q "still here" <<<"$OUT"
}

test_kill_where_sql() {
  kill_daemon kw
  open_sessions a 3
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD open_sessions b 1
  local out n
  # EXPLAIN lists, kills nothing.
  out=$(krows "EXPLAIN KILL PROXYSESSION WHERE user = 'app'")
  n=$(grep -c . <<<"$out")
  assert_eq 3 "$n" "EXPLAIN rows for user = 'app': $out"
  assert_eq 3 "$(krows "EXPLAIN KILL PROXYSESSION WHERE user = 'app'" | grep -c .)" "EXPLAIN killed nothing"
  assert_eq 4 "$(krows "EXPLAIN KILL PROXYSESSION WHERE tenant = 'app' AND state = 'MCS_KEEP_ALIVE'" | grep -c .)" \
    "both users of tenant app, idle"
  assert_eq 1 "$(krows "EXPLAIN KILL PROXYSESSION WHERE user LIKE 'APP_'" | grep -c .)" "LIKE ignores case"
  # The caller is never included.
  out=$(kq "KILL PROXYSESSION WHERE tenant = 'sys'")
  assert_eq 0 "$(affected "$out")" "KILL WHERE tenant = 'sys' from sys: $out"
  # The kill: affected rows = sessions killed; LIMIT bounds it.
  out=$(kq "KILL PROXYSESSION WHERE user = 'app' AND host = '127.0.0.1' LIMIT 2")
  assert_eq 2 "$(affected "$out")" "KILL WHERE ... LIMIT 2: $out"
  one_left() { [ "$(krows "EXPLAIN KILL PROXYSESSION WHERE user = 'app'" | grep -c .)" = 1 ]; }
  wait_until 5 one_left ||
    fail "after the kill: $(krows "EXPLAIN KILL PROXYSESSION WHERE user = 'app'")"
  session_ended a1 || fail "session a1 still answers"
  session_ended a2 || fail "session a2 still answers"
  st_run a3 "query SELECT 'a3 alive'"
  assert_contains "$OUT" "a3 alive" "the session past the LIMIT"
  st_run b1 "query SELECT 'b1 alive'"
  assert_contains "$OUT" "b1 alive" "the other user's session"
  # Unprivileged callers: 1227, even for their own user's sessions.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "KILL PROXYSESSION WHERE user = 'app'" 2>&1)
  assert_contains "$out" "ERROR 1227" "KILL PROXYSESSION WHERE by app"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "EXPLAIN KILL PROXYSESSION WHERE user = 'app'" 2>&1)
  assert_contains "$out" "ERROR 1227" "EXPLAIN KILL PROXYSESSION WHERE by app"
  # Malformed: 1064 saying what was expected.
  out=$(kq "KILL PROXYSESSION WHERE colour = 'red'")
  assert_contains "$out" "ERROR 1064" "unknown field"
  assert_contains "$out" "expected a field (user, tenant" "the message lists the fields"
  out=$(kq "KILL PROXYSESSION WHERE idle_s > 'x'")
  assert_contains "$out" "expected a whole number of seconds after idle_s" "numeric field"
  st_run a3 "query SELECT 'a3 still alive'"
  assert_contains "$OUT" "a3 still alive" "malformed statements killed nothing"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_kill_where_time_fields() {
  kill_daemon kt
  open_sessions idle 1
  st_open tx
  st_run tx "query BEGIN" "query SELECT 1"
  # A statement running for a while.
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20)" >sleep.out 2>&1 &
  local sleeper=$! out
  sleep 2.2
  assert_eq 1 "$(krows "EXPLAIN KILL PROXYSESSION WHERE in_trans = 1 AND trans_s >= 2" | grep -c .)" \
    "the transaction open 2 s: $(krows "SHOW PROXYSESSION")"
  assert_eq 0 "$(krows "EXPLAIN KILL PROXYSESSION WHERE trans_s > 60" | grep -c .)" "no transaction a minute old"
  assert_eq 2 "$(krows "EXPLAIN KILL PROXYSESSION WHERE idle_s >= 2 AND tenant = 'app'" | grep -c .)" "idle 2 s"
  assert_eq 1 "$(krows "EXPLAIN KILL PROXYSESSION WHERE time_s >= 2" | grep -c .)" "running 2 s"
  out=$(kq "KILL PROXYSESSION WHERE time_s >= 2 AND command = 'Query'")
  assert_eq 1 "$(affected "$out")" "kill of the running statement's session: $out"
  wait_pid_gone "$sleeper" 5 || fail "the sleeping client still waits"
  grep -q "ERROR" sleep.out || fail "the killed client saw no error: $(cat sleep.out)"
  # The one in a transaction: killed, so its transaction is gone.
  out=$(kq "KILL PROXYSESSION WHERE in_trans = 1")
  assert_eq 1 "$(affected "$out")" "kill of the session in a transaction"
  session_ended tx || fail "the session in a transaction still answers"
  st_run idle1 "query SELECT 'idle alive'"
  assert_contains "$OUT" "idle alive" "the idle session"
}

test_kill_when_idle() {
  kill_daemon ki
  dq "CREATE TABLE IF NOT EXISTS test.kill_idle (id INT PRIMARY KEY)" >/dev/null
  dq "DELETE FROM test.kill_idle" >/dev/null
  st_open tx
  st_run tx "query BEGIN" "query INSERT INTO kill_idle VALUES (1)" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  local id out
  id=$(st_id_of "$OUT")
  [ -n "$id" ] || fail "no cs_id: $OUT"
  out=$(kq "KILL PROXYSESSION $id WHEN IDLE")
  assert_contains "$out" "Query OK" "KILL ... WHEN IDLE answers OK"
  assert_eq "kill_pending	true" "$(krows "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'kill_pending'" | cut -f1,2)" \
    "ATTRIBUTE shows the pending kill"
  # Still inside its transaction: it goes on.
  st_run tx "query INSERT INTO kill_idle VALUES (2)" "query SELECT COUNT(*) FROM kill_idle"
  assert_contains "$OUT" "2" "statements inside the transaction still run: $OUT"
  st_run tx "query COMMIT"
  wait_until 5 session_ended tx || fail "the session still answers after its COMMIT"
  assert_eq 2 "$(dq "SELECT COUNT(*) FROM test.kill_idle")" "the transaction was committed, not broken"
  # An idle session ends at once.
  st_open idle
  st_run idle "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  id=$(st_id_of "$OUT")
  kq "KILL PROXYSESSION $id WHEN IDLE" >/dev/null
  wait_until 5 session_ended idle || fail "an idle session was not ended at once"
  # TIMEOUT: a transaction that never ends is killed then, and rolls back.
  st_open stuck
  st_run stuck "query BEGIN" "query INSERT INTO kill_idle VALUES (3)" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  id=$(st_id_of "$OUT")
  local t0 ms
  t0=$(now_ms)
  kq "KILL PROXYSESSION $id WHEN IDLE TIMEOUT 2" >/dev/null
  wait_until 10 session_gone "$id" ||
    fail "the session was still there 10 s after WHEN IDLE TIMEOUT 2"
  ms=$(($(now_ms) - t0))
  [ "$ms" -ge 1800 ] || fail "killed after $ms ms, before its TIMEOUT 2"
  echo "INFO: WHEN IDLE TIMEOUT 2 ended a session stuck in a transaction after $ms ms"
  row3_gone() { [ "$(dq "SELECT COUNT(*) FROM test.kill_idle WHERE id = 3")" = 0 ]; }
  wait_until 5 row3_gone || fail "the stuck transaction's row is there: it was not rolled back"
  # WHERE ... WHEN IDLE.
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD open_sessions w 2
  out=$(kq "KILL PROXYSESSION WHERE user = 'app2' WHEN IDLE")
  assert_eq 2 "$(affected "$out")" "KILL WHERE ... WHEN IDLE: $out"
  wait_until 5 session_ended w1 || fail "w1 still answers"
  wait_until 5 session_ended w2 || fail "w2 still answers"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_ctl_kill_where() {
  kill_daemon kc
  [ -x "$CTL" ] || fail "$CTL is not built"
  open_sessions c 2
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD open_sessions d 1
  local out rc
  out=$("$CTL" -c "$CFG" kill --where "user = 'app'" --dry-run 2>&1)
  assert_contains "$out" "2 sessions would be killed (dry run: none was)" "dry run: $out"
  st_run c1 "query SELECT 'c1 alive'"
  assert_contains "$OUT" "c1 alive" "a dry run kills nothing"
  out=$("$CTL" -c "$CFG" kill --where "user = 'app' AND idle_s >= 0" 2>&1)
  rc=$?
  assert_eq 0 "$rc" "myrelayctl kill --where exit status: $out"
  assert_contains "$out" "2 sessions killed" "kill --where: $out"
  session_ended c1 || fail "c1 still answers"
  session_ended c2 || fail "c2 still answers"
  st_run d1 "query SELECT 'd1 alive'"
  assert_contains "$OUT" "d1 alive" "the other user's session"
  # A malformed condition: a usage error (1) saying what was expected.
  out=$("$CTL" -c "$CFG" kill --where "user == 'x'" 2>&1)
  rc=$?
  assert_eq 1 "$rc" "exit status of a malformed condition: $out"
  assert_contains "$out" "expected a quoted string after user" "the message"
  out=$("$CTL" -c "$CFG" kill 5 --where "user = 'x'" 2>&1)
  assert_eq 1 "$?" "an id and --where: $out"
  # --when-idle through the control pipe.
  out=$("$CTL" -c "$CFG" kill --where "user = 'app2'" --when-idle 2>&1)
  assert_contains "$out" "1 session asked to end when idle" "--when-idle: $out"
  wait_until 5 session_ended d1 || fail "d1 still answers after kill --when-idle"
}

# The kill log (SHOW PROXYKILLS, myrelayctl kills, the metrics, the log):
# who ended which session, why, what it ran and for how long.
test_kill_log() {
  kill_daemon kl client_idle_s=3
  [ -x "$CTL" ] || fail "$CTL is not built"
  local out row sleeper
  # A session killed by SQL while its statement runs.
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20) AS kill_log_marker" >sleep.out 2>&1 &
  sleeper=$!
  wait_until 10 running || fail "the statement never ran: $(krows "SHOW PROXYSESSION")"
  out=$(kq "KILL PROXYSESSION WHERE command = 'Query' AND user = 'app'")
  assert_eq 1 "$(affected "$out")" "the kill: $out"
  wait_pid_gone "$sleeper" 5 || fail "the killed client still waits"
  row=$(krows "SHOW PROXYKILLS LIMIT 1")
  echo "INFO: SHOW PROXYKILLS: $row"
  # time Id proxy_sessid User Tenant Host reason by by_cs_id by_pid statement statement_ms trans_ms backend
  assert_eq "app	app	kill	root@sys" "$(cut -f4,5,7,8 <<<"$row")" "who and why"
  assert_contains "$(cut -f11 <<<"$row")" "SELECT SLEEP(20) AS kill_log_marker" "the statement it ran"
  [ "$(cut -f12 <<<"$row")" -ge 1000 ] || fail "statement_ms: $(cut -f12 <<<"$row")"
  # The side connection's KILL, then its look at the process list.
  case "$(cut -f14 <<<"$row")" in
    "kill sent"|"confirmed stopped") ;;
    *) fail "the backend statement: $(cut -f14 <<<"$row")" ;;
  esac
  stopped() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f14 | grep -qx "confirmed stopped"; }
  wait_until 5 stopped || fail "not confirmed: $(krows "SHOW PROXYKILLS LIMIT 1")"
  # myrelayctl reads the same, out of process.
  out=$("$CTL" -c "$CFG" kills --json)
  assert_eq kill "$(jq -r '.kills[0].reason' <<<"$out")" "myrelayctl kills --json: $out"
  assert_eq "root@sys" "$(jq -r '.kills[0].by' <<<"$out")" "myrelayctl: who"
  assert_eq 1000 "$(jq -r '.kill_log_size' <<<"$out")" "the ring's size"
  # KILL QUERY by a client of its own user: recorded with its user.
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20) AS kill_query_marker" >sleep2.out 2>&1 &
  sleeper=$!
  wait_until 10 running || fail "the second statement never ran"
  local id
  id=$(krows "EXPLAIN KILL PROXYSESSION WHERE command = 'Query'" | cut -f2)
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "KILL QUERY $id" || fail "KILL QUERY $id"
  wait_pid_gone "$sleeper" 5 || fail "the statement was not stopped"
  row=$(krows "SHOW PROXYKILLS LIMIT 1")
  assert_eq "kill_query	app@app" "$(cut -f7,8 <<<"$row")" "KILL QUERY by app: $row"
  # A timeout: client_idle_s.
  st_open idle
  st_run idle "query SELECT 1"
  idle_logged() { krows "SHOW PROXYKILLS" | cut -f7,8 | grep -q "client_idle_timeout	timeouts.client_idle_s"; }
  wait_until 8 idle_logged || fail "no client_idle_timeout entry: $(krows "SHOW PROXYKILLS")"
  # Visibility: app sees its own sessions' entries, app2 none of them.
  assert_eq 3 "$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SHOW PROXYKILLS" | grep -c .)" "app's view"
  assert_eq 0 "$(cli "$AUX_PORT" app2 "$MR_APP2_PASSWORD" -N -B -e "SHOW PROXYKILLS" | grep -c .)" "app2's view"
  # Counters by reason, and a log line.
  out=$("$CTL" -c "$CFG" metrics)
  assert_contains "$out" 'myrelay_kills_by_reason_total{reason="kill"} 1' "metrics"
  assert_contains "$out" 'myrelay_kills_by_reason_total{reason="client_idle_timeout"} 1' "metrics"
  grep -q "kill log: cs_id=.* 'app@app' from 127.0.0.1:[0-9]*: kill by root@sys, statement running" "$AUX_LOG" ||
    fail "no log line: $(grep 'kill log' "$AUX_LOG")"
  # SHOW PROXYKILLS LIMIT, malformed.
  assert_eq 2 "$(krows "SHOW PROXYKILLS LIMIT 2" | grep -c .)" "LIMIT 2"
  assert_contains "$(kq "SHOW PROXYKILLS LIMIT x")" "ERROR 1064" "malformed LIMIT"
}

# Verified backend cleanup: a statement that cannot heed KILL QUERY (its
# thread is blocked writing a result the proxy does not read, because its
# client stopped reading) is ended by KILL CONNECTION after kill_escalate_ms;
# a SLEEP that heeds it is confirmed stopped.  The kill log says which.
test_kill_query_escalates() {
  kill_daemon ke timeouts.kill_escalate_ms=500 cluster.monitor="{ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: 1000 }"
  local out row id t0
  # Heeded: confirmed.
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20) AS heeds_kill" >sleep.out 2>&1 &
  local sleeper=$!
  wait_until 10 running || fail "SLEEP never ran"
  id=$(krows "EXPLAIN KILL PROXYSESSION WHERE command = 'Query'" | cut -f2)
  kq "KILL QUERY $id" >/dev/null
  wait_pid_gone "$sleeper" 5 || fail "SLEEP not stopped"
  confirmed() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f7,14 | grep -q "kill_query	confirmed stopped"; }
  wait_until 5 confirmed || fail "KILL QUERY of a SLEEP not confirmed: $(krows "SHOW PROXYKILLS LIMIT 1")"
  # Not heeded: a client that stops reading a ~100 MB result.
  /usr/bin/python3 "$MR_IT_DIR/../../scripts/lib/chaos_clients.py" stall --port "$AUX_PORT" --db test --password "$MR_APP_PASSWORD" \
    --sql "SELECT seq, REPEAT('x', 1000) FROM seq_1_to_100000 AS escalate_marker" --seconds 30 >stall.out 2>&1 &
  local staller=$!
  # Blocked: the client stopped reading, the proxy's buffers are full, and
  # the thread has been writing for a while.
  writing() {
    grep -q stalled stall.out &&
      dq "SELECT STATE FROM information_schema.PROCESSLIST WHERE INFO LIKE '%escalate_marker%' AND ID <> CONNECTION_ID() AND TIME >= 2" |
      grep -qi "writing to net"
  }
  wait_until 15 writing || fail "the big result never blocked ($(cat stall.out)): $(dq "SELECT ID, COMMAND, STATE, INFO FROM information_schema.PROCESSLIST" | cut -c1-150)"
  id=$(krows "EXPLAIN KILL PROXYSESSION WHERE command = 'Query'" | cut -f2)
  [ -n "$id" ] || fail "no session runs the big result"
  t0=$(now_ms)
  kq "KILL QUERY $id" >/dev/null
  escalated() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f7,14 | grep -q "kill_query	stopped by kill connection"; }
  wait_until 10 escalated || fail "not escalated: $(krows "SHOW PROXYKILLS LIMIT 1"); backend: $(dq "SELECT COMMAND, STATE FROM information_schema.PROCESSLIST WHERE INFO LIKE '%escalate_marker%' AND ID <> CONNECTION_ID()")"
  echo "INFO: a KILL QUERY not heeded became KILL CONNECTION; the kill log had it after $(($(now_ms) - t0)) ms (kill_escalate_ms 500)"
  gone() { [ -z "$(dq "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%escalate_marker%' AND ID <> CONNECTION_ID()")" ]; }
  wait_until 5 gone || fail "the backend thread is still there"
  grep -q "still runs its statement 500 ms after KILL QUERY: KILL CONNECTION" "$AUX_LOG" || fail "no log line about the escalation"
  # The monitor account of the harness lacks CONNECTION ADMIN: the side
  # connection said so once and did the job as the session's user.
  grep -q "the monitor account may not KILL other users' threads" "$AUX_LOG" ||
    fail "no fallback from the monitor account: $(grep -i monitor "$AUX_LOG" | tail -3)"
  kill "$staller" 2>/dev/null
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

# MariaDB's KILL [CONNECTION | QUERY] USER: anyone on their own user's
# sessions (never the caller's own), privileged tenants on anyone's.
test_kill_user() {
  kill_daemon ku
  open_sessions u 2
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD open_sessions v 1
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -vvv -e "KILL USER app" 2>&1)
  assert_eq 2 "$(affected "$out")" "KILL USER app by app: $out"
  session_ended u1 || fail "u1 still answers"
  session_ended u2 || fail "u2 still answers"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "KILL USER app2" 2>&1)
  assert_contains "$out" "ERROR 1095" "KILL USER of another user of the tenant"
  st_run v1 "query SELECT 'v1 alive'"
  assert_contains "$OUT" "v1 alive" "app2's session after app's refused KILL USER"
  out=$(kq "KILL CONNECTION USER 'app2'")
  assert_eq 1 "$(affected "$out")" "KILL CONNECTION USER 'app2' by root: $out"
  session_ended v1 || fail "v1 still answers"
  # KILL QUERY USER stops the statement, the session goes on.
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20) AS ku_marker; SELECT 'went on'" >sleep.out 2>&1 &
  local sleeper=$!
  wait_until 10 running || fail "SLEEP never ran"
  out=$(kq "KILL QUERY USER app")
  assert_eq 1 "$(affected "$out")" "KILL QUERY USER app: $out"
  wait_pid_gone "$sleeper" 10 || fail "the statement was not stopped"
  # The mariadb CLI goes on after an interrupted statement only with --force; what matters is the stop.
  assert_contains "$(krows "SHOW PROXYKILLS LIMIT 1" | cut -f7,8)" "kill_query	root@sys" "the kill log"
}

# The kill log records each kind of end with its who and why.
test_kill_log_kinds() {
  kill_daemon kk "app.timeouts={ statement_ms: 700, idle_in_transaction_s: 1 }"
  [ -x "$CTL" ] || fail "$CTL is not built"
  local out id
  # statement_ms: the statement stops, the session goes on.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(5) AS st_marker" 2>&1)
  assert_contains "$out" "ERROR 1969" "statement_ms"
  assert_contains "$(krows "SHOW PROXYKILLS LIMIT 1" | cut -f7,8,11)" \
    "statement_timeout	timeouts.statement_ms	SELECT SLEEP(5) AS st_marker" "statement_ms in the kill log"
  # idle_in_transaction_s: killed, the transaction's age recorded.
  st_open tx
  st_run tx "query BEGIN" "query SELECT 1"
  it_logged() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f7 | grep -qx idle_in_transaction_timeout; }
  wait_until 5 it_logged || fail "no idle_in_transaction_timeout: $(krows "SHOW PROXYKILLS")"
  [ "$(krows "SHOW PROXYKILLS LIMIT 1" | cut -f13)" -ge 900 ] || fail "trans_ms: $(krows "SHOW PROXYKILLS LIMIT 1")"
  # myrelayctl kill: who is myrelayctl, with its pid.
  st_open c
  st_run c "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  id=$(st_id_of "$OUT")
  "$CTL" -c "$CFG" kill "$id" >kill.out 2>&1 || fail "myrelayctl kill: $(cat kill.out)"
  out=$(krows "SHOW PROXYKILLS LIMIT 1")
  assert_eq "$id	kill	myrelayctl" "$(cut -f2,7,8 <<<"$out")" "myrelayctl kill in the kill log"
  [[ "$(cut -f10 <<<"$out")" =~ ^[0-9]+$ ]] || fail "no by_pid: $out"
  # WHEN IDLE, by SQL.
  st_open w
  st_run w "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  id=$(st_id_of "$OUT")
  kq "KILL PROXYSESSION $id WHEN IDLE" >/dev/null
  wi_logged() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f2,7,8 | grep -qx "$id	kill_when_idle	root@sys"; }
  wait_until 5 wi_logged || fail "no kill_when_idle: $(krows "SHOW PROXYKILLS LIMIT 1")"
  # A backend lost in the middle of a statement (as root: tenant app's
  # statement_ms would stop it first).
  cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SELECT SLEEP(20) AS lost_marker" >lost.out 2>&1 &
  local pid=$! bid
  wait_until 10 has_backend_thread lost_marker || fail "the statement never reached the backend"
  bid=$(backend_threads_running lost_marker)
  dq "KILL $bid"
  wait_pid_gone "$pid" 5 || fail "the client still waits"
  bl_logged() { krows "SHOW PROXYKILLS LIMIT 1" | cut -f7 | grep -qx backend_lost; }
  wait_until 5 bl_logged || fail "no backend_lost: $(krows "SHOW PROXYKILLS LIMIT 2")"
  # The drain at shutdown: in the log (the segment goes with the daemon).
  st_open s
  st_run s "query SELECT 1"
  myrelayd_stop "$AUX_PID" 10
  grep -q "kill log: cs_id=.* 'app@app' from 127.0.0.1:[0-9]*: shutdown by shutdown" "$AUX_LOG" ||
    fail "no shutdown line: $(grep 'kill log' "$AUX_LOG" | tail -3)"
}
