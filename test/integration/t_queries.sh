# Queries through the mariadb command line, compared with the same queries
# run directly on MariaDB.

# same_as_direct WHAT [mariadb args...]: output and exit status through the
# port under test equal the direct ones.
same_as_direct() {
  local what=$1 rc1 rc2
  shift
  dcli "$@" >direct.out 2>&1
  rc1=$?
  tcli "$@" >target.out 2>&1
  rc2=$?
  if ! cmp -s direct.out target.out; then
    echo "--- direct"; head -c 1500 direct.out; echo "--- through the port under test"; head -c 1500 target.out
    fail "$what: output differs from the direct one"
  fi
  assert_eq "$rc1" "$rc2" "$what: exit status"
}

test_small_results() {
  same_as_direct "constants" -e "SELECT 1, 'a', NULL, '', 3.14, -7, 18446744073709551615"
  same_as_direct "all types, text protocol" -e "SELECT * FROM types ORDER BY id"
  same_as_direct "vertical output" -E -e "SELECT * FROM types ORDER BY id"
  same_as_direct "empty result" -e "SELECT * FROM big WHERE id < 0"
  same_as_direct "no result (DO)" -e "DO 1"
  same_as_direct "aggregates" -N -B -e "SELECT COUNT(*), SUM(id), MAX(h), MIN(d) FROM big"
  same_as_direct "warnings" --show-warnings -e "SELECT CAST('12abc' AS INT); SHOW WARNINGS"
  same_as_direct "SHOW" -N -B -e "SHOW CREATE TABLE types"
  same_as_direct "an error" -e "SELECT * FROM nosuchtable"
}

test_big_result_200k_rows() {
  local q="SELECT * FROM big ORDER BY id" want got n
  want=$(dcli -N -B -e "$q" | md5sum)
  n=$(tcli -N -B -e "$q" | tee >(md5sum >md5.txt) | wc -l)
  assert_eq "$MR_BIG_ROWS" "$n" "rows through the port under test"
  sleep 0.2
  assert_eq "$want" "$(cat md5.txt)" "checksum of 200k rows (buffered result)"
  got=$(tcli --quick -N -B -e "$q" | md5sum)
  assert_eq "$want" "$got" "checksum of 200k rows (--quick, streamed)"
  # a wide one: about 60 MB of text in one result
  want=$(dcli --quick -N -B -e "SELECT id, REPEAT(h, 9) FROM big ORDER BY id" | md5sum)
  got=$(tcli --quick -N -B -e "SELECT id, REPEAT(h, 9) FROM big ORDER BY id" | md5sum)
  assert_eq "$want" "$got" "checksum of 200k wide rows"
}

test_parallel_big_results() {
  # 6 sessions at once, spread over the workers, each reading the big table.
  local want i pids=()
  want=$(dcli -N -B -e "SELECT * FROM big ORDER BY id" | md5sum | cut -d' ' -f1)
  for i in 1 2 3 4 5 6; do
    (tcli --quick -N -B -e "SELECT * FROM big ORDER BY id" | md5sum | cut -d' ' -f1 >"par$i.md5") &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  for i in 1 2 3 4 5 6; do
    assert_eq "$want" "$(cat par$i.md5)" "session $i of 6"
  done
}

test_multi_statements() {
  local out
  out=$(tq "SELECT 1; SELECT 2" 2>&1)
  assert_eq $'1\n2' "$out" "SELECT 1; SELECT 2"
  same_as_direct "three result sets and an update" -e "SELECT 1 AS x; UPDATE big SET n = n WHERE id = 1; SELECT 2 AS y, 'z'; SELECT COUNT(*) FROM big"
  same_as_direct "an error in the middle" -e "SELECT 1; SELECT * FROM nosuchtable; SELECT 3"
  same_as_direct "an error in the middle, --force" --force -e "SELECT 1; SELECT * FROM nosuchtable; SELECT 3"
  out=$(tq "CREATE TEMPORARY TABLE tm (a INT); INSERT INTO tm VALUES (1),(2); SELECT SUM(a) FROM tm; DROP TEMPORARY TABLE tm; SELECT 'done'" 2>&1)
  assert_eq $'3\ndone' "$out" "statements mixing results and OKs"
}

