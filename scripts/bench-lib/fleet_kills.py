#!/usr/bin/python3
"""scripts/bench-fleet's kill timing: from one root@sys session on proxy 1,
KILL of proxy 1's own idle sessions (local), of proxy 2's (forwarded to its
peer port), and by backend connection id (looked up on every proxy), K of
each: the time from sending the KILL to its OK, in milliseconds.

  fleet_kills.py PORT ROOT_PASSWORD K
"""
import sys
import time

import pymysql


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    port, password, k = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    c = pymysql.connect(host="127.0.0.1", port=port, user="root@sys", password=password, autocommit=True)
    cur = c.cursor()
    cur.execute("SHOW GLOBAL PROXYSESSION LIKE 'app'")
    by_proxy = {}
    for row in cur.fetchall():
        by_proxy.setdefault(int(row[0]), []).append(int(row[2]))
    backend_ids = []
    for cs_id in by_proxy.get(3, [])[:k]:
        cur.execute("SHOW PROXYSESSION ATTRIBUTE %d LIKE 'server_sessid'" % cs_id)
        r = cur.fetchone()
        if r and r[1] and r[1] != "0":
            backend_ids.append(int(r[1]))
    kinds = [("local KILL <cs_id>", by_proxy.get(1, [])[:k]),
             ("forwarded KILL <cs_id>", by_proxy.get(2, [])[:k]),
             ("KILL <backend id>", backend_ids)]
    for name, ids in kinds:
        if len(ids) < k:
            print("%s: only %d sessions to kill" % (name, len(ids)), file=sys.stderr)
            return 1
        times = []
        for i in ids:
            t0 = time.perf_counter()
            cur.execute("KILL %d" % i)
            times.append((time.perf_counter() - t0) * 1000.0)
        print("%-26s n=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f" %
              (name + ":", len(times), percentile(times, 50), percentile(times, 99), max(times)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
