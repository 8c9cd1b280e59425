# The load clients of echo.sh and http.sh, each measuring every server in
# the same run: `tenk load` and the independent ones (bench/probes
# echo-client; wrk and h2load for HTTP). Sourced after lib.sh, never run.
# shellcheck disable=SC2034 # M_*, W_* are for the scripts
#
# Every client is run the same way: pinned to LOAD_CPU under a shell whose
# `times` gives the client's whole process CPU (the same accounting for
# every tool), while lib.sh's sampler reads the server's CPU; the window is
# the client's own measured duration ending at its exit, as in
# measure_load. Where a tool has no warm-up (wrk), its duration includes
# connecting: at 10,000 connections that puts the accepts (a few % of the
# window's server CPU, for every server alike) inside the window.

# client_cmd CLIENT WORKLOAD CONNS PIPELINE URL_OR_HOSTPORT: prints the
# command line (one word a line), or nothing where the client does not fit
# (wrk cannot pipeline without a Lua script).
client_cmd() {
    local client=$1 workload=$2 c=$3 p=$4 target=$5
    local secs warm
    secs=$(seconds "$DURATION")
    warm=$(seconds "$WARMUP")
    case $client-$workload in
        tenk-echo) printf '%s\n' "$TENK" load echo "$target" -c "$c" --pipeline "$p" --size 64 \
            -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json ;;
        echo-client-echo) printf '%s\n' "$PEERS/echo-client" "$target" -c "$c" --pipeline "$p" --size 64 \
            -d "$secs" --warmup "$warm" ;;
        tenk-http) printf '%s\n' "$TENK" load http "$target" -c "$c" --pipeline "$p" \
            -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json ;;
        wrk-http) ((p == 1)) && printf '%s\n' wrk -t1 "-c$c" "-d$DURATION" --timeout 30s --latency "$target" ;;
        # h2load takes whole units: milliseconds.
        h2load-http) printf '%s\n' h2load --h1 -t1 "-c$c" "-m$p" -D "$(awk -v s="$secs" 'BEGIN { printf "%dms", s * 1000 }')" \
            --warm-up-time "$(awk -v s="$warm" 'BEGIN { printf "%dms", s * 1000 }')" "$target" ;;
        *) die "no client $client for $workload" ;;
    esac
    return 0
}

# Each parser reads a client's output FILE and sets M_REQUESTS, M_SECONDS
# (the measured window), M_P50, M_P99 (µs, "-" when the tool has no
# percentiles), M_ERRORS, M_CONNECTED ("-" when the tool does not say).
parse_json_report() { # tenk load --json and echo-client: the same keys
    jq -e .requests "$1" >/dev/null 2>&1 || return 1
    M_REQUESTS=$(jq .requests "$1")
    M_SECONDS=$(jq .duration_s "$1")
    M_P50=$(jq '.latency_us.p50 // "-"' "$1" | tr -d '"')
    M_P99=$(jq '.latency_us.p99 // "-"' "$1" | tr -d '"')
    M_ERRORS=$(jq '.errors_total + (.stalled_connections // 0)' "$1")
    M_CONNECTED=$(jq .connections_established "$1")
}
parse_wrk_report() {
    # `N requests in 3.00s, ...`, `Socket errors: connect A, read B, write C, timeout D`, `Non-2xx ...: N`
    read -r M_REQUESTS M_SECONDS M_P50 M_P99 M_ERRORS < <(awk '
        function us(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v + 0 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v * 1000 }
            if (v ~ /s$/) { sub(/s$/, "", v); return v * 1e6 }
            return v
        }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        $2 == "requests" && $3 == "in" { req = $1; d = $4; sub(/s,$/, "", d) }
        /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx/ { e += $NF }
        END { if (req != "") printf "%s %s %.0f %.0f %d\n", req, d, p50, p99, e }
    ' "$1")
    [[ -n ${M_REQUESTS:-} ]] || return 1
    M_CONNECTED=-
}
parse_h2load_report() {
    # `finished in 4.00s, 905128.00 req/s, ...` (the time includes the
    # warm-up, the rate does not) and `requests: N total, N started, N done,
    # N succeeded, F failed, E errored, T timeout` (the main duration only).
    read -r M_REQUESTS M_SECONDS M_ERRORS < <(awk '
        /^finished in/ { gsub(",", ""); rps = $4 }
        /^requests:/ { gsub(",", ""); ok = $8; bad = $10 + $12 + $14 }
        END { if (rps > 0) printf "%s %.4f %d\n", ok, ok / rps, bad }
    ' "$1")
    [[ -n ${M_REQUESTS:-} ]] || return 1
    M_P50=-
    M_P99=-
    M_CONNECTED=-
}

# measure_client TAG CLIENT CMD...: with a server started (SERVER_PID, the
# process whose CPU is the server's), runs CMD as measure_load does and
# sets its M_* (M_RPS, M_SERVER_CPU, M_PER_CPU, M_FOREIGN, M_USER_SHARE,
# ...), plus M_CLIENT_US: the client's process CPU per request (µs).
measure_client() {
    local tag=$1 client=$2
    shift 2
    local out=$RESULTS/logs/$tag.out samples=$RESULTS/logs/$tag.cpu times=$RESULTS/logs/$tag.times
    local limit rc=0
    limit=$(awk -v d="$(seconds "$DURATION")" -v w="$(seconds "$WARMUP")" 'BEGIN { print int(d + w + 120) }')
    sampler_start "$SERVER_PID" "$samples"
    # `times` in the wrapping shell reports its waited-for child: the tool.
    timeout "$limit" taskset -c "$LOAD_CPU" bash -c \
        'out=$1 times_file=$2; shift 2; "$@" >"$out" 2>"$out.err"; rc=$?; times >"$times_file"; exit $rc' \
        _ "$out" "$times" "$@" || rc=$?
    local t_end=$EPOCHREALTIME
    sleep 0.25 # a sample after the window's end
    sampler_stop
    local parser=parse_json_report
    case $client in
        wrk) parser=parse_wrk_report ;;
        h2load) parser=parse_h2load_report ;;
    esac
    M_REQUESTS=
    "$parser" "$out" || die "$tag: no report from $client (exit $rc): $(tail -3 "$out" "$out.err")"
    M_RPS=$(awk -v r="$M_REQUESTS" -v s="$M_SECONDS" 'BEGIN { printf "%.0f", r / s }')
    M_SERVER_CPU=$(server_cpu "$samples" "$t_end" "$M_SECONDS")
    M_SERVER_CPU_TICKS=$(window_cpu "$samples" "$t_end" "$M_SECONDS")
    M_USER_SHARE=$(awk -v u="$(window_cpu "$samples" "$t_end" "$M_SECONDS" 6)" -v t="$M_SERVER_CPU_TICKS" \
        'BEGIN { if (t > 0 && u == u + 0) printf "%.3f\n", u / t; else print "nan" }')
    M_FOREIGN=$(foreign_share "$samples" "$t_end" "$M_SECONDS")
    M_PER_CPU=$(awk -v r="$M_REQUESTS" -v c="$M_SERVER_CPU" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "nan" }')
    # The client's whole run (connects and warm-up included) over the
    # window's requests: comparable between servers, not between tools.
    M_CLIENT_US=$(awk -v r="$M_REQUESTS" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
        if (r > 0) printf "%.3f\n", t / r * 1e6; else print "nan"
    }' "$times")
}

