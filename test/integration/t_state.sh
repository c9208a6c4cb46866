# Session state (DESIGN section 3a, issue 11): what a client set is carried
# to every new server session exactly, or the client session ends as its
# server would have ended it; shown by SHOW PROXYSESSION VARIABLES, ATTRIBUTE
# and myrelayctl.  Server sessions are replaced both ways a user meets:
# KILL PROXYSESSION id ss_id from an admin, and the backend's wait_timeout.

CTL=${MYRELAYCTL:-$(dirname "$MYRELAYD")/myrelayctl}
RAW="python3 $MR_IT_DIR/mr_raw.py"
# PyMySQL is Debian's python3-pymysql, for Debian's own python3.
PY=${MR_PYTHON:-/usr/bin/python3}

# The port the sessions below use: the main daemon's unless a test starts its own.
ST_PORT=$MR_PORT
rq() { cli "$ST_PORT" root@sys "$MR_ROOT_PASSWORD" -N -B --skip-print-query-on-error -e "$1"; }

# The session's cs_id and the backend connection it has now.
st_cs_id() {
  st_run "$1" "query SHOW PROXYSESSION ATTRIBUTE LIKE 'cs_id'"
  sed -n 's/^cs_id|\([0-9]*\)|.*/\1/p' <<<"$OUT"
}
st_conn() {
  st_run "$1" "query SELECT CONNECTION_ID()"
  head -1 <<<"$OUT"
}

# replace NAME kill|timeout: ends the session's server session the way
# given, and waits until the backend connection is gone.
replace() {
  local name=$1 how=$2 id conn ss out
  conn=$(st_conn "$name")
  [ -n "$conn" ] || fail "no backend connection id: $OUT"
  if [ "$how" = kill ]; then
    id=$(st_cs_id "$name")
    ss=$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'ss_id'" | cut -f2)
    out=$(rq "KILL PROXYSESSION $id $ss; SHOW WARNINGS" 2>&1) || fail "KILL PROXYSESSION $id $ss: $out"
    KILL_NOTE=$out
  else
    # The backend ends a connection idle longer than wait_timeout.
    st_run "$name" "query SET SESSION wait_timeout = 1"
    sleep 1.5
  fi
  wait_until 10 backend_thread_gone "$conn" || fail "backend connection $conn is still there"
  OLD_CONN=$conn
}

# The values a client can see of its session's state.
STATE_QUERY="query SELECT @@sql_mode, @@time_zone, @@sql_select_limit, @@autocommit, @@character_set_client, \
@@character_set_results, @@collation_connection, @@tx_isolation, LAST_INSERT_ID(), DATABASE()"

# The next transaction's isolation level, as InnoDB runs it.
TRX_LEVEL="query SELECT trx_isolation_level FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID()"

# The server session killed, then a text over 64 KiB (streamed, never held
# whole) as the next statement: it gets a new server session and runs.  It
# used to end the daemon (std::out_of_range on the empty text the routing
# looked at; found by scripts/netfuzz).
test_long_query_after_server_session_killed() {
  need_proxy
  start_aux_daemon longq
  local out
  out=$(timeout 60 "$PY" - "$AUX_PORT" "$MR_APP_PASSWORD" "$MR_ROOT_PASSWORD" <<'PY' 2>&1
import sys, pymysql
port, app_pw, root_pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = pymysql.connect(host='127.0.0.1', port=port, user='app', password=app_pw, database='test', autocommit=True)
cur = app.cursor()
cur.execute("SELECT 1")
root = pymysql.connect(host='127.0.0.1', port=port, user='root@sys', password=root_pw)
rc = root.cursor()
rc.execute("SHOW PROXYSESSION ATTRIBUTE %d LIKE 'ss_id'" % app.thread_id())
rc.execute("KILL PROXYSESSION %d %s" % (app.thread_id(), rc.fetchall()[0][1]))
cur.execute("SELECT LENGTH('" + 'x' * 70000 + "')")
print(cur.fetchall()[0][0])
PY
)
  assert_eq 70000 "$out" "a 70 kB SELECT after KILL PROXYSESSION id ss_id"
  pid_alive "$AUX_PID" || fail "myrelayd died: $(tail -3 "$AUX_LOG")"
}

