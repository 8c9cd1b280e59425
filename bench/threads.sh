#!/usr/bin/env bash
# Multi-core (issue 9), what a 2-core machine can measure: scaling claims
# wait for a bigger machine, since here the load tool shares the cores.
#
# 1. Connection skew per accept strategy: `tenk serve echo --threads 2
#    --stats` with --accept reuseport, exclusive, dispatch --balance
#    round-robin and dispatch --balance least-connections; `tenk load echo`
#    opens SKEW_CONNS (1000 10000) connections (64 B, 1 in flight) and holds
#    them for WARMUP + SKEW_DURATION; the per-worker connection counts come
#    from the server's stats line (`| workers a/b ...`) while every
#    connection is open. Printed: each round's counts and max/min.
# 2. CPU cost of the threads: HTTP GET / hello at CONNS (1000) connections x
#    PIPELINES (1 16) in flight, `tenk serve http --threads 1` vs
#    `--threads 2 --accept reuseport` (the default strategy) vs the tokio +
#    httparse peer on a multi_thread runtime with 2 workers vs nginx-light
#    with `worker_processes 2`. Headline: requests per server CPU-second,
#    the server's CPU being every thread of its process (for nginx: both
#    workers, summed); raw requests/s beside it. Targets (issue 9): tenk at
#    2 threads >= 0.9x tenk at 1 thread, >= 1.2x tokio, >= 1.3x nginx.
#
#   bench/threads.sh                               # ROUNDS=5 DURATION=10s
#   ROUNDS=1 DURATION=2s bench/threads.sh          # a smoke test
#   PARTS=skew bench/threads.sh                    # one part only (skew|cpu)
#
# Placement (unlike the other scripts): a server with 2 threads needs both
# cores of this machine, so it cannot have a core of its own, and pinning
# the load to one of the server's cores would starve that core's server
# thread while the other idles (with reuseport the kernel still hands it
# half the connections). So every server, the 1-thread tenk included (the
# 2-vs-1 ratio must differ in the thread count only), and the load tool
# are all allowed on all cores (SERVER_CPUS and LOAD_CPUS, default 0 to
# nproc-1) and the scheduler places them. The load is one thread
# (LOAD_THREADS=1), so it takes at most one core and the servers get the
# rest. Foreign share = what the cores spent on anything but the server and
# the load during the window, as a share of all cores in SERVER_CPUS and
# LOAD_CPUS (other processes, softirq work charged to no one, steal).
#
# Same method as the others otherwise: fresh server per run, contenders
# rotating in each round, median and min-max of ROUNDS, server CPU over
# exactly the load's measured window (schedstat of every thread), `TENK`
# to measure a given binary.
#
# Writes results/threads-skew-rounds.csv, results/threads-skew.csv,
# results/threads-rounds.csv, results/threads.csv.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NCPU=$(nproc)
SERVER_CPUS=${SERVER_CPUS:-0-$((NCPU - 1))}
LOAD_CPUS=${LOAD_CPUS:-0-$((NCPU - 1))}
LOAD_THREADS=${LOAD_THREADS:-1}
PARTS=${PARTS:-"skew cpu"}
SKEW_CONNS=${SKEW_CONNS:-"1000 10000"}
SKEW_DURATION=${SKEW_DURATION:-3s}
SKEW_ROUNDS=${SKEW_ROUNDS:-$ROUNDS}
STRATEGIES=(reuseport exclusive dispatch-rr dispatch-lc)
CONNS=${CONNS:-1000}
PIPELINES=${PIPELINES:-"1 16"}
THREADS=2 # the multi-threaded contenders' threads / workers
SERVERS=(tenk1 tenk2 tokio2 nginx2)
# For lib.sh's start_server (taskset -c takes lists) and header().
# shellcheck disable=SC2034
SERVER_CPU=$SERVER_CPUS
# shellcheck disable=SC2034
LOAD_CPU=$LOAD_CPUS

