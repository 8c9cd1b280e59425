#!/usr/bin/env bash
# Soak: 10,000 connections churning against `tenk serve echo` for a set
# time; the server's descriptor count and resident memory must end where
# they began. Not part of CI.
#
# Usage (from anywhere, after `cargo build --release`):
#
#     bench/soak.sh [SECONDS [CONNECTIONS]]        # defaults: 60, 10000
#     RUN=5s TRIGGER=level bench/soak.sh 300
#
# What it does:
#   1. Starts target/release/tenk serve echo --port 0 and reads the port
#      from its banner.
#   2. Warm-up: one round of the churn below, so the server's connection
#      table and buffer pool reach the size 10,000 connections need. That
#      capacity is kept on purpose (a high-water mark, as nginx's and
#      Redis's), so memory is compared with the level after the warm-up;
#      descriptors are compared with the count before it, exactly.
#   3. Churn until SECONDS have passed: `tenk load echo -c CONNECTIONS -d RUN`
#      again and again. Each run connects every connection, runs closed-loop
#      echo traffic on all of them for RUN (every reply checked byte for
#      byte), and closes them all; the next run connects afresh. Every
#      MONITOR seconds the server's fd count and RSS are printed.
#   4. Once the last run has closed its connections: the fd count must
#      equal the starting count and RSS must be within RSS_MARGIN_KB of the
#      post-warm-up level (growth only; giving memory back is fine). Then
#      SIGINT: the server must exit 0 with its graceful summary.
#
# Exit status: 0 when every check passed and every load run reported no
# errors; 1 otherwise. Environment knobs: RUN (default 3s), TRIGGER (edge),
# MONITOR (5), RSS_MARGIN_KB (2048), BIN (target/release/tenk).

set -u

SECONDS_WANTED=${1:-60}
CONNS=${2:-10000}
RUN=${RUN:-3s}
TRIGGER=${TRIGGER:-edge}
MONITOR=${MONITOR:-5}
RSS_MARGIN_KB=${RSS_MARGIN_KB:-2048}
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$REPO/target/release/tenk}

if [[ ! -x $BIN ]]; then
    echo "soak: $BIN not found; run cargo build --release first" >&2
    exit 1
fi

work=$(mktemp -d)
server_pid=
monitor_pid=
cleanup() {
    [[ -n $monitor_pid ]] && kill "$monitor_pid" 2>/dev/null
    [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fds() { ls "/proc/$server_pid/fd" | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

"$BIN" serve echo --port 0 --trigger "$TRIGGER" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q ' listening on ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
banner=$(head -n 1 "$work/server.out")
addr=$(sed -n 's/.* listening on \([^ ]*\) .*/\1/p' <<<"$banner")
if [[ -z $addr ]]; then
    echo "soak: no banner from the server" >&2
    cat "$work/server.err" >&2
    exit 1
fi
echo "soak: $banner"
echo "soak: pid $server_pid, $CONNS connections per run, runs of $RUN, for ${SECONDS_WANTED}s"

# The server's fd count, read until it stops changing at `want` (or the
# limit passes): connections closed by the client take a moment to be
# seen closed.
settle_fds() {
    local want=$1
    for _ in $(seq 200); do
        [[ $(fds) -eq $want ]] && return 0
        sleep 0.05
    done
    return 1
}

start_fds=$(fds)
start_rss=$(rss_kb)
echo "soak: at start: $start_fds fds, RSS $start_rss kB"

runs=0
failed_runs=0
churn_once() {
    runs=$((runs + 1))
    if ! "$BIN" load echo "$addr" -c "$CONNS" -d "$RUN" >"$work/load.$runs" 2>&1; then
        failed_runs=$((failed_runs + 1))
        echo "soak: load run $runs failed:" >&2
        tail -n 20 "$work/load.$runs" >&2
    fi
}

churn_once
settle_fds "$start_fds"
warm_fds=$(fds)
warm_rss=$(rss_kb)
echo "soak: after warm-up (1 run of $CONNS): $warm_fds fds, RSS $warm_rss kB"

began=$(now)
(
    while sleep "$MONITOR"; do
        printf 'soak: %4ss  fds %6d  RSS %7d kB\n' "$(elapsed "$began")" "$(fds)" "$(rss_kb)"
    done
) &
monitor_pid=$!

while (($(elapsed "$began") < SECONDS_WANTED)); do
    churn_once
done

kill "$monitor_pid" 2>/dev/null
wait "$monitor_pid" 2>/dev/null
monitor_pid=

ok=1
if settle_fds "$start_fds"; then
    end_fds=$(fds)
else
    end_fds=$(fds)
    ok=0
fi
end_rss=$(rss_kb)
connections=$(((runs - 1) * CONNS))
echo "soak: $((runs - 1)) runs after the warm-up ($connections connections opened and closed) in $(elapsed "$began")s"
echo "soak: last run:"
grep -E '^ *(connections|requests|errors) ' "$work/load.$runs" | sed 's/^ */soak:   /'
echo "soak: at end: $end_fds fds (start $start_fds), RSS $end_rss kB (after warm-up $warm_rss kB, margin $RSS_MARGIN_KB kB)"
if ((end_fds != start_fds)); then
    echo "soak: FAIL: descriptors did not return to the start ($end_fds != $start_fds)" >&2
    ok=0
fi
if ((end_rss > warm_rss + RSS_MARGIN_KB)); then
    echo "soak: FAIL: RSS grew by $((end_rss - warm_rss)) kB over the soak" >&2
    ok=0
fi
if ((failed_runs > 0)); then
    echo "soak: FAIL: $failed_runs of $runs load runs reported errors" >&2
    ok=0
fi

kill -INT "$server_pid"
wait "$server_pid"
status=$?
server_pid=
summary=$(grep '^tenk echo ' "$work/server.out" | tail -n 1)
echo "soak: server exit $status: $summary"
if ((status != 0)); then
    echo "soak: FAIL: server exit status $status" >&2
    ok=0
fi

if ((ok)); then
    echo "soak: PASS"
    exit 0
fi
echo "soak: FAIL"
exit 1
