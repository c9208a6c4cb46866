# A fleet of proxies that behaves as one (DESIGN section 6a): three myrelayd
# (proxy_id 1, 2, 3) with their peer ports, behind a real HAProxy in TCP
# round-robin mode, in front of the one MariaDB.  Clients come through
# HAProxy, so each lands on whichever proxy it picks; kills and listings
# typed on one proxy reach the sessions of the others.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}

# fleet_up [write_config key=value...]: the three proxies and HAProxy; what
# FLEET_EXTRA[i] (else FLEET_EXTRA_ALL) holds goes into proxy i's fleet
# mapping (", tls: {...}").  Sets
# SQLP[i] (SQL port of proxy i), PEERP[i] (its peer port), FPID[i], FLOG[i],
# FCFG[i], HAPORT (HAProxy's port) and FLEET_SECRET.
declare -a SQLP PEERP FPID FLOG FCFG FLEET_EXTRA
FLEET_EXTRA_ALL=""
fleet_up() {
  need_proxy
  command -v haproxy >/dev/null || fail "haproxy is not installed (apt-get install haproxy)"
  FLEET_SECRET="$TT/fleet.secret"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$FLEET_SECRET"
  chmod 600 "$FLEET_SECRET"
  local i j peers
  for i in 1 2 3; do PEERP[i]=$(free_port) || fail "no free port"; done
  for i in 1 2 3; do
    peers=""
    for j in 1 2 3; do
      [ "$i" = "$j" ] && continue
      peers+="${peers:+, }{ proxy_id: $j, address: 127.0.0.1:${PEERP[j]} }"
    done
    start_aux_daemon "p$i" proxy_id="$i" \
      fleet="{ listen: 127.0.0.1:${PEERP[i]}, secret_file: \"$FLEET_SECRET\", timeout_ms: 1000, peers: [ $peers ]${FLEET_EXTRA[i]:-$FLEET_EXTRA_ALL} }" "$@"
    SQLP[i]=$AUX_PORT
    FPID[i]=$AUX_PID
    FLOG[i]=$AUX_LOG
    FCFG[i]="$TT/p$i.yaml"
  done
  HAPORT=$(free_port) || fail "no free port"
  cat >"$TT/haproxy.cfg" <<EOF
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend fe
    bind 127.0.0.1:$HAPORT
    default_backend proxies
backend proxies
    balance roundrobin
    server p1 127.0.0.1:${SQLP[1]}
    server p2 127.0.0.1:${SQLP[2]}
    server p3 127.0.0.1:${SQLP[3]}
EOF
  haproxy -db -f "$TT/haproxy.cfg" </dev/null >"$TT/haproxy.log" 2>&1 &
  HAPID=$!
  wait_until 10 port_open "$HAPORT" || fail "haproxy does not listen: $(tail -3 "$TT/haproxy.log")"
}

# on I USER PASSWORD SQL: a statement on proxy I, its rows (or its error).
on() { cli "${SQLP[$1]}" "$2" "$3" -N -B -e "$4" 2>&1; }
root_on() { on "$1" root@sys "$MR_ROOT_PASSWORD" "$2"; }

# proxy_of ID: the proxy_id bits (24-30) of a cs_id.
proxy_of() { echo $((($1 >> 24) & 127)); }

# through_haproxy N: N scripted sessions (h1..hN) as ST_USER through HAProxy;
# HID[p] is the cs_id of the session that landed on proxy p.
declare -A HID
through_haproxy() {
  local i id
  for ((i = 1; i <= $1; i++)); do
    ST_PORT=$HAPORT st_open "h$i"
    st_run "h$i" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
    id=$(st_id_of "$OUT")
    [ -n "$id" ] || fail "no cs_id from session h$i: $OUT"
    HID[$(proxy_of "$id")]=$id
    HNAME[$(proxy_of "$id")]="h$i"
  done
}
declare -A HNAME

# sleeping_on I: proxy I has a session running a statement.
sleeping_on() { [ -n "$(root_on "$1" "EXPLAIN KILL PROXYSESSION WHERE command = 'Query' AND user = 'app'")" ]; }

