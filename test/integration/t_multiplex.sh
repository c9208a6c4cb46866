# Multiplexing (issue 13): a client session holds a backend connection only
# while a statement runs, a transaction is open or its state cannot be
# restored; otherwise its connection goes back to its worker's shared set
# and the next statement of any session of the same user takes one from it,
# the session's own state replayed onto it.  cluster.max_server_connections
# caps the backend connections to each server for the whole proxy (split
# among the workers); a statement that finds none free within
# cluster.queue_timeout_ms gets ERROR 1040 (08004).
#
# Each test runs its own myrelayd (mux_daemon; MR_MUX_LOG_LEVEL=debug for
# its debug log, in $MR_TMP/daemon-NAME.log) and counts the backend
# threads of user app in MariaDB's process list: no other daemon's sessions
# of app run while a test does.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
PY=${MR_PYTHON:-/usr/bin/python3}
MUX="$MR_IT_DIR/mr_mux.py"

# mux_daemon NAME [write_config key=value...]: a daemon of its own with
# multiplexing on; scripted sessions (st_open) go to it.  The caller gives
# cluster.max_server_connections and the rest.
mux_daemon() {
  need_proxy
  [ -x "$CTL" ] || fail "$CTL is not built"
  command -v jq >/dev/null || fail "jq is not installed"
  local name=$1
  shift
  # MR_MUX_LOG_LEVEL=debug: the daemons log each session's connections.
  start_aux_daemon "$name" "$@" ${MR_MUX_LOG_LEVEL:+log_level=$MR_MUX_LOG_LEVEL}
  ST_PORT=$AUX_PORT
  CFG="$TT/$name.yaml"
}

# What the daemon shows of its sessions and servers, read by myrelayctl
# from shared memory: no login, so nothing that waits for a backend
# connection under the cap (a login through the proxy would).
ctl() { "$CTL" -c "$CFG" "$@"; }
# Backend threads of user app (and of app and app2) in MariaDB.
app_threads() { dq "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app'"; }
app_threads_are() { [ "$(app_threads)" = "$1" ]; }
app_threads_at_most() { [ "$(app_threads)" -le "$1" ]; }

# no_app_threads: before a test counts, nothing else of app is connected.
no_app_threads() {
  wait_until 10 app_threads_are 0 ||
    fail "backend threads of app left from before the test: $(dq "SELECT ID, HOST, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE USER = 'app'")"
}

# A scripted session's steps sent without waiting (st_send) and their output
# collected later (st_wait NAME [SECONDS]) into $OUT.
declare -A ST_TAG ST_BEFORE
st_send() {
  local name=$1
  shift
  ST_TAG[$name]="m$RANDOM$RANDOM"
  ST_BEFORE[$name]=$(wc -l <"$name.out")
  printf '%s\n' "$@" "mark ${ST_TAG[$name]}" >&"${ST_FD[$name]}"
}
st_done() { grep -q "^mark ${ST_TAG[$1]}\$" "$1.out"; }
st_wait() {
  local name=$1 tag=${ST_TAG[$1]}
  wait_until "${2:-30}" st_done "$name" || fail "session $name is stuck: $(tail -5 "$name.out")"
  OUT=$(tail -n +$((ST_BEFORE[$name] + 1)) "$name.out" | sed "/^mark $tag\$/,\$d")
}

# st_cs_id NAME: the session's cs_id (asked by the session itself).
st_cs_id() {
  st_run "$1" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$OUT"
}

# attr ID NAME: attribute NAME of session ID (SHOW PROXYSESSION ATTRIBUTE),
# NULL as "NULL"; svr_count ID: its svr_session_cnt.
attr() { ctl --json session "$1" | jq -r --arg n "$2" '.[$n] | if . == null then "NULL" else tostring end'; }
svr_count() { attr "$1" svr_session_cnt; }
svr_count_is() { [ "$(svr_count "$1")" = "$2" ]; }
# Sessions of app holding server sessions, as SHOW PROXYSESSION rows (JSON).
app_sessions_holding() { ctl --json sessions | jq -c '.sessions[] | select(.User == "app" and .svr_session_count != 0)'; }
# server_col COLUMN: COLUMN of SHOW PROXYCONGESTION's row of MariaDB.
server_col() { ctl --json servers | jq -r --arg s "127.0.0.1:$MR_DB_PORT" --arg c "$1" '.servers[] | select(.server == $s) | .[$c]'; }
server_col_is() { [ "$(server_col "$1")" = "$2" ]; }

# The sampler: backend threads of user app counted every 20 ms in the
# background until sampler_stop, which sets SAMPLED_MAX and SAMPLES.
sampler_start() {
  rm -f "$TT/sample" "$TT/sample.stop"
  "$PY" "$MUX" sample "$MR_DB_DIR/mysqld.sock" "${1:-app}" "$TT/sample" 20 600 >"$TT/sampler.log" 2>&1 &
  SAMPLER=$!
  sampled() { [ -s "$TT/sample" ]; }
  wait_until 10 sampled || fail "the process list sampler does not run: $(cat "$TT/sampler.log")"
}
sampler_stop() {
  touch "$TT/sample.stop"
  wait_pid_gone "$SAMPLER" 5 || fail "the sampler does not stop"
  wait "$SAMPLER" 2>/dev/null || fail "the sampler failed: $(cat "$TT/sampler.log")"
  SAMPLED_MAX=$(sed -n 's/.*max=\([0-9]*\).*/\1/p' "$TT/sample")
  SAMPLES=$(sed -n 's/.*samples=\([0-9]*\).*/\1/p' "$TT/sample")
  [ -n "$SAMPLED_MAX" ] && [ "$SAMPLES" -gt 0 ] || fail "no samples: $(cat "$TT/sample" "$TT/sampler.log")"
}

