#!/bin/bash
# test/fuzz/net/env.sh: the throwaway world the network fuzzer and its
# recorder run in, built from scripts/lib/common.sh.
#
#   env.sh up DIR [MYRELAYD|-] [KEY=VALUE...]
#                              MariaDB (free port, data in DIR/db) with the
#                              fuzz schema (test/integration/schema.sql) and users, and a
#                              myrelayd (default: the sanitizer build,
#                              build-asan/src/myrelayd) in front of it, with
#                              ASAN_OPTIONS/UBSAN_OPTIONS log_path=DIR/sanitizer
#                              (a report lands in DIR/sanitizer.PID).  Writes
#                              DIR/env: KEY=VALUE lines (DB_PORT PORT PID
#                              CONFIG LOG SANITIZER_LOG MYRELAYCTL); KEY=VALUE
#                              go to write_config (scripts/lib/common.sh), e.g.
#                              server_pool_size=8 client_idle_s=3
#                              NF_REPLICA=1: the MariaDB is a GTID primary
#                              with a replica (DIR/replica) and the cluster
#                              has read_write_split and causal_reads on
#   env.sh down DIR            stops them (bounded), keeps DIR
#
# Users (all with mysql_native_password): root/rootpw over TCP (tenant sys, for
# the fuzzer's killer; root over the socket keeps no password), app/secret and app2/secret2 in
# tenant app with databases test and test2 (what the recorded sessions use),
# nf_clean/cleanpw in its own tenant nfclean with database netfuzz_clean only
# (the clean sessions: no fuzzed session can log in as it, see or kill it).
# Everything listens on 127.0.0.1 only.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../scripts/lib/common.sh"

NF_CLEAN_USER=nf_clean
NF_CLEAN_PASSWORD=cleanpw

# setup_backend_sql: users and grants (the tables come from test/integration/schema.sql).
setup_backend_sql() {
  cat <<SQL
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '$MR_APP_PASSWORD';
CREATE USER IF NOT EXISTS 'app2'@'%' IDENTIFIED BY '$MR_APP2_PASSWORD';
CREATE USER IF NOT EXISTS '$NF_CLEAN_USER'@'%' IDENTIFIED BY '$NF_CLEAN_PASSWORD';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MR_ROOT_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
CREATE DATABASE IF NOT EXISTS test2;
CREATE DATABASE IF NOT EXISTS netfuzz_clean;
GRANT ALL PRIVILEGES ON test.* TO 'app'@'%', 'app2'@'%';
GRANT ALL PRIVILEGES ON test2.* TO 'app'@'%', 'app2'@'%';
GRANT PROCESS ON *.* TO 'app'@'%';
GRANT ALL PRIVILEGES ON netfuzz_clean.* TO '$NF_CLEAN_USER'@'%';
SQL
}

cmd_up() {
  local dir=$1 bin=${2:-}
  shift 2
  [ "$bin" = - ] && bin=""
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd)
  if [ -z "$bin" ]; then
    bin=$MR_SRCDIR/build-asan/src/myrelayd
    [ -x "$bin" ] || bin=$MR_SRCDIR/build-asan/tree/src/myrelayd
  fi
  [ -x "$bin" ] || { mr_die "no myrelayd at $bin (build it: bash -c '. scripts/lib/common.sh; build_sanitizers')"; return 1; }
  local ctl
  ctl=$(dirname "$bin")/myrelayctl
  local db_port port
  db_port=$(free_port) || return 1
  port=$(free_port) || return 1
  local split=()
  if [ "${NF_REPLICA:-0}" = 1 ]; then
    # A GTID primary and a replica of it; the cluster splits reads and writes.
    mariadb_start "$dir/db" "$db_port" --log-bin=mysql-bin --server-id=1 --log-slave-updates \
      --gtid-strict-mode=1 >&2 || return 1
    mariadb_replication_accounts "$dir/db" || { mr_die "replication users failed"; return 1; }
  else
    mariadb_start "$dir/db" "$db_port" >&2 || return 1
  fi
  # The harness's tables, with a smaller big.  Recorded sessions only ever
  # write to tables named nf_* (or temporary ones), so a fuzzed statement
  # cannot damage what other tests read.
  { setup_backend_sql; sed 's/@BIG_ROWS@/5000/' "$HERE/../../integration/schema.sql"; } | mariadb_root "$dir/db" ||
    { mr_die "schema failed"; return 1; }
  if [ "${NF_REPLICA:-0}" = 1 ]; then
    local rport
    rport=$(free_port) || return 1
    mariadb_start_replica "$dir/replica" "$rport" "$db_port" repl "$MR_REPL_PASSWORD" >&2 || return 1
    split=(replica="$rport" cluster.read_write_split=on cluster.causal_reads=on
      "cluster.monitor={ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: 300 }")
  fi
  write_config "$dir/myrelay.yaml" port="$port" backend_port="$db_port" workers=2 name=netfuzz \
    shutdown_grace_s=2 max_connections=2000 \
    "tenant=nfclean:$NF_CLEAN_USER:$NF_CLEAN_PASSWORD" "${split[@]}" "$@" || return 1
  sanitizer_env
  export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$dir/sanitizer"
  export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$dir/sanitizer"
  MYRELAYD=$bin
  myrelayd_start "$dir/myrelay.yaml" "$dir/myrelayd.log" >&2 || return 1
  cat >"$dir/env" <<EOF
DB_PORT=$db_port
PORT=$port
PID=$MYRELAYD_PID
CONFIG=$dir/myrelay.yaml
LOG=$dir/myrelayd.log
SANITIZER_LOG=$dir/sanitizer
MYRELAYCTL=$ctl
MYRELAYD=$bin
EOF
  mr_log "netfuzz env: MariaDB 127.0.0.1:$db_port, myrelayd $bin (pid $MYRELAYD_PID) on 127.0.0.1:$port"
}

cmd_down() {
  local dir=$1 pid
  if [ -f "$dir/env" ]; then
    pid=$(sed -n 's/^PID=//p' "$dir/env")
    [ -n "$pid" ] && myrelayd_stop "$pid" 10
  fi
  [ -d "$dir/replica" ] && mariadb_stop "$dir/replica"
  mariadb_stop "$dir/db"
}

case "${1:-}" in
  up)
    [ $# -ge 2 ] || { echo "usage: env.sh up DIR [MYRELAYD|-] [KEY=VALUE...]" >&2; exit 2; }
    dir=$2 bin=${3:--}
    shift $(($# >= 3 ? 3 : 2))
    cmd_up "$dir" "$bin" "$@" ;;
  down) [ $# -eq 2 ] || { echo "usage: env.sh down DIR" >&2; exit 2; }; cmd_down "$2" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
