# sysbench oltp_read_write through the port under test and directly: no
# errors but InnoDB deadlocks (the backend's own; sysbench retries them), no
# reconnects, the same row counts.  Throughput is printed, never asserted.

sb() {
  local port=$1 db=$2
  shift 2
  timeout 120 sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
    --mysql-user=app --mysql-password="$MR_APP_PASSWORD" --mysql-db="$db" \
    --tables=2 --table-size=1000 --mysql-ignore-errors=1213,1205 "$@"
}

# field NAME FILE: "transactions:  11472  (1146.73 per sec.)" -> "11472 1146.73"
sb_field() {
  sed -n "s/^ *$1: *\([0-9]*\) *(\([0-9.]*\) per sec.).*/\1 \2/p" "$2" | head -1
}

test_sysbench_oltp_read_write() {
  command -v sysbench >/dev/null || fail "sysbench is not installed"
  local db_target=sbtest_proxy
  sb "$MR_DB_PORT" sbtest_direct prepare >prep_direct.out 2>&1 || fail "prepare directly: $(tail -3 prep_direct.out)"
  # The tables of the proxied run are created through the proxy too.
  sb "$MR_PORT" "$db_target" prepare >prep_target.out 2>&1 || fail "prepare through the port under test: $(tail -3 prep_target.out)"

  sb "$MR_PORT" "$db_target" --threads=4 --time=10 --db-ps-mode=auto run >run_target.out 2>&1
  local rc=$?
  [ $rc -eq 0 ] || fail "sysbench through the port under test exited with $rc: $(grep -m3 -E 'FATAL|error' run_target.out)"
  sb "$MR_DB_PORT" sbtest_direct --threads=4 --time=10 --db-ps-mode=auto run >run_direct.out 2>&1 ||
    fail "sysbench directly failed: $(grep -m3 -E 'FATAL|error' run_direct.out)"

  local t_tx t_q t_err t_rec d_tx d_q d_err
  t_tx=$(sb_field transactions run_target.out)
  t_q=$(sb_field queries run_target.out)
  t_err=$(sb_field "ignored errors" run_target.out)
  t_rec=$(sb_field reconnects run_target.out)
  d_tx=$(sb_field transactions run_direct.out)
  d_q=$(sb_field queries run_direct.out)
  d_err=$(sb_field "ignored errors" run_direct.out)
  [ -n "$t_tx" ] && [ -n "$t_q" ] && [ -n "$t_rec" ] || fail "cannot read sysbench's report: $(tail -20 run_target.out)"
  if grep -qE 'FATAL|ALERT' run_target.out; then
    fail "sysbench reported: $(grep -m3 -E 'FATAL|ALERT' run_target.out)"
  fi
  assert_eq 0 "${t_rec%% *}" "reconnects"
  [ "${t_tx%% *}" -gt 0 ] || fail "no transactions through the port under test"
  echo "INFO: sysbench oltp_read_write 4 threads 10 s, mode $MR_MODE: transactions/s ${t_tx#* }, queries/s ${t_q#* }, deadlocks retried ${t_err%% *}"
  echo "INFO: sysbench oltp_read_write 4 threads 10 s, directly:     transactions/s ${d_tx#* }, queries/s ${d_q#* }, deadlocks retried ${d_err%% *}"

  local t c_direct c_target
  for t in sbtest1 sbtest2; do
    c_direct=$(dq "SELECT COUNT(*) FROM sbtest_direct.$t")
    c_target=$(dq "SELECT COUNT(*) FROM $db_target.$t")
    assert_eq 1000 "$c_direct" "rows of $t after the direct run"
    assert_eq "$c_direct" "$c_target" "rows of $t after the run through the port under test"
  done
  sb "$MR_PORT" "$db_target" cleanup >/dev/null 2>&1 || fail "sysbench cleanup through the port under test"
  sb "$MR_DB_PORT" sbtest_direct cleanup >/dev/null 2>&1
}