backend_logins() { dq "SHOW GLOBAL STATUS LIKE 'Connections'" | cut -f2; }

# ---------------------------------------------------------------- load

# 500 sessions held open at once through 8 backend connections (2 workers,
# 4 each): reads, their own INSERTs, a committed and a rolled back
# transaction, USE and SET SESSION, each checked, and their rows exact at the
# end; never more than 8 backend threads of app.
test_mux_500_sessions_through_8_connections() {
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  [ "$(ulimit -n)" -ge 1200 ] || skip "open files limited to $(ulimit -n)"
  mux_daemon mux500 workers=2 max_connections=2000 cluster.multiplexing=on \
    cluster.max_server_connections=8 cluster.queue_timeout_ms=20000
  dq "DROP TABLE IF EXISTS test.mux_load; CREATE TABLE test.mux_load (client INT, it INT, kind INT, v INT,
      PRIMARY KEY (client, it, kind)) ENGINE=InnoDB" || fail "cannot create test.mux_load"
  no_app_threads
  local logins0 out rc
  logins0=$(backend_logins)
  sampler_start app
  out=$(timeout 160 "$PY" "$MUX" load "$AUX_PORT" "$MR_APP_PASSWORD" 0 500 20 140 2>&1)
  rc=$?
  sampler_stop
  echo "INFO: $(head -1 <<<"$out")"
  echo "INFO: at most $SAMPLED_MAX backend threads of app in $SAMPLES samples; $(($(backend_logins) - logins0)) backend logins in all"
  [ "$rc" = 0 ] || fail "the load failed (status $rc): $(head -6 <<<"$out" | tr '\n' ' ')"
  [ "$SAMPLED_MAX" -le 8 ] || fail "$SAMPLED_MAX backend threads of app, over max_server_connections 8"
  [ "$SAMPLED_MAX" -ge 1 ] || fail "the sampler never saw a backend thread of app"
  assert_eq "$(printf '20000\t120000\t0')" "$(dq "SELECT COUNT(*), SUM(v), SUM(kind = 2) FROM test.mux_load")" \
    "rows, their sum and rolled back rows of all 500 clients"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
  dq "DROP TABLE test.mux_load"
}

# 300 logins at once, each with one statement: never more than the cap.
test_mux_login_burst_keeps_the_cap() {
  mux_daemon muxburst workers=2 max_connections=2000 cluster.multiplexing=on cluster.max_server_connections=8
  no_app_threads
  local out rc
  sampler_start app
  out=$(timeout 120 "$PY" "$MUX" logins "$AUX_PORT" app "$MR_APP_PASSWORD" 300 100 2>&1)
  rc=$?
  sampler_stop
  echo "INFO: $(head -1 <<<"$out"); at most $SAMPLED_MAX backend threads of app in $SAMPLES samples"
  [ "$rc" = 0 ] || fail "the logins failed (status $rc): $(head -6 <<<"$out" | tr '\n' ' ')"
  [ "$SAMPLED_MAX" -le 8 ] || fail "$SAMPLED_MAX backend threads of app during the burst, over max_server_connections 8"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
}

# ---------------------------------------------------------------- prepared statements

# Four sessions with prepared statements (binary protocol) run them at the
# same time through 2 connections of one worker, so that executions land on
# connections the statement was not prepared on; every 10 rounds the idle
# shared connections are killed on the backend, so the statements must be
# prepared again on new ones.  A statement prepared once keeps working.
# ps_moves same|own: the sessions prepare the same texts (as the copies of
# one application do; the backend statements are shared) or each its own.
ps_moves() {
  local texts=$1 tag=""
  need_client
  mux_daemon muxps workers=1 cluster.multiplexing=on cluster.max_server_connections=2 cluster.queue_timeout_ms=10000
  dq "DROP TABLE IF EXISTS test.mux_ps; CREATE TABLE test.mux_ps (s INT, v INT) ENGINE=InnoDB" || fail "create test.mux_ps"
  no_app_threads
  local i r id ids=() conns
  for i in 1 2 3 4; do
    [ "$texts" = own ] && tag=" AS p$i"
    st_open "p$i"
    st_run "p$i" "prepare add SELECT ? + ?$tag, CONCAT(?, '-', ?)" \
      "prepare ins INSERT INTO mux_ps (s, v) VALUES (?, ?)" \
      "prepare sum SELECT COUNT(*), SUM(v)$tag FROM mux_ps WHERE s = ?" \
      "prepare once SELECT 'once', ? * 2$tag"
    assert_eq "prepared add params=4"$'\n'"prepared ins params=2"$'\n'"prepared sum params=1"$'\n'"prepared once params=1" \
      "$OUT" "p$i prepares"
    ids+=("$(st_cs_id "p$i")")
  done
  for ((r = 1; r <= 30; r++)); do
    for i in 1 2 3 4; do
      st_send "p$i" "bind add $r $i p$i r$r" "exec add" "bind ins $i $r" "exec ins" "bind once $((r * i))" "exec once" \
        "query SELECT CONNECTION_ID()"
    done
    for i in 1 2 3 4; do
      st_wait "p$i"
      assert_contains "$OUT" "$((r + i))|p$i-r$r"$'\n'"ok affected=" "p$i round $r: add"
      assert_contains "$OUT" "bound ins"$'\n'"ok affected=1"$'\n' "p$i round $r: ins"
      assert_contains "$OUT" "once|$((2 * r * i))"$'\n'"ok affected=" "p$i round $r: once"
      grep -q '^error' <<<"$OUT" && fail "p$i round $r: $OUT"
      conns+=" $(tail -2 <<<"$OUT" | head -1)"
    done
    if [ $((r % 10)) = 0 ]; then
      # Every idle shared connection killed: the next executions meet new ones.
      for id in $(dq "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app' AND COMMAND = 'Sleep'"); do
        dq "KILL $id" 2>/dev/null
        wait_until 10 backend_thread_gone "$id" || fail "backend thread $id did not go"
      done
    fi
  done
  for i in 1 2 3 4; do
    st_run "p$i" "bind sum $i" "exec sum"
    assert_contains "$OUT" "30|465"$'\n'"ok" "p$i: its 30 rows, through its statement prepared before every move"
  done
  echo "INFO: backend threads the sessions ran on: $(tr ' ' '\n' <<<"$conns" | sort -un | grep -c .)"
  [ "$(tr ' ' '\n' <<<"$conns" | sort -un | grep -c .)" -ge 3 ] ||
    fail "the sessions ran on fewer than 3 backend threads in all, in spite of 3 rounds of kills: $conns"
  local moves
  for i in 0 1 2 3; do
    moves=$(attr "${ids[$i]}" server_session_moves)
    # At least after each of the 3 rounds of kills it ran on another connection.
    [[ "$moves" =~ ^[0-9]+$ ]] && [ "$moves" -ge 3 ] ||
      fail "p$((i + 1)) (cs_id ${ids[$i]}): server_session_moves [$moves] after 3 rounds of kills of its connections"
  done
  echo "INFO: server_session_moves of p4: $moves; prepared statements on the backend: $(dq "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'" | cut -f2)"
  for i in 1 2 3 4; do st_close "p$i"; done
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
  dq "DROP TABLE test.mux_ps"
}
test_mux_prepared_statements_move() { ps_moves same; }
test_mux_prepared_statements_move_own_texts() { ps_moves own; }

