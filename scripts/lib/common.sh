# Shared shell functions of scripts/quickstart, scripts/test and the
# integration harness (test/integration/run.sh).  Source it from bash:
#
#   . "$(dirname "$0")/lib/common.sh"
#
# Everything here talks to 127.0.0.1 only.  Functions return non-zero on
# failure and print the reason on stderr; they never call exit themselves, so
# a caller's traps still run.

# The checkout this file belongs to.
MR_SRCDIR=${MR_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Passwords of the test and demo users (plain text; myrelay accepts plain text
# or the "*HEX" hash in its config).
MR_ROOT_PASSWORD=${MR_ROOT_PASSWORD:-rootpw}
MR_APP_PASSWORD=${MR_APP_PASSWORD:-secret}
MR_APP2_PASSWORD=${MR_APP2_PASSWORD:-secret2}
# How app2's password is written into generated configs: plain text unless the
# caller sets the "*HEX" form here.
MR_APP2_PASSWORD_CONF=${MR_APP2_PASSWORD_CONF:-$MR_APP2_PASSWORD}
# The replication account of a replica (repl@'%', REPLICATION SLAVE) and the
# account myrelay's replica monitor logs in with (myrelay_monitor@'%', SLAVE
# MONITOR, BINLOG MONITOR, PROCESS); test/integration/run.sh creates both.
MR_REPL_PASSWORD=${MR_REPL_PASSWORD:-replpw}
MR_MONITOR_PASSWORD=${MR_MONITOR_PASSWORD:-monitorpw}

MR_DEB_PACKAGES=(build-essential autoconf automake libtool pkg-config
  libevent-dev libyaml-cpp-dev libcppunit-dev libssl-dev libsodium-dev libboost-dev
  mariadb-server mariadb-client libmariadb-dev sysbench jq bsdutils util-linux passwd python3
  python3-pymysql python3-cryptography php-cli php-mysql libdbd-mariadb-perl ruby-mysql2 default-jdk-headless libmariadb-java libclang-rt-14-dev python3-prometheus-client curl haproxy)

mr_log() { printf '%s\n' "[$(date +%H:%M:%S)] $*" >&2; }
mr_die() { printf '%s\n' "error: $*" >&2; return 1; }

# ---------------------------------------------------------------- packages

# Installs the Debian packages the build and the tests need, and the ones
# given as arguments, but only when one of them is missing (apt-get update
# first, non-interactive).
install_deps() {
  local pkgs=("${MR_DEB_PACKAGES[@]}" "$@") missing=() p st
  for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    mr_log "dependencies: all ${#pkgs[@]} packages present"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    mr_die "missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    return 1
  fi
  mr_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || return 1
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" || return 1
}

# ---------------------------------------------------------------- build

# build [configure args...]: autoreconf -fi && ./configure ARGS && make -j2 in
# the checkout.  When the checkout is already configured with the same
# arguments only make runs (automake's rules re-run autoconf and configure
# themselves when configure.ac or Makefile.am change).  MR_FULL_BUILD=1 forces
# the whole sequence.
build() {
  local args=("$@")
  (
    cd "$MR_SRCDIR" || exit 1
    local want="" have="" a
    for a in "${args[@]}"; do want="$want${want:+ }'$a'"; done
    [ -x config.status ] && have=$(./config.status --config 2>/dev/null || echo "?")
    if [ "${MR_FULL_BUILD:-0}" = 1 ] || [ ! -f Makefile ] || [ "$have" != "$want" ]; then
      mr_log "build: autoreconf -fi && ./configure ${args[*]}"
      autoreconf -fi || exit 1
      ./configure "${args[@]}" || exit 1
    fi
    mr_log "build: make -j2"
    make -j2
  )
}

# build_sanitizers: the same tree built with --enable-sanitizers in
# $MR_SRCDIR/build-asan (ignored by git), without touching the normal build.
# A VPATH build when the checkout itself is not configured; automake refuses a
# VPATH build next to an in-tree one, so then the sources are mirrored into
# build-asan/tree (keeping timestamps, so make rebuilds only what changed).
# Prints nothing on stdout but sets MR_ASAN_BUILDDIR.
# mirror_sources DIR: the checkout's sources (what git tracks or would
# track) copied into DIR for a build of its own, writing only the files whose
# content differs, which get the time of the copy: make then rebuilds exactly
# what changed.  (Keeping the checkout's times instead would let a file
# restored with an old time by git look older than an object compiled from
# its previous content: a stale object.)
mirror_sources() {
  local dst=$1 stage
  stage=$(mktemp -d /tmp/myrelay-sync.XXXXXX) || return 1
  (
    cd "$MR_SRCDIR" || exit 1
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git ls-files -z --cached --others --exclude-standard |
        tar --null -T - -cf - 2>/dev/null | tar -C "$stage" -xf - || exit 1
    else
      # not a git checkout: what .gitignore lists (build products) stays out
      tar --exclude-vcs-ignores --exclude=./build-fuzz --exclude=./build-asan --exclude=./var \
        --exclude=./autom4te.cache --exclude=./build-aux -cf - . | tar -C "$stage" -xf - || exit 1
    fi
    cd "$stage" || exit 1
    find . -type f -print0 | while IFS= read -r -d '' f; do
      if ! cmp -s "$f" "$dst/$f"; then
        mkdir -p "$dst/$(dirname "$f")" && rm -f "$dst/$f" && cp -p "$f" "$dst/$f" && touch "$dst/$f" || exit 1
      fi
    done
  )
  local rc=$?
  rm -rf "$stage"
  return $rc
}

build_sanitizers() {
  local out="$MR_SRCDIR/build-asan"
  mkdir -p "$out" || return 1
  if [ ! -f "$MR_SRCDIR/config.status" ] && [ ! -d "$out/tree" ]; then
    MR_ASAN_BUILDDIR=$out
    (
      cd "$MR_SRCDIR" || exit 1
      if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
        mr_log "build (sanitizers): autoreconf -fi"
        autoreconf -fi || exit 1
      fi
      cd "$out" || exit 1
      if [ ! -f Makefile ] || ! ./config.status --config 2>/dev/null | grep -q enable-sanitizers; then
        mr_log "build (sanitizers): VPATH ../configure --enable-sanitizers in $out"
        ../configure --enable-sanitizers || exit 1
      fi
      mr_log "build (sanitizers): make -j2 in $out"
      make -j2
    )
    return
  fi
  MR_ASAN_BUILDDIR=$out/tree
  (
    cd "$MR_SRCDIR" || exit 1
    mkdir -p "$out/tree" || exit 1
    mr_log "build (sanitizers): the checkout is configured in-tree, so mirroring its sources into $out/tree"
    mirror_sources "$out/tree" || exit 1
    cd "$out/tree" || exit 1
    if [ ! -f Makefile ] || ! ./config.status --config 2>/dev/null | grep -q enable-sanitizers; then
      autoreconf -fi || exit 1
      ./configure --enable-sanitizers || exit 1
    fi
    mr_log "build (sanitizers): make -j2 in $out/tree"
    make -j2
  )
}

# Options that make sanitizer findings fatal (exported by scripts/test
# --sanitizers; harmless for programs built without sanitizers).
sanitizer_env() {
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=66:print_summary=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=67"
  export LSAN_OPTIONS="exitcode=66"
}

# ---------------------------------------------------------------- processes, ports

# True when PID is a running (not zombie) process.
pid_alive() {
  local pid=$1
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# Waits up to SECONDS for PID to end; returns 1 if it is still there.
wait_pid_gone() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  ! pid_alive "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Local TCP ports in use (any state), from /proc, in decimal.
_ports_in_use() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    awk 'NR > 1 { split($2, a, ":"); print a[2] }' "$f"
  done | sort -u | while read -r hex; do printf '%d\n' "0x$hex"; done
}

# free_port: prints an unused TCP port of 127.0.0.1 (20000-59999), never one
# this shell handed out before.
MR_PORTS_GIVEN=" "
free_port() {
  local used port i
  used=" $(_ports_in_use | tr '\n' ' ') "
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    case "$used$MR_PORTS_GIVEN" in *" $port "*) continue ;; esac
    port_open "$port" && continue
    MR_PORTS_GIVEN="$MR_PORTS_GIVEN$port "
    echo "$port"
    return 0
  done
  mr_die "no free TCP port found"
}

# ---------------------------------------------------------------- MariaDB

# mariadb_start DIR PORT [extra mariadbd options...]
# Initializes DIR/data once (root@localhost without password, normal auth),
# then starts mariadbd on 127.0.0.1:PORT with socket, pid file and error log in
# DIR and waits (up to 60 s) until it answers.  MR_DETACH=1 starts it in its own
# session so it outlives the calling script (quickstart).
# Binary logging is off (--skip-log-bin) unless the extra options turn it on:
# they come after --skip-log-bin, and a later --log-bin wins (checked with
# MariaDB 10.11: SELECT @@log_bin is 1), e.g. for a GTID primary
#   mariadb_start DIR PORT --log-bin=mysql-bin --server-id=1 --log-slave-updates --gtid-strict-mode=1
# (a relative --log-bin name puts the binlog into DIR/data).
mariadb_start() {
  local dir=$1 port=$2
  shift 2
  local user_args=() i
  [ "$(id -u)" = 0 ] && user_args=(--user=root)
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd)
  if [ ! -d "$dir/data/mysql" ]; then
    mr_log "mariadb: initializing $dir/data"
    if ! mariadb-install-db --no-defaults --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --datadir="$dir/data" "${user_args[@]}" \
        >"$dir/install.log" 2>&1; then
      tail -20 "$dir/install.log" >&2
      mr_die "mariadb-install-db failed (log: $dir/install.log)"
      return 1
    fi
  fi
  local cmd=(mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock"
    --pid-file="$dir/mysqld.pid" --port="$port" --bind-address=127.0.0.1
    --skip-name-resolve --log-error="$dir/error.log" --max-allowed-packet=64M
    --max-connections=1000 --local-infile=1 --innodb-buffer-pool-size=256M
    --innodb-flush-log-at-trx-commit=2 --skip-log-bin "${user_args[@]}" "$@")
  mr_log "mariadb: starting on 127.0.0.1:$port (dir $dir)"
  if [ "${MR_DETACH:-0}" = 1 ]; then
    setsid nohup "${cmd[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 &
  else
    "${cmd[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 &
  fi
  local pid=$!
  echo "$pid" >"$dir/mariadbd.launch-pid"
  echo "$port" >"$dir/port"
  for ((i = 0; i < 600; i++)); do
    if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1; then
      return 0
    fi
    if ! pid_alive "$pid"; then
      tail -20 "$dir/error.log" >&2
      mr_die "mariadbd exited during start-up (log: $dir/error.log)"
      return 1
    fi
    sleep 0.1
  done
  tail -20 "$dir/error.log" >&2
  mr_die "mariadbd did not answer within 60 s (log: $dir/error.log)"
  return 1
}

