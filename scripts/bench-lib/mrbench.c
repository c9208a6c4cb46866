/*
 * mrbench: the load generator of scripts/bench for what sysbench does not
 * measure.  Linked with libmariadb (MariaDB Connector/C); scripts/bench
 * compiles it with gcc itself (pkg-config libmariadb), so the build system
 * does not know about it.
 *
 *   mrbench MODE -H HOST -P PORT -u USER -p PASSWORD [-D DB] [options]
 *
 * modes (each prints one line of key=value pairs on standard output and
 * exits 0, or prints "mrbench: ..." on standard error and exits 1):
 *
 *   storm -t THREADS -s SECONDS [-n MAX]
 *       connect storm: every thread loops connect + authenticate +
 *       "SELECT 1" + quit until SECONDS (or MAX cycles in all) are over.
 *       -> cycles errors seconds cps p50_ms p95_ms p99_ms
 *   idle -n COUNT -t THREADS -f STOPFILE -T MAXHOLD
 *       opens COUNT sessions (THREADS open them in parallel), runs
 *       "SELECT 1" on each so that every one has its server session, prints
 *       "ready opened=N seconds=S" and holds them until STOPFILE exists or
 *       MAXHOLD seconds passed, then quits them all.
 *   big -r ROWS -w WIDTH
 *       SELECT seq, REPEAT('x', WIDTH) FROM seq_1_to_ROWS read row by row
 *       with mysql_use_result (streaming, never the whole set in memory).
 *       -> rows bytes seconds mbps (bytes = field payload, MB = 10^6 bytes)
 *   qtime -q QUERY -n REPEAT
 *       one connection runs QUERY REPEAT times (result fully read).
 *       -> rows min_ms med_ms max_ms
 *   kill -n KILLS -c TARGETS
 *       opens TARGETS sessions (each runs "SELECT 1") and one killer
 *       session; the killer sends KILL <mysql_thread_id(target)> to the
 *       targets in turn, takes the time when the OK arrives, then polls the
 *       target's socket (mysql_get_socket) until read() returns 0 (or an
 *       error): the latency is the time from the OK to that close
 *       (CLOCK_MONOTONIC).  The killed target is replaced by a new session,
 *       outside the measurement.
 *       -> kills timeouts early p50_ms p95_ms p99_ms max_ms mean_ms
 *          (early = closes seen already when the OK arrived)
 *
 * -S (any mode): connect over TLS, as required, without checking the
 * server's certificate; -C CAFILE: the CA file libmariadb loads (else it
 * parses the system's bundle at every connection, which dominates a storm).
 *
 * Everything is bounded: connect/read/write timeouts of 10 s, a close that
 * does not come within 5 s counts as a timeout.
 */
#include <mysql.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *g_host = "127.0.0.1", *g_user = "root", *g_pass = "", *g_db = NULL;
static unsigned int g_port = 3306;
static int g_threads = 8, g_count = 0, g_rows = 100000, g_width = 1000, g_repeat = 5;
static int g_targets = 20;
static double g_seconds = 5, g_maxhold = 600;
static const char *g_stopfile = NULL, *g_query = NULL;
static int g_tls = 0; /* -S: connect over TLS (the server's certificate is not checked) */
static const char *g_tls_ca = NULL; /* -C FILE: the CA file libmariadb loads instead of the system's bundle */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("mrbench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new session, or NULL (error text in err when given). */
static MYSQL *db_connect(char *err, size_t errlen) {
  MYSQL *m = mysql_init(NULL);
  if (!m) {
    if (err) snprintf(err, errlen, "mysql_init: out of memory");
    return NULL;
  }
  unsigned int ct = 10, rw = 10;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw);
  if (g_tls) {
    my_bool on = 1, off = 0;
    mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
    /* Without one, libmariadb parses the system's CA bundle at every
       connection (some 20 ms): the storm would measure that. */
    if (g_tls_ca) mysql_options(m, MYSQL_OPT_SSL_CA, g_tls_ca);
  }
  if (!mysql_real_connect(m, g_host, g_user, g_pass, g_db, g_port, NULL, 0)) {
    if (err) snprintf(err, errlen, "connect to %s:%u: %u %s", g_host, g_port, mysql_errno(m), mysql_error(m));
    mysql_close(m);
    return NULL;
  }
  return m;
}