# ---------------------------------------------------------------- state

STATE="query SELECT @@sql_mode, @@time_zone, @@lc_time_names, @@character_set_client, @@collation_connection, \
@@autocommit, IFNULL(DATABASE(), 'none'), @@sql_select_limit"

# One backend connection (cap 1, one worker) shared by A and B: each sees
# exactly its own state, the same as a twin session connected directly to
# MariaDB with the same SETs, while CONNECTION_ID() shows that they run on
# the same backend thread.  autocommit=0 and a write open a transaction that
# pins A; B's statement waits for A's COMMIT.
test_mux_state_isolation() {
  need_client
  mux_daemon muxiso workers=1 cluster.multiplexing=on cluster.max_server_connections=1 cluster.queue_timeout_ms=10000
  dq "DROP TABLE IF EXISTS test.mux_iso; CREATE TABLE test.mux_iso (i INT) ENGINE=InnoDB" || fail "create test.mux_iso"
  no_app_threads
  st_open a
  st_open b
  ST_PORT=$MR_DB_PORT st_open da
  ST_PORT=$MR_DB_PORT st_open db
  local defaults r ca cb want ida
  st_run db "$STATE"
  defaults=$OUT
  assert_contains "$defaults" "|test|" "B's twin: database test"
  # A sets all it can; B nothing.
  local sets=("query SET SESSION sql_mode = 'ANSI', time_zone = '+03:00'" "query SET lc_time_names = 'de_DE'"
    "query SET NAMES latin1" "query USE test2" "query SET SESSION sql_select_limit = 7")
  st_run a "${sets[@]}"
  st_run da "${sets[@]}"
  for ((r = 1; r <= 10; r++)); do
    if [ "$r" -ge 6 ]; then
      # From round 6 B has state of its own too, changed each round.
      st_run b "query SET SESSION time_zone = '-0$((r - 5)):00', sql_mode = 'TRADITIONAL'"
      st_run db "query SET SESSION time_zone = '-0$((r - 5)):00', sql_mode = 'TRADITIONAL'"
    fi
    st_run b "$STATE" "query SELECT CONNECTION_ID()"
    cb=$(sed -n 3p <<<"$OUT")
    want=$(st_run db "$STATE"; echo "$OUT")
    assert_eq "$want" "$(sed -n 1,2p <<<"$OUT")" "round $r: B's state"
    [ "$r" -ge 6 ] || assert_eq "$defaults" "$(sed -n 1,2p <<<"$OUT")" "round $r: B sees the server's defaults"
    if [ $((r % 2)) = 0 ]; then
      st_run a "query SET SESSION time_zone = '+0$r:00'"
      st_run da "query SET SESSION time_zone = '+0$r:00'"
    fi
    st_run a "$STATE" "query SELECT CONNECTION_ID()"
    ca=$(sed -n 3p <<<"$OUT")
    want=$(st_run da "$STATE"; echo "$OUT")
    assert_eq "$want" "$(sed -n 1,2p <<<"$OUT")" "round $r: A's state"
    assert_eq "$cb" "$ca" "round $r: A and B on the one backend connection (cap 1)"
  done
  ida=$(st_cs_id a)
  # autocommit=0, then a write: a transaction, which pins A.
  st_run a "query SET autocommit = 0" "query INSERT INTO test.mux_iso VALUES (1)"
  assert_eq "ok"$'\n'"ok" "$OUT" "A: autocommit=0 and an INSERT"
  assert_eq 1 "$(svr_count "$ida")" "svr_session_count of A inside its transaction"
  assert_contains "$(attr "$ida" not_restorable_because)" "transaction" "A's not_restorable_because"
  # B needs the only connection: it waits for A's COMMIT.
  st_send b "query SELECT COUNT(*) FROM test.mux_iso"
  wait_until 5 server_col_is waiting 1 || fail "SHOW PROXYCONGESTION: waiting [$(server_col waiting)] while B waits for A's connection"
  assert_eq 1 "$(server_col in_use)" "SHOW PROXYCONGESTION in_use while A's transaction holds the only connection"
  st_done b && fail "B ran while A's transaction held the only connection: $(tail -3 b.out)"
  st_run a "query COMMIT"
  st_wait b 10
  assert_eq "1"$'\n'"ok" "$OUT" "B after A's COMMIT sees A's row"
  wait_until 5 svr_count_is "$ida" 0 || fail "A still holds a server session after COMMIT: $(svr_count "$ida")"
  st_run a "query SELECT @@autocommit"
  assert_eq "0"$'\n'"ok" "$OUT" "A's autocommit=0 after it moved"
  st_run a "query COMMIT" "query SET autocommit = 1"
  for s in a b da db; do st_close "$s"; done
  dq "DROP TABLE test.mux_iso"
}

