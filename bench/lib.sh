# Shared helpers for the bench scripts: sourced, never run.
# shellcheck disable=SC2034 # M_*, S_*, PEERS, ... are for the scripts
#
# Method (docs/benchmarks.md): the server runs pinned to one core
# (SERVER_CPU, default 0) and the load tool to the other (LOAD_CPU,
# default 1); every round starts a fresh server; the servers of a comparison
# alternate inside each round; the server's CPU time (its threads' exact
# runtime from /proc/PID/task/*/schedstat, with utime + stime from
# /proc/PID/stat as a cross-check) is sampled during the run and read off
# over exactly the load tool's measured window; each figure is the median of ROUNDS rounds
# with its min-max spread.
#
# Environment: ROUNDS (5), DURATION (10s), WARMUP (1s), SERVER_CPU (0),
# LOAD_CPU (1), RESULTS (bench/results), TENK (a tenk binary to measure
# instead of building the working tree's target/release/tenk; TENK_REV
# names its revision in the headers).

set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
RESULTS=${RESULTS:-$BENCH/results}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
if [[ -n ${TENK:-} ]]; then
    TENK_GIVEN=1
    TENK_REV=${TENK_REV:-$TENK}
else
    TENK=$ROOT/target/release/tenk
    TENK_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
fi
PEERS=$BENCH/target/release
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$RESULTS/logs"
# Servers and the load tool hold up to 10,000 descriptors each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null || die "$cmd is required (apt-get install -y $cmd)"
    done
}
need taskset jq awk

# ---- builds ---------------------------------------------------------------

build_tenk() {
    [[ -z ${TENK_GIVEN:-} ]] || return 0
    (cd "$ROOT" && cargo build --release --quiet -p tenk) || die "building tenk failed"
}

# build_bench peers|probes|chart: each is its own small workspace under
# bench/, sharing bench/target so the scripts find every binary in one place.
build_bench() {
    cargo build --release --quiet --manifest-path "$BENCH/$1/Cargo.toml" \
        --target-dir "$BENCH/target" || die "building bench/$1 failed"
}

# ---- the machine ------------------------------------------------------------

machine() {
    local model
    model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    printf '%s cores, Linux %s, %s; %s' "$(nproc)" "$(uname -r)" "$model" "$(date -u '+%Y-%m-%d %H:%M UTC')"
}

# header TITLE [probe]: the common header of every table (a probe has
# trials, not timed rounds against a server).
header() {
    printf '# %s\n' "$1"
    printf '# machine: %s\n' "$(machine)"
    if [[ ${2:-} == probe ]]; then
        printf '# method: pinned to CPU %s; ROUNDS=%s trials\n' "$SERVER_CPU" "$ROUNDS"
    else
        printf '# method: server on CPU %s, load on CPU %s; ROUNDS=%s DURATION=%s WARMUP=%s\n' \
            "$SERVER_CPU" "$LOAD_CPU" "$ROUNDS" "$DURATION" "$WARMUP"
        printf '# tenk: %s\n' "$TENK_REV"
    fi
}

# ---- servers ------------------------------------------------------------------

