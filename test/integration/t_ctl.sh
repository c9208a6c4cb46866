# myrelayctl, the out-of-process admin helper (DESIGN section 6): listings
# against SHOW PROXYSESSION, kills through the control pipes, JSON, the
# Prometheus format, and every failure with its exit status.  Each test runs
# its own myrelayd (2 workers) so that the sessions it sees are its own.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}

need_ctl() {
  need_proxy
  [ -x "$CTL" ] || fail "$CTL is not built"
}

need_jq() {
  command -v jq >/dev/null || fail "jq is not installed (apt-get install jq)"
}

# ctl_daemon NAME [write_config key=value...]: a daemon of its own; sets CFG
# to its configuration and SHM to its segment's name.
ctl_daemon() {
  start_aux_daemon "$@"
  CFG="$TT/$1.yaml"
  SHM=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "$CFG")
}

# actl ARGS...: myrelayctl against that daemon.
actl() {
  "$CTL" -c "$CFG" "$@"
}

# session_gone ID: myrelayctl no longer finds session ID.
session_gone() {
  ! actl session "$1" >/dev/null 2>&1
}

# run_ctl OUT ARGS...: runs myrelayctl, stdout+stderr to OUT, status in RC.
run_ctl() {
  local out=$1
  shift
  "$CTL" "$@" >"$out" 2>&1
  RC=$?
}

# Cleanups run at exit, before lib.sh's own (which stops the daemons).
CTL_CLEANUPS=()
ctl_at_exit() {
  CTL_CLEANUPS+=("$1")
  trap '_ctl_cleanup; _mr_test_cleanup' EXIT
}
_ctl_cleanup() {
  local c
  for c in "${CTL_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done
  return 0
}

# ---------------------------------------------------------------- sessions held open