test_procedure_two_result_sets() {
  same_as_direct "CALL p2()" -e "CALL p2()"
  local out
  out=$(tq "CALL p2(); SELECT 'after'" 2>&1)
  assert_eq $'1\tone\n1\tc4ca4238a0b923820dcc509a6f75849b\n2\tc81e728d9d4c2f636f067f89cc14862c\n3\teccbc87e4b5ce2fe28308fd9f2a7baf3\nafter' "$out" "CALL p2() then a statement in the same session"
  out=$(tq "CALL p_out(20, @y); SELECT @y" 2>&1)
  assert_eq $'20\n40\tsecond\n21' "$out" "CALL with an OUT parameter"
}

test_use_db_carried() {
  local out
  out=$(tq "SELECT DATABASE(); USE test2; SELECT DATABASE(); CREATE TABLE IF NOT EXISTS u (a INT); INSERT INTO u VALUES (1); USE test; SELECT DATABASE(), (SELECT COUNT(*) FROM test2.u) > 0" 2>&1)
  assert_eq $'test\ntest2\ntest\t1' "$out" "USE db within a session"
  same_as_direct "USE of an unknown database" -e "USE nosuchdb; SELECT 1"
  same_as_direct "USE of a database without rights" -e "USE mysql"
  out=$(tq "USE test2; SELECT COUNT(*) > 0 FROM u; USE test; SELECT COUNT(*) FROM big" 2>&1)
  assert_eq $'1\n'"$MR_BIG_ROWS" "$out" "unqualified table names follow USE"
}

test_transactions() {
  local out
  dq "DROP TABLE IF EXISTS test.tx; CREATE TABLE test.tx (a INT PRIMARY KEY) ENGINE=InnoDB"
  out=$(tq "BEGIN; INSERT INTO tx VALUES (1); SELECT COUNT(*) FROM tx; ROLLBACK; SELECT COUNT(*) FROM tx" 2>&1)
  assert_eq $'1\n0' "$out" "BEGIN/INSERT/ROLLBACK"
  out=$(tq "START TRANSACTION; INSERT INTO tx VALUES (2); COMMIT; SELECT COUNT(*) FROM tx" 2>&1)
  assert_eq 1 "$out" "START TRANSACTION/COMMIT"
  out=$(tq "SET autocommit = 0; INSERT INTO tx VALUES (3); ROLLBACK; INSERT INTO tx VALUES (4); COMMIT; SET autocommit = 1; SELECT GROUP_CONCAT(a ORDER BY a) FROM tx" 2>&1)
  assert_eq "2,4" "$out" "autocommit=0"
  # Isolation: an open transaction of one session is not visible to another
  # one until it commits.
  tcli -N -B -e "BEGIN; INSERT INTO tx VALUES (5); SELECT SLEEP(2); COMMIT" >s1.out 2>&1 &
  local pid=$!
  wait_until 5 has_backend_thread 'SELECT SLEEP(2)' || fail "session 1 never reached its SLEEP"
  out=$(tq "SELECT COUNT(*) FROM tx WHERE a = 5" 2>&1)
  assert_eq 0 "$out" "uncommitted row seen by another session"
  wait $pid || fail "session 1 failed: $(cat s1.out)"
  out=$(tq "SELECT COUNT(*) FROM tx WHERE a = 5" 2>&1)
  assert_eq 1 "$out" "committed row"
  # A session that ends inside a transaction: its changes are rolled back.
  out=$(tq "BEGIN; INSERT INTO tx VALUES (6)" 2>&1) || fail "$out"
  sleep 0.5
  out=$(tq "SELECT COUNT(*) FROM tx WHERE a = 6" 2>&1)
  assert_eq 0 "$out" "row of a transaction left open at disconnect"
}

test_session_state() {
  local out
  out=$(tq "SET @v = 42; SET SESSION sql_mode = 'ANSI_QUOTES'; SET NAMES utf8mb4; SELECT @v, @@sql_mode, @@character_set_client, \"h\" FROM big WHERE id = 1" 2>&1)
  assert_eq $'42\tANSI_QUOTES\tutf8mb4\tc4ca4238a0b923820dcc509a6f75849b' "$out" "variables within a session"
  out=$(tq "PREPARE s FROM 'SELECT ? + 1'; SET @a = 41; EXECUTE s USING @a; DEALLOCATE PREPARE s" 2>&1)
  assert_eq 42 "$out" "SQL-level PREPARE/EXECUTE"
  out=$(tq "SELECT @v" 2>&1)
  assert_eq NULL "$out" "a user variable of another session"
}

