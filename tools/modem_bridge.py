#!/usr/bin/env python3
"""The host side of the emulated board's UART "modem" (src/port/cortex-m/modem.h).

QEMU carries the board's first CMSDK UART over `-serial tcp:127.0.0.1:PORT` to this bridge,
which listens on that port, answers the MCU's framed requests (open, write, read, close, time
of day, and the emulation-only entropy request) and opens the real TCP connections. It only
moves bytes: TLS, MQTT, DPS and the hub session run on the MCU. Loopback only: a host name
that does not resolve to a loopback address is refused (result DNS), `*.localhost` is
127.0.0.1 (RFC 6761). It keeps listening after the emulator disconnects, so a rebooted
board reconnects to the same bridge.

    tools/modem_bridge.py --port 0 --port-file bridge.port [--log bridge.log]
"""
import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

OK, REFUSED, DNS, TIMEOUT, UNREACHABLE, CLOSED, RESET, ERROR, NO_TIME = range(9)
FRAME_MAX = 1024
CHUNK = 512
ENTROPY_MAX = 256
CONNECT_TIMEOUT_S = 10


def log(args, msg):
    if args.log:
        with open(args.log, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


def loopback_address(host, port):
    """The first loopback address of host, or None (the bridge dials nothing else)."""
    if host == "localhost" or host.endswith(".localhost"):
        return ("127.0.0.1", port, socket.AF_INET)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return None
    for family, _, _, _, addr in infos:
        if ipaddress.ip_address(addr[0].split("%")[0]).is_loopback:
            return (addr[0], port, family)
    return None


def open_link(host, port):
    addr = loopback_address(host, port)
    if addr is None:
        return None, DNS
    s = socket.socket(addr[2], socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT_S)
    try:
        s.connect(addr[:2])
    except ConnectionRefusedError:
        s.close()
        return None, REFUSED
    except socket.timeout:
        s.close()
        return None, TIMEOUT
    except OSError:
        s.close()
        return None, UNREACHABLE
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(True)
    return s, OK


class Board:
    """One emulator connection: reads requests, answers each with one reply."""

    def __init__(self, conn, args):
        self.conn, self.args = conn, args
        self.links = {}
        self.buf = b""
        self.stats = {"requests": 0, "up": 0, "down": 0, "entropy": 0}

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self, kind, seq, payload):
        self.conn.sendall(struct.pack(">BBH", ord(kind.lower()), seq, len(payload)) + payload)

    def serve(self):
        while True:
            kind, seq, n = struct.unpack(">BBH", self.read_exact(4))
            payload = self.read_exact(n)
            self.stats["requests"] += 1
            kind = chr(kind)
            self.reply(kind, seq, self.handle(kind, payload))

    def handle(self, kind, p):
        if kind == "O" and len(p) >= 4:
            link, port = p[0], struct.unpack(">H", p[1:3])[0]
            host = p[3:].decode("ascii", "replace")
            self.close(link)
            s, res = open_link(host, port)
            if s:
                self.links[link] = s
            log(self.args, f"open {link} {host}:{port} -> {res}")
            return bytes([link, res])
        if kind == "W" and len(p) >= 1:
            link, data = p[0], p[1:]
            s = self.links.get(link)
            if s is None:
                return bytes([link, CLOSED]) + b"\0\0"
            try:
                s.sendall(data)
            except OSError:
                self.close(link)
                return bytes([link, RESET]) + b"\0\0"
            self.stats["up"] += len(data)
            return bytes([link, OK]) + struct.pack(">H", len(data))
        if kind == "R" and len(p) == 5:
            link, want, wait_ms = p[0], *struct.unpack(">HH", p[1:5])
            s = self.links.get(link)
            if s is None:
                return bytes([link, CLOSED])
            ready, _, _ = select.select([s], [], [], wait_ms / 1000)
            if not ready:
                return bytes([link, OK])
            try:
                data = s.recv(min(want, CHUNK))
            except ConnectionResetError:
                self.close(link)
                return bytes([link, RESET])
            if not data:
                self.close(link)
                return bytes([link, CLOSED])
            self.stats["down"] += len(data)
            return bytes([link, OK]) + data
        if kind == "C" and len(p) == 1:
            self.close(p[0])
            log(self.args, f"close {p[0]}")
            return bytes([p[0], OK])
        if kind == "T":
            if self.args.no_time:
                return bytes([NO_TIME]) + bytes(8)
            return bytes([OK]) + struct.pack(">q", time.time_ns() // 1_000_000)
        if kind == "X" and len(p) == 2:
            # EMULATION ONLY: the emulated board has no TRNG. A real modem has no such command.
            n = min(struct.unpack(">H", p)[0], ENTROPY_MAX)
            self.stats["entropy"] += n
            return bytes([OK]) + os.urandom(n)
        log(self.args, f"bad request {kind!r} ({len(p)} bytes)")
        return bytes([ERROR])

    def close(self, link):
        s = self.links.pop(link, None)
        if s:
            s.close()

    def finish(self):
        for link in list(self.links):
            self.close(link)
        log(self.args, f"board gone: {self.stats}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port for QEMU (0: any free port)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--log", help="append a line per connection event here")
    ap.add_argument("--no-time", action="store_true", help="the module has no time of day")
    args = ap.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(1)
    port = srv.getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"modem bridge listening on 127.0.0.1:{port}", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log(args, "board connected")
        board = Board(conn, args)
        try:
            board.serve()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            board.finish()
            conn.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