# expand_cpus 0-1,4 -> "0 1 4"
expand_cpus() {
    local part out=() i
    local -a parts
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            for ((i = ${part%-*}; i <= ${part#*-}; i++)); do out+=("$i"); done
        else
            out+=("$part")
        fi
    done
    printf '%s\n' "${out[@]}" | sort -un | tr '\n' ' '
}
# shellcheck disable=SC2207
CORES=($(expand_cpus "$SERVER_CPUS,$LOAD_CPUS"))

build_tenk
[[ $("$TENK" serve echo --help 2>/dev/null) == *--accept* ]] || die "this tenk has no \`serve echo --threads/--accept\`"

# ---- sampling several processes over several cores -------------------------

# read_cores_busy: sets CORES_BUSY to the busy ticks (as read_core_busy) of
# every core in CORES, from the `cpuN` lines at the top of /proc/stat (it
# stops there: the long lines below change between bash's chunked reads).
CORE_NAMES=" ${CORES[*]/#/cpu} "
read_cores_busy() {
    local name rest total=0
    while read -r name rest; do
        [[ $name == cpu* ]] || break
        [[ $CORE_NAMES == *" $name "* ]] || continue
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + $1 + $2 + $3 + $6 + $7 + $8))
    done </proc/stat
    CORES_BUSY=$total
}

# sampler_multi FILE PID...: lib.sh's sampler for a server made of several
# processes (nginx's workers), the busy ticks of all CORES in column 3:
# `EPOCHREALTIME ticks cores_busy_ticks 0 runtime_ns utime_ticks`, summed
# over the PIDs, ten times a second until the first PID exits.
sampler_multi() {
    local file=$1 fifo
    shift
    local -a pids=("$@")
    fifo=$(mktemp -u "$RESULTS/logs/.sleep.XXXXXX")
    mkfifo "$fifo"
    (
        # A failed read must not end the sampling (and leave the window
        # short of samples): no set -e here; measure_multi checks coverage.
        set +e
        exec {sleeper}<>"$fifo"
        rm -f "$fifo"
        local p ticks uticks ns
        while kill -0 "${pids[0]}" 2>/dev/null; do
            ticks=0 uticks=0 ns=0
            for p in "${pids[@]}"; do
                # shellcheck disable=SC2153 # TICKS, UTICKS: set by read_ticks
                read_ticks "$p" || continue
                read_runtime "$p"
                ticks=$((ticks + TICKS)) uticks=$((uticks + UTICKS)) ns=$((ns + RUNTIME_NS))
            done
            CORES_BUSY=0
            read_cores_busy || true
            echo "$EPOCHREALTIME $ticks $CORES_BUSY 0 $ns $uticks"
            read -r -t 0.1 -u "$sleeper" || true
        done
    ) >"$file" &
    SAMPLER_PID=$!
    taskset -pc "$LOAD_CPUS" "$SAMPLER_PID" >/dev/null
}

# measure_multi TAG CMD...: measure_load for CPU_PIDS (the server's
# processes) with the load on LOAD_CPUS. Sets M_REQUESTS, M_RPS, M_SECONDS,
# M_P50, M_P99, M_ERRORS, M_CONNECTED, M_SERVER_CPU (s, exact),
# M_SERVER_CPU_TICKS (s, utime + stime), M_USER_SHARE, M_PER_CPU,
# M_SERVER_CORES and M_LOAD_CORES (CPU-s per second of window), M_FOREIGN.
measure_multi() {
    local tag=$1
    shift
    local json=$RESULTS/logs/$tag.json samples=$RESULTS/logs/$tag.cpu
    local limit rc=0
    limit=$(awk -v d="$(seconds "$DURATION")" -v w="$(seconds "$WARMUP")" 'BEGIN { print int(d + w + 120) }')
    sampler_multi "$samples" "${CPU_PIDS[@]}"
    timeout "$limit" taskset -c "$LOAD_CPUS" "$@" >"$json" 2>"$RESULTS/logs/$tag.err" || rc=$?
    local t_end=$EPOCHREALTIME
    # A sample after the window's end (a busy machine can delay it).
    local i
    for i in $(seq 30); do
        sleep 0.1
        awk -v end="$t_end" 'END { exit !(NR >= 2 && $1 >= end) }' "$samples" && break
    done
    sampler_stop
    jq -e .requests "$json" >/dev/null 2>&1 || die "load failed (exit $rc): $(cat "$RESULTS/logs/$tag.err")"
    awk -v end="$t_end" 'END { exit !(NR >= 2 && $1 >= end) }' "$samples" ||
        die "the CPU sampler stopped before the end of the window ($samples)"
    M_REQUESTS=$(jq .requests "$json")
    M_RPS=$(jq .requests_per_s "$json")
    M_SECONDS=$(jq .duration_s "$json")
    M_P50=$(jq .latency_us.p50 "$json")
    M_P99=$(jq .latency_us.p99 "$json")
    M_ERRORS=$(jq .errors_total "$json")
    M_CONNECTED=$(jq .connections_established "$json")
    local load_cpu busy
    load_cpu=$(jq .cpu_s "$json")
    M_SERVER_CPU=$(server_cpu "$samples" "$t_end" "$M_SECONDS")
    M_SERVER_CPU_TICKS=$(window_cpu "$samples" "$t_end" "$M_SECONDS")
    M_USER_SHARE=$(awk -v u="$(window_cpu "$samples" "$t_end" "$M_SECONDS" 6)" -v t="$M_SERVER_CPU_TICKS" \
        'BEGIN { if (t > 0 && u == u + 0) printf "%.3f\n", u / t; else print "nan" }')
    busy=$(window_cpu "$samples" "$t_end" "$M_SECONDS" 3)
    M_FOREIGN=$(awk -v b="$busy" -v s="$M_SERVER_CPU_TICKS" -v l="$load_cpu" -v len="$M_SECONDS" -v n="${#CORES[@]}" \
        'BEGIN { f = (b - s - l) / (len * n); printf "%.3f\n", f < 0 ? 0 : f }')
    M_SERVER_CORES=$(awk -v c="$M_SERVER_CPU" -v len="$M_SECONDS" 'BEGIN { printf "%.2f\n", c / len }')
    M_LOAD_CORES=$(awk -v c="$load_cpu" -v len="$M_SECONDS" 'BEGIN { printf "%.2f\n", c / len }')
    M_PER_CPU=$(awk -v r="$M_REQUESTS" -v c="$M_SERVER_CPU" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "nan" }')
}

# skew_stats LOG CONNS: from the server's `--stats` lines, the per-worker
# connection counts while every connection was open: the last line whose
# counts add up to CONNS, else the one with the most. Matches `workers`
# (or `workers:`) followed by `a/b[/c...]`, wherever it sits in the line.
# Prints `a/b max min sum`, or nothing without such a line.
skew_stats() {
    awk -v want="$2" '
        {
            for (i = 1; i < NF; i++) {
                f = $i; sub(/:$/, "", f)
                if (f != "workers" || $(i + 1) !~ /^[0-9]+(\/[0-9]+)+,?$/) continue
                w = $(i + 1); sub(/,$/, "", w)
                n = split(w, v, "/"); s = 0; mx = v[1] + 0; mn = v[1] + 0
                for (j = 1; j <= n; j++) { s += v[j]; if (v[j] + 0 > mx) mx = v[j] + 0; if (v[j] + 0 < mn) mn = v[j] + 0 }
                line = w " " mx " " mn " " s
                if (s == want) exact = line
                if (s > best_sum || best == "") { best_sum = s; best = line }
                break
            }
        }
        END { if (exact != "") print exact; else if (best != "") print best }
    ' "$1"
}

# skew_spread VALUES...: `median min max` where a value may be `inf`.
skew_spread() {
    printf '%s\n' "$@" | sed 's/^inf$/1e300/' | sort -g | awk '
        { v[NR] = $1 + 0 }
        function out(x) { return x >= 1e299 ? "inf" : sprintf("%.3f", x) }
        END {
            if (NR == 0) { print "nan nan nan"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] >= 1e299 || v[NR / 2 + 1] >= 1e299 ? 1e300 : (v[NR / 2] + v[NR / 2 + 1]) / 2)
            print out(m), out(v[1]), out(v[NR])
        }'
}

