#!/bin/bash
# The integration suite: a real MariaDB server on 127.0.0.1 (free port, in a
# mktemp -d directory; binary log and GTID on) with a GTID replica of it (a
# second mariadbd, read_only), a real myrelayd with 2 workers in front of it, and
# every test_* function of every t_*.sh run against it with the mariadb
# command line, the C client (mr_client) and sysbench.
#
# usage: test/integration/run.sh [--direct] [--builddir DIR] [--keep] [PATTERN...]
#   --direct        run the same tests against MariaDB itself (no proxy);
#                   proxy-only tests are skipped
#   --builddir DIR  where src/myrelayd and test/integration/mr_client were
#                   built (default: the checkout; scripts/test --sanitizers
#                   passes its build directory)
#   --keep          keep the temporary directory (logs) after the run
#   PATTERN         run only tests whose name (GROUP/NAME, as printed,
#                   e.g. t_faults/handshake_timeout) contains one of them
#
# Prints "ok - NAME" / "not ok - NAME: reason" per test, then
# "integration: N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../scripts/lib/common.sh"

mode=proxy
builddir=$MR_SRCDIR
keep=0
patterns=()
while [ $# -gt 0 ]; do
  case "$1" in
    --direct) mode=direct ;;
    --builddir) builddir=$(cd "$2" && pwd) || exit 2; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) patterns+=("$1") ;;
  esac
  shift
done

export MR_MODE=$mode
export MYRELAYD=${MYRELAYD_BIN:-$builddir/src/myrelayd}
export MR_CLIENT=${MR_CLIENT:-$builddir/test/integration/mr_client}
export MR_ROOT_PASSWORD MR_APP_PASSWORD MR_APP2_PASSWORD MR_REPL_PASSWORD MR_MONITOR_PASSWORD
export MR_BIG_ROWS=200000
TEST_TIMEOUT=${MR_TEST_TIMEOUT:-180}

MR_TMP=$(mktemp -d /tmp/myrelay-it.XXXXXX) || exit 1
export MR_TMP
export MR_DB_DIR=$MR_TMP/db
export MR_REPLICA_DIR=$MR_TMP/replica

passed=0
failed=0
skipped=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  myrelayd_stop_all
  mariadb_stop "$MR_REPLICA_DIR"
  mariadb_stop "$MR_DB_DIR"
  if [ "$keep" = 1 ]; then
    echo "# kept $MR_TMP" >&2
  else
    rm -rf "$MR_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

report_ok() { echo "ok - $1"; passed=$((passed + 1)); }
report_fail() {
  echo "not ok - $1: $2"
  failed=$((failed + 1))
  if [ -n "${3:-}" ] && [ -s "$3" ]; then
    grep -v "^FAIL: " "$3" | tail -15 | sed 's/^/#   /'
  fi
}

