# Helpers of the integration tests (sourced by every t_*.sh), and the runner of
# one test case:
#
#   bash lib.sh --run t_queries.sh test_big_result
#
# run.sh starts MariaDB and myrelayd and exports the environment described
# below, then runs every test_* function of every t_*.sh this way, each in its
# own process under `timeout`, so a hung test cannot hang the suite and
# everything a test starts dies with it.
#
# Environment (exported by run.sh):
#   MR_MODE        proxy | direct (direct: the tests target MariaDB itself)
#   MR_PORT        the port under test on 127.0.0.1 (myrelayd, or MariaDB in direct mode)
#   MR_DB_PORT     MariaDB's port;  MR_DB_DIR its directory (socket mysqld.sock);
#                  binary log on (GTID, server id 1, binlog DIR/data/mysql-bin.*)
#   MR_REPLICA_PORT  port of a GTID replica of it (server id 2, read_only=1,
#                  caught up before the tests start: same users, databases,
#                  tables);  MR_REPLICA_DIR its directory (socket mysqld.sock).
#                  Don't write on it as root: GTID strict mode would stop
#                  replication.  mariadb_wait_replica_caught_up "$MR_DB_DIR"
#                  "$MR_REPLICA_DIR" waits until it applied the primary's writes.
#   MR_TMP         the run's temporary directory
#   MR_CLIENT      test/integration/mr_client (the C client)
#   MYRELAYD       the daemon binary;  MR_DAEMON_PID / MR_DAEMON_LOG: the main daemon
#   MR_ROOT_PASSWORD MR_APP_PASSWORD MR_APP2_PASSWORD  passwords of root (tenant
#                  sys), app and app2 (tenant app), the same on the backend
#   MR_REPL_PASSWORD  password of repl@'%' (REPLICATION SLAVE), the account
#                  the replica replicates with
#   MR_MONITOR_PASSWORD  password of myrelay_monitor@'%' (SLAVE MONITOR,
#                  BINLOG MONITOR, PROCESS): for myrelayd's replica monitor
#   MR_BIG_ROWS    rows of test.big

MR_IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/common.sh
. "$MR_IT_DIR/../../scripts/lib/common.sh"

# ---------------------------------------------------------------- outcome

# fail MESSAGE...: ends the test case as failed with that reason.
fail() {
  echo "FAIL: $*"
  exit 1
}

# skip REASON: ends the test case as skipped (not counted as passed).
skip() {
  echo "SKIP: $*"
  exit 77
}

need_proxy() {
  [ "$MR_MODE" = proxy ] || skip "needs myrelayd (direct mode)"
}

need_client() {
  [ -x "$MR_CLIENT" ] || fail "C client $MR_CLIENT is not built (libmariadb-dev missing, or make failed)"
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
  [ "$1" == "$2" ] || fail "$3: expected [$(printf '%s' "$1" | head -c 400)] got [$(printf '%s' "$2" | head -c 400)]"
}

# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "$3: [$(printf '%s' "$1" | head -c 400)] does not contain [$2]" ;;
  esac
}

# ---------------------------------------------------------------- clients

# cli PORT USER PASSWORD [mariadb args...]: the mariadb command line over TCP.
# An empty PASSWORD means no password.
cli() {
  local port=$1 user=$2 pass=$3
  shift 3
  local pw=()
  [ -n "$pass" ] && pw=("-p$pass")
  mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -u"$user" "${pw[@]}" \
    --connect-timeout=10 "$@"
}

# tcli [mariadb args...]: as app, database test, on the port under test.
tcli() { cli "$MR_PORT" app "$MR_APP_PASSWORD" -D test "$@"; }
# dcli [mariadb args...]: the same, directly on MariaDB.
dcli() { cli "$MR_DB_PORT" app "$MR_APP_PASSWORD" -D test "$@"; }

# tq SQL / dq_app SQL: one batch of SQL as app (port under test / direct),
# tab-separated, no column names.
tq() { tcli -N -B -e "$1"; }
dq_app() { dcli -N -B -e "$1"; }

# dq SQL: as root over MariaDB's socket (never through the proxy).
dq() { mariadb --no-defaults --socket="$MR_DB_DIR/mysqld.sock" -uroot -N -B -e "$1"; }

# mrc USER PASSWORD SUBCOMMAND [args...]: the C client against the port under test.
mrc() {
  local user=$1 pass=$2
  shift 2
  "$MR_CLIENT" 127.0.0.1 "$MR_PORT" "$user" "$pass" test "$@"
}

# ---------------------------------------------------------------- scripted sessions

