/*
 * mr_client: a small C client linked with libmariadb (MariaDB Connector/C),
 * used by the integration tests to exercise what the mariadb command line
 * cannot: the binary protocol (prepared statements, long data, cursors,
 * prepared CALL), COM_CHANGE_USER, COM_RESET_CONNECTION, COM_PING,
 * COM_STATISTICS, COM_FIELD_LIST, COM_INIT_DB, COM_SET_OPTION and many
 * concurrent sessions.
 *
 *   mr_client HOST PORT USER PASSWORD DB COMMAND [ARGS...]
 *
 * Each command exits 0 on success; on failure it prints one line
 * "FAIL: <what went wrong>" and exits 1.  Commands whose output the tests
 * compare between MariaDB and the proxy print it on standard output.
 * Run without arguments for the list of commands.
 *
 * It expects the tables and procedures the harness creates in database
 * "test" (run.sh): types, p2(), p_out(IN, OUT).
 */
#include <mysql.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_host, *g_user, *g_pass, *g_db;
static unsigned int g_port;

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  fflush(stdout);
  exit(1);
}

#define CHECK(cond, ...)     \
  do {                       \
    if (!(cond)) die(__VA_ARGS__); \
  } while (0)

static void db_die(MYSQL *m, const char *what) __attribute__((noreturn));
static void db_die(MYSQL *m, const char *what) {
  die("%s: error %u (%s): %s", what, mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
}

static void stmt_die(MYSQL_STMT *s, const char *what) __attribute__((noreturn));
static void stmt_die(MYSQL_STMT *s, const char *what) {
  die("%s: error %u (%s): %s", what, mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A growing string. */
struct sbuf {
  char *p;
  size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = realloc(b->p, cap);
    CHECK(b->p != NULL, "out of memory");
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  CHECK(n >= 0 && (size_t)n < sizeof tmp, "sb_printf: line too long");
  sb_add(b, tmp, (size_t)n);
}

static const char *sb_str(struct sbuf *b) { return b->p ? b->p : ""; }
static void sb_free(struct sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void set_common_options(MYSQL *m) {
  unsigned int connect_timeout = 10, rw_timeout = 120;
  unsigned long max_packet = 512UL * 1024 * 1024;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
  mysql_options(m, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
  /* MR_SSL_CA=FILE: TLS, the server's certificate checked against FILE;
     MR_SSL_CERT and MR_SSL_KEY: a client certificate. */
  const char *ca = getenv("MR_SSL_CA");
  if (ca && *ca) {
    my_bool verify = 1;
    const char *cert = getenv("MR_SSL_CERT"), *key = getenv("MR_SSL_KEY");
    mysql_ssl_set(m, key && *key ? key : NULL, cert && *cert ? cert : NULL, ca, NULL, NULL);
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  }
}

/* Connects or returns NULL with the reason in err. */
static MYSQL *try_connect(const char *user, const char *pass, const char *db, char *err, size_t errlen) {
  MYSQL *m = mysql_init(NULL);
  if (!m) {
    snprintf(err, errlen, "mysql_init failed");
    return NULL;
  }
  set_common_options(m);
  if (!mysql_real_connect(m, g_host, user, pass, db, g_port, NULL,
                          CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS)) {
    snprintf(err, errlen, "connect as %s to %s:%u: error %u (%s): %s", user, g_host, g_port,
             mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
    mysql_close(m);
    return NULL;
  }
  return m;
}

static MYSQL *connect_or_die(void) {
  char err[512];
  MYSQL *m = try_connect(g_user, g_pass, g_db, err, sizeof err);
  CHECK(m != NULL, "%s", err);
  return m;
}

/* Runs SQL (possibly several statements) and discards every result. */
static void q(MYSQL *m, const char *sql) {
  if (mysql_query(m, sql)) db_die(m, sql);
  int st;
  do {
    MYSQL_RES *r = mysql_store_result(m);
    if (r) mysql_free_result(r);
    else if (mysql_field_count(m) != 0) db_die(m, sql);
    st = mysql_next_result(m);
    if (st > 0) db_die(m, sql);
  } while (st == 0);
}

/* First column of the first row of the (single) result of SQL, as a new
 * string ("NULL" for NULL). */
static char *q1(MYSQL *m, const char *sql) {
  if (mysql_query(m, sql)) db_die(m, sql);
  MYSQL_RES *r = mysql_store_result(m);
  if (!r) db_die(m, sql);
  MYSQL_ROW row = mysql_fetch_row(r);
  CHECK(row != NULL, "%s: no row", sql);
  char *v = strdup(row[0] ? row[0] : "NULL");
  mysql_free_result(r);
  while (mysql_next_result(m) == 0) {
    MYSQL_RES *x = mysql_store_result(m);
    if (x) mysql_free_result(x);
  }
  return v;
}

static void expect_q1(MYSQL *m, const char *sql, const char *want) {
  char *v = q1(m, sql);
  CHECK(strcmp(v, want) == 0, "%s: expected [%s] got [%s]", sql, want, v);
  free(v);
}

static MYSQL_STMT *prepare(MYSQL *m, const char *sql) {
  MYSQL_STMT *s = mysql_stmt_init(m);
  CHECK(s != NULL, "mysql_stmt_init failed");
  if (mysql_stmt_prepare(s, sql, (unsigned long)strlen(sql))) stmt_die(s, sql);
  return s;
}

/* Fetches every row of the statement's current result set, all columns bound
 * as strings, into out ("a\tb\n" per row).  Returns the number of rows. */
static long fetch_strings(MYSQL_STMT *s, struct sbuf *out, const char *what) {
  unsigned int n = mysql_stmt_field_count(s);
  CHECK(n > 0 && n <= 64, "%s: %u columns", what, n);
  MYSQL_BIND bind[64];
  static char bufs[64][4096];
  unsigned long lens[64];
  my_bool nulls[64], errs[64];
  memset(bind, 0, sizeof bind);
  for (unsigned int i = 0; i < n; i++) {
    bind[i].buffer_type = MYSQL_TYPE_STRING;
    bind[i].buffer = bufs[i];
    bind[i].buffer_length = sizeof bufs[i];
    bind[i].length = &lens[i];
    bind[i].is_null = &nulls[i];
    bind[i].error = &errs[i];
  }
  if (mysql_stmt_bind_result(s, bind)) stmt_die(s, what);
  long rows = 0;
  for (;;) {
    int rc = mysql_stmt_fetch(s);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == MYSQL_DATA_TRUNCATED) die("%s: value longer than 4095 bytes", what);
    if (rc) stmt_die(s, what);
    for (unsigned int i = 0; i < n; i++) {
      if (i) sb_add(out, "\t", 1);
      if (nulls[i]) sb_add(out, "NULL", 4);
      else sb_add(out, bufs[i], lens[i]);
    }
    sb_add(out, "\n", 1);
    rows++;
  }
  return rows;
}

/* ------------------------------------------------------------------ prepared */

struct ps_row {
  int id;
  int i;
  long long bi;
  double dbl;
  char s[101];
  unsigned char b[64];
  unsigned long b_len;
  MYSQL_TIME dt;
  float f;
  signed char ti;
  short si;
};

static void check_ps_rows(MYSQL *m, int from, int expect_rows, int buffered) {
  MYSQL_STMT *s = prepare(m, "SELECT id, i, bi, dbl, s, b, dt, n, f, ti, si FROM ps_t WHERE id >= ? ORDER BY id");
  CHECK(mysql_stmt_param_count(s) == 1, "param count");
  MYSQL_BIND p;
  memset(&p, 0, sizeof p);
  p.buffer_type = MYSQL_TYPE_LONG;
  p.buffer = &from;
  if (mysql_stmt_bind_param(s, &p)) stmt_die(s, "bind param");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute select");
  MYSQL_RES *meta = mysql_stmt_result_metadata(s);
  CHECK(meta && mysql_num_fields(meta) == 11, "result metadata: expected 11 columns");
  CHECK(strcmp(mysql_fetch_field_direct(meta, 5)->name, "b") == 0, "column 5 name");
  mysql_free_result(meta);
  if (buffered && mysql_stmt_store_result(s)) stmt_die(s, "store_result");

  struct ps_row r;
  my_bool nulls[11];
  unsigned long lens[11];
  MYSQL_BIND b[11];
  memset(b, 0, sizeof b);
  memset(&r, 0, sizeof r);
  b[0].buffer_type = MYSQL_TYPE_LONG;     b[0].buffer = &r.id;
  b[1].buffer_type = MYSQL_TYPE_LONG;     b[1].buffer = &r.i;
  b[2].buffer_type = MYSQL_TYPE_LONGLONG; b[2].buffer = &r.bi;
  b[3].buffer_type = MYSQL_TYPE_DOUBLE;   b[3].buffer = &r.dbl;
  b[4].buffer_type = MYSQL_TYPE_STRING;   b[4].buffer = r.s; b[4].buffer_length = sizeof r.s - 1;
  b[5].buffer_type = MYSQL_TYPE_BLOB;     b[5].buffer = r.b; b[5].buffer_length = sizeof r.b;
  b[6].buffer_type = MYSQL_TYPE_DATETIME; b[6].buffer = &r.dt;
  int n_dummy = 0;
  b[7].buffer_type = MYSQL_TYPE_LONG;     b[7].buffer = &n_dummy;
  b[8].buffer_type = MYSQL_TYPE_FLOAT;    b[8].buffer = &r.f;
  b[9].buffer_type = MYSQL_TYPE_TINY;     b[9].buffer = &r.ti;
  b[10].buffer_type = MYSQL_TYPE_SHORT;   b[10].buffer = &r.si;
  for (int k = 0; k < 11; k++) {
    b[k].is_null = &nulls[k];
    b[k].length = &lens[k];
  }
  if (mysql_stmt_bind_result(s, b)) stmt_die(s, "bind result");
  int rows = 0;
  for (;;) {
    memset(r.s, 0, sizeof r.s);
    int rc = mysql_stmt_fetch(s);
    if (rc == MYSQL_NO_DATA) break;
    if (rc) stmt_die(s, "fetch");
    rows++;
    if (r.id == 1) {
      CHECK(!nulls[1] && r.i == -123456, "row 1: i = %d", r.i);
      CHECK(r.bi == 9007199254740993LL, "row 1: bi = %lld", r.bi);
      CHECK(r.dbl == 3.25, "row 1: dbl = %g", r.dbl);
      CHECK(lens[4] == 7 && memcmp(r.s, "h\xc3\xa9llo \x01", 7) == 0, "row 1: s = [%s] (%lu bytes)", r.s, lens[4]);
      CHECK(lens[5] == 22 && memcmp(r.b, "abc\0def\0ghi\xff\xfe\0" "01234567", 22) == 0,
            "row 1: blob from send_long_data: %lu bytes", lens[5]);
      CHECK(r.dt.year == 2024 && r.dt.month == 2 && r.dt.day == 29 && r.dt.hour == 23 &&
                r.dt.minute == 59 && r.dt.second == 58 && r.dt.second_part == 123456,
            "row 1: datetime %04u-%02u-%02u %02u:%02u:%02u.%06lu", r.dt.year, r.dt.month, r.dt.day,
            r.dt.hour, r.dt.minute, r.dt.second, r.dt.second_part);
      CHECK(nulls[7], "row 1: n is not NULL");
      CHECK(r.f == 0.5f && r.ti == -7 && r.si == 31000, "row 1: f/ti/si = %g/%d/%d", r.f, r.ti, r.si);
    } else if (r.id == 2) {
      for (int k = 1; k < 11; k++) CHECK(nulls[k], "row 2: column %d is not NULL", k);
    } else if (r.id == 3) {
      CHECK(lens[5] == 5 && memcmp(r.b, "after", 5) == 0,
            "row 3: blob should be the bound buffer after mysql_stmt_reset dropped the long data, got %lu bytes",
            lens[5]);
      CHECK(r.i == 3 && !nulls[7] && n_dummy == 33, "row 3: i/n = %d/%d", r.i, n_dummy);
    } else {
      die("unexpected row id %d", r.id);
    }
  }
  CHECK(rows == expect_rows, "SELECT id >= %d: %d rows, expected %d", from, rows, expect_rows);
  if (mysql_stmt_close(s)) die("stmt_close failed");
}

static int cmd_prepared(MYSQL *m) {
  q(m, "DROP TABLE IF EXISTS ps_t");
  q(m, "CREATE TABLE ps_t (id INT PRIMARY KEY, i INT, bi BIGINT, dbl DOUBLE, s VARCHAR(100), b BLOB, "
       "dt DATETIME(6), n INT NULL, f FLOAT, ti TINYINT, si SMALLINT)");
  MYSQL_STMT *s = prepare(m, "INSERT INTO ps_t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  CHECK(mysql_stmt_param_count(s) == 11, "param count %lu", mysql_stmt_param_count(s));
  CHECK(mysql_stmt_field_count(s) == 0, "INSERT has result columns");

  struct ps_row r;
  memset(&r, 0, sizeof r);
  int n_val = 33;
  my_bool nulls[11];
  unsigned long s_len = 0, b_len = 0;
  MYSQL_BIND b[11];
  memset(b, 0, sizeof b);
  memset(nulls, 0, sizeof nulls);
  b[0].buffer_type = MYSQL_TYPE_LONG;     b[0].buffer = &r.id;
  b[1].buffer_type = MYSQL_TYPE_LONG;     b[1].buffer = &r.i;
  b[2].buffer_type = MYSQL_TYPE_LONGLONG; b[2].buffer = &r.bi;
  b[3].buffer_type = MYSQL_TYPE_DOUBLE;   b[3].buffer = &r.dbl;
  b[4].buffer_type = MYSQL_TYPE_STRING;   b[4].buffer = r.s; b[4].length = &s_len;
  b[5].buffer_type = MYSQL_TYPE_BLOB;     b[5].buffer = r.b; b[5].length = &b_len;
  b[6].buffer_type = MYSQL_TYPE_DATETIME; b[6].buffer = &r.dt;
  b[7].buffer_type = MYSQL_TYPE_LONG;     b[7].buffer = &n_val;
  b[8].buffer_type = MYSQL_TYPE_FLOAT;    b[8].buffer = &r.f;
  b[9].buffer_type = MYSQL_TYPE_TINY;     b[9].buffer = &r.ti;
  b[10].buffer_type = MYSQL_TYPE_SHORT;   b[10].buffer = &r.si;
  for (int k = 0; k < 11; k++) b[k].is_null = &nulls[k];

  /* Row 1: every type, the blob through mysql_stmt_send_long_data in 3 parts. */
  r.id = 1; r.i = -123456; r.bi = 9007199254740993LL; r.dbl = 3.25;
  memcpy(r.s, "h\xc3\xa9llo \x01", 7); s_len = 7;
  r.dt.year = 2024; r.dt.month = 2; r.dt.day = 29; r.dt.hour = 23; r.dt.minute = 59;
  r.dt.second = 58; r.dt.second_part = 123456; r.dt.time_type = MYSQL_TIMESTAMP_DATETIME;
  r.f = 0.5f; r.ti = -7; r.si = 31000;
  nulls[7] = 1; /* n is NULL */
  if (mysql_stmt_bind_param(s, b)) stmt_die(s, "bind param");
  if (mysql_stmt_send_long_data(s, 5, "abc\0def\0", 8)) stmt_die(s, "send_long_data 1");
  if (mysql_stmt_send_long_data(s, 5, "ghi\xff\xfe\0", 6)) stmt_die(s, "send_long_data 2");
  if (mysql_stmt_send_long_data(s, 5, "01234567", 6)) stmt_die(s, "send_long_data 3");
  if (mysql_stmt_send_long_data(s, 5, "67", 2)) stmt_die(s, "send_long_data 4");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute row 1");
  CHECK(mysql_stmt_affected_rows(s) == 1, "row 1: affected rows %llu", (unsigned long long)mysql_stmt_affected_rows(s));

  /* Row 2: everything but the id NULL. */
  r.id = 2;
  for (int k = 1; k < 11; k++) nulls[k] = 1;
  if (mysql_stmt_bind_param(s, b)) stmt_die(s, "bind param 2");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute row 2");

  /* Row 3: long data sent, then mysql_stmt_reset drops it; the re-bound buffer
   * is what must be stored. */
  r.id = 3; r.i = 3;
  for (int k = 1; k < 11; k++) nulls[k] = 0;
  nulls[6] = 1;
  memcpy(r.b, "after", 5); b_len = 5;
  if (mysql_stmt_send_long_data(s, 5, "DISCARDED", 9)) stmt_die(s, "send_long_data before reset");
  if (mysql_stmt_reset(s)) stmt_die(s, "mysql_stmt_reset");
  if (mysql_stmt_bind_param(s, b)) stmt_die(s, "bind param 3");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute row 3 after reset");

  /* A duplicate key: the error comes back, the statement stays usable. */
  if (mysql_stmt_execute(s) == 0) die("duplicate key accepted");
  CHECK(mysql_stmt_errno(s) == 1062, "duplicate key: error %u %s", mysql_stmt_errno(s), mysql_stmt_error(s));
  if (mysql_stmt_close(s)) die("stmt_close failed");

  check_ps_rows(m, 1, 3, 0);
  check_ps_rows(m, 2, 2, 1); /* re-prepared and re-executed, buffered */

  /* One statement executed many times with different parameters. */
  s = prepare(m, "SELECT ? + 1, CONCAT('v', ?)");
  for (int k = 0; k < 100; k++) {
    long long v = k * 1000003LL;
    char txt[32];
    unsigned long tl = (unsigned long)snprintf(txt, sizeof txt, "%d", k);
    MYSQL_BIND pb[2];
    memset(pb, 0, sizeof pb);
    pb[0].buffer_type = MYSQL_TYPE_LONGLONG; pb[0].buffer = &v;
    pb[1].buffer_type = MYSQL_TYPE_STRING; pb[1].buffer = txt; pb[1].length = &tl;
    if (mysql_stmt_bind_param(s, pb)) stmt_die(s, "bind");
    if (mysql_stmt_execute(s)) stmt_die(s, "execute loop");
    struct sbuf out = {0};
    fetch_strings(s, &out, "loop");
    char want[96];
    snprintf(want, sizeof want, "%lld\tv%d\n", v + 1, k);
    CHECK(strcmp(sb_str(&out), want) == 0, "execution %d: got [%s] want [%s]", k, sb_str(&out), want);
    sb_free(&out);
  }
  mysql_stmt_close(s);

  /* Many statements open at once, executed in reverse order, then closed. */
  enum { NSTMT = 150 };
  MYSQL_STMT *many[NSTMT];
  for (int k = 0; k < NSTMT; k++) {
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT %d + ?", k);
    many[k] = prepare(m, sql);
  }
  for (int k = NSTMT - 1; k >= 0; k--) {
    int one = 1;
    MYSQL_BIND pb;
    memset(&pb, 0, sizeof pb);
    pb.buffer_type = MYSQL_TYPE_LONG;
    pb.buffer = &one;
    if (mysql_stmt_bind_param(many[k], &pb)) stmt_die(many[k], "bind many");
    if (mysql_stmt_execute(many[k])) stmt_die(many[k], "execute many");
    struct sbuf out = {0};
    fetch_strings(many[k], &out, "many");
    CHECK(atoi(sb_str(&out)) == k + 1, "statement %d returned %s", k, sb_str(&out));
    sb_free(&out);
  }
  for (int k = 0; k < NSTMT; k++) mysql_stmt_close(many[k]);

  /* A statement that does not parse: the server's error, the connection goes on. */
  MYSQL_STMT *bad = mysql_stmt_init(m);
  CHECK(mysql_stmt_prepare(bad, "SELEKT 1", 8) != 0, "SELEKT 1 prepared");
  CHECK(mysql_stmt_errno(bad) == 1064, "bad prepare: error %u", mysql_stmt_errno(bad));
  mysql_stmt_close(bad);

  /* UPDATE through a prepared statement: affected rows. */
  s = prepare(m, "UPDATE ps_t SET i = i WHERE id >= ?");
  int from = 0;
  MYSQL_BIND pb;
  memset(&pb, 0, sizeof pb);
  pb.buffer_type = MYSQL_TYPE_LONG;
  pb.buffer = &from;
  mysql_stmt_bind_param(s, &pb);
  if (mysql_stmt_execute(s)) stmt_die(s, "update");
  mysql_stmt_close(s);
  if (mysql_query(m, "UPDATE ps_t SET i = i + 1 WHERE id = 3")) db_die(m, "text UPDATE");
  CHECK(mysql_affected_rows(m) == 1, "text UPDATE after prepared ones: affected %llu",
        (unsigned long long)mysql_affected_rows(m));
  expect_q1(m, "SELECT SUM(i) FROM ps_t", "-123452");

  /* The types table through the binary protocol, every column as a string. */
  s = prepare(m, "SELECT * FROM types ORDER BY id");
  if (mysql_stmt_execute(s)) stmt_die(s, "types");
  struct sbuf out = {0};
  CHECK(fetch_strings(s, &out, "types") == 2, "types: rows");
  mysql_stmt_close(s);
  fputs(sb_str(&out), stdout); /* compared with the direct output by the test */
  sb_free(&out);
  q(m, "DROP TABLE ps_t");
  printf("prepared: ok\n");
  return 0;
}

/* ------------------------------------------------------------------ cursor */

static MYSQL_STMT *open_cursor(MYSQL *m, const char *sql, unsigned long prefetch) {
  MYSQL_STMT *s = mysql_stmt_init(m);
  unsigned long type = CURSOR_TYPE_READ_ONLY;
  if (mysql_stmt_attr_set(s, STMT_ATTR_CURSOR_TYPE, &type)) stmt_die(s, "cursor type");
  if (mysql_stmt_attr_set(s, STMT_ATTR_PREFETCH_ROWS, &prefetch)) stmt_die(s, "prefetch rows");
  if (mysql_stmt_prepare(s, sql, (unsigned long)strlen(sql))) stmt_die(s, sql);
  if (mysql_stmt_execute(s)) stmt_die(s, "execute with cursor");
  CHECK(m->server_status & SERVER_STATUS_CURSOR_EXISTS,
        "no SERVER_STATUS_CURSOR_EXISTS after executing with a cursor (status %u)", m->server_status);
  return s;
}

struct cur_row {
  long long seq;
  char h[33];
  MYSQL_BIND b[2];
  unsigned long hlen;
};

static void bind_cursor(MYSQL_STMT *s, struct cur_row *r) {
  memset(r, 0, sizeof *r);
  r->b[0].buffer_type = MYSQL_TYPE_LONGLONG;
  r->b[0].buffer = &r->seq;
  r->b[1].buffer_type = MYSQL_TYPE_STRING;
  r->b[1].buffer = r->h;
  r->b[1].buffer_length = sizeof r->h;
  r->b[1].length = &r->hlen;
  if (mysql_stmt_bind_result(s, r->b)) stmt_die(s, "bind cursor result");
}

static int cmd_cursor(MYSQL *m, long rows, unsigned long prefetch) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT seq, MD5(seq) FROM seq_1_to_%ld", rows);
  MYSQL_STMT *s = open_cursor(m, sql, prefetch);
  struct cur_row r;
  bind_cursor(s, &r);
  long n = 0;
  long long sum = 0;
  int rc;
  while ((rc = mysql_stmt_fetch(s)) == 0) {
    n++;
    sum += r.seq;
    CHECK(r.seq == n && r.hlen == 32, "cursor row %ld: seq %lld, md5 length %lu", n, r.seq, r.hlen);
  }
  if (rc != MYSQL_NO_DATA) stmt_die(s, "cursor fetch");
  CHECK(n == rows && sum == (long long)rows * (rows + 1) / 2, "cursor: %ld rows (sum %lld), expected %ld", n, sum, rows);

  /* Re-execute the same statement after a partial fetch. */
  if (mysql_stmt_execute(s)) stmt_die(s, "re-execute cursor");
  for (int k = 0; k < 5; k++) CHECK(mysql_stmt_fetch(s) == 0 && r.seq == k + 1, "re-executed cursor row %d", k);
  if (mysql_stmt_reset(s)) stmt_die(s, "reset with an open cursor");

  /* Two cursors open at once, fetched in turns, with text queries in between. */
  MYSQL_STMT *s2 = open_cursor(m, "SELECT seq, 'x' FROM seq_1_to_3000 ORDER BY seq DESC", 3);
  struct cur_row r2;
  bind_cursor(s2, &r2);
  if (mysql_stmt_execute(s)) stmt_die(s, "execute first cursor again");
  for (long k = 1; k <= 3000; k++) {
    CHECK(mysql_stmt_fetch(s) == 0 && r.seq == k, "interleaved: cursor 1 row %ld (got %lld)", k, r.seq);
    CHECK(mysql_stmt_fetch(s2) == 0 && r2.seq == 3001 - k, "interleaved: cursor 2 row %ld (got %lld)", k, r2.seq);
    if (k % 1000 == 0) expect_q1(m, "SELECT 'between'", "between");
  }
  CHECK(mysql_stmt_fetch(s2) == MYSQL_NO_DATA, "cursor 2 has more than 3000 rows");
  mysql_stmt_close(s2);
  mysql_stmt_close(s);
  expect_q1(m, "SELECT 'after cursors'", "after cursors");
  printf("cursor: %ld rows in batches of %lu ok\n", rows, prefetch);
  return 0;
}

/* ------------------------------------------------------------------ call */

static int cmd_call(MYSQL *m) {
  /* CALL p_out(IN x, OUT y): two result sets, then the OUT parameters
   * (SERVER_PS_OUT_PARAMS), then the final OK. */
  MYSQL_STMT *s = prepare(m, "CALL p_out(?, ?)");
  CHECK(mysql_stmt_param_count(s) == 2, "CALL: param count %lu", mysql_stmt_param_count(s));
  int x = 20, y = 0;
  MYSQL_BIND pb[2];
  memset(pb, 0, sizeof pb);
  pb[0].buffer_type = MYSQL_TYPE_LONG; pb[0].buffer = &x;
  pb[1].buffer_type = MYSQL_TYPE_LONG; pb[1].buffer = &y;
  if (mysql_stmt_bind_param(s, pb)) stmt_die(s, "bind");
  struct sbuf out = {0};
  for (int round = 0; round < 2; round++) {
    if (mysql_stmt_execute(s)) stmt_die(s, "execute CALL");
    int sets = 0, out_params = 0;
    int st;
    do {
      if (mysql_stmt_field_count(s) > 0) {
        int is_out = (m->server_status & SERVER_PS_OUT_PARAMS) != 0;
        sb_printf(&out, "%s:\n", is_out ? "out params" : "result");
        fetch_strings(s, &out, "CALL result");
        if (is_out) out_params++;
        else sets++;
      }
      st = mysql_stmt_next_result(s);
      if (st > 0) stmt_die(s, "next_result after CALL");
    } while (st == 0);
    CHECK(sets == 2 && out_params == 1, "CALL: %d result sets and %d OUT-parameter sets, expected 2 and 1", sets, out_params);
    x++;
  }
  mysql_stmt_close(s);

  /* CALL p2(): two result sets, executed twice. */
  s = prepare(m, "CALL p2()");
  for (int round = 0; round < 2; round++) {
    if (mysql_stmt_execute(s)) stmt_die(s, "execute CALL p2");
    int sets = 0, st;
    do {
      if (mysql_stmt_field_count(s) > 0) {
        sb_printf(&out, "p2 result:\n");
        fetch_strings(s, &out, "CALL p2");
        sets++;
      }
      st = mysql_stmt_next_result(s);
      if (st > 0) stmt_die(s, "next_result after CALL p2");
    } while (st == 0);
    CHECK(sets == 2, "CALL p2(): %d result sets", sets);
  }
  mysql_stmt_close(s);
  expect_q1(m, "SELECT 'after CALL'", "after CALL");
  fputs(sb_str(&out), stdout);
  sb_free(&out);
  printf("call: ok\n");
  return 0;
}

/* ------------------------------------------------------------------ multi */

/* Runs a multi-statement through mysql_real_query/mysql_next_result and
 * describes every result: "rows:v,v;v,v" or "ok:affected" or "error:N". */
static void describe_multi(MYSQL *m, const char *sql, struct sbuf *out) {
  int st = mysql_real_query(m, sql, (unsigned long)strlen(sql));
  if (st) {
    sb_printf(out, "error:%u\n", mysql_errno(m));
    return;
  }
  do {
    MYSQL_RES *r = mysql_store_result(m);
    if (r) {
      sb_add(out, "rows:", 5);
      MYSQL_ROW row;
      unsigned int nf = mysql_num_fields(r);
      int first = 1;
      while ((row = mysql_fetch_row(r))) {
        if (!first) sb_add(out, ";", 1);
        first = 0;
        for (unsigned int i = 0; i < nf; i++) {
          if (i) sb_add(out, ",", 1);
          sb_printf(out, "%s", row[i] ? row[i] : "NULL");
        }
      }
      sb_add(out, "\n", 1);
      mysql_free_result(r);
    } else if (mysql_field_count(m) == 0) {
      sb_printf(out, "ok:%llu\n", (unsigned long long)mysql_affected_rows(m));
    } else {
      db_die(m, "store_result");
    }
    st = mysql_next_result(m);
    if (st > 0) sb_printf(out, "error:%u\n", mysql_errno(m));
  } while (st == 0);
}

static int cmd_multi(MYSQL *m) {
  struct sbuf out = {0};
  q(m, "DROP TABLE IF EXISTS multi_t");
  describe_multi(m, "CREATE TABLE multi_t (a INT); INSERT INTO multi_t VALUES (1),(2),(3); SELECT 1; "
                    "SELECT 2, 'two' UNION ALL SELECT 3, NULL; DO 1; UPDATE multi_t SET a = a + 1; "
                    "SELECT SUM(a) FROM multi_t; DROP TABLE multi_t", &out);
  const char *want = "ok:0\nok:3\nrows:1\nrows:2,two;3,NULL\nok:0\nok:3\nrows:9\nok:0\n";
  CHECK(strcmp(sb_str(&out), want) == 0, "multi-statement results:\n%s\nexpected:\n%s", sb_str(&out), want);
  sb_free(&out);

  describe_multi(m, "SELECT 1; SELECT * FROM nosuchtable; SELECT 3", &out);
  CHECK(strcmp(sb_str(&out), "rows:1\nerror:1146\n") == 0, "error in the middle: %s", sb_str(&out));
  sb_free(&out);
  expect_q1(m, "SELECT 'after error'", "after error");

  describe_multi(m, "CALL p2(); SELECT 'x'", &out);
  CHECK(strcmp(sb_str(&out),
               "rows:1,one\nrows:1,c4ca4238a0b923820dcc509a6f75849b;2,c81e728d9d4c2f636f067f89cc14862c;"
               "3,eccbc87e4b5ce2fe28308fd9f2a7baf3\nok:0\nrows:x\n") == 0,
        "CALL in a multi-statement: %s", sb_str(&out));
  sb_free(&out);

  /* COM_SET_OPTION: multi-statements off, then on again. */
  CHECK(mysql_set_server_option(m, MYSQL_OPTION_MULTI_STATEMENTS_OFF) == 0, "set_server_option off: %s", mysql_error(m));
  describe_multi(m, "SELECT 1; SELECT 2", &out);
  CHECK(strcmp(sb_str(&out), "error:1064\n") == 0, "multi-statement with the option off: %s", sb_str(&out));
  sb_free(&out);
  CHECK(mysql_set_server_option(m, MYSQL_OPTION_MULTI_STATEMENTS_ON) == 0, "set_server_option on: %s", mysql_error(m));
  describe_multi(m, "SELECT 1; SELECT 2", &out);
  CHECK(strcmp(sb_str(&out), "rows:1\nrows:2\n") == 0, "multi-statement with the option on: %s", sb_str(&out));
  sb_free(&out);
  printf("multi: ok\n");
  return 0;
}

/* ------------------------------------------------------------------ change_user, reset, misc */

static int cmd_change_user(MYSQL *m, const char *user2, const char *pass2) {
  q(m, "SET @before_change = 1");
  if (mysql_change_user(m, user2, pass2, "test")) db_die(m, "change_user to the second user");
  char *cu = q1(m, "SELECT CURRENT_USER()");
  printf("after change_user(%s): CURRENT_USER()=%s\n", user2, cu);
  free(cu);
  expect_q1(m, "SELECT @before_change", "NULL");
  expect_q1(m, "SELECT DATABASE()", "test");
  expect_q1(m, "SELECT COUNT(*) FROM big WHERE id <= 10", "10");

  if (mysql_change_user(m, g_user, g_pass, "test2")) db_die(m, "change_user back to the first user");
  cu = q1(m, "SELECT CONCAT(CURRENT_USER(), ' ', DATABASE())");
  printf("after change_user(%s) back: %s\n", g_user, cu);
  free(cu);

  /* A wrong password: 1045, and whatever the server does with the connection
   * afterwards, printed so the test can compare it with MariaDB's behaviour. */
  int rc = mysql_change_user(m, g_user, "wrong-password", "test");
  CHECK(rc != 0, "change_user with a wrong password succeeded");
  printf("change_user with a wrong password: error %u (%s): %s\n", mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
  CHECK(mysql_errno(m) == 1045, "wrong password: expected error 1045, got %u", mysql_errno(m));
  if (mysql_query(m, "SELECT CURRENT_USER()")) {
    printf("next query: error %u\n", mysql_errno(m));
  } else {
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("next query: CURRENT_USER()=%s\n", row && row[0] ? row[0] : "?");
    if (r) mysql_free_result(r);
  }
  return 0;
}

/* COM_CHANGE_USER, then no command at all for SECS seconds: whatever another
 * process sees of the session meanwhile comes from the change itself. */
static int cmd_change_user_hold(MYSQL *m, const char *user2, const char *pass2, int secs) {
  if (mysql_change_user(m, user2, pass2, "test")) db_die(m, "change_user");
  printf("changed to %s, holding %d s\n", user2, secs);
  sleep((unsigned)secs);
  return 0;
}

static int cmd_reset(MYSQL *m) {
  q(m, "SET @x = 5");
  q(m, "CREATE TEMPORARY TABLE reset_tmp (a INT)");
  q(m, "USE test2");
  MYSQL_STMT *s = prepare(m, "SELECT 1");
  expect_q1(m, "SELECT @x", "5");
  if (mysql_reset_connection(m)) db_die(m, "mysql_reset_connection");
  expect_q1(m, "SELECT @x", "NULL");
  expect_q1(m, "SELECT DATABASE()", "test2");
  expect_q1(m, "SELECT CURRENT_USER()", "app@%");
  if (mysql_query(m, "SELECT * FROM reset_tmp") == 0) die("temporary table survived mysql_reset_connection");
  CHECK(mysql_errno(m) == 1146, "temporary table after reset: error %u", mysql_errno(m));
  CHECK(mysql_stmt_execute(s) != 0, "a prepared statement survived mysql_reset_connection");
  mysql_stmt_close(s);
  expect_q1(m, "SELECT 'after reset'", "after reset");
  printf("reset: ok\n");
  return 0;
}

static int cmd_ping(MYSQL *m) {
  for (int k = 0; k < 20; k++)
    if (mysql_ping(m)) db_die(m, "mysql_ping");
  expect_q1(m, "SELECT 'after ping'", "after ping");
  if (mysql_ping(m)) db_die(m, "mysql_ping after a query");
  printf("ping: ok\n");
  return 0;
}

static int cmd_stat(MYSQL *m) {
  for (int k = 0; k < 3; k++) {
    const char *st = mysql_stat(m);
    if (!st) db_die(m, "mysql_stat");
    CHECK(strncmp(st, "Uptime", 6) == 0, "mysql_stat: [%s] does not start with Uptime", st);
  }
  expect_q1(m, "SELECT 'after stat'", "after stat");
  printf("stat: ok\n");
  return 0;
}

static int cmd_list_fields(MYSQL *m) {
  MYSQL_RES *r = mysql_list_fields(m, "types", NULL);
  if (!r) db_die(m, "mysql_list_fields(types)");
  unsigned int n = mysql_num_fields(r);
  printf("types:");
  for (unsigned int i = 0; i < n; i++) printf(" %s", mysql_fetch_field_direct(r, i)->name);
  printf("\n");
  CHECK(n == 16, "mysql_list_fields(types): %u fields", n);
  mysql_free_result(r);
  r = mysql_list_fields(m, "types", "d%");
  if (!r) db_die(m, "mysql_list_fields(types, d%)");
  n = mysql_num_fields(r);
  printf("types d%%:");
  for (unsigned int i = 0; i < n; i++) printf(" %s", mysql_fetch_field_direct(r, i)->name);
  printf("\n");
  mysql_free_result(r);
  r = mysql_list_fields(m, "nosuchtable", NULL);
  CHECK(r == NULL, "mysql_list_fields(nosuchtable) succeeded");
  printf("nosuchtable: error %u\n", mysql_errno(m));
  expect_q1(m, "SELECT 'after list_fields'", "after list_fields");
  return 0;
}

static int cmd_select_db(MYSQL *m) {
  if (mysql_select_db(m, "test2")) db_die(m, "mysql_select_db(test2)");
  expect_q1(m, "SELECT DATABASE()", "test2");
  CHECK(mysql_select_db(m, "nosuchdb") != 0, "mysql_select_db(nosuchdb) succeeded");
  printf("select_db(nosuchdb): error %u (%s): %s\n", mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
  expect_q1(m, "SELECT DATABASE()", "test2");
  CHECK(mysql_select_db(m, "mysql") != 0, "mysql_select_db(mysql) without rights succeeded");
  printf("select_db(mysql): error %u (%s): %s\n", mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
  if (mysql_select_db(m, "test")) db_die(m, "mysql_select_db(test)");
  expect_q1(m, "SELECT COUNT(*) FROM big WHERE id <= 3", "3");
  printf("select_db: ok\n");
  return 0;
}

/* ------------------------------------------------------------------ long data */

static unsigned char pattern_byte(size_t i) { return (unsigned char)((i * 7) ^ (i >> 9) ^ (i >> 17)); }

static int cmd_longdata(MYSQL *m, size_t mib) {
  size_t size = mib * 1024 * 1024;
  size_t first = size > 17 * 1024 * 1024 ? 17 * 1024 * 1024 : size / 2; /* one packet > 16 MiB */
  unsigned char *data = malloc(size);
  CHECK(data != NULL, "out of memory");
  for (size_t i = 0; i < size; i++) data[i] = pattern_byte(i);

  q(m, "DROP TABLE IF EXISTS longdata_t");
  q(m, "CREATE TABLE longdata_t (id INT PRIMARY KEY, b LONGBLOB)");
  MYSQL_STMT *s = prepare(m, "INSERT INTO longdata_t VALUES (?, ?)");
  int id = 1;
  MYSQL_BIND pb[2];
  memset(pb, 0, sizeof pb);
  pb[0].buffer_type = MYSQL_TYPE_LONG; pb[0].buffer = &id;
  pb[1].buffer_type = MYSQL_TYPE_LONG_BLOB;
  if (mysql_stmt_bind_param(s, pb)) stmt_die(s, "bind");
  if (mysql_stmt_send_long_data(s, 1, (const char *)data, (unsigned long)first)) stmt_die(s, "send_long_data (first part)");
  if (mysql_stmt_send_long_data(s, 1, (const char *)data + first, (unsigned long)(size - first)))
    stmt_die(s, "send_long_data (second part)");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute with long data");
  mysql_stmt_close(s);

  char want_len[32];
  snprintf(want_len, sizeof want_len, "%zu", size);
  expect_q1(m, "SELECT LENGTH(b) FROM longdata_t WHERE id = 1", want_len);

  /* Back through the binary protocol: one row larger than 16 MiB. */
  s = prepare(m, "SELECT b FROM longdata_t WHERE id = ?");
  memset(pb, 0, sizeof pb);
  pb[0].buffer_type = MYSQL_TYPE_LONG; pb[0].buffer = &id;
  if (mysql_stmt_bind_param(s, pb)) stmt_die(s, "bind select");
  if (mysql_stmt_execute(s)) stmt_die(s, "execute select");
  unsigned char *back = malloc(size);
  CHECK(back != NULL, "out of memory");
  unsigned long len = 0;
  MYSQL_BIND rb;
  memset(&rb, 0, sizeof rb);
  rb.buffer_type = MYSQL_TYPE_LONG_BLOB;
  rb.buffer = back;
  rb.buffer_length = (unsigned long)size;
  rb.length = &len;
  if (mysql_stmt_bind_result(s, &rb)) stmt_die(s, "bind result");
  int rc = mysql_stmt_fetch(s);
  if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) stmt_die(s, "fetch blob");
  CHECK(len == size, "binary protocol: blob of %lu bytes, expected %zu", len, size);
  CHECK(memcmp(back, data, size) == 0, "binary protocol: blob content differs");
  CHECK(mysql_stmt_fetch(s) == MYSQL_NO_DATA, "more than one row");
  mysql_stmt_close(s);

  /* And through the text protocol. */
  if (mysql_query(m, "SELECT b FROM longdata_t WHERE id = 1")) db_die(m, "text select blob");
  MYSQL_RES *r = mysql_store_result(m);
  if (!r) db_die(m, "store blob");
  MYSQL_ROW row = mysql_fetch_row(r);
  unsigned long *lens = mysql_fetch_lengths(r);
  CHECK(row && row[0] && lens[0] == size && memcmp(row[0], data, size) == 0, "text protocol: blob differs");
  mysql_free_result(r);
  q(m, "DROP TABLE longdata_t");
  free(back);
  free(data);
  printf("longdata: %zu MiB ok\n", mib);
  return 0;
}

/* ------------------------------------------------------------------ threads */

struct thread_arg {
  int no, iterations;
  double deadline;
  int ok;
  char err[512];
};

static void *session_thread(void *p) {
  struct thread_arg *a = p;
  mysql_thread_init();
  for (int it = 0; it < a->iterations; it++) {
    if (now_s() > a->deadline) {
      snprintf(a->err, sizeof a->err, "thread %d: deadline passed at iteration %d", a->no, it);
      break;
    }
    MYSQL *m = try_connect(g_user, g_pass, g_db, a->err, sizeof a->err);
    if (!m) break;
    char sql[128];
    long long want = (long long)a->no * 100000 + it;
    snprintf(sql, sizeof sql, "SELECT %lld, CONNECTION_ID(), (SELECT COUNT(*) FROM big WHERE id <= %d)", want, it + 1);
    int good = 0;
    if (mysql_query(m, sql) == 0) {
      MYSQL_RES *r = mysql_store_result(m);
      MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
      if (row && row[0] && atoll(row[0]) == want && row[2] && atoi(row[2]) == it + 1) good = 1;
      else snprintf(a->err, sizeof a->err, "thread %d: wrong answer to %s", a->no, sql);
      if (r) mysql_free_result(r);
    } else {
      snprintf(a->err, sizeof a->err, "thread %d: %s: error %u %s", a->no, sql, mysql_errno(m), mysql_error(m));
    }
    if (good && it % 3 == 0) {
      /* a prepared statement too */
      MYSQL_STMT *s = mysql_stmt_init(m);
      good = s && mysql_stmt_prepare(s, "SELECT ?", 8) == 0;
      if (good) {
        MYSQL_BIND b;
        long long v = want;
        memset(&b, 0, sizeof b);
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &v;
        long long got = -1;
        MYSQL_BIND rb;
        memset(&rb, 0, sizeof rb);
        rb.buffer_type = MYSQL_TYPE_LONGLONG;
        rb.buffer = &got;
        good = mysql_stmt_bind_param(s, &b) == 0 && mysql_stmt_execute(s) == 0 &&
               mysql_stmt_bind_result(s, &rb) == 0 && mysql_stmt_fetch(s) == 0 && got == want;
      }
      if (!good) snprintf(a->err, sizeof a->err, "thread %d: prepared SELECT ? failed: %s", a->no,
                          s ? mysql_stmt_error(s) : "stmt_init");
      if (s) mysql_stmt_close(s);
    }
    mysql_close(m);
    if (!good) break;
    a->ok++;
  }
  mysql_thread_end();
  return NULL;
}

static int cmd_threads(int n, int iterations, int seconds) {
  struct thread_arg *args = calloc((size_t)n, sizeof *args);
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  CHECK(args && tids, "out of memory");
  double deadline = now_s() + seconds;
  for (int k = 0; k < n; k++) {
    args[k].no = k;
    args[k].iterations = iterations;
    args[k].deadline = deadline;
    int e = pthread_create(&tids[k], NULL, session_thread, &args[k]);
    CHECK(e == 0, "pthread_create: %s", strerror(e));
  }
  int total = 0, failed_threads = 0;
  const char *first_err = NULL;
  for (int k = 0; k < n; k++) {
    pthread_join(tids[k], NULL);
    total += args[k].ok;
    if (args[k].ok != iterations) {
      failed_threads++;
      if (!first_err) first_err = args[k].err;
    }
  }
  if (failed_threads)
    die("threads: %d of %d threads failed (%d of %d sessions ok); first error: %s", failed_threads, n, total,
        n * iterations, first_err ? first_err : "?");
  printf("threads: %d threads x %d sessions ok\n", n, iterations);
  free(args);
  free(tids);
  return 0;
}

/* ------------------------------------------------------------------ query */

static int cmd_query(MYSQL *m, const char *sql) {
  struct sbuf out = {0};
  describe_multi(m, sql, &out);
  fputs(sb_str(&out), stdout);
  sb_free(&out);
  return 0;
}

/* ------------------------------------------------------------------ script */

/* A session driven step by step from standard input, one step per line, so
 * a test can act on the session from outside between two steps (kill its
 * server session, wait for the backend's wait_timeout) and then see what the
 * session still holds.  Each step prints what it got:
 *
 *   query SQL              rows as "a|b" (NULL as NULL), then "ok" or "error CODE SQLSTATE"
 *   prepare NAME SQL       "prepared NAME params=N"
 *   bind NAME V...         binds the values (integers as BIGINT, else strings);
 *                          the next exec sends their types, later ones do not
 *   exec NAME              rows, then "ok affected=N" or "error ..."
 *   cursor NAME            executes with a read-only cursor, fetches nothing
 *   fetch NAME N           fetches up to N rows of the cursor
 *   bulk NAME N            executes a one-parameter statement for the rows
 *                          1..N at once (array binding: COM_STMT_BULK_EXECUTE
 *                          where the server offers it)
 *   longdata NAME IDX TEXT mysql_stmt_send_long_data
 *   stmt_reset NAME        COM_STMT_RESET
 *   close NAME             COM_STMT_CLOSE
 *   reset                  COM_RESET_CONNECTION
 *   mark TEXT              prints "mark TEXT" (the test waits for it)
 *   wait FILE              waits (up to 60 s) until FILE exists
 *   sleep SECONDS
 */
#define SCRIPT_STMTS 16
#define SCRIPT_PARAMS 8

struct script_stmt {
  char name[32];
  MYSQL_STMT *s;
  MYSQL_BIND b[SCRIPT_PARAMS];
  long long ints[SCRIPT_PARAMS];
  char strs[SCRIPT_PARAMS][256];
  unsigned long lens[SCRIPT_PARAMS];
};

static void print_db_error(unsigned int code, const char *state, const char *msg) {
  printf("error %u %s %s\n", code, state, msg);
}

static struct script_stmt *script_find(struct script_stmt *t, const char *name, int create) {
  for (int i = 0; i < SCRIPT_STMTS; i++)
    if (t[i].s && strcmp(t[i].name, name) == 0) return &t[i];
  if (!create) return NULL;
  for (int i = 0; i < SCRIPT_STMTS; i++)
    if (!t[i].s) {
      memset(&t[i], 0, sizeof t[i]);
      snprintf(t[i].name, sizeof t[i].name, "%s", name);
      return &t[i];
    }
  return NULL;
}

static void script_print_text_result(MYSQL *m) {
  do {
    MYSQL_RES *res = mysql_store_result(m);
    if (res) {
      unsigned int n = mysql_num_fields(res);
      MYSQL_ROW row;
      while ((row = mysql_fetch_row(res))) {
        for (unsigned int i = 0; i < n; i++) printf("%s%s", i ? "|" : "", row[i] ? row[i] : "NULL");
        putchar('\n');
      }
      mysql_free_result(res);
    } else if (mysql_field_count(m) > 0) {
      break; /* the rows failed (e.g. KILL QUERY after the metadata): the error below */
    }
  } while (mysql_next_result(m) == 0);
  if (mysql_errno(m))
    print_db_error(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
  else
    printf("ok\n");
}

/* Prints the rows a statement's result holds (or fetches up to `limit`). */
static void script_print_stmt_rows(MYSQL_STMT *s, long limit) {
  MYSQL_RES *meta = mysql_stmt_result_metadata(s);
  if (!meta) return;
  unsigned int n = mysql_num_fields(meta);
  mysql_free_result(meta);
  if (n > SCRIPT_PARAMS) n = SCRIPT_PARAMS;
  MYSQL_BIND out[SCRIPT_PARAMS];
  char buf[SCRIPT_PARAMS][256];
  unsigned long len[SCRIPT_PARAMS];
  my_bool isnull[SCRIPT_PARAMS];
  memset(out, 0, sizeof out);
  for (unsigned int i = 0; i < n; i++) {
    out[i].buffer_type = MYSQL_TYPE_STRING;
    out[i].buffer = buf[i];
    out[i].buffer_length = sizeof buf[i];
    out[i].length = &len[i];
    out[i].is_null = &isnull[i];
  }
  if (mysql_stmt_bind_result(s, out)) return;
  long rows = 0;
  while ((limit < 0 || rows < limit) && mysql_stmt_fetch(s) == 0) {
    for (unsigned int i = 0; i < n; i++)
      printf("%s%.*s", i ? "|" : "", isnull[i] ? 4 : (int)len[i], isnull[i] ? "NULL" : buf[i]);
    putchar('\n');
    rows++;
  }
}

static int cmd_script(MYSQL *m) {
  static struct script_stmt stmts[SCRIPT_STMTS];
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0] || line[0] == '#') continue;
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = 0;
    const char *step = line;
    if (strcmp(step, "query") == 0 && arg) {
      if (mysql_query(m, arg))
        print_db_error(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
      else
        script_print_text_result(m);
    } else if (strcmp(step, "mark") == 0) {
      printf("mark %s\n", arg ? arg : "");
    } else if (strcmp(step, "wait") == 0 && arg) {
      for (int i = 0; i < 600 && access(arg, F_OK) != 0; i++) usleep(100000);
    } else if (strcmp(step, "sleep") == 0 && arg) {
      usleep((useconds_t)(atof(arg) * 1e6));
    } else if (strcmp(step, "reset") == 0) {
      if (mysql_reset_connection(m))
        print_db_error(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
      else
        printf("ok\n");
    } else if (strcmp(step, "prepare") == 0 && arg && strchr(arg, ' ')) {
      char *sql = strchr(arg, ' ');
      *sql++ = 0;
      struct script_stmt *st = script_find(stmts, arg, 1);
      CHECK(st, "script: too many statements");
      st->s = mysql_stmt_init(m);
      if (mysql_stmt_prepare(st->s, sql, (unsigned long)strlen(sql))) {
        print_db_error(mysql_stmt_errno(st->s), mysql_stmt_sqlstate(st->s), mysql_stmt_error(st->s));
        mysql_stmt_close(st->s);
        st->s = NULL;
      } else {
        printf("prepared %s params=%lu\n", arg, mysql_stmt_param_count(st->s));
      }
    } else {
      char *name = arg, *rest = NULL;
      if (arg && (rest = strchr(arg, ' '))) *rest++ = 0;
      struct script_stmt *st = name ? script_find(stmts, name, 0) : NULL;
      if (!st) {
        printf("script: bad step '%s'\n", step);
        return 1;
      }
      MYSQL_STMT *s = st->s;
      int failed = 0;
      if (strcmp(step, "bind") == 0) {
        memset(st->b, 0, sizeof st->b);
        for (int i = 0; rest && *rest && i < SCRIPT_PARAMS; i++) {
          char *next = strchr(rest, ' ');
          if (next) *next++ = 0;
          char *end;
          st->ints[i] = strtoll(rest, &end, 10);
          if (*rest && !*end) {
            st->b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            st->b[i].buffer = &st->ints[i];
          } else {
            snprintf(st->strs[i], sizeof st->strs[i], "%s", rest);
            st->lens[i] = (unsigned long)strlen(st->strs[i]);
            st->b[i].buffer_type = MYSQL_TYPE_STRING;
            st->b[i].buffer = st->strs[i];
            st->b[i].length = &st->lens[i];
          }
          rest = next;
        }
        failed = mysql_stmt_bind_param(s, st->b);
        if (!failed) printf("bound %s\n", name);
      } else if (strcmp(step, "exec") == 0 || strcmp(step, "cursor") == 0) {
        unsigned long type = strcmp(step, "cursor") == 0 ? CURSOR_TYPE_READ_ONLY : CURSOR_TYPE_NO_CURSOR;
        mysql_stmt_attr_set(s, STMT_ATTR_CURSOR_TYPE, &type);
        failed = mysql_stmt_execute(s);
        if (!failed && type == CURSOR_TYPE_NO_CURSOR) {
          script_print_stmt_rows(s, -1);
          printf("ok affected=%lld\n", (long long)mysql_stmt_affected_rows(s));
        } else if (!failed) {
          printf("ok cursor\n");
        }
      } else if (strcmp(step, "bulk") == 0 && rest) {
        unsigned int n = (unsigned int)atoi(rest);
        static long long values[1000];
        CHECK(n > 0 && n <= 1000, "bulk: N must be 1..1000");
        for (unsigned int i = 0; i < n; i++) values[i] = (long long)i + 1;
        MYSQL_BIND one;
        memset(&one, 0, sizeof one);
        one.buffer_type = MYSQL_TYPE_LONGLONG;
        one.buffer = values;
        mysql_stmt_attr_set(s, STMT_ATTR_ARRAY_SIZE, &n);
        failed = mysql_stmt_bind_param(s, &one) || mysql_stmt_execute(s);
        unsigned int none = 0;
        mysql_stmt_attr_set(s, STMT_ATTR_ARRAY_SIZE, &none);
        if (!failed) printf("ok affected=%lld\n", (long long)mysql_stmt_affected_rows(s));
      } else if (strcmp(step, "fetch") == 0 && rest) {
        script_print_stmt_rows(s, atol(rest));
        if (mysql_stmt_errno(s)) failed = 1; else printf("ok\n");
      } else if (strcmp(step, "longdata") == 0 && rest && strchr(rest, ' ')) {
        char *text = strchr(rest, ' ');
        *text++ = 0;
        failed = mysql_stmt_send_long_data(s, (unsigned int)atoi(rest), text, (unsigned long)strlen(text));
        if (!failed) printf("sent\n");
      } else if (strcmp(step, "stmt_reset") == 0) {
        failed = mysql_stmt_reset(s);
        if (!failed) printf("ok\n");
      } else if (strcmp(step, "close") == 0) {
        mysql_stmt_close(s);
        st->s = NULL;
        printf("closed\n");
      } else {
        printf("script: bad step '%s'\n", step);
        return 1;
      }
      if (failed) print_db_error(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
    }
    fflush(stdout);
  }
  return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
  fputs("usage: mr_client HOST PORT USER PASSWORD DB COMMAND [ARGS...]\n"
        "commands:\n"
        "  query SQL                run SQL (multi-statements allowed), describe each result\n"
        "  ids                      print mysql_thread_id() and CONNECTION_ID()\n"
        "  tls                      print the TLS cipher in use (\"none\" without TLS; see MR_SSL_CA)\n"
        "  prepared                 prepared statements: many types, NULL, send_long_data, reset, close\n"
        "  cursor [ROWS] [PREFETCH] read-only server-side cursor (COM_STMT_FETCH), default 10000 7\n"
        "  call                     prepared CALL with several result sets and OUT parameters\n"
        "  multi                    multi-statements, mysql_next_result, COM_SET_OPTION\n"
        "  change_user USER2 PASS2  COM_CHANGE_USER to USER2, back, and with a wrong password\n"
        "  change_user_hold USER2 PASS2 SECS  COM_CHANGE_USER to USER2, then idle for SECS\n"
        "  reset                    COM_RESET_CONNECTION\n"
        "  ping                     COM_PING\n"
        "  stat                     COM_STATISTICS\n"
        "  list_fields              COM_FIELD_LIST\n"
        "  select_db                COM_INIT_DB\n"
        "  longdata [MIB]           a MIB-MiB parameter (default 20) via send_long_data, read back\n"
        "  threads [N] [ITER] [SEC] N threads x ITER connect/query/verify/quit (default 50 10 120)\n"
        "  script                   steps from standard input, one per line (see cmd_script)\n",
        stderr);
}

int main(int argc, char **argv) {
  if (argc < 7) {
    usage();
    return 2;
  }
  g_host = argv[1];
  g_port = (unsigned int)atoi(argv[2]);
  g_user = argv[3];
  g_pass = argv[4];
  g_db = argv[5][0] ? argv[5] : NULL;
  const char *cmd = argv[6];
  char **args = argv + 7;
  int nargs = argc - 7;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (mysql_library_init(0, NULL, NULL)) die("mysql_library_init failed");

  int rc;
  if (strcmp(cmd, "threads") == 0) {
    int n = nargs > 0 ? atoi(args[0]) : 50;
    int iter = nargs > 1 ? atoi(args[1]) : 10;
    int secs = nargs > 2 ? atoi(args[2]) : 120;
    CHECK(n > 0 && n <= 1000 && iter > 0 && iter <= 10000 && secs > 0, "threads: bad arguments");
    rc = cmd_threads(n, iter, secs);
    mysql_library_end();
    return rc;
  }

  MYSQL *m = connect_or_die();
  if (strcmp(cmd, "query") == 0 && nargs == 1) rc = cmd_query(m, args[0]);
  else if (strcmp(cmd, "ids") == 0) {
    char *cid = q1(m, "SELECT CONNECTION_ID()");
    printf("thread_id %lu connection_id %s\n", mysql_thread_id(m), cid);
    free(cid);
    rc = 0;
  } else if (strcmp(cmd, "tls") == 0) {
    const char *cipher = mysql_get_ssl_cipher(m);
    printf("tls %s\n", cipher ? cipher : "none");
    rc = 0;
  } else if (strcmp(cmd, "prepared") == 0) rc = cmd_prepared(m);
  else if (strcmp(cmd, "cursor") == 0) {
    long rows = nargs > 0 ? atol(args[0]) : 10000;
    unsigned long prefetch = nargs > 1 ? strtoul(args[1], NULL, 10) : 7;
    CHECK(rows >= 3000 && prefetch > 0, "cursor: ROWS must be >= 3000 and PREFETCH > 0");
    rc = cmd_cursor(m, rows, prefetch);
  } else if (strcmp(cmd, "call") == 0) rc = cmd_call(m);
  else if (strcmp(cmd, "multi") == 0) rc = cmd_multi(m);
  else if (strcmp(cmd, "change_user") == 0 && nargs == 2) rc = cmd_change_user(m, args[0], args[1]);
  else if (strcmp(cmd, "change_user_hold") == 0 && nargs == 3) {
    int secs = atoi(args[2]);
    CHECK(secs > 0 && secs <= 60, "change_user_hold: SECS must be 1..60");
    rc = cmd_change_user_hold(m, args[0], args[1], secs);
  }
  else if (strcmp(cmd, "reset") == 0) rc = cmd_reset(m);
  else if (strcmp(cmd, "script") == 0) rc = cmd_script(m);
  else if (strcmp(cmd, "ping") == 0) rc = cmd_ping(m);
  else if (strcmp(cmd, "stat") == 0) rc = cmd_stat(m);
  else if (strcmp(cmd, "list_fields") == 0) rc = cmd_list_fields(m);
  else if (strcmp(cmd, "select_db") == 0) rc = cmd_select_db(m);
  else if (strcmp(cmd, "longdata") == 0) {
    size_t mib = nargs > 0 ? (size_t)atol(args[0]) : 20;
    CHECK(mib >= 1 && mib <= 60, "longdata: MIB must be 1..60");
    rc = cmd_longdata(m, mib);
  } else {
    usage();
    rc = 2;
  }
  mysql_close(m);
  mysql_library_end();
  return rc;
}