# sess_open NAME [LOGIN PASSWORD [mariadb args...]]: a mariadb client kept open
# on the test's daemon, reading statements from a FIFO; its output goes to
# NAME.out.  Sets SCS[NAME] to its cs_id and SCONN[NAME] to its CONNECTION_ID().
declare -A SFD SCS SCONN
sess_open() {
  local name=$1 login=${2:-app} pass=${3:-$MR_APP_PASSWORD} fd
  if [ $# -ge 3 ]; then shift 3; else shift $#; fi
  mkfifo "$name.in" || fail "mkfifo $name.in"
  (cli "$AUX_PORT" "$login" "$pass" -N -B --unbuffered "$@" <"$name.in" >"$name.out" 2>&1
    echo "exit status $?" >>"$name.out") &
  exec {fd}>"$name.in"
  SFD[$name]=$fd
  sess_send "$name" "SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  sess_send "$name" "SELECT 'conn', CONNECTION_ID()"
  wait_until 10 grep -q "^conn" "$name.out" || fail "session $name did not log in: $(cat "$name.out")"
  SCS[$name]=$(awk -F'\t' '$1 == "cs_id" { v = $2 } END { print v }' "$name.out")
  SCONN[$name]=$(awk -F'\t' '$1 == "conn" { v = $2 } END { print v }' "$name.out")
  [ -n "${SCS[$name]}" ] && [ -n "${SCONN[$name]}" ] || fail "session $name: no ids in $(cat "$name.out")"
}

# sess_send NAME SQL: one statement (in a subshell: a client that has gone
# away must not take the test down with SIGPIPE).
sess_send() {
  (echo "$2;" >&"${SFD[$1]}") 2>/dev/null
}

# sess_query NAME SQL MARK: sends SQL and then SELECT 'MARK', and waits for it.
sess_query() {
  sess_send "$1" "$2"
  sess_send "$1" "SELECT '$3'"
  wait_until 10 grep -q "^$3\$" "$1.out"
}

# The rows of a myrelayctl table as tab-separated values, without the header.
table_tsv() {
  sed -n 's/^| \(.*\) |$/\1/p' | sed 's/ *| */\t/g; s/^ *//; s/ *$//' | tail -n +2
}

# ---------------------------------------------------------------- listings

test_ctl_sessions_match_show_proxysession() {
  need_ctl
  need_jq
  ctl_daemon ctlls
  local n ids sql_ids own
  sess_open a1
  sess_open a2
  sess_open a3 app2 "$MR_APP2_PASSWORD" -D test2
  sess_open r1 root@sys "$MR_ROOT_PASSWORD"
  sess_open a4 'app@app#main' "$MR_APP_PASSWORD" -D test
  actl sessions >ctl1.txt 2>&1 || fail "myrelayctl sessions failed: $(cat ctl1.txt)"
  cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B \
    -e "SHOW PROXYSESSION; SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'" >sql.txt 2>&1 ||
    fail "SHOW PROXYSESSION failed: $(cat sql.txt)"
  own=$(awk -F'\t' '$1 == "cs_id" { print $2 }' sql.txt)
  # The SQL client's session ends a moment after the client exits.
  wait_until 5 session_gone "$own" || fail "the SQL session $own did not end"
  actl sessions >ctl2.txt 2>&1 || fail "myrelayctl sessions failed: $(cat ctl2.txt)"
  cmp -s ctl1.txt ctl2.txt || fail "two listings of idle sessions differ: $(diff ctl1.txt ctl2.txt)"
  # SHOW PROXYSESSION also lists the session that ran it; the rest is the same.
  awk -F'\t' -v own="$own" 'NF == 13 && $2 != own' sql.txt >sql_rows.tsv
  table_tsv <ctl1.txt >ctl_rows.tsv
  [ "$(wc -l <ctl_rows.tsv)" = 5 ] || fail "expected 5 sessions, got: $(cat ctl1.txt)"
  diff sql_rows.tsv ctl_rows.tsv >rows.diff || fail "myrelayctl sessions differs from SHOW PROXYSESSION: $(cat rows.diff)"
  assert_contains "$(tail -1 ctl1.txt)" "5 rows in set" "row count line"
  # Aligned as the mysql client aligns: every line as wide as the border.
  [ "$(grep -E '^[|+]' ctl1.txt | awk '{ print length($0) }' | sort -u | wc -l)" = 1 ] ||
    fail "table lines have different widths: $(cat ctl1.txt)"
  grep -q '^| proxy_sessid ' ctl1.txt || fail "no column heading: $(head -3 ctl1.txt)"
  # Numbers right-aligned, NULL for no database (a1 logged in without -D).
  grep "${SCS[a1]}" ctl1.txt | grep -q '| NULL ' || fail "db of a session without one is not NULL: $(grep "${SCS[a1]}" ctl1.txt)"
  # The JSON form names the same sessions.
  actl sessions --json >s.json || fail "sessions --json failed"
  ids=$(jq -r '.sessions[].Id' s.json | sort | tr '\n' ' ')
  sql_ids=$(cut -f2 sql_rows.tsv | sort | tr '\n' ' ')
  assert_eq "$sql_ids" "$ids" "Ids of sessions --json vs SHOW PROXYSESSION"
  # Sessions on both workers (tid is the owning worker's thread).
  n=$(jq -r '.sessions[].tid' s.json | sort -u | wc -l)
  [ "$n" -ge 2 ] || fail "all sessions on one worker: $(cat s.json)"
  # Filters.
  assert_eq "1" "$(actl sessions --json --user app2 | jq '.sessions | length')" "--user app2"
  assert_eq "${SCS[r1]}" "$(actl sessions --json --tenant sys | jq -r '.sessions[].Id')" "--tenant sys"
  assert_eq "5" "$(actl sessions --json --cluster main --state keep_alive | jq '.sessions | length')" "--cluster main --state keep_alive"
  assert_eq "0" "$(actl sessions --json --state MCS_INIT | jq '.sessions | length')" "--state MCS_INIT"
  local w0 w1
  w0=$(actl sessions --json --worker 0 | jq '.sessions | length')
  w1=$(actl sessions --json --worker 1 | jq '.sessions | length')
  [ "$w0" -ge 1 ] && [ "$w1" -ge 1 ] && [ $((w0 + w1)) = 5 ] || fail "--worker 0 / 1 gave $w0 / $w1 of 5 sessions"
  out=$(actl sessions --user nobody-at-all)
  assert_eq "Empty set" "$out" "no session matches"
}

test_ctl_session_attributes() {
  need_ctl
  need_jq
  ctl_daemon ctlattr
  local out cs
  sess_open s1 app "$MR_APP_PASSWORD" -D test
  sess_query s1 "SELECT 1" m1 || fail "SELECT 1: $(cat s1.out)"
  cs=${SCS[s1]}
  actl session "$cs" >ctl.txt 2>&1 || fail "myrelayctl session $cs: $(cat ctl.txt)"
  cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYSESSION ATTRIBUTE $cs" >sql.txt 2>&1 ||
    fail "SHOW PROXYSESSION ATTRIBUTE: $(cat sql.txt)"
  # Times move on between the two reads; everything else is the same.
  grep -vE '^(connected_s|idle_s)	' sql.txt >sql.tsv
  table_tsv <ctl.txt | grep -vE '^(connected_s|idle_s)	' >ctl.tsv
  diff sql.tsv ctl.tsv >attr.diff || fail "session differs from SHOW PROXYSESSION ATTRIBUTE: $(cat attr.diff)"
  grep -q "^server_sessid	${SCONN[s1]}	server session 1" ctl.tsv || fail "no server session row: $(cat ctl.txt)"
  # By connection id, the same session.
  actl session "${SCONN[s1]}" | table_tsv | grep -vE '^(connected_s|idle_s)	' >byconn.tsv
  diff ctl.tsv byconn.tsv >conn.diff || fail "session by connection id differs: $(cat conn.diff)"
  # LIKE on attribute names, as in SQL.
  out=$(actl session "$cs" --like 'server\_%' | table_tsv | cut -f1 | tr '\n' ' ')
  assert_eq "server_session_moves server_ip server_port server_sessid " "$out" "--like 'server\\_%'"
  # JSON: typed values, the server session as an object.
  actl session "$cs" --json >a.json || fail "session --json failed"
  jq -e . a.json >/dev/null || fail "session --json is not JSON: $(cat a.json)"
  assert_eq "$cs" "$(jq '.cs_id' a.json)" "cs_id"
  assert_eq "test" "$(jq -r '.db' a.json)" "db"
  assert_eq "false" "$(jq '.in_trans' a.json)" "in_trans"
  assert_eq "string" "$(jq -r '.proxy_sessid | type' a.json)" "proxy_sessid type"
  assert_eq "${SCONN[s1]}" "$(jq '.server_sessions[0].server_sessid' a.json)" "server_sessid"
  assert_eq "$(sed -n 's/^proxy_sessid	\([0-9]*\).*/\1/p' ctl.tsv)" "$(jq -r '.proxy_sessid' a.json)" "proxy_sessid"
  # Per-command counters (published without rewriting the whole slot) move
  # by exactly the statements sent: sess_query sends two.
  local q r bi bo
  q=$(jq '.queries' a.json) r=$(jq '.server_sessions[0].requests' a.json)
  bi=$(jq '.bytes_in' a.json) bo=$(jq '.bytes_out' a.json)
  sess_query s1 "SELECT REPEAT('x', 1000)" m2 || fail "SELECT REPEAT: $(cat s1.out)"
  actl session "$cs" --json >b.json || fail "session --json failed"
  assert_eq $((q + 2)) "$(jq '.queries' b.json)" "queries after two more statements"
  assert_eq $((r + 2)) "$(jq '.server_sessions[0].requests' b.json)" "requests after two more statements"
  [ "$(jq '.bytes_in' b.json)" -gt "$bi" ] || fail "bytes_in did not grow: $(cat b.json)"
  [ "$(jq '.bytes_out' b.json)" -gt $((bo + 1000)) ] || fail "bytes_out did not grow by the 1000-byte row: $(cat b.json)"
  assert_eq "Sleep" "$(jq -r '.command' b.json)" "command between statements"
  assert_eq "MCS_KEEP_ALIVE" "$(jq -r '.read_state' b.json)" "read_state between statements"
  run_ctl o.txt -c "$CFG" session
  assert_eq 1 "$RC" "session without an id: $(cat o.txt)"
}

test_ctl_json_escaping() {
  need_ctl
  need_jq
  ctl_daemon ctljson
  # A database whose name needs escaping in JSON and is unsafe on a terminal.
  local db out
  db=$(printf 'ctl"x\\y\xe2\x82\xac\tz')
  dq "CREATE DATABASE IF NOT EXISTS \`$db\`" || fail "cannot create the database"
  ctl_at_exit "dq 'DROP DATABASE IF EXISTS \`$db\`'"
  sess_open r root@sys "$MR_ROOT_PASSWORD"
  sess_query r "USE \`$db\`" used || fail "USE: $(cat r.out)"
  for cmd in "sessions --json" "session ${SCS[r]} --json" "stats --json"; do
    # shellcheck disable=SC2086
    actl $cmd >out.json 2>err.txt || fail "myrelayctl $cmd failed: $(cat err.txt)"
    jq -e . out.json >/dev/null 2>jq.err || fail "myrelayctl $cmd is not valid JSON: $(cat jq.err) in $(head -c 600 out.json)"
  done
  out=$(actl sessions --json | jq -r --argjson id "${SCS[r]}" '.sessions[] | select(.Id == $id) | .db')
  assert_eq "$db" "$out" "db name through JSON"
  out=$(actl session "${SCS[r]}" --json | jq -r '.db')
  assert_eq "$db" "$out" "db name through session --json"
  # The table shows the tab as '?' and keeps the rest.
  actl sessions | grep -q 'ctl"x\\y€?z' || fail "table does not show the name safely: $(actl sessions | grep "${SCS[r]}")"
  actl sessions | grep -q "$(printf '\t')" && fail "a tab reached the table"
  return 0
}

test_ctl_stats_and_metrics() {
  need_ctl
  need_jq
  ctl_daemon ctlstats
  local q1 q2 out
  sess_open a
  sess_open b
  actl stats --json >st1.json || fail "stats --json failed"
  jq -e . st1.json >/dev/null || fail "stats --json is not JSON"
  assert_eq 2 "$(jq '.workers | length' st1.json)" "workers"
  assert_eq 2 "$(jq '.global.sessions_open' st1.json)" "sessions_open"
  assert_eq 2 "$(jq '.global.sessions_in_use' st1.json)" "sessions_in_use"
  assert_eq "$AUX_PID" "$(jq '.daemon.pid' st1.json)" "daemon pid"
  [ "$(jq '.global.connections_accepted' st1.json)" -ge 2 ] || fail "connections_accepted < 2: $(cat st1.json)"
  [ "$(jq '.global.backend_connects' st1.json)" -ge 2 ] || fail "backend_connects < 2: $(cat st1.json)"
  q1=$(jq '.global.queries' st1.json)
  sess_query a "SELECT 1; SELECT 2; SELECT 3" m1 || fail "queries: $(cat a.out)"
  cli "$AUX_PORT" app wrong-password -e "SELECT 1" >/dev/null 2>&1
  actl stats --json >st2.json || fail "stats --json failed"
  q2=$(jq '.global.queries' st2.json)
  [ "$q2" -ge $((q1 + 4)) ] || fail "queries went from $q1 to $q2 after 4 statements"
  [ "$(jq '.global.logins_failed' st2.json)" -ge 1 ] || fail "a failed login is not counted: $(cat st2.json)"
  # Totals are the sums of the workers.
  assert_eq "$(jq '[.workers[].queries] | add' st2.json)" "$q2" "total queries = sum of workers"
  # The table: one row per worker and a total, same numbers.
  actl stats >st.txt || fail "stats failed"
  assert_contains "$(head -1 st.txt)" "pid $AUX_PID" "stats heading"
  grep -q '^|  *total |' st.txt || fail "no total row: $(cat st.txt)"
  [ "$(grep -cE '^\|  *[0-9]+ \|' st.txt)" = 2 ] || fail "not one row per worker: $(cat st.txt)"
  # A kill is counted.
  actl kill "${SCS[b]}" >/dev/null || fail "kill failed"
  assert_eq 1 "$(actl stats --json | jq '.global.kills')" "kills after one kill"
  # The worker counts a session closed just after freeing its slot.
  one_open() { [ "$(actl stats --json | jq '.global.sessions_open')" = 1 ]; }
  wait_until 5 one_open || fail "sessions_open is not 1 after the kill: $(actl stats --json)"

  # Prometheus text format, checked line by line.
  actl metrics >m.txt || fail "metrics failed: $(cat m.txt)"
  awk '
    function bad(why) { printf "line %d: %s: %s\n", NR, why, $0; err = 1 }
    /^# HELP / { if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/ || help[$3]++) bad("bad or repeated HELP"); next }
    /^# TYPE / {
      if (NF != 4 || $4 !~ /^(counter|gauge|histogram)$/ || type[$3] != "" || seen[$3]) bad("bad TYPE")
      type[$3] = $4; next
    }
    /^#/ { bad("unexpected comment"); next }
    {
      if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { bad("no metric name"); next }
      name = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
      if (substr(rest, 1, 1) == "{") {
        if (!match(rest, /^\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\}/)) {
          bad("bad labels"); next
        }
        rest = substr(rest, RLENGTH + 1)
      }
      if (rest !~ /^ -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) bad("bad value")
      # A histogram'"'"'s samples: NAME_bucket (with le), NAME_sum, NAME_count.
      base = name; sub(/_(bucket|sum|count)$/, "", base)
      if (type[name] == "" && type[base] == "histogram") name = base
      if (type[name] == "") bad("sample before its TYPE")
      if (type[name] == "counter" && name !~ /_total$/) bad("counter not named _total")
      seen[name] = 1
    }
    END { exit err }' m.txt >m.err || fail "metrics are not Prometheus text: $(head -5 m.err)"
  grep -qx 'myrelay_up 1' m.txt || fail "no myrelay_up 1"
  grep -q "^myrelay_info{version=\"[^\"]*\",pid=\"$AUX_PID\"" m.txt || fail "no myrelay_info with the pid: $(grep info m.txt)"
  grep -qx 'myrelay_queries_total{worker="0"} [0-9]*' m.txt || fail "no per-worker queries counter"
  grep -qx 'myrelay_queries_total{worker="1"} [0-9]*' m.txt || fail "no queries counter of worker 1"
  out=$(awk '/^myrelay_sessions_open\{/ { s += $2 } END { print s }' m.txt)
  assert_eq 1 "$out" "sum of myrelay_sessions_open after one of two sessions was killed"
  out=$(awk '/^myrelay_kills_total\{/ { s += $2 } END { print s }' m.txt)
  assert_eq 1 "$out" "sum of myrelay_kills_total"
  run_ctl o.txt -c "$CFG" metrics --json
  assert_eq 1 "$RC" "metrics --json is a usage error: $(cat o.txt)"
}