# 40 PyMySQL sessions in 4 threads through 4 connections (2 workers): each
# compared with a twin connected directly to MariaDB after random SETs of
# its state; half never set anything.
test_mux_state_twins() {
  mux_daemon muxtwins workers=2 cluster.multiplexing=on cluster.max_server_connections=4 cluster.queue_timeout_ms=10000
  local out rc moved
  out=$(timeout 150 "$PY" "$MUX" twins "$AUX_PORT" "$MR_DB_PORT" "$MR_APP_PASSWORD" 4 10 1500 7 2>&1)
  rc=$?
  echo "INFO: $(head -1 <<<"$out")"
  [ "$rc" = 0 ] || fail "status $rc: $(head -4 <<<"$out" | tr '\n' ' ')"
  moved=$(sed -n 's/.*sessions_on_several_backends=\([0-9]*\).*/\1/p' <<<"$out")
  [ "${moved:-0}" -ge 10 ] || fail "only [$moved] of 40 sessions ran on more than one backend thread: $out"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
}

# ---------------------------------------------------------------- pinning

# A temporary table pins its session to its connection: it keeps it while
# idle (svr_session_count 1, and ATTRIBUTE says why), uses its table across
# statements, and the others share what is left; COM_RESET_CONNECTION lets
# the connection go.
test_mux_temporary_table_pins() {
  need_client
  mux_daemon muxtmp workers=1 cluster.multiplexing=on cluster.max_server_connections=2 cluster.queue_timeout_ms=10000
  no_app_threads
  local id tid i c
  st_open t
  st_run t "query CREATE TEMPORARY TABLE mux_tt (i INT)" "query INSERT INTO mux_tt VALUES (1), (2)" \
    "query SELECT CONNECTION_ID()"
  tid=$(sed -n 3p <<<"$OUT")
  [[ "$tid" =~ ^[0-9]+$ ]] || fail "temporary table session: $OUT"
  id=$(st_cs_id t)
  assert_eq 1 "$(svr_count "$id")" "svr_session_count of the idle session with a temporary table"
  assert_contains "$(attr "$id" not_restorable_because)" "temporary tables" "not_restorable_because"
  assert_contains "$(attr "$id" pinned_because)" "temporary tables" "pinned_because"
  case "$(attr "$id" multiplexed)" in 1 | true) ;; *) fail "ATTRIBUTE multiplexed: [$(attr "$id" multiplexed)]" ;; esac
  # Four others at once share the other connection, never the pinned one.
  for i in 1 2 3 4; do
    st_open "o$i"
  done
  for c in 1 2 3; do
    for i in 1 2 3 4; do st_send "o$i" "query SELECT CONNECTION_ID(), COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'mux_tt'"; done
    for i in 1 2 3 4; do
      st_wait "o$i"
      [[ "$OUT" =~ ^([0-9]+)\|0$'\n'ok$ ]] || fail "o$i round $c: $OUT"
      [ "${BASH_REMATCH[1]}" != "$tid" ] || fail "o$i ran on backend thread $tid, pinned by the temporary table's session"
    done
  done
  st_run t "query SELECT COUNT(*), CONNECTION_ID() FROM mux_tt"
  assert_eq "2|$tid"$'\n'"ok" "$OUT" "the temporary table, on the same backend thread"
  st_run t "query DROP TEMPORARY TABLE mux_tt"
  echo "INFO: after DROP TEMPORARY TABLE: svr_session_count $(svr_count "$id"), not_restorable_because [$(attr "$id" not_restorable_because)]"
  st_run t "reset"
  assert_eq ok "$OUT" "COM_RESET_CONNECTION"
  wait_until 5 svr_count_is "$id" 0 || fail "svr_session_count $(svr_count "$id") after COM_RESET_CONNECTION"
  assert_eq true "$(attr "$id" restorable)" "restorable after COM_RESET_CONNECTION"
  st_run t "query SELECT 'released'"
  assert_eq "released"$'\n'"ok" "$OUT" "after the reset"
  for i in 1 2 3 4; do st_close "o$i"; done
  st_close t
}

