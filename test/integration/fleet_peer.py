#!/usr/bin/python3
"""Speaks the fleet's peer protocol (src/control/fleet_message.h) from outside,
written from the frame description alone, to check what a peer port accepts.

  fleet_peer.py PORT SECRET_FILE [--sender-id N] [--tool] [--replay]
                [--wrong-secret] [--garbage] [--stale] STATEMENT

Prints one line per request sent: "answer ok N", "answer error CODE MESSAGE",
"answer rows N", "refused REASON" or "closed" (the port closed the connection
without answering).  Exit status 0 unless the port could not be reached.
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = b"MYRF"


def frame(ftype, body, secret):
    head = MAGIC + struct.pack(">BBHI", 1, ftype, 0, len(body))
    data = head + body
    return data + hmac.new(secret, data, hashlib.sha256).digest()


def string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def request(args, secret, stamp_ms):
    body = struct.pack(">BBQ", 2 if args.tool else 1, args.sender_id, stamp_ms)
    body += os.urandom(16)
    body += struct.pack(">BI", 1, 0)  # Execute, caller cs_id 0
    body += string(args.user) + string(args.tenant) + string(args.statement)
    body += struct.pack(">Q", 0)
    return frame(1, body, secret)


class Body:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u(self, fmt):
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(n))[0]

    def s(self):
        return self.take(self.u(">I")).decode(errors="replace")


def exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(data)
        buf = b""
        while True:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "closed"
            if not chunk:
                break
            buf += chunk
    if len(buf) < 12 or buf[:4] != MAGIC:
        return "closed"  # nothing, or not an answer of ours (a TLS alert, say)
    _, ftype, _, length = struct.unpack(">BBHI", buf[4:12])
    body = Body(buf[12:12 + length])
    if ftype == 3:
        return "refused " + body.s()
    body.take(1 + 16)  # sender proxy_id, nonce
    kind = body.u(">B")
    affected = body.u(">Q")
    code = body.u(">H")
    body.s()  # sqlstate
    message = body.s()
    ncols = body.u(">I")
    for _ in range(ncols):
        body.s()
        body.take(1 + 4 + 2 + 1 + 1)
    nrows = body.u(">I")
    if kind == 0:
        return "answer ok %d" % affected
    if kind == 1:
        return "answer error %d %s" % (code, message)
    return "answer rows %d" % nrows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("secret_file")
    ap.add_argument("statement")
    ap.add_argument("--sender-id", type=int, default=99)
    ap.add_argument("--user", default="root")
    ap.add_argument("--tenant", default="sys")
    ap.add_argument("--tool", action="store_true")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--wrong-secret", action="store_true")
    ap.add_argument("--garbage", action="store_true")
    ap.add_argument("--stale", action="store_true")
    args = ap.parse_args()
    with open(args.secret_file, "rb") as f:
        secret = f.read().rstrip()
    if args.wrong_secret:
        secret = b"not-" + secret
    if args.garbage:
        print(exchange(args.port, b"GET / HTTP/1.0\r\n\r\n"))
        return 0
    stamp = int(time.time() * 1000) - (120000 if args.stale else 0)
    data = request(args, secret, stamp)
    print(exchange(args.port, data))
    if args.replay:
        print(exchange(args.port, data))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        print("cannot reach the peer port: %s" % e, file=sys.stderr)
        sys.exit(2)