# mariadb_root DIR [mariadb args...]: the mariadb client as root over DIR's socket.
mariadb_root() {
  local dir=$1
  shift
  mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot "$@"
}

# mariadb_running DIR: true when the server of DIR answers.
mariadb_running() {
  [ -S "$1/mysqld.sock" ] &&
    mariadb-admin --no-defaults --socket="$1/mysqld.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

# mariadb_stop DIR: clean shutdown (bounded), then SIGKILL if needed.
mariadb_stop() {
  local dir=$1 pid=""
  [ -f "$dir/mysqld.pid" ] && pid=$(cat "$dir/mysqld.pid" 2>/dev/null || true)
  [ -z "$pid" ] && [ -f "$dir/mariadbd.launch-pid" ] && pid=$(cat "$dir/mariadbd.launch-pid")
  [ -n "$pid" ] && pid_alive "$pid" || return 0
  timeout 30 mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot shutdown \
    >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" 30; then
    mr_log "mariadb: $pid did not stop in 30 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 5 || true
  fi
  return 0
}

# _mr_sql_quote STRING: STRING as an SQL string literal ('...', quotes doubled).
_mr_sql_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g")"; }

# _mr_slave_field STATUS FIELD: the value of FIELD in SHOW SLAVE STATUS\G output.
_mr_slave_field() {
  printf '%s\n' "$1" | sed -n "s/^[[:space:]]*$2:[[:space:]]\{0,1\}//p" | head -1
}