# Idle multiplexed sessions hold no backend connection: 20 sessions that
# each ran a statement show svr_session_count 0, and MariaDB sees at most
# the cap of threads of app.
test_mux_idle_sessions_hold_nothing() {
  need_client
  mux_daemon muxidle workers=2 cluster.multiplexing=on cluster.max_server_connections=8
  no_app_threads
  local i id
  for i in $(seq 20); do
    st_open "s$i"
    st_send "s$i" "query SELECT CONNECTION_ID()"
  done
  for i in $(seq 20); do
    st_wait "s$i"
    [[ "$OUT" =~ ^[0-9]+$'\n'ok$ ]] || fail "s$i: $OUT"
  done
  all_released() { [ -z "$(app_sessions_holding)" ]; }
  wait_until 5 all_released || fail "idle sessions holding server sessions: $(app_sessions_holding | head -3)"
  assert_eq 20 "$(ctl --json sessions | jq '[.sessions[] | select(.User == "app")] | length')" "sessions of app listed"
  app_threads_at_most 8 || fail "$(app_threads) backend threads of app for 20 idle sessions, cap 8"
  echo "INFO: 20 idle sessions, $(app_threads) backend threads of app"
  assert_eq "0 $(app_threads) 0" "$(server_col in_use) $(server_col shared_idle) $(server_col waiting)" \
    "SHOW PROXYCONGESTION in_use, shared_idle (= MariaDB's threads of app) and waiting, all idle"
  # The same through the proxy, as root@sys (its own login takes a
  # connection of root's under the cap, which has room).
  local out
  out=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYSESSION" 2>&1) || fail "SHOW PROXYSESSION as root@sys: $out"
  assert_eq "20 0" "$(awk -F'\t' '$5 == "app" { n++; if ($9 != 0) held++ } END { print n + 0, held + 0 }' <<<"$out")" \
    "SHOW PROXYSESSION as root@sys: sessions of app, and how many hold a server session"
  out=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -B -e "SHOW PROXYCONGESTION" 2>&1) || fail "SHOW PROXYCONGESTION: $out"
  assert_contains "$(head -1 <<<"$out")" "$(printf 'server_sessions\tin_use\tshared_idle\twaiting')" "SHOW PROXYCONGESTION's columns"
  id=$(st_cs_id s1)
  case "$(attr "$id" multiplexed)" in 1 | true) ;; *) fail "ATTRIBUTE multiplexed of s1: [$(attr "$id" multiplexed)]" ;; esac
  assert_eq "" "$(attr "$id" not_restorable_because)" "not_restorable_because of an idle session"
  for i in $(seq 20); do st_close "s$i"; done
}

# A tenant's multiplexing: key wins over its cluster's, both ways.
test_mux_tenant_override() {
  need_client
  local id
  mux_daemon muxoff workers=1 cluster.multiplexing=on cluster.max_server_connections=4 app.multiplexing=off
  st_open off
  st_run off "query SELECT 1"
  id=$(st_cs_id off)
  assert_eq 1 "$(svr_count "$id")" "tenant multiplexing off under a cluster with it on: svr_session_count while idle"
  case "$(attr "$id" multiplexed)" in 0 | false) ;; *) fail "ATTRIBUTE multiplexed with the tenant's off: [$(attr "$id" multiplexed)]" ;; esac
  st_close off
  mux_daemon muxon workers=1 cluster.max_server_connections=4 app.multiplexing=on
  st_open on
  st_run on "query SELECT 1"
  id=$(st_cs_id on)
  wait_until 5 svr_count_is "$id" 0 ||
    fail "tenant multiplexing on under a cluster without it: svr_session_count $(svr_count "$id") while idle"
  case "$(attr "$id" multiplexed)" in 1 | true) ;; *) fail "ATTRIBUTE multiplexed with the tenant's on: [$(attr "$id" multiplexed)]" ;; esac
  st_close on
}

# ---------------------------------------------------------------- queue

# Cap 1 on one worker: A's transaction holds the only connection, so B's
# statement gets ERROR 1040 (08004) after queue_timeout_ms, naming the server
# and the timeout; B's session goes on once A commits.
test_mux_queue_timeout() {
  need_client
  mux_daemon muxq workers=1 cluster.multiplexing=on cluster.max_server_connections=1 cluster.queue_timeout_ms=1500
  dq "DROP TABLE IF EXISTS test.mux_q; CREATE TABLE test.mux_q (i INT) ENGINE=InnoDB" || fail "create test.mux_q"
  st_open a
  st_open b
  st_run b "query SELECT 'b in'"
  assert_eq "b in"$'\n'"ok" "$OUT" "B logged in and ran"
  st_run a "query START TRANSACTION" "query INSERT INTO mux_q VALUES (1)"
  assert_eq "ok"$'\n'"ok" "$OUT" "A's transaction"
  local t0 ms
  t0=$(now_ms)
  st_send b "query SELECT 'b waits'"
  wait_until 1 server_col_is waiting 1 || fail "SHOW PROXYCONGESTION: waiting [$(server_col waiting)] while B waits"
  assert_eq "1 0" "$(server_col in_use) $(server_col shared_idle)" "SHOW PROXYCONGESTION in_use and shared_idle while A holds the only connection"
  st_wait b 10
  ms=$(($(now_ms) - t0))
  echo "INFO: B's answer after $ms ms: $OUT"
  assert_contains "$OUT" "error 1040 08004" "B's statement while A holds the only connection"
  assert_contains "$OUT" "1500" "the error names the timeout"
  local err=$OUT
  [ "$ms" -ge 1400 ] && [ "$ms" -le 5000 ] || fail "1040 after $ms ms, queue_timeout_ms 1500"
  assert_eq 0 "$(server_col waiting)" "SHOW PROXYCONGESTION waiting after the timeout"
  st_run a "query COMMIT"
  st_run b "query SELECT 'b after', COUNT(*) FROM test.mux_q"
  assert_eq "b after|1"$'\n'"ok" "$OUT" "B's session after A committed"
  st_close a
  st_close b
  assert_contains "$err" "127.0.0.1:$MR_DB_PORT" "the error names the server"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
  dq "DROP TABLE test.mux_q"
}