test_ctl_top() {
  need_ctl
  ctl_daemon ctltop
  local t0 ms
  sess_open a
  t0=$(now_ms)
  timeout 20 "$CTL" -c "$CFG" top --count 3 --interval 0.2 >top.txt 2>&1 </dev/null || fail "top failed: $(cat top.txt)"
  ms=$(($(now_ms) - t0))
  [ "$ms" -lt 5000 ] || fail "top --count 3 --interval 0.2 took $ms ms"
  assert_eq 3 "$(grep -c '^myrelayctl top - ' top.txt)" "frames"
  grep -q "| ${SCS[a]} |" top.txt || fail "session ${SCS[a]} not in top: $(cat top.txt)"
  grep -q "$(printf '\033')" top.txt && fail "escape sequences written to a file"
  # On a terminal it redraws until 'q'.
  command -v script >/dev/null || skip "no script(1) to give top a terminal"
  t0=$(now_ms)
  (sleep 1.5; printf q) | timeout 20 script -qfec "$CTL -c $CFG top --interval 0.2" /dev/null >tty.txt 2>&1 ||
    fail "top on a terminal did not end with 'q' (status $?): $(tail -c 300 tty.txt)"
  ms=$(($(now_ms) - t0))
  [ "$ms" -lt 10000 ] || fail "'q' took $ms ms"
  grep -q "$(printf '\033\\[H')" tty.txt || fail "top did not redraw the screen on a terminal"
  grep -q "${SCS[a]}" tty.txt || fail "session not shown on the terminal"
}

