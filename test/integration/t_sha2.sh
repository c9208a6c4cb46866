# caching_sha2_password towards clients (issue 14, item 3; DESIGN section
# 4b): real clients (the mariadb command line, PyMySQL, the C client) log in
# through the proxy with MySQL 8's default method: the fast path against a
# "sha2:" hash or a clear password, full authentication over TLS and, on
# plain TCP, with proxy.rsa_private_key; refused without either; wrong
# passwords 1045 for every method; COM_CHANGE_USER to a caching_sha2 user;
# the error when the backend's mysql_native_password needs a SHA1 the proxy
# cannot have; myrelayd --hash-password.  Each test runs its own myrelayd.

PY=/usr/bin/python3

# sha2_of PASSWORD / native_of PASSWORD: the stored forms, from myrelayd --hash-password.
sha2_of() { printf '%s\n' "$1" | "$MYRELAYD" --hash-password | sed -n 's/^caching_sha2_password: //p'; }
native_of() { printf '%s\n' "$1" | "$MYRELAYD" --hash-password | sed -n 's/^mysql_native_password: //p'; }

# sha2_daemon NAME [write_config key=value...]: a daemon at log level debug
# (the log says which method and path each login took), TLS on with the
# test CA's certificates in $TT/certs (CERTS).
sha2_daemon() {
  local name=$1
  shift
  CERTS=$TT/certs
  tls_make_certs "$CERTS" || fail "cannot make certificates"
  start_aux_daemon "$name" log_level=debug "proxy.tls={ cert: $CERTS/server.pem, key: $CERTS/server.key }" "$@"
}

# rsa_key: $TT/rsa/key.pem, a 2048-bit RSA key for proxy.rsa_private_key.
# rsa_sha2_daemon NAME: a sha2_daemon with proxy.rsa_private_key, whose app
# is a caching_sha2_password user stored as *HEX (full authentication).
rsa_sha2_daemon() {
  need_proxy
  "$PY" -c "import cryptography" 2>/dev/null || skip "PyMySQL's RSA needs python3-cryptography"
  rsa_key
  sha2_daemon "$1" proxy.rsa_private_key="$TT/rsa/key.pem" \
    app_user="{ name: app, password: \"$(native_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
}

rsa_key() {
  mkdir -p "$TT/rsa"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TT/rsa/key.pem" 2>/dev/null ||
    fail "cannot make an RSA key"
  chmod 600 "$TT/rsa/key.pem"
}

# The exact 1045 MySQL gives.
denied() { echo "ERROR 1045 (28000): Access denied for user '$1'@'127.0.0.1' (using password: YES)"; }

# pylogin PORT USER PASSWORD [ssl|plain] [rsa]: PyMySQL logs in and prints
# CURRENT_USER(), or the error's code and message.
pylogin() {
  "$PY" - "$@" <<'PYEOF' 2>&1
import sys, pymysql
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else "plain"
kw = {}
if mode == "ssl":
    import os
    kw["ssl_ca"] = os.environ["CERTS"] + "/ca.pem"
    kw["ssl_verify_cert"] = True
try:
    c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, database="test", **kw)
    cur = c.cursor()
    cur.execute("SELECT CURRENT_USER()")
    print("user=" + cur.fetchone()[0])
    c.close()
except pymysql.err.MySQLError as e:
    print("error=%d %s" % (e.args[0], e.args[1] if len(e.args) > 1 else ""))
PYEOF
}