# _mr_replica_status DIR: one line describing the replication threads of DIR's
# server (for error messages).
_mr_replica_status() {
  local st
  st=$(mariadb_root "$1" -e 'SHOW SLAVE STATUS\G' 2>&1)
  printf 'Slave_IO_Running=%s Slave_SQL_Running=%s Last_IO_Error=[%s] Last_SQL_Error=[%s] Gtid_Slave_Pos=%s\n' \
    "$(_mr_slave_field "$st" Slave_IO_Running)" "$(_mr_slave_field "$st" Slave_SQL_Running)" \
    "$(_mr_slave_field "$st" Last_IO_Error)" "$(_mr_slave_field "$st" Last_SQL_Error)" \
    "$(_mr_slave_field "$st" Gtid_Slave_Pos)"
}

# _mr_replica_wait_gtid REPLICA_DIR GTID_POS TIMEOUT_S: MASTER_GTID_WAIT on the
# replica; true when it reached GTID_POS within TIMEOUT_S seconds.
_mr_replica_wait_gtid() {
  local dir=$1 pos=$2 secs=$3 r
  [ "$secs" -ge 1 ] 2>/dev/null || secs=1
  r=$(mariadb_root "$dir" -N -B -e "SELECT MASTER_GTID_WAIT($(_mr_sql_quote "$pos"), $secs)" 2>&1)
  if [ "$r" != 0 ]; then
    mr_die "replica $dir did not reach GTID position [$pos] within $secs s (MASTER_GTID_WAIT: $r; $(_mr_replica_status "$dir"))"
    return 1
  fi
}

