# Faults and bad input: connection limit, handshake timeout, a backend that is
# down or dies, a client that goes away mid-result, malformed packets.

test_too_many_connections() {
  need_proxy
  start_aux_daemon maxconn max_connections=2
  local i out
  # Two idle sessions, held open by FIFOs the test writes to.
  for i in 1 2; do
    mkfifo "in$i"
    cli "$AUX_PORT" app "$MR_APP_PASSWORD" -D test -N -B --unbuffered <"in$i" >"s$i.out" 2>&1 &
  done
  exec 7>in1 8>in2
  echo "SELECT 'ready1';" >&7
  echo "SELECT 'ready2';" >&8
  wait_until 10 grep -qs ready1 s1.out || fail "session 1 did not log in: $(cat s1.out)"
  wait_until 10 grep -qs ready2 s2.out || fail "session 2 did not log in: $(cat s2.out)"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "SELECT 1" 2>&1) && fail "a third session got in: $out"
  assert_eq "ERROR 1040 (08004): Too many connections" "$out" "third session"
  # The first two are unaffected.
  echo "SELECT 'still1';" >&7
  wait_until 10 grep -qs still1 s1.out || fail "session 1 broken after the refused one: $(cat s1.out)"
  # Once one leaves, there is room again.
  exec 7>&-
  wait_until 10 cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "SELECT 1" >/dev/null 2>&1 ||
    fail "no room after a session left: $(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -e "SELECT 1" 2>&1)"
  exec 8>&-
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

# Connects with bash's /dev/tcp, optionally sends bytes (printf format), and
# reads until the peer closes, for at most LIMIT seconds.  Prints
# "RC MILLISECONDS BYTES_RECEIVED" (RC 124: still open at the limit).
raw_session() {
  local port=$1 send=$2 limit=$3 t0 rc
  t0=$(now_ms)
  timeout "$limit" bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 3
    if [ -n "$2" ]; then sleep 0.3; printf "$2" >&3; fi
    exec cat <&3' _ "$port" "$send" >raw.bin 2>raw.err
  rc=$?
  echo "$rc $(($(now_ms) - t0)) $(stat -c %s raw.bin)"
}

test_handshake_timeout() {
  need_proxy
  start_aux_daemon hs handshake_ms=300
  local rc ms bytes
  # Sends nothing at all.
  read -r rc ms bytes < <(raw_session "$AUX_PORT" "" 10)
  [ "$rc" != 124 ] || fail "a silent client was still connected after 10 s"
  assert_eq 0 "$rc" "reading from the proxy ($(cat raw.err))"
  [ "$bytes" -gt 0 ] || fail "no greeting received"
  [ "$(od -An -tx1 -j4 -N1 raw.bin | tr -d ' ')" = 0a ] || fail "greeting is not protocol version 10"
  [ "$ms" -ge 250 ] || fail "closed after $ms ms, before handshake_ms (300)"
  [ "$ms" -lt 3000 ] || fail "closed only after $ms ms (handshake_ms 300)"
  echo "INFO: silent client closed after $ms ms (handshake_ms 300)"
  # Sends the header of a handshake response and stops.
  read -r rc ms bytes < <(raw_session "$AUX_PORT" '\x40\x00\x00\x01\x05\xa6' 10)
  [ "$rc" != 124 ] || fail "a client stuck in the middle of its handshake response was kept for 10 s"
  [ "$ms" -lt 3500 ] || fail "half a handshake response: closed only after $ms ms"
  # A real client is still fast enough.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1)
  assert_eq 1 "$out" "normal login with handshake_ms 300"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_backend_down_at_login() {
  need_proxy
  local closed out t0 ms i
  closed=$(free_port)
  start_aux_daemon down cluster="down:$closed" backend_connect_ms=1000
  t0=$(now_ms)
  out=$(cli "$AUX_PORT" 'app@app#down' "$MR_APP_PASSWORD" -e "SELECT 1" 2>&1) && fail "login to a dead backend succeeded"
  ms=$(($(now_ms) - t0))
  echo "INFO: login to a dead backend: $out ($ms ms)"
  case "$out" in
    ERROR*) ;;
    *) fail "no error message: [$out]" ;;
  esac
  assert_contains "$out" "127.0.0.1:$closed" "the error names the backend"
  [ "$ms" -lt 5000 ] || fail "the error took $ms ms"
  # The same daemon keeps serving the cluster that is up, also while logins to
  # the dead one keep failing.
  out=$(cli "$AUX_PORT" 'app@app#main' "$MR_APP_PASSWORD" -N -B -e "SELECT 'up'" 2>&1)
  assert_eq up "$out" "login to the cluster that is up"
  for i in $(seq 1 20); do
    cli "$AUX_PORT" 'app@app#down' "$MR_APP_PASSWORD" -e "SELECT 1" >/dev/null 2>&1 && fail "login $i to the dead backend succeeded"
  done
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 'still up'" 2>&1)
  assert_eq "still up" "$out" "default cluster after 20 failed logins"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_backend_dies_mid_query() {
  local tag="sleep_kill_$$" bid pid t0 ms rc out
  tcli -N -B -e "SELECT SLEEP(20) AS $tag" >a.out 2>&1 &
  pid=$!
  wait_until 10 has_backend_thread "$tag" || fail "the SLEEP never reached the backend"
  bid=$(backend_threads_running "$tag")
  t0=$(now_ms)
  dq "KILL $bid" || fail "KILL $bid failed"
  wait_pid_gone "$pid" 5 || fail "the client was still waiting 5 s after its backend connection was killed"
  ms=$(($(now_ms) - t0))
  wait "$pid"
  rc=$?
  [ "$rc" -ne 0 ] || fail "the client got no error: $(cat a.out)"
  grep -q '^ERROR' a.out || fail "no error message: $(cat a.out)"
  echo "INFO: client saw after $ms ms: $(grep -m1 "^ERROR" a.out)"
  out=$(tq "SELECT 'other session'" 2>&1)
  assert_eq "other session" "$out" "another session afterwards"
  target_alive || fail "the server under test died"
}

