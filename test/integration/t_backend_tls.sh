# TLS towards backends (DESIGN section 4b): clusters[].tls.mode disabled |
# preferred | required | verify_ca | verify_identity, against a MariaDB of the
# test's own that offers TLS with a certificate of a test CA (and the main
# MariaDB, which offers none).  Side connections (KILL QUERY) use the same
# settings.

# tls_backend_up: a MariaDB with TLS in $TT/tlsdb on BT_PORT, with the
# harness's accounts; certificates in $TT/certs (ca.pem, server.pem for
# 127.0.0.1 and localhost) and a second CA in $TT/other.
tls_backend_up() {
  need_proxy
  tls_make_certs "$TT/certs" || fail "cannot make certificates"
  tls_make_certs "$TT/other" || fail "cannot make the second CA"
  BT_PORT=$(free_port) || fail "no free port"
  mariadb_start "$TT/tlsdb" "$BT_PORT" --ssl-ca="$TT/certs/ca.pem" --ssl-cert="$TT/certs/server.pem" \
    --ssl-key="$TT/certs/server.key" >/dev/null 2>&1 || fail "the TLS MariaDB did not start"
  BT_PID=$(cat "$TT/tlsdb/mariadbd.launch-pid")
  mariadb_root "$TT/tlsdb" <<SQL || fail "cannot create the accounts"
DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';
CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD';
CREATE USER 'myrelay_monitor'@'%' IDENTIFIED BY '$MR_MONITOR_PASSWORD';
GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* TO 'myrelay_monitor'@'%';
CREATE USER 'root'@'%' IDENTIFIED BY '$MR_ROOT_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE test;
GRANT ALL PRIVILEGES ON test.* TO 'app'@'%';
SQL
}

# through MODE [write_config key=value...]: a daemon in front of the TLS
# MariaDB with that tls mapping for its cluster; its port in AUX_PORT.
through() {
  local name=$1 tls=$2
  shift 2
  start_aux_daemon "$name" backend_port="$BT_PORT" cluster.tls="$tls" "$@"
}

# cipher PORT: the backend's Ssl_cipher for a session through the proxy
# (SHOW STATUS goes to the backend: it is the backend connection's TLS).
cipher() { cli "$1" app "$MR_APP_PASSWORD" -N -B -e "SHOW STATUS LIKE 'Ssl_cipher'" 2>&1 | cut -f2; }

test_backend_tls_modes() {
  tls_backend_up
  local out
  through pref "{ mode: preferred }"
  assert_contains "$(cipher "$AUX_PORT")" "TLS_" "preferred: TLS when the server offers it"
  through off "{ mode: disabled }"
  assert_eq "" "$(cipher "$AUX_PORT")" "disabled: no TLS"
  through req "{ mode: required }"
  [ -n "$(cipher "$AUX_PORT")" ] || fail "required: no TLS"
  through ca "{ mode: verify_ca, ca: \"$TT/certs/ca.pem\" }"
  [ -n "$(cipher "$AUX_PORT")" ] || fail "verify_ca: no TLS"
  through ident "{ mode: verify_identity, ca: \"$TT/certs/ca.pem\" }"
  [ -n "$(cipher "$AUX_PORT")" ] || fail "verify_identity: no TLS (the certificate names 127.0.0.1)"
  # Another CA: verify_ca refuses the server, with the reason.
  through otherca "{ mode: verify_ca, ca: \"$TT/other/ca.pem\" }"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "ERROR 1429" "verify_ca with another CA"
  assert_contains "$out" "certificate verify failed" "says why"
  # The default: preferred, and the main MariaDB offers no TLS: plain.
  start_aux_daemon plainmain
  assert_eq "" "$(cipher "$AUX_PORT")" "preferred against a server without TLS"
  start_aux_daemon reqmain cluster.tls="{ mode: required }"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "does not offer TLS, and cluster 'main' has tls.mode required" "required against a server without TLS"
}

# verify_identity checks the name the proxy dialed: the certificate names
# 127.0.0.1 and localhost, not ::1... so a server reached as localhost passes
# and the check fails for a certificate that names neither.
test_backend_tls_verify_identity_fails() {
  tls_backend_up
  # A certificate of the same CA for another address.
  (cd "$TT/certs" && make_cert wrong ca "IP:10.9.9.9") || fail "cannot make the wrong certificate"
  mariadb_root "$TT/tlsdb" -e "SHUTDOWN" >/dev/null 2>&1
  wait_pid_gone "$BT_PID" 30 || fail "the TLS MariaDB did not stop"
  mariadb_start "$TT/tlsdb" "$BT_PORT" --ssl-ca="$TT/certs/ca.pem" --ssl-cert="$TT/certs/wrong.pem" \
    --ssl-key="$TT/certs/wrong.key" >/dev/null 2>&1 || fail "the TLS MariaDB did not restart"
  local out
  through ident "{ mode: verify_identity, ca: \"$TT/certs/ca.pem\" }"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "ERROR 1429" "verify_identity with a certificate for another address"
  assert_contains "$out" "mismatch" "says why"
  through ca "{ mode: verify_ca, ca: \"$TT/certs/ca.pem\" }"
  assert_contains "$(cipher "$AUX_PORT")" "TLS_" "verify_ca does not check the name"
}

