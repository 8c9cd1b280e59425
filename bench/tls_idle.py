#!/usr/bin/env python3
"""Holds N idle TLS connections open against an HTTPS server (bench/tls.sh).

Opens N connections to 127.0.0.1:PORT one after another, completes each TLS
handshake (verifying the server against --ca), then sends one keep-alive
`GET /` and reads the whole answer, so that every connection has been
through the server's data path once, as bench/idle_rss.py does for echo
(--no-request: the handshake only). Then prints one line on stdout,

    ready N VERSION CIPHER

and holds every connection idle until stdin reaches end of file (or gets a
line), then closes them and exits 0. bench/tls.sh reads the server's RSS
before starting this client and again after `ready`: (after - before) / N
is the memory per idle TLS connection. It needs no tenk: any server that
answers `GET /` over TLS with a Content-Length will do.

The suite: TLS 1.3 suites cannot be chosen through Python's ssl module, so
bench/tls.sh sets OPENSSL_CONF to a client configuration that allows only
TLS_AES_128_GCM_SHA256 and the groups X25519:P-256; for TLS 1.2 this client
sets ECDHE-ECDSA-AES128-GCM-SHA256 itself (Python's default cipher list
would override the configuration's). The `ready` line says what was
negotiated.

    python3 bench/tls_idle.py --port 8443 --ca ca.pem -n 1000 [--tls 1.2]

Python 3 standard library only. Exit status 1 with a message on stderr if
a handshake or a request fails (the connections opened so far are closed).
"""

import argparse
import resource
import socket
import ssl
import sys

# Descriptors needed besides the connections (stdio and a few spare).
FD_HEADROOM = 32


def read_response(conn):
    """Reads one HTTP/1.1 response with a Content-Length; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ConnectionError("response without Content-Length: %r" % lines[0])
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True, help="CA certificate (PEM) to verify the server")
    ap.add_argument("-n", type=int, default=1000, help="connections (default 1000)")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--no-request", action="store_true", help="handshake only, no GET /")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.n + FD_HEADROOM
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"error: -n {args.n} needs {need} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    ctx = ssl.create_default_context(cafile=args.ca)
    version = ssl.TLSVersion.TLSv1_3 if args.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = version
    ctx.maximum_version = version
    if args.tls == "1.2":
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")

    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    conns = []
    try:
        for i in range(args.n):
            raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
            # The request follows the handshake's last flight at once; with
            # Nagle it would wait for that flight's ACK (about 1 ms each).
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            conns.append(conn)
            if not args.no_request:
                conn.sendall(request)
                status = read_response(conn)
                if status != 200:
                    raise ConnectionError(f"GET / answered {status}")
    except (OSError, ssl.SSLError) as e:
        sys.stderr.write(f"error: connection {len(conns) + 1} of {args.n}: {e}\n")
        for c in conns:
            c.close()
        return 1

    first = conns[0] if conns else None
    cipher = first.cipher()[0] if first else "-"
    tls = first.version() if first else "-"
    print(f"ready {len(conns)} {tls} {cipher}", flush=True)
    sys.stdin.readline()
    for c in conns:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
