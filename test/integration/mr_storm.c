/* Session-control load for the integration tests, with libmariadb.
 *
 *   mr_storm HOST PORT ADMIN_USER ADMIN_PW APP_USER APP_PW storm SESSIONS KILLERS
 *     Opens SESSIONS sessions as APP_USER (each runs a query, so each has its
 *     server session), then KILLERS admin sessions kill every second one
 *     concurrently with KILL <Id>.  Checks that every KILL answered OK, that
 *     every killed session's socket is closed by the proxy within a second,
 *     and that every other session still answers.  Exit 0 when all held.
 *
 *   mr_storm HOST PORT ADMIN_USER ADMIN_PW APP_USER APP_PW processkill
 *     Opens one APP_USER session and kills it from the admin session with
 *     COM_PROCESS_KILL (mysql_kill), then checks the socket closes.
 */
#include <errno.h>
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host, *admin_user, *admin_pw, *app_user, *app_pw;
static unsigned port;

static MYSQL* connect_as(const char* user, const char* pw) {
  MYSQL* m = mysql_init(NULL);
  unsigned timeout = 10;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (!mysql_real_connect(m, host, user, pw, "test", port, NULL, 0)) {
    fprintf(stderr, "connect as %s: %s\n", user, mysql_error(m));
    mysql_close(m);
    return NULL;
  }
  return m;
}

static int query_ok(MYSQL* m, const char* sql) {
  if (mysql_query(m, sql) != 0) return 0;
  MYSQL_RES* r = mysql_store_result(m);
  if (r) mysql_free_result(r);
  return 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits up to limit_ms for the peer to close the session's socket.  Returns
 * the milliseconds it took, or -1 if it stayed open. */
static double wait_closed(MYSQL* m, int limit_ms) {
  int fd = (int)mysql_get_socket(m);
  double t0 = now_ms();
  for (;;) {
    double left = limit_ms - (now_ms() - t0);
    if (left <= 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, (int)left + 1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return -1;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return now_ms() - t0;
    /* An error packet (1927/1317) may precede the close: keep reading. */
  }
}

struct killer {
  int index, killers, n;
  MYSQL** sessions;
  unsigned long* ids;
  int failures;
};

static void* kill_loop(void* arg) {
  struct killer* k = arg;
  MYSQL* admin = connect_as(admin_user, admin_pw);
  if (!admin) {
    k->failures = k->n;
    return NULL;
  }
  for (int i = 0; i < k->n; i += 2) {
    if ((i / 2) % k->killers != k->index) continue;
    char sql[64];
    snprintf(sql, sizeof(sql), "KILL %lu", k->ids[i]);
    if (mysql_query(admin, sql) != 0) {
      fprintf(stderr, "killer %d: %s: %s\n", k->index, sql, mysql_error(admin));
      k->failures++;
    }
  }
  mysql_close(admin);
  return NULL;
}

static int storm(int n, int killers) {
  MYSQL** s = calloc((size_t)n, sizeof(*s));
  unsigned long* ids = calloc((size_t)n, sizeof(*ids));
  for (int i = 0; i < n; ++i) {
    s[i] = connect_as(app_user, app_pw);
    if (!s[i] || !query_ok(s[i], "SELECT 1")) {
      fprintf(stderr, "session %d could not start\n", i);
      for (int j = 0; j <= i; ++j)
        if (s[j]) mysql_close(s[j]);
      free(s);
      free(ids);
      return 1;
    }
    ids[i] = mysql_thread_id(s[i]);
  }
  struct killer* k = calloc((size_t)killers, sizeof(*k));
  pthread_t* t = calloc((size_t)killers, sizeof(*t));
  double t0 = now_ms();
  for (int i = 0; i < killers; ++i) {
    k[i] = (struct killer){i, killers, n, s, ids, 0};
    pthread_create(&t[i], NULL, kill_loop, &k[i]);
  }
  int failures = 0;
  for (int i = 0; i < killers; ++i) {
    pthread_join(t[i], NULL);
    failures += k[i].failures;
  }
  double kill_ms = now_ms() - t0;
  int not_closed = 0, broken = 0;
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      double ms = wait_closed(s[i], 1000);
      if (ms < 0) {
        fprintf(stderr, "killed session %lu still open after 1 s\n", ids[i]);
        not_closed++;
      } else if (ms > worst) {
        worst = ms;
      }
    } else if (!query_ok(s[i], "SELECT 1")) {
      fprintf(stderr, "surviving session %lu broken: %s\n", ids[i], mysql_error(s[i]));
      broken++;
    }
  }
  for (int i = 0; i < n; ++i) mysql_close(s[i]);
  free(s);
  free(ids);
  free(k);
  free(t);
  printf("storm: %d sessions, %d killed by %d killers in %.0f ms; kill failures %d, "
         "killed but open %d, survivors broken %d; slowest close seen %.1f ms after the kills\n",
         n, (n + 1) / 2, killers, kill_ms, failures, not_closed, broken, worst);
  return failures || not_closed || broken ? 1 : 0;
}

static int processkill(void) {
  MYSQL* victim = connect_as(app_user, app_pw);
  MYSQL* admin = connect_as(admin_user, admin_pw);
  if (!victim || !admin || !query_ok(victim, "SELECT 1")) {
    if (victim) mysql_close(victim);
    if (admin) mysql_close(admin);
    return 1;
  }
  unsigned long id = mysql_thread_id(victim);
  if (mysql_kill(admin, id) != 0) {
    fprintf(stderr, "mysql_kill(%lu): %s\n", id, mysql_error(admin));
    return 1;
  }
  double ms = wait_closed(victim, 2000);
  if (ms < 0) {
    fprintf(stderr, "session %lu still open after COM_PROCESS_KILL\n", id);
    return 1;
  }
  printf("processkill: session %lu closed %.1f ms after COM_PROCESS_KILL\n", id, ms);
  /* Killing an unknown id answers 1094 as KILL does. */
  if (mysql_kill(admin, 0x80ffffffUL) == 0 || mysql_errno(admin) != 1094) {
    fprintf(stderr, "COM_PROCESS_KILL of an unknown id: expected 1094, got %u %s\n",
            mysql_errno(admin), mysql_error(admin));
    return 1;
  }
  mysql_close(victim);
  mysql_close(admin);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: mr_storm HOST PORT ADMIN_USER ADMIN_PW APP_USER APP_PW "
                    "(storm SESSIONS KILLERS | processkill)\n");
    return 2;
  }
  host = argv[1];
  port = (unsigned)atoi(argv[2]);
  admin_user = argv[3];
  admin_pw = argv[4];
  app_user = argv[5];
  app_pw = argv[6];
  mysql_library_init(0, NULL, NULL);
  int rc = 2;
  if (strcmp(argv[7], "storm") == 0 && argc == 10)
    rc = storm(atoi(argv[8]), atoi(argv[9]));
  else if (strcmp(argv[7], "processkill") == 0)
    rc = processkill();
  else
    fprintf(stderr, "unknown mode %s\n", argv[7]);
  mysql_library_end();
  return rc;
}