/* Runs a statement and reads (and drops) its whole result; 0 on success. */
static int run_query(MYSQL *m, const char *q, unsigned long long *rows) {
  if (mysql_real_query(m, q, (unsigned long)strlen(q))) return -1;
  do {
    MYSQL_RES *r = mysql_store_result(m);
    if (r) {
      if (rows) *rows += mysql_num_rows(r);
      mysql_free_result(r);
    } else if (mysql_field_count(m) != 0) {
      return -1;
    }
  } while (mysql_next_result(m) == 0);
  return mysql_errno(m) ? -1 : 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of sorted v[0..n-1] (nearest rank). */
static double pct(const double *v, size_t n, double q) {
  if (n == 0) return 0;
  size_t i = (size_t)(q * (double)n + 0.999999);
  if (i < 1) i = 1;
  if (i > n) i = n;
  return v[i - 1];
}

/* ------------------------------------------------------------------ storm */

#define STORM_CAP (1u << 20)
struct storm_thread {
  pthread_t th;
  double deadline;
  double *lat; /* seconds per cycle */
  size_t n, errors;
  char err[256];
};
static volatile long g_storm_budget; /* cycles left when -n is given */

static void *storm_main(void *arg) {
  struct storm_thread *t = arg;
  mysql_thread_init();
  while (now_s() < t->deadline && t->n < STORM_CAP) {
    if (g_count > 0 && __atomic_sub_fetch(&g_storm_budget, 1, __ATOMIC_RELAXED) < 0) break;
    double t0 = now_s();
    MYSQL *m = db_connect(t->err, sizeof t->err);
    if (!m || run_query(m, "SELECT 1", NULL) != 0) {
      if (m) {
        snprintf(t->err, sizeof t->err, "SELECT 1: %u %s", mysql_errno(m), mysql_error(m));
        mysql_close(m);
      }
      t->errors++;
      if (t->errors > 100 && t->errors > t->n / 10) break; /* mostly failing: stop */
      usleep(1000);
      continue;
    }
    mysql_close(m);
    t->lat[t->n++] = now_s() - t0;
  }
  mysql_thread_end();
  return NULL;
}

static void mode_storm(void) {
  struct storm_thread *ts = calloc((size_t)g_threads, sizeof *ts);
  if (!ts) die("out of memory");
  g_storm_budget = g_count;
  double start = now_s();
  for (int i = 0; i < g_threads; i++) {
    ts[i].deadline = start + g_seconds;
    ts[i].lat = malloc(STORM_CAP * sizeof(double));
    if (!ts[i].lat) die("out of memory");
    if (pthread_create(&ts[i].th, NULL, storm_main, &ts[i])) die("pthread_create failed");
  }
  size_t total = 0, errors = 0;
  for (int i = 0; i < g_threads; i++) {
    pthread_join(ts[i].th, NULL);
    total += ts[i].n;
    errors += ts[i].errors;
  }
  double secs = now_s() - start;
  double *all = malloc((total ? total : 1) * sizeof(double));
  if (!all) die("out of memory");
  size_t k = 0;
  for (int i = 0; i < g_threads; i++) {
    memcpy(all + k, ts[i].lat, ts[i].n * sizeof(double));
    k += ts[i].n;
    if (ts[i].errors) fprintf(stderr, "mrbench: storm thread %d: %zu errors, last: %s\n", i, ts[i].errors, ts[i].err);
  }
  qsort(all, total, sizeof(double), cmp_double);
  printf("cycles=%zu errors=%zu seconds=%.3f cps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f\n", total, errors, secs,
         (double)total / secs, pct(all, total, 0.50) * 1e3, pct(all, total, 0.95) * 1e3, pct(all, total, 0.99) * 1e3);
  if (total == 0) exit(1);
}

/* ------------------------------------------------------------------ idle */

struct idle_thread {
  pthread_t th;
  MYSQL **conns;
  int from, to, opened;
  char err[256];
};

static void *idle_open(void *arg) {
  struct idle_thread *t = arg;
  mysql_thread_init();
  for (int i = t->from; i < t->to; i++) {
    MYSQL *m = db_connect(t->err, sizeof t->err);
    if (!m) break;
    if (run_query(m, "SELECT 1", NULL) != 0) {
      snprintf(t->err, sizeof t->err, "SELECT 1: %u %s", mysql_errno(m), mysql_error(m));
      mysql_close(m);
      break;
    }
    t->conns[i] = m;
    t->opened++;
  }
  mysql_thread_end();
  return NULL;
}

static void mode_idle(void) {
  if (g_count <= 0) die("idle needs -n COUNT");
  if (!g_stopfile) die("idle needs -f STOPFILE");
  MYSQL **conns = calloc((size_t)g_count, sizeof *conns);
  struct idle_thread *ts = calloc((size_t)g_threads, sizeof *ts);
  if (!conns || !ts) die("out of memory");
  double start = now_s();
  int per = (g_count + g_threads - 1) / g_threads;
  for (int i = 0; i < g_threads; i++) {
    ts[i].conns = conns;
    ts[i].from = i * per < g_count ? i * per : g_count;
    ts[i].to = (i + 1) * per < g_count ? (i + 1) * per : g_count;
    if (pthread_create(&ts[i].th, NULL, idle_open, &ts[i])) die("pthread_create failed");
  }
  int opened = 0;
  for (int i = 0; i < g_threads; i++) {
    pthread_join(ts[i].th, NULL);
    opened += ts[i].opened;
    if (ts[i].opened < ts[i].to - ts[i].from) fprintf(stderr, "mrbench: idle thread %d: %s\n", i, ts[i].err);
  }
  printf("ready opened=%d wanted=%d seconds=%.3f\n", opened, g_count, now_s() - start);
  fflush(stdout);
  double until = now_s() + g_maxhold;
  while (now_s() < until && access(g_stopfile, F_OK) != 0) usleep(20000);
  for (int i = 0; i < g_count; i++)
    if (conns[i]) mysql_close(conns[i]);
  if (opened < g_count) exit(1);
}

/* ------------------------------------------------------------------ big */

static void mode_big(void) {
  char q[200];
  snprintf(q, sizeof q, "SELECT seq, REPEAT('x', %d) FROM seq_1_to_%d", g_width, g_rows);
  char err[256];
  MYSQL *m = db_connect(err, sizeof err);
  if (!m) die("%s", err);
  double t0 = now_s();
  if (mysql_real_query(m, q, (unsigned long)strlen(q))) die("%s: %u %s", q, mysql_errno(m), mysql_error(m));
  MYSQL_RES *r = mysql_use_result(m);
  if (!r) die("mysql_use_result: %u %s", mysql_errno(m), mysql_error(m));
  unsigned int nf = mysql_num_fields(r);
  unsigned long long rows = 0, bytes = 0;
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(r)) != NULL) {
    unsigned long *len = mysql_fetch_lengths(r);
    for (unsigned int i = 0; i < nf; i++) bytes += len[i];
    rows++;
  }
  if (mysql_errno(m)) die("fetching rows: %u %s", mysql_errno(m), mysql_error(m));
  mysql_free_result(r);
  double secs = now_s() - t0;
  mysql_close(m);
  if (rows != (unsigned long long)g_rows) die("got %llu rows, wanted %d", rows, g_rows);
  printf("rows=%llu bytes=%llu seconds=%.3f mbps=%.1f\n", rows, bytes, secs, (double)bytes / 1e6 / secs);
}

