# Session control (DESIGN sections 2, 3, 5): SHOW PROXYSESSION, its ATTRIBUTE
# form, KILL PROXYSESSION, KILL [CONNECTION|QUERY], COM_PROCESS_KILL, with
# their visibility and privilege rules, across workers, under load.

MR_STORM=${MR_STORM:-$(dirname "$MR_CLIENT")/mr_storm}

# Runs SQL as root of the privileged tenant sys / as app / as app2.
# (Errors come alone, without the failing statement echoed before them.)
rq() { cli "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B --skip-print-query-on-error -e "$1"; }
aq() { cli "$MR_PORT" app "$MR_APP_PASSWORD" -N -B --skip-print-query-on-error -e "$1"; }

# A long-lived session driven through a FIFO: sess_open NAME USER PASSWORD
# starts it (its output in NAME.out), sess NAME SQL sends a statement,
# sess_wait NAME TEXT waits for output.  sess_id NAME prints its cs_id.
declare -A SESS_FD
sess_open() {
  local name=$1 user=$2 pass=$3 fd
  mkfifo "$name.in"
  cli "$MR_PORT" "$user" "$pass" -D test -N -B --unbuffered --force <"$name.in" >"$name.out" 2>&1 &
  exec {fd}>"$name.in"
  SESS_FD[$name]=$fd
  sess "$name" "SELECT 'ready-$name';"
  sess_wait "$name" "ready-$name" || fail "session $name did not start: $(cat "$name.out")"
}
sess() { echo "$2" >&"${SESS_FD[$1]}"; }
# For wait_until: FILE has at least N lines matching PATTERN (evaluated on each poll).
count_ge() { [ "$(grep -c -- "$2" "$1")" -ge "$3" ]; }
# For wait_until: COMMAND's output has exactly N lines.
lines_eq() { local n=$1; shift; [ "$("$@" | wc -l)" -eq "$n" ]; }
# For wait_until: the daemon has at most N open files.
fds_le() { [ "$(ls "/proc/$MR_DAEMON_PID/fd" | wc -l)" -le "$1" ]; }
sess_wait() { wait_until 10 grep -q -- "$2" "$1.out"; }
sess_close() { exec {SESS_FD[$1]}>&-; }
sess_id() {
  local tag="id-$RANDOM$RANDOM"
  sess "$1" "SELECT '$tag'; SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id';"
  sess_wait "$1" "$tag" || return 1
  wait_until 10 grep -q -- "^cs_id" "$1.out" || return 1
  grep "^cs_id" "$1.out" | tail -1 | cut -f2
}
# The backend connection id of a session (what CONNECTION_ID() returns).
sess_conn_id() {
  local tag="cid-$RANDOM$RANDOM"
  sess "$1" "SELECT '$tag', CONNECTION_ID();"
  sess_wait "$1" "$tag" || return 1
  grep -- "^$tag" "$1.out" | tail -1 | cut -f2
}

test_show_proxysession_columns() {
  need_proxy
  local out header row pid tid
  header=$(cli "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" -B -e "SHOW PROXYSESSION" | head -1)
  assert_eq "$(printf 'proxy_sessid\tId\tCluster\tTenant\tUser\tHost\tdb\ttrans_count\tsvr_session_count\tstate\ttid\tpid\tusing_ssl')" \
    "$header" "SHOW PROXYSESSION columns"
  row=$(cli "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SELECT 'x'; SHOW PROXYSESSION" | grep MCS_ACTIVE_READER)
  [ -n "$row" ] || fail "the caller does not see itself as MCS_ACTIVE_READER"
  IFS=$'\t' read -r -a f <<<"$row"
  assert_eq main "${f[2]}" "Cluster"
  assert_eq sys "${f[3]}" "Tenant"
  assert_eq root "${f[4]}" "User"
  assert_eq NULL "${f[6]}" "db without a default database"
  assert_eq 1 "${f[8]}" "svr_session_count"
  assert_eq "$MR_DAEMON_PID" "${f[11]}" "pid is the daemon's"
  [ -e "/proc/$MR_DAEMON_PID/task/${f[10]}" ] || fail "tid ${f[10]} is not a thread of the daemon"
  [ "${f[10]}" != "$MR_DAEMON_PID" ] || fail "tid is the main thread, not a worker"
  (( ${f[1]} >= 2147483648 )) || fail "Id ${f[1]} does not have bit 31 set"
  # The Id is the thread id of the handshake (mysql prints it as Connection id).
  out=$(mrc root@sys "$MR_ROOT_PASSWORD" ids 2>&1) || fail "mr_client ids: $out"
  # db shows the session's database; idle sessions are MCS_KEEP_ALIVE.
  sess_open idle app "$MR_APP_PASSWORD"
  local id
  id=$(sess_id idle) || fail "no cs_id"
  row=$(rq "SHOW PROXYSESSION" | awk -F'\t' -v id="$id" '$2 == id')
  IFS=$'\t' read -r -a f <<<"$row"
  assert_eq test "${f[6]}" "db of a session logged in with -D test"
  assert_eq MCS_KEEP_ALIVE "${f[9]}" "state of an idle session"
  assert_eq app "${f[3]}" "Tenant of a user without @tenant"
  sess_close idle
}

test_seed_transcript() {
  # The seed's transcript, with the real mariadb command line on a terminal:
  # a session kills itself by Id and by CONNECTION_ID(), gets 1317, and the
  # client reconnects on its own as it does against MariaDB.
  need_proxy
  command -v script >/dev/null || skip "script(1) from bsdutils is not installed"
  mkfifo tty.in
  script -qfec "mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P$MR_PORT -uroot@sys -p$MR_ROOT_PASSWORD" \
    tty.out <tty.in >/dev/null 2>&1 &
  exec 7>tty.in
  clean() { tr -d '\r' <tty.out | sed 's/\x1b[^m]*m//g; s/\x1b(B//g'; }
  wait_until 10 grep -q 'MariaDB \[' tty.out || fail "no prompt: $(clean)"
  echo "SHOW PROXYSESSION;" >&7
  wait_until 10 grep -q 'row in set' tty.out || fail "SHOW PROXYSESSION did not answer: $(clean)"
  local id conn n
  id=$(clean | grep MCS_ACTIVE_READER | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  [ -n "$id" ] || fail "no own row in: $(clean)"
  clean | grep -q "connection id is $id" || fail "the Id $id is not the connection id the client printed: $(clean | head -5)"
  echo "KILL PROXYSESSION $id;" >&7
  wait_until 10 grep -q 'ERROR 1317 (70100): Query execution was interrupted' tty.out ||
    fail "no 1317 after KILL PROXYSESSION own id: $(clean | tail -5)"
  echo "SHOW PROXYSESSION;" >&7
  wait_until 10 grep -q 'ERROR 2013' tty.out || fail "the killed connection was not lost: $(clean | tail -5)"
  echo "SHOW PROXYSESSION;" >&7
  wait_until 10 grep -q 'Trying to reconnect' tty.out || fail "the client did not reconnect: $(clean | tail -5)"
  wait_until 10 count_ge tty.out 'row in set' 2 || fail "no result after reconnecting: $(clean | tail -8)"
  n=$(clean | grep 'Connection id:' | tail -1 | awk '{print $3}')
  [ -n "$n" ] && [ "$n" != "$id" ] || fail "no new connection id after the reconnect: $(clean | tail -8)"
  clean | grep MCS_ACTIVE_READER | tail -1 | grep -q "| $n |" || fail "SHOW PROXYSESSION after the reconnect does not show Id $n"
  # Now by CONNECTION_ID(), the backend's id for the session.
  echo "SELECT CONNECTION_ID();" >&7
  wait_until 10 count_ge tty.out 'row in set' 3 || fail "SELECT CONNECTION_ID() did not answer"
  conn=$(clean | grep -A3 'CONNECTION_ID()' | grep -E '^\| +[0-9]+ \|$' | tail -1 | tr -d '| ')
  [ -n "$conn" ] && [ "$conn" -lt 2147483648 ] || fail "CONNECTION_ID() is not the backend's id: [$conn]"
  echo "KILL PROXYSESSION $conn;" >&7
  wait_until 10 count_ge tty.out 'ERROR 1317' 2 || fail "no 1317 after KILL PROXYSESSION CONNECTION_ID(): $(clean | tail -5)"
  echo "SELECT 'after';" >&7
  echo "SELECT 'again';" >&7
  wait_until 10 count_ge tty.out 'Trying to reconnect' 2 || fail "no second reconnect: $(clean | tail -8)"
  wait_until 10 grep -q '| again |' tty.out || fail "the statement after the reconnect did not run: $(clean | tail -8)"
  exec 7>&-
  echo "INFO: transcript reproduced (ids $id, then $n, killed by connection_id $conn)"
}

test_kill_errors() {
  need_proxy
  local out root_id app2_id
  out=$(rq "KILL PROXYSESSION 2147483000" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: 2147483000" "$out" "unknown cs_id"
  out=$(rq "KILL 999999" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: 999999" "$out" "unknown connection_id"
  out=$(aq "KILL PROXYSESSION 2147483650" 2>&1)
  assert_eq "ERROR 1227 (42000) at line 1: Access denied; you need (at least one of) the SUPER privilege(s) for this operation" \
    "$out" "KILL PROXYSESSION by an unprivileged user"
  # Malformed statements of ours: 1064, saying what was expected.
  local bad
  for bad in "KILL PROXYSESSION" "KILL PROXYSESSION abc" "SHOW PROXYSESSION something" \
    "KILL 1 2 3" "SHOW PROXYSESSION ATTRIBUTE LIKE"; do
    out=$(rq "$bad" 2>&1)
    assert_contains "$out" "ERROR 1064 (42000)" "$bad"
  done
  out=$(rq "KILL PROXYSESSION" 2>&1)
  assert_contains "$out" "expected a session id" "the message says what was expected"
  # Case, comments and a trailing ';' are fine.
  out=$(rq "/* hello */ show  ProxySession ; " 2>&1) || fail "lower case with a comment: $out"
  # Another user of the same tenant: visible, not ours.
  sess_open other app2 "$MR_APP2_PASSWORD"
  app2_id=$(sess_id other) || fail "no id"
  out=$(aq "KILL $app2_id" 2>&1)
  assert_eq "ERROR 1095 (HY000) at line 1: You are not owner of thread $app2_id" "$out" "KILL of another user's session"
  out=$(aq "KILL QUERY $app2_id" 2>&1)
  assert_eq "ERROR 1095 (HY000) at line 1: You are not owner of thread $app2_id" "$out" "KILL QUERY of another user's session"
  # Another tenant's session does not exist for an unprivileged user.
  sess_open rootsess root@sys "$MR_ROOT_PASSWORD"
  root_id=$(sess_id rootsess) || fail "no id"
  out=$(aq "KILL $root_id" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: $root_id" "$out" "KILL of another tenant's session"
  out=$(aq "SHOW PROXYSESSION ATTRIBUTE $root_id" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: $root_id" "$out" "ATTRIBUTE of another tenant's session"
  # An unknown ss_id of a live session.
  out=$(rq "KILL PROXYSESSION $app2_id 987654321" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: 987654321" "$out" "unknown ss_id"
  # Nothing was killed by all that.
  sess other "SELECT 'other-alive';"
  sess_wait other other-alive || fail "app2's session was hurt: $(cat other.out)"
  sess rootsess "SELECT 'root-alive';"
  sess_wait rootsess root-alive || fail "root's session was hurt: $(cat rootsess.out)"
  sess_close other
  sess_close rootsess
}

test_visibility() {
  need_proxy
  local app_id app2_id root_id out
  sess_open s_app app "$MR_APP_PASSWORD"
  sess_open s_app2 app2 "$MR_APP2_PASSWORD"
  sess_open s_root root@sys "$MR_ROOT_PASSWORD"
  app_id=$(sess_id s_app)
  app2_id=$(sess_id s_app2)
  root_id=$(sess_id s_root)
  # app sees its own sessions only.
  out=$(aq "SHOW PROXYSESSION" | cut -f2)
  grep -qx "$app_id" <<<"$out" || fail "app does not see its own session $app_id"
  grep -qx "$app2_id" <<<"$out" && fail "app sees app2's session"
  grep -qx "$root_id" <<<"$out" && fail "app sees root's session"
  [ -z "$(aq "SHOW PROXYSESSION" | awk -F'\t' '$5 != "app"')" ] || fail "app sees another user's sessions"
  # The privileged tenant sees everyone.
  out=$(rq "SHOW PROXYSESSION" | cut -f2)
  for id in "$app_id" "$app2_id" "$root_id"; do
    grep -qx "$id" <<<"$out" || fail "root does not see session $id"
  done
  # ATTRIBUTE: by cs_id and by connection_id give the same session.
  local conn a1 a2
  conn=$(sess_conn_id s_app)
  a1=$(rq "SHOW PROXYSESSION ATTRIBUTE $app_id LIKE 'proxy_sessid'")
  a2=$(rq "SHOW PROXYSESSION ATTRIBUTE $conn LIKE 'proxy_sessid'")
  [ -n "$a1" ] || fail "no proxy_sessid row"
  assert_eq "$a1" "$a2" "ATTRIBUTE by cs_id and by connection_id"
  out=$(rq "SHOW PROXYSESSION ATTRIBUTE $app_id LIKE 'server_sessid'" | cut -f2)
  assert_eq "$conn" "$out" "server_sessid is CONNECTION_ID()"
  out=$(rq "SHOW PROXYSESSION ATTRIBUTE $app_id" | cut -f1 | tr '\n' ' ')
  for a in proxy_sessid cs_id cluster tenant user host_ip host_port db total_trans_cnt svr_session_cnt active read_state tid pid ss_id server_ip server_port server_sessid state transact_count; do
    assert_contains " $out" " $a " "ATTRIBUTE rows"
  done
  out=$(aq "SHOW PROXYSESSION ATTRIBUTE $app2_id" 2>&1)
  assert_eq "ERROR 1094 (HY000) at line 1: Unknown thread id: $app2_id" "$out" "ATTRIBUTE of another user's session"
  # LIKE with _ and %.
  out=$(rq "SHOW PROXYSESSION ATTRIBUTE $app_id LIKE 'host\\_%'" | cut -f1 | tr '\n' ' ')
  assert_eq "host_ip host_port " "$out" "LIKE 'host\\_%'"
  # trans_count counts transactions.
  dq "CREATE TABLE IF NOT EXISTS test.t_session_tx (i INT)"
  sess s_app "BEGIN; INSERT INTO t_session_tx VALUES (1); COMMIT; BEGIN; ROLLBACK; SELECT 'tx-done';"
  sess_wait s_app tx-done || fail "transactions failed: $(cat s_app.out)"
  out=$(rq "SHOW PROXYSESSION" | awk -F'\t' -v id="$app_id" '$2 == id {print $8}')
  assert_eq 2 "$out" "trans_count after two transactions"
  sess_close s_app
  sess_close s_app2
  sess_close s_root
}

test_cross_worker_kill_and_by_connection_id() {
  need_proxy
  local i id conn tids killer_tid
  for i in 1 2 3 4; do sess_open "v$i" app "$MR_APP_PASSWORD"; done
  tids=$(rq "SHOW PROXYSESSION" | awk -F'\t' '$5 == "app" {print $11}' | sort -u | wc -l)
  [ "$tids" -ge 2 ] || fail "4 sessions all on one worker: cannot test cross-worker kills"
  # Kill v1 and v2 by cs_id, v3 by connection_id, from root sessions that
  # land on whichever worker.
  for i in 1 2; do
    id=$(sess_id "v$i")
    out=$(rq "KILL $id" 2>&1) || fail "KILL $id: $out"
  done
  conn=$(sess_conn_id v3)
  out=$(rq "KILL $conn" 2>&1) || fail "KILL by connection_id $conn: $out"
  for i in 1 2 3; do
    sess "v$i" "SELECT 'after-kill-$i';"
    wait_until 5 grep -q 'ERROR 2013\|ERROR 2006' "v$i.out" || fail "v$i still works after the kill: $(cat "v$i.out")"
  done
  sess v4 "SELECT 'v4-alive';"
  sess_wait v4 v4-alive || fail "the session nobody killed broke: $(cat v4.out)"
  for i in 1 2 3 4; do sess_close "v$i"; done
}

test_kill_session_running_sleep() {
  need_proxy
  local tag="ks_$$" pid bid id t0 ms
  tcli -N -B -e "SELECT SLEEP(30) AS $tag" >a.out 2>&1 &
  pid=$!
  wait_until 10 has_backend_thread "$tag" || fail "the SLEEP never reached the backend"
  bid=$(backend_threads_running "$tag")
  id=$(rq "SHOW PROXYSESSION" | awk -F'\t' '$5 == "app" && $10 == "MCS_ACTIVE_READER" {print $2}' | head -1)
  [ -n "$id" ] || fail "the sleeping session is not MCS_ACTIVE_READER"
  t0=$(now_ms)
  out=$(rq "KILL PROXYSESSION $id" 2>&1) || fail "KILL PROXYSESSION $id: $out"
  wait_until 1 backend_thread_gone "$bid" || fail "backend thread $bid still there 1 s after the kill"
  ms=$(($(now_ms) - t0))
  wait_pid_gone "$pid" 2 || fail "the client of the killed session still waits"
  echo "INFO: backend thread gone $ms ms after KILL PROXYSESSION"
}

test_kill_query() {
  need_proxy
  local tag="kq_$$" pid id t0 ms out
  sess_open q app "$MR_APP_PASSWORD"
  id=$(sess_id q)
  sess q "SELECT SLEEP(30) AS $tag;"
  wait_until 10 has_backend_thread "$tag" || fail "the SLEEP never reached the backend"
  t0=$(now_ms)
  out=$(rq "KILL QUERY $id" 2>&1) || fail "KILL QUERY $id: $out"
  # The interrupted SLEEP ends with the backend's answer (1317, or the result 1).
  wait_until 2 grep -q '^1$\|ERROR 1317' q.out || fail "SLEEP did not end within 2 s of KILL QUERY: $(cat q.out)"
  ms=$(($(now_ms) - t0))
  local errs
  errs=$(grep -c 'ERROR 1317' q.out)
  [ "$ms" -lt 1000 ] || fail "KILL QUERY took $ms ms"
  echo "INFO: SLEEP(30) ended $ms ms after KILL QUERY"
  # A statement that fails when interrupted gets the backend's error; the session goes on.
  sess q "SELECT MAX(MD5(seq)) AS ${tag}b FROM seq_1_to_100000000000;"
  wait_until 10 has_backend_thread "${tag}b" || fail "the long MAX(MD5()) never reached the backend"
  out=$(aq "KILL QUERY $id" 2>&1) || fail "KILL QUERY by the same user: $out"
  wait_until 5 count_ge q.out 'ERROR 1317' $((errs + 1)) || fail "no 1317 for the interrupted MAX(MD5()): $(cat q.out)"
  errs=$(grep -c 'ERROR 1317' q.out)
  sess q "SELECT 'q-alive';"
  sess_wait q q-alive || fail "the session did not go on after KILL QUERY: $(cat q.out)"
  # KILL QUERY of oneself interrupts the KILL itself and keeps the session.
  sess q "KILL QUERY $id;"
  wait_until 5 count_ge q.out 'ERROR 1317' $((errs + 1)) || fail "no 1317 for KILL QUERY of oneself: $(cat q.out)"
  sess q "SELECT 'q-still';"
  sess_wait q q-still || fail "KILL QUERY of oneself ended the session: $(cat q.out)"
  sess_close q
}

test_kill_server_session() {
  need_proxy
  local id ss1 conn1 ss2 conn2 out
  sess_open k app "$MR_APP_PASSWORD"
  id=$(sess_id k)
  ss1=$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'ss_id'" | cut -f2)
  conn1=$(sess_conn_id k)
  out=$(rq "KILL PROXYSESSION $id $ss1" 2>&1) || fail "KILL PROXYSESSION $id $ss1: $out"
  wait_until 2 backend_thread_gone "$conn1" || fail "backend connection $conn1 still there"
  # The client session lives on; its next statement gets a new server session.
  conn2=$(sess_conn_id k) || fail "the session did not go on: $(cat k.out)"
  [ -n "$conn2" ] && [ "$conn2" != "$conn1" ] || fail "no new server session: $conn1 -> $conn2"
  ss2=$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'ss_id'" | cut -f2)
  [ "$ss2" != "$ss1" ] || fail "same ss_id $ss1 after the kill"
  # The database carried over to the new server session.
  sess k "SELECT 'db-check', DATABASE();"
  wait_until 5 grep -q "^db-check	test" k.out || fail "database not carried over: $(cat k.out)"
  sess_close k
}

test_com_process_kill() {
  need_proxy
  [ -x "${MR_STORM:-}" ] || fail "mr_storm is not built"
  out=$("$MR_STORM" 127.0.0.1 "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" app "$MR_APP_PASSWORD" processkill 2>&1) ||
    fail "$out"
  echo "INFO: $out"
}

test_kill_storm() {
  # 200 sessions over the workers, 4 killers killing half of them while
  # sysbench runs through the proxy; then every slot is free again and the
  # daemon's open file count is back where it was.
  need_proxy
  [ -x "${MR_STORM:-}" ] || fail "mr_storm is not built"
  local fds0 fds1 sb out left
  fds0=$(ls "/proc/$MR_DAEMON_PID/fd" | wc -l)
  local sbargs=(--mysql-host=127.0.0.1 --mysql-user=app --mysql-password="$MR_APP_PASSWORD"
    --mysql-db=test --tables=1 --table-size=1000)
  dq "DROP TABLE IF EXISTS test.sbtest1"
  sysbench oltp_read_only "${sbargs[@]}" --mysql-port="$MR_DB_PORT" prepare >sbprep.out 2>&1 ||
    fail "sysbench prepare: $(tail -5 sbprep.out)"
  sysbench oltp_read_only "${sbargs[@]}" --mysql-port="$MR_PORT" --threads=4 --time=15 run >sb.out 2>&1 &
  sb=$!
  sleep 1
  out=$("$MR_STORM" 127.0.0.1 "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" app "$MR_APP_PASSWORD" storm 200 4 2>&1) ||
    fail "storm: $out"
  echo "INFO: $out"
  wait "$sb" || fail "sysbench failed during the storm: $(tail -20 sb.out)"
  grep -q 'ignored errors: *0 ' sb.out || fail "sysbench saw errors: $(grep -E 'errors|reconnects' sb.out)"
  dq "DROP TABLE IF EXISTS test.sbtest1"
  pid_alive "$MR_DAEMON_PID" || fail "myrelayd died"
  # Everyone left: only the checking session remains.
  wait_until 5 lines_eq 1 rq "SHOW PROXYSESSION" || fail "sessions left over: $(rq "SHOW PROXYSESSION")"
  wait_until 5 fds_le "$fds0" ||
    fail "open files: $fds0 before, $(ls "/proc/$MR_DAEMON_PID/fd" | wc -l) after"
}

test_control_pipe_garbage() {
  # Garbage written to a worker's control pipe is logged and dropped; the
  # worker goes on serving and acting on real requests.
  need_proxy
  local pipe out id
  pipe=$(ls "$MR_TMP"/run-main/*.worker0.ctl 2>/dev/null | head -1)
  [ -p "$pipe" ] || fail "no control pipe of worker 0 in $MR_TMP/run-main"
  head -c 5000 /dev/urandom >"$pipe"
  printf 'MCTL but not a record\n' >"$pipe"
  wait_until 5 grep -q 'garbage from its control pipe' "$MR_DAEMON_LOG" || fail "no log line about the garbage"
  out=$(aq "SELECT 'still serving'") || fail "the daemon stopped serving: $out"
  assert_eq "still serving" "$out" "query after the garbage"
  # A real kill still works on every worker.
  for i in 1 2 3 4; do sess_open "g$i" app "$MR_APP_PASSWORD"; done
  for i in 1 2 3 4; do
    id=$(sess_id "g$i")
    out=$(rq "KILL $id" 2>&1) || fail "KILL $id after the garbage: $out"
    sess "g$i" "SELECT 'after';"
    wait_until 5 grep -q 'ERROR 2013\|ERROR 2006' "g$i.out" || fail "session g$i not killed after the garbage"
  done
  pid_alive "$MR_DAEMON_PID" || fail "myrelayd died"
}

# A DBA maps a backend thread to its proxy and session: backend connections
# carry the connect attributes _proxy_id and _proxy_sessid, which MariaDB
# shows in performance_schema.session_connect_attrs (a mariadbd of this test,
# with performance_schema on).  A client's own _proxy_* attributes do not
# reach the backend.
test_backend_connect_attributes() {
  need_proxy
  local port out sessid
  # Global: the EXIT trap runs after the function's locals are gone.
  ATTRS_DB_DIR=$TT/db
  local dir=$ATTRS_DB_DIR
  port=$(free_port) || fail "no free port"
  trap 'mariadb_stop "$ATTRS_DB_DIR"; _mr_test_cleanup' EXIT
  mariadb_start "$dir" "$port" --performance-schema=ON >db.log 2>&1 || fail "MariaDB did not start: $(tail -3 db.log)"
  mariadb_root "$dir" -e "CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD'; CREATE DATABASE test;
    GRANT ALL PRIVILEGES ON test.* TO 'app'@'%'" || fail "set-up"
  start_aux_daemon attrs cluster="ps:$port" proxy_id=7
  # The session stays open while the backend's table is read (as root over
  # its socket).
  out=$(/usr/bin/python3 - "$AUX_PORT" "$MR_APP_PASSWORD" "$dir/mysqld.sock" <<'PY'
import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app@app#ps", password=sys.argv[2],
                    database="test", defer_connect=True)
c._connect_attrs["_proxy_sessid"] = "666"   # a client pretending to be another session
c.connect()
cur = c.cursor()
cur.execute("SELECT CONNECTION_ID()")
bid = cur.fetchone()[0]
cur.execute("SHOW PROXYSESSION ATTRIBUTE LIKE 'proxy_sessid'")
print("sessid", cur.fetchone()[1])
db = pymysql.connect(unix_socket=sys.argv[3], user="root", password="")
d = db.cursor()
d.execute("SELECT ATTR_NAME, ATTR_VALUE FROM performance_schema.session_connect_attrs "
          "WHERE PROCESSLIST_ID = %s AND ATTR_NAME LIKE '\\_proxy\\_%%' ORDER BY ATTR_NAME, ATTR_VALUE", (bid,))
for name, value in d.fetchall():
    print(name, value)
PY
) || fail "client: $out"
  sessid=$(sed -n 's/^sessid //p' <<<"$out")
  echo "INFO: the backend's attributes: $(grep -v '^sessid' <<<"$out" | tr '\n' ' ')"
  grep -qx "_proxy_id 7" <<<"$out" || fail "no _proxy_id 7: $out"
  grep -qx "_proxy_sessid $sessid" <<<"$out" || fail "no _proxy_sessid $sessid: $out"
  [ "$(grep -c '^_proxy_sessid ' <<<"$out")" = 1 ] || fail "the client's own _proxy_sessid reached the backend: $out"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}
