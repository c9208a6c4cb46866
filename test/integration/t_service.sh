# myrelay as a Unix service (DESIGN section 7): `make install` into a temporary
# DESTDIR, then the installed LSB init script drives the installed daemon
# (DAEMON, CONFIG and PIDFILE pointed into this test's directory) against the
# suite's MariaDB: start, status, reload with a new user while an old session
# stays, a rejected reload, log reopening, stop while a statement runs, stale
# pid files and segments, SIGQUIT, and the switch to an unprivileged user.

# ---------------------------------------------------------------- helpers

# svc_install: installs the build that $MYRELAYD belongs to into
# $MR_TMP/service-root, once per run.  Sets SVC_ROOT, SVC_DAEMON, SVC_INIT.
svc_install() {
  local builddir
  builddir=$(cd "$(dirname "$MYRELAYD")/.." && pwd) || fail "no build directory for $MYRELAYD"
  [ -f "$builddir/Makefile" ] || skip "$MYRELAYD is not in a configured build directory (no Makefile)"
  SVC_ROOT=$MR_TMP/service-root
  if [ ! -f "$SVC_ROOT/.installed" ]; then
    rm -rf "$SVC_ROOT"
    make -C "$builddir" install DESTDIR="$SVC_ROOT" >"$MR_TMP/service-install.log" 2>&1 ||
      fail "make install DESTDIR=$SVC_ROOT failed: $(tail -5 "$MR_TMP/service-install.log" | tr '\n' ' ')"
    touch "$SVC_ROOT/.installed"
  fi
  SVC_DAEMON=$(find "$SVC_ROOT" -path '*/bin/myrelayd' -type f | head -1)
  SVC_INIT=$(find "$SVC_ROOT" -path '*/init.d/myrelay' -type f | head -1)
  [ -x "$SVC_DAEMON" ] || fail "no bin/myrelayd installed under $SVC_ROOT"
  [ -x "$SVC_INIT" ] || fail "no executable init.d/myrelay installed under $SVC_ROOT"
}

# svc_setup NAME [write_config key=value...]: a config for a daemon run by the
# init script: port SVC_PORT, log SVC_LOG (in $MR_TMP, where run.sh looks for
# sanitizer reports), pid file SVC_PIDFILE, config SVC_CONFIG.
svc_setup() {
  local name=$1
  shift
  svc_install
  SVC_PORT=$(free_port) || fail "no free port"
  SVC_LOG=$MR_TMP/daemon-service-$name.log
  SVC_CONFIG=$TT/$name.yaml
  SVC_PIDFILE=$TT/pid/myrelayd.pid
  write_config "$SVC_CONFIG" port="$SVC_PORT" backend_port="$MR_DB_PORT" workers=2 name="svc-$name" \
    log_file="$SVC_LOG" shutdown_grace_s=10 "$@" || fail "write_config failed"
  SVC_SHM=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "$SVC_CONFIG")
}

# svc ACTION: the installed init script with this test's paths (and no
# /etc/default/myrelay, no redirection to systemctl).  Bounded in time.
svc() {
  timeout 60 env DAEMON="$SVC_DAEMON" CONFIG="$SVC_CONFIG" PIDFILE="$SVC_PIDFILE" STOP_TIMEOUT=30 \
    MYRELAY_DEFAULTS=/nonexistent SYSTEMCTL_SKIP_REDIRECT=1 sh "$SVC_INIT" "$@"
}

# svc_pid: the pid in the pid file ("" if none).
svc_pid() { cat "$SVC_PIDFILE" 2>/dev/null; }

# svc_start: `svc start`, checked; the daemon is stopped when the test ends.
svc_start() {
  local out rc
  out=$(svc start 2>&1)
  rc=$?
  [ "$rc" = 0 ] || fail "init script start: exit $rc: $out $(tail -5 "$SVC_LOG" 2>/dev/null | tr '\n' ' ')"
  SVC_PID=$(svc_pid)
  [ -n "$SVC_PID" ] && pid_alive "$SVC_PID" || fail "start returned 0 but pid file $SVC_PIDFILE names no live process"
  AUX_PIDS+=("$SVC_PID")
  port_open "$SVC_PORT" || fail "start returned before the daemon listened on $SVC_PORT"
}

# svc_status_is CODE: `svc status` exits with CODE.
svc_status_is() {
  local out rc
  out=$(svc status 2>&1)
  rc=$?
  [ "$rc" = "$1" ] || fail "status: expected exit $1, got $rc: $out"
}

