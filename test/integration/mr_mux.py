#!/usr/bin/python3
"""mr_mux: many PyMySQL sessions at once, for the multiplexing tests
(t_multiplex.sh).  Debian's python3-pymysql, for Debian's /usr/bin/python3.
Every scenario prints one summary line of key=value results, then at most
ten lines "error: ..." naming what went wrong; it exits 0 only when nothing
did.

usage: mr_mux.py SCENARIO [args...]
  sample SOCKET USERS OUT INTERVAL_MS MAX_S
        as root over MariaDB's socket: counts the backend threads of USERS
        (comma-separated) every INTERVAL_MS until the file OUT.stop exists
        (or MAX_S passed); writes "max=N samples=M last=N" to OUT
  load PORT PASSWORD FIRST COUNT ITERATIONS DEADLINE_S
        COUNT sessions as app (clients FIRST..FIRST+COUNT-1) open at once and
        held; once all are in, each runs ITERATIONS rounds of reads, an
        INSERT of its own rows into test.mux_load, a committed transaction
        (BEGIN; INSERT; UPDATE; COMMIT), a rolled back one, USE of another
        database and SET SESSION group_concat_max_len, each checked; at the end its
        rows' count and sum must be exact.  Gives up after DEADLINE_S.
  twins PORT DB_PORT PASSWORD THREADS SESSIONS OPS SEED
        THREADS threads each own SESSIONS sessions through the proxy, each
        with a twin connected directly to MariaDB; random SETs of session
        state (time_zone, sql_mode, lc_time_names, SET NAMES, USE db,
        sql_select_limit) go to both, and random checks compare what the
        proxy session sees with what its twin sees.  Half of the sessions
        never set anything and must keep seeing the server's defaults.
  logins PORT USER PASSWORD COUNT DEADLINE_S
        COUNT logins at once (threads released together), each runs
        SELECT CURRENT_USER(), DATABASE() and quits.
"""
import os
import random
import sys
import threading
import time

import pymysql

threading.stack_size(512 * 1024)


def connect(port, user, password, db='test', **kw):
    return pymysql.connect(host='127.0.0.1', port=port, user=user, password=password, database=db,
                           autocommit=True, connect_timeout=30, read_timeout=120, write_timeout=120, **kw)


class Errors:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, what):
        with self.lock:
            self.items.append(what)

    def report(self):
        for e in self.items[:10]:
            print('error: %s' % e)
        return 1 if self.items else 0