# What each session runs: sessions --full and top show the statement (and
# its time so far), from the slot's statement area.
test_ctl_running_statement() {
  need_ctl
  need_jq
  ctl_daemon ctlstmt
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(4) AS top_marker" >/dev/null 2>&1 &
  local sleeper=$! out
  ctl_at_exit "kill $sleeper"
  runs() { actl sessions --full | grep -q "SELECT SLEEP(4) AS top_marker"; }
  wait_until 5 runs || fail "sessions --full: $(actl sessions --full)"
  sleep 1.2
  out=$(actl sessions --full --json)
  local ms
  ms=$(jq -r '.sessions[] | select(.statement != null) | select(.statement | contains("top_marker")) | .statement_time_ms' <<<"$out")
  [ -n "$ms" ] && [ "$ms" -ge 1000 ] || fail "statement_time_ms of the running SLEEP: [$ms] in $out"
  timeout 20 "$CTL" -c "$CFG" top --count 1 >top.txt 2>&1 </dev/null || fail "top failed: $(cat top.txt)"
  grep -q "| statement" top.txt || fail "no statement column in top: $(head -5 top.txt)"
  grep -q "SELECT SLEEP(4) AS top_marker" top.txt || fail "top does not show the running statement: $(cat top.txt)"
  run_ctl o.txt -c "$CFG" stats --full
  assert_eq 1 "$RC" "--full with another command is a usage error: $(cat o.txt)"
}