# ---------------------------------------------------------------- kills

# KILL QUERY of a multiplexed session stops its statement only: another
# session's SLEEP(3) running at the same time on the same worker finishes
# with 0.
test_mux_kill_query_stops_only_its_statement() {
  need_client
  mux_daemon muxkq workers=1 cluster.multiplexing=on cluster.max_server_connections=2
  st_open a
  st_open b
  st_open k
  local ida t0 ms
  ida=$(st_cs_id a)
  st_run b "query SELECT 1"
  st_run k "query SELECT 1"
  st_send a "query SELECT SLEEP(30) AS mux_kq_a"
  st_send b "query SELECT SLEEP(3) AS mux_kq_b"
  wait_until 5 has_backend_thread "mux_kq_a" || fail "A's SLEEP does not run on the backend"
  wait_until 5 has_backend_thread "mux_kq_b" || fail "B's SLEEP does not run on the backend"
  # From a third session of the user, logged in before: both connections
  # under the cap run the SLEEPs (a new login would wait for one).
  t0=$(now_ms)
  st_run k "query KILL QUERY $ida"
  assert_eq ok "$OUT" "KILL QUERY $ida from another session of app"
  st_wait a 10
  ms=$(($(now_ms) - t0))
  echo "INFO: A's killed SLEEP(30) answered after $ms ms: $(tr '\n' ' ' <<<"$OUT")"
  # What MariaDB answers itself when KILL QUERY interrupts a SLEEP.
  assert_eq "error 1317 70100 Query execution was interrupted" "$OUT" "A's statement after KILL QUERY"
  [ "$ms" -lt 5000 ] || fail "A's statement ended $ms ms after KILL QUERY"
  st_wait b 10
  assert_eq "0"$'\n'"ok" "$OUT" "B's SLEEP(3), not interrupted"
  st_run a "query SELECT 'a after'"
  assert_eq "a after"$'\n'"ok" "$OUT" "A's session goes on"
  st_close a
  st_close b
  st_close k
}

# A shared idle connection killed on the backend is replaced: the next
# statement runs without an error, on another backend thread, with the
# session's state.
test_mux_killed_shared_connection_replaced() {
  need_client
  mux_daemon muxdead workers=1 cluster.multiplexing=on cluster.max_server_connections=2
  no_app_threads
  local id c1 round tid
  st_open s
  st_run s "query SET SESSION time_zone = '+04:00'" "query SELECT CONNECTION_ID()"
  c1=$(sed -n 2p <<<"$OUT")
  id=$(st_cs_id s)
  wait_until 5 svr_count_is "$id" 0 || fail "s holds a server session while idle: $(svr_count "$id")"
  for round in 1 2; do
    for tid in $(dq "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app'"); do
      dq "KILL $tid"
      wait_until 10 backend_thread_gone "$tid" || fail "backend thread $tid still there"
    done
    st_run s "query SELECT 'works', @@time_zone, CONNECTION_ID()"
    [[ "$OUT" =~ ^works\|\+04:00\|([0-9]+)$'\n'ok$ ]] || fail "round $round: the statement after the kill: [$OUT]"
    [ "${BASH_REMATCH[1]}" != "$c1" ] || fail "round $round: ran on the killed backend thread $c1"
    c1=${BASH_REMATCH[1]}
    st_run s "query SELECT 'again'"
    assert_eq "again"$'\n'"ok" "$OUT" "round $round: the next statement"
  done
  st_close s
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
}

# ---------------------------------------------------------------- idle timeout

# timeouts.server_idle_s: shared connections unused that long are closed;
# the sessions go on, on new ones.
test_mux_server_idle_timeout() {
  need_client
  mux_daemon muxsidle workers=2 cluster.multiplexing=on cluster.max_server_connections=8 timeouts.server_idle_s=2
  no_app_threads
  local i t0 ms
  for i in 1 2 3 4; do st_open "s$i"; done
  for i in 1 2 3 4; do st_send "s$i" "query SELECT SLEEP(0.3)"; done
  for i in 1 2 3 4; do st_wait "s$i"; assert_eq "0"$'\n'"ok" "$OUT" "s$i"; done
  t0=$(now_ms)
  [ "$(app_threads)" -ge 1 ] || fail "no backend thread of app right after the statements"
  wait_until 15 app_threads_are 0 || fail "$(app_threads) backend threads of app still there 15 s after their last use (server_idle_s 2)"
  ms=$(($(now_ms) - t0))
  echo "INFO: the shared connections were closed after $ms ms idle"
  [ "$ms" -ge 1000 ] || fail "the shared connections closed after $ms ms, before server_idle_s 2"
  for i in 1 2 3 4; do
    st_run "s$i" "query SELECT 'after idle'"
    assert_eq "after idle"$'\n'"ok" "$OUT" "s$i after its connection idled out"
  done
  for i in 1 2 3 4; do st_close "s$i"; done
}

