# The C client (mr_client.c, libmariadb): binary protocol and the commands
# the command line does not send.  Outputs are compared with the same command
# run directly against MariaDB.

# c_same_as_direct WHAT COMMAND [args...]: mr_client COMMAND succeeds on the
# port under test and prints what it prints directly against MariaDB.
c_same_as_direct() {
  local what=$1 rc
  shift
  need_client
  "$MR_CLIENT" 127.0.0.1 "$MR_DB_PORT" app "$MR_APP_PASSWORD" test "$@" >direct.out 2>&1 ||
    fail "$what directly against MariaDB failed (harness problem?): $(tail -3 direct.out)"
  "$MR_CLIENT" 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" test "$@" >target.out 2>&1
  rc=$?
  [ $rc -eq 0 ] || fail "$what: $(tail -3 target.out | tr '\n' ' ')"
  if ! cmp -s direct.out target.out; then
    echo "--- direct"; head -c 2000 direct.out; echo "--- through the port under test"; head -c 2000 target.out
    fail "$what: output differs from the direct run"
  fi
}

test_c_prepared_statements() {
  c_same_as_direct "prepared statements" prepared
}

test_c_cursor_fetch() {
  c_same_as_direct "cursor, 7 rows per fetch" cursor 10000 7
  c_same_as_direct "cursor, 1 row per fetch" cursor 3000 1
  c_same_as_direct "cursor, 5000 rows per fetch" cursor 100000 5000
}

test_c_prepared_call_multiple_results() {
  c_same_as_direct "prepared CALL" call
}

test_c_multi_statements() {
  c_same_as_direct "multi-statements" multi
}

test_c_change_user() {
  c_same_as_direct "change_user" change_user app2 "$MR_APP2_PASSWORD"
  if [ "$MR_MODE" = proxy ]; then
    local out
    out=$(mrc app "$MR_APP_PASSWORD" change_user 'app2@app#main' "$MR_APP2_PASSWORD" 2>&1) ||
      fail "change_user to app2@app#main: $out"
    assert_contains "$out" "after change_user(app2@app#main): CURRENT_USER()=app2@%" "change_user with a full login name"
  fi
}

test_c_reset_connection() {
  c_same_as_direct "reset_connection" reset
}

test_c_ping() {
  c_same_as_direct "ping" ping
}

test_c_statistics() {
  c_same_as_direct "statistics" stat
}

test_c_field_list() {
  c_same_as_direct "list_fields" list_fields
}

test_c_init_db() {
  c_same_as_direct "select_db" select_db
}

test_c_long_data_20mib() {
  c_same_as_direct "20 MiB parameter" longdata 20
}

test_c_query_results() {
  c_same_as_direct "text results" query "SELECT * FROM types ORDER BY id; SELECT COUNT(*), SUM(id) FROM big; DO 1"
}

test_c_thread_id_vs_connection_id() {
  need_client
  local out tid cid
  out=$(mrc app "$MR_APP_PASSWORD" ids 2>&1) || fail "$out"
  tid=$(echo "$out" | awk '{ print $2 }')
  cid=$(echo "$out" | awk '{ print $4 }')
  if [ "$MR_MODE" = proxy ]; then
    [ "$tid" != "$cid" ] || fail "mysql_thread_id() $tid equals CONNECTION_ID() $cid"
    [ "$tid" -ge 2147483648 ] || fail "mysql_thread_id() $tid: bit 31 not set"
  else
    assert_eq "$tid" "$cid" "direct: mysql_thread_id() vs CONNECTION_ID()"
  fi
}

test_c_login_forms_and_errors() {
  need_client
  local out want="FAIL: connect as app to 127.0.0.1:$MR_PORT: error 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)"
  out=$("$MR_CLIENT" 127.0.0.1 "$MR_PORT" app wrongpw test ping 2>&1) && fail "wrong password accepted"
  assert_eq "$want" "$out" "wrong password"
  if [ "$MR_MODE" = proxy ]; then
    local login
    for login in app@app 'app@app#main' 'app#main'; do
      out=$("$MR_CLIENT" 127.0.0.1 "$MR_PORT" "$login" "$MR_APP_PASSWORD" test query "SELECT CURRENT_USER()" 2>&1) ||
        fail "login as $login: $out"
      assert_eq "rows:app@%" "$out" "CURRENT_USER() of $login"
    done
  fi
}

test_c_concurrent_sessions() {
  need_client
  local out
  out=$(mrc app "$MR_APP_PASSWORD" threads 50 10 120 2>&1) || fail "$out"
  assert_eq "threads: 50 threads x 10 sessions ok" "$out" "50 threads"
  target_alive || fail "the server under test died"
}
