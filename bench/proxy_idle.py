#!/usr/bin/env python3
"""Idle client connections, then a burst, against a reverse proxy (bench/proxy.sh).

Two steps, each ended by a line on stdout and held until a line on stdin
(or its end of file), so the caller can read the proxy's RSS and count its
upstream connections in between:

1. Opens N connections to 127.0.0.1:PORT one after another, and on each
   sends one keep-alive `GET /` and reads the whole answer before opening
   the next: every connection has been through the proxy's data path once,
   and as only one request is ever in flight the proxy needs one upstream
   connection for all of them. Prints

       idle N

2. Sends a second `GET /` on all N connections at once (every request
   written before any answer is read), then reads every answer: the proxy
   has up to N requests in flight and opens as many upstream connections
   as it cannot serve from its pool, which keeps them once the answers are
   through (up to its pool size). Prints

       burst N

Then closes every connection and exits 0. bench/proxy.sh reads RSS before
step 1, after `idle` and after `burst`: (idle - before) / N is the memory
per idle client connection, and (burst - idle) / (upstream connections
after - before the burst) the memory per pooled upstream connection.

    python3 bench/proxy_idle.py --port 8080 -n 1000

Python 3 standard library only. Exit status 1 with a message on stderr if a
connection or a request fails (the connections opened so far are closed).
"""

import argparse
import resource
import select
import socket
import sys

# Descriptors needed besides the connections (stdio and a few spare).
FD_HEADROOM = 32
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Response:
    """One HTTP/1.1 response with a Content-Length, read incrementally."""

    def __init__(self):
        self.data = b""
        self.need = None  # total bytes of head + body, once the head is in

    def feed(self, chunk):
        """Adds bytes; returns True once the response is whole."""
        self.data += chunk
        if self.need is None and b"\r\n\r\n" in self.data:
            head, _, _ = self.data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            if status != 200:
                raise ConnectionError(f"GET / answered {status}")
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length is None:
                raise ConnectionError("response without Content-Length: %r" % lines[0])
            self.need = len(head) + 4 + length
        if self.need is not None and len(self.data) > self.need:
            raise ConnectionError("more bytes than one response")
        return self.need is not None and len(self.data) == self.need


def read_response(conn):
    response = Response()
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response ended")
        if response.feed(chunk):
            return


def burst(conns, timeout):
    """A request on every connection, then every answer, read as they come."""
    for conn in conns:
        conn.sendall(REQUEST)
    pending = {conn.fileno(): (conn, Response()) for conn in conns}
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending:
        events = poller.poll(timeout * 1000)
        if not events:
            raise ConnectionError(f"{len(pending)} answers missing after {timeout}s")
        for fd, _ in events:
            conn, response = pending[fd]
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the response ended")
            if response.feed(chunk):
                poller.unregister(fd)
                del pending[fd]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=1000, help="connections (default 1000)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.n + FD_HEADROOM
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"error: -n {args.n} needs {need} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    conns = []
    try:
        for _ in range(args.n):
            conn = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append(conn)
            conn.sendall(REQUEST)
            read_response(conn)
        print(f"idle {len(conns)}", flush=True)
        sys.stdin.readline()
        burst(conns, args.timeout)
        print(f"burst {len(conns)}", flush=True)
        sys.stdin.readline()
    except OSError as e:
        sys.stderr.write(f"error: connection {len(conns)} of {args.n}: {e}\n")
        return 1
    finally:
        for conn in conns:
            conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