st_id_of() { sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$1"; }

session_ended() {
  st_run "$1" "query SELECT 'still here'"
  ! grep -q "still here" <<<"$OUT"
}

test_fleet_balancer_spreads_sessions() {
  fleet_up
  through_haproxy 3
  assert_eq "1 2 3" "$(printf '%s\n' "${!HID[@]}" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "round robin put one session on each proxy: ${HID[*]}"
}

test_fleet_forwarded_kills() {
  fleet_up
  through_haproxy 3
  local out
  # KILL [CONNECTION] of a session on proxy 2, typed on proxy 1.
  out=$(root_on 1 "KILL ${HID[2]}")
  assert_eq "" "$out" "KILL of proxy 2's session from proxy 1 answers OK"
  session_ended "${HNAME[2]}" || fail "the session on proxy 2 still answers"
  # KILL QUERY of a statement running on proxy 3: it stops, the session goes on.
  local t0 t1
  t0=$(now_ms)
  printf '%s\n' "query SELECT SLEEP(20)" >&"${ST_FD[${HNAME[3]}]}"
  wait_until 10 sleeping_on 3 || fail "the SLEEP does not run on proxy 3"
  out=$(root_on 1 "KILL QUERY ${HID[3]}")
  assert_eq "" "$out" "KILL QUERY forwarded"
  st_run "${HNAME[3]}" "query SELECT 'alive'"
  t1=$(now_ms)
  assert_contains "$OUT" "alive" "the session on proxy 3 goes on after KILL QUERY"
  # SLEEP() that is killed returns early (with 1), it does not fail.
  [ $((t1 - t0)) -lt 15000 ] || fail "the SLEEP(20) ran its course ($((t1 - t0)) ms): KILL QUERY did not reach it"
  # The peer judges the killer by the same rules: another user of the tenant
  # is not the owner, an unprivileged user may not KILL PROXYSESSION, and an
  # id the peer does not have is unknown.
  out=$(on 1 app2 "$MR_APP2_PASSWORD" "KILL ${HID[3]}")
  assert_contains "$out" "ERROR 1095" "app2 killing app's session on proxy 3"
  out=$(on 1 app "$MR_APP_PASSWORD" "KILL PROXYSESSION ${HID[3]}")
  assert_contains "$out" "ERROR 1227" "KILL PROXYSESSION by an unprivileged user, forwarded"
  out=$(root_on 1 "KILL $((0x80000000 | 2 << 24 | 0xfffff0))")
  assert_contains "$out" "ERROR 1094" "an id proxy 2 does not have"
  # WHEN IDLE, forwarded: the idle session on proxy 3 ends.
  out=$(root_on 2 "KILL PROXYSESSION ${HID[3]} WHEN IDLE")
  assert_eq "" "$out" "KILL PROXYSESSION ... WHEN IDLE forwarded"
  session_ended "${HNAME[3]}" || fail "the session on proxy 3 still answers after WHEN IDLE"
  # ATTRIBUTE of another proxy's session, and KILL PROXYSESSION id ss_id of
  # one of its server sessions: the session goes on, with a new one.
  st_run "${HNAME[1]}" "query SELECT 1"
  local ss
  ss=$(root_on 2 "SHOW PROXYSESSION ATTRIBUTE ${HID[1]} LIKE 'ss_id'" | cut -f2 | head -1)
  [ -n "$ss" ] && [ "$ss" != 0 ] || fail "no ss_id of proxy 1's session through proxy 2"
  assert_eq "" "$(root_on 2 "KILL PROXYSESSION ${HID[1]} $ss")" "KILL PROXYSESSION id ss_id forwarded"
  st_run "${HNAME[1]}" "query SELECT 'new server session'"
  assert_contains "$OUT" "new server session" "the session goes on"
  assert_contains "$(root_on 3 "SHOW PROXYSESSION ATTRIBUTE ${HID[1]} LIKE 'ss_id'")" "ss_id" "ATTRIBUTE forwarded"
  [ "$(root_on 3 "SHOW PROXYSESSION ATTRIBUTE ${HID[1]} LIKE 'ss_id'" | cut -f2 | head -1)" != "$ss" ] ||
    fail "the killed server session $ss is still listed"
  # The owner may kill its own session on another proxy.
  out=$(on 2 app "$MR_APP_PASSWORD" "KILL ${HID[1]}")
  assert_eq "" "$out" "app killing its own session on proxy 1 from proxy 2"
  session_ended "${HNAME[1]}" || fail "the session on proxy 1 still answers"
  # Both kill logs: the asking proxy records the forwarding, the peer the kill.
  assert_contains "$(root_on 1 "SHOW PROXYKILLS")" "forwarded" "proxy 1's kill log"
  assert_contains "$(root_on 2 "SHOW PROXYKILLS")" "root@sys via proxy 1" "proxy 2's kill log names the killer"
}

test_fleet_process_kill() {
  fleet_up
  through_haproxy 3
  # COM_PROCESS_KILL (mariadb-admin kill) on proxy 1 for proxy 3's session.
  mariadb-admin --no-defaults -h127.0.0.1 -P"${SQLP[1]}" -uroot@sys -p"$MR_ROOT_PASSWORD" kill "${HID[3]}" 2>&1 ||
    fail "mariadb-admin kill failed"
  session_ended "${HNAME[3]}" || fail "the session on proxy 3 still answers"
}

test_fleet_connection_id() {
  fleet_up
  through_haproxy 3
  st_run "${HNAME[3]}" "query SELECT CONNECTION_ID()"
  local conn
  conn=$(grep -o '^[0-9][0-9]*$' <<<"$OUT" | head -1)
  [ -n "$conn" ] || fail "no connection id: $OUT"
  # Looked up on every proxy: only proxy 3 has it.
  assert_eq "" "$(root_on 1 "KILL $conn")" "KILL of a backend connection id held by proxy 3"
  session_ended "${HNAME[3]}" || fail "the session with backend id $conn still answers"
  assert_contains "$(root_on 1 "KILL 4000000")" "ERROR 1094" "a backend id no proxy has"
}

test_fleet_global_view() {
  fleet_up
  through_haproxy 3
  ST_USER=app2 ST_PASSWORD=$MR_APP2_PASSWORD ST_PORT=${SQLP[2]} st_open other
  st_run other "query SELECT 1"
  local out
  out=$(root_on 2 "SHOW GLOBAL PROXYSESSION")
  # app's 3, app2's 1, and root's own.
  assert_eq 5 "$(grep -c . <<<"$out")" "every proxy's sessions: $out"
  assert_eq "1 2 3" "$(cut -f1 <<<"$out" | sort -u | tr '\n' ' ' | sed 's/ $//')" "the proxy_id column"
  assert_contains "$(cut -f3 <<<"$out")" "${HID[3]}" "proxy 3's session listed"
  # The same visibility rules: app2 sees its own sessions only.
  out=$(on 1 app2 "$MR_APP2_PASSWORD" "SHOW GLOBAL PROXYSESSION")
  assert_eq 2 "$(grep -c . <<<"$out")" "app2's own sessions across the fleet: $out"
  out=$(root_on 3 "SHOW GLOBAL PROXYSESSION LIKE 'app2'")
  assert_eq 1 "$(grep -c . <<<"$out")" "LIKE filters by user: $out"
  # EXPLAIN, then the kill across the fleet.
  assert_eq 3 "$(root_on 1 "EXPLAIN KILL GLOBAL PROXYSESSION WHERE user = 'app'" | grep -c .)" "EXPLAIN KILL GLOBAL"
  out=$(cli "${SQLP[1]}" root@sys "$MR_ROOT_PASSWORD" -N -B -vvv -e "KILL GLOBAL PROXYSESSION WHERE user = 'app'" 2>&1)
  assert_contains "$out" "Query OK, 3 rows affected" "KILL GLOBAL PROXYSESSION WHERE"
  local p
  for p in 1 2 3; do session_ended "${HNAME[$p]}" || fail "session on proxy $p still answers"; done
  st_run other "query SELECT 'app2 here'"
  assert_contains "$OUT" "app2 here" "app2's session was not in the WHERE"
  assert_contains "$(on 1 app "$MR_APP_PASSWORD" "KILL GLOBAL PROXYSESSION WHERE user = 'app2'")" "ERROR 1227" \
    "KILL GLOBAL by an unprivileged user"
}

test_fleet_peer_down() {
  fleet_up
  through_haproxy 3
  local shm3
  shm3=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "${FCFG[3]}")
  kill -KILL "${FPID[3]}"
  wait_pid_gone "${FPID[3]}" 5 || fail "proxy 3 did not die"
  rm -f "/dev/shm/$shm3"
  local out t0 t1
  t0=$(now_ms)
  out=$(root_on 1 "KILL ${HID[3]}")
  t1=$(now_ms)
  assert_contains "$out" "ERROR 1429" "a kill of a dead peer's session"
  assert_contains "$out" "proxy 3 at 127.0.0.1:${PEERP[3]}" "the error names the peer"
  echo "kill of a dead peer's session answered in $((t1 - t0)) ms"
  assert_eq "" "$(root_on 1 "KILL ${HID[2]}")" "the other peer is still reached"
  out=$(cli "${SQLP[1]}" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW GLOBAL PROXYSESSION; SHOW WARNINGS" 2>&1)
  assert_contains "$out" "${HID[1]}" "proxy 1's sessions still listed"
  assert_contains "$out" "1429" "a warning for the unreachable peer"
  assert_contains "$out" "proxy 3" "the warning names it"
}

test_fleet_refuses_strangers() {
  fleet_up
  local py=/usr/bin/python3 out
  out=$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" --replay "SHOW PROXYSESSION")
  assert_eq "answer rows 0" "$(sed -n 1p <<<"$out")" "a signed request is answered"
  assert_contains "$(sed -n 2p <<<"$out")" "refused request replayed" "the same request again"
  assert_contains "$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" --wrong-secret "SHOW PROXYSESSION")" \
    "refused wrong signature" "another secret"
  assert_contains "$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" --stale "SHOW PROXYSESSION")" \
    "s off this proxy's clock" "a request two minutes old"
  assert_contains "$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" --garbage "x")" \
    "refused not a fleet frame" "an HTTP request on the peer port"
  assert_contains "$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" --sender-id 1 "SHOW PROXYSESSION")" \
    "this proxy's own" "a peer claiming the receiver's proxy_id"
  assert_contains "$("$py" "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" "SHOW PROXYKILLS")" \
    "answer error 1235" "a statement peers may not run"
  pid_alive "${FPID[1]}" || fail "proxy 1 died"
  assert_contains "$(cat "${FLOG[1]}")" "fleet: refused" "refusals are logged"
  assert_contains "$(cat "${FLOG[1]}")" "this proxy's own" "the duplicate proxy_id is logged"
}