test_sha2_hash_password_output() {
  local out
  out=$(printf 'secret\n' | "$MYRELAYD" --hash-password) || fail "--hash-password failed: $out"
  # Independently: MySQL's PASSWORD() and SHA256(SHA256()) by hashlib.
  local want
  want=$("$PY" -c "
import hashlib
p = b'secret'
print('mysql_native_password: *' + hashlib.sha1(hashlib.sha1(p).digest()).hexdigest().upper())
print('caching_sha2_password: sha2:' + hashlib.sha256(hashlib.sha256(p).digest()).hexdigest())")
  assert_eq "$want" "$out" "--hash-password's forms"
  # Empty input: an error, nothing printed.
  if out=$(printf '\n' | "$MYRELAYD" --hash-password 2>/dev/null); then fail "an empty password was hashed: $out"; fi
  [ -z "$out" ] || fail "output for an empty password: $out"
  if printf '' | "$MYRELAYD" --hash-password 2>/dev/null; then fail "no input was hashed"; fi
  # Both forms are accepted by the configuration, for the method each serves.
  write_config "$TT/h.yaml" port=1 backend_port=2 \
    app_user="{ name: app, password: \"$(sha2_of secret)\", auth_plugin: caching_sha2_password }" \
    app2_user="{ name: app2, password: \"$(native_of secret2)\" }" || fail "write_config"
  out=$("$MYRELAYD" -c "$TT/h.yaml" --check 2>&1) || fail "--check refused the hashes: $out"
  # And the sha2: form is refused for mysql_native_password, naming the key.
  write_config "$TT/h2.yaml" port=1 backend_port=2 \
    app_user="{ name: app, password: \"$(sha2_of secret)\", auth_plugin: mysql_native_password }" || fail "write_config"
  if out=$("$MYRELAYD" -c "$TT/h2.yaml" --check 2>&1); then fail "a sha2: hash for mysql_native_password was accepted"; fi
  assert_contains "$out" "tenants[1].users[0].auth_plugin" "the error names the key"
}

# Clear password in the configuration, caching_sha2_password: every client
# takes the fast path (the proxy announces mysql_native_password and
# switches, or announces caching_sha2_password), and the backend login
# uses SHA1 of the configured password.
test_sha2_fast_path_real_clients() {
  need_proxy
  sha2_daemon sha2fast app_user="{ name: app, password: \"$MR_APP_PASSWORD\", auth_plugin: caching_sha2_password }"
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app@%" "$out" "mariadb CLI (switched to caching_sha2_password)"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl --default-auth=caching_sha2_password -N -B \
    -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app@%" "$out" "mariadb CLI --default-auth=caching_sha2_password"
  grep -q "'app' from 127.0.0.1:[0-9]* authenticated with caching_sha2_password, fast path" "$AUX_LOG" ||
    fail "no fast-path login in the log"
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "PyMySQL, fast path"
  # Wrong passwords: 1045, MySQL's words.
  out=$(cli "$AUX_PORT" app wrong --skip-ssl -N -B -e "SELECT 1" 2>&1)
  assert_eq "$(denied app)" "$out" "mariadb CLI, wrong password"
  out=$(cli "$AUX_PORT" app wrong --skip-ssl --default-auth=caching_sha2_password -N -B -e "SELECT 1" 2>&1)
  assert_eq "$(denied app)" "$out" "mariadb CLI caching_sha2, wrong password"
  out=$(pylogin "$AUX_PORT" app wrong)
  assert_eq "error=1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)" "$out" "PyMySQL, wrong password"
  # A mysql_native_password user on the same proxy still logs in.
  out=$(cli "$AUX_PORT" app2 "$MR_APP2_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app2@%" "$out" "a native user beside"
  ! grep -q "$MR_APP_PASSWORD\|wrong" "$AUX_LOG" || fail "a password reached the log"
}

# The handshake announces caching_sha2_password (proxy.default_auth_plugin):
# no switch for clients that follow it; a native user gets switched back.
test_sha2_default_auth_plugin() {
  need_proxy
  sha2_daemon sha2def proxy.default_auth_plugin=caching_sha2_password \
    app2_user="{ name: app2, password: \"$MR_APP2_PASSWORD\", auth_plugin: mysql_native_password }"
  local out
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "PyMySQL, announced caching_sha2_password"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app@%" "$out" "mariadb CLI"
  out=$(cli "$AUX_PORT" app2 "$MR_APP2_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app2@%" "$out" "a mysql_native_password user, switched from caching_sha2_password"
  out=$(pylogin "$AUX_PORT" app2 "$MR_APP2_PASSWORD")
  assert_eq "user=app2@%" "$out" "PyMySQL, native user"
  out=$(pylogin "$AUX_PORT" app2 wrong)
  assert_eq "error=1045 Access denied for user 'app2'@'127.0.0.1' (using password: YES)" "$out" "native, wrong password"
  out=$(pylogin "$AUX_PORT" nosuchuser x)
  assert_eq "error=1045 Access denied for user 'nosuchuser'@'127.0.0.1' (using password: YES)" "$out" "unknown user"
}

# Only SHA256(SHA256(pw)) in the configuration: the client is checked (the
# fast path), but the backend's mysql_native_password needs SHA1(pw): the
# client is told what to configure.
test_sha2_hash_only_backend_needs_clear_password() {
  need_proxy
  sha2_daemon sha2only app_user="{ name: app, password: \"$(sha2_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "ERROR 1251" "no SHA1 for the backend"
  assert_contains "$out" "mysql_native_password" "the error names the backend's method"
  assert_contains "$out" "clear text" "and what to configure"
  assert_contains "$out" "auth_plugin: mysql_native_password" "or the other way"
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_contains "$out" "error=1251" "PyMySQL gets it too"
  # A wrong password is still 1045 (checked before the backend is thought of).
  out=$(cli "$AUX_PORT" app wrong --skip-ssl -N -B -e "SELECT 1" 2>&1)
  assert_eq "$(denied app)" "$out" "wrong password against a sha2: hash"
  # Full authentication over TLS gives the clear password: then it works.
  out=$(CERTS=$CERTS pylogin "$AUX_PORT" app "$MR_APP_PASSWORD" ssl)
  assert_contains "$out" "error=1251" "a sha2: hash takes the fast path even over TLS"
}

# Only "*HEX": caching_sha2_password needs full authentication, which the
# proxy accepts over TLS; the clear password then serves the backend login.
test_sha2_full_auth_over_tls() {
  need_proxy
  sha2_daemon sha2full app_user="{ name: app, password: \"$(native_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local out
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --ssl --ssl-verify-server-cert --ssl-ca="$CERTS/ca.pem" -N -B \
    -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app@%" "$out" "mariadb CLI, full authentication over TLS"
  out=$(CERTS=$CERTS pylogin "$AUX_PORT" app "$MR_APP_PASSWORD" ssl)
  assert_eq "user=app@%" "$out" "PyMySQL, full authentication over TLS"
  grep -q "authenticated with caching_sha2_password, full authentication over TLS" "$AUX_LOG" ||
    fail "no full authentication in the log"
  out=$(cli "$AUX_PORT" app wrong --ssl --ssl-verify-server-cert --ssl-ca="$CERTS/ca.pem" -N -B -e "SELECT 1" 2>&1)
  assert_eq "$(denied app)" "$out" "mariadb CLI, wrong password over TLS"
  out=$(CERTS=$CERTS pylogin "$AUX_PORT" app wrong ssl)
  assert_eq "error=1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)" "$out" \
    "PyMySQL, wrong password over TLS"
  # Plain TCP without an RSA key: refused as MySQL refuses it, and logged.
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "error=1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)" "$out" \
    "PyMySQL, full authentication on plain TCP without RSA"
  grep -q "full authentication needs TLS or proxy.rsa_private_key" "$AUX_LOG" || fail "the log does not say why"
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "ERROR" "mariadb CLI, plain TCP without RSA"
  ! grep -q "$MR_APP_PASSWORD\|wrong" "$AUX_LOG" || fail "a password reached the log"
}

# proxy.rsa_private_key: full authentication on plain TCP, the password
# RSA-encrypted with the key the client asks for.
test_sha2_full_auth_rsa() {
  rsa_sha2_daemon sha2rsa
  local out
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "PyMySQL, full authentication with RSA"
  grep -q "authenticated with caching_sha2_password, full authentication with RSA" "$AUX_LOG" ||
    fail "no RSA login in the log"
  out=$(pylogin "$AUX_PORT" app wrong)
  assert_eq "error=1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)" "$out" \
    "PyMySQL, wrong password with RSA"
  # The mariadb command line asks for the key too.
  out=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_eq "app@%" "$out" "mariadb CLI, full authentication with RSA"
  out=$(cli "$AUX_PORT" app wrong --skip-ssl -N -B -e "SELECT 1" 2>&1)
  assert_eq "$(denied app)" "$out" "mariadb CLI, wrong password with RSA"
  # A world-readable key is refused at start, naming the file.
  chmod 644 "$TT/rsa/key.pem"
  write_config "$TT/wr.yaml" port=1 backend_port=2 proxy.rsa_private_key="$TT/rsa/key.pem" || fail "write_config"
  if out=$("$MYRELAYD" -c "$TT/wr.yaml" --check 2>&1); then fail "a world-readable key was accepted"; fi
  assert_contains "$out" "proxy.rsa_private_key" "the error names the key"
  assert_contains "$out" "readable by every user" "and why"
}

# Garbage in caching_sha2_password's packets: the session ends with an
# error, the proxy stays.
test_sha2_malformed_auth_data() {
  need_proxy
  rsa_key
  sha2_daemon sha2bad proxy.rsa_private_key="$TT/rsa/key.pem" \
    app_user="{ name: app, password: \"$(native_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }" \
    app2_user="{ name: app2, password: \"$MR_APP2_PASSWORD\", auth_plugin: caching_sha2_password }"
  local out
  out=$("$PY" - "$AUX_PORT" <<'PYEOF' 2>&1
import socket, struct, sys
port = int(sys.argv[1])

def pkt(s, seq, payload):
    s.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)

def read(s):
    h = b""
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c: return None
        h += c
    n = h[0] | h[1] << 8 | h[2] << 16
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: return None
        b += c
    return b

def login(user, answer, plugin=b"caching_sha2_password"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    read(s)
    caps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00000001 | 0x00000004
    body = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user + b"\0"
    body += bytes([len(answer)]) + answer + plugin + b"\0"
    pkt(s, 1, body)
    return s

results = []
def err(r):
    return "E%d" % struct.unpack("<H", r[1:3])[0] if r and r[0] == 0xff else repr(r)

# A short scramble, one too long.
for ans in (b"x" * 5, b"y" * 200):
    s = login(b"app2", ans)
    results.append(err(read(s)))
    s.close()
# Empty (libmariadb's way of asking for a nonce of its method): an auth
# switch, then empty again: denied.
s = login(b"app2", b"")
r = read(s); assert r[0] == 0xfe and r[1:23] == b"caching_sha2_password\0" and len(r) == 1 + 22 + 21, r
pkt(s, 3, b"")
results.append(err(read(s)))
s.close()
# Full authentication: garbage for the RSA cipher, after asking for the key.
s = login(b"app", b"z" * 32)
r = read(s); assert r == b"\x01\x04", r
pkt(s, 3, b"\x02")
r = read(s); assert r[0] == 1 and b"BEGIN PUBLIC KEY" in r, r
pkt(s, 5, b"\xff" * 256)
r = read(s)
results.append("E%d" % struct.unpack("<H", r[1:3])[0] if r and r[0] == 0xff else repr(r))
s.close()
# A clear password on plain TCP (not asking for the key): refused.
s = login(b"app", b"z" * 32)
read(s)
pkt(s, 3, b"secret\0")
r = read(s)
results.append("E%d" % struct.unpack("<H", r[1:3])[0] if r and r[0] == 0xff else repr(r))
s.close()
# Hung up in the middle.
s = login(b"app", b"z" * 32)
read(s)
s.close()
print(" ".join(results))
PYEOF
)
  assert_eq "E1045 E1045 E1045 E1045 E1045" "$out" "malformed caching_sha2 data"
  pid_alive "$AUX_PID" || fail "the proxy died"
  out=$(pylogin "$AUX_PORT" app2 "$MR_APP2_PASSWORD")
  assert_eq "user=app2@%" "$out" "the proxy still serves"
}

# COM_CHANGE_USER to a caching_sha2_password user (the C client asks with
# mysql_native_password: the proxy switches within the change user).
test_sha2_change_user() {
  need_proxy
  need_client
  sha2_daemon sha2cu app2_user="{ name: app2, password: \"$MR_APP2_PASSWORD\", auth_plugin: caching_sha2_password }"
  local out
  out=$("$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test change_user app2 "$MR_APP2_PASSWORD" 2>&1) ||
    fail "change_user to a caching_sha2 user: $out"
  assert_contains "$out" "after change_user(app2): CURRENT_USER()=app2@%" "change_user to app2"
  grep -q "'app2' from 127.0.0.1:[0-9]* authenticated with caching_sha2_password, fast path" "$AUX_LOG" ||
    fail "the change user did not use caching_sha2_password"
  out=$("$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test change_user app2 wrong 2>&1)
  assert_contains "$out" "Access denied for user 'app2'@'127.0.0.1' (using password: YES)" "a wrong password"
}

# phplogin PORT USER PASSWORD [ssl]: PHP's mysqli (mysqlnd) logs in and
# prints CURRENT_USER(), or the error's code and message.
phplogin() {
  CERTS=${CERTS:-} php -r '
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    [$port, $user, $pw] = [(int)$argv[1], $argv[2], $argv[3]];
    $ssl = ($argv[4] ?? "") === "ssl";
    try {
      $m = mysqli_init();
      $flags = 0;
      if ($ssl) { $m->ssl_set(null, null, getenv("CERTS") . "/ca.pem", null, null); $flags = MYSQLI_CLIENT_SSL; }
      $m->real_connect("127.0.0.1", $user, $pw, "test", $port, null, $flags);
      echo "user=", $m->query("SELECT CURRENT_USER()")->fetch_row()[0], "\n";
    } catch (mysqli_sql_exception $e) {
      echo "error=", $e->getCode(), " ", $e->getMessage(), "\n";
    }' "$@" 2>&1
}

# PHP's mysqlnd: the fast path (switched to, and announced), full
# authentication over TLS, wrong passwords.
test_sha2_php_mysqli() {
  need_proxy
  command -v php >/dev/null && php -m | grep -qx mysqli || skip "php with mysqli is not installed (php-cli php-mysql)"
  sha2_daemon sha2php app_user="{ name: app, password: \"$MR_APP_PASSWORD\", auth_plugin: caching_sha2_password }" \
    app2_user="{ name: app2, password: \"$(native_of "$MR_APP2_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local out
  out=$(phplogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "mysqli, fast path"
  out=$(phplogin "$AUX_PORT" app wrong)
  assert_eq "error=1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)" "$out" "mysqli, wrong password"
  out=$(CERTS=$CERTS phplogin "$AUX_PORT" app2 "$MR_APP2_PASSWORD" ssl)
  assert_eq "user=app2@%" "$out" "mysqli, full authentication over TLS"
  out=$(CERTS=$CERTS phplogin "$AUX_PORT" app2 wrong ssl)
  assert_eq "error=1045 Access denied for user 'app2'@'127.0.0.1' (using password: YES)" "$out" \
    "mysqli, wrong password over TLS"
  grep -q "'app2' from 127.0.0.1:[0-9]* authenticated with caching_sha2_password, full authentication over TLS" \
    "$AUX_LOG" || fail "no full authentication in the log"
}

# reloaded_since N: the aux daemon's log says "configuration reloaded" more than N times.
reloaded_since() { [ "$(grep -c 'configuration reloaded' "$AUX_LOG")" -gt "$1" ]; }

# SIGHUP reads proxy.rsa_private_key again: a file that is no key rejects
# the reload (the running key stays in use), a new key is taken.
test_sha2_rsa_key_reload() {
  rsa_sha2_daemon sha2hup
  local out
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "RSA before the reload"
  echo "not a key" >"$TT/rsa/key.pem"
  kill -HUP "$AUX_PID"
  wait_until 10 grep -q "reload rejected.*proxy.rsa_private_key" "$AUX_LOG" || fail "a broken key was not rejected"
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "the old key after a rejected reload"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TT/rsa/key.pem" 2>/dev/null || fail "new key"
  chmod 600 "$TT/rsa/key.pem"
  local before
  before=$(grep -c "configuration reloaded" "$AUX_LOG")
  kill -HUP "$AUX_PID"
  wait_until 10 reloaded_since "$before" || fail "the new key was not loaded"
  out=$(pylogin "$AUX_PORT" app "$MR_APP_PASSWORD")
  assert_eq "user=app@%" "$out" "RSA with the new key"
}

# ---------------------------------------------------------------- towards backends

# myrelay in front of myrelay: the front proxy logs in to a back proxy whose
# user speaks caching_sha2_password, as it would to MySQL 8.  The back proxy
# logs in to MariaDB.  The front answers the back's switch with the fast
# path (SHA256 of the password: from its clear password, or from the
# client's own caching_sha2 answer), and full authentication with the clear
# password, over TLS or RSA-encrypted.
# back NAME [write_config key=value...] / front NAME BACK_PORT [...]
back() { sha2_daemon "$@"; BACK_PORT=$AUX_PORT; BACK_LOG=$AUX_LOG; }
front() {
  local name=$1 port=$2
  shift 2
  start_aux_daemon "$name" log_level=debug backend_port="$port" "$@"
  FRONT_PORT=$AUX_PORT
  FRONT_LOG=$AUX_LOG
}
through_both() { cli "$FRONT_PORT" app "$MR_APP_PASSWORD" --skip-ssl -N -B -e "SELECT CURRENT_USER()" 2>&1; }

test_sha2_backend_fast_path() {
  need_proxy
  back back app_user="{ name: app, password: \"$MR_APP_PASSWORD\", auth_plugin: caching_sha2_password }"
  # The front holds the clear password; its client speaks mysql_native_password.
  front frontclear "$BACK_PORT"
  assert_eq "app@%" "$(through_both)" "front (clear password) -> back (caching_sha2) -> MariaDB"
  grep -q "authenticated with caching_sha2_password, fast path" "$BACK_LOG" || fail "the back proxy saw no fast path"
  # The front holds only sha2:; its client answers caching_sha2 and so
  # gives the front SHA256(pw) for the back's fast path.
  front frontsha2 "$BACK_PORT" \
    app_user="{ name: app, password: \"$(sha2_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
  assert_eq "app@%" "$(through_both)" "front (sha2: only, client fast path) -> back"
  # The front holds only the native hash and its client speaks native: it
  # has neither SHA256(pw) nor the password.
  front frontnative "$BACK_PORT" app_user="{ name: app, password: \"$(native_of "$MR_APP_PASSWORD")\" }"
  local out
  out=$(through_both)
  assert_contains "$out" "ERROR 1251" "nothing to answer caching_sha2_password with"
  assert_contains "$out" "wants caching_sha2_password for user 'app'" "the error names the method"
  assert_contains "$out" "clear text" "and what to configure"
}

test_sha2_backend_full_auth() {
  need_proxy
  rsa_key
  # The back holds only the native hash: it must ask for full authentication.
  back backfull proxy.rsa_private_key="$TT/rsa/key.pem" \
    app_user="{ name: app, password: \"$(native_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
  # Over plain TCP: the front asks for the public key and encrypts.
  front frontrsa "$BACK_PORT" cluster.tls="{ mode: disabled }"
  assert_eq "app@%" "$(through_both)" "full authentication, RSA"
  grep -q "full authentication with RSA" "$BACK_LOG" || fail "the back proxy saw no RSA full authentication"
  # Over TLS (the back offers it): the password goes as is.
  front fronttls "$BACK_PORT" cluster.tls="{ mode: verify_identity, ca: \"$CERTS/ca.pem\" }"
  assert_eq "app@%" "$(through_both)" "full authentication over TLS"
  grep -q "full authentication over TLS" "$BACK_LOG" || fail "the back proxy saw no full authentication over TLS"
  # Without the clear password the front cannot.
  front frontnone "$BACK_PORT" cluster.tls="{ mode: disabled }" \
    app_user="{ name: app, password: \"$(sha2_of "$MR_APP_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local out
  out=$(through_both)
  assert_contains "$out" "asks for full caching_sha2_password authentication" "no clear password for full authentication"
  ! grep -q "$MR_APP_PASSWORD" "$FRONT_LOG" "$BACK_LOG" || fail "a password reached a log"
}

# DBD::MariaDB (Perl) and mysql2 (Ruby), both on libmariadb: the fast path
# when the proxy switches them to caching_sha2_password, full
# authentication over TLS, and a wrong password.
test_sha2_perl_and_ruby() {
  need_proxy
  perl -MDBD::MariaDB -e 1 2>/dev/null || fail "DBD::MariaDB is not installed (apt-get install libdbd-mariadb-perl)"
  ruby -e 'require "mysql2"' 2>/dev/null || fail "mysql2 is not installed (apt-get install ruby-mysql2)"
  sha2_daemon sha2pr app_user="{ name: app, password: \"$MR_APP_PASSWORD\", auth_plugin: caching_sha2_password }" \
    app2_user="{ name: app2, password: \"$(native_of "$MR_APP2_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local perl_login='
    use DBI;
    my ($port, $user, $pw, $tls) = @ARGV;
    my $dsn = "DBI:MariaDB:database=test;host=127.0.0.1;port=$port" .
              ($tls ? ";mariadb_ssl=1;mariadb_ssl_verify_server_cert=1;mariadb_ssl_ca_file=$ENV{CERTS}/ca.pem" : "");
    my $dbh = DBI->connect($dsn, $user, $pw, { PrintError => 0, RaiseError => 0 });
    if (!$dbh) { print "error=$DBI::err\n"; exit 0 }
    print "user=" . $dbh->selectrow_array("SELECT CURRENT_USER()") . "\n";'
  local ruby_login='
    require "mysql2"
    port, user, pw, tls = ARGV
    opts = { host: "127.0.0.1", port: port.to_i, username: user, password: pw, database: "test" }
    opts.merge!(sslca: ENV["CERTS"] + "/ca.pem", sslverify: true) if tls
    begin
      c = Mysql2::Client.new(**opts)
      puts "user=" + c.query("SELECT CURRENT_USER() AS u").first["u"]
    rescue Mysql2::Error => e
      puts "error=#{e.error_number}"
    end'
  assert_eq "user=app@%" "$(perl -e "$perl_login" "$AUX_PORT" app "$MR_APP_PASSWORD" 2>&1)" "DBD::MariaDB, fast path"
  assert_eq "user=app2@%" "$(CERTS=$CERTS perl -e "$perl_login" "$AUX_PORT" app2 "$MR_APP2_PASSWORD" tls 2>&1)" \
    "DBD::MariaDB, full authentication over TLS"
  assert_eq "error=1045" "$(perl -e "$perl_login" "$AUX_PORT" app wrong 2>&1)" "DBD::MariaDB, wrong password"
  assert_eq "user=app@%" "$(ruby -e "$ruby_login" "$AUX_PORT" app "$MR_APP_PASSWORD" 2>&1)" "mysql2, fast path"
  assert_eq "user=app2@%" "$(CERTS=$CERTS ruby -e "$ruby_login" "$AUX_PORT" app2 "$MR_APP2_PASSWORD" tls 2>&1)" \
    "mysql2, full authentication over TLS"
  assert_eq "error=1045" "$(ruby -e "$ruby_login" "$AUX_PORT" app wrong 2>&1)" "mysql2, wrong password"
  grep -q "'app2'.*authenticated with caching_sha2_password, full authentication over TLS\|app2.*full authentication over TLS" "$AUX_LOG" ||
    fail "the log does not show full authentication over TLS for app2"
}

# Connector/J (MariaDB's, Java): the fast path, full authentication over TLS,
# a wrong password.
test_sha2_connector_j() {
  need_proxy
  local jar=/usr/share/java/mariadb-java-client.jar
  [ -f "$jar" ] && command -v java >/dev/null ||
    fail "Connector/J is not installed (apt-get install default-jdk-headless libmariadb-java)"
  sha2_daemon sha2j app_user="{ name: app, password: \"$MR_APP_PASSWORD\", auth_plugin: caching_sha2_password }" \
    app2_user="{ name: app2, password: \"$(native_of "$MR_APP2_PASSWORD")\", auth_plugin: caching_sha2_password }"
  local j=(java -cp "$jar" "$MR_IT_DIR/JdbcLogin.java" "$AUX_PORT")
  assert_eq "user=app@%" "$("${j[@]}" app "$MR_APP_PASSWORD" 2>&1)" "Connector/J, fast path"
  assert_eq "user=app2@%" "$("${j[@]}" app2 "$MR_APP2_PASSWORD" "$CERTS/ca.pem" 2>&1)" \
    "Connector/J, full authentication over TLS"
  assert_eq "error=1045" "$("${j[@]}" app wrong 2>&1)" "Connector/J, wrong password"
}