# metrics --listen: Prometheus text over HTTP from shared memory, checked by
# the Prometheus client library's own parser; the statement latency
# histogram counts what ran; a daemon that stops shows as myrelay_up 0.
test_ctl_metrics_http() {
  need_ctl
  local port out
  ctl_daemon ctlhttp
  port=$(free_port) || fail "no free port"
  "$CTL" -c "$CFG" metrics --listen "127.0.0.1:$port" >http.out 2>&1 &
  local server=$!
  ctl_at_exit "kill $server"
  wait_until 10 grep -q "serving the metrics on http://127.0.0.1:$port/metrics" http.out || fail "no server: $(cat http.out)"
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT 1; SELECT 2; SELECT 3; SELECT 4; SELECT 5" >/dev/null ||
    fail "queries"
  cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SELECT SLEEP(0.3)" >/dev/null || fail "the slow query"
  curl -sS -D headers.txt "http://127.0.0.1:$port/metrics" >m.txt || fail "curl failed"
  grep -qi "^Content-Type: text/plain; version=0.0.4" headers.txt || fail "content type: $(cat headers.txt)"
  # The official parser reads every family; the histogram is whole.
  out=$(/usr/bin/python3 - m.txt <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
h = fams["myrelay_statement_duration_seconds"]
assert h.type == "histogram", h.type
s = {(x.name, x.labels.get("le")): x.value for x in h.samples if x.labels.get("cluster") == "main"}
count = s[("myrelay_statement_duration_seconds_count", None)]
inf = s[("myrelay_statement_duration_seconds_bucket", "+Inf")]
over_quarter = inf - s[("myrelay_statement_duration_seconds_bucket", "0.25")]
total = s[("myrelay_statement_duration_seconds_sum", None)]
assert count == inf, (count, inf)
up = [x.value for x in fams["myrelay_up"].samples]
sessions = sum(x.value for x in fams["myrelay_sessions"].samples)
print(len(fams), int(count), int(over_quarter), "%.2f" % total, int(up[0]), int(sessions))
PY
) || fail "the Prometheus parser refused it: $out"
  echo "INFO: families, statements, over 0.25 s, sum, up, sessions: $out"
  read -r nfam count slow sum up sessions <<<"$out"
  [ "$nfam" -ge 20 ] || fail "families: $nfam"
  [ "$count" -ge 6 ] || fail "statements counted: $count"
  [ "$slow" -ge 1 ] || fail "the SLEEP(0.3) is not over 0.25 s"
  assert_eq 1 "$up" "myrelay_up"
  assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nothing")" "another path"
  # The daemon stops: the server stays and says so.
  myrelayd_stop "$AUX_PID" 5
  curl -sS "http://127.0.0.1:$port/metrics" >down.txt || fail "curl after the daemon stopped"
  assert_contains "$(cat down.txt)" "myrelay_up 0" "after the daemon stopped"
  kill "$server"
  wait "$server" 2>/dev/null
  assert_contains "$(cat http.out)" "stopped after 2 scrapes" "the server ends on SIGTERM"
}

# ---------------------------------------------------------------- kills

