# TLS towards clients (issue 14, part 1; DESIGN section 4b): real clients
# (the mariadb command line, PyMySQL, the C client) over TLS through the
# proxy with the test CA's certificate checked, require_tls, using_ssl and
# tls_version, client certificates, SIGHUP with a broken pair, a key file
# every user can read, and garbage in the handshake.  Each test runs its own
# myrelayd (start_aux_daemon) with certificates made in its directory.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
PY=/usr/bin/python3

# tls_daemon NAME [write_config key=value...]: certificates in $TT/certs
# (CERTS) and a daemon with proxy.tls set to them.
tls_daemon() {
  local name=$1
  shift
  CERTS=$TT/certs
  tls_make_certs "$CERTS" || fail "cannot make certificates"
  start_aux_daemon "$name" "proxy.tls={ cert: $CERTS/server.pem, key: $CERTS/server.key }" "$@"
  CFG="$TT/$name.yaml"
}

# scli USER PASSWORD [mariadb args...]: the mariadb command line over TLS to
# the aux daemon, its certificate checked against the test CA.
scli() {
  local user=$1 pass=$2
  shift 2
  cli "$AUX_PORT" "$user" "$pass" -D test --ssl --ssl-verify-server-cert --ssl-ca="$CERTS/ca.pem" "$@"
}

test_tls_mariadb_cli_status_shows_cipher() {
  need_proxy
  tls_daemon tlscli
  local out
  out=$(scli app "$MR_APP_PASSWORD" -e '\s' 2>&1) || fail "TLS login failed: $out"
  grep -q "^SSL:.*Cipher in use is [A-Z0-9_-]" <<<"$out" || fail "\\s shows no cipher: $out"
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT CURRENT_USER(), DATABASE(); SELECT COUNT(*) FROM big" 2>&1) ||
    fail "queries over TLS: $out"
  assert_eq "$(printf 'app@%%\ttest\n%s' "$MR_BIG_ROWS")" "$out" "queries over TLS"
  # A big result: many records, the client's buffers full.
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT * FROM big" | wc -l)
  assert_eq "$MR_BIG_ROWS" "$out" "rows of big over TLS"
}

test_tls_session_shows_using_ssl_and_version() {
  need_proxy
  tls_daemon tlsview
  local out
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SHOW PROXYSESSION; SHOW PROXYSESSION ATTRIBUTE LIKE 'tls%'; SHOW PROXYSESSION ATTRIBUTE LIKE 'using_ssl'" 2>&1) ||
    fail "TLS login failed: $out"
  assert_eq 1 "$(head -1 <<<"$out" | awk -F'\t' '{print $13}')" "using_ssl in SHOW PROXYSESSION"
  grep -qP '^tls_version\tTLSv1\.[23]\t' <<<"$out" || fail "no tls_version: $out"
  grep -qP '^tls_cipher\t[A-Z0-9_-]+\t' <<<"$out" || fail "no tls_cipher: $out"
  grep -qP '^using_ssl\t1\t' <<<"$out" || fail "ATTRIBUTE using_ssl: $out"
  # Without TLS on the same proxy: 0, and the TLS rows are NULL.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SHOW PROXYSESSION ATTRIBUTE LIKE 'using_ssl'; SHOW PROXYSESSION ATTRIBUTE LIKE 'tls%'" 2>&1) ||
    fail "plain login on a TLS proxy failed: $out"
  grep -qP '^using_ssl\t0\t' <<<"$out" || fail "plain session's using_ssl: $out"
  grep -qP '^tls_version\tNULL\t' <<<"$out" || fail "plain session's tls_version: $out"
  # myrelayctl reads the same from shared memory.
  [ -x "$CTL" ] || fail "$CTL is not built"
  local fifo=$TT/s.in fd id
  mkfifo "$fifo"
  scli app "$MR_APP_PASSWORD" -N -B --unbuffered <"$fifo" >"$TT/s.out" 2>&1 &
  exec {fd}>"$fifo"
  echo "SELECT CONNECTION_ID();" >&"$fd"
  wait_until 10 grep -q . "$TT/s.out" || fail "TLS session did not start"
  id=$("$CTL" -c "$CFG" sessions --json | jq -r '.sessions[] | select((.using_ssl | tostring) == "1") | .Id' | head -1)
  [ -n "$id" ] || fail "myrelayctl shows no session with using_ssl 1: $("$CTL" -c "$CFG" sessions 2>&1)"
  out=$("$CTL" -c "$CFG" session "$id" 2>&1) || fail "myrelayctl session $id: $out"
  grep -q "tls_version.*TLSv1\.[23]" <<<"$out" || fail "myrelayctl session shows no tls_version: $out"
  exec {fd}>&-
}