# Everything the issue lists, set once, then the server session replaced by
# a kill and then by wait_timeout: after each, the client sees the same
# values, its prepared statement runs with new_params_bound=0, and the next
# transaction has the characteristics set for it.
test_state_carried_to_new_server_sessions() {
  need_proxy
  need_client
  tq "CREATE TABLE IF NOT EXISTS st_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB" ||
    fail "create table"
  st_open s
  st_run s "query INSERT INTO st_ai (v) VALUES (1)" \
    "query SET NAMES utf8mb4 COLLATE utf8mb4_bin" \
    "query SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', time_zone = '+03:00', sql_select_limit = 5" \
    "query SET character_set_results = NULL" \
    "query SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE" \
    "query SET autocommit = 0" \
    "prepare p SELECT ? + 1, CONCAT(?, 'x')" \
    "bind p 41 ab" \
    "exec p"
  assert_contains "$OUT" "42|abx" "the prepared statement before any replacement"
  st_run s "$STATE_QUERY"
  local before=$OUT how
  assert_contains "$before" "ANSI_QUOTES,NO_BACKSLASH_ESCAPES|+03:00|5|0|utf8mb4|NULL|utf8mb4_bin|SERIALIZABLE|" \
    "the state as set"
  for how in kill timeout; do
    # Set for the next transaction only: it must reach the new server session.
    if [ "$how" = kill ]; then
      st_run s "query SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
    else
      st_run s "query SET TRANSACTION READ ONLY"
    fi
    replace s "$how"
    [ "$(st_conn s)" != "$OLD_CONN" ] || fail "$how: still backend connection $OLD_CONN"
    st_run s "$STATE_QUERY"
    # wait_timeout itself is part of the state from the second round on.
    assert_eq "$before" "$OUT" "$how: the session's state on the new server session"
    st_run s "exec p"
    assert_contains "$OUT" "42|abx" "$how: the prepared statement executed with new_params_bound=0"
    if [ "$how" = kill ]; then
      st_run s "query START TRANSACTION" "query SELECT COUNT(*) FROM st_ai" "$TRX_LEVEL" "query COMMIT"
      assert_contains "$OUT" "READ COMMITTED" "$how: the next transaction's isolation level"
    else
      st_run s "query START TRANSACTION" "query INSERT INTO st_ai (v) VALUES (3)" "query ROLLBACK"
      assert_contains "$OUT" "error 1792 25006" "$how: the next transaction is read-only"
      st_run s "query START TRANSACTION" "query INSERT INTO st_ai (v) VALUES (3)" "query ROLLBACK"
      assert_eq "ok"$'\n'"ok"$'\n'"ok" "$OUT" "$how: the one after it is not"
    fi
    st_run s "query SET SESSION wait_timeout = 28800"
  done
  st_close s
}

# Each kind of state the proxy cannot carry: replacing the server session
# ends the client session, whose next statement sees the connection lost;
# the KILL's answer carries a note, and the log names what was lost.
expect_cut() {
  local what=$1 how=$2 reason=$3 id
  shift 3
  st_open c
  st_run c "$@"
  id=$(st_cs_id c)
  [ "$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'restorable'" | cut -f2)" = false ] ||
    fail "$what: the session is still restorable"
  assert_contains "$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'not_restorable_because'")" "$reason" \
    "$what: not_restorable_because"
  replace c "$how"
  [ "$how" = kill ] && assert_contains "$KILL_NOTE" "holds $reason" "$what: the KILL's note"
  st_run c "query SELECT 'after'"
  case "$OUT" in
    "error 2013 "* | "error 2006 "*) ;;
    *) fail "$what ($how): the next statement got [$OUT], not a lost connection" ;;
  esac
  wait_until 5 grep -q "cs_id=$id .*holds .*$reason" "$MR_DAEMON_LOG" ||
    fail "$what: no log line naming '$reason'"
  st_close c
  wait
  rm -f c.in c.out
}

test_unrestorable_state_ends_the_session() {
  need_proxy
  need_client
  tq "CREATE TABLE IF NOT EXISTS st_tx (id INT PRIMARY KEY) ENGINE=InnoDB; DELETE FROM st_tx" || fail "create table"
  local how id=0
  for how in kill timeout; do
    expect_cut "temporary table" $how "temporary tables" "query CREATE TEMPORARY TABLE tt (i INT)"
    expect_cut "SET @a" $how "user variables" "query SET @a = 1"
    expect_cut "SELECT INTO @a" $how "user variables" "query SELECT 1 INTO @a"
    expect_cut "SELECT @a:=" $how "user variables" "query SELECT @a := 1"
    expect_cut "GET_LOCK" $how "GET_LOCK" "query SELECT GET_LOCK('st_lock', 1)"
    expect_cut "LOCK TABLES" $how "LOCK TABLES" "query LOCK TABLES st_tx READ"
    expect_cut "SQL PREPARE" $how "SQL PREPARE" "query PREPARE sp FROM 'SELECT 1'"
    expect_cut "open cursor" $how "open cursor" "prepare cur SELECT id FROM big WHERE id < 100" "cursor cur"
    id=$((id + 1))
    expect_cut "transaction" $how "open transaction" "query START TRANSACTION" "query INSERT INTO st_tx VALUES ($id)"
    [ -z "$(dq "SELECT id FROM test.st_tx WHERE id = $id")" ] || fail "$how: the cut transaction's INSERT was committed"
  done
}

