# Logging in: the three login-name forms, users of both tenants, the exact
# 1045 errors, database and character set carried to the backend, ids.

test_login_user() {
  local out
  out=$(tq "SELECT CURRENT_USER(), DATABASE()" 2>&1) || fail "login as app failed: $out"
  assert_eq $'app@%\ttest' "$out" "CURRENT_USER(), DATABASE()"
}

test_login_user_at_tenant() {
  need_proxy
  local out
  out=$(cli "$MR_PORT" app@app "$MR_APP_PASSWORD" -D test -N -B -e "SELECT CURRENT_USER()" 2>&1) ||
    fail "login as app@app failed: $out"
  assert_eq 'app@%' "$out" "CURRENT_USER()"
}

test_login_user_at_tenant_cluster() {
  need_proxy
  local out
  out=$(cli "$MR_PORT" 'app@app#main' "$MR_APP_PASSWORD" -D test -N -B -e "SELECT CURRENT_USER()" 2>&1) ||
    fail "login as app@app#main failed: $out"
  assert_eq 'app@%' "$out" "CURRENT_USER()"
}

test_login_privileged_root_at_sys() {
  local login=root@sys want out
  [ "$MR_MODE" = direct ] && login=root
  want=$(cli "$MR_DB_PORT" root "$MR_ROOT_PASSWORD" -N -B -e "SELECT CURRENT_USER()" 2>&1)
  out=$(cli "$MR_PORT" "$login" "$MR_ROOT_PASSWORD" -N -B -e "SELECT CURRENT_USER()" 2>&1) ||
    fail "login as $login failed: $out"
  assert_eq "$want" "$out" "CURRENT_USER() of $login"
}

test_login_second_user_hashed_password() {
  # app2's password is written in the config as the "*HEX" hash.
  local out
  out=$(cli "$MR_PORT" app2 "$MR_APP2_PASSWORD" -D test -N -B -e "SELECT CURRENT_USER()" 2>&1) ||
    fail "login as app2 failed: $out"
  assert_eq 'app2@%' "$out" "CURRENT_USER()"
}

test_wrong_password_1045() {
  local out direct want="ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)"
  direct=$(cli "$MR_DB_PORT" app wrongpw -e "SELECT 1" 2>&1)
  assert_eq "$want" "$direct" "MariaDB's own message (harness assumption)"
  out=$(cli "$MR_PORT" app wrongpw -e "SELECT 1" 2>&1) && fail "login with a wrong password succeeded"
  assert_eq "$want" "$out" "wrong password"
  target_alive || fail "the server under test died"
}

test_unknown_user_1045() {
  local out want="ERROR 1045 (28000): Access denied for user 'nosuch'@'127.0.0.1' (using password: YES)"
  out=$(cli "$MR_PORT" nosuch whatever -e "SELECT 1" 2>&1) && fail "login as an unknown user succeeded"
  assert_eq "$want" "$out" "unknown user"
  out=$(cli "$MR_DB_PORT" nosuch whatever -e "SELECT 1" 2>&1)
  assert_eq "$want" "$out" "MariaDB's own message (harness assumption)"
}

test_empty_password_1045() {
  local out want
  want=$(cli "$MR_DB_PORT" app "" -e "SELECT 1" 2>&1)
  out=$(cli "$MR_PORT" app "" -e "SELECT 1" 2>&1) && fail "login without a password succeeded"
  assert_eq "$want" "$out" "no password"
}

test_wrong_password_tenant_forms_1045() {
  need_proxy
  local login out
  for login in app@app 'app@app#main' root@sys app2; do
    out=$(cli "$MR_PORT" "$login" wrongpw -e "SELECT 1" 2>&1) && fail "$login with a wrong password got in"
    case "$out" in
      "ERROR 1045 (28000): Access denied for user '"*"'@'127.0.0.1' (using password: YES)") ;;
      *) fail "$login, wrong password: [$out]" ;;
    esac
  done
}