/* ------------------------------------------------------------------ qtime */

static void mode_qtime(void) {
  if (!g_query) die("qtime needs -q QUERY");
  char err[256];
  MYSQL *m = db_connect(err, sizeof err);
  if (!m) die("%s", err);
  double *t = calloc((size_t)g_repeat, sizeof(double));
  if (!t) die("out of memory");
  unsigned long long rows = 0;
  for (int i = 0; i < g_repeat; i++) {
    rows = 0;
    double t0 = now_s();
    if (run_query(m, g_query, &rows) != 0) die("%s: %u %s", g_query, mysql_errno(m), mysql_error(m));
    t[i] = now_s() - t0;
  }
  mysql_close(m);
  qsort(t, (size_t)g_repeat, sizeof(double), cmp_double);
  printf("rows=%llu min_ms=%.3f med_ms=%.3f max_ms=%.3f\n", rows, t[0] * 1e3, t[g_repeat / 2] * 1e3,
         t[g_repeat - 1] * 1e3);
}

/* ------------------------------------------------------------------ kill */

static MYSQL *kill_target(void) {
  char err[256];
  MYSQL *m = db_connect(err, sizeof err);
  if (!m) die("target: %s", err);
  if (run_query(m, "SELECT 1", NULL) != 0) die("target SELECT 1: %u %s", mysql_errno(m), mysql_error(m));
  return m;
}

/* Waits until fd reads EOF (or an error); returns the time of that, or -1
 * after the timeout.  *early is set when the close was already there at the
 * first look (a poll with timeout 0 right after the OK). */
static double wait_closed(int fd, double timeout_s, int *early) {
  char buf[4096];
  double until = now_s() + timeout_s;
  int first = 1;
  *early = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ms = first ? 0 : (int)((until - now_s()) * 1e3);
    if (ms < 0) return -1;
    int rc = poll(&p, 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) die("poll: %s", strerror(errno));
    if (rc == 0) {
      if (first) {
        first = 0;
        continue;
      }
      return -1;
    }
    double t = now_s();
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) { /* e.g. an error packet before the close: keep reading */
      first = 0;
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (first) *early = 1;
    return t;
  }
}