# ---- why the clients disagree: the server's syscalls per request -------------

# The syscalls counted, through `perf stat` on the syscall tracepoints: a
# counter per event and no stop per call, unlike `strace -c`, whose
# ptrace stops would slow the server and so change its batching, the thing
# measured. WHY_EVENTS are counted on entry; the reads that returned data
# (exit, ret > 0) are the requests' denominator: with one request in
# flight per connection each such read is one whole request (64 B, or one
# HTTP request), exactly, whatever the rate during the count.
WHY_EVENTS=(epoll_wait epoll_pwait epoll_ctl read recvfrom recvmsg write writev sendto sendmsg)
WHY_DATA_READS=(read recvfrom recvmsg)

# why_start TAG PID DELAY SECONDS: in the background, after DELAY seconds,
# counts them for PID (every thread) for SECONDS into logs/TAG.perf. Needs
# perf (and root, or a low perf_event_paranoid); without it the counts
# read as "-".
why_start() {
    local out=$RESULTS/logs/$1.perf args=() e
    for e in "${WHY_EVENTS[@]}"; do args+=(-e "syscalls:sys_enter_$e"); done
    for e in "${WHY_DATA_READS[@]}"; do args+=(-e "syscalls:sys_exit_$e" --filter 'ret > 0'); done
    : >"$out"
    if command -v perf >/dev/null; then
        (sleep "$3" && exec perf stat -x, "${args[@]}" -p "$2" -- sleep "$4" 2>"$out" >/dev/null) &
        WHY_PID=$!
    else
        WHY_PID=
    fi
}

# why_read TAG SECONDS: waits for why_start's count, then sets W_RPS (data
# reads per second: requests/s during the count) and, per request, W_WAIT
# (epoll_wait + epoll_pwait), W_CTL, W_RECV (read, recvfrom, recvmsg
# calls, those that found nothing included), W_SEND (write, writev,
# sendto, sendmsg), and W_PER_WAKE (requests per server wake-up).
why_read() {
    [[ -z ${WHY_PID:-} ]] || wait "$WHY_PID" || true
    read -r W_RPS W_WAIT W_CTL W_RECV W_SEND W_PER_WAKE < <(awk -F, -v secs="$2" '
        $3 ~ /^syscalls:sys_(enter|exit)_/ {
            n = $1 + 0; e = $3; seen = 1
            if (e ~ /^syscalls:sys_exit_/) { q += n; next }
            sub(/^syscalls:sys_enter_/, "", e)
            if (e ~ /^epoll_(p)?wait$/) w += n
            if (e == "epoll_ctl") c += n
            if (e == "read" || e == "recvfrom" || e == "recvmsg") r += n
            if (e == "write" || e == "writev" || e == "sendto" || e == "sendmsg") s += n
        }
        END {
            if (!seen || q <= 0) { print "- - - - - -"; exit }
            printf "%.0f %.3f %.4f %.3f %.3f %.1f\n", q / secs, w / q, c / q, r / q, s / q, (w > 0 ? q / w : 0)
        }' "$RESULTS/logs/$1.perf")
}