test_unknown_tenant_or_cluster_refused() {
  need_proxy
  local login out
  for login in app@nosuchtenant 'app@app#nosuchcluster' 'root@app' 'app@sys'; do
    out=$(cli "$MR_PORT" "$login" "$MR_APP_PASSWORD" -e "SELECT 1" 2>&1) && fail "login as $login succeeded"
    case "$out" in
      "ERROR "*) ;;
      *) fail "login as $login: no error message: [$out]" ;;
    esac
  done
  # root's password as root@app (app has no root) and app's password as app@sys must fail too
  out=$(cli "$MR_PORT" root@app "$MR_ROOT_PASSWORD" -e "SELECT 1" 2>&1) && fail "root@app got in"
  target_alive || fail "myrelayd died"
  out=$(tq "SELECT 1" 2>&1)
  assert_eq 1 "$out" "a normal login afterwards"
}

test_login_unknown_database() {
  # root: 1049 Unknown database; app (no global rights): 1044 Access denied
  # to database.  Either way the backend's error, word for word.
  local out want user pass login
  for user in root app; do
    pass=$MR_APP_PASSWORD login=$user
    [ $user = root ] && pass=$MR_ROOT_PASSWORD
    [ $user = root ] && [ "$MR_MODE" = proxy ] && login=root@sys
    want=$(cli "$MR_DB_PORT" $user "$pass" -D nosuchdb -e "SELECT 1" 2>&1)
    assert_contains "$want" "ERROR 10" "MariaDB's own answer (harness assumption)"
    out=$(cli "$MR_PORT" $login "$pass" -D nosuchdb -e "SELECT 1" 2>&1) && fail "$login: login to an unknown database succeeded"
    assert_eq "$want" "$out" "$login: login with an unknown database"
  done
}

test_login_database_carried() {
  local out
  out=$(cli "$MR_PORT" app "$MR_APP_PASSWORD" -D test2 -N -B -e "SELECT DATABASE()" 2>&1)
  assert_eq test2 "$out" "database chosen at login"
  out=$(cli "$MR_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT DATABASE()" 2>&1)
  assert_eq NULL "$out" "no database at login"
}

test_login_charset_carried() {
  local cs out want q="SELECT @@character_set_client, @@character_set_connection, @@character_set_results, @@collation_connection"
  for cs in utf8mb4 latin1 binary; do
    want=$(cli "$MR_DB_PORT" app "$MR_APP_PASSWORD" --default-character-set=$cs -N -B -e "$q" 2>&1)
    out=$(cli "$MR_PORT" app "$MR_APP_PASSWORD" --default-character-set=$cs -N -B -e "$q" 2>&1)
    assert_eq "$want" "$out" "session character set for --default-character-set=$cs"
  done
  want=$(dcli --default-character-set=utf8mb4 -N -B -e "SELECT s, HEX(s) FROM types WHERE id = 1" 2>&1)
  out=$(tcli --default-character-set=utf8mb4 -N -B -e "SELECT s, HEX(s) FROM types WHERE id = 1" 2>&1)
  assert_eq "$want" "$out" "non-ASCII text"
}

# The mariadb client's "Connection id" (thread id of the handshake) is the
# proxy's cs_id; SELECT CONNECTION_ID() goes to the backend and returns the
# backend's thread id.
test_connection_id_is_backend_thread() {
  local tag="cid_probe_$$" out conn_id backend_id probe pid
  tcli -N -B -e "status; SELECT CONNECTION_ID(); SELECT SLEEP(3) AS $tag" >out.txt 2>&1 &
  pid=$!
  probe=""
  for ((i = 0; i < 50; i++)); do
    probe=$(backend_threads_running "$tag")
    [ -n "$probe" ] && break
    sleep 0.1
  done
  wait $pid || fail "session failed: $(cat out.txt)"
  [ -n "$probe" ] || fail "the SLEEP never showed in the backend's processlist"
  conn_id=$(awk -F'\t+' '/^Connection id:/ { print $2 }' out.txt)
  backend_id=$(grep -E '^[0-9]+$' out.txt | head -1)
  [ -n "$conn_id" ] || fail "no Connection id in: $(head -5 out.txt)"
  [ -n "$backend_id" ] || fail "no CONNECTION_ID() in: $(cat out.txt)"
  assert_eq "$probe" "$backend_id" "CONNECTION_ID() vs the backend thread that ran the session's query"
  if [ "$MR_MODE" = proxy ]; then
    [ "$conn_id" != "$backend_id" ] || fail "Connection id ($conn_id) equals the backend thread id"
  else
    assert_eq "$backend_id" "$conn_id" "direct: Connection id"
  fi
}