# refused_config NAME FLEET_MAP: myrelayd --check of a configuration with that
# fleet: mapping must fail; its message is left in OUT.
refused_config() {
  write_config "$TT/$1.yaml" port="$(free_port)" backend_port="$MR_DB_PORT" proxy_id=1 fleet="$2" ||
    fail "write_config failed"
  OUT=$("$MYRELAYD" --check -c "$TT/$1.yaml" 2>&1) && fail "configuration $1 was accepted: $2"
  return 0
}

# a_secret MODE: $TT/fleet.secret with that mode.
a_secret() {
  echo "0123456789abcdef0123456789abcdef" >"$TT/fleet.secret"
  chmod "$1" "$TT/fleet.secret"
}

test_fleet_config_checks() {
  need_proxy
  a_secret 644
  refused_config open "{ listen: 127.0.0.1:$(free_port), secret_file: \"$TT/fleet.secret\", peers: [ { proxy_id: 2, address: 127.0.0.1:1 } ] }"
  assert_contains "$OUT" "$TT/fleet.secret" "the message names the file"
  assert_contains "$OUT" "readable by others" "and says what is wrong"
  a_secret 600
  refused_config dup "{ listen: 127.0.0.1:$(free_port), secret_file: \"$TT/fleet.secret\", peers: [ { proxy_id: 1, address: 127.0.0.1:1 } ] }"
  assert_contains "$OUT" "fleet.peers[0].proxy_id" "the key is named"
}

