#!/usr/bin/env python3
"""The gap between a server's CPU per request and the syscall floor, split.

Issue 20's first goal: server CPU per request within 10 % of the recv+send
floor measured by the floor probe in the same run (echo at 100, 1,000 and
10,000 connections; HTTP hello at 100 and 1,000), "the gap split into user
time, extra syscalls and wake-ups". This reads what echo.sh / http.sh and
the floor probe already wrote and prints that split as a markdown table:

    bench/gap.py results/floor.csv results/echo.csv results/echo-why.csv [CONNS ...]

- floor: floor_rt_64 of floor.csv, one recv + one send of 64 bytes and a
  64th of an epoll_wait returning 64 events (the probe's ping-pong/2 plus
  wait(64)/64), all on one core with no sleep.
- server us/req: 1e6 / the cell's median requests per server CPU-second
  (pipeline 1), user + kernel.
- user: that times the cell's median user share of utime + stime.
- extra syscalls: from the why run's syscall counts per request, each
  priced at the floor probe's cost for it: epoll_ctl (MOD), recv and send
  beyond one each, and epoll_wait calls beyond the floor's 1/64 (priced as
  a wait returning one event).
- across cores: what the same send + recv cost more when the socket's
  other end lives on the other core (floor.csv's pingpong_cross_awake,
  both ends polling so nobody sleeps, minus the one-core pair): cache lines
  of the socket moving between cores. A real client is on the other core.
- sleeps and the rest: what is left, the kernel's work that no probe
  prices: going idle in epoll_wait and being woken (wake-ups per request
  beside it), waking the client, softirq.

The awake cross-core pair is also printed as a second floor ("× across"):
the cheapest a request can be with the client on the other core. A
negative "sleeps and the rest" means the server paid less for the
cross-core part than the probe's one message per poll (several requests
per wake-up keep the socket's lines warmer).

The why runs are separate runs under `perf stat` (slower), so their counts
per request are used, never their rates.
"""

import csv
import sys


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__.split("\n\n")[2])
    floor_path, summary_path, why_path = argv[1:4]
    wanted = {int(c) for c in argv[4:]}
    # The operation column may hold a comma (floor.sh does not quote it):
    # the key is the first field, the median the third from the end.
    with open(floor_path) as f:
        floor = {
            parts[0]: float(parts[-3])
            for parts in (line.rstrip("\n").split(",") for line in f.readlines()[1:])
        }
    for key in ("floor_rt_64", "ctl_mod", "recv", "send", "wait1"):
        if key not in floor:
            sys.exit(f"{floor_path} has no {key} row: rerun bench/floor.sh")
    floor_us = floor["floor_rt_64"] / 1000
    cross_us = floor.get("pingpong_cross_awake")
    cross_us = None if cross_us is None else cross_us / 1000 + floor["wait64"] / 64 / 1000
    why = {
        (r["client"], r["server"], r["conns"]): r
        for r in rows(why_path)
        if r["pipeline"] == "1"
    }
    print(
        f"Server CPU per request against the syscall floor ({floor_us:.2f} µs: "
        "recv + send of 64 B and 1/64 of a 64-event epoll_wait, one core, no sleep), "
        "pipeline 1, goal ≤ 1.10× the floor; the gap split (µs per request):"
    )
    print()
    if cross_us is not None:
        print(
            f"With the client on the other core and nobody sleeping, the same calls cost "
            f"{cross_us:.2f} µs (× across)."
        )
    print()
    print(
        "| client | server | conns | server µs/req | × floor | goal | × across | user "
        "| extra syscalls | across cores | sleeps and the rest | epoll_wait per req |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows(summary_path):
        if r["pipeline"] != "1" or (wanted and int(r["conns"]) not in wanted):
            continue
        per_cpu = num(r["per_cpu_median"])
        share = num(r["user_share_median"])
        if not per_cpu or share is None:
            continue
        total = 1e6 / per_cpu
        user = total * share
        w = why.get((r["client"], r["server"], r["conns"]))
        across = None if cross_us is None else cross_us - floor_us
        if w is None:
            extra = rest = None
            waits = "-"
        else:
            wait = float(w["wait_per_req"])
            extra = (
                float(w["ctl_per_req"]) * floor["ctl_mod"]
                + max(0.0, float(w["recv_per_req"]) - 1) * floor["recv"]
                + max(0.0, float(w["send_per_req"]) - 1) * floor["send"]
                + max(0.0, wait - 1 / 64) * floor["wait1"]
            ) / 1000
            rest = total - floor_us - user - extra - (across or 0)
            waits = f"{wait:.3f}"
        ratio = total / floor_us
        verdict = "met" if ratio <= 1.10 else f"missed by {ratio / 1.10 - 1:.0%}"

        def fmt(v):
            return "-" if v is None else f"{v:.2f}"

        vs_across = "-" if cross_us is None else f"{total / cross_us:.2f}×"
        print(
            f"| {r['client']} | {r['server']} | {r['conns']} | {total:.2f} | {ratio:.2f}× "
            f"| {verdict} | {vs_across} | {user:.2f} | {fmt(extra)} | {fmt(across)} "
            f"| {fmt(rest)} | {waits} |"
        )


if __name__ == "__main__":
    main(sys.argv)