# ---- servers -------------------------------------------------------------------

if [[ " $PARTS " == *" cpu "* ]]; then
    if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        log "installing nginx-light"
        (apt-get update -qq && apt-get install -y -qq nginx-light) >&2 || die "cannot install nginx-light"
    fi
    PATH=$PATH:/usr/sbin
    build_bench peers
    "$TENK" serve http --help >/dev/null 2>&1 || die "this tenk has no \`serve http\`"
fi

# start NAME LOG: a fresh HTTP server on SERVER_CPUS; sets SERVER_PID (the
# process to stop), SERVER_PORT and CPU_PIDS (the processes whose CPU is
# the server's).
start() {
    case $1 in
        tenk1)
            start_server "$2" "$TENK" serve http --port 0 --threads 1
            CPU_PIDS=("$SERVER_PID")
            ;;
        tenk2)
            start_server "$2" "$TENK" serve http --port 0 --threads "$THREADS" --accept reuseport
            CPU_PIDS=("$SERVER_PID")
            ;;
        tokio2)
            # The same Server header length as tenk's, as in http.sh.
            start_server "$2" "$PEERS/tokio-http" --port 0 --runtime multi --workers "$THREADS" --server-name tenk
            CPU_PIDS=("$SERVER_PID")
            ;;
        nginx2)
            start_nginx nginx.conf "$2" "$SERVER_CPUS" "$THREADS"
            CPU_PIDS=("${NGINX_WORKERS[@]}")
            ;;
    esac
}

