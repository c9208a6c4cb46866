#!/usr/bin/python3
"""Misbehaving clients for scripts/chaos and test/integration/t_chaos.sh.

usage: chaos_clients.py MODE [options]   (always 127.0.0.1 or a 10.x address
of a namespace the caller made; every mode is bounded in count and time)

  vanish  --port P -n N --rows K --sql SQL
      N clients (at most --parallel at a time) send SQL (a big result), read K
      rows and go away: odd ones with an RST (SO_LINGER 0), even ones with a
      plain close (FIN), never with COM_QUIT.
  stall   --port P --sql SQL --seconds S
      one client sends SQL, reads nothing for S seconds, then resets.
      Prints "stalled" once the query is sent (the caller measures meanwhile).
  hold    --port P -n N --seconds S
      N clients log in at once, each runs SELECT 1, keeps the connection for
      S seconds, then quits.  Prints how many got in and the error codes of
      the others.
  storm   --port P -n N --seconds S
      N raw TCP connections opened as fast as possible (no login), kept S
      seconds, then closed.  Prints how many were accepted, refused with ERR
      1040, reset or still silent.
  relay   --listen HOST:PORT --to HOST:PORT [--control FILE]
      a TCP relay that delays every chunk by the number of milliseconds in
      FILE (read every 0.2 s; missing or empty = 0; no FILE: never), in both
      directions, order kept.  Prints "ready" once it listens; runs until
      killed.

Common: --host H (default 127.0.0.1) --user U --password PW --db DB.
Output: one line "key=value ..." (relay: none).
"""
import argparse
import asyncio
import collections
import resource
import select
import socket
import struct
import sys
import threading
import time

try:
    import pymysql
    import pymysql.cursors
except ImportError:  # relay and storm do not need it
    pymysql = None


def connect(a, timeout=10):
    return pymysql.connect(host=a.host, port=a.port, user=a.user, password=a.password,
                           database=a.db, connect_timeout=timeout, read_timeout=60,
                           write_timeout=60, autocommit=True)


def err_code(e):
    if getattr(e, "args", None) and isinstance(e.args[0], int):
        return str(e.args[0])
    return type(e).__name__


def abort_socket(conn, rst):
    sock = conn._sock
    if sock is None:
        return
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        sock.close()
    except OSError:
        pass
    conn._sock = None
    conn._rfile = None


def mode_vanish(a):
    lock = threading.Lock()
    stats = collections.Counter()
    sem = threading.Semaphore(a.parallel)

    def one(i):
        with sem:
            try:
                c = connect(a)
            except Exception as e:  # noqa: BLE001
                with lock:
                    stats["connect_err_" + err_code(e)] += 1
                return
            try:
                cur = c.cursor(pymysql.cursors.SSCursor)
                cur.execute(a.sql)
                got = 0
                for _ in range(a.rows):
                    if cur.fetchone() is None:
                        break
                    got += 1
                with lock:
                    stats["vanished_rst" if i % 2 else "vanished_fin"] += 1
                    if got < a.rows:
                        stats["short_result"] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    stats["query_err_" + err_code(e)] += 1
            finally:
                abort_socket(c, rst=bool(i % 2))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.n)]
    deadline = time.time() + a.seconds
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    stats["unfinished"] = sum(t.is_alive() for t in threads)
    print(" ".join("%s=%d" % kv for kv in sorted(stats.items())), flush=True)
    return 0 if stats["unfinished"] == 0 else 1


def mode_stall(a):
    c = connect(a)
    # Keep the cursor: a collected SSCursor drains the rest of the result.
    cur = c.cursor(pymysql.cursors.SSCursor)
    cur.execute(a.sql)
    print("stalled", flush=True)
    time.sleep(a.seconds)
    abort_socket(c, rst=True)
    print("reset", flush=True)
    del cur
    return 0


def mode_hold(a):
    lock = threading.Lock()
    stats = collections.Counter()
    go = threading.Event()
    release = threading.Event()
    conns = []

    def one():
        go.wait()
        try:
            c = connect(a)
            cur = c.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
            with lock:
                stats["in"] += 1
                conns.append(c)
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["err_" + err_code(e)] += 1

    threads = [threading.Thread(target=one) for _ in range(a.n)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(30)
    print(" ".join("%s=%d" % kv for kv in sorted(stats.items())), flush=True)
    release.wait(a.seconds)
    for c in conns:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    return 0


def mode_storm(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.n + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks, failed = [], collections.Counter()
    for _ in range(a.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((a.host, a.port))
        except BlockingIOError:
            pass
        except OSError as e:
            failed["connect_" + (e.strerror or "error").replace(" ", "_")] += 1
            s.close()
            continue
        socks.append(s)
    state = {s: "silent" for s in socks}
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        live = [s for s in socks if state[s] in ("silent", "greeted")]
        if not live:
            break
        poll = select.poll()
        byfd = {}
        for s in live:
            poll.register(s, select.POLLIN)
            byfd[s.fileno()] = s
        for fd, _ in poll.poll(max(0, min(500, int((deadline - time.time()) * 1000)))):
            s = byfd[fd]
            try:
                data = s.recv(4096)
            except OSError:
                state[s] = "reset"
                continue
            if not data:
                state[s] = "closed" if state[s] == "greeted" else "closed_silent"
            elif len(data) > 4 and data[4] == 0xFF:
                code = struct.unpack("<H", data[5:7])[0]
                state[s] = "refused_%d" % code
            else:
                state[s] = "greeted"
    stats = collections.Counter(state.values()) + failed
    for s in socks:
        s.close()
    print("attempts=%d %s" % (a.n, " ".join("%s=%d" % kv for kv in sorted(stats.items()))), flush=True)
    return 0


async def relay_main(a):
    ctl = {"ms": 0.0}

    async def watch():
        while a.control:
            try:
                with open(a.control) as f:
                    t = f.read().strip()
                ctl["ms"] = float(t) if t else 0.0
            except (OSError, ValueError):
                ctl["ms"] = 0.0
            await asyncio.sleep(0.2)

    async def pump(reader, writer):
        q = asyncio.Queue()

        async def sender():
            while True:
                due, data = await q.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        task = asyncio.ensure_future(sender())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await q.put((time.monotonic() + ctl["ms"] / 1000.0, data))
        except (ConnectionError, OSError):
            pass
        await q.put((0, None))
        try:
            await task
        except (ConnectionError, OSError):
            pass

    async def handle(cr, cw):
        try:
            th, tp = a.to.rsplit(":", 1)
            sr, sw = await asyncio.open_connection(th, int(tp))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, sw), pump(sr, cw), return_exceptions=True)

    lh, lp = a.listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, lh, int(lp))
    print("ready", flush=True)
    asyncio.ensure_future(watch())
    async with server:
        await server.serve_forever()


def main():
    # pymysql's destructors try to drain a result whose socket we closed on purpose.
    sys.unraisablehook = lambda *_: None
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["vanish", "stall", "hold", "storm", "relay"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="secret")
    p.add_argument("--db", default=None)
    p.add_argument("-n", type=int, default=10)
    p.add_argument("--parallel", type=int, default=20)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--sql", default="SELECT 1")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--listen")
    p.add_argument("--to")
    p.add_argument("--control")
    a = p.parse_args()
    if a.mode == "relay":
        asyncio.run(relay_main(a))
        return 0
    if a.mode in ("vanish", "stall", "hold") and pymysql is None:
        print("error: python3-pymysql is missing (apt-get install python3-pymysql)", file=sys.stderr)
        return 2
    return {"vanish": mode_vanish, "stall": mode_stall, "hold": mode_hold, "storm": mode_storm}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