test_tls_pymysql() {
  need_proxy
  tls_daemon tlspy
  local out
  out=$("$PY" - "$AUX_PORT" "$MR_APP_PASSWORD" "$CERTS/ca.pem" <<'PYEOF' 2>&1
import sys, pymysql
port, pw, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = pymysql.connect(host="127.0.0.1", port=port, user="app", password=pw, database="test",
                    ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
cur = c.cursor()
cur.execute("SELECT REPEAT('x', 100000)")
assert len(cur.fetchone()[0]) == 100000
cur.execute("SHOW PROXYSESSION ATTRIBUTE LIKE 'tls_version'")
print(c._sock.version(), cur.fetchone()[1])
c.close()
PYEOF
) || fail "PyMySQL over TLS: $out"
  grep -qP '^(TLSv1\.[23]) \1$' <<<"$out" || fail "PyMySQL's TLS version and the proxy's differ: $out"
}

test_tls_c_client() {
  need_proxy
  need_client
  tls_daemon tlsc
  local out
  out=$(MR_SSL_CA=$CERTS/ca.pem "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test tls 2>&1) ||
    fail "C client over TLS: $out"
  grep -q "^tls [A-Z0-9_-]*$" <<<"$out" || fail "C client sees no cipher: $out"
  grep -q "^tls none$" <<<"$out" && fail "C client did not use TLS: $out"
  # Prepared statements and a 20 MiB parameter (packets over 16 MiB) over TLS.
  out=$(MR_SSL_CA=$CERTS/ca.pem "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test prepared 2>&1) ||
    fail "prepared statements over TLS: $out"
  out=$(MR_SSL_CA=$CERTS/ca.pem "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test longdata 20 2>&1) ||
    fail "20 MiB over TLS: $out"
  # And without TLS to the same proxy.
  out=$("$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test tls 2>&1) || fail "C client, plain: $out"
  assert_eq "tls none" "$out" "C client without TLS"
}

test_tls_require_tls_tenant() {
  need_proxy
  tls_daemon tlsreq app.require_tls=true
  local out want="ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -D test -e "SELECT 1" 2>&1) && fail "a plain login succeeded: $out"
  assert_eq "$want" "$out" "plain login to a require_tls tenant"
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) || fail "TLS login refused: $out"
  assert_eq 1 "$out" "TLS login"
  # Other tenants are not affected.
  out=$(cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SELECT 1" 2>&1) || fail "root@sys refused: $out"
}

test_tls_require_tls_user() {
  need_proxy
  need_client
  CERTS=$TT/certs
  tls_make_certs "$CERTS" || fail "cannot make certificates"
  AUX_PORT=$(free_port) || fail "no free port"
  AUX_LOG=$MR_TMP/daemon-tlsuser.log
  write_config "$TT/tlsuser.yaml" port="$AUX_PORT" backend_port="$MR_DB_PORT" workers=2 name=tlsuser \
    shutdown_grace_s=2 "proxy.tls={ cert: $CERTS/server.pem, key: $CERTS/server.key }" || fail "write_config"
  sed -i 's/^\(      - { name: app2, password: ".*"\) }$/\1, require_tls: true }/' "$TT/tlsuser.yaml"
  grep -q "name: app2.*require_tls: true" "$TT/tlsuser.yaml" || fail "config edit: $(cat "$TT/tlsuser.yaml")"
  myrelayd_start "$TT/tlsuser.yaml" "$AUX_LOG" || fail "myrelayd did not start: $(tail -5 "$AUX_LOG")"
  AUX_PIDS+=("$MYRELAYD_PID")
  local out want="ERROR 1045 (28000): Access denied for user 'app2'@'127.0.0.1' (using password: YES)"
  out=$(cli "$AUX_PORT" app2 "$MR_APP2_PASSWORD" --skip-ssl -e "SELECT 1" 2>&1) && fail "app2 logged in without TLS"
  assert_eq "$want" "$out" "app2 without TLS"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT 1" 2>&1) || fail "app (no require_tls) refused: $out"
  out=$(scli app2 "$MR_APP2_PASSWORD" -N -B -e "SELECT CURRENT_USER()" 2>&1) || fail "app2 over TLS refused: $out"
  assert_eq "app2@%" "$out" "app2 over TLS"
  # COM_CHANGE_USER to app2 on a plain session is refused as well.
  out=$("$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test change_user app2 "$MR_APP2_PASSWORD" 2>&1) &&
    fail "change_user to app2 without TLS succeeded: $out"
  assert_contains "$out" "1045" "change_user to app2 without TLS"
}

test_tls_client_certificate_checked() {
  need_proxy
  CERTS=$TT/certs
  tls_make_certs "$CERTS" || fail "cannot make certificates"
  tls_make_certs "$TT/other" || fail "cannot make other certificates"
  start_aux_daemon tlsca "proxy.tls={ cert: $CERTS/server.pem, key: $CERTS/server.key, ca: $CERTS/ca.pem }"
  local out
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) && fail "a client without a certificate got in: $out"
  out=$(scli app "$MR_APP_PASSWORD" --ssl-cert="$TT/other/client.pem" --ssl-key="$TT/other/client.key" \
    -N -B -e "SELECT 1" 2>&1) && fail "a certificate of another CA got in: $out"
  out=$(scli app "$MR_APP_PASSWORD" --ssl-cert="$CERTS/client.pem" --ssl-key="$CERTS/client.key" \
    -N -B -e "SELECT 1" 2>&1) || fail "the CA's client certificate was refused: $out"
  assert_eq 1 "$out" "with a client certificate"
  grep -q "TLS handshake failed" "$AUX_LOG" || fail "the refusals are not logged: $(tail -5 "$AUX_LOG")"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_tls_sighup_broken_pair_keeps_old() {
  need_proxy
  tls_daemon tlshup
  local out
  # Another CA's pair, and a key that does not match the certificate.
  tls_make_certs "$TT/new" || fail "cannot make new certificates"
  cp "$TT/new/server.key" "$CERTS/server.key"
  kill -HUP "$AUX_PID"
  wait_until 10 grep -q "reload rejected" "$AUX_LOG" || fail "broken pair not rejected: $(tail -3 "$AUX_LOG")"
  grep "reload rejected" "$AUX_LOG" | grep -q "$CERTS/server.key" || fail "the message names no file: $(grep 'reload rejected' "$AUX_LOG")"
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) || fail "the old pair is not in use: $out"
  # The whole new pair: new sessions use it (the old CA no longer verifies).
  cp "$TT/new/server.pem" "$CERTS/server.pem"
  kill -HUP "$AUX_PID"
  wait_until 10 grep -q "configuration reloaded" "$AUX_LOG" || fail "no reload: $(tail -3 "$AUX_LOG")"
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) && fail "still the old certificate: $out"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --ssl --ssl-verify-server-cert --ssl-ca="$TT/new/ca.pem" \
    -N -B -e "SELECT 1" 2>&1) || fail "the new certificate is not in use: $out"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_tls_world_readable_key_refused() {
  need_proxy
  CERTS=$TT/certs
  tls_make_certs "$CERTS" || fail "cannot make certificates"
  chmod 644 "$CERTS/server.key"
  local port out rc
  port=$(free_port) || fail "no free port"
  write_config "$TT/wr.yaml" port="$port" backend_port="$MR_DB_PORT" name=wr \
    "proxy.tls={ cert: $CERTS/server.pem, key: $CERTS/server.key }" || fail "write_config"
  out=$(timeout 20 "$MYRELAYD" -c "$TT/wr.yaml" 2>&1)
  rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "myrelayd started (status $rc): $out"
  assert_contains "$out" "$CERTS/server.key" "the message names the key file"
  assert_contains "$out" "0644" "the message says the mode"
  port_open "$port" && fail "something listens on $port"
  return 0
}

test_tls_garbage_handshake_ends_only_that_session() {
  need_proxy
  tls_daemon tlsjunk
  local out
  out=$("$PY" - "$AUX_PORT" <<'PYEOF' 2>&1
import socket, struct, sys
port = int(sys.argv[1])
for junk in (b"\x16\x03\x01\x00\x05hello" + b"\x00" * 300, b"GET / HTTP/1.0\r\n\r\n", b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    hdr = s.recv(4)
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    greeting = b""
    while len(greeting) < n:
        greeting += s.recv(n - len(greeting))
    caps = struct.unpack("<H", greeting[greeting.index(b"\0", 1) + 1 + 4 + 9:][:2])[0]
    assert caps & 0x800, "CLIENT_SSL not offered"
    # SSLRequest: capabilities (PROTOCOL_41 | SSL | SECURE_CONNECTION), max packet, charset, filler
    req = struct.pack("<IIB23x", 0x200 | 0x800 | 0x8000, 1 << 24, 45)
    s.sendall(struct.pack("<I", len(req))[:3] + b"\x01" + req + junk)
    if not junk:
        s.shutdown(socket.SHUT_WR)
    data = b"x"
    while data:
        data = s.recv(4096)
    s.close()
print("closed")
PYEOF
) || fail "raw client: $out"
  assert_eq closed "$out" "every garbage handshake ends its connection"
  pid_alive "$AUX_PID" || fail "myrelayd died"
  wait_until 5 grep -q "TLS handshake failed" "$AUX_LOG" || fail "not logged: $(tail -5 "$AUX_LOG")"
  out=$(scli app "$MR_APP_PASSWORD" -N -B -e "SELECT 1" 2>&1) || fail "TLS after garbage: $out"
  assert_eq 1 "$out" "a good session after the garbage"
}
