# Hostile input and exhausted resources (issue 17's defects): each test
# reproduces what a hostile run found and checks that the proxy now holds.

RAW="python3 $MR_IT_DIR/mr_raw.py"
CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}

# Seconds of CPU (user + system, in clock ticks) process PID has used.
cpu_ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# Sessions of a daemon, by myrelayctl (from another process, as an operator).
ctl_sessions() { "$CTL" -c "$TT/$1.yaml" sessions --json 2>/dev/null | jq '.sessions | length'; }

# A COM_CHANGE_USER naming another plugin, the answer to the auth switch and
# 2 MiB more, then the client closes: the session used to stay forever (in
# CLOSE-WAIT, deaf to client_idle_s), holding a slot.
test_hostile_change_user_pipelined_then_close() {
  need_proxy
  command -v jq >/dev/null || fail "jq is not installed"
  start_aux_daemon cuclose client_idle_s=5
  local out
  out=$($RAW changeuser 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" app2 "$MR_APP2_PASSWORD" 2 2>&1) ||
    fail "mr_raw changeuser: $out"
  no_session() { [ "$(ctl_sessions cuclose)" = 0 ]; }
  wait_until 10 no_session || fail "the session is still there: $("$CTL" -c "$TT/cuclose.yaml" sessions)"
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -e "SELECT 'alive'" | grep -q alive || fail "the proxy does not answer"
}

# Two tenants on one backend account (explicitly allowed): every form of KILL
# and every process list that would reach the other tenant through the
# backend is answered by the proxy or refused; the victim runs on untouched.
test_hostile_shared_account_cannot_reach_other_tenant() {
  need_proxy
  need_client
  start_aux_daemon shared proxy.allow_shared_backend_accounts=true "tenant=other:app:$MR_APP_PASSWORD"
  grep -q "user 'app' is in tenants 'app' and 'other'" "$AUX_LOG" || fail "no warning about the shared account in the log"
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 'victim', SLEEP(6.25)" >victim.out 2>&1 &
  local vpid=$! id out big
  wait_until 10 has_backend_thread "SLEEP(6.25)" || fail "the victim's statement did not start"
  id=$(backend_threads_running "SLEEP(6.25)" | head -1)
  attack() { cli "$AUX_PORT" "app@other" "$MR_APP_PASSWORD" -N -B -e "$1" 2>&1; }
  out=$(attack "/*!KILL QUERY $id*/")
  assert_contains "$out" "ERROR 1094" "/*!KILL QUERY n*/ of the other tenant's backend thread"
  out=$(attack "/*!50000 KILL $id */")
  assert_contains "$out" "ERROR 1094" "/*!50000 KILL n*/"
  out=$(attack "/*M!KILL $id*/")
  assert_contains "$out" "ERROR 1094" "/*M!KILL n*/"
  # One COM_QUERY with two statements (the mariadb client would split them).
  out=$("$MR_CLIENT" 127.0.0.1 "$AUX_PORT" "app@other" "$MR_APP_PASSWORD" test query "SELECT 1; KILL $id" 2>&1)
  assert_contains "$out" "1235" "SELECT 1; KILL n in one COM_QUERY"
  out=$(attack "PREPARE s FROM 'KILL $id'")
  assert_contains "$out" "ERROR 1235" "PREPARE s FROM 'KILL n'"
  out=$(attack "EXECUTE IMMEDIATE 'KILL QUERY $id'")
  assert_contains "$out" "ERROR 1235" "EXECUTE IMMEDIATE 'KILL QUERY n'"
  big=$(printf 'KILL%70000s%s' '' "$id")
  out=$(printf '%s;\n' "$big" | cli "$AUX_PORT" "app@other" "$MR_APP_PASSWORD" -N -B 2>&1)
  assert_contains "$out" "ERROR 1235" "a KILL padded past 64 KiB"
  out=$(attack "KILL USER app")
  assert_eq "" "$out" "KILL USER app (kills nothing visible: OK)"
  out=$(attack "SHOW PROCESSLIST")
  assert_eq 1 "$(printf '%s\n' "$out" | grep -c .)" "SHOW PROCESSLIST lists the caller's own session only: $out"
  out=$(attack "SELECT COUNT(*) FROM information_schema.processlist")
  assert_contains "$out" "ERROR 1142" "information_schema.processlist"
  out=$(attack "SELECT * FROM performance_schema.threads")
  assert_contains "$out" "ERROR 1142" "performance_schema.threads"
  wait "$vpid"
  grep -q "^victim	0$" victim.out || fail "the victim's statement was disturbed: $(cat victim.out)"
  # A privileged tenant still reads the backend's own list.
  out=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SELECT COUNT(*) > 0 FROM information_schema.processlist" 2>&1)
  assert_eq 1 "$out" "root@sys reads information_schema.processlist"
}

# Names the segment cannot hold whole, and tenants sharing a backend account
# without saying so, are configuration errors.
test_hostile_config_refusals() {
  need_proxy
  local port out
  port=$(free_port) || fail "no free port"
  write_config "$TT/a.yaml" port="$port" backend_port="$MR_DB_PORT" "tenant=other:app:x" || fail "write_config"
  out=$("$MYRELAYD" --check -c "$TT/a.yaml" 2>&1) && fail "a shared backend account was accepted: $out"
  assert_contains "$out" "proxy.allow_shared_backend_accounts" "error about the shared account"
  write_config "$TT/b.yaml" port="$port" backend_port="$MR_DB_PORT" "tenant=$(printf 'T%.0s' {1..64}):u:x" || fail "write_config"
  out=$("$MYRELAYD" --check -c "$TT/b.yaml" 2>&1) && fail "a 64-byte tenant name was accepted"
  assert_contains "$out" "names may have at most 63" "error about the long name"
}

# Out of file descriptors, with clients waiting: the listener pauses instead
# of spinning on accept(), the log gets a line a second, and logins work again
# once descriptors are free.
test_hostile_out_of_fds_no_busy_loop() {
  need_proxy
  local port cfg pid t0 t1 lines
  port=$(free_port) || fail "no free port"
  cfg=$TT/fds.yaml
  write_config "$cfg" port="$port" backend_port="$MR_DB_PORT" workers=1 name=fds log_file="$TT/fds.log" || fail "write_config"
  prlimit --nofile=64:64 "$MYRELAYD" -c "$cfg" </dev/null >>"$TT/fds.out" 2>&1 &
  pid=$!
  AUX_PIDS+=("$pid")
  wait_until 10 port_open "$port" || fail "myrelayd did not start: $(tail -3 "$TT/fds.log")"
  $RAW hold 127.0.0.1 "$port" 90 6 >hold.out 2>&1 &
  local hold=$!
  sleep 2
  t0=$(cpu_ticks_of "$pid")
  sleep 3
  t1=$(cpu_ticks_of "$pid")
  [ $((t1 - t0)) -lt 100 ] || fail "myrelayd used $((t1 - t0)) ticks of CPU in 3 s while out of descriptors (a busy loop)"
  lines=$(grep -c "accept failed" "$TT/fds.log")
  [ "$lines" -ge 1 ] || fail "the descriptors never ran out (the test proves nothing): $(cat hold.out)"
  [ "$lines" -le 10 ] || fail "$lines 'accept failed' lines in 5 s"
  wait "$hold"
  wait_until 10 cli "$port" app "$MR_APP_PASSWORD" -N -e "SELECT 1" >/dev/null 2>&1 ||
    fail "no login after the descriptors came back: $(cli "$port" app "$MR_APP_PASSWORD" -e 'SELECT 1' 2>&1)"
  pid_alive "$pid" || fail "myrelayd died"
}

# A segment under the daemon's name that another account made is never
# trusted: root removes it, anyone else is told whose it is.
test_hostile_planted_segment() {
  need_proxy
  [ "$(id -u)" = 0 ] || skip "needs root to plant a segment as another user"
  local shm port out dir
  port=$(free_port) || fail "no free port"
  write_config "$TT/plant.yaml" port="$port" backend_port="$MR_DB_PORT" name=plant log_file="$TT/plant.log" || fail "write_config"
  shm=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "$TT/plant.yaml")
  plant() { python3 -c '
import struct, sys
hdr = struct.pack("<QIIIIQQIIii", 0x3159414c4552594d, 1, 256, 256, 256, 256, 512, 1, 1, 1, 0)
open(sys.argv[1], "wb").write(hdr + b"\0" * 4096)' "/dev/shm/$shm"; }
  plant
  chown nobody "/dev/shm/$shm"
  myrelayd_start "$TT/plant.yaml" "$TT/plant.out" || fail "myrelayd did not start over another user's segment: $(tail -3 "$TT/plant.log")"
  grep -q "belongs to uid $(id -u nobody), not to myrelayd: removing it" "$TT/plant.log" || fail "no warning: $(cat "$TT/plant.log")"
  myrelayd_stop "$MYRELAYD_PID" 10
  # Not root: refused, naming the owner.
  dir=$(mktemp -d /tmp/myrelay-plant.XXXXXX)
  write_config "$dir/p.yaml" port="$port" backend_port="$MR_DB_PORT" name=p2 log_file=- dir="$dir" || fail "write_config"
  chmod -R a+rwX "$dir"
  sed -i "s/^  shm_name: .*/  shm_name: \"$shm\"/" "$dir/p.yaml"
  chmod 644 "$dir/p.yaml"
  plant
  out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$MYRELAYD" -c "$dir/p.yaml" 2>&1)
  rm -f "/dev/shm/$shm"
  rm -rf "$dir"
  assert_contains "$out" "belongs to uid 0" "refusal as nobody"
  assert_contains "$out" "not made by myrelayd" "refusal as nobody"
}

# Control characters in a login name cannot forge a log line, and a huge
# login name cannot make the log grow by more than a bounded line.
test_hostile_log_injection_and_size() {
  need_proxy
  start_aux_daemon logs log_file="$TT/logs.log"
  local before after out
  out=$($RAW login 127.0.0.1 "$AUX_PORT" $'evil\n2026-01-01 00:00:00.000 1 [error] forged' x 2>&1)
  assert_contains "$out" "error 1045" "login with a newline in the name"
  wait_until 5 grep -q 'access denied' "$TT/logs.log" || fail "no access-denied line"
  grep -q '^2026-01-01 00:00:00.000 1 \[error\] forged' "$TT/logs.log" && fail "a forged line reached the log"
  grep -q 'evil\\n2026-01-01' "$TT/logs.log" || fail "the newline is not escaped: $(grep denied "$TT/logs.log")"
  before=$(stat -c %s "$TT/logs.log")
  $RAW login 127.0.0.1 "$AUX_PORT" "$(head -c 60000 /dev/zero | tr '\0' 'u')" x >/dev/null 2>&1
  sleep 0.5
  after=$(stat -c %s "$TT/logs.log")
  [ $((after - before)) -lt 8000 ] || fail "a 60 KB login name added $((after - before)) bytes of log"
  assert_eq 640 "$(stat -c %a "$TT/logs.log")" "mode of a log file the daemon created"
}

# Clients that open connections and never log in (a slowloris from one
# address) hold at most max_pending_logins_per_host of them: logins from
# elsewhere go on.
test_hostile_slowloris_from_one_address() {
  need_proxy
  start_aux_daemon slow max_connections=40 proxy.max_pending_logins_per_host=8 handshake_ms=8000
  $RAW hold 127.0.0.1 "$AUX_PORT" 40 8 127.0.0.2 >hold.out 2>&1 &
  wait_until 10 grep -q greeted hold.out || fail "the slow clients did not connect: $(cat hold.out)"
  local i ok=0 pending
  for i in $(seq 1 10); do
    cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -e "SELECT 1" >/dev/null 2>&1 && ok=$((ok + 1))
  done
  assert_eq 10 "$ok" "logins from 127.0.0.1 while 127.0.0.2 holds 40 connections"
  pending=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYSESSION" | awk -F'\t' '$6 ~ /^127.0.0.2:/' | wc -l)
  [ "$pending" -le 8 ] || fail "$pending sessions from 127.0.0.2 (limit 8)"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

# 1 MiB of near-records on a control pipe: dropped in linear time, logged in
# a few lines, and the worker's sessions go on.
test_hostile_control_pipe_flood() {
  need_proxy
  command -v jq >/dev/null || fail "jq is not installed"
  start_aux_daemon flood workers=1 log_file="$TT/flood.log"
  local pipe garbage
  pipe=$(ls "$TT"/run-flood/*.worker0.ctl) || fail "no control pipe"
  python3 -c 'import sys; sys.stdout.buffer.write(b"MCTL" * 262144)' >"$pipe" &
  local writer=$!
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -e "SELECT 'served'" >served.out 2>&1 &
  wait_until 5 grep -q served served.out || fail "the worker did not serve a query while its pipe was flooded"
  wait "$writer"
  # All of it but the last record's worth (128 bytes less a magic), which
  # could still be a record's start.
  all_read() { [ "$("$CTL" -c "$TT/flood.yaml" stats --json | jq '.global.control_garbage_bytes')" -ge 1048452 ]; }
  wait_until 10 all_read ||
    fail "the garbage was not all read: $("$CTL" -c "$TT/flood.yaml" stats)"
  garbage=$(grep -c "garbage from its control pipe" "$TT/flood.log")
  [ "$garbage" -le 20 ] || fail "$garbage log lines about the garbage"
}

# What the server does, the proxy does: a command with a wrong sequence id
# gets "Got packets out of order" and the connection ends; an empty command
# is an unknown command and the session goes on.
test_hostile_sequence_and_empty_packets() {
  local out
  out=$($RAW badseq 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" 2>&1)
  assert_contains "$out" "answer=error 1156" "wrong sequence id"
  assert_contains "$out" "then=closed" "connection after a wrong sequence id"
  out=$($RAW emptycmd 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" 2>&1)
  assert_contains "$out" "empty=error 1047" "empty command"
  assert_contains "$out" "next=packet_0x01" "the session after an empty command"
}

# A client that stops in the middle of a long command is timed out after
# net_read_timeout_s, as the server would.
test_hostile_half_sent_command_times_out() {
  need_proxy
  start_aux_daemon halfsent timeouts.net_read_timeout_s=2
  local out
  out=$($RAW halfsend 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" 70000 100000 10 2>&1)
  case "$out" in
    closed_after=never) fail "the half-sent command was never timed out" ;;
    closed_after=*) ;;
    *) fail "mr_raw: $out" ;;
  esac
  local secs=${out#closed_after=}
  [ "${secs%.*}" -ge 1 ] || fail "closed after $secs s, before net_read_timeout_s"
}
