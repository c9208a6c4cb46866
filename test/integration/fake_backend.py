#!/usr/bin/env python3
"""Backends that stall: MySQL servers that never finish a login.

usage: fake_backend.py silent LISTEN_PORT      accepts, never greets
       fake_backend.py stall LISTEN_PORT       greets, reads the login, never answers

Prints "ready" on standard output once it listens; runs until killed.  (A
relay between the proxy and a real MariaDB: scripts/lib/chaos_clients.py
relay.)
"""
import socket
import struct
import sys


def listen(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    print("ready", flush=True)
    return s


def greeting():
    # Handshake v10 as MariaDB sends it: mysql_native_password, 20-byte scramble.
    # Without CLIENT_MYSQL (bit 0) the last 4 reserved bytes carry MariaDB's
    # extended capabilities.
    caps = 0xF7FE | (0x81BF << 16)  # PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, ...
    body = b"\x0a" + b"5.5.5-10.11.0-fake\x00" + struct.pack("<I", 7) + b"abcdefgh" + b"\x00"
    body += struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
    body += struct.pack("<H", caps >> 16) + b"\x15" + b"\x00" * 6 + struct.pack("<I", 0x1F)
    body += b"ijklmnopqrst\x00"
    body += b"mysql_native_password\x00"
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


def stalling(port, greet):
    server = listen("127.0.0.1", port)
    held = []
    while True:
        conn, _ = server.accept()
        held.append(conn)  # kept open, never answered
        if greet:
            conn.sendall(greeting())


def main(argv):
    if len(argv) == 3 and argv[1] in ("silent", "stall"):
        stalling(int(argv[2]), argv[1] == "stall")
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