stop() {
    if [[ $1 == nginx2 ]]; then
        stop_nginx
    else
        stop_server
    fi
}
trap 'sampler_stop; [[ -n ${SERVER_PID:-} ]] && kill -KILL "$SERVER_PID" 2>/dev/null; stop_nginx; true' EXIT

strategy_args() {
    case $1 in
        reuseport) echo "--accept reuseport" ;;
        exclusive) echo "--accept exclusive" ;;
        dispatch-rr) echo "--accept dispatch --balance round-robin" ;;
        dispatch-lc) echo "--accept dispatch --balance least-connections" ;;
    esac
}

strategy_name() {
    case $1 in
        reuseport) echo "reuseport" ;;
        exclusive) echo "exclusive" ;;
        dispatch-rr) echo "dispatch, round-robin" ;;
        dispatch-lc) echo "dispatch, least-connections" ;;
    esac
}

# ---- 1. skew ---------------------------------------------------------------------

if [[ " $PARTS " == *" skew "* ]]; then
    skew_raw=$RESULTS/threads-skew-rounds.csv
    echo "strategy,conns,round,workers,max,min,skew,counted,established,errors,load_exit" >"$skew_raw"
    skew_limit=$(awk -v d="$(seconds "$SKEW_DURATION")" -v w="$(seconds "$WARMUP")" 'BEGIN { print int(d + w + 120) }')
    for c in $SKEW_CONNS; do
        for ((r = 1; r <= SKEW_ROUNDS; r++)); do
            for s in $(rotate "$r" "${STRATEGIES[@]}"); do
                tag=threads-skew-$s-c$c-r$r
                # shellcheck disable=SC2046
                start_server "$RESULTS/logs/$tag.server" "$TENK" serve echo --port 0 --threads "$THREADS" --stats $(strategy_args "$s")
                rc=0
                timeout "$skew_limit" taskset -c "$LOAD_CPUS" "$TENK" load echo "127.0.0.1:$SERVER_PORT" \
                    -c "$c" --threads "$LOAD_THREADS" --pipeline 1 --size 64 -d "$SKEW_DURATION" --warmup "$WARMUP" \
                    --timeout 30s --json >"$RESULTS/logs/$tag.json" 2>"$RESULTS/logs/$tag.err" || rc=$?
                stop_server
                if jq -e .requests "$RESULTS/logs/$tag.json" >/dev/null 2>&1; then
                    established=$(jq .connections_established "$RESULTS/logs/$tag.json")
                    errors=$(jq .errors_total "$RESULTS/logs/$tag.json")
                else
                    established=nan errors=nan
                    log "load failed against $s at $c connections (exit $rc): $(tail -3 "$RESULTS/logs/$tag.err")"
                fi
                read -r workers max min counted < <(skew_stats "$RESULTS/logs/$tag.server" "$established"; echo) || true
                if [[ -z ${workers:-} ]]; then
                    workers=none max=nan min=nan counted=nan skew=nan
                    log "no \`workers\` figures in $RESULTS/logs/$tag.server"
                elif ((min == 0)); then
                    skew=inf
                else
                    skew=$(awk -v a="$max" -v b="$min" 'BEGIN { printf "%.3f", a / b }')
                fi
                echo "$s,$c,$r,$workers,$max,$min,$skew,$counted,$established,$errors,$rc" >>"$skew_raw"
                log "$(printf 'skew c=%-5s round %s/%s %-11s workers %-11s max/min %-6s established %s errors %s' \
                    "$c" "$r" "$SKEW_ROUNDS" "$s" "$workers" "$skew" "$established" "$errors")"
                sleep 0.5
            done
        done
    done

    skew_summary=$RESULTS/threads-skew.csv
    echo "strategy,conns,rounds,skew_median,skew_min,skew_max,workers_rounds,established_min,errors" >"$skew_summary"
    for c in $SKEW_CONNS; do
        for s in "${STRATEGIES[@]}"; do
            sel="c[\"strategy\"] == \"$s\" && c[\"conns\"] == $c"
            read -r sm smin smax < <(skew_spread $(csv_column "$skew_raw" "$sel" skew | grep -v nan || true))
            workers=$(csv_column "$skew_raw" "$sel" workers | paste -sd' ')
            read -r _ est _ < <(spread $(csv_column "$skew_raw" "$sel" established))
            errors=$(csv_column "$skew_raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "$s,$c,$SKEW_ROUNDS,$sm,$smin,$smax,$workers,$est,$errors" >>"$skew_summary"
        done
    done
fi

# ---- 2. CPU per request ----------------------------------------------------------

if [[ " $PARTS " == *" cpu "* ]]; then
    raw=$RESULTS/threads-rounds.csv
    echo "server,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,server_cores,load_cores,server_cpu_ticks_s,user_share" >"$raw"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for s in $(rotate "$r" "${SERVERS[@]}"); do
                    tag=threads-$s-c$c-p$p-r$r
                    start "$s" "$RESULTS/logs/$tag.server"
                    measure_multi "$tag" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" \
                        -c "$c" --threads "$LOAD_THREADS" --pipeline "$p" -d "$DURATION" --warmup "$WARMUP" \
                        --timeout 30s --json
                    stop "$s"
                    echo "$s,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_SERVER_CORES,$M_LOAD_CORES,$M_SERVER_CPU_TICKS,$M_USER_SHARE" >>"$raw"
                    log "$(printf 'cpu c=%-5s p=%-2s round %s/%s %-6s %8s req/s  server %4s cores  load %4s cores  %8s req/CPU-s  errors %s  foreign %s' \
                        "$c" "$p" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$M_SERVER_CORES" "$M_LOAD_CORES" "$(si "$M_PER_CPU")" "$M_ERRORS" "$M_FOREIGN")"
                    sleep 0.5
                done
            done
        done
    done

    summary=$RESULTS/threads.csv
    echo "server,conns,pipeline,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rps_min,rps_max,server_cpu_median,server_cores_median,load_cores_median,p99_median,errors,foreign_median,foreign_max" >"$summary"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for s in "${SERVERS[@]}"; do
                sel="c[\"server\"] == \"$s\" && c[\"conns\"] == $c && c[\"pipeline\"] == $p"
                read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
                read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
                read -r cm _ _ < <(spread $(csv_column "$raw" "$sel" server_cpu_s))
                read -r scm _ _ < <(spread $(csv_column "$raw" "$sel" server_cores))
                read -r lcm _ _ < <(spread $(csv_column "$raw" "$sel" load_cores))
                read -r p99 _ _ < <(spread $(csv_column "$raw" "$sel" p99_us))
                read -r fm _ fmax < <(spread $(csv_column "$raw" "$sel" foreign))
                errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
                echo "$s,$c,$p,$ROUNDS,$pm,$pmin,$pmax,$rm,$rmin,$rmax,$cm,$scm,$lcm,$p99,$errors,$fm,$fmax" >>"$summary"
            done
        done
    done