# The cap counts every user's connections: with one connection, idle and
# shared for app, a session of app2 still gets one (within the queue
# timeout), and app after it again.
test_mux_other_user_gets_a_connection() {
  need_client
  mux_daemon muxusers workers=1 cluster.multiplexing=on cluster.max_server_connections=1 cluster.queue_timeout_ms=3000
  st_open a
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD st_open b
  local round
  for round in 1 2 3; do
    st_run a "query SELECT CURRENT_USER()"
    assert_eq "app@%"$'\n'"ok" "$OUT" "round $round: app"
    st_run b "query SELECT CURRENT_USER()"
    assert_eq "app2@%"$'\n'"ok" "$OUT" "round $round: app2 after app's connection went idle"
  done
  [ "$(dq "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN ('app', 'app2')")" -le 1 ] ||
    fail "more than one backend thread of app and app2 with max_server_connections 1"
  st_close a
  st_close b
}

# Each kind of state that cannot be replayed pins its session (idle with
# svr_session_count 1, ATTRIBUTE naming the reason) to its connection, which
# no other session gets; COM_RESET_CONNECTION releases it.
test_mux_unrestorable_state_pins() {
  need_client
  mux_daemon muxpin workers=1 cluster.multiplexing=on cluster.max_server_connections=2 cluster.queue_timeout_ms=10000
  dq "CREATE TABLE IF NOT EXISTS test.mux_pin (id INT PRIMARY KEY) ENGINE=InnoDB" || fail "create test.mux_pin"
  local what reason id conn n=0 c o
  pin_case() {
    what=$1 reason=$2
    shift 2
    n=$((n + 1)) c=c$n o=o$n
    st_open $c
    st_run $c "$@" "query SELECT CONNECTION_ID()"
    grep -q '^error' <<<"$OUT" && fail "$what: $OUT"
    conn=$(tail -2 <<<"$OUT" | head -1)
    id=$(st_cs_id $c)
    assert_eq 1 "$(svr_count "$id")" "$what: svr_session_count while idle"
    assert_contains "$(attr "$id" pinned_because)" "$reason" "$what: pinned_because"
    # Another session meanwhile never runs on the pinned connection.
    st_open $o
    st_run $o "query SELECT CONNECTION_ID()" "query SELECT CONNECTION_ID()"
    grep -qx "$conn" <<<"$OUT" && fail "$what: another session ran on the pinned backend thread $conn"
    st_run $c "query SELECT CONNECTION_ID()"
    assert_eq "$conn"$'\n'"ok" "$OUT" "$what: the pinned session stays on its backend thread"
    st_run $c "reset"
    assert_eq ok "$OUT" "$what: COM_RESET_CONNECTION"
    wait_until 5 svr_count_is "$id" 0 || fail "$what: svr_session_count $(svr_count "$id") after COM_RESET_CONNECTION"
    st_close $c
    st_close $o
  }
  pin_case "SET @a" "user variables" "query SET @a = 1"
  pin_case "SELECT INTO @a" "user variables" "query SELECT 1 INTO @a"
  pin_case "GET_LOCK" "GET_LOCK" "query SELECT GET_LOCK('mux_lock', 1)"
  pin_case "LOCK TABLES" "LOCK TABLES" "query LOCK TABLES mux_pin READ"
  pin_case "SQL PREPARE" "SQL PREPARE" "query PREPARE sp FROM 'SELECT 1'"
  pin_case "open cursor" "open cursor" "prepare cur SELECT id FROM big WHERE id < 100" "cursor cur"
  pin_case "temporary table" "temporary tables" "query CREATE TEMPORARY TABLE mux_tt2 (i INT)"
  pin_case "transaction" "open transaction" "query START TRANSACTION" "query INSERT INTO mux_pin VALUES (1)"
  pin_case "SET TRANSACTION" "pending SET TRANSACTION" "query SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"
  pin_case "SET timestamp" "session-only variables" "query SET timestamp = 1000000000"
  [ -z "$(dq "SELECT id FROM test.mux_pin")" ] || fail "the transaction ended by the reset was committed"
  dq "DROP TABLE test.mux_pin"
}

# max_server_connections is split among the workers: 3 over 2 workers is 2
# for the first and 1 for the second.  Sessions of each worker open
# transactions until one gets ERROR 1040.
test_mux_cap_split_among_workers() {
  need_client
  mux_daemon muxsplit workers=2 cluster.multiplexing=on cluster.max_server_connections=3 cluster.queue_timeout_ms=1000
  dq "DROP TABLE IF EXISTS test.mux_split; CREATE TABLE test.mux_split (i INT) ENGINE=InnoDB" || fail "create test.mux_split"
  no_app_threads
  local i w id first="" second="" n
  declare -A on_worker
  for i in $(seq 10); do
    st_open "s$i"
    id=$(st_cs_id "s$i")
    [[ "$id" =~ ^[0-9]+$ ]] || fail "s$i has no cs_id: $id; its output: $(tail -3 "s$i.out" | tr '\n' ' ')"
    w=$(attr "$id" worker)
    on_worker[$w]+=" s$i"
  done
  for w in $(printf '%s\n' "${!on_worker[@]}" | sort -n); do
    if [ -z "$first" ]; then first=$w; else second=$w; fi
  done
  [ -n "$second" ] || fail "10 sessions all on worker $first"
  [ "$(wc -w <<<"${on_worker[$first]}")" -ge 3 ] && [ "$(wc -w <<<"${on_worker[$second]}")" -ge 2 ] ||
    skip "sessions by worker: ${on_worker[*]}"
  # worker FIRST: 2 transactions, the third waits and fails
  pin_worker() { # pin_worker WORKER EXPECTED_CONNECTIONS
    local s k=0
    for s in ${on_worker[$1]}; do
      k=$((k + 1))
      st_run "$s" "query START TRANSACTION" "query INSERT INTO test.mux_split VALUES ($k)"
      if [ "$k" -le "$2" ]; then
        assert_eq "ok"$'\n'"ok" "$OUT" "worker $1, transaction $k of $2"
      else
        assert_contains "$OUT" "error 1040 08004" "worker $1, transaction $k beyond its $2 connections"
        break
      fi
    done
  }
  pin_worker "$first" 2
  pin_worker "$second" 1
  assert_eq 3 "$(app_threads)" "backend threads of app with both workers' connections in transactions"
  for i in $(seq 10); do st_run "s$i" "query ROLLBACK"; done
  for i in $(seq 10); do st_close "s$i"; done
  dq "DROP TABLE test.mux_split"
}

