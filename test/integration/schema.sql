-- The tables every test reads (loaded by test/integration/run.sh, the fuzz
-- corpora's recorder test/fuzz/record_corpus.sh and the network fuzzer's
-- test/fuzz/net/env.sh): `big` (@BIG_ROWS@ rows, replaced by the loader),
-- `types` (one of each column type, and NULLs), and two procedures that
-- return several result sets.  Idempotent: loading it again changes nothing.
USE test;
CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, h CHAR(32) NOT NULL, pad VARCHAR(100) NOT NULL, n DOUBLE, d DATETIME);
INSERT IGNORE INTO big SELECT seq, MD5(seq), REPEAT(CHAR(97 + seq % 26), seq % 100), seq / 7,
  '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_@BIG_ROWS@;
CREATE TABLE IF NOT EXISTS types (id INT PRIMARY KEY, i INT, bi BIGINT, f FLOAT, dbl DOUBLE, dec1 DECIMAL(20,6),
  s VARCHAR(64), t TEXT, b BLOB, dt DATETIME(6), d DATE, tm TIME, y YEAR, e ENUM('a','b'), j JSON, n INT NULL);
INSERT IGNORE INTO types VALUES
  (1, -5, 9007199254740993, 1.5, 2.25, 12345.678901, 'héllo €', REPEAT('t', 1000), x'00FF10', '2024-02-29 12:34:56.789012', '2024-02-29', '-838:59:59', 2024, 'b', '{"k": [1, 2]}', NULL),
  (2, NULL, NULL, NULL, NULL, NULL, '', '', '', NULL, NULL, NULL, NULL, NULL, NULL, 7);
DROP PROCEDURE IF EXISTS p2;
DROP PROCEDURE IF EXISTS p_out;
DELIMITER //
CREATE PROCEDURE p2()
BEGIN
  SELECT 1 AS a, 'one' AS b;
  SELECT id, h FROM big WHERE id <= 3 ORDER BY id;
END//
CREATE PROCEDURE p_out(IN x INT, OUT y INT)
BEGIN
  SELECT x AS input;
  SELECT x * 2 AS doubled, 'second' AS which;
  SET y = x + 1;
END//
DELIMITER ;
