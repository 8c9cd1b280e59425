#!/usr/bin/env python3
"""Connections that end abruptly, for bench/memcheck.sh.

Opens -n connections to 127.0.0.1:PORT and ends each one badly, in turn:
a partial request then a reset (SO_LINGER 0), a full request whose answer
is never read then a reset, a partial request then a plain close (FIN),
and a connect closed at once. Every connection is opened before any is
ended, so the server holds them all at once. What the server does with
each is its business: this only exercises its error and close paths (the
leaks memcheck looks for hide there). Exit 0 once all are closed, 1 when
a connect fails.

    python3 bench/abrupt.py --port 8080 --kind http -n 40
"""

import argparse
import socket
import struct
import sys
import time

PARTIAL = {
    "echo": b"half a message with no",
    "http": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ",
    "chat": b"/nick memcheck\n/join room0\nhalf a li",
    # A TLS record header announcing a ClientHello that never comes.
    "tls": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
}
FULL = {
    "echo": b"x" * 64,
    "http": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 8,
    "chat": b"/nick m\n/join room0\nhello\n",
    "tls": b"\x16\x03\x01\x00\x05hello",
}


def reset(sock):
    # SO_LINGER on with a zero timeout: close() sends RST, not FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", choices=sorted(PARTIAL), required=True)
    ap.add_argument("-n", type=int, default=40)
    args = ap.parse_args()
    socks = []
    try:
        for _ in range(args.n):
            socks.append(socket.create_connection(("127.0.0.1", args.port), timeout=30))
    except OSError as e:
        print(f"abrupt.py: connect {len(socks) + 1} failed: {e}", file=sys.stderr)
        return 1
    for i, s in enumerate(socks):
        way = i % 4
        if way in (0, 2):
            s.sendall(PARTIAL[args.kind])
        elif way == 1:
            s.sendall(FULL[args.kind])
    # Let the server read what was sent before the connections go.
    time.sleep(0.5)
    for i, s in enumerate(socks):
        if i % 4 in (0, 1):
            reset(s)
        else:
            s.close()
    print(f"abrupt.py: {args.n} connections ended abruptly", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