test_fleet_myrelayctl() {
  fleet_up
  through_haproxy 3
  local out
  out=$("$CTL" -c "${FCFG[2]}" --fleet sessions)
  assert_contains "$out" "proxy_id" "a proxy_id column"
  assert_contains "$out" "3 rows in set" "one session on each proxy: $out"
  out=$("$CTL" -c "${FCFG[2]}" --fleet --json sessions)
  assert_eq 3 "$(jq '.sessions | length' <<<"$out")" "JSON: $out"
  assert_eq "1,2,3" "$(jq -r '[.sessions[].proxy_id] | sort | map(tostring) | join(",")' <<<"$out")" "proxy ids in JSON"
  # A kill of proxy 3's session from proxy 1's shell.
  out=$("$CTL" -c "${FCFG[1]}" --fleet kill "${HID[3]}") || fail "myrelayctl --fleet kill failed: $out"
  assert_contains "$out" "proxy 3" "it says which proxy killed it"
  session_ended "${HNAME[3]}" || fail "the session on proxy 3 still answers"
  # --where across the fleet, dry run first.
  assert_contains "$("$CTL" -c "${FCFG[1]}" --fleet kill --where "user = 'app'" --dry-run)" "2 rows in set" "dry run"
  out=$("$CTL" -c "${FCFG[1]}" --fleet kill --where "user = 'app'")
  assert_contains "$out" "2 sessions asked to end across the fleet" "kill --where: $out"
  # An unknown id, and a dead proxy.
  "$CTL" -c "${FCFG[1]}" --fleet kill $((0x80000000 | 2 << 24 | 0xfffff0)) >/dev/null 2>&1
  assert_eq 6 "$?" "exit status for an unknown id"
  kill -KILL "${FPID[2]}"
  wait_pid_gone "${FPID[2]}" 5 || fail "proxy 2 did not die"
  rm -f "/dev/shm/$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "${FCFG[2]}")"
  out=$("$CTL" -c "${FCFG[1]}" --fleet sessions 2>&1)
  assert_eq 8 "$?" "exit status with a proxy down"
  assert_contains "$out" "proxy 2 at 127.0.0.1:${PEERP[2]}" "the dead proxy is named"
}