# COM_RESET_CONNECTION gives the server's defaults back: the session is
# restorable again and survives a replacement.
test_reset_connection_makes_restorable() {
  need_proxy
  need_client
  st_open r
  st_run r "query SET @a = 1" "query CREATE TEMPORARY TABLE tr (i INT)"
  local id
  id=$(st_cs_id r)
  assert_eq false "$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'restorable'" | cut -f2)" "restorable before the reset"
  st_run r "reset" "query SET SESSION time_zone = '-02:00'"
  assert_eq true "$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'restorable'" | cut -f2)" "restorable after the reset"
  replace r kill
  st_run r "query SELECT @@time_zone, @a"
  assert_eq "-02:00|NULL"$'\n'"ok" "$OUT" "after the reset and a replacement"
  st_close r
}

# A replacement server session from the pool: reset when it was pooled,
# then given this session's state like any other.
test_pool_replacement_gets_the_state() {
  need_proxy
  need_client
  start_aux_daemon statepool workers=1 server_pool_size=4
  ST_PORT=$AUX_PORT
  st_open p
  st_run p "query SET SESSION time_zone = '+07:00', sql_mode = 'TRADITIONAL'" "query SET @@session.lc_time_names = 'de_DE'" \
    "query SELECT @@time_zone, @@sql_mode, @@lc_time_names"
  local pooled before
  before=$(grep -m1 '|' <<<"$OUT")
  assert_contains "$before" "+07:00|STRICT_TRANS_TABLES," "the state as set"
  pooled=$(cli "$AUX_PORT" app "$MR_APP_PASSWORD" -N -B -e "SET SESSION time_zone = '-01:00'; SELECT CONNECTION_ID()") ||
    fail "second session"
  replace p kill
  st_run p "query SELECT CONNECTION_ID(), @@time_zone, @@sql_mode, @@lc_time_names"
  assert_eq "$pooled|$before" "$(head -1 <<<"$OUT")" "the pooled server session with this session's state"
  st_close p
}

# What the proxy would replay, seen from the session itself, from an admin
# on another connection and from myrelayctl; ATTRIBUTE's state rows.
test_show_proxysession_variables() {
  need_proxy
  need_client
  st_open v
  st_run v "query SET SESSION sql_mode = 'ANSI', time_zone = '+05:30'" "query USE test2" \
    "query SET TRANSACTION READ ONLY" "prepare a SELECT 1" "prepare b SELECT ?" \
    "query INSERT INTO test.st_ai (v) VALUES (2)"
  local id out lid
  id=$(st_cs_id v)
  st_run v "query SHOW PROXYSESSION VARIABLES"
  assert_contains "$OUT" "time_zone|+05:30|system variable" "own VARIABLES"
  assert_contains "$OUT" "schema|test2|schema" "own VARIABLES: the schema"
  assert_contains "$OUT" "transaction_characteristics|SET TRANSACTION READ ONLY;|next transaction" \
    "own VARIABLES: the next transaction"
  out=$(cli "$MR_PORT" root@sys "$MR_ROOT_PASSWORD" -B -e "SHOW PROXYSESSION VARIABLES $id LIKE 'sql%'")
  assert_eq "variable_name	value	info" "$(head -1 <<<"$out")" "VARIABLES columns"
  assert_contains "$out" "sql_mode	REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI	system variable" \
    "VARIABLES of another session, LIKE"
  [ "$(wc -l <<<"$out")" = 2 ] || fail "LIKE 'sql%' shows more than sql_mode: $out"
  st_run v "query SELECT LAST_INSERT_ID()"
  lid=$(head -1 <<<"$OUT")
  out=$(rq "SHOW PROXYSESSION ATTRIBUTE $id")
  assert_contains "$out" "restorable	true" "ATTRIBUTE restorable"
  assert_contains "$out" "prepared_statements	2" "ATTRIBUTE prepared_statements"
  assert_contains "$out" "last_insert_id	$lid" "ATTRIBUTE last_insert_id"
  assert_contains "$out" "in_sync	true" "ATTRIBUTE in_sync"
  out=$("$CTL" -c "$MR_TMP/main.yaml" session "$id" --variables 2>&1) || fail "myrelayctl --variables: $out"
  assert_contains "$out" "+05:30" "myrelayctl session --variables"
  out=$("$CTL" -c "$MR_TMP/main.yaml" --json session "$id" --variables --like 'time%' 2>&1) ||
    fail "myrelayctl --json --variables: $out"
  assert_eq "+05:30" "$(jq -r '.[0].value' <<<"$out")" "myrelayctl --json session --variables"
  st_run v "query SET @u = 1"
  out=$(rq "SHOW PROXYSESSION ATTRIBUTE $id LIKE 'not_restorable_because'")
  assert_contains "$out" "user variables" "ATTRIBUTE not_restorable_because"
  st_close v
}