# as_user USER PASSWORD SQL: one statement through the service's port.
as_user() { cli "$SVC_PORT" "$1" "$2" -D test -N -B -e "$3"; }

# Waits until PID has no /proc entry at all (zombies included), at most 10 s.
wait_reaped() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ -e "/proc/$1" ] || return 0
    sleep 0.1
  done
  return 1
}

# True while MariaDB runs the test's SELECT SLEEP(3).
sleep_running() { [ -n "$(backend_threads_running 'SLEEP(3)')" ]; }

# ---------------------------------------------------------------- tests

test_service_install() {
  svc_install
  # A fresh install of its own, since it ends with make uninstall.
  local builddir root=$TT/root
  builddir=$(cd "$(dirname "$MYRELAYD")/.." && pwd)
  make -C "$builddir" install DESTDIR="$root" >"$TT/install.log" 2>&1 || fail "make install: $(tail -5 "$TT/install.log")"
  SVC_ROOT=$root
  SVC_DAEMON=$(find "$root" -path '*/bin/myrelayd' -type f | head -1)
  SVC_INIT=$(find "$root" -path '*/init.d/myrelay' -type f | head -1)
  local f prefix_dir
  prefix_dir=$(dirname "$(dirname "$SVC_DAEMON")")
  for f in bin/myrelayd etc/myrelay.yaml etc/init.d/myrelay etc/logrotate.d/myrelay \
      lib/systemd/system/myrelay.service share/man/man8/myrelayd.8 share/man/man8/myrelayctl.8 \
      share/man/man5/myrelay.yaml.5; do
    [ -f "$prefix_dir/$f" ] || fail "make install did not install $f under $prefix_dir"
  done
  # The configuration holds passwords: only its owner reads it.
  assert_eq 600 "$(stat -c %a "$prefix_dir/etc/myrelay.yaml")" "mode of the installed myrelay.yaml"
  # The installed files name the configured paths, not the source's defaults,
  # and never the DESTDIR.
  local prefix=${prefix_dir#"$SVC_ROOT"}
  grep -q "^DEFAULT_DAEMON=$prefix/bin/myrelayd\$" "$SVC_INIT" || fail "init script: $(grep ^DEFAULT_DAEMON "$SVC_INIT")"
  grep -q "^DEFAULT_CONFIG=$prefix/etc/myrelay.yaml\$" "$SVC_INIT" || fail "init script: $(grep ^DEFAULT_CONFIG "$SVC_INIT")"
  grep -q "^ExecStart=$prefix/bin/myrelayd -d -c $prefix/etc/myrelay.yaml " "$prefix_dir/lib/systemd/system/myrelay.service" ||
    fail "unit: $(grep ^ExecStart "$prefix_dir/lib/systemd/system/myrelay.service")"
  grep -q "^ExecStart=$prefix/bin/myrelayctl -c $prefix/etc/myrelay.yaml metrics --listen 127.0.0.1:9904\$" \
    "$prefix_dir/lib/systemd/system/myrelay-metrics.service" ||
    fail "metrics unit: $(grep ^ExecStart "$prefix_dir/lib/systemd/system/myrelay-metrics.service" 2>&1)"
  ! grep -rq "$SVC_ROOT" "$SVC_INIT" "$prefix_dir/lib/systemd/system/myrelay.service" \
    "$prefix_dir/lib/systemd/system/myrelay-metrics.service" || fail "DESTDIR leaked into an installed file"
  sh -n "$SVC_INIT" || fail "the installed init script is not valid sh"
  "$SVC_DAEMON" --check -c "$prefix_dir/etc/myrelay.yaml" >/dev/null || fail "the installed example config is invalid"
  # Not installed: LSB status 4, other actions 5.
  local rc
  DAEMON=/nonexistent/myrelayd SYSTEMCTL_SKIP_REDIRECT=1 MYRELAY_DEFAULTS=/nonexistent sh "$SVC_INIT" start >/dev/null 2>&1
  rc=$?
  assert_eq 5 "$rc" "start without the daemon installed"
  # Bad usage: 2.
  SYSTEMCTL_SKIP_REDIRECT=1 MYRELAY_DEFAULTS=/nonexistent sh "$SVC_INIT" frobnicate >/dev/null 2>&1
  rc=$?
  assert_eq 2 "$rc" "unknown action"
  # make uninstall takes everything away again.
  make -C "$builddir" uninstall DESTDIR="$root" >"$TT/uninstall.log" 2>&1 || fail "make uninstall failed"
  local left
  left=$(find "$root" -type f)
  [ -z "$left" ] || fail "make uninstall left: $left"
}

test_service_lifecycle() {
  svc_setup life
  local out rc
  svc_status_is 3
  # A start with an invalid file fails with the file, the key and LSB's 6.
  cp "$SVC_CONFIG" "$TT/good.yaml"
  echo "bogus_key: 1" >>"$SVC_CONFIG"
  out=$(svc start 2>&1)
  rc=$?
  assert_eq 6 "$rc" "start with an invalid config ($out)"
  assert_contains "$out" "$SVC_CONFIG: bogus_key: unknown key" "start with an invalid config"
  cp "$TT/good.yaml" "$SVC_CONFIG"

  svc_start
  svc_status_is 0
  out=$(svc status 2>&1)
  assert_contains "$out" "running (pid $SVC_PID)" "status"
  # A daemon: a session of its own that it does not lead (double fork, so it
  # can never get a controlling terminal back), no terminal, cwd /.
  local sid tty
  read -r sid tty < <(ps -o sid=,tty= -p "$SVC_PID")
  [ "$sid" != "$(ps -o sid= -p $$ | tr -d ' ')" ] || fail "the daemon stayed in the test's session"
  [ "$sid" != "$SVC_PID" ] || fail "the daemon leads its session (no second fork)"
  assert_eq "?" "$tty" "controlling terminal of the daemon"
  assert_eq / "$(readlink "/proc/$SVC_PID/cwd")" "working directory of the daemon"
  # start again: already running, still 0, same pid.
  out=$(svc start 2>&1) || fail "second start: $out"
  assert_contains "$out" "already running" "second start"
  assert_eq "$SVC_PID" "$(svc_pid)" "pid after a second start"
  # A second daemon on the same pid file is refused, naming the first.
  out=$("$SVC_DAEMON" -d -c "$SVC_CONFIG" -p "$SVC_PIDFILE" 2>&1)
  rc=$?
  assert_eq 1 "$rc" "a second daemon on the same pid file ($out)"
  assert_contains "$out" "another myrelayd is running (pid $SVC_PID" "a second daemon"
  assert_eq "$SVC_PID" "$(svc_pid)" "pid file after a refused second daemon"

  # An old session, kept open through a FIFO.
  mkfifo old.in
  cli "$SVC_PORT" app "$MR_APP_PASSWORD" -D test -N -B --unbuffered <old.in >old.out 2>&1 &
  exec 7>old.in
  echo "SELECT CONCAT('old-', 'ready');" >&7
  wait_until 10 grep -q old-ready old.out || fail "the old session did not log in: $(cat old.out)"

  # Reload with a new user: unknown before, logs in after.
  dq "CREATE USER IF NOT EXISTS 'svcuser'@'%' IDENTIFIED BY 'svcpw'; GRANT ALL ON test.* TO 'svcuser'@'%'" ||
    fail "cannot create svcuser on MariaDB"
  out=$(as_user svcuser svcpw "SELECT 1" 2>&1) && fail "svcuser got in before the reload: $out"
  assert_contains "$out" "ERROR 1045 (28000): Access denied for user 'svcuser'" "svcuser before the reload"
  echo '      - { name: svcuser, password: "svcpw" }' >>"$SVC_CONFIG"
  out=$(svc reload 2>&1) || fail "reload: $out"
  wait_until 10 grep -q "configuration reloaded" "$SVC_LOG" || fail "the log does not say the configuration was reloaded"
  out=$(as_user svcuser svcpw "SELECT CURRENT_USER()" 2>&1) || fail "svcuser cannot log in after the reload: $out"
  assert_contains "$out" "svcuser@" "svcuser after the reload"
  echo "SELECT CONCAT('old-', 'after-reload');" >&7
  wait_until 10 grep -q old-after-reload old.out || fail "the old session broke on reload: $(cat old.out)"
  assert_eq "$SVC_PID" "$(svc_pid)" "pid after reload"

  # Reload with a broken file: the init script refuses and says why; SIGHUP
  # sent anyway is rejected by the daemon, which keeps the running config.
  cp "$SVC_CONFIG" "$TT/good.yaml"
  sed -i 's/^  handshake_ms: .*/  handshake_ms: soon/' "$SVC_CONFIG"
  out=$(svc reload 2>&1)
  rc=$?
  [ "$rc" != 0 ] || fail "reload of a broken config returned 0: $out"
  assert_contains "$out" "$SVC_CONFIG: timeouts.handshake_ms: expected an integer" "reload of a broken config"
  kill -HUP "$SVC_PID"
  wait_until 10 grep -q "reload rejected" "$SVC_LOG" || fail "the log does not say the reload was rejected: $(tail -3 "$SVC_LOG")"
  assert_contains "$(grep "reload rejected" "$SVC_LOG" | tail -1)" "$SVC_CONFIG: timeouts.handshake_ms" "rejection message"
  pid_alive "$SVC_PID" || fail "the daemon died on a broken config"
  out=$(as_user svcuser svcpw "SELECT 'kept'" 2>&1) || fail "after a rejected reload svcuser (old config) cannot log in: $out"
  echo "SELECT CONCAT('old-', 'after-bad-reload');" >&7
  wait_until 10 grep -q old-after-bad-reload old.out || fail "the old session broke: $(cat old.out)"
  cp "$TT/good.yaml" "$SVC_CONFIG"

  # Log rotation: move the file away, SIGUSR1 (as logrotate's postrotate), a
  # new file appears and gets the new lines.
  mv "$SVC_LOG" "$SVC_LOG.1"
  kill -USR1 "$SVC_PID"
  wait_until 10 test -s "$SVC_LOG" || fail "no new log file after SIGUSR1"
  grep -q "log file reopened" "$SVC_LOG" || fail "new log: $(cat "$SVC_LOG")"
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "query after the log reopen"

  # Stop while a statement runs: it completes, then the daemon exits.
  exec 7>&-
  as_user app "$MR_APP_PASSWORD" "SELECT SLEEP(3) AS slept, 'done'" >sleep.out 2>&1 &
  local sleeper=$!
  wait_until 10 sleep_running || fail "SELECT SLEEP(3) never reached MariaDB"
  local t0
  t0=$(now_ms)
  svc stop >stop.out 2>&1 &
  local stopper=$!
  # It stops accepting at once...
  wait_until 5 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$SVC_PORT) 2>/dev/null" ||
    fail "still accepting connections after SIGTERM"
  # ...but the running statement finishes.
  wait "$sleeper"
  rc=$?
  [ "$rc" = 0 ] || fail "the statement running at stop failed (exit $rc): $(cat sleep.out)"
  assert_eq "$(printf '0\tdone')" "$(cat sleep.out)" "result of the statement running at stop"
  wait "$stopper"
  rc=$?
  assert_eq 0 "$rc" "init script stop ($(cat stop.out))"
  echo "INFO: stop with SLEEP(3) running took $(($(now_ms) - t0)) ms"
  pid_alive "$SVC_PID" && fail "the daemon is still alive after stop"
  [ -e "$SVC_PIDFILE" ] && fail "the pid file is left after stop"
  [ -e "/dev/shm/$SVC_SHM" ] && fail "the segment /dev/shm/$SVC_SHM is left after stop"
  local fifos
  fifos=$(find "$TT/run-svc-life" -type p 2>/dev/null)
  [ -z "$fifos" ] || fail "control pipes left after stop: $fifos"
  grep -q "myrelayd stopped" "$SVC_LOG" || fail "the log does not end with the stop: $(tail -3 "$SVC_LOG")"
  svc_status_is 3
  # Stopping a stopped service is a success; reloading it is LSB's 7.
  out=$(svc stop 2>&1) || fail "stop when stopped: $out"
  svc reload >/dev/null 2>&1
  rc=$?
  assert_eq 7 "$rc" "reload when stopped"
}