# mariadb_start_replica DIR PORT PRIMARY_PORT REPL_USER REPL_PASSWORD [extra mariadbd options...]
# Starts a GTID replica of the MariaDB server on 127.0.0.1:PRIMARY_PORT:
# mariadb_start DIR PORT with --server-id=2 --log-bin=mysql-bin
# --log-slave-updates --gtid-strict-mode=1 --read-only=1 --relay-log=relay-bin
# (the extra options come after them, e.g. another --server-id for a second
# replica), then CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos and START
# SLAVE as REPL_USER (needs REPLICATION SLAVE on the primary).  A new DIR
# starts with an empty gtid_slave_pos, so it replays the primary's binlog from
# its first event: the primary must have had binary logging on since it was
# initialized (everything before that, e.g. mariadb-install-db's system tables,
# is the same on both anyway).  Waits (MR_REPLICA_WAIT_S, default 60 s, in
# all) until Slave_IO_Running and Slave_SQL_Running are Yes and the replica
# has applied the primary's @@gtid_binlog_pos (read over TCP as REPL_USER).
# Root on the replica can still write (READ_ONLY ADMIN); don't, or GTID strict
# mode stops replication.  Stop it with mariadb_stop DIR, before the primary.
mariadb_start_replica() {
  if [ $# -lt 5 ]; then
    mr_die "mariadb_start_replica: DIR PORT PRIMARY_PORT REPL_USER REPL_PASSWORD required"
    return 1
  fi
  local dir=$1 port=$2 primary_port=$3 ruser=$4 rpass=$5
  shift 5
  local wait_s=${MR_REPLICA_WAIT_S:-60} deadline st io sql pos i
  deadline=$((SECONDS + wait_s))
  mariadb_start "$dir" "$port" --server-id=2 --log-bin=mysql-bin --log-slave-updates \
    --gtid-strict-mode=1 --read-only=1 --relay-log=relay-bin "$@" || return 1
  dir=$(cd "$dir" && pwd)
  mr_log "mariadb: replica in $dir follows 127.0.0.1:$primary_port (GTID, slave_pos)"
  if ! mariadb_root "$dir" <<SQL
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$primary_port,
  MASTER_USER=$(_mr_sql_quote "$ruser"), MASTER_PASSWORD=$(_mr_sql_quote "$rpass"),
  MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;
START SLAVE;
SQL
  then
    mr_die "mariadb_start_replica: CHANGE MASTER TO / START SLAVE failed in $dir"
    return 1
  fi
  # Both threads running (bounded by the deadline; an SQL error stops early).
  for ((i = 0; ; i++)); do
    st=$(mariadb_root "$dir" -e 'SHOW SLAVE STATUS\G' 2>/dev/null)
    io=$(_mr_slave_field "$st" Slave_IO_Running)
    sql=$(_mr_slave_field "$st" Slave_SQL_Running)
    [ "$io" = Yes ] && [ "$sql" = Yes ] && break
    if [ "$sql" = No ] && [ -n "$(_mr_slave_field "$st" Last_SQL_Error)" ]; then
      mr_die "replica $dir: SQL thread stopped ($(_mr_replica_status "$dir"))"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      mr_die "replica $dir: replication not running after $wait_s s ($(_mr_replica_status "$dir"))"
      return 1
    fi
    sleep 0.2
  done
  # Caught up with the primary.
  if ! pos=$(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$primary_port" -u"$ruser" -p"$rpass" \
      --connect-timeout=10 -N -B -e 'SELECT @@global.gtid_binlog_pos' 2>"$dir/replica-setup.err"); then
    mr_die "mariadb_start_replica: cannot read the primary's @@gtid_binlog_pos as $ruser: $(cat "$dir/replica-setup.err")"
    return 1
  fi
  _mr_replica_wait_gtid "$dir" "$pos" $((deadline - SECONDS)) || return 1
  mr_log "mariadb: replica on 127.0.0.1:$port caught up with the primary at [$pos]"
}

# mariadb_wait_replica_caught_up PRIMARY_DIR REPLICA_DIR [TIMEOUT_S]: waits (default
# 60 s) until the replica of REPLICA_DIR has applied everything the primary of
# PRIMARY_DIR had binlogged when called (its @@gtid_binlog_pos; MASTER_GTID_WAIT).
mariadb_wait_replica_caught_up() {
  local pdir=${1-} rdir=${2-} secs=${3:-60} pos
  if ! pos=$(mariadb_root "$pdir" -N -B -e 'SELECT @@global.gtid_binlog_pos'); then
    mr_die "cannot read @@gtid_binlog_pos of the primary in $pdir"
    return 1
  fi
  _mr_replica_wait_gtid "$rdir" "$pos" "$secs"
}

# ---------------------------------------------------------------- myrelayd

# The daemon binary; scripts/test points it into the sanitizer build.
MYRELAYD=${MYRELAYD:-$MR_SRCDIR/src/myrelayd}
MR_DAEMON_PIDS=()

# Port from the "listen: host:port" line of a config written by write_config.
config_listen_port() {
  sed -n 's/^[[:space:]]*listen:[[:space:]]*"\{0,1\}[^:]*:\([0-9]\{1,5\}\).*/\1/p' "$1" | head -1
}

# myrelayd_start CONFIG LOG: starts "$MYRELAYD -c CONFIG" in the background,
# stdout and stderr appended to LOG, and waits (up to 30 s) until it accepts
# connections on its listen port.  Sets MYRELAYD_PID and records the pid for
# myrelayd_stop_all.  MR_DETACH=1 starts it in its own session (quickstart).
myrelayd_start() {
  local config=$1 log=$2 port i
  port=$(config_listen_port "$config")
  [ -n "$port" ] || { mr_die "no listen port in $config"; return 1; }
  [ -x "$MYRELAYD" ] || { mr_die "$MYRELAYD not built"; return 1; }
  if [ "${MR_DETACH:-0}" = 1 ]; then
    setsid nohup "$MYRELAYD" -c "$config" </dev/null >>"$log" 2>&1 &
  else
    "$MYRELAYD" -c "$config" </dev/null >>"$log" 2>&1 &
  fi
  MYRELAYD_PID=$!
  MR_DAEMON_PIDS+=("$MYRELAYD_PID")
  for ((i = 0; i < 300; i++)); do
    if ! pid_alive "$MYRELAYD_PID"; then
      tail -20 "$log" >&2
      mr_die "myrelayd exited during start-up (config $config, log $log)"
      return 1
    fi
    port_open "$port" && return 0
    sleep 0.1
  done
  tail -20 "$log" >&2
  mr_die "myrelayd did not listen on 127.0.0.1:$port within 30 s (log $log)"
  return 1
}

# myrelayd_stop [PID] [GRACE_SECONDS]: SIGTERM, wait (default 15 s), then
# SIGKILL.  Sets MYRELAYD_EXIT to the exit status when PID is a child of this
# shell ("killed" when SIGKILL was needed, "" when unknown).  Default PID: the
# last one started.
myrelayd_stop() {
  local pid=${1:-${MYRELAYD_PID:-}} grace=${2:-15}
  MYRELAYD_EXIT=""
  [ -n "$pid" ] || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" "$grace"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 5 || true
      MYRELAYD_EXIT=killed
    fi
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  # 127: not a child of this shell, status unknown.
  if [ -z "$MYRELAYD_EXIT" ] && [ "$rc" != 127 ]; then
    MYRELAYD_EXIT=$rc
  fi
  return 0
}

# Stops every daemon myrelayd_start started in this shell.
myrelayd_stop_all() {
  local pid
  for pid in "${MR_DAEMON_PIDS[@]}"; do
    myrelayd_stop "$pid" 10
  done
  MR_DAEMON_PIDS=()
}

# write_config FILE key=value...
# Generates a myrelay YAML config.  Keys (defaults in brackets):
#   port (required)          listen port on 127.0.0.1
#   backend_port (required)  port of the MariaDB server of cluster "main"
#   workers [2]  max_connections [1000]  proxy_id [0]
#   handshake_ms [10000]  backend_connect_ms [3000]  client_idle_s [28800]
#   shutdown_grace_s [5]  log_file [-]  log_level [info]
#   server_pool_size [0]  server_pool_idle_s [60]
#   dir [directory of FILE]: run_dir is DIR/run-NAME, pid_file inside it
#   name [FILE's base name]: makes run_dir and shm_name unique
#   cluster=NAME:[HOST:]PORT an extra cluster on HOST (127.0.0.1):PORT (repeatable)
#   tenant=NAME:USER:PASSWORD  an extra tenant with one user (repeatable)
#   proxy.KEY=VALUE, timeouts.KEY=VALUE  any other key of those sections
#   replica=PORT[:WEIGHT]    a server "- { address: 127.0.0.1:PORT, role:
#                            replica[, weight: WEIGHT] }" in cluster main
#                            (repeatable, in the order given)
#   primary_weight=W         "weight: W" on main's primary entry [none]
#   cluster.KEY=VALUE        the line "KEY: VALUE" in cluster main after its
#                            servers (repeatable; VALUE verbatim YAML), e.g.
#                            cluster.read_write_split=on, cluster.max_replica_lag_s=5,
#                            cluster.causal_reads=on, cluster.causal_reads_timeout_ms=500,
#                            cluster.monitor="{ user: myrelay_monitor, password: \"$MR_MONITOR_PASSWORD\", interval_ms: 200 }"
#   app.KEY=VALUE            the line "KEY: VALUE" in tenant app after its
#                            name (repeatable; VALUE verbatim), e.g. app.read_write_split=on
#   app_user=YAML, app2_user=YAML  the users app and app2 of tenant app as
#                            these flow mappings (verbatim), e.g.
#                            app_user='{ name: app, password: "sha2:...", auth_plugin: caching_sha2_password }'
# Tenants: sys (privileged; root / $MR_ROOT_PASSWORD) and app (app /
# $MR_APP_PASSWORD, app2 / $MR_APP2_PASSWORD_CONF); defaults app and main.
write_config() {
  local file=$1
  shift
  local port="" backend_port="" workers=2 max_connections=1000 proxy_id=0
  local handshake_ms=10000 backend_connect_ms=3000 client_idle_s=28800
  local shutdown_grace_s=5 log_file=- log_level=info dir="" name=""
  local server_pool_size=0 server_pool_idle_s=60
  local clusters=() tenants=() proxy_extra=() timeouts_extra=() kv k v
  local replicas=() primary_weight="" cluster_extra=() app_extra=() fleet=""
  local app_user="{ name: app, password: \"$MR_APP_PASSWORD\" }"
  local app2_user="{ name: app2, password: \"$MR_APP2_PASSWORD_CONF\" }"
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    case "$k" in
      port) port=$v ;;
      backend_port) backend_port=$v ;;
      workers) workers=$v ;;
      max_connections) max_connections=$v ;;
      proxy_id) proxy_id=$v ;;
      handshake_ms) handshake_ms=$v ;;
      backend_connect_ms) backend_connect_ms=$v ;;
      client_idle_s) client_idle_s=$v ;;
      shutdown_grace_s) shutdown_grace_s=$v ;;
      server_pool_size) server_pool_size=$v ;;
      server_pool_idle_s) server_pool_idle_s=$v ;;
      log_file) log_file=$v ;;
      log_level) log_level=$v ;;
      dir) dir=$v ;;
      name) name=$v ;;
      cluster) clusters+=("$v") ;;
      tenant) tenants+=("$v") ;;
      proxy.*) proxy_extra+=("${k#proxy.}: $v") ;;
      timeouts.*) timeouts_extra+=("${k#timeouts.}: $v") ;;
      replica)
        [[ "$v" =~ ^[0-9]+(:[0-9]+)?$ ]] || { mr_die "write_config: replica=PORT[:WEIGHT], not $v"; return 1; }
        replicas+=("$v") ;;
      primary_weight) primary_weight=$v ;;
      cluster.*) cluster_extra+=("${k#cluster.}: $v") ;;
      app.*) app_extra+=("${k#app.}: $v") ;;
      app_user) app_user=$v ;;
      app2_user) app2_user=$v ;;
      fleet) fleet=$v ;;  # the fleet: section, as a YAML flow mapping
      *) mr_die "write_config: unknown key $k"; return 1 ;;
    esac
  done
  [ -n "$port" ] && [ -n "$backend_port" ] || { mr_die "write_config: port and backend_port are required"; return 1; }
  [ -n "$dir" ] || dir=$(cd "$(dirname "$file")" && pwd)
  [ -n "$name" ] || name=$(basename "$file" .yaml)
  local run_dir="$dir/run-$name"
  mkdir -p "$run_dir" || return 1
  # Unique per run: two test runs on one machine must not share a segment.
  local shm="myrelay-test-$name-$$-$RANDOM"
  {
    echo "# generated by scripts/lib/common.sh write_config"
    echo "proxy:"
    echo "  listen: 127.0.0.1:$port"
    echo "  proxy_id: $proxy_id"
    echo "  workers: $workers"
    echo "  max_connections: $max_connections"
    echo "  run_dir: \"$run_dir\""
    echo "  shm_name: \"$shm\""
    echo "  admin_group: \"\""
    echo "  pid_file: \"$run_dir/myrelayd.pid\""
    echo "  log_file: \"$log_file\""
    echo "  log_level: $log_level"
    echo "  server_pool_size: $server_pool_size"
    local x
    for x in "${proxy_extra[@]}"; do echo "  $x"; done
    echo "timeouts:"
    echo "  handshake_ms: $handshake_ms"
    echo "  backend_connect_ms: $backend_connect_ms"
    echo "  client_idle_s: $client_idle_s"
    echo "  shutdown_grace_s: $shutdown_grace_s"
    echo "  server_pool_idle_s: $server_pool_idle_s"
    for x in "${timeouts_extra[@]}"; do echo "  $x"; done
    echo "defaults:"
    echo "  tenant: app"
    echo "  cluster: main"
    echo "clusters:"
    echo "  - name: main"
    echo "    servers:"
    echo "      - { address: 127.0.0.1:$backend_port, role: primary${primary_weight:+, weight: $primary_weight} }"
    local r
    for r in "${replicas[@]}"; do
      if [ "${r#*:}" != "$r" ]; then
        echo "      - { address: 127.0.0.1:${r%%:*}, role: replica, weight: ${r#*:} }"
      else
        echo "      - { address: 127.0.0.1:$r, role: replica }"
      fi
    done
    for x in "${cluster_extra[@]}"; do echo "    $x"; done
    local c
    for c in "${clusters[@]}"; do
      # NAME:PORT (on 127.0.0.1) or NAME:HOST:PORT
      local addr=${c#*:}
      [ "${addr#*:}" = "$addr" ] && addr="127.0.0.1:$addr"
      echo "  - name: ${c%%:*}"
      echo "    servers:"
      echo "      - { address: $addr, role: primary }"
    done
    echo "tenants:"
    echo "  - name: sys"
    echo "    privileged: true"
    echo "    users:"
    echo "      - { name: root, password: \"$MR_ROOT_PASSWORD\" }"
    echo "  - name: app"
    for x in "${app_extra[@]}"; do echo "    $x"; done
    echo "    users:"
    echo "      - $app_user"
    echo "      - $app2_user"
    local t f1 f2 f3
    for t in "${tenants[@]}"; do
      IFS=: read -r f1 f2 f3 <<<"$t"
      echo "  - name: $f1"
      echo "    users:"
      echo "      - { name: $f2, password: \"$f3\" }"
    done
    [ -z "$fleet" ] || echo "fleet: $fleet"
  } >"$file"
  # It holds passwords: not for every local user (the daemon warns otherwise).
  chmod 600 "$file"
}