fi

# ---- tables ------------------------------------------------------------------------


header "Multi-core on $NCPU cores (issue 9): accept strategies' connection skew, and the CPU cost of threads; load: tenk load ($LOAD_THREADS thread)"
echo "# placement: every server and the load unpinned over CPUs $SERVER_CPUS / $LOAD_CPUS (a 2-thread server needs both cores; see the script's head)"

if [[ " $PARTS " == *" skew "* ]]; then
    echo
    echo "Connection skew: \`tenk serve echo --threads $THREADS\`, \`tenk load echo -c N\` (64 B, 1 in flight), per-worker connections from the \`--stats\` line while all were open; max/min per round, median of $SKEW_ROUNDS (min-max):"
    echo
    echo "| strategy | conns | per worker, each round | max/min | established (min) | errors |"
    echo "|---|---:|---|---:|---:|---:|"
    for c in $SKEW_CONNS; do
        for s in "${STRATEGIES[@]}"; do
            g() { csv_column "$skew_summary" "c[\"strategy\"] == \"$s\" && c[\"conns\"] == $c" "$1"; }
            echo "| $(strategy_name "$s") | $c | $(g workers_rounds | sed 's/ /, /g') | $(g skew_median) ($(g skew_min)-$(g skew_max)) | $(g established_min) | $(g errors) |"
        done
    done