# SIGHUP adds and removes peers: a proxy that was not a peer becomes one.
test_fleet_reload_peers() {
  fleet_up
  through_haproxy 3
  # Proxy 1 forgets proxy 3: its ids are then unknown here (1094, no peer).
  local cfg1=${FCFG[1]}
  sed -i "s/, { proxy_id: 3, address: 127.0.0.1:${PEERP[3]} }//" "$cfg1"
  kill -HUP "${FPID[1]}"
  wait_until 10 grep -q "configuration reloaded" "${FLOG[1]}" || fail "no reload"
  assert_contains "$(root_on 1 "KILL ${HID[3]}")" "ERROR 1094" "proxy 3 is no peer of proxy 1 any more"
  assert_eq 1 "$(root_on 1 "SHOW GLOBAL PROXYSESSION" | cut -f1 | grep -v "^1$" | grep -c .)" \
    "only proxy 2's session besides proxy 1's own"
  # And back.
  sed -i "s/peers: \[ \(.*\) \]/peers: [ \1, { proxy_id: 3, address: 127.0.0.1:${PEERP[3]} } ]/" "$cfg1"
  local n
  n=$(grep -c "configuration reloaded" "${FLOG[1]}")
  kill -HUP "${FPID[1]}"
  wait_until 10 reloaded_more "${FLOG[1]}" "$n" || fail "no second reload"
  assert_eq "" "$(root_on 1 "KILL ${HID[3]}")" "proxy 3 is a peer again"
  session_ended "${HNAME[3]}" || fail "the session on proxy 3 still answers"
}
reloaded_more() { [ "$(grep -c "configuration reloaded" "$1")" -gt "$2" ]; }