# A client cannot switch the proxy's trackers off behind its back.
test_session_track_change_refused() {
  need_proxy
  local out
  out=$(tq "SET SESSION session_track_schema = OFF" 2>&1)
  assert_contains "$out" "ERROR 1235 (42000)" "SET session_track_schema"
  out=$(tq "SET @@session.session_track_system_variables = ''" 2>&1)
  assert_contains "$out" "ERROR 1235 (42000)" "SET session_track_system_variables"
}

# A prepared statement whose table changed shape before it was prepared
# again on a new server session is an error for that statement only.
test_reprepare_with_other_columns_fails() {
  need_proxy
  need_client
  tq "DROP TABLE IF EXISTS st_mm; CREATE TABLE st_mm (a INT); INSERT INTO st_mm VALUES (1)" || fail "create"
  st_open m
  st_run m "prepare q SELECT * FROM st_mm" "exec q"
  assert_contains "$OUT" "ok affected" "before"
  replace m kill
  tq "ALTER TABLE st_mm ADD COLUMN b INT" || fail "alter"
  st_run m "exec q"
  assert_contains "$OUT" "error 1615 HY000 Prepared statement needs to be re-prepared" "after the change"
  st_run m "query SELECT 'alive'" "prepare q2 SELECT * FROM st_mm" "exec q2"
  assert_contains "$OUT" "1|NULL" "the session goes on"
  # As many columns, of another type: the client's idea of the rows is wrong too.
  replace m kill
  tq "ALTER TABLE st_mm MODIFY b VARCHAR(20)" || fail "alter"
  st_run m "exec q2"
  assert_contains "$OUT" "error 1615 HY000" "a column of another type"
  st_close m
}

# pymysql_lost_after WAIT STATEMENT...: PyMySQL runs the statements, waits
# WAIT seconds (past the wait_timeout they set) and then sends one more
# (the last); the client must see its connection lost (2013 or 2006).
pymysql_lost_after() {
  "$PY" -c 'import pymysql' 2>/dev/null || fail "python3-pymysql is not installed"
  local out
  out=$("$PY" - "$MR_PORT" "$MR_APP_PASSWORD" "$@" <<'PY' 2>&1
import sys, time, pymysql
port, password, wait, statements = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4:]
c = pymysql.connect(host='127.0.0.1', port=port, user='app', password=password, database='test')
cur = c.cursor()
for sql in statements[:-1]:
    cur.execute(sql)
time.sleep(wait)
try:
    cur.execute(statements[-1])
    print('answered', cur.fetchall())
except pymysql.err.OperationalError as e:
    print('operational', e.args[0])
except pymysql.err.MySQLError as e:
    print('other', e.args)
PY
)
  case "$out" in
    "operational 2013" | "operational 2006") ;;
    *) fail "the client got [$out], not a lost connection" ;;
  esac
}

# What the issue's user tried with PyMySQL: a temporary table and a short
# wait_timeout.  Directly the server closes the connection and the client
# gets 2013; through the proxy the same, never "table doesn't exist".
test_pymysql_temporary_table_and_wait_timeout() {
  pymysql_lost_after 3.5 "SET SESSION wait_timeout = 2" "CREATE TEMPORARY TABLE tt (i INT)" \
    "INSERT INTO tt VALUES (1)" "SELECT COUNT(*) FROM tt"
}

# A transaction the backend ends (wait_timeout) is lost as it would be
# directly: the connection closes and the INSERT is not committed.
test_backend_closes_in_transaction() {
  tq "CREATE TABLE IF NOT EXISTS st_tx (id INT PRIMARY KEY) ENGINE=InnoDB; DELETE FROM st_tx WHERE id = 9" ||
    fail "create table"
  pymysql_lost_after 2.5 "SET SESSION wait_timeout = 1" "START TRANSACTION" "INSERT INTO st_tx VALUES (9)" "COMMIT"
  [ -z "$(dq "SELECT id FROM test.st_tx WHERE id = 9")" ] || fail "the INSERT was committed"
}