# mariadb_replication_accounts DIR: on the server in DIR, repl (a replica's
# IO thread) and myrelay_monitor (what myrelayd's health checker logs in as),
# with the passwords MR_REPL_PASSWORD and MR_MONITOR_PASSWORD.
mariadb_replication_accounts() {
  mariadb_root "$1" <<SQL
CREATE USER 'repl'@'%' IDENTIFIED BY '$MR_REPL_PASSWORD';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE USER 'myrelay_monitor'@'%' IDENTIFIED BY '$MR_MONITOR_PASSWORD';
GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* TO 'myrelay_monitor'@'%';
SQL
}

# ---------------------------------------------------------------- TLS

# tls_make_certs DIR: with the openssl command line, a self-signed CA
# (ca.pem, ca.key) and, signed by it, a server pair for 127.0.0.1 and
# localhost (server.pem, server.key) and a client pair (client.pem,
# client.key).  Keys are 0600, certificates 0644.  Existing files are kept.
tls_make_certs() {
  local dir=$1
  mkdir -p "$dir" || return 1
  (
    cd "$dir" || exit 1
    umask 077
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
      openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=myrelay CA $(hostname -s 2>/dev/null)" \
        -keyout ca.key -out ca.pem 2>/dev/null || { mr_die "openssl: cannot make the CA in $dir"; exit 1; }
    fi
    local who usage
    for who in server client; do
      [ -f "$who.pem" ] && [ -f "$who.key" ] && continue
      if [ "$who" = server ]; then
        usage="subjectAltName=IP:127.0.0.1,DNS:localhost"$'\n'"extendedKeyUsage=serverAuth"
      else
        usage="extendedKeyUsage=clientAuth"
      fi
      printf 'basicConstraints=CA:FALSE\n%s\n' "$usage" >"$who.ext"
      openssl req "${ec[@]}" -subj "/CN=myrelay $who" -keyout "$who.key" -out "$who.csr" 2>/dev/null &&
        openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
          -extfile "$who.ext" -out "$who.pem" 2>/dev/null || { mr_die "openssl: cannot make the $who pair in $dir"; exit 1; }
      rm -f "$who.csr" "$who.ext"
    done
    rm -f ca.srl
    chmod 600 ./*.key && chmod 644 ./*.pem
  )
}