# A peer that accepts and never answers costs the asking session fleet.timeout_ms
# and nothing else: the same worker serves other sessions meanwhile.
test_fleet_silent_peer() {
  fleet_up workers=1  # the waiting session and the others share the one worker
  local silent out t0 t1 sessions_before
  silent=$(free_port) || fail "no free port"
  python3 "$MR_IT_DIR/fake_backend.py" silent "$silent" >silent.out 2>&1 &
  wait_until 10 grep -q ready silent.out || fail "the silent listener did not start"
  # Proxy 1 gets a peer 4 that never answers.
  sed -i "s/peers: \[ \(.*\) \]/peers: [ \1, { proxy_id: 4, address: 127.0.0.1:$silent } ]/" "${FCFG[1]}"
  kill -HUP "${FPID[1]}"
  wait_until 10 grep -q "configuration reloaded" "${FLOG[1]}" || fail "no reload"
  root_on 1 "KILL $((0x80000000 | 4 << 24 | 5))" >kill4.out 2>&1 &
  local killer=$!
  sleep 0.2
  # Meanwhile, on the same worker: 20 statements, answered at once.
  t0=$(now_ms)
  for i in $(seq 20); do
    assert_eq 1 "$(on 1 app "$MR_APP_PASSWORD" "SELECT 1")" "a statement while a peer is silent"
  done
  t1=$(now_ms)
  wait "$killer"
  out=$(cat kill4.out)
  assert_contains "$out" "ERROR 1429" "a silent peer"
  assert_contains "$out" "no answer within 1000 ms" "the error says it timed out"
  echo "20 statements on the same proxy took $((t1 - t0)) ms while a kill waited for a silent peer"
  out=$(cli "${SQLP[1]}" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW GLOBAL PROXYSESSION; SHOW WARNINGS" 2>&1)
  assert_contains "$out" "proxy 4 at 127.0.0.1:$silent: no answer within 1000 ms" "SHOW GLOBAL names the silent peer"
}

# ---------------------------------------------------------------- TLS

tls_map() { echo ", tls: { cert: \"$TT/$1.pem\", key: \"$TT/$1.key\", ca: \"$TT/$2.pem\" }"; }

test_fleet_tls() {
  need_proxy
  make_ca fleetca
  make_ca otherca
  make_cert peer fleetca "IP:127.0.0.1"
  make_cert stranger otherca "IP:127.0.0.1"
  # Proxy 3 presents a certificate of another CA: proxies 1 and 2 refuse it,
  # and it refuses theirs.
  FLEET_EXTRA_ALL=$(tls_map peer fleetca)
  FLEET_EXTRA[3]=$(tls_map stranger otherca)
  fleet_up
  through_haproxy 3
  assert_eq "" "$(root_on 1 "KILL ${HID[2]}")" "a kill forwarded over TLS"
  session_ended "${HNAME[2]}" || fail "the session on proxy 2 still answers"
  local out
  out=$(root_on 1 "KILL ${HID[3]}")
  assert_contains "$out" "ERROR 1429" "a peer whose certificate this proxy's CA did not sign"
  assert_contains "$out" "certificate verify failed" "the error says why"
  # A request without TLS gets nothing from a TLS peer port.
  assert_eq "closed" "$(/usr/bin/python3 "$MR_IT_DIR/fleet_peer.py" "${PEERP[1]}" "$FLEET_SECRET" "SHOW PROXYSESSION")" \
    "plain TCP to a TLS peer port"
  wait_until 5 grep -q "fleet: TLS with" "${FLOG[1]}" || fail "the failed handshake is not logged"
  out=$("$CTL" -c "${FCFG[1]}" --fleet sessions 2>&1)
  assert_contains "$out" "${HID[1]}" "myrelayctl --fleet over TLS lists proxy 1's session"
  assert_contains "$out" "certificate verify failed" "myrelayctl names the refused peer"
}

test_fleet_tls_checks_the_address() {
  need_proxy
  make_ca fleetca
  make_cert peer fleetca "IP:127.0.0.1"
  make_cert elsewhere fleetca "IP:10.9.9.9"
  FLEET_EXTRA_ALL=$(tls_map peer fleetca)
  FLEET_EXTRA[2]=$(tls_map elsewhere fleetca)
  fleet_up
  through_haproxy 3
  local out
  out=$(root_on 1 "KILL ${HID[2]}")
  assert_contains "$out" "ERROR 1429" "a certificate for another address"
  assert_contains "$out" "IP address mismatch" "the error says why"
  # A key others may read is refused, naming it; a reload keeps the running pair.
  chmod 644 "$TT/peer.key"
  local n
  n=$(grep -c "reload rejected" "${FLOG[1]}")
  kill -HUP "${FPID[1]}"
  wait_until 10 reload_rejected_more "${FLOG[1]}" "$n" || fail "the reload was not rejected"
  assert_contains "$(grep "reload rejected" "${FLOG[1]}" | tail -1)" "$TT/peer.key" "the message names the key"
  assert_eq "" "$(root_on 1 "KILL ${HID[3]}")" "the running TLS pair still works"
}
reload_rejected_more() { [ "$(grep -c "reload rejected" "$1")" -gt "$2" ]; }

test_fleet_tls_config_checks() {
  need_proxy
  make_ca fleetca
  make_cert one fleetca "IP:127.0.0.1"
  make_cert two fleetca "IP:127.0.0.1"
  a_secret 600
  refused_config mismatch "{ listen: 127.0.0.1:$(free_port), secret_file: \"$TT/fleet.secret\", tls: { cert: \"$TT/one.pem\", key: \"$TT/two.key\" } }"
  assert_contains "$OUT" "fleet.tls.key: cannot use key file $TT/two.key with certificate file $TT/one.pem" "a mismatched pair"
  assert_contains "$OUT" "mismatch" "says they do not match"
  refused_config version "{ listen: 127.0.0.1:$(free_port), secret_file: \"$TT/fleet.secret\", tls: { cert: \"$TT/one.pem\", key: \"$TT/one.key\", min_version: SSLv3 } }"
  assert_contains "$OUT" "expected TLSv1.2 or TLSv1.3" "min_version"
}
