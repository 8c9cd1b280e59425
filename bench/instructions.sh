#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: a figure that
# repeats exactly for the same binary and inputs, whatever else the machine
# is doing, so a change can be judged to ±1 % where CPU-second figures move
# by several per cent between runs; and, for the same reason, the one
# comparison with the peers that a busy machine cannot spoil (issue 20:
# tenk's user space at most half of tokio's for echo and a quarter of
# nginx's for HTTP).
#
# Each server runs twice under callgrind, once serving N1 and once N2
# requests from `tenk load` (closed loop, C connections); the figure is
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up, connects and shutdown cancel
# out and only the per-request path remains. Only user space is counted:
# the kernel's part of a request (93-97 % of its CPU here) is the same
# syscalls for every server and is not in these figures.
#
# Usage: bench/instructions.sh [SERVER ...]   (default: echo http)
#   echo, http     tenk serve echo (64-byte messages) / http (GET / hello)
#   tokio-echo     the tokio current_thread echo peer (bench/peers)
#   tokio-http     the tokio + httparse HTTP peer
#   nginx          nginx-light, bench/nginx/nginx.conf, one process
#                  (master_process off: the worker is the process counted)
#   peers          all of: echo tokio-echo http tokio-http nginx, then the
#                  ratios tenk/tokio (echo) and tenk/nginx, tenk/tokio (http)
# Env: N1 (default 20000), N2 (default 60000), C (default 10),
#      TENK (default target/release/tenk, built if missing), LOAD (the
#      tenk binary that runs the load; default TENK).
# Prints one line per server: "<server> <instructions per request>".
# The load tool is a fixed binary when comparing servers: how it paces
# requests changes how many share one epoll_wait, and so the figure.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-20000}
N2=${N2:-60000}
C=${C:-10}
TENK=${TENK:-target/release/tenk}
LOAD=${LOAD:-$TENK}
PEERS=bench/target/release
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$TENK" ] || cargo build --release -p tenk >&2

servers=("${@:-echo http}")
[[ ${servers[*]} == peers ]] && servers=(echo tokio-echo http tokio-http nginx)
for s in ${servers[*]}; do
    case $s in
        tokio-*) [ -x "$PEERS/$s" ] || cargo build --release --manifest-path bench/peers/Cargo.toml >&2 ;;
        nginx) command -v nginx >/dev/null || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; } ;;
        echo | http) ;;
        *) echo "unknown server $s (echo, http, tokio-echo, tokio-http, nginx, peers)" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The command that runs server $1 on port $2 (0: its own choice, printed
# in a "listening on ADDR" banner).
server_command() {
    case $1 in
        echo | http) echo "$TENK serve $1 --port $2" ;;
        tokio-*) echo "$PEERS/$1 --port $2 --runtime current" ;;
        nginx)
            local dir="$work/nginx"
            mkdir -p "$dir"
            sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$2|g" -e 's/^master_process on;/master_process off;/' \
                bench/nginx/nginx.conf >"$dir/nginx.conf"
            echo "nginx -p $dir -e $dir/error.log -c $dir/nginx.conf"
            ;;
    esac
}

# The address server $1 listens on once it accepts: from its banner, or
# (nginx prints none) the fixed port $2 once a connect succeeds.
wait_listening() {
    local server=$1 port=$2 addr=""
    for _ in $(seq 1 600); do
        if [[ $port == 0 ]]; then
            addr=$(grep -o 'listening on [^ ]*' "$work/banner" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
        elif python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
            addr=127.0.0.1:$port
        fi
        [ -n "$addr" ] && { echo "$addr"; return; }
        sleep 0.05
    done
    echo "$server did not start under valgrind" >&2
    cat "$work/valgrind.log" >&2
    exit 1
}

# Total instructions of one server run under callgrind serving $2 requests.
count() {
    local server=$1 requests=$2 out="$work/callgrind.$1.$2" port=0
    [[ $server == nginx ]] && port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # shellcheck disable=SC2046 # the command is words on purpose
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        $(server_command "$server" "$port") >"$work/banner" 2>"$work/valgrind.log" &
    local pid=$!
    local addr
    addr=$(wait_listening "$server" "$port")
    case $server in
        *echo) "$LOAD" load echo "$addr" -c "$C" -n "$requests" --size 64 --json >"$work/load.json" ;;
        *) "$LOAD" load http "http://$addr/" -c "$C" -n "$requests" --json >"$work/load.json" ;;
    esac
    # nginx stops gracefully on SIGQUIT; SIGINT is its fast stop, which
    # still lets callgrind write its counts.
    kill -INT "$pid"
    wait "$pid" || true
    python3 - "$work/load.json" "$requests" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
if report["requests"] != want or any(report["errors"].values()):
    sys.exit(f"load run incomplete: {report['requests']} of {want} requests, errors {report['errors']}")
PY
    grep '^summary:' "$out" | awk '{print $2}'
}

declare -A per_request
for s in ${servers[*]}; do
    low=$(count "$s" "$N1")
    high=$(count "$s" "$N2")
    per_request[$s]=$(python3 -c "print(round(($high - $low) / ($N2 - $N1)))")
    echo "$s ${per_request[$s]}"
done

# ratio A B: "A/B = x" when both were measured.
ratio() {
    [[ -n ${per_request[$1]:-} && -n ${per_request[$2]:-} ]] || return 0
    python3 -c "print('$1/$2 = %.3f' % (${per_request[$1]} / ${per_request[$2]}))"
}
ratio echo tokio-echo
ratio http nginx
ratio http tokio-http