static void mode_kill(void) {
  if (g_count <= 0) die("kill needs -n KILLS");
  if (g_targets <= 0) die("kill needs -c TARGETS > 0");
  char err[256];
  MYSQL *killer = db_connect(err, sizeof err);
  if (!killer) die("killer: %s", err);
  MYSQL **t = calloc((size_t)g_targets, sizeof *t);
  double *lat = calloc((size_t)g_count, sizeof(double));
  if (!t || !lat) die("out of memory");
  for (int i = 0; i < g_targets; i++) t[i] = kill_target();
  int n = 0, timeouts = 0, early = 0;
  double sum = 0;
  for (int k = 0; k < g_count; k++) {
    int i = k % g_targets;
    unsigned long id = mysql_thread_id(t[i]);
    int fd = (int)mysql_get_socket(t[i]);
    char q[64];
    snprintf(q, sizeof q, "KILL %lu", id);
    if (run_query(killer, q, NULL) != 0) die("%s: %u %s", q, mysql_errno(killer), mysql_error(killer));
    double ok = now_s();
    int e;
    double closed = wait_closed(fd, 5.0, &e);
    if (closed < 0) {
      timeouts++;
      fprintf(stderr, "mrbench: %s: the target's socket did not close within 5 s\n", q);
    } else {
      double d = closed - ok;
      lat[n++] = d > 0 ? d : 0;
      sum += lat[n - 1];
      early += e;
    }
    mysql_close(t[i]); /* writes COM_QUIT to a dead socket: SIGPIPE is ignored */
    t[i] = kill_target();
  }
  for (int i = 0; i < g_targets; i++) mysql_close(t[i]);
  mysql_close(killer);
  qsort(lat, (size_t)n, sizeof(double), cmp_double);
  printf("kills=%d timeouts=%d early=%d p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f\n", n, timeouts,
         early, pct(lat, (size_t)n, 0.50) * 1e3, pct(lat, (size_t)n, 0.95) * 1e3, pct(lat, (size_t)n, 0.99) * 1e3,
         n ? lat[n - 1] * 1e3 : 0, n ? sum / n * 1e3 : 0);
  if (timeouts) exit(1);
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
  fputs("usage: mrbench storm|idle|big|qtime|kill -H HOST -P PORT -u USER -p PASSWORD [-D DB] [-S (TLS) [-C CAFILE]]\n"
        "  storm -t THREADS -s SECONDS [-n MAX]   idle -n COUNT -t THREADS -f STOPFILE -T MAXHOLD\n"
        "  big -r ROWS -w WIDTH   qtime -q QUERY -n REPEAT   kill -n KILLS -c TARGETS\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *mode = argv[1];
  int c;
  optind = 2;
  while ((c = getopt(argc, argv, "H:P:u:p:D:t:s:n:f:T:r:w:q:c:SC:")) != -1) {
    switch (c) {
      case 'H': g_host = optarg; break;
      case 'P': g_port = (unsigned)atoi(optarg); break;
      case 'u': g_user = optarg; break;
      case 'p': g_pass = optarg; break;
      case 'D': g_db = optarg; break;
      case 't': g_threads = atoi(optarg); break;
      case 's': g_seconds = atof(optarg); break;
      case 'S': g_tls = 1; break;
      case 'C': g_tls_ca = optarg; break;
      case 'n': g_count = g_repeat = atoi(optarg); break;
      case 'f': g_stopfile = optarg; break;
      case 'T': g_maxhold = atof(optarg); break;
      case 'r': g_rows = atoi(optarg); break;
      case 'w': g_width = atoi(optarg); break;
      case 'q': g_query = optarg; break;
      case 'c': g_targets = atoi(optarg); break;
      default: usage();
    }
  }
  if (g_threads < 1 || g_repeat < 1) usage();
  signal(SIGPIPE, SIG_IGN);
  /* Many sessions need many descriptors: take the hard limit. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (mysql_library_init(0, NULL, NULL)) die("mysql_library_init failed");
  if (strcmp(mode, "storm") == 0) mode_storm();
  else if (strcmp(mode, "idle") == 0) mode_idle();
  else if (strcmp(mode, "big") == 0) mode_big();
  else if (strcmp(mode, "qtime") == 0) mode_qtime();
  else if (strcmp(mode, "kill") == 0) mode_kill();
  else usage();
  mysql_library_end();
  return 0;
}
