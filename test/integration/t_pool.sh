# The server-session pool (proxy.server_pool_size): reuse across logins,
# nothing of one client's session state reaching the next, what is never
# pooled, and pooled sessions that die or idle out.

# pool_daemon NAME [write_config key=value...]: one worker, so every login
# meets the same pool.
pool_daemon() {
  local name=$1
  shift
  start_aux_daemon "$name" workers=1 server_pool_size=4 "$@"
  CFG="$TT/$name.yaml"
}

pq() { # pq LOGIN PASSWORD SQL [client args...]: one statement, one login, then COM_QUIT
  local login=$1 pass=$2 sql=$3
  shift 3
  cli "$AUX_PORT" "$login" "$pass" -N -B "$@" -e "$sql"
}

pool_stat() { # pool_stat KEY: a total from myrelayctl stats --json
  "${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}" -c "$CFG" stats --json | jq ".global.$1"
}

test_pool_reuses_and_resets() {
  need_proxy
  need_client
  command -v jq >/dev/null || skip "jq is not installed"
  pool_daemon poolreset
  local c1 out
  c1=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID(); SET @x = 5; CREATE TEMPORARY TABLE pool_tt (a INT);
         SELECT GET_LOCK('mr_pool_lock', 0) INTO @got; SET SESSION sql_mode = 'ANSI'" -D test) ||
    fail "first session: $c1"
  # The reset at release frees the user lock at once, as a real disconnect would.
  lock_free() { [ "$(dq "SELECT IS_FREE_LOCK('mr_pool_lock')")" = 1 ]; }
  wait_until 5 lock_free ||
    fail "the pooled session still holds the first client's GET_LOCK"
  out=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID(), DATABASE(), IFNULL(@x, 'null'),
         @@session.sql_mode = @@global.sql_mode, (SELECT COUNT(*) FROM information_schema.TABLES
         WHERE TABLE_NAME = 'pool_tt')" -D test) || fail "second session: $out"
  assert_eq "$(printf '%s\ttest\tnull\t1\t0' "$c1")" "$out" \
    "second login: same backend thread, database, no variable, sql_mode or temporary table left"
  # Another user, no database: COM_CHANGE_USER switches both.
  out=$(pq app2 "$MR_APP2_PASSWORD" "SELECT CONNECTION_ID(), CURRENT_USER(), IFNULL(DATABASE(), 'none')") ||
    fail "app2 session: $out"
  assert_eq "$(printf '%s\tapp2@%%\tnone' "$c1")" "$out" "app2 on the pooled session"
  assert_eq 2 "$(pool_stat backend_reuses)" "backend_reuses"
  assert_eq 1 "$(pool_stat backend_connects)" "backend_connects"
  assert_eq 1 "$(pool_stat pool_idle)" "pool_idle"
  # The same user with another database: the pooled session switches to it
  # (COM_INIT_DB); an unknown one fails as a fresh login would.
  out=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID(), DATABASE()" -D information_schema) || fail "-D information_schema: $out"
  assert_eq "$(printf '%s\tinformation_schema' "$c1")" "$out" "same user, other database"
  out=$(pq app "$MR_APP_PASSWORD" "SELECT 1" -D mr_no_such_db 2>&1) && fail "unknown database accepted: $out"
  assert_eq "$(cli "$MR_DB_PORT" app "$MR_APP_PASSWORD" -D mr_no_such_db -e "SELECT 1" 2>&1)" "$out" \
    "unknown database: the error MariaDB gives directly"
  out=$(pq app "$MR_APP_PASSWORD" "SELECT DATABASE()" -D test) || fail "login after the failed one: $out"
  assert_eq test "$out" "database after a failed switch"
  # A wrong password never reaches the pool.
  out=$(pq app wrong "SELECT 1" 2>&1) && fail "wrong password accepted"
  assert_contains "$out" "ERROR 1045" "wrong password"
  assert_eq 1 "$(pool_stat pool_idle)" "pool_idle after a refused login"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_pool_skips_open_transactions() {
  need_proxy
  need_client
  pool_daemon pooltrx
  local c1 c2 out
  dq "CREATE TABLE IF NOT EXISTS test.pool_t (a INT) ENGINE=InnoDB; DELETE FROM test.pool_t" ||
    fail "cannot create test.pool_t"
  c1=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID(); BEGIN; INSERT INTO pool_t VALUES (1)" -D test) ||
    fail "transaction session: $c1"
  c2=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID()" -D test) || fail "next session: $c2"
  [ "$c1" != "$c2" ] || fail "a session that quit inside a transaction was pooled (backend thread $c1 reused)"
  wait_until 5 backend_thread_gone "$c1" || fail "backend thread $c1 of the quitting transaction is still there"
  out=$(dq "SELECT COUNT(*) FROM test.pool_t")
  assert_eq 0 "$out" "rows of the abandoned transaction"
  dq "DROP TABLE test.pool_t"
}

test_pool_drops_dead_and_idle_sessions() {
  need_proxy
  need_client
  command -v jq >/dev/null || skip "jq is not installed"
  pool_daemon pooldead server_pool_idle_s=2
  local c1 c2 c3
  c1=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID()") || fail "first session: $c1"
  pool_idle_is() { [ "$(pool_stat pool_idle)" = "$1" ]; }
  wait_until 5 pool_idle_is 1 || fail "the session did not reach the pool"
  # The backend ends the pooled connection: the pool lets it go and the next
  # login gets a new one, without an error.
  dq "KILL $c1" || fail "KILL $c1 on the backend"
  wait_until 5 pool_idle_is 0 || fail "a dead pooled session stayed in the pool"
  c2=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID()") || fail "login after the backend kill: $c2"
  [ "$c2" != "$c1" ] || fail "the killed backend thread came back"
  # Unused for server_pool_idle_s, a pooled session is closed.
  wait_until 10 backend_thread_gone "$c2" || fail "pooled backend thread $c2 outlived server_pool_idle_s"
  assert_eq 0 "$(pool_stat pool_idle)" "pool_idle after the idle timeout"
  c3=$(pq app "$MR_APP_PASSWORD" "SELECT CONNECTION_ID()") || fail "login after the idle timeout: $c3"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_pool_off_by_default() {
  need_proxy
  need_client
  local c1 c2
  c1=$(tq "SELECT CONNECTION_ID()") || fail "first session: $c1"
  c2=$(tq "SELECT CONNECTION_ID()") || fail "second session: $c2"
  [ "$c1" != "$c2" ] || fail "without server_pool_size a backend thread was reused ($c1)"
}

# Parallel logins of two users with and without a database, through a small
# pool (2 sessions): every one sees its own user and database, none fails.
test_pool_many_logins() {
  need_proxy
  need_client
  command -v jq >/dev/null || skip "jq is not installed"
  pool_daemon poolmany server_pool_size=2
  local w i pids=()
  for w in 1 2 3 4 5 6; do
    (
      for i in $(seq 20); do
        if [ $((i % 2)) = 0 ]; then
          out=$(pq app "$MR_APP_PASSWORD" "SELECT CURRENT_USER(), DATABASE(), @v; SET @v = 1" -D test 2>&1)
          [ "$out" = "$(printf 'app@%%\ttest\tNULL')" ] || { echo "worker $w login $i as app: $out"; exit 1; }
        else
          out=$(pq app2 "$MR_APP2_PASSWORD" "SELECT CURRENT_USER(), IFNULL(DATABASE(), 'none'), @v; SET @v = 2" 2>&1)
          [ "$out" = "$(printf 'app2@%%\tnone\tNULL')" ] || { echo "worker $w login $i as app2: $out"; exit 1; }
        fi
      done
    ) >"many$w.out" 2>&1 </dev/null &
    pids+=($!)
  done
  local bad=0 p
  for p in "${pids[@]}"; do wait "$p" || bad=1; done
  [ "$bad" = 0 ] && ! grep -q . many*.out || fail "$(cat many*.out | head -5)"
  [ "$(pool_stat backend_reuses)" -gt 0 ] || fail "no login reused a pooled session"
  [ "$(pool_stat pool_idle)" -le 2 ] || fail "the pool holds more than server_pool_size sessions"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}