test_backend_dies_other_sessions_go_on() {
  # One session idle, another one's backend killed: the idle one still works.
  local tag="sleep_kill2_$$" bid pid out
  mkfifo idle.in
  tcli -N -B --unbuffered <idle.in >idle.out 2>&1 &
  exec 7>idle.in
  echo "SELECT 'idle ready';" >&7
  wait_until 10 grep -qs "idle ready" idle.out || fail "idle session did not start: $(cat idle.out)"
  tcli -N -B -e "SELECT SLEEP(20) AS $tag" >a.out 2>&1 &
  pid=$!
  wait_until 10 has_backend_thread "$tag" || fail "the SLEEP never reached the backend"
  bid=$(backend_threads_running "$tag")
  dq "KILL $bid"
  wait_pid_gone "$pid" 5 || fail "the client of the killed backend connection still waits"
  echo "SELECT 'idle still here';" >&7
  wait_until 10 grep -qs "idle still here" idle.out || fail "the idle session broke: $(cat idle.out)"
  exec 7>&-
}

test_client_disconnects_mid_result() {
  # The mariadb client keeps draining a result even when its stdout pipe is
  # gone (it ignores SIGPIPE), so "| head -c 1000" alone does not disconnect
  # it.  Here the reader takes 1000 bytes and stalls, the result backs up to
  # the backend ("Writing to net"), and the client is killed: its socket
  # closes in the middle of a 1.3 GB result.
  local tag="disc_$$" bid cpid rss0="" rss1="" t0 ms
  [ "$MR_MODE" = proxy ] && rss0=$(awk '/^VmRSS/ { print $2 }' /proc/"$MR_DAEMON_PID"/status)
  mkfifo rows.fifo
  # exec, so that $! is the client itself
  (exec mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$MR_PORT" -uapp -p"$MR_APP_PASSWORD" -D test \
    --quick -N -B -e "SELECT '$tag', a.*, b.seq FROM big a JOIN seq_1_to_50 b") >rows.fifo 2>client.err &
  cpid=$!
  { head -c 1000 >/dev/null; sleep 60; } <rows.fifo &
  wait_until 10 has_backend_thread "$tag" || fail "the query never reached the backend"
  bid=$(backend_threads_running "$tag")
  sleep 2
  [ "$MR_MODE" = proxy ] && rss1=$(awk '/^VmRSS/ { print $2 }' /proc/"$MR_DAEMON_PID"/status)
  pid_alive "$cpid" || fail "the client ended by itself: $(cat client.err)"
  backend_thread_gone "$bid" && fail "the backend query ended before the client was killed"
  kill -KILL "$cpid"
  t0=$(now_ms)
  wait_until 5 backend_thread_gone "$bid" ||
    fail "backend connection $bid still there 5 s after its client was killed: $(dq "SELECT ID, USER, COMMAND, TIME, STATE FROM information_schema.PROCESSLIST WHERE ID = $bid")"
  ms=$(($(now_ms) - t0))
  echo "INFO: backend connection gone $ms ms after the client was killed"
  [ -n "$rss0" ] && echo "INFO: myrelayd RSS before ${rss0} kB, while the client stalled ${rss1} kB"
  local out
  out=$(tq "SELECT 'next'" 2>&1)
  assert_eq next "$out" "a new session afterwards"
}

test_malformed_packets() {
  local rc ms bytes payload n=0
  # Handshake responses: garbage after a plausible header, too short, wrong
  # sequence id, empty.
  for payload in \
      '\x20\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' \
      '\x04\x00\x00\x01\x00\x00\x00\x00' \
      '\x24\x00\x00\x07\x0d\xa2\x0a\x00\x00\x00\x00\x01\x21\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00app\x00\x00' \
      '\x00\x00\x00\x01'; do
    n=$((n + 1))
    read -r rc ms bytes < <(raw_session "$MR_PORT" "$payload" 8)
    [ "$rc" != 124 ] || fail "malformed handshake response $n: connection still open after 8 s"
    [ "$bytes" -gt 0 ] || fail "malformed handshake response $n: not even a greeting ($(cat raw.err))"
    echo "INFO: malformed input $n: closed after $ms ms, $bytes bytes received"
  done
  # A header that announces a full 16 MiB packet, a little data, then hang-up.
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; sleep 0.3; printf "\xff\xff\xff\x01abcdef" >&3; sleep 0.3' _ "$MR_PORT"
  # Pure noise, many connections at once.
  for n in $(seq 1 20); do
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -c 3000 /dev/urandom >&3; sleep 0.2' _ "$MR_PORT" 2>/dev/null &
  done
  wait
  target_alive || fail "the server under test died"
  local out
  out=$(tq "SELECT 'fine'" 2>&1)
  assert_eq fine "$out" "a normal session afterwards"
}

test_client_idle_timeout() {
  # client_idle_s: an idle session is closed once it has been idle that
  # long; a session that keeps working (or runs a long statement) is not.
  need_proxy
  start_aux_daemon idle client_idle_s=2
  local t0 ms
  mkfifo busy.in idle.in
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B --unbuffered --force <idle.in >idle.out 2>&1 &
  exec 7>idle.in
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B --unbuffered --force <busy.in >busy.out 2>&1 &
  exec 8>busy.in
  echo "SELECT 'idle-ready';" >&7
  echo "SELECT 'busy-ready';" >&8
  wait_until 10 grep -q idle-ready idle.out || fail "idle session did not start: $(cat idle.out)"
  wait_until 10 grep -q busy-ready busy.out || fail "busy session did not start: $(cat busy.out)"
  t0=$(now_ms)
  # The busy one: a statement every second, then one running for 3 s.
  for i in 1 2 3; do
    sleep 1
    echo "SELECT 'tick$i';" >&8
  done
  echo "SELECT SLEEP(3), 'long-done';" >&8
  wait_until 10 grep -q long-done busy.out || fail "the long statement was cut: $(cat busy.out)"
  echo "SELECT 'busy-alive';" >&8
  wait_until 5 grep -q busy-alive busy.out || fail "a working session was closed as idle: $(cat busy.out)"
  # The idle one was closed after about 2 s.
  echo "SELECT 'idle-after';" >&7
  wait_until 5 grep -q 'ERROR 2013\|ERROR 2006' idle.out || fail "the idle session is still open: $(cat idle.out)"
  grep -qx idle-after idle.out && fail "the idle session answered after client_idle_s"
  grep -q 'idle for 2 s: closing' "$AUX_LOG" || fail "no log line about the idle close"
  ms=$(($(now_ms) - t0))
  echo "INFO: idle session closed, working session kept ($ms ms)"
  exec 7>&- 8>&-
}

# A backend that accepts the connection but never greets, and one that greets,
# reads the login and never answers: timeouts.backend_connect_ms covers the
# whole login, so the client gets ERROR 1429 instead of waiting forever.
test_backend_stalls_login() {
  need_proxy
  local silent stall t0 ms out mode port
  silent=$(free_port) || fail "no free port"
  python3 "$MR_IT_DIR/fake_backend.py" silent "$silent" >silent.out 2>&1 &
  stall=$(free_port) || fail "no free port"
  python3 "$MR_IT_DIR/fake_backend.py" stall "$stall" >stall.out 2>&1 &
  wait_until 10 grep -q ready silent.out || fail "fake backend did not start"
  wait_until 10 grep -q ready stall.out || fail "fake backend did not start"
  start_aux_daemon stalls cluster="silent:$silent" cluster="stall:$stall" backend_connect_ms=800
  for mode in silent stall; do
    t0=$(now_ms)
    out=$(timeout 20 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$AUX_PORT" -u"app@app#$mode" \
      -p"$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) && fail "$mode: login succeeded"
    ms=$(($(now_ms) - t0))
    echo "INFO: backend that is $mode at login: $out ($ms ms)"
    assert_contains "$out" "ERROR 1429" "$mode: the client gets ER_CONNECT_TO_FOREIGN_DATA_SOURCE"
    assert_contains "$out" "within 800 ms" "$mode: the error says which limit"
    [ "$ms" -lt 5000 ] || fail "$mode: the error took $ms ms with backend_connect_ms 800"
  done
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 'up'" 2>&1)
  assert_eq up "$out" "the cluster that answers still works"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

# A backend that vanishes without closing (the network to it cut) under an
# idle session: timeouts.backend_keepalive_s notices it, the server session
# goes, and the session goes on over a new connection at its next statement.
# The cut is a veth link into a network namespace of the test's own, with a
# relay in it (proxy -> 10.x.y.2 in the namespace -> 10.x.y.1 -> MariaDB).
KA_NS="" KA_VETH=""
_ka_cleanup() {
  [ -n "$KA_VETH" ] && ip link del "$KA_VETH" 2>/dev/null
  [ -n "$KA_NS" ] && ip netns del "$KA_NS" 2>/dev/null
  _mr_test_cleanup
}
test_backend_keepalive() {
  need_proxy
  command -v ip >/dev/null || skip "no ip command (iproute2)"
  [ "$(id -u)" = 0 ] || skip "network namespaces need root"
  local n=$((RANDOM % 200 + 20)) m=$((RANDOM % 250 + 2)) inner outer out cs t0 ms
  KA_NS="mrka$$" KA_VETH="mrka$$a"
  trap _ka_cleanup EXIT
  ip netns add "$KA_NS" 2>/dev/null || skip "cannot create a network namespace here"
  ip link add "$KA_VETH" type veth peer name "mrka$$b" || skip "no veth support"
  ip link set "mrka$$b" netns "$KA_NS" &&
    ip addr add "10.$n.$m.1/30" dev "$KA_VETH" && ip link set "$KA_VETH" up &&
    ip -n "$KA_NS" addr add "10.$n.$m.2/30" dev "mrka$$b" && ip -n "$KA_NS" link set "mrka$$b" up &&
    ip -n "$KA_NS" link set lo up || fail "namespace set-up failed"
  outer=$(free_port) inner=$(free_port)
  local relay=$MR_IT_DIR/../../scripts/lib/chaos_clients.py
  /usr/bin/python3 "$relay" relay --listen "10.$n.$m.1:$outer" --to "127.0.0.1:$MR_DB_PORT" >outer.out 2>&1 &
  ip netns exec "$KA_NS" /usr/bin/python3 "$relay" relay --listen "10.$n.$m.2:$inner" --to "10.$n.$m.1:$outer" >inner.out 2>&1 &
  wait_until 10 grep -q ready outer.out || fail "relay did not start: $(cat outer.out)"
  wait_until 10 grep -q ready inner.out || fail "relay in the namespace did not start: $(cat inner.out)"
  start_aux_daemon ka cluster="far:10.$n.$m.2:$inner" timeouts.backend_keepalive_s=2
  ST_PORT=$AUX_PORT ST_USER='app@app#far'
  st_open ka
  st_run ka "query SELECT CONNECTION_ID()"
  local conn1 conn2
  conn1=$(head -1 <<<"$OUT")
  [[ "$conn1" =~ ^[0-9]+$ ]] || fail "first statement over the relay: $OUT"
  st_run ka "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  cs=$(sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$OUT")
  ka_servers() { cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYSESSION ATTRIBUTE $cs LIKE 'svr_session_cnt'" | cut -f2; }
  ka_dropped() { [ "$(ka_servers)" = 0 ]; }
  assert_eq 1 "$(ka_servers)" "one server session before the cut"
  # The cut: the namespace's end goes down, so what the proxy sends is lost
  # on the way (its own end stays up: no local error tells it).
  ip -n "$KA_NS" link set "mrka$$b" down || fail "cannot take the link down"
  t0=$(now_ms)
  wait_until 20 ka_dropped ||
    fail "the server session behind a cut link was still there after 20 s with backend_keepalive_s 2"
  ms=$(($(now_ms) - t0))
  echo "INFO: a silent backend under an idle session noticed after $ms ms (backend_keepalive_s 2)"
  ip -n "$KA_NS" link set "mrka$$b" up || fail "cannot take the link up"
  st_run ka "query SELECT CONNECTION_ID()"
  conn2=$(head -1 <<<"$OUT")
  [[ "$conn2" =~ ^[0-9]+$ ]] || fail "the next statement after the link came back: $OUT"
  [ "$conn2" != "$conn1" ] || fail "still on backend connection $conn1"
  st_close ka
  pid_alive "$AUX_PID" || fail "myrelayd died"
}
