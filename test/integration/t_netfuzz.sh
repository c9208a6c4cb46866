# The network fuzzer (scripts/netfuzz, issue 17 part 2) against an
# auxiliary myrelayd of the harness: recorded sessions replayed with
# mutations while clean sessions check their results; any finding fails.

NETFUZZ=$MR_IT_DIR/../../scripts/netfuzz
NF_CLEAN_PASSWORD=cleanpw

# The clean sessions' account: its own tenant and database, which no fuzzed
# session can log in to (so nothing a mutation does may reach it legitimately).
netfuzz_setup() {
  need_proxy
  /usr/bin/python3 -c 'import pymysql' 2>/dev/null || skip "python3-pymysql is not installed"
  dq "CREATE USER IF NOT EXISTS 'nf_clean'@'%' IDENTIFIED BY '$NF_CLEAN_PASSWORD';
      CREATE DATABASE IF NOT EXISTS netfuzz_clean;
      GRANT ALL PRIVILEGES ON netfuzz_clean.* TO 'nf_clean'@'%'" || fail "cannot create the clean user"
  start_aux_daemon "$1" max_connections=2000 "tenant=nfclean:nf_clean:$NF_CLEAN_PASSWORD"
}

# netfuzz_run [options...]: the fuzzer against the auxiliary daemon.
netfuzz_run() {
  /usr/bin/python3 "$NETFUZZ" --port "$AUX_PORT" --pid "$AUX_PID" --config "$TT/$NF_NAME.yaml" \
    --myrelayctl "$(dirname "$MYRELAYD")/myrelayctl" --daemon-log "$AUX_LOG" \
    --users "app:$MR_APP_PASSWORD,app2:$MR_APP2_PASSWORD" --clean-user "nf_clean@nfclean:$NF_CLEAN_PASSWORD" \
    --root-user "root@sys:$MR_ROOT_PASSWORD" \
    --out "$TT/out" --quiet "$@"
}

# 35 s with a fixed seed: no finding (daemon alive, clean sessions
# undisturbed, no leftover session, fds back, no sanitizer report).
test_netfuzz_fixed_seed() {
  NF_NAME=netfuzz
  netfuzz_setup "$NF_NAME"
  local out rc
  out=$(netfuzz_run --seconds 35 --seed 1717 --connections 8 --clean 3 2>&1)
  rc=$?
  printf '%s\n' "$out"
  [ "$rc" = 0 ] || fail "netfuzz reported findings (exit $rc): $(printf '%s\n' "$out" | grep -A3 'FINDING' | head -20)"
  printf '%s\n' "$out" | grep -q '^  findings: 0$' || fail "no summary line"
  local n
  n=$(printf '%s\n' "$out" | sed -n 's/^  connections \([0-9]*\) .*/\1/p')
  [ "${n:-0}" -ge 50 ] || fail "only ${n:-0} fuzz connections: the fuzzer did not really run"
  n=$(printf '%s\n' "$out" | sed -n 's/^  clean sessions: \([0-9]*\) checks.*/\1/p')
  [ "${n:-0}" -ge 100 ] || fail "only ${n:-0} clean checks"
  echo "INFO: $(printf '%s\n' "$out" | grep -E '^  (connections|mutations|other|clean sessions)' | tr -s ' ' | tr '\n' ';')"
}

# The fuzzer can fail: clean sessions told to expect a wrong value report
# it, and a daemon that dies under it is reported with the suspects' bytes.
test_netfuzz_reports_findings() {
  NF_NAME=netfuzzfail
  netfuzz_setup "$NF_NAME"
  local out rc
  out=$(netfuzz_run --seconds 4 --seed 7 --connections 2 --clean 1 --selftest-expect-wrong 2>&1)
  rc=$?
  [ "$rc" = 1 ] || fail "a clean session expecting a wrong value was not a finding (exit $rc): $out"
  assert_contains "$out" "FINDING 1: clean session 0" "the wrong value is reported"
  assert_contains "$out" "selftest" "the finding names the wrong expectation"
  # The daemon dies in the middle of the run.
  (sleep 4; kill -KILL "$AUX_PID") &
  out=$(netfuzz_run --seconds 30 --seed 7 --connections 4 --clean 1 2>&1)
  rc=$?
  [ "$rc" = 1 ] || fail "a dead daemon was not a finding (exit $rc): $out"
  assert_contains "$out" "myrelayd (pid $AUX_PID) died" "the death is reported"
  assert_contains "$out" "scripts/netfuzz --seed 7 --only" "the suspects' reproducers are printed"
  ls "$TT"/out/finding-*/conn-*.bin >/dev/null 2>&1 || fail "no byte stream saved: $(ls -R "$TT/out")"
}