test_load_data_local_infile() {
  local n=60000 out
  awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++) printf "%d,row %d,%s\n", i, i, (i % 7 ? "x" : "\\N") }' >data.csv
  tq "DROP TABLE IF EXISTS ld; CREATE TABLE ld (id INT PRIMARY KEY, s VARCHAR(50), x CHAR(1))" || fail "create table"
  out=$(tcli --local-infile=1 -N -B -e "LOAD DATA LOCAL INFILE '$TT/data.csv' INTO TABLE ld FIELDS TERMINATED BY ','; SELECT COUNT(*), SUM(id), SUM(x IS NULL) FROM ld" 2>&1)
  assert_eq "$n	$((n * (n + 1) / 2))	$((n / 7))" "$out" "rows loaded"
  # A larger file (about 24 MB) and the session goes on afterwards.
  awk 'BEGIN { for (i = 1; i <= 200000; i++) printf "%d\t%0120d\n", i, i }' >big.tsv
  tq "DROP TABLE IF EXISTS ld2; CREATE TABLE ld2 (id INT PRIMARY KEY, s VARCHAR(200))" || fail "create table ld2"
  out=$(tcli --local-infile=1 -N -B -e "LOAD DATA LOCAL INFILE '$TT/big.tsv' INTO TABLE ld2; SELECT COUNT(*), SUM(LENGTH(s)) FROM ld2; SELECT 'still here'" 2>&1)
  assert_eq $'200000\t24000000\nstill here' "$out" "24 MB file"
  # A file the client cannot open: the client sends an empty packet, the
  # server answers with an error and the session goes on.
  local want
  printf "LOAD DATA LOCAL INFILE '%s' INTO TABLE ld;\nSELECT 'next';\n" "$TT/nosuchfile" >missing.sql
  want=$(dcli --local-infile=1 --force -N -B <missing.sql 2>&1)
  out=$(tcli --local-infile=1 --force -N -B <missing.sql 2>&1)
  assert_eq "$want" "$out" "LOAD DATA LOCAL of a missing file"
  assert_contains "$out" "next" "statement after the failed LOAD DATA"
}

test_packet_over_16mib_both_ways() {
  local size=$((20 * 1024 * 1024)) want got
  head -c $size /dev/urandom >blob.bin
  want=$(md5sum <blob.bin | cut -d' ' -f1)
  tq "DROP TABLE IF EXISTS blobs; CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)" || fail "create table"
  # The INSERT is one statement of about 27 MB (base64): a client packet split
  # in two.
  { printf "INSERT INTO blobs VALUES (1, FROM_BASE64('"; base64 -w0 blob.bin; printf "'));\n"; } >insert.sql
  tcli --max-allowed-packet=256M <insert.sql >ins.out 2>&1 || fail "INSERT of a 20 MiB blob failed: $(head -c 300 ins.out)"
  got=$(dq "SELECT LENGTH(b), MD5(b) FROM test.blobs WHERE id = 1")
  assert_eq "$size	$want" "$got" "blob stored by the backend"
  # 20 MiB back in one row: a server packet split in two.
  got=$(tcli --max-allowed-packet=256M --raw -N -B -e "SELECT b FROM blobs WHERE id = 1" | head -c $size | md5sum | cut -d' ' -f1)
  assert_eq "$want" "$got" "md5 of the blob read back"
  # Statements whose COM_QUERY payload (1 + length of the SQL) is just under,
  # exactly at (then an empty packet must follow) and just over 16 MiB - 1.
  local len k
  for len in 16777213 16777214 16777215; do
    k=$((len - 17)) # SELECT LENGTH('...') is 17 characters plus the filler
    { printf "SELECT LENGTH('"; head -c $k /dev/zero | tr '\0' x; printf "');\n"; } >stmt.sql
    got=$(tcli --max-allowed-packet=256M -N -B <stmt.sql 2>&1)
    assert_eq "$k" "$got" "a statement of $len bytes"
  done
  # Rows of exactly 16 MiB - 1 of payload and neighbours, where the split starts.
  local n
  for n in 16777210 16777211 16777215 16777216; do
    got=$(tcli --max-allowed-packet=256M -N -B -e "SELECT MD5(REPEAT('a', $n)), LENGTH(REPEAT('b', $n)); SELECT MD5(x) FROM (SELECT REPEAT('c', $n) AS x) t; SELECT 'ok'" 2>&1 | tail -1)
    assert_eq ok "$got" "statements around 16 MiB ($n)"
    got=$(tcli --max-allowed-packet=256M --raw -N -B -e "SELECT REPEAT('d', $n)" | head -c $n | md5sum | cut -d' ' -f1)
    want=$(head -c $n /dev/zero | tr '\0' d | md5sum | cut -d' ' -f1)
    assert_eq "$want" "$got" "a row of $n bytes"
  done
}