# A client that asked for neither session tracking nor DEPRECATE_EOF gets
# byte for byte what the server sends it, though the proxy's own
# connection asks for both; so does one that asked for DEPRECATE_EOF only,
# one with MariaDB's extended capabilities, and one that tracks, for
# statements that report one thing each.
test_responses_byte_for_byte() {
  need_proxy
  local caps out_d out_p
  local -a plain=("SET SESSION sql_mode = 'ANSI_QUOTES'" "USE test2" "SELECT 1, 'a'" "USE test"
    "UPDATE st_ai SET v = v WHERE id > 0" "SET NAMES latin1" "SELECT @@character_set_results"
    "SET autocommit = 0" "SET autocommit = 1" "SELECT * FROM types ORDER BY id" "DO 1" "SELECT 1; SELECT 2"
    "START TRANSACTION" "UPDATE st_ai SET v = v WHERE id > 0" "SELECT COUNT(*) FROM st_ai" "COMMIT"
    "SET SESSION TRANSACTION READ ONLY" "SHOW WARNINGS")
  local -a tracked=("SET SESSION time_zone = '+01:00'" "USE test2" "SELECT 1" "SET autocommit = 0"
    "UPDATE test.st_ai SET v = v WHERE id > 0" "SET sql_mode = ''" "SET @x = 1")
  tq "CREATE TABLE IF NOT EXISTS st_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB" || fail "create"
  # 0x1d00000000: MariaDB's progress reports, bulk execute, extended metadata
  # and metadata caching, which the proxy passes through.
  for caps in 0 0x1000000 0x1d00000000 0x1d01000000; do
    out_d=$($RAW responses 127.0.0.1 "$MR_DB_PORT" app "$MR_APP_PASSWORD" "$caps" "${plain[@]}" 2>&1)
    out_p=$($RAW responses 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" "$caps" "${plain[@]}" 2>&1)
    assert_eq "$out_d" "$out_p" "responses for a client with capabilities $caps"
  done
  for caps in 0x800000 0x1800000 0x1d01800000; do
    out_d=$($RAW responses 127.0.0.1 "$MR_DB_PORT" app "$MR_APP_PASSWORD" "$caps" "${tracked[@]}" 2>&1)
    out_p=$($RAW responses 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" "$caps" "${tracked[@]}" 2>&1)
    assert_eq "$out_d" "$out_p" "responses for a tracking client with capabilities $caps"
  done
}

# The rest of the protocol, the same through the proxy as directly: LOAD
# DATA LOCAL INFILE as a prepared statement (the backend asks for the file
# in the answer to COM_STMT_EXECUTE), and MariaDB's COM_STMT_BULK_EXECUTE
# (array binding), before and after the server session is replaced.
test_prepared_load_data_and_bulk_execute() {
  need_client
  tq "CREATE TABLE IF NOT EXISTS st_bulk (i BIGINT); DELETE FROM st_bulk" || fail "create table"
  printf '7\n8\n9\n' >"$PWD/infile.txt"
  local script direct proxy
  script=("prepare l LOAD DATA LOCAL INFILE '$PWD/infile.txt' INTO TABLE st_bulk" "exec l"
    "prepare b INSERT INTO st_bulk VALUES (?)" "bulk b 5" "bulk b 3"
    "query SELECT COUNT(*), SUM(i) FROM st_bulk" "query DELETE FROM st_bulk")
  direct=$(printf '%s\n' "${script[@]}" | "$MR_CLIENT" 127.0.0.1 "$MR_DB_PORT" app "$MR_APP_PASSWORD" test script 2>&1)
  assert_contains "$direct" "11|45" "directly"
  proxy=$(printf '%s\n' "${script[@]}" | "$MR_CLIENT" 127.0.0.1 "$MR_PORT" app "$MR_APP_PASSWORD" test script 2>&1)
  assert_eq "$direct" "$proxy" "through the port under test"
  [ "$MR_MODE" = proxy ] || return 0
  # The bulk statement prepared again on a new server session.
  st_open k
  st_run k "prepare b INSERT INTO st_bulk VALUES (?)" "bulk b 4"
  replace k kill
  st_run k "bulk b 2" "query SELECT COUNT(*), SUM(i) FROM st_bulk"
  assert_contains "$OUT" "6|13" "bulk execute after the replacement"
  st_close k
}