# COM_CHANGE_USER changes the session's user in the table at once, not at its
# next command: another process sees it while the client sends nothing.
test_ctl_sees_change_user_at_once() {
  need_ctl
  need_jq
  ctl_daemon ctlcu
  "$MR_CLIENT" 127.0.0.1 "$AUX_PORT" app "$MR_APP_PASSWORD" test change_user_hold app2 "$MR_APP2_PASSWORD" 8 \
    >cu.out 2>&1 &
  local pid=$!
  ctl_at_exit "kill $pid"
  wait_until 10 grep -q '^changed' cu.out || fail "change_user did not happen: $(cat cu.out)"
  actl sessions --json >s.json || fail "sessions --json failed"
  assert_eq "app2" "$(jq -r '.sessions[0].User' s.json)" "User in myrelayctl after COM_CHANGE_USER"
  assert_eq "test" "$(jq -r '.sessions[0].db' s.json)" "db in myrelayctl after COM_CHANGE_USER"
  assert_eq "MCS_KEEP_ALIVE" "$(jq -r '.sessions[0].state' s.json)" "state after COM_CHANGE_USER"
  # Another user's SHOW PROXYSESSION sees it too.
  cli "$AUX_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B -e "SHOW PROXYSESSION" >show.txt 2>&1 ||
    fail "SHOW PROXYSESSION: $(cat show.txt)"
  awk -F'\t' '$5 == "app2"' show.txt | grep -q . || fail "SHOW PROXYSESSION does not show app2: $(cat show.txt)"
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

test_ctl_kill_session() {
  need_ctl
  ctl_daemon ctlkill
  local out rc
  sess_open v1
  sess_open v2
  sess_open v3
  out=$(actl kill "${SCS[v1]}" 2>&1)
  rc=$?
  assert_eq 0 "$rc" "kill ${SCS[v1]}: $out"
  assert_contains "$out" "killed session ${SCS[v1]}" "kill output"
  # The client's next statement finds its connection gone.
  sess_send v1 "SELECT 'after-kill'"
  wait_until 10 grep -q "exit status" v1.out || fail "v1 is still connected: $(cat v1.out)"
  grep -q 'ERROR 2013\|ERROR 2006' v1.out || fail "v1 did not see a lost connection: $(cat v1.out)"
  grep -q '^after-kill$' v1.out && fail "v1 ran a statement after the kill"
  # Gone from the table, the others still there and working.
  actl session "${SCS[v1]}" >/dev/null 2>&1 && fail "session ${SCS[v1]} still listed after the kill"
  sess_query v2 "SELECT 'v2-ok'" v2-ok || fail "v2 broken by another session's kill: $(cat v2.out)"
  # By backend connection id.
  out=$(actl kill "${SCONN[v3]}" 2>&1) || fail "kill by connection id ${SCONN[v3]}: $out"
  assert_contains "$out" "killed session ${SCS[v3]}" "kill by connection id"
  sess_send v3 "SELECT 'after-kill'"
  wait_until 10 grep -q "exit status" v3.out || fail "v3 is still connected: $(cat v3.out)"
  # Killing it again: unknown now.
  out=$(actl kill "${SCS[v3]}" 2>&1)
  rc=$?
  assert_eq 6 "$rc" "kill of a gone session: $out"
  assert_contains "$out" "unknown session id ${SCS[v3]}" "message of a gone session"
  pid_alive "$AUX_PID" || fail "myrelayd died"
}

test_ctl_kill_server_session() {
  need_ctl
  need_jq
  ctl_daemon ctlkillss
  local out rc ss ss2 conn2
  sess_open s app "$MR_APP_PASSWORD" -D test
  ss=$(actl session "${SCS[s]}" --json | jq '.server_sessions[0].ss_id')
  [ -n "$ss" ] && [ "$ss" != null ] || fail "no server session: $(actl session "${SCS[s]}")"
  out=$(actl kill "${SCS[s]}" 99999 2>&1)
  rc=$?
  assert_eq 6 "$rc" "kill of an unknown ss_id: $out"
  assert_contains "$out" "has no server session 99999 (it has ss_id $ss)" "unknown ss_id message"
  out=$(actl kill "${SCS[s]}" "$ss" 2>&1)
  rc=$?
  assert_eq 0 "$rc" "kill ${SCS[s]} $ss: $out"
  assert_contains "$out" "killed server session $ss of session ${SCS[s]}" "kill output"
  assert_contains "$out" "the client session goes on" "kill output"
  # The client goes on with a new server session.
  sess_query s "SELECT 'conn2', CONNECTION_ID()" m2 || fail "statement after the server-session kill: $(cat s.out)"
  conn2=$(awk -F'\t' '$1 == "conn2" { print $2 }' s.out)
  [ -n "$conn2" ] && [ "$conn2" != "${SCONN[s]}" ] || fail "no new backend connection (was ${SCONN[s]}, now '$conn2'): $(cat s.out)"
  ss2=$(actl session "${SCS[s]}" --json | jq '.server_sessions[0].ss_id')
  [ "$ss2" != "$ss" ] || fail "same ss_id $ss after the kill"
  backend_thread_gone "${SCONN[s]}" || wait_until 5 backend_thread_gone "${SCONN[s]}" ||
    fail "backend connection ${SCONN[s]} still there"
}

test_ctl_kill_not_confirmed() {
  need_ctl
  ctl_daemon ctlslow
  local out rc t0 ms
  sess_open s
  # A stopped daemon reads nothing: the request waits in the pipe.
  kill -STOP "$AUX_PID"
  ctl_at_exit "kill -CONT $AUX_PID"
  t0=$(now_ms)
  out=$(actl kill "${SCS[s]}" --timeout 0.5 2>&1)
  rc=$?
  ms=$(($(now_ms) - t0))
  kill -CONT "$AUX_PID"
  assert_eq 7 "$rc" "kill while the daemon is stopped: $out"
  assert_contains "$out" "still there after 0.5 s" "message"
  [ "$ms" -lt 3000 ] || fail "--timeout 0.5 took $ms ms"
  # Once it runs again it finds the request and acts on it.
  wait_until 5 session_gone "${SCS[s]}" || fail "the queued kill was not carried out after SIGCONT"
}

test_ctl_ambiguous_connection_id() {
  need_ctl
  # Two backends give the same connection id to two sessions: a second
  # MariaDB server, whose ids are advanced to match one of the first's.
  local db2="$TT/db2" port2 x c i burn out rc
  port2=$(free_port) || fail "no free port"
  mariadb_start "$db2" "$port2" --max-connect-errors=1000000 >db2.log 2>&1 || fail "second MariaDB: $(tail -5 db2.log)"
  ctl_at_exit "mariadb_stop '$db2'"
  mariadb_root "$db2" -e "CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD'; CREATE DATABASE test;
    GRANT ALL ON test.* TO 'app'@'%'" || fail "users on the second MariaDB"
  ctl_daemon ctlamb cluster="second:$port2"
  sess_open a app "$MR_APP_PASSWORD" -D test
  x=${SCONN[a]}
  for i in 1 2 3 4 5; do
    c=$(mariadb_root "$db2" -N -B -e "SELECT CONNECTION_ID()")
    [ "$c" -lt "$x" ] || skip "the second server's ids ($c) are already past $x"
    # Every accepted connection takes an id, even one that says nothing.
    for ((burn = c + 1; burn < x; burn++)); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port2") 2>/dev/null
    done
    sess_open "b$i" 'app@app#second' "$MR_APP_PASSWORD" -D test
    [ "${SCONN[b$i]}" = "$x" ] && break
    sess_send "b$i" "QUIT"
  done
  [ "${SCONN[b$i]}" = "$x" ] || skip "could not line up the two servers' connection ids"
  out=$(actl kill "$x" 2>&1)
  rc=$?
  assert_eq 6 "$rc" "kill of an ambiguous connection id: $out"
  assert_contains "$out" "id $x is ambiguous" "message"
  assert_contains "$out" "${SCS[a]}" "message names session a"
  assert_contains "$out" "${SCS[b$i]}" "message names session b"
  out=$(actl session "$x" 2>&1)
  assert_eq 6 "$?" "session of an ambiguous id: $out"
  # Neither session was touched; by Id each can be killed.
  sess_query a "SELECT 'a-ok'" a-ok || fail "session a broken: $(cat a.out)"
  out=$(actl kill "${SCS[b$i]}" 2>&1) || fail "kill by Id: $out"
}

# ---------------------------------------------------------------- failures

test_ctl_usage_errors() {
  need_ctl
  local c
  for c in "" "bogus" "sessions extra" "kill" "kill abc" "kill 1 2 3" "session" "--timeout x kill 1" \
    "--state nope sessions" "-c a -s b sessions" "--no-such-option sessions" "top --json"; do
    # shellcheck disable=SC2086
    run_ctl o.txt -s whatever $c
    assert_eq 1 "$RC" "myrelayctl $c: $(cat o.txt)"
    grep -q "^myrelayctl: " o.txt || fail "myrelayctl $c: no message: $(cat o.txt)"
  done
  "$CTL" --help >help.txt || fail "--help failed"
  for c in 0 1 2 3 4 5 6 7 8; do
    grep -qE "^  $c  " help.txt || fail "exit status $c not documented in --help"
  done
  "$CTL" --version | grep -q "layout version" || fail "--version does not name the layout version"
}

test_ctl_no_daemon() {
  need_ctl
  local out rc
  out=$("$CTL" -s "myrelay-t-ctl-none-$$" sessions 2>&1)
  rc=$?
  assert_eq 2 "$rc" "no segment: $out"
  assert_contains "$out" "is myrelayd running?" "message"
  # A daemon that stopped cleanly took its segment along.
  ctl_daemon ctlgone
  actl sessions >/dev/null || fail "sessions of a running daemon"
  myrelayd_stop "$AUX_PID" 10
  out=$(actl stats 2>&1)
  rc=$?
  assert_eq 2 "$rc" "stopped daemon: $out"
  out=$(actl metrics 2>/dev/null)
  rc=$?
  assert_eq 2 "$rc" "metrics of a stopped daemon"
  assert_contains "$out" "myrelay_up 0" "metrics still say the daemon is down"
  out=$("$CTL" -c "$TT/nonexistent.yaml" sessions 2>&1)
  assert_eq 1 "$?" "missing config: $out"
}

test_ctl_stale_segment() {
  need_ctl
  local out rc
  ctl_daemon ctlstale
  ctl_at_exit "rm -f '/dev/shm/$SHM'"
  kill -KILL "$AUX_PID"
  wait_pid_gone "$AUX_PID" 5 || fail "daemon survived SIGKILL"
  [ -e "/dev/shm/$SHM" ] || fail "no segment left behind by a killed daemon (/dev/shm/$SHM)"
  out=$(actl sessions 2>&1)
  rc=$?
  assert_eq 3 "$rc" "stale segment: $out"
  assert_contains "$out" "stale" "message"
  assert_contains "$out" "pid $AUX_PID" "message names the dead pid"
  out=$(actl metrics 2>/dev/null)
  assert_eq 3 "$?" "metrics of a stale segment"
  assert_contains "$out" "myrelay_up 0" "metrics of a stale segment"
}

test_ctl_layout_mismatch() {
  need_ctl
  local name="myrelay-t-ctl-v99-$$" out rc
  ctl_at_exit "rm -f '/dev/shm/$name'"
  # What a myrelayd of another layout leaves: our magic, version 99.
  printf 'MYRELAY1\x63\x00\x00\x00' >"/dev/shm/$name"
  truncate -s 65536 "/dev/shm/$name"
  out=$("$CTL" -s "$name" sessions 2>&1)
  rc=$?
  assert_eq 4 "$rc" "layout version 99: $out"
  assert_contains "$out" "layout version 99" "message"
  # Not a myrelay segment at all.
  head -c 65536 /dev/urandom >"/dev/shm/$name"
  out=$("$CTL" -s "$name" stats 2>&1)
  assert_eq 4 "$?" "a foreign segment: $out"
}

test_ctl_permissions() {
  need_ctl
  [ "$(id -u)" = 0 ] || skip "needs root to create users and groups"
  command -v setpriv >/dev/null || skip "no setpriv"
  # Names of this run only: suites running side by side must not remove
  # each other's users.
  local grp=myrelay_t_adm$$ nobody=myrelay_t_nobody$$ admin=myrelay_t_admin$$ sh out rc
  ctl_at_exit "userdel $nobody; userdel $admin; groupdel $grp"
  groupadd "$grp" || fail "groupadd"
  useradd -M -N -g nogroup -s /usr/sbin/nologin "$nobody" || fail "useradd $nobody"
  useradd -M -N -g nogroup -G "$grp" -s /usr/sbin/nologin "$admin" || fail "useradd $admin"
  # Everything those users need lives outside the test's private directory.
  sh=$(mktemp -d /tmp/myrelay-ctl-perm.XXXXXX) || fail "mktemp"
  ctl_at_exit "rm -rf '$sh'"
  chmod 755 "$sh"
  cp "$CTL" "$sh/myrelayctl" && chmod 755 "$sh/myrelayctl"
  AUX_PORT=$(free_port)
  CFG="$sh/perm.yaml"
  write_config "$CFG" port="$AUX_PORT" backend_port="$MR_DB_PORT" workers=2 name=perm dir="$sh" || fail "write_config"
  sed -i "s/^  admin_group: \"\"/  admin_group: \"$grp\"/" "$CFG"
  grep -q "admin_group: \"$grp\"" "$CFG" || fail "admin_group not set in $CFG"
  # The config holds passwords: only root and the admin group read it.
  chgrp "$grp" "$CFG" && chmod 640 "$CFG"
  SHM=$(sed -n 's/^  shm_name: "\(.*\)"$/\1/p' "$CFG")
  myrelayd_start "$CFG" "$MR_TMP/daemon-perm.log" || fail "myrelayd with admin_group did not start"
  AUX_PID=$MYRELAYD_PID
  AUX_PIDS+=("$AUX_PID")
  sess_open p1
  sess_open p2
  as_user() {
    local u=$1
    shift
    setpriv --reuid="$u" --regid=nogroup --init-groups "$sh/myrelayctl" "$@"
  }
  # A user outside the group: neither segment nor config.
  out=$(as_user "$nobody" -s "$SHM" sessions 2>&1)
  rc=$?
  assert_eq 5 "$rc" "unprivileged user, segment: $out"
  assert_contains "$out" "permission denied" "message"
  out=$(as_user "$nobody" -c "$CFG" sessions 2>&1)
  assert_eq 5 "$?" "unprivileged user, config: $out"
  out=$(as_user "$nobody" -s "$SHM" kill "${SCS[p1]}" 2>&1)
  assert_eq 5 "$?" "unprivileged user, kill: $out"
  # A member of the admin group lists, counts and kills.
  out=$(as_user "$admin" -c "$CFG" sessions 2>&1) || fail "admin group member, sessions: $out"
  assert_contains "$out" "${SCS[p1]}" "admin's listing"
  out=$(as_user "$admin" -s "$SHM" stats 2>&1) || fail "admin group member, stats: $out"
  out=$(as_user "$admin" -s "$SHM" metrics 2>&1) || fail "admin group member, metrics: $out"
  out=$(as_user "$admin" -s "$SHM" kill "${SCS[p1]}" 2>&1) || fail "admin group member, kill: $out"
  assert_contains "$out" "killed session ${SCS[p1]}" "admin's kill"
  sess_send p1 "SELECT 'after-kill'"
  wait_until 10 grep -q "exit status" p1.out || fail "p1 is still connected after the admin's kill"
  # A pipe the group may not write: the kill says so.
  local w pipe
  w=$(awk -F'\t' '$1 == "worker" { print $2 }' <(as_user "$admin" -s "$SHM" session "${SCS[p2]}" | table_tsv))
  pipe="$sh/run-perm/$SHM.worker$w.ctl"
  [ -p "$pipe" ] || fail "no control pipe $pipe"
  chmod 600 "$pipe"
  out=$(as_user "$admin" -s "$SHM" kill "${SCS[p2]}" 2>&1)
  rc=$?
  chmod 620 "$pipe"
  assert_eq 5 "$rc" "kill through a pipe the group may not write: $out"
  assert_contains "$out" "control pipe" "message names the pipe"
  sess_query p2 "SELECT 'p2-ok'" p2-ok || fail "p2 was killed anyway: $(cat p2.out)"
}
