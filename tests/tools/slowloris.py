#!/usr/bin/env python3
"""Slow-loris load for scripts/soak: keeps N connections open to HOST:PORT, each sending an
unfinished request header one small line at a time (never the blank line that ends it), and
reconnects whenever the server closes one (its request timeout answers 408, then closes).

    slowloris.py HOST PORT [--connections N] [--interval S] [--duration S] [--status FILE]

Runs until --duration passes or SIGTERM/SIGINT, then prints one line of counters:
    slowloris: opened=... closed_by_server=... answered_408=... other_answers=... open_max=...
--status FILE is rewritten about once a second with "open=N opened=N ..." so that a caller can
wait for the load to be in place. Python 3 standard library only (selectors, non-blocking
sockets, one thread); raises RLIMIT_NOFILE for itself as far as the hard limit allows.
"""

import argparse
import errno
import os
import resource
import selectors
import signal
import socket
import sys
import time

REQUEST_START = b"GET /healthz HTTP/1.1\r\nHost: soak\r\n"


class Conn:
    __slots__ = ("sock", "sent_start", "next_send", "got", "connected")

    def __init__(self, sock):
        self.sock = sock
        self.sent_start = False
        self.next_send = 0.0
        self.got = b""
        self.connected = False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--interval", type=float, default=1.0,
                    help="seconds between the header bytes trickled on one connection")
    ap.add_argument("--duration", type=float, default=0, help="0: until signalled")
    ap.add_argument("--status", default="")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    stop = [False]

    def on_signal(*_):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sel = selectors.DefaultSelector()
    conns = {}
    counters = {"opened": 0, "closed_by_server": 0, "answered_408": 0, "other_answers": 0,
                "connect_errors": 0, "open_max": 0}
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET

    def open_one(now):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((args.host, args.port))
        except BlockingIOError:
            pass
        except OSError:
            counters["connect_errors"] += 1
            s.close()
            return
        c = Conn(s)
        # Spread the trickle over the interval so that the server sees a steady stream.
        c.next_send = now + (counters["opened"] % 97) / 97.0 * args.interval
        conns[s.fileno()] = c
        sel.register(s, selectors.EVENT_READ, c)
        counters["opened"] += 1

    def drop(c, by_server):
        if by_server:
            counters["closed_by_server"] += 1
            if c.got.startswith(b"HTTP/1.1 408") or c.got.startswith(b"HTTP/1.0 408"):
                counters["answered_408"] += 1
            elif c.got:
                counters["other_answers"] += 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        conns.pop(c.sock.fileno(), None)
        c.sock.close()

    def write_status():
        if not args.status:
            return
        tmp = args.status + ".tmp"
        with open(tmp, "w") as f:
            f.write("open=%d " % len(conns) +
                    " ".join("%s=%d" % kv for kv in sorted(counters.items())) + "\n")
        os.replace(tmp, args.status)

    start = time.monotonic()
    last_status = 0.0
    line = 0
    while not stop[0]:
        now = time.monotonic()
        if args.duration and now - start >= args.duration:
            break
        # Top up, a bounded number per round so that the accept queue is not flooded at once.
        for _ in range(min(200, args.connections - len(conns))):
            open_one(now)
        counters["open_max"] = max(counters["open_max"], len(conns))
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                data = c.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                c.got += data[:64]
                continue
            drop(c, True)
        now = time.monotonic()
        for c in list(conns.values()):
            if c.next_send > now:
                continue
            c.next_send = now + args.interval
            line += 1
            payload = REQUEST_START if not c.sent_start else b"X-a%d: b\r\n" % (line % 10)
            try:
                c.sock.send(payload)
                c.sent_start = True
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                if e.errno in (errno.ENOTCONN,):
                    continue  # the connect has not completed yet
                drop(c, True)
        if now - last_status >= 1.0:
            write_status()
            last_status = now
    write_status()
    for c in list(conns.values()):
        drop(c, False)
    print("slowloris: " + " ".join("%s=%d" % kv for kv in sorted(counters.items())), flush=True)


if __name__ == "__main__":
    sys.exit(main())