# KILL QUERY goes over a side connection with the cluster's TLS settings.
test_backend_tls_kill_query() {
  tls_backend_up
  through req "{ mode: verify_identity, ca: \"$TT/certs/ca.pem\" }"
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(20)" >sleep.out 2>&1 &
  local sleeper=$! id="" t0 t1
  t0=$(now_ms)
  for _ in $(seq 50); do
    id=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e \
      "EXPLAIN KILL PROXYSESSION WHERE command = 'Query' AND user = 'app'" 2>/dev/null | cut -f2 | head -1)
    [ -n "$id" ] && break
    sleep 0.1
  done
  [ -n "$id" ] || fail "the SLEEP does not run: $(cat sleep.out) $(tail -5 "$AUX_LOG")"
  assert_eq "" "$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "KILL QUERY $id" 2>&1)" "KILL QUERY"
  wait "$sleeper"
  t1=$(now_ms)
  [ $((t1 - t0)) -lt 15000 ] || fail "the SLEEP(20) ran its course: KILL QUERY did not reach the TLS backend"
  # The client's error comes with the KILL; the side connection's check of
  # the process list, which the kill log records, a moment later.
  kill_confirmed() {
    cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYKILLS LIMIT 1" 2>&1 | grep -q "confirmed stopped"
  }
  wait_until 5 kill_confirmed ||
    assert_contains "$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYKILLS LIMIT 1" 2>&1)" \
      "confirmed stopped" "the side connection confirmed it"
}

test_backend_tls_config_checks() {
  need_proxy
  local out port
  port=$(free_port)
  write_config "$TT/a.yaml" port="$port" backend_port="$MR_DB_PORT" cluster.tls="{ mode: verify_ca }"
  out=$("$MYRELAYD" --check -c "$TT/a.yaml" 2>&1) && fail "verify_ca without ca was accepted"
  assert_contains "$out" "clusters[0].tls.ca: required by mode verify_ca" "verify_ca needs ca"
  write_config "$TT/b.yaml" port="$port" backend_port="$MR_DB_PORT" cluster.tls="{ mode: sometimes }"
  out=$("$MYRELAYD" --check -c "$TT/b.yaml" 2>&1) && fail "an unknown mode was accepted"
  assert_contains "$out" "unknown mode 'sometimes'" "unknown mode"
  write_config "$TT/c.yaml" port="$port" backend_port="$MR_DB_PORT" cluster.tls="{ mode: verify_ca, ca: \"$TT/nosuch.pem\" }"
  out=$("$MYRELAYD" --check -c "$TT/c.yaml" 2>&1) && fail "a missing CA file was accepted"
  assert_contains "$out" "$TT/nosuch.pem" "names the file"
}

# Health checks log in with the cluster's TLS settings too: with
# verify_identity they pass against the right certificate (alive) and fail
# against another CA's (down), while the monitor account is the same.
test_backend_tls_health_checks() {
  tls_backend_up
  local mon="{ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: 100 }"
  through good "{ mode: verify_identity, ca: \"$TT/certs/ca.pem\" }" "cluster.monitor=$mon"
  GOOD_PORT=$AUX_PORT
  wait_until 10 congestion_is "$GOOD_PORT" alive || fail "health checks over TLS: $(congestion "$GOOD_PORT")"
  # No SQL session gets through to ask there: myrelayctl reads the health.
  through bad "{ mode: verify_identity, ca: \"$TT/other/ca.pem\" }" "cluster.monitor=$mon"
  wait_until 10 ctl_says_down "$TT/bad.yaml" || fail "a health check with another CA: $(ctl_servers "$TT/bad.yaml")"
  grep -q "certificate verify failed" "$AUX_LOG" || fail "the log does not say why the check failed"
}
congestion() { cli "$1" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYCONGESTION" 2>&1; }
congestion_is() { [ "$(congestion "$1" | cut -f4 | head -1)" = "$2" ]; }
ctl_servers() { "$(dirname "$MYRELAYD")/myrelayctl" -c "$1" servers 2>&1; }
ctl_says_down() { ctl_servers "$1" | grep -q '| *down *|'; }
