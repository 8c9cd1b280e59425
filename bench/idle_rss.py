#!/usr/bin/env python3
"""Resident memory and CPU of idle connections on `tenk serve echo`.

Starts the release binary on port 0, reads the port from its banner, and
records the server's VmRSS (from /proc/PID/status) before and after opening
N idle connections. Every connection sends one byte and reads the echo, so it
is fully established, accepted, registered with epoll and has been through
the data path (read -> on_data -> send) once before it goes quiet. Then the
connections sit idle and the server's CPU ticks (utime + stime from
/proc/PID/stat) and context switches must not move: an idle reactor makes no
wake-ups. Finally the server gets SIGINT and must exit 0 after a graceful
drain.

What VmRSS does and does not include: it counts the server's own user-space
memory (the connection slab, the epoll event vector, pooled buffers, heap
growth) but not kernel memory: socket structures, socket buffers and epoll's
per-registration `epitem` live in kernel slabs and are not charged to RSS.
The script prints the system-wide kernel Slab growth as well, for context;
it covers both ends of every loopback connection and anything else the
machine did meanwhile, so it is indicative only.

Usage (from the repository root, after `cargo build --release`):

    python3 bench/idle_rss.py                    # N=10000, edge mode
    python3 bench/idle_rss.py -n 10000 --trigger level --idle 5

Python 3 standard library only. Exit status 0 when every check passed:
each echo came back, the idle server used no CPU ticks, and it exited 0.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(REPO, "target", "release", "tenk")
BANNER = re.compile(r"listening on (\S+):(\d+) ")
# Descriptors the script needs besides the connections (stdio, pipes, ...).
FD_HEADROOM = 64


def status_field(pid, field):
    """A numeric field of /proc/PID/status (VmRSS etc. are in KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_ticks(pid):
    """utime + stime of /proc/PID/stat (fields 14 and 15), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; it ends at the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def ctx_switches(pid):
    return status_field(pid, "voluntary_ctxt_switches") + status_field(
        pid, "nonvoluntary_ctxt_switches"
    )


def meminfo_kib(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def snapshot(pid):
    return {
        "VmRSS": status_field(pid, "VmRSS"),
        "RssAnon": status_field(pid, "RssAnon"),
        "RssFile": status_field(pid, "RssFile"),
        "Slab": meminfo_kib("Slab"),
    }


def read_banner(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise SystemExit(f"no banner from the server within {timeout}s")
    line = proc.stdout.readline().decode(errors="replace").strip()
    match = BANNER.search(line)
    if not match:
        raise SystemExit(f"unexpected banner: {line!r}")
    return line, match.group(1), int(match.group(2))


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(
                f"RLIMIT_NOFILE hard limit {hard} is below the {needed} "
                f"descriptors needed for -n {needed - FD_HEADROOM}"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def open_connections(host, port, n):
    conns = []
    for i in range(n):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.settimeout(10)
        try:
            s.connect((host, port))
        except OSError as e:
            raise SystemExit(f"connect #{i} failed: {e}")
        conns.append(s)
    return conns


def echo_once(conns):
    """One byte out on every connection, then its echo back on every one."""
    for s in conns:
        s.sendall(b"x")
    for i, s in enumerate(conns):
        got = s.recv(1)
        if got != b"x":
            raise SystemExit(f"connection #{i}: expected b'x', got {got!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="idle connections")
    parser.add_argument("--binary", default=DEFAULT_BINARY)
    parser.add_argument("--trigger", default="edge", choices=["edge", "level", "oneshot"])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle for the CPU check")
    args = parser.parse_args()

    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} not found: run `cargo build --release` first")
    soft, hard = raise_nofile(args.n + FD_HEADROOM)

    print(f"date:     {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"machine:  nproc {os.cpu_count()}, kernel {platform.release()}, {platform.machine()}")
    print(f"client:   RLIMIT_NOFILE {soft}/{hard}, python {platform.python_version()}")

    command = [args.binary, "serve", "echo", "--port", "0", "--trigger", args.trigger]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    conns = []
    try:
        banner, host, port = read_banner(proc, timeout=10)
        pid = proc.pid
        print(f"server:   {' '.join(command[1:])}  (pid {pid})")
        print(f"banner:   {banner}")

        # Warm-up: one connection through accept, read, send and close, so
        # one-time costs (code pages faulted in, the first page of the
        # scratch buffer and of the event vector) land in the baseline and
        # not in the per-connection figure.
        warm = open_connections(host, port, 1)
        echo_once(warm)
        warm[0].close()
        time.sleep(0.2)

        before = snapshot(pid)
        started = time.monotonic()
        conns = open_connections(host, port, args.n)
        echo_once(conns)
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # let the last accepts and echoes settle
        after = snapshot(pid)
        print(f"opened:   {args.n} connections, one-byte echo on each, in {elapsed:.1f}s")

        for field in ("VmRSS", "RssAnon", "RssFile"):
            delta = after[field] - before[field]
            print(
                f"{field + ':':9} {before[field]:>7} KiB -> {after[field]:>7} KiB "
                f"(+{delta} KiB, {delta * 1024 / args.n:.0f} bytes/connection)"
            )
        per_conn = (after["VmRSS"] - before["VmRSS"]) * 1024 / args.n
        slab = (after["Slab"] - before["Slab"]) * 1024 / args.n
        print(
            f"kernel:   system-wide Slab +{after['Slab'] - before['Slab']} KiB "
            f"(~{slab:.0f} bytes/connection, both loopback ends; not in RSS)"
        )
        print(f"RESULT:   {per_conn:.0f} bytes of server RSS per idle connection")

        ticks0, switches0 = cpu_ticks(pid), ctx_switches(pid)
        time.sleep(args.idle)
        ticks1, switches1 = cpu_ticks(pid), ctx_switches(pid)
        idle_ok = ticks1 == ticks0
        print(
            f"idle:     {args.idle:.0f}s with {args.n} idle connections: "
            f"{ticks1 - ticks0} CPU ticks, {switches1 - switches0} context switches "
            f"({'OK' if idle_ok else 'FAIL: the idle server used CPU'})"
        )

        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise SystemExit("server did not exit within 15s of SIGINT")
        summary = proc.stdout.read().decode(errors="replace").strip()
        print(f"summary:  {summary}")
        print(f"exit:     {code} ({'OK' if code == 0 else 'FAIL: expected 0'})")
        return 0 if (idle_ok and code == 0) else 1
    finally:
        for s in conns:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
