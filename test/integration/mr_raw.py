#!/usr/bin/env python3
"""mr_raw: a MySQL client that speaks the protocol byte by byte, for the tests
that need what no well-behaved client sends: wrong sequence ids, half-sent
packets, pipelined auth answers, logins that never finish.  Standard library
only.  Every scenario prints one line of key=value results.

usage: mr_raw.py SCENARIO HOST PORT [args...]
  hold COUNT SECONDS [BIND_IP]      COUNT connections that read the greeting
                                    and never log in; held SECONDS
  login USER PASS                   one login; prints the outcome
  badseq USER PASS                  a command with sequence id 5
  emptycmd USER PASS                an empty command packet, then SELECT 1
  halfsend USER PASS SENT TOTAL WAIT  a TOTAL-byte COM_QUERY of which only SENT
                                    bytes are sent; waits up to WAIT s for the close
  responses USER PASS CAPS SQL...   each statement's response, packet by
                                    packet in hex, for a client with the
                                    capability flags CAPS added (e.g. 0x800000
                                    CLIENT_SESSION_TRACK, 0x1000000 DEPRECATE_EOF;
                                    bits 32 and up are MariaDB's extended
                                    capabilities, e.g. 0x1d00000000)
  changeuser USER PASS USER2 PASS2 MIB  while a SELECT SLEEP(1) runs:
                                    COM_CHANGE_USER naming
                                    caching_sha2_password, the native answer
                                    and MIB MiB of a long query in one write,
                                    then the client closes
"""
import hashlib
import socket
import struct
import sys
import time

CLIENT_LONG_PASSWORD = 1
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_TRANSACTIONS = 1 << 13
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PLUGIN_AUTH = 1 << 19
CAPS = (CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS | CLIENT_PLUGIN_AUTH)


def packet(seq, payload):
    return struct.pack('<I', len(payload))[:3] + bytes([seq & 0xff]) + payload