# start_server LOG CMD...: starts CMD pinned to SERVER_CPU, waits for its
# banner (`... listening on HOST:PORT ...`) and sets SERVER_PID, SERVER_PORT.
start_server() {
    local logfile=$1
    shift
    mkdir -p "$(dirname "$logfile")"
    # Created here: the child opens it only when it gets to run, and a
    # busy machine can let the first look below come before that.
    : >"$logfile"
    taskset -c "$SERVER_CPU" "$@" >"$logfile" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=
    local i
    for i in $(seq 100); do
        SERVER_PORT=$(sed -n 's/.* listening on .*:\([0-9][0-9]*\) .*/\1/p' "$logfile" | head -1 || true)
        [[ -n $SERVER_PORT ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start: $(cat "$logfile")"
        sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    die "no banner from the server after 5 s: $(cat "$logfile")"
}

# stop_server: SIGINT (graceful: tenk prints its summary), SIGKILL after 15 s.
stop_server() {
    [[ -n ${SERVER_PID:-} ]] || return 0
    kill -INT "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 150); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "server $SERVER_PID did not stop in 15 s; killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# A free loopback port (for servers that cannot be given port 0).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- CPU time -------------------------------------------------------------------

# read_ticks PID: sets TICKS to utime + stime of every thread of PID, in
# clock ticks, without forking; fails once PID is gone.
read_ticks() {
    local line rest
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    rest=${line##*) } # fields from 3 (state) on; comm may hold spaces
    # shellcheck disable=SC2086
    set -- $rest
    TICKS=$((${12} + ${13}))
    UTICKS=${12}
}

# read_runtime PID: sets RUNTIME_NS to the CPU time of every thread of PID
# in ns, as the scheduler accounts it (/proc/PID/task/*/schedstat, first
# field: sum_exec_runtime). The same quantity as utime + stime, but exact
# rather than sampled at each 4 ms tick, which matters in windows of a few
# seconds where the server sleeps and wakes thousands of times.
read_runtime() {
    local f ns rest total=0
    for f in "/proc/$1"/task/*/schedstat; do
        read -r ns rest 2>/dev/null <"$f" || continue
        total=$((total + ns))
    done
    RUNTIME_NS=$total
}

# read_core_busy CPU: sets CORE_BUSY to the ticks CPU spent on anything but
# idle and iowait (user, nice, system, irq, softirq, steal), from /proc/stat.
read_core_busy() {
    local name rest
    while read -r name rest; do
        if [[ $name == "cpu$1" ]]; then
            # shellcheck disable=SC2086
            set -- $rest
            CORE_BUSY=$(($1 + $2 + $3 + $6 + $7 + $8))
            return 0
        fi
    done </proc/stat
    return 1
}

# sampler_start PID FILE: writes `EPOCHREALTIME pid_ticks
# server_core_busy_ticks load_core_busy_ticks pid_runtime_ns pid_utime_ticks`
# ten times a second until PID exits or sampler_stop.
# Pinned with the load (a read of /proc ten times a second), sleeping on a
# FIFO rather than forking sleep(1).
sampler_start() {
    local pid=$1 file=$2 fifo
    fifo=$(mktemp -u "$RESULTS/logs/.sleep.XXXXXX")
    mkfifo "$fifo"
    (
        exec {sleeper}<>"$fifo"
        rm -f "$fifo"
        local server_busy
        while read_ticks "$pid"; do
            read_runtime "$pid"
            CORE_BUSY=0
            read_core_busy "$SERVER_CPU" || true
            server_busy=$CORE_BUSY
            CORE_BUSY=0
            read_core_busy "$LOAD_CPU" || true
            echo "$EPOCHREALTIME $TICKS $server_busy $CORE_BUSY $RUNTIME_NS $UTICKS"
            read -r -t 0.1 -u "$sleeper" || true
        done
    ) >"$file" &
    SAMPLER_PID=$!
    taskset -pc "$LOAD_CPU" "$SAMPLER_PID" >/dev/null
}

sampler_stop() {
    [[ -n ${SAMPLER_PID:-} ]] || return 0
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
}

# window_cpu FILE T_END SECONDS [COLUMN [PER_SECOND]]: seconds of the
# sampled COLUMN in [T_END - SECONDS, T_END], interpolating linearly
# between samples. Columns: 2 the process (ticks), 3 and 4 the server and
# load cores busy (ticks), 5 the process (ns; PER_SECOND 1e9), 6 the
# process in user space (ticks).
window_cpu() {
    awk -v end="$2" -v len="$3" -v hz="${5:-$CLK_TCK}" -v col="${4:-2}" '
        function at(t,   i) {
            if (t <= ts[1]) return tk[1]
            for (i = 2; i <= n; i++)
                if (ts[i] >= t)
                    return tk[i-1] + (tk[i] - tk[i-1]) * (t - ts[i-1]) / (ts[i] - ts[i-1])
            return tk[n]
        }
        { n++; ts[n] = $1; tk[n] = $col }
        END { if (n < 2) { print "nan"; exit } printf "%.4f\n", (at(end) - at(end - len)) / hz }
    ' "$1"
}

# server_cpu FILE T_END SECONDS: the sampled process's CPU seconds in the
# window, from its exact runtime.
server_cpu() {
    window_cpu "$1" "$2" "$3" 5 1e9
}

# foreign_share FILE T_END SECONDS: the share of the server core (0-1) that
# went to anything but the sampled process in the window: other processes,
# softirq work not run in the server's context, the hypervisor's steal.
# The noise indicator of a round (tick-based on both sides).
foreign_share() {
    local busy own
    busy=$(window_cpu "$1" "$2" "$3" 3)
    own=$(window_cpu "$1" "$2" "$3" 2)
    awk -v b="$busy" -v o="$own" -v l="$3" 'BEGIN { f = (b - o) / l; printf "%.3f\n", f < 0 ? 0 : f }'
}

# seconds 10s|500ms|2m|3 -> seconds as a decimal number
seconds() {
    local d=$1
    case $d in
        *ms) awk -v v="${d%ms}" 'BEGIN { print v / 1000 }' ;;
        *s) echo "${d%s}" ;;
        *m) awk -v v="${d%m}" 'BEGIN { print v * 60 }' ;;
        *) echo "$d" ;;
    esac
}

# ---- one measured run ------------------------------------------------------------

# measure_load TAG CMD...: with a server already started (SERVER_PID), runs
# the load CMD (a `tenk load ... --json`) pinned to LOAD_CPU while sampling
# the server's CPU. Leaves the JSON in $RESULTS/logs/TAG.json and sets
# M_REQUESTS, M_RPS, M_SECONDS, M_SERVER_CPU, M_PER_CPU, M_P50, M_P99,
# M_ERRORS, M_CONNECTED, M_FOREIGN (foreign_share), M_LOAD_FOREIGN (the
# same for the load's core: its busy time minus the load's own CPU), and
# M_SERVER_CPU_TICKS (utime + stime, the cross-check of M_SERVER_CPU),
# M_USER_SHARE (utime / (utime + stime): the server's own code, against the
# kernel's share; tick-sampled, so indicative).
measure_load() {
    local tag=$1
    shift
    local json=$RESULTS/logs/$tag.json samples=$RESULTS/logs/$tag.cpu
    mkdir -p "$RESULTS/logs"
    local limit
    limit=$(awk -v d="$(seconds "$DURATION")" -v w="$(seconds "$WARMUP")" 'BEGIN { print int(d + w + 120) }')
    sampler_start "$SERVER_PID" "$samples"
    local rc=0
    timeout "$limit" taskset -c "$LOAD_CPU" "$@" >"$json" 2>"$RESULTS/logs/$tag.err" || rc=$?
    local t_end=$EPOCHREALTIME
    sleep 0.25 # a sample after the window's end
    sampler_stop
    if ! jq -e .requests "$json" >/dev/null 2>&1; then
        die "load failed (exit $rc): $(cat "$RESULTS/logs/$tag.err")"
    fi
    M_REQUESTS=$(jq .requests "$json")
    M_RPS=$(jq .requests_per_s "$json")
    M_SECONDS=$(jq .duration_s "$json")
    M_P50=$(jq .latency_us.p50 "$json")
    M_P99=$(jq .latency_us.p99 "$json")
    M_ERRORS=$(jq .errors_total "$json")
    M_CONNECTED=$(jq .connections_established "$json")
    M_SERVER_CPU=$(server_cpu "$samples" "$t_end" "$M_SECONDS")
    M_SERVER_CPU_TICKS=$(window_cpu "$samples" "$t_end" "$M_SECONDS")
    M_USER_SHARE=$(awk -v u="$(window_cpu "$samples" "$t_end" "$M_SECONDS" 6)" -v t="$M_SERVER_CPU_TICKS" \
        'BEGIN { if (t > 0 && u == u + 0) printf "%.3f\n", u / t; else print "nan" }')
    M_FOREIGN=$(foreign_share "$samples" "$t_end" "$M_SECONDS")
    M_LOAD_FOREIGN=$(awk -v b="$(window_cpu "$samples" "$t_end" "$M_SECONDS" 4)" -v own="$(jq .cpu_s "$json")" -v l="$M_SECONDS" \
        'BEGIN { f = (b - own) / l; printf "%.3f\n", f < 0 ? 0 : f }')
    M_PER_CPU=$(awk -v r="$M_REQUESTS" -v c="$M_SERVER_CPU" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "nan" }')
}

# parse_summary LOG: reads tenk's final summary line (`... N accepted, ...,
# X MB in, ...; syscalls: N epoll_wait, N epoll_ctl, N read, N write`) into
# S_ACCEPTED, S_BYTES_IN (bytes; the line rounds to 3 significant digits),
# S_WAIT, S_CTL, S_READ, S_WRITE.
parse_summary() {
    local line
    line=$(grep -a 'syscalls:' "$1" | tail -1 || true)
    [[ -n $line ]] || die "no summary line in $1: $(tail -3 "$1")"
    read -r S_ACCEPTED S_BYTES_IN S_WAIT S_CTL S_READ S_WRITE < <(awk '
        {
            for (i = 1; i <= NF; i++) {
                f = $i; sub(/,$/, "", f); sub(/;$/, "", f)
                if (f == "accepted") acc = $(i - 1)
                if (f == "in" && $(i - 1) ~ /B$/) {
                    u = $(i - 1); v = $(i - 2)
                    m = (u == "kB") ? 1e3 : (u == "MB") ? 1e6 : (u == "GB") ? 1e9 : (u == "TB") ? 1e12 : 1
                    bytes = v * m
                }
                if (f == "epoll_wait") w = $(i - 1)
                if (f == "epoll_ctl") c = $(i - 1)
                if (f == "read") r = $(i - 1)
                if (f == "write") wr = $(i - 1)
            }
            printf "%s %.0f %s %s %s %s\n", acc, bytes, w, c, r, wr
        }' <<<"$line")
}

# ---- statistics -------------------------------------------------------------------

# spread VALUES...: prints `median min max`.
spread() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "nan nan nan"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR]
        }'
}

# summarize_rounds RAW_CSV OUT_CSV KEY[,KEY...]: one row of medians (and
# min-max) per cell of the rounds in RAW_CSV (bench/summarize.py).
summarize_rounds() {
    python3 "$BENCH/summarize.py" "$@" || die "summarizing $1 failed"
}

# round_ratios RAW CLIENT NAME=VALUE NAME=VALUE COLUMN PEER: "median min
# max" over the rounds of tenk's COLUMN over PEER's in the same round, on
# RAW's rows of CLIENT whose two named columns hold those values (the
# cell: conns=100 pipeline=1, or size=1k conns=100).
round_ratios() {
    awk -F, -v cl="$2" -v k1="${3%%=*}" -v v1="${3#*=}" -v k2="${4%%=*}" -v v2="${4#*=}" -v col="$5" -v peer="$6" '
        NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
        $h["client"] == cl && $h[k1] == v1 && $h[k2] == v2 { v[$h["server"], $h["round"]] = $h[col]; rounds[$h["round"]] = 1 }
        END { for (r in rounds) if (v[peer, r] > 0) print v["tenk", r] / v[peer, r] }
    ' "$1" | { mapfile -t vs; spread "${vs[@]}"; }
}

# int VALUE: rounded to a whole number; pct SHARE: as a percentage. A value
# that is not a number (-, nan) is printed as it is.
int() { awk -v v="$1" 'BEGIN { if (v == v + 0) printf "%.0f", v; else printf "%s", v }'; }
pct() { awk -v v="$1" 'BEGIN { if (v == v + 0) printf "%.0f%%", v * 100; else print v }'; }

# csv_column FILE FILTER_AWK COLUMN: values of COLUMN (by header name) on
# rows matching FILTER_AWK (an awk condition over named columns via c["name"]).
csv_column() {
    awk -F, -v col="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
        { for (k in h) c[k] = $(h[k]) }
        '"$2"' { print $(h[col]) }
    ' "$1"
}

# Rotates the list of names by ROUND so each server takes each slot in turn
# (with two servers: A B, B A, A B, ...).
rotate() {
    local round=$1
    shift
    local -a names=("$@")
    local n=${#names[@]} i
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "${names[$(((i + round) % n))]}"
    done
}

# si 123456 -> 123k ; 1234567 -> 1.23M
si() {
    awk -v v="$1" 'BEGIN {
        if (v != v + 0) { print v; exit }
        if (v >= 1e6) printf "%.2fM\n", v / 1e6
        else if (v >= 1e4) printf "%.0fk\n", v / 1e3
        else if (v >= 1e3) printf "%.1fk\n", v / 1e3
        else printf "%.0f\n", v
    }'
}

# "median (min-max)" with SI units.
fmt_spread() {
    printf '%s (%s-%s)' "$(si "$1")" "$(si "$2")" "$(si "$3")"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'
}

# meets VALUE TARGET -> "met" or "MISSED by N%"
meets() {
    awk -v v="$1" -v t="$2" 'BEGIN {
        if (v != v + 0) print "n/a"
        else if (v >= t) print "met"
        else printf "MISSED by %.0f%%\n", (t - v) / t * 100
    }'
}

cleanup_servers() {
    sampler_stop
    stop_server
}
trap cleanup_servers EXIT

# ---- nginx ------------------------------------------------------------------

NGINX_DIR=

# start_nginx CONF OUT CPUS WORKERS [SED_EXPR...]: a fresh nginx from the
# template bench/nginx/CONF (@DIR@ and @PORT@ filled in, `worker_processes 1;`
# set to WORKERS, then each SED_EXPR applied), pinned to CPUS, its output in
# OUT; returns once WORKERS workers run and the port accepts connections.
# Sets NGINX_DIR, SERVER_PORT, SERVER_PID (the master) and NGINX_WORKERS
# (the workers, whose CPU is the server's).
start_nginx() {
    local conf=$1 out=$2 cpus=$3 workers=$4
    shift 4
    local extra=() expr
    for expr in "$@"; do
        extra+=(-e "$expr")
    done
    NGINX_DIR=$(mktemp -d /tmp/tenk-bench-nginx.XXXXXX)
    SERVER_PORT=$(free_port)
    sed -e "s#@DIR@#$NGINX_DIR#g" -e "s#@PORT@#$SERVER_PORT#g" \
        -e "s#^worker_processes 1;#worker_processes $workers;#" "${extra[@]}" \
        "$BENCH/nginx/$conf" >"$NGINX_DIR/nginx.conf"
    grep -q "^worker_processes $workers;" "$NGINX_DIR/nginx.conf" ||
        die "bench/nginx/$conf has no \`worker_processes 1;\` line to change"
    taskset -c "$cpus" nginx -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" >"$out" 2>&1 &
    SERVER_PID=$!
    local i
    NGINX_WORKERS=()
    for i in $(seq 100); do
        # shellcheck disable=SC2207 # one pid per word
        NGINX_WORKERS=($(pgrep -P "$SERVER_PID" || true))
        if ((${#NGINX_WORKERS[@]} == workers)) && (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "nginx did not start $workers workers on $SERVER_PORT: $(cat "$out" "$NGINX_DIR/error.log" 2>/dev/null)"
}

# stop_nginx: graceful stop (SIGQUIT), SIGKILL after 10 s; removes its
# directory. Does nothing if no nginx runs.
stop_nginx() {
    if [[ -n ${SERVER_PID:-} ]]; then
        kill -QUIT "$SERVER_PID" 2>/dev/null || true
        local i
        for i in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
    [[ -z $NGINX_DIR ]] || rm -rf "$NGINX_DIR"
    NGINX_DIR=
}

# ---- the floor ------------------------------------------------------------------

# floor_probe: the syscall floor of this run (bench/floor.sh ->
# results/floor.csv), as issue 20 asks ("measured by the floor probe in the
# same run"); FLOOR=keep reuses an existing results/floor.csv.
floor_probe() {
    if [[ ${FLOOR:-} == keep && -s $RESULTS/floor.csv ]]; then
        log "FLOOR=keep: using the existing results/floor.csv"
        return
    fi
    log "running the syscall floor probe first (bench/floor.sh; FLOOR=keep skips it)"
    "$BENCH/floor.sh" >/dev/null
}

# gap_table SUMMARY_CSV WHY_CSV CONNS...: the gap between each server's CPU
# per request and the floor, split (bench/gap.py), when both parts ran.
gap_table() {
    [[ -s $1 && -s $2 && -s $RESULTS/floor.csv ]] || return 0
    python3 "$BENCH/gap.py" "$RESULTS/floor.csv" "$1" "$2" "${@:3}"
    echo
}