# A C-client session driven step by step (mr_client script) through a FIFO,
# in the test's directory: st_open NAME starts it on port ST_PORT (default
# MR_PORT) as ST_USER with ST_PASSWORD (default app; output in NAME.out); st_run NAME STEP... runs the steps,
# waits until they are done and leaves their output in $OUT; st_close NAME.
declare -A ST_FD
st_open() {
  local name=$1 fd
  mkfifo "$name.in"
  "$MR_CLIENT" 127.0.0.1 "${ST_PORT:-$MR_PORT}" "${ST_USER:-app}" "${ST_PASSWORD:-$MR_APP_PASSWORD}" test script <"$name.in" >"$name.out" 2>&1 &
  exec {fd}>"$name.in"
  ST_FD[$name]=$fd
  # The client creates NAME.out once it has opened the FIFO: not before.
  wait_until 10 test -e "$name.out" || fail "session $name did not start"
}
st_close() { exec {ST_FD[$1]}>&-; }
st_run() {
  local name=$1 tag="m$RANDOM$RANDOM" before
  shift
  before=$(wc -l <"$name.out")
  printf '%s\n' "$@" "mark $tag" >&"${ST_FD[$name]}"
  wait_until 30 grep -q "^mark $tag\$" "$name.out" || fail "session $name is stuck: $(tail -5 "$name.out")"
  OUT=$(tail -n +$((before + 1)) "$name.out" | sed "/^mark $tag\$/,\$d")
}

# ---------------------------------------------------------------- time, polling

now_ms() { date +%s%3N; }

# wait_until SECONDS COMMAND...: polls every 0.1 s; false on timeout.  The
# command's words are expanded once, by the caller: a condition on a command's
# output ("$(...)") must be a function, evaluated at each poll.
wait_until() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 10; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}

# Backend thread ids whose running statement contains TEXT (direct).
backend_threads_running() {
  dq "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%$1%' AND ID <> CONNECTION_ID()"
}

# For wait_until: a backend thread runs a statement containing TEXT / thread ID is gone.
has_backend_thread() { [ -n "$(backend_threads_running "$1")" ]; }
backend_thread_gone() { [ -z "$(dq "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = $1")" ]; }

# ---------------------------------------------------------------- certificates

# make_ca NAME: a CA (NAME.pem, NAME.key) in the current directory.
# make_cert NAME CA SAN: NAME.pem and NAME.key signed by CA, with
# subjectAltName SAN ("IP:127.0.0.1", "DNS:localhost,IP:::1").
# (tls_make_certs in common.sh makes a whole CA, server and client set.)
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.pem" \
    -days 2 -subj "/CN=$1" >/dev/null 2>&1 || fail "openssl: cannot make CA $1"
  chmod 600 "$1.key"
}
make_cert() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$1" >/dev/null 2>&1 || fail "openssl: cannot make a request for $1"
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 \
    -extfile "$1.ext" >/dev/null 2>&1 || fail "openssl: cannot sign $1"
  chmod 600 "$1.key"
}

# ---------------------------------------------------------------- extra daemons

# start_aux_daemon NAME [write_config key=value...]: a separate myrelayd for
# one test (2 workers, backend = MariaDB unless overridden).  Sets AUX_PORT,
# AUX_PID, AUX_LOG.  It is stopped when the test ends; its log stays in
# $MR_TMP, where run.sh checks it for sanitizer reports.
AUX_PIDS=()
start_aux_daemon() {
  local name=$1
  shift
  AUX_PORT=$(free_port) || fail "no free port"
  AUX_LOG="$MR_TMP/daemon-$name.log"
  write_config "$TT/$name.yaml" port="$AUX_PORT" backend_port="$MR_DB_PORT" workers=2 \
    name="$name" shutdown_grace_s=2 "$@" || fail "write_config failed"
  myrelayd_start "$TT/$name.yaml" "$AUX_LOG" || fail "auxiliary myrelayd '$name' did not start: $(tail -5 "$AUX_LOG" | tr '\n' ' ')"
  AUX_PID=$MYRELAYD_PID
  AUX_PIDS+=("$AUX_PID")
}

# The main daemon (or, in direct mode, MariaDB) is still alive.
target_alive() {
  if [ "$MR_MODE" = proxy ]; then
    pid_alive "$MR_DAEMON_PID"
  else
    mariadb_running "$MR_DB_DIR"
  fi
}

# ---------------------------------------------------------------- runner

_mr_test_cleanup() {
  local pid
  for pid in "${AUX_PIDS[@]}"; do
    myrelayd_stop "$pid" 5
  done
  # Whatever else the test left running in the background.
  pid=$(jobs -p)
  [ -n "$pid" ] && kill $pid 2>/dev/null
  return 0
}

if [ "${1:-}" = --run ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  _file=$2
  _fn=$3
  TT="$MR_TMP/t/$_fn"
  rm -rf "$TT"
  mkdir -p "$TT" || exit 1
  trap _mr_test_cleanup EXIT
  cd "$TT" || exit 1
  # shellcheck disable=SC1090
  . "$MR_IT_DIR/$_file"
  "$_fn"
  exit $?
fi