def native_token(password, scramble):
    if not password:
        return b''
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(scramble + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


class Conn:
    def __init__(self, host, port, bind=None, timeout=10):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if bind:
            self.s.bind((bind, 0))
        self.s.connect((host, port))
        self.buf = b''

    def read_packet(self):
        """(seq, payload), or None when the peer closed."""
        while True:
            if len(self.buf) >= 4:
                n = int.from_bytes(self.buf[:3], 'little')
                if len(self.buf) >= 4 + n:
                    seq, payload = self.buf[3], self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return seq, payload
            try:
                data = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not data:
                return None
            self.buf += data

    def greeting(self):
        p = self.read_packet()
        if p is None:
            return None
        payload = p[1]
        if payload[0] == 0xff:
            return payload
        end = payload.index(b'\0', 1)
        pos = end + 1 + 4
        scramble = payload[pos:pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
        scramble += payload[pos:pos + 12]
        return scramble

    def login(self, user, password, db=None, extra_caps=0):
        scramble = self.greeting()
        if scramble is None or (scramble and scramble[:1] == b'\xff'):
            return 'refused before the greeting'
        self.scramble = scramble
        caps = CAPS | (extra_caps & 0xffffffff) | (CLIENT_CONNECT_WITH_DB if db else 0)
        ext = extra_caps >> 32  # MariaDB's extended capabilities, read without CLIENT_MYSQL
        if ext:
            caps &= ~CLIENT_LONG_PASSWORD
        self.caps = caps
        self.ext = ext
        token = native_token(password, scramble)
        body = struct.pack('<IIB', caps, 1 << 24, 45) + b'\0' * 19 + struct.pack('<I', ext)
        body += user.encode('utf-8', 'surrogateescape') + b'\0'
        body += bytes([len(token)]) + token
        if db:
            body += db.encode() + b'\0'
        body += b'mysql_native_password\0'
        self.s.sendall(packet(1, body))
        return describe(self.read_packet())

    def query(self, sql, seq=0):
        self.s.sendall(packet(seq, b'\x03' + sql.encode()))


def describe(p):
    if p is None:
        return 'closed'
    payload = p[1]
    if payload[:1] == b'\x00':
        return 'ok'
    if payload[:1] == b'\xff':
        code = int.from_bytes(payload[1:3], 'little')
        msg = payload[9:].decode('utf-8', 'replace') if payload[3:4] == b'#' else payload[3:].decode('utf-8', 'replace')
        return 'error %d %s' % (code, msg.replace(' ', '_')[:120])
    if payload[:1] == b'\xfe':
        return 'auth_switch'
    return 'packet_0x%02x' % payload[0]


def read_response(c):
    """The packets of one text-protocol response (multi-results too)."""
    out = []
    deprecate_eof = c.caps & (1 << 24)
    while True:
        p = c.read_packet()
        if p is None:
            return out
        out.append(p)
        first = p[1][:1]
        if first in (b'\x00', b'\xff'):
            status = ok_status(p[1]) if first == b'\x00' else 0
            if not status & 0x0008:
                return out
            continue
        # a result set: column count, definitions, [EOF], rows, EOF/OK
        n = p[1][0]
        for _ in range(n):
            out.append(c.read_packet())
        if not deprecate_eof:
            out.append(c.read_packet())
        while True:
            r = c.read_packet()
            out.append(r)
            if r[1][:1] == b'\xff' or (r[1][:1] == b'\xfe' and len(r[1]) < 0xffffff):
                break
        last = out[-1][1]
        status = ok_status(last) if deprecate_eof else int.from_bytes(last[3:5], 'little')
        if last[:1] == b'\xff' or not status & 0x0008:
            return out


def lenenc(b, i):
    if b[i] < 0xfb:
        return b[i], i + 1
    if b[i] == 0xfc:
        return int.from_bytes(b[i + 1:i + 3], 'little'), i + 3
    if b[i] == 0xfd:
        return int.from_bytes(b[i + 1:i + 4], 'little'), i + 4
    return int.from_bytes(b[i + 1:i + 9], 'little'), i + 9


def ok_status(b):
    _, i = lenenc(b, 1)
    _, i = lenenc(b, i)
    return int.from_bytes(b[i:i + 2], 'little')


def wait_closed(c, seconds):
    """Seconds until the peer closed, or None."""
    start = time.time()
    c.s.settimeout(0.2)
    while time.time() - start < seconds:
        try:
            data = c.s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.time() - start
        if not data:
            return time.time() - start
        c.buf += data
    return None


def main(argv):
    scenario, host, port = argv[1], argv[2], int(argv[3])
    a = argv[4:]
    if scenario == 'hold':
        count, seconds, bind = int(a[0]), float(a[1]), a[2] if len(a) > 2 else None
        conns, greeted, refused = [], 0, 0
        for _ in range(count):
            try:
                c = Conn(host, port, bind, timeout=5)
            except OSError:
                refused += 1
                continue
            g = c.greeting()
            if g is None or g[:1] == b'\xff':
                refused += 1
            else:
                greeted += 1
                conns.append(c)
        print('greeted=%d refused=%d' % (greeted, refused), flush=True)
        time.sleep(seconds)
        return 0
    c = Conn(host, port)
    if scenario == 'login':
        print('login=%s' % c.login(a[0], a[1]))
        return 0
    if scenario == 'responses':
        outcome = c.login(a[0], a[1], 'test', int(a[2], 0))
        if outcome != 'ok':
            print('login=%s' % outcome)
            return 1
        for sql in a[3:]:
            c.query(sql)
            print('-- %s' % sql)
            for seq, payload in read_response(c):
                print('%d %s' % (seq, payload.hex()))
        return 0
    outcome = c.login(a[0], a[1])
    if outcome != 'ok':
        print('login=%s' % outcome)
        return 1
    if scenario == 'badseq':
        c.query('SELECT 1', seq=5)
        answer = describe(c.read_packet())
        print('answer=%s then=%s' % (answer, describe(c.read_packet())))
    elif scenario == 'emptycmd':
        c.s.sendall(packet(0, b''))
        first = describe(c.read_packet())
        c.query('SELECT 1')
        print('empty=%s next=%s' % (first, describe(c.read_packet())))
    elif scenario == 'halfsend':
        sent, total, wait = int(a[2]), int(a[3]), float(a[4])
        body = b'\x03SELECT 1 /*' + b'x' * (total - 14) + b'*/'
        c.s.sendall(packet(0, body)[:4 + sent])
        took = wait_closed(c, wait)
        print('closed_after=%s' % ('%.1f' % took if took is not None else 'never'))
    elif scenario == 'changeuser':
        user2, pass2, mib = a[2], a[3], int(a[4])
        token = native_token(pass2, c.scramble)
        cu = b'\x11' + user2.encode() + b'\0' + bytes([32]) + b'x' * 32 + b'test\0' + struct.pack('<H', 45)
        cu += b'caching_sha2_password\0'
        big = b'\x03SELECT 1 /*' + b'p' * (mib * 1024 * 1024) + b'*/'
        assert len(big) < 0xffffff, 'MIB must be under 16'
        # The proxy reads all this while it waits for the SLEEP: by the time
        # it turns to the change of user, the rest is already buffered.
        c.query('SELECT SLEEP(1)')
        c.s.sendall(packet(0, cu) + packet(2, token) + packet(0, big))
        time.sleep(1.5)
        c.s.close()
        print('sent=yes')
    else:
        print('unknown scenario %s' % scenario)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