test_service_stale_start() {
  local out
  svc_setup stale
  svc_start
  local old=$SVC_PID
  # SIGKILL leaves the pid file, the segment and the pipes behind.
  kill -KILL "$old"
  wait_reaped "$old" || fail "killed daemon $old still has a /proc entry"
  [ -s "$SVC_PIDFILE" ] || fail "no pid file left by the killed daemon"
  [ -e "/dev/shm/$SVC_SHM" ] || fail "no segment left by the killed daemon"
  svc_status_is 1
  svc_start
  [ "$SVC_PID" != "$old" ] || fail "the pid file still names the dead daemon"
  grep -q "took over the stale pid file" "$SVC_LOG" || fail "the log does not mention the stale pid file"
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "no query through the restarted daemon"
  # A pid file naming some other, unrelated live process (a reused pid): not
  # ours, since nobody holds its lock.
  svc stop >/dev/null 2>&1 || fail "stop"
  sleep 300 &
  local other=$!
  echo "$other" >"$SVC_PIDFILE"
  svc_start
  [ "$SVC_PID" != "$other" ] || fail "pid file not replaced"
  pid_alive "$other" || fail "the unrelated process was killed"
  kill "$other"
  out=$(svc restart 2>&1) || fail "restart: $out"
  local new
  new=$(svc_pid)
  [ -n "$new" ] && [ "$new" != "$SVC_PID" ] || fail "restart did not start a new daemon ($new)"
  AUX_PIDS+=("$new")
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "no query after restart"
  svc stop >/dev/null 2>&1 || fail "stop after restart"
}