summary_and_exit() {
  [ "$skipped" -gt 0 ] && echo "# $skipped skipped"
  echo "integration: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# ---------------------------------------------------------------- MariaDB
# The primary logs everything from its first statement on (GTID, server id 1),
# so the replica started below replays the whole binlog: every user, database
# and table created here reaches it through replication.
MR_DB_PORT=$(free_port) || exit 1
export MR_DB_PORT
if ! mariadb_start "$MR_DB_DIR" "$MR_DB_PORT" --log-bin=mysql-bin --server-id=1 \
    --log-slave-updates --gtid-strict-mode=1 >&2; then
  report_fail "MariaDB starts" "see above"
  summary_and_exit
fi

# Replication accounts, before any data: repl (the replica's IO thread) and
# myrelay_monitor (what myrelayd's replica monitor logs in as).
if ! mariadb_replication_accounts "$MR_DB_DIR"; then
  report_fail "replication users set up in MariaDB" "SQL failed"
  summary_and_exit
fi

# Users: root for tenant sys (also over TCP, with a password), app and app2 for
# tenant app.  With skip-name-resolve MariaDB sees clients as '127.0.0.1'.
if ! { cat <<SQL
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MR_ROOT_PASSWORD';
CREATE USER 'root'@'%' IDENTIFIED BY '$MR_ROOT_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE USER 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD';
CREATE USER 'app2'@'%' IDENTIFIED BY '$MR_APP2_PASSWORD';
CREATE DATABASE test;
CREATE DATABASE test2;
CREATE DATABASE sbtest_direct;
CREATE DATABASE sbtest_proxy;
GRANT ALL PRIVILEGES ON test.* TO 'app'@'%', 'app2'@'%';
GRANT ALL PRIVILEGES ON test2.* TO 'app'@'%', 'app2'@'%';
GRANT ALL PRIVILEGES ON sbtest_direct.* TO 'app'@'%';
GRANT ALL PRIVILEGES ON sbtest_proxy.* TO 'app'@'%';
GRANT PROCESS ON *.* TO 'app'@'%';
SQL
  sed "s/@BIG_ROWS@/$MR_BIG_ROWS/" "$HERE/schema.sql"; } | mariadb_root "$MR_DB_DIR"
then
  report_fail "test data set up in MariaDB" "SQL failed"
  summary_and_exit
fi
# ---------------------------------------------------------------- replica
# A GTID replica of that server (server id 2, read_only), caught up with all of
# the above (test.big included) before any test runs.
MR_REPLICA_PORT=$(free_port) || exit 1
export MR_REPLICA_PORT
replica_start=$SECONDS
if ! mariadb_start_replica "$MR_REPLICA_DIR" "$MR_REPLICA_PORT" "$MR_DB_PORT" repl "$MR_REPL_PASSWORD" >&2 ||
   ! mariadb_wait_replica_caught_up "$MR_DB_DIR" "$MR_REPLICA_DIR" 60 >&2; then
  report_fail "MariaDB replica starts" "see above"
  summary_and_exit
fi
echo "# MariaDB replica on 127.0.0.1:$MR_REPLICA_PORT, caught up after $((SECONDS - replica_start)) s"

# app2's password goes into the config in its "*HEX" form, so both forms are used.
MR_APP2_PASSWORD_CONF=$(mariadb_root "$MR_DB_DIR" -N -B -e "SELECT PASSWORD('$MR_APP2_PASSWORD')")
export MR_APP2_PASSWORD_CONF

# ---------------------------------------------------------------- myrelayd
if [ "$mode" = proxy ]; then
  if [ ! -x "$MYRELAYD" ]; then
    report_fail "myrelayd is built" "$MYRELAYD does not exist"
    summary_and_exit
  fi
  export MR_PROXY_PORT
  MR_PROXY_PORT=$(free_port) || exit 1
  export MR_DAEMON_LOG=$MR_TMP/daemon-main.log
  write_config "$MR_TMP/main.yaml" port="$MR_PROXY_PORT" backend_port="$MR_DB_PORT" \
    workers=2 name=main shutdown_grace_s=5
  if ! myrelayd_start "$MR_TMP/main.yaml" "$MR_DAEMON_LOG" >&2; then
    report_fail "myrelayd starts" "$(tail -3 "$MR_DAEMON_LOG" | tr '\n' ' ')"
    summary_and_exit
  fi
  export MR_DAEMON_PID=$MYRELAYD_PID
  export MR_PORT=$MR_PROXY_PORT
  echo "# MariaDB on 127.0.0.1:$MR_DB_PORT, myrelayd (pid $MR_DAEMON_PID) on 127.0.0.1:$MR_PORT, temp dir $MR_TMP"
else
  export MR_DAEMON_PID="" MR_DAEMON_LOG=""
  export MR_PORT=$MR_DB_PORT
  echo "# direct mode: MariaDB on 127.0.0.1:$MR_DB_PORT, temp dir $MR_TMP"
fi

# ---------------------------------------------------------------- tests
selected() {
  [ ${#patterns[@]} -eq 0 ] && return 0
  local p
  for p in "${patterns[@]}"; do
    case "$1" in *"$p"*) return 0 ;; esac
  done
  return 1
}

mkdir -p "$MR_TMP/logs"
for file in "$HERE"/t_*.sh; do
  group=$(basename "$file")
  for fn in $(grep -oE '^test_[A-Za-z0-9_]+' "$file"); do
    selected "${group%.sh}/${fn#test_}" || continue
    log="$MR_TMP/logs/$fn.log"
    start=$(date +%s)
    timeout -k 5 "$TEST_TIMEOUT" bash "$HERE/lib.sh" --run "$group" "$fn" >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(($(date +%s) - start))
    name="${group%.sh}/${fn#test_} (${secs}s)"
    case "$rc" in
      0)
        report_ok "$name"
        sed -n "s/^INFO: /#   /p" "$log"
        ;;
      77)
        echo "skip - $name: $(sed -n 's/^SKIP: //p' "$log" | head -1)"
        skipped=$((skipped + 1))
        ;;
      124|137) report_fail "$name" "timed out after ${TEST_TIMEOUT}s" "$log" ;;
      *)
        reason=$(sed -n 's/^FAIL: //p' "$log" | head -3 | tr '\n' ' ')
        [ -n "$reason" ] || reason="exit status $rc"
        report_fail "$name" "$reason" "$log"
        ;;
    esac
  done
done

# ---------------------------------------------------------------- the daemons themselves
if [ "$mode" = proxy ] && [ ${#patterns[@]} -eq 0 ]; then
  if pid_alive "$MR_DAEMON_PID"; then
    report_ok "daemon/survived the whole suite"
  else
    report_fail "daemon/survived the whole suite" "myrelayd (pid $MR_DAEMON_PID) is gone" "$MR_DAEMON_LOG"
  fi
  myrelayd_stop "$MR_DAEMON_PID" 15
  if [ "$MYRELAYD_EXIT" = 0 ]; then
    report_ok "daemon/stops on SIGTERM with status 0"
  else
    report_fail "daemon/stops on SIGTERM with status 0" "exit status ${MYRELAYD_EXIT:-unknown}" "$MR_DAEMON_LOG"
  fi
fi
if [ "$mode" = proxy ]; then
  myrelayd_stop_all
  reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: [A-Za-z]*Sanitizer' \
    "$MR_TMP"/daemon-*.log 2>/dev/null)
  if [ -z "$reports" ]; then
    report_ok "daemon/no sanitizer reports in daemon logs"
  else
    report_fail "daemon/no sanitizer reports in daemon logs" "in: $(echo $reports)"
    for f in $reports; do
      grep -m1 -A12 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | sed 's/^/#   /'
    done
  fi
fi

summary_and_exit