# Sessions preparing the same text share the backend statement on a shared
# connection (one connection here): each one's executions without new
# bindings (parameter types not sent again) still run with its own types,
# though the other session bound other types there in between.
test_mux_shared_statement_parameter_types() {
  need_client
  mux_daemon muxtypes workers=1 cluster.multiplexing=on cluster.max_server_connections=1
  st_open q1
  st_open q2
  # ? + 1: its column's type comes with the execution (BIGINT for an
  # integer), not with the prepare.
  local sql="prepare c SELECT CONCAT(?, ':', ?), ? + 1, CONNECTION_ID()" c1 r
  st_run q1 "$sql" "bind c 12 34 5" "exec c"
  assert_contains "$OUT" "12:34|6|" "q1, integers"
  c1=$(sed -n 's/^12:34|6|//p' <<<"$OUT")
  # q3 binds what q1 bound, just after it: the columns' types are those
  # q1's execution had (a server caching metadata need not send them again).
  st_open q3
  st_run q3 "$sql" "bind c 1 2 3" "exec c"
  assert_contains "$OUT" "1:2|4|$c1"$'\n' "q3, integers as q1's, on the same backend thread"
  st_close q3
  st_run q2 "$sql" "bind c ab cd 7" "exec c"
  assert_contains "$OUT" "ab:cd|8|$c1"$'\n' "q2, strings, on the same backend thread"
  for r in 1 2 3; do
    st_run q1 "exec c"
    assert_eq "12:34|6|$c1" "$(sed -n 1p <<<"$OUT")" "round $r: q1 again without binding"
    st_run q2 "exec c"
    assert_eq "ab:cd|8|$c1" "$(sed -n 1p <<<"$OUT")" "round $r: q2 again without binding"
  done
  # The connection killed: q1 prepares its statement again on a new one,
  # and q2 finds it there by its text.
  local tid
  for tid in $(dq "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app'"); do
    dq "KILL $tid"
    wait_until 10 backend_thread_gone "$tid" || fail "backend thread $tid still there"
  done
  st_run q1 "exec c"
  [[ "$(sed -n 1p <<<"$OUT")" =~ ^12:34\|6\|([0-9]+)$ ]] || fail "q1 on a new connection: $OUT"
  c1=${BASH_REMATCH[1]}
  for r in 1 2; do
    # Round 2: bound again, the client sends its types itself.
    if [ "$r" = 1 ]; then st_run q2 "exec c"; else st_run q2 "bind c ab cd 7" "exec c"; OUT=$(sed 1d <<<"$OUT"); fi
    assert_eq "ab:cd|8|$c1" "$(sed -n 1p <<<"$OUT")" "round $r on the new connection: q2, with q1's backend statement"
    st_run q1 "exec c"
    assert_eq "12:34|6|$c1" "$(sed -n 1p <<<"$OUT")" "round $r on the new connection: q1"
  done
  st_run q1 "bind c 5 six 1" "exec c" "close c"
  assert_contains "$OUT" "5:six|2|$c1" "q1 rebound, an integer and a string"
  st_run q2 "exec c"
  assert_eq "ab:cd|8|$c1" "$(sed -n 1p <<<"$OUT")" "q2 after q1 closed its statement"
  st_close q1
  st_close q2
}

# Two sessions prepare the same text on the one shared connection, then
# both execute it: each gets its own right result.  Columns whose type
# comes with the execution (? + ?, ?: DOUBLE and NULL type when prepared,
# BIGINT when executed with integers) must be decoded with the execution's
# types by both clients.
test_mux_same_text_prepared_by_two_sessions() {
  need_client
  mux_daemon muxsame workers=1 cluster.multiplexing=on cluster.max_server_connections=1
  local sql binds want k=0
  while IFS='#' read -r sql binds want; do
    k=$((k + 1))
    st_open "a$k"
    st_open "b$k"
    st_run "a$k" "prepare s $sql"
    st_run "b$k" "prepare s $sql"
    st_run "a$k" "bind s $binds" "exec s"
    assert_eq "$want" "$(sed -n 2p <<<"$OUT")" "[$sql] A"
    st_run "b$k" "bind s $binds" "exec s"
    assert_eq "$want" "$(sed -n 2p <<<"$OUT")" "[$sql] B, after A executed the same text"
    st_run "b$k" "exec s"
    assert_eq "$want" "$(sed -n 1p <<<"$OUT")" "[$sql] B again"
    st_run "a$k" "exec s"
    assert_eq "$want" "$(sed -n 1p <<<"$OUT")" "[$sql] A again"
    st_close "a$k"
    st_close "b$k"
  done <<'LIST'
SELECT 'x', ?#5#x|5
SELECT ? + ?#1 2#3
SELECT CONCAT(?, ':', ?), ? + 1#1 2 3#1:2|4
LIST
}