test_service_sigquit() {
  svc_setup quit
  svc_start
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "no query"
  local t0
  t0=$(now_ms)
  kill -QUIT "$SVC_PID"
  wait_pid_gone "$SVC_PID" 5 || fail "still running 5 s after SIGQUIT"
  local ms=$(($(now_ms) - t0))
  [ "$ms" -lt 2000 ] || fail "SIGQUIT took $ms ms"
  [ -e "$SVC_PIDFILE" ] && fail "SIGQUIT left the pid file"
  grep -q "SIGQUIT" "$SVC_LOG" || fail "the log does not mention SIGQUIT"
  wait_reaped "$SVC_PID" || fail "no reaping"
  svc_status_is 3
  # The segment it left is replaced by the next start.
  svc_start
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "no query after the restart"
  svc stop >/dev/null 2>&1 || fail "stop"
}

# As root: proxy.user binds, then drops to an unprivileged account, and can
# still reopen its log, reload, and remove its files at exit.
test_service_privilege_drop() {
  local out
  [ "$(id -u)" = 0 ] || skip "needs root"
  id nobody >/dev/null 2>&1 || skip "no user nobody"
  # Everything in a directory nobody may traverse (the run's is 0700).
  local base
  base=$(mktemp -d /tmp/myrelay-svc.XXXXXX) || fail "mktemp"
  chmod 755 "$base"
  trap '_mr_test_cleanup; rm -rf "'"$base"'"' EXIT
  svc_install
  SVC_PORT=$(free_port) || fail "no free port"
  SVC_CONFIG=$base/conf/svc.yaml
  SVC_PIDFILE=$base/run/myrelayd.pid
  SVC_LOG=$base/log/myrelayd.log
  mkdir -p "$base/conf"
  write_config "$SVC_CONFIG" port="$SVC_PORT" backend_port="$MR_DB_PORT" workers=2 name=svc-priv \
    dir="$base/conf" log_file="$SVC_LOG" shutdown_grace_s=5 || fail "write_config"
  SVC_SHM=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "$SVC_CONFIG")
  # run_dir, the pid file's and the log's directories do not exist yet: the
  # daemon creates them for nobody.
  rmdir "$base/conf/run-svc-priv"
  sed -i "s|^  run_dir: .*|  run_dir: \"$base/run\"|; s|^  pid_file: .*|  pid_file: \"$SVC_PIDFILE\"|" "$SVC_CONFIG"
  sed -i 's|^proxy:$|proxy:\n  user: nobody|' "$SVC_CONFIG"
  chmod 644 "$SVC_CONFIG"
  svc_start
  local uid
  uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$SVC_PID/status")
  local nobody
  nobody=$(id -u nobody)
  assert_eq "$nobody $nobody $nobody $nobody" "$uid" "real, effective, saved and fs uid of the daemon"
  as_user app "$MR_APP_PASSWORD" "SELECT 1" >/dev/null || fail "no query through the unprivileged daemon"
  [ "$(stat -c %U "$base/run")" = nobody ] || fail "run_dir not given to nobody: $(ls -ld "$base/run")"
  [ "$(stat -c %U "/dev/shm/$SVC_SHM")" = nobody ] || fail "segment not given to nobody: $(ls -l "/dev/shm/$SVC_SHM")"
  # Log rotation as nobody.
  mv "$SVC_LOG" "$SVC_LOG.1"
  kill -USR1 "$SVC_PID"
  wait_until 10 test -s "$SVC_LOG" || fail "no new log after SIGUSR1 as nobody: $(tail -3 "$SVC_LOG.1")"
  [ "$(stat -c %U "$SVC_LOG")" = nobody ] || fail "new log not owned by nobody"
  # Reload as nobody.
  svc reload >/dev/null 2>&1 || fail "reload"
  wait_until 10 grep -q "configuration reloaded" "$SVC_LOG" || fail "reload as nobody: $(tail -3 "$SVC_LOG")"
  out=$(svc stop 2>&1) || fail "stop: $out"
  [ -e "$SVC_PIDFILE" ] && fail "the pid file is left after stop as nobody"
  [ -e "/dev/shm/$SVC_SHM" ] && fail "the segment is left after stop as nobody"
  [ -z "$(find "$base/run" -type p)" ] || fail "control pipes left after stop as nobody"
  return 0
}
