# Recovery under faults (the short versions of scripts/chaos): a backend
# killed -9 and restarted, a backend frozen (SIGSTOP/SIGCONT), a daemon out of
# descriptors (ulimit -n 256) under 1,000 connection attempts, and a burst of
# 3 x max_connections clients.  What is asserted is recovery (new sessions
# work again, held sessions go on, descriptors and session slots return to
# their baseline, no busy loop), not timings.  The destructive tests kill or
# freeze a mariadbd of their own, never the run's shared one.  The network
# partition fault needs network namespaces: it is in scripts/chaos only.
# shellcheck shell=bash

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
PY=/usr/bin/python3
CHAOS_CLIENTS=$MR_IT_DIR/../../scripts/lib/chaos_clients.py

# own_backend: a mariadbd of this test only (OWN_DIR, OWN_PORT) with app and
# test.t; stopped (and thawed first) when the test ends.
own_backend() {
  OWN_DIR=$TT/db
  OWN_PORT=$(free_port) || fail "no free port"
  mariadb_start "$OWN_DIR" "$OWN_PORT" >own-db.log 2>&1 || fail "own MariaDB did not start: $(tail -3 own-db.log)"
  trap 'own_db_pid_cont; mariadb_stop "$OWN_DIR"; _mr_test_cleanup' EXIT
  mariadb_root "$OWN_DIR" -e "CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD'; CREATE DATABASE test;
    GRANT ALL PRIVILEGES ON test.* TO 'app'@'%';
    CREATE TABLE test.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)" || fail "own MariaDB setup"
}
own_db_pid() { cat "$OWN_DIR/mysqld.pid" 2>/dev/null; }
own_db_pid_cont() { local p; p=$(own_db_pid); [ -n "$p" ] && kill -CONT "$p" 2>/dev/null; return 0; }

# A new session through the auxiliary daemon works.
aux_login_ok() { [ "$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B -e "SELECT 'up'" 2>/dev/null)" = up ]; }
no_sessions() { [ "$(slots "$TT/$AUX_NAME.yaml")" = 0 ]; }
fds() { ls "/proc/$1/fd" | wc -l; }
slots() { "$CTL" -c "$1" stats --json | jq -r .global.sessions_in_use; }
# back_to FDS SLOTS: the auxiliary daemon's descriptors and used slots are back there.
back_to() { [ "$(fds "$AUX_PID")" = "$1" ] && [ "$(slots "$TT/$AUX_NAME.yaml")" = "$2" ]; }
assert_baseline() {
  wait_until 15 back_to "$1" "$2" ||
    fail "$3: not back to baseline: fds $1 -> $(fds "$AUX_PID"), slots used $2 -> $(slots "$TT/$AUX_NAME.yaml"); sessions: $("$CTL" -c "$TT/$AUX_NAME.yaml" sessions 2>&1 | tail -n +2 | tr -s ' \n' ' ')"
}

