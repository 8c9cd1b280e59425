#!/usr/bin/env python3
"""How often this machine takes a core away: a loop that only reads the
clock, reporting every gap longer than 200 µs between two reads.

    taskset -c 0 python3 bench/stalls.py 10     # 10 s on CPU 0
    taskset -c 1 python3 bench/stalls.py 10

On an idle machine any such gap is time the thread did not run: the
hypervisor or the kernel (softirqs, kdamond) had the core. A server and its
load tool lose the same time, so every corrected latency at p99 and above
has these gaps as its floor (docs/benchmarks.md §17). One iteration of the
loop costs well under a microsecond, far below the 200 µs threshold.
"""
import sys
import time

THRESHOLD_NS = 200_000


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    clock = time.perf_counter_ns
    end = clock() + int(seconds * 1e9)
    last = clock()
    gaps = []
    while last < end:
        now = clock()
        if now - last > THRESHOLD_NS:
            gaps.append(now - last)
        last = now
    gaps.sort()
    largest = [gap // 1000 for gap in gaps[-8:]]
    print(
        f"{len(gaps)} gaps > {THRESHOLD_NS // 1000} us in {seconds:.0f} s; "
        f"largest (us): {largest}; total stalled {sum(gaps) / 1e6:.1f} ms"
    )


if __name__ == "__main__":
    main()