# DESIGN 3: cs_id has bit 31 set and proxy_id (0 here) in bits 24-30.
test_cs_id_layout() {
  need_proxy
  local ids="" id i
  for i in 1 2 3; do
    id=$(tcli -e status 2>&1 | awk -F'\t+' '/^Connection id:/ { print $2 }')
    [ -n "$id" ] || fail "no Connection id"
    [ "$id" -ge 2147483648 ] && [ "$id" -lt $((2147483648 + 16777216)) ] ||
      fail "Connection id $id: want bit 31 set and proxy_id 0 in bits 24-30"
    case " $ids " in *" $id "*) fail "Connection id $id given twice in a row" ;; esac
    ids="$ids $id"
  done
}

test_many_sequential_logins() {
  local i out deadline=$(($(date +%s) + 60))
  for ((i = 1; i <= 150; i++)); do
    out=$(tq "SELECT $i" 2>&1) || fail "login $i failed: $out"
    assert_eq "$i" "$out" "login $i"
    [ "$(date +%s)" -lt "$deadline" ] || fail "150 logins took more than 60 s (at $i)"
  done
}

# A backend account with MariaDB's ed25519 method: the proxy signs the
# server's nonce with the clear password from its configuration; without one
# (a hash in the configuration) the client is told what to configure.
test_backend_ed25519() {
  need_proxy
  dq "INSTALL SONAME 'auth_ed25519'" 2>/dev/null  # already there after a first run: fine
  # Not into the binary log: the replica has no ed25519 plugin, and its
  # replication would stop on the account.
  dq "SET sql_log_bin = 0; DROP USER IF EXISTS 'edu'@'%';
      CREATE USER 'edu'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret-1');
      GRANT SELECT ON test.* TO 'edu'@'%'" || fail "cannot create the ed25519 account"
  # The public key the unit tests (test_auth.cc) expect for 'ed-secret-1' is the server's.
  assert_eq "l38YcgG1Zqi5tek+d+mactqeAhfYrScmxRmke3dkzhc" "$(dq "SELECT JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv WHERE User = 'edu'")" \
    "the server's key of 'ed-secret-1'"
  start_aux_daemon ed tenant="ed:edu:ed-secret-1"
  local out
  out=$(cli "$AUX_PORT" edu@ed ed-secret-1 -N -B -e "SELECT CURRENT_USER()" 2>&1)
  assert_contains "$out" "edu@%" "logged in to the backend as the ed25519 account: $out"
  assert_contains "$(cli "$AUX_PORT" edu@ed wrong -N -B -e "SELECT 1" 2>&1)" "ERROR 1045" "a wrong password"
  # The configuration holds only the hash: the backend's method cannot be answered.
  local hash
  hash=$(dq "SELECT PASSWORD('ed-secret-1')")
  start_aux_daemon edhash tenant="ed:edu:$hash"
  out=$(cli "$AUX_PORT" edu@ed ed-secret-1 -N -B -e "SELECT 1" 2>&1)
  assert_contains "$out" "ERROR 1251" "no clear password for client_ed25519"
  assert_contains "$out" "client_ed25519" "the error names the method"
  assert_contains "$out" "clear text" "and what to configure"
  ! grep -q "ed-secret-1" "$MR_TMP/daemon-ed.log" "$MR_TMP/daemon-edhash.log" || fail "a password reached a log"
  dq "SET sql_log_bin = 0; DROP USER 'edu'@'%'"
}