def one(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall()


# ------------------------------------------------------------------ sample
def sample(sock, users, out, interval_ms, max_s):
    c = pymysql.connect(unix_socket=sock, user='root', autocommit=True)
    cur = c.cursor()
    names = ','.join("'%s'" % u for u in users.split(','))
    sql = 'SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN (%s)' % names
    mx = samples = last = 0
    t0 = time.time()
    failures = 0
    while not os.path.exists(out + '.stop') and time.time() - t0 < max_s:
        try:
            last = one(cur, sql)[0][0]
        except pymysql.MySQLError as e:
            # The server's own trouble reading its process list (a temporary
            # table's file gone from a shared /tmp under load): sample again.
            failures += 1
            if failures > 50:
                raise
            sys.stderr.write('sample failed, again: %r\n' % (e,))
            time.sleep(interval_ms / 1000.0)
            continue
        mx = max(mx, last)
        samples += 1
        if samples % 20 == 0:
            with open(out + '.tmp', 'w') as f:
                f.write('max=%d samples=%d last=%d\n' % (mx, samples, last))
            os.replace(out + '.tmp', out)
        time.sleep(interval_ms / 1000.0)
    with open(out + '.tmp', 'w') as f:
        f.write('max=%d samples=%d last=%d\n' % (mx, samples, last))
    os.replace(out + '.tmp', out)
    return 0


# ------------------------------------------------------------------ load
def load(port, password, first, count, iterations, deadline_s):
    errors = Errors()
    deadline = time.time() + deadline_s
    connected = threading.Barrier(count, timeout=deadline_s)
    conn_ids = set()
    ids_lock = threading.Lock()
    done = [0]

    def client(n):
        try:
            c = connect(port, 'app', password)
        except Exception as e:
            errors.add('client %d: connect: %r' % (n, e))
            connected.abort()
            return
        try:
            connected.wait()
        except threading.BrokenBarrierError:
            errors.add('client %d: not every session logged in' % n)
            c.close()
            return
        cur = c.cursor()
        step = 'start'
        try:
            seen = set()
            for it in range(iterations):
                if time.time() > deadline:
                    raise RuntimeError('deadline passed at iteration %d' % it)
                step = 'read %d' % it
                r = one(cur, 'SELECT COUNT(*), IFNULL(SUM(v), 0) FROM test.mux_load WHERE client = %s', (n,))
                if (int(r[0][0]), int(r[0][1])) != (2 * it, 12 * it):
                    raise RuntimeError('%s: own rows %r, expected (%d, %d)' % (step, r[0], 2 * it, 12 * it))
                step = 'insert %d' % it
                cur.execute('INSERT INTO test.mux_load (client, it, kind, v) VALUES (%s, %s, 0, 1)', (n, it))
                if cur.rowcount != 1:
                    raise RuntimeError('%s: %d rows' % (step, cur.rowcount))
                step = 'transaction %d' % it
                cur.execute('BEGIN')
                cur.execute('INSERT INTO test.mux_load (client, it, kind, v) VALUES (%s, %s, 1, 10)', (n, it))
                cur.execute('UPDATE test.mux_load SET v = v + 1 WHERE client = %s AND it = %s AND kind = 1', (n, it))
                if cur.rowcount != 1:
                    raise RuntimeError('%s: UPDATE changed %d rows' % (step, cur.rowcount))
                r = one(cur, 'SELECT v FROM test.mux_load WHERE client = %s AND it = %s AND kind = 1', (n, it))
                if r != ((11,),):
                    raise RuntimeError('%s: own uncommitted row reads %r' % (step, r))
                cur.execute('COMMIT')
                step = 'rollback %d' % it
                cur.execute('BEGIN')
                cur.execute('INSERT INTO test.mux_load (client, it, kind, v) VALUES (%s, %s, 2, 1000)', (n, it))
                cur.execute('ROLLBACK')
                step = 'state %d' % it
                db = 'test2' if (n + it) % 2 else 'test'
                # (Not time_zone: MariaDB 10.11 itself mixes up numeric time
                # zones set by hundreds of sessions at once.)
                gl = 4096 + n * 100 + it
                cur.execute('USE ' + db)
                cur.execute('SET SESSION group_concat_max_len = %s', (gl,))
                r = one(cur, 'SELECT DATABASE(), @@group_concat_max_len, CONNECTION_ID()')
                if (r[0][0], int(r[0][1])) != (db, gl):
                    raise RuntimeError('%s: DATABASE(), @@group_concat_max_len = %r, expected %r' % (step, r[0][:2], (db, gl)))
                seen.add(r[0][2])
            step = 'final check'
            r = one(cur, 'SELECT COUNT(*), SUM(v), SUM(kind = 2) FROM test.mux_load WHERE client = %s', (n,))
            want = (2 * iterations, 12 * iterations, 0)
            if tuple(int(x) for x in r[0]) != want:
                raise RuntimeError('final: own rows (count, sum, rolled back) %r, expected %r' % (r[0], want))
            with ids_lock:
                conn_ids.update(seen)
                done[0] += 1
        except Exception as e:
            errors.add('client %d at %s: %r' % (n, step, e))
        finally:
            c.close()

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(first + i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.time() + 5))
    alive = sum(t.is_alive() for t in threads)
    if alive:
        errors.add('%d clients still running at the deadline' % alive)
    print('clients=%d finished=%d errors=%d backend_threads_seen=%d elapsed_s=%.1f'
          % (count, done[0], len(errors.items), len(conn_ids), time.time() - t0))
    sys.stdout.flush()
    rc = errors.report()
    sys.stdout.flush()
    os._exit(rc)


# ------------------------------------------------------------------ twins
STATE_SQL = ('SELECT @@time_zone, @@sql_mode, IFNULL(DATABASE(), \'none\'), @@lc_time_names, '
             '@@character_set_client, @@character_set_results, @@collation_connection, @@sql_select_limit, '
             '@@autocommit, @@max_join_size')
