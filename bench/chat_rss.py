#!/usr/bin/env python3
"""Memory per queued chat message: does fan-out copy?

Against a running `tenk serve chat` (PID, PORT): STALLED clients join the
room and never read (receive buffers of a few KiB); one sender sends WARM
messages (to fill every kernel buffer between the server and the stalled
clients, so later output waits in the server), then MESSAGES more of SIZE
bytes. The server's RSS before and after those MESSAGES, over how many
messages and (message, recipient) pairs wait, is the memory per queued
message. Shared messages cost one copy per message plus a queue entry per
recipient; copies would cost the line's length per recipient.

Synchronised on the server's answers (`/who` after each batch is answered
after the batch was queued; twice, so the end-of-pass writes of the batch
are done too), never on sleeps. Prints one JSON object.

    bench/chat_rss.py PID PORT [--stalled 50] [--messages 4000] [--size 1000] [--warm 2500]

Run the server with --output-limit-hard 0 --output-limit-soft 0
--write-timeout 0 --idle-timeout 0, or it cuts the stalled clients (which
is the point of those limits, not of this measurement).
"""

import argparse
import json
import socket
import sys


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("pid", type=int)
    p.add_argument("port", type=int)
    p.add_argument("--stalled", type=int, default=50)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--warm", type=int, default=2500)
    a = p.parse_args()

    stalled = []
    for _ in range(a.stalled):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.settimeout(30)
        s.connect(("127.0.0.1", a.port))
        stalled.append(s)
    sender = socket.create_connection(("127.0.0.1", a.port), timeout=30)
    lines = sender.makefile("rb")

    def line():
        got = lines.readline()
        if not got.endswith(b"\n"):
            sys.exit(f"chat_rss: connection closed ({got!r})")
        return got[:-1]

    welcome = line().decode()
    nick = welcome.split(", ")[1].split(";")[0]

    def who():
        sender.sendall(b"/who\n")
        while True:
            got = line()
            if got.startswith(b"* in #"):
                return got.decode()

    def synced():
        who()
        return who()

    members = synced().split(": ", 1)[1].split()
    if len(members) != a.stalled + 1:
        sys.exit(f"chat_rss: {len(members)} members, expected {a.stalled + 1}")
    text = b"x" * a.size + b"\n"

    def send(n):
        for start in range(0, n, 1000):
            sender.sendall(text * min(1000, n - start))

    send(a.warm)
    synced()
    before = rss(a.pid)
    send(a.messages)
    synced()
    after = rss(a.pid)

    delivered = len(f"<{nick}> ".encode()) + len(text)
    growth = after - before
    pairs = a.messages * a.stalled
    print(json.dumps({
        "stalled": a.stalled,
        "messages": a.messages,
        "size": a.size,
        "line_bytes": delivered,
        "rss_before": before,
        "rss_after": after,
        "growth": growth,
        "per_message": growth / a.messages,
        "per_queued_pair": growth / pairs,
        "copied_per_message": delivered * a.stalled,
    }))
    for s in stalled:
        s.close()
    sender.close()


if __name__ == "__main__":
    main()
