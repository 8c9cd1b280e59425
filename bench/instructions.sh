#!/usr/bin/env bash
# User-space instructions per request of the tenk servers, counted by
# callgrind: a figure that repeats exactly for the same binary and inputs,
# whatever else the machine is doing, so a change can be judged to ±1 %
# where CPU-second figures move by several per cent between runs.
#
# Each server runs twice under callgrind, once serving N1 and once N2
# requests from `tenk load` (closed loop, C connections); the figure is
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up, connects and shutdown cancel
# out and only the per-request path remains.
#
# Usage: bench/instructions.sh [echo|http ...]   (default: echo http)
# Env: N1 (default 20000), N2 (default 60000), C (default 10),
#      TENK (default target/release/tenk, built if missing), LOAD (the
#      tenk binary that runs the load; default TENK).
# Prints one line per server: "<server> <instructions per request>".
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-20000}
N2=${N2:-60000}
C=${C:-10}
TENK=${TENK:-target/release/tenk}
# The load tool is a fixed binary when comparing servers: how it paces
# requests changes how many share one epoll_wait, and so the figure.
LOAD=${LOAD:-$TENK}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$TENK" ] || cargo build --release -p tenk >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total instructions of one server run under callgrind serving $2 requests.
count() {
    local server=$1 requests=$2 out="$work/callgrind.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$TENK" serve "$server" --port 0 >"$work/banner" 2>"$work/valgrind.log" &
    local pid=$!
    local addr=""
    for _ in $(seq 1 600); do
        addr=$(grep -o 'listening on [^ ]*' "$work/banner" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { echo "$server did not start under valgrind" >&2; cat "$work/valgrind.log" >&2; exit 1; }
    case $server in
        echo) "$LOAD" load echo "$addr" -c "$C" -n "$requests" --size 64 --json >"$work/load.json" ;;
        http) "$LOAD" load http "http://$addr/" -c "$C" -n "$requests" --json >"$work/load.json" ;;
    esac
    kill -INT "$pid"
    wait "$pid" || true
    python3 - "$work/load.json" "$requests" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
if report["requests"] != want or any(report["errors"].values()):
    sys.exit(f"load run incomplete: {report['requests']} of {want} requests, errors {report['errors']}")
EOF
    grep '^summary:' "$out" | awk '{print $2}'
}

for server in "${@:-echo http}"; do
    for s in $server; do
        low=$(count "$s" "$N1")
        high=$(count "$s" "$N2")
        python3 -c "print('$s', round(($high - $low) / ($N2 - $N1)))"
    done
done