SETS = [
    lambda r: "SET SESSION time_zone = '%s'" % r.choice(['+01:00', '-05:00', '+09:30', 'SYSTEM', '+00:00']),
    lambda r: "SET SESSION sql_mode = '%s'" % r.choice(['ANSI', 'TRADITIONAL', '', 'NO_ZERO_DATE,ANSI_QUOTES']),
    lambda r: 'SET SESSION sql_mode = DEFAULT',
    lambda r: "SET lc_time_names = '%s'" % r.choice(['en_US', 'de_DE', 'fr_FR', 'ja_JP']),
    lambda r: 'SET NAMES %s' % r.choice(['latin1', 'utf8mb4', 'utf8mb4 COLLATE utf8mb4_bin', 'ascii']),
    lambda r: 'USE %s' % r.choice(['test', 'test2']),
    lambda r: 'SET SESSION sql_select_limit = %s' % r.choice(['10', '1000', 'DEFAULT']),
    lambda r: 'SET SESSION max_join_size = %s' % r.choice(['1000000', 'DEFAULT']),
]


def twins(port, db_port, password, nthreads, nsessions, ops, seed):
    errors = Errors()
    stats = {'checks': 0, 'sets': 0, 'moved': 0}
    lock = threading.Lock()
    ids_all = set()

    def worker(w):
        r = random.Random(seed * 1000 + w)
        sess = []
        try:
            for i in range(nsessions):
                p = connect(port, 'app', password)
                d = connect(db_port, 'app', password)
                sess.append({'name': 't%d.s%d' % (w, i), 'p': p.cursor(), 'd': d.cursor(), 'pc': p, 'dc': d,
                             'setter': i % 2 == 0, 'ids': set()})
            for k in range(ops):
                s = r.choice(sess)
                if s['setter'] and r.random() < 0.4:
                    sql = r.choice(SETS)(r)
                    s['p'].execute(sql)
                    s['d'].execute(sql)
                    with lock:
                        stats['sets'] += 1
                    continue
                got = one(s['p'], STATE_SQL + ', CONNECTION_ID()')[0]
                want = one(s['d'], STATE_SQL)[0]
                s['ids'].add(got[-1])
                if tuple(got[:-1]) != tuple(want):
                    errors.add('%s (op %d, %s): through the proxy %r, directly %r'
                               % (s['name'], k, 'setter' if s['setter'] else 'never set anything', got[:-1], want))
                    return
                with lock:
                    stats['checks'] += 1
            with lock:
                for s in sess:
                    ids_all.update(s['ids'])
                    if len(s['ids']) > 1:
                        stats['moved'] += 1
        except Exception as e:
            errors.add('thread %d: %r' % (w, e))
        finally:
            for s in sess:
                s['pc'].close()
                s['dc'].close()

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print('sessions=%d checks=%d sets=%d sessions_on_several_backends=%d backend_threads_seen=%d elapsed_s=%.1f'
          % (nthreads * nsessions, stats['checks'], stats['sets'], stats['moved'], len(ids_all), time.time() - t0))
    return errors.report()


# ------------------------------------------------------------------ logins
def logins(port, user, password, count, deadline_s):
    errors = Errors()
    go = threading.Event()
    ok = [0]
    lock = threading.Lock()

    def one_login(n):
        go.wait()
        try:
            c = connect(port, user, password)
            r = one(c.cursor(), 'SELECT CURRENT_USER(), DATABASE()')
            c.close()
            if r != (('%s@%%' % user, 'test'),):
                errors.add('login %d: %r' % (n, r))
            else:
                with lock:
                    ok[0] += 1
        except Exception as e:
            errors.add('login %d: %r' % (n, e))

    threads = [threading.Thread(target=one_login, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    t0 = time.time()
    go.set()
    for t in threads:
        t.join(max(1.0, deadline_s - (time.time() - t0)))
    alive = sum(t.is_alive() for t in threads)
    if alive:
        errors.add('%d logins still running after %d s' % (alive, deadline_s))
    print('logins=%d ok=%d errors=%d elapsed_s=%.1f' % (count, ok[0], len(errors.items), time.time() - t0))
    sys.stdout.flush()
    rc = errors.report()
    sys.stdout.flush()
    os._exit(rc)


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    what, a = argv[1], argv[2:]
    if what == 'sample':
        return sample(a[0], a[1], a[2], int(a[3]), float(a[4]))
    if what == 'load':
        return load(int(a[0]), a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]))
    if what == 'twins':
        return twins(int(a[0]), int(a[1]), a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]))
    if what == 'logins':
        return logins(int(a[0]), a[1], a[2], int(a[3]), float(a[4]))
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