# load_loop SECONDS OUT: new sessions that write and read, one after the
# other, for SECONDS; one line per session in OUT ("ok" or the error).
load_loop() {
  local end=$((SECONDS + $1)) out=$2 r
  while [ "$SECONDS" -lt "$end" ]; do
    r=$(timeout 10 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$AUX_PORT" -uapp -p"$MR_APP_PASSWORD" -D test \
      --connect-timeout=5 -N -B -e "INSERT INTO t (v) VALUES (1); SELECT 'ok'" 2>&1 | head -1)
    echo "${r:-timeout}" >>"$out"
    sleep 0.05
  done
}

test_backend_killed_then_restarted() {
  need_proxy
  need_client
  own_backend
  AUX_NAME=kill
  start_aux_daemon kill backend_port="$OWN_PORT" backend_connect_ms=1000
  aux_login_ok || fail "no session before the fault"
  local f0 s0 t0 ms l1 l2 pid
  wait_until 5 no_sessions
  f0=$(fds "$AUX_PID") s0=$(slots "$TT/kill.yaml")
  # A held, idle, restorable session, and two loops of new sessions.
  ST_PORT=$AUX_PORT st_open held
  st_run held "query SELECT 'before'"
  assert_eq $'before\nok' "$OUT" "held session before the fault"
  load_loop 12 l1.out & l1=$!
  load_loop 12 l2.out & l2=$!
  sleep 2
  pid=$(own_db_pid)
  { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
  sleep 1
  # Without the held session's FIFO: the server would keep it open.
  local hfd=${ST_FD[held]}
  mariadb_start "$OWN_DIR" "$OWN_PORT" >>own-db.log 2>&1 {hfd}>&- || fail "own MariaDB did not restart: $(tail -3 own-db.log)"
  t0=$(now_ms)
  wait_until 15 aux_login_ok || fail "no new session through the proxy 15 s after the backend was back: $(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e 'SELECT 1' 2>&1)"
  ms=$(($(now_ms) - t0))
  echo "INFO: new sessions work again $ms ms after the backend restarted"
  wait "$l1" "$l2"
  grep -q -v '^ok$' l1.out l2.out || fail "the loops saw no error at all: was the backend really killed?"
  echo "INFO: load loops: $(cat l1.out l2.out | sort | uniq -c | sort -rn | head -3 | tr -s ' \n' ' ')"
  [ "$(tail -1 l1.out)" = ok ] && [ "$(tail -1 l2.out)" = ok ] ||
    fail "the load loops did not recover: $(tail -1 l1.out) / $(tail -1 l2.out)"
  # The held session was idle when its backend died: it goes on.
  local i
  for i in 1 2; do
    st_run held "query SELECT 'after'"
    [ "$OUT" = $'after\nok' ] && break
  done
  assert_eq $'after\nok' "$OUT" "the held idle session after the restart (two tries)"
  st_close held
  pid_alive "$AUX_PID" || fail "myrelayd died"
  assert_baseline "$f0" "$s0" "after the kill"
}

test_backend_frozen_then_resumed() {
  need_proxy
  need_client
  own_backend
  AUX_NAME=stop
  start_aux_daemon stop backend_connect_ms=1000 backend_port="$OWN_PORT"
  aux_login_ok || fail "no session before the fault"
  local f0 s0 t0 ms out pid
  wait_until 5 no_sessions
  f0=$(fds "$AUX_PID") s0=$(slots "$TT/stop.yaml")
  ST_PORT=$AUX_PORT st_open held
  st_run held "query SELECT 'before'"
  assert_eq $'before\nok' "$OUT" "held session before the freeze"
  pid=$(own_db_pid)
  kill -STOP "$pid"
  t0=$(now_ms)
  # The held session's statement waits for the frozen server...
  printf '%s\n' "query SELECT 'during'" >&"${ST_FD[held]}"
  # ...and a login meanwhile is answered (an error), not left hanging.
  out=$(timeout 20 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$AUX_PORT" -uapp -p"$MR_APP_PASSWORD" \
    --connect-timeout=10 -N -B -e "SELECT 'frozen?'" 2>&1)
  ms=$(($(now_ms) - t0))
  echo "INFO: a login while the backend was frozen: [$out] after $ms ms"
  [ "$out" != "frozen?" ] || fail "a login succeeded while the backend was frozen: was it frozen?"
  [ "$ms" -lt 15000 ] || fail "a login during the freeze hung for $ms ms (backend_connect_ms 1000)"
  grep -qx during held.out && fail "the held session answered while its backend was frozen"
  while [ $(($(now_ms) - t0)) -lt 3000 ]; do sleep 0.1; done
  kill -CONT "$pid"
  t0=$(now_ms)
  wait_until 15 grep -qx during held.out || fail "the held session did not resume after SIGCONT: $(tail -3 held.out)"
  echo "INFO: the held session's statement finished $(($(now_ms) - t0)) ms after SIGCONT"
  wait_until 15 aux_login_ok || fail "no new session 15 s after SIGCONT"
  echo "INFO: new sessions work $(($(now_ms) - t0)) ms after SIGCONT"
  st_run held "query SELECT 'still'"
  assert_eq $'still\nok' "$OUT" "the held session after the freeze"
  st_close held
  pid_alive "$AUX_PID" || fail "myrelayd died"
  assert_baseline "$f0" "$s0" "after the freeze"
}

test_out_of_descriptors_no_busy_loop() {
  need_proxy
  AUX_NAME=emfile
  start_aux_daemon emfile max_connections=2000 handshake_ms=2000
  prlimit --pid "$AUX_PID" --nofile=256:256 || fail "prlimit failed"
  aux_login_ok || fail "no session before the fault"
  local f0 s0 c0 c1 t0 t1 out cpu pct
  wait_until 5 no_sessions
  f0=$(fds "$AUX_PID") s0=$(slots "$TT/emfile.yaml")
  c0=$(awk '{ print $14 + $15 }' "/proc/$AUX_PID/stat")
  t0=$(now_ms)
  out=$(timeout 60 "$PY" "$CHAOS_CLIENTS" storm --port "$AUX_PORT" -n 1000 --seconds 5) || fail "storm client failed"
  c1=$(awk '{ print $14 + $15 }' "/proc/$AUX_PID/stat")
  t1=$(now_ms)
  cpu=$(((c1 - c0) * 1000 / $(getconf CLK_TCK)))
  pct=$((cpu * 100 / (t1 - t0)))
  echo "INFO: 1000 attempts under ulimit -n 256: $out; daemon CPU $cpu ms over $((t1 - t0)) ms ($pct%)"
  grep -q 'accept failed: Too many open files' "$AUX_LOG" || fail "the daemon never ran out of descriptors: not a test of EMFILE"
  [ "$pct" -lt "${CHAOS_MAX_CPU_PCT:-50}" ] || fail "the daemon used $pct% CPU over the episode: busy loop on EMFILE?"
  wait_until 10 aux_login_ok || fail "no login 10 s after the attempts were closed: $(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e 'SELECT 1' 2>&1)"
  pid_alive "$AUX_PID" || fail "myrelayd died"
  assert_baseline "$f0" "$s0" "after the EMFILE episode"
}

test_burst_of_three_times_max_connections() {
  need_proxy
  "$PY" -c 'import pymysql' 2>/dev/null || fail "python3-pymysql is missing (scripts/lib/common.sh installs it)"
  AUX_NAME=burst
  start_aux_daemon burst max_connections=20
  aux_login_ok || fail "no session before the burst"
  local f0 s0 out
  wait_until 5 no_sessions
  f0=$(fds "$AUX_PID") s0=$(slots "$TT/burst.yaml")
  out=$(timeout 90 "$PY" "$CHAOS_CLIENTS" hold --port "$AUX_PORT" --db test -n 60 --seconds 2) || fail "hold client failed"
  echo "INFO: 60 clients at once, max_connections 20: $out"
  assert_eq "err_1040=40 in=20" "$out" "who got in"
  pid_alive "$AUX_PID" || fail "myrelayd died"
  assert_baseline "$f0" "$s0" "after the burst"
  aux_login_ok || fail "no login after the burst"
}