fi

if [[ " $PARTS " == *" cpu "* ]]; then
    get() { csv_column "$summary" "c[\"server\"] == \"$1\" && c[\"conns\"] == $2 && c[\"pipeline\"] == $3" "$4"; }
    cell() { fmt_spread "$(get "$1" "$2" "$3" "$4_median")" "$(get "$1" "$2" "$3" "$4_min")" "$(get "$1" "$2" "$3" "$4_max")"; }
    echo
    echo "HTTP GET / hello: requests per server CPU-second (every thread of the server; nginx: both workers), median of $ROUNDS (min-max), and the targets for tenk at $THREADS threads:"
    echo
    echo "| conns | in flight | tenk 1 thread | tenk $THREADS threads | tokio multi_thread, $THREADS workers | nginx, $THREADS workers | tenk 2 / tenk 1 (≥ 0.9) | tenk 2 / tokio (≥ 1.2) | tenk 2 / nginx (≥ 1.3) |"
    echo "|---:|---:|---:|---:|---:|---:|---|---|---|"
    for c in $CONNS; do
        for p in $PIPELINES; do
            t2=$(get tenk2 "$c" "$p" per_cpu_median)
            r1=$(ratio "$t2" "$(get tenk1 "$c" "$p" per_cpu_median)")
            rk=$(ratio "$t2" "$(get tokio2 "$c" "$p" per_cpu_median)")
            rn=$(ratio "$t2" "$(get nginx2 "$c" "$p" per_cpu_median)")
            echo "| $c | $p | $(cell tenk1 "$c" "$p" per_cpu) | $(cell tenk2 "$c" "$p" per_cpu) | $(cell tokio2 "$c" "$p" per_cpu) | $(cell nginx2 "$c" "$p" per_cpu) | ${r1}x $(meets "$r1" 0.9) | ${rk}x $(meets "$rk" 1.2) | ${rn}x $(meets "$rn" 1.3) |"
        done
    done
    echo
    echo "Raw requests/s (median, min-max), the cores each side used in the window (server CPU-s and load CPU-s per second, medians), p99 and the foreign share of the $((${#CORES[@]})) cores (median / max):"
    echo
    echo "| conns | in flight | server | req/s | server cores | load cores | p99 µs | foreign | errors |"
    echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for s in "${SERVERS[@]}"; do
                printf '| %s | %s | %s | %s | %s | %s | %.0f | %s / %s | %s |\n' "$c" "$p" "$s" "$(cell "$s" "$c" "$p" rps)" \
                    "$(get "$s" "$c" "$p" server_cores_median)" "$(get "$s" "$c" "$p" load_cores_median)" \
                    "$(get "$s" "$c" "$p" p99_median)" \
                    "$(pct "$(get "$s" "$c" "$p" foreign_median)")" "$(pct "$(get "$s" "$c" "$p" foreign_max)")" \
                    "$(get "$s" "$c" "$p" errors)"
            done
        done
    done
fi
echo
[[ " $PARTS " == *" skew "* ]] && echo "skew: raw rounds $skew_raw; medians $skew_summary"
[[ " $PARTS " == *" cpu "* ]] && echo "cpu: raw rounds $raw; medians $summary"
true
