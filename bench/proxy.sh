#!/usr/bin/env bash
# Reverse proxy (issue 17): `tenk serve proxy` vs nginx-light (1 worker,
# bench/nginx/proxy.conf: `proxy_http_version 1.1`, `proxy_set_header
# Connection ""`, an upstream block with `keepalive POOL`, access_log off)
# vs HAProxy (bench/haproxy/proxy.cfg: `nbthread 1`, `mode http`,
# `http-reuse always`, `pool-max-conn POOL`, no logging), each in turn in
# front of the same backend, `tenk serve http` answering GET / with the
# 13-byte "Hello, World!" of bench/http.sh. The three do the same
# rewriting on every request: Host passed through, X-Forwarded-For
# appended, X-Forwarded-Proto set, Via added both ways (tenk does it
# always; the peers' configurations ask for it).
#
# POOL is the cap on idle upstream connections kept, the same for all
# three (tenk's --upstream-keepalive, nginx's keepalive, HAProxy's
# pool-max-conn), taken in turn from POOLS (32 128): 32 is the issue's
# setting (nginx's documented example, tenk's default), below the CONNS
# (100) requests in flight, so all three close and reopen upstream
# connections as the count of idle ones swings past 32; 128 covers them.
#
# The backend is `tenk serve http` rather than nginx: in §6/§0.7 of
# docs/benchmarks.md it answers the hello at more requests per CPU-second
# than nginx (1.16-1.22x), and it shares its core with the client, so the
# cheaper backend leaves more of that core to the client and keeps the
# proxy the bottleneck; it also prints how many connections it accepted,
# which is the count of upstream connections each proxy opened. A fresh
# backend per run, pinned to LOAD_CPU with the client; the proxy to
# SERVER_CPU.
#
# Parts (PARTS, default all):
#   throughput  requests per proxy CPU-second: `wrk -t1 -c$CONNS -d$DURATION`
#               through the proxy; the proxy's CPU (schedstat of every
#               thread; nginx: its one worker) from just before wrk starts
#               to 0.25 s after it exits; also the backend's CPU, the
#               connections it accepted (= upstream connects) and how busy
#               each core was (is the proxy the bottleneck?)
#   p99         latency at fixed open-loop rates RATES: `tenk load http
#               http://PROXY/ --rate R -c $CONNS -d $DURATION --warmup $WARMUP`
#               (wrk2 is not packaged in Debian)
#   memory      RSS per idle client connection and per pooled upstream
#               connection (bench/proxy_idle.py): MEM_CONNS clients, one
#               request each in turn (one upstream connection serves them
#               all), then one request on all of them at once (the proxy
#               opens upstream connections for the burst and pools them);
#               pooled upstream connections counted with
#               `ss state established dport = BACKEND`. The pool is
#               MEM_POOL (1000) here for tenk and nginx, so it holds the
#               burst's connections (HAProxy's pool is not capped by
#               default)
#   syscalls    syscalls per request of each proxy under `strace -c -f -p`
#               while `tenk load http -n SYS_REQUESTS -c $CONNS` runs
#               through it (strace slows the proxy; counts per request
#               are what it is for)
#
#   bench/proxy.sh                         # ROUNDS=3 DURATION=3s: about 4 min
#   ROUNDS=5 DURATION=10s bench/proxy.sh   # the reference run
#   PARTS="memory" bench/proxy.sh          # some parts only
#
# Environment as lib.sh, and CONNS (100), POOLS (32 128), RATES (10000), MEM_CONNS
# (1000), MEM_POOL (1000), SYS_REQUESTS (20000), PROXIES (tenk nginx
# haproxy).
#
# Needs: python3, curl, ss, strace; nginx-light, wrk and haproxy (installed
# when missing: apt-get install -y nginx-light wrk haproxy).
# Writes results/proxy-rounds.csv, results/proxy-p99-rounds.csv,
# results/proxy-mem-rounds.csv, results/proxy-syscalls.csv.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=${PARTS:-"throughput p99 memory syscalls"}
CONNS=${CONNS:-100}
POOLS=${POOLS:-"32 128"}
RATES=${RATES:-10000}
MEM_CONNS=${MEM_CONNS:-1000}
MEM_POOL=${MEM_POOL:-1000}
SYS_REQUESTS=${SYS_REQUESTS:-20000}
read -r -a PROXIES <<<"${PROXIES:-tenk nginx haproxy}"

need python3 curl ss strace
PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v haproxy >/dev/null; then
    log "installing nginx-light, wrk and haproxy"
    (apt-get update -qq && apt-get install -y -qq nginx-light wrk haproxy) >&2 ||
        die "cannot install nginx-light, wrk and haproxy"
fi
build_tenk
"$TENK" serve proxy --help >/dev/null 2>&1 || die "this tenk has no \`serve proxy\`"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- backend and proxies ---------------------------------------------------------

# start_backend LOG: a fresh `tenk serve http` on LOAD_CPU; sets BACKEND_PID,
# BACKEND_PORT.
start_backend() {
    local saved_cpu=$SERVER_CPU
    SERVER_CPU=$LOAD_CPU
    start_server "$1" "$TENK" serve http --port 0 --idle-timeout 300s
    SERVER_CPU=$saved_cpu
    BACKEND_PID=$SERVER_PID
    BACKEND_PORT=$SERVER_PORT
    BACKEND_LOG=$1
    SERVER_PID=
}

# stop_backend: after the proxy (a backend stopping under a live proxy fails
# its exchanges in flight); sets BACKEND_ACCEPTED from its summary line.
stop_backend() {
    local saved_pid=${SERVER_PID:-}
    SERVER_PID=$BACKEND_PID
    stop_server
    SERVER_PID=$saved_pid
    BACKEND_PID=
    parse_summary "$BACKEND_LOG"
    BACKEND_ACCEPTED=$S_ACCEPTED
}

# start_proxy NAME LOG POOL: a fresh proxy in front of the backend, pinned to
# SERVER_CPU; sets SERVER_PID (the process to stop), SERVER_PORT and CPU_PID
# (the process whose CPU and RSS are the proxy's).
start_proxy() {
    local up=127.0.0.1:$BACKEND_PORT
    case $1 in
        tenk)
            # The client idle timeout of the peers' configurations.
            start_server "$2" "$TENK" serve proxy --port 0 --upstream "$up" \
                --upstream-keepalive "$3" --idle-timeout 300s
            CPU_PID=$SERVER_PID
            ;;
        nginx)
            start_nginx proxy.conf "$2" "$SERVER_CPU" 1 "s#@BACKEND@#$up#g" "s#@POOL@#$3#g"
            CPU_PID=${NGINX_WORKERS[0]}
            ;;
        haproxy)
            # HAProxy takes no port 0: a free one, as for nginx.
            HAPROXY_DIR=$(mktemp -d /tmp/tenk-bench-haproxy.XXXXXX)
            SERVER_PORT=$(free_port)
            sed -e "s#@PORT@#$SERVER_PORT#g" -e "s#@BACKEND@#$up#g" -e "s#@POOL@#$3#g" \
                "$BENCH/haproxy/proxy.cfg" >"$HAPROXY_DIR/haproxy.cfg"
            # -db: foreground, one process (no master), so its pid is the
            # proxy's; it has one thread (nbthread 1).
            taskset -c "$SERVER_CPU" haproxy -db -f "$HAPROXY_DIR/haproxy.cfg" >"$2" 2>&1 &
            SERVER_PID=$!
            CPU_PID=$SERVER_PID
            local i
            for i in $(seq 100); do
                (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null && break
                kill -0 "$SERVER_PID" 2>/dev/null || die "haproxy exited at start: $(cat "$2")"
                sleep 0.05
            done
            ;;
    esac
    local got
    got=$(curl -s "http://127.0.0.1:$SERVER_PORT/" || true)
    [[ $got == "Hello, World!" ]] || die "$1 in front of the backend answered GET / with: $got"
}

stop_proxy() {
    case $1 in
        nginx) stop_nginx ;;
        haproxy)
            # SIGUSR1: HAProxy's graceful stop.
            if [[ -n ${SERVER_PID:-} ]]; then
                kill -USR1 "$SERVER_PID" 2>/dev/null || true
                local i
                for i in $(seq 100); do
                    kill -0 "$SERVER_PID" 2>/dev/null || break
                    sleep 0.1
                done
                kill -KILL "$SERVER_PID" 2>/dev/null || true
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=
            fi
            rm -rf "$HAPROXY_DIR"
            ;;
        *) stop_server ;;
    esac
}

HAPROXY_DIR=
BACKEND_PID=
cleanup() {
    sampler_stop
    [[ -z ${SERVER_PID:-} ]] || kill -KILL "$SERVER_PID" 2>/dev/null || true
    [[ -z ${BACKEND_PID:-} ]] || kill -KILL "$BACKEND_PID" 2>/dev/null || true
    stop_nginx
    [[ -z $HAPROXY_DIR ]] || rm -rf "$HAPROXY_DIR"
    true
}
trap cleanup EXIT

# start_pair NAME TAG POOL / stop_pair NAME: backend then proxy; proxy then
# backend.
start_pair() {
    start_backend "$RESULTS/logs/$2.backend"
    start_proxy "$1" "$RESULTS/logs/$2.proxy" "$3"
}
stop_pair() {
    stop_proxy "$1"
    stop_backend
}

part() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- throughput: requests per proxy CPU-second ----------------------------------------

# run_wrk TAG: wrk pinned to LOAD_CPU through the proxy, sampling the proxy
# (CPU_PID). Sets R_SECONDS, R_PROXY_CPU, R_BACKEND_CPU (exact runtimes from
# just before wrk starts to 0.25 s after it exits), R_FOREIGN (share of the
# proxy's core that went elsewhere), R_LOAD_BUSY (how busy the client's core
# was, 0-1: wrk, backend and anything else), R_COUNT, R_ERRORS.
run_wrk() {
    local tag=$1 out=$RESULTS/logs/$1.out samples=$RESULTS/logs/$1.cpu
    sampler_start "$CPU_PID" "$samples"
    sleep 0.15 # a sample before the window's start
    local t_start=$EPOCHREALTIME rc=0 proxy0 backend0
    read_runtime "$CPU_PID"
    proxy0=$RUNTIME_NS
    read_runtime "$BACKEND_PID"
    backend0=$RUNTIME_NS
    timeout 300 taskset -c "$LOAD_CPU" wrk -t1 "-c$CONNS" "-d$DURATION" "http://127.0.0.1:$SERVER_PORT/" >"$out" 2>&1 || rc=$?
    local t_end=$EPOCHREALTIME
    sleep 0.25
    read_runtime "$CPU_PID"
    R_PROXY_CPU=$(awk -v a="$proxy0" -v b="$RUNTIME_NS" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    read_runtime "$BACKEND_PID"
    R_BACKEND_CPU=$(awk -v a="$backend0" -v b="$RUNTIME_NS" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    sampler_stop
    ((rc == 0)) || die "wrk failed (exit $rc): $(tail -5 "$out")"
    R_SECONDS=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')
    R_FOREIGN=$(foreign_share "$samples" "$t_end" "$R_SECONDS")
    R_LOAD_BUSY=$(awk -v b="$(window_cpu "$samples" "$t_end" "$R_SECONDS" 4)" -v l="$R_SECONDS" \
        'BEGIN { printf "%.3f", b / l }')
    R_COUNT=$(awk '/ requests in / { print $1; exit }' "$out")
    [[ -n $R_COUNT ]] || die "no request count in $out: $(tail -3 "$out")"
    R_ERRORS=$(awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$out")
}

raw=$RESULTS/proxy-rounds.csv
echo "proxy,round,pool,requests,seconds,rps,proxy_cpu_s,per_cpu_s,proxy_busy,backend_cpu_s,backend_accepted,requests_per_upstream_conn,errors,foreign,load_core_busy" >"$raw"
for pool in $POOLS; do
    part throughput || break
    for ((r = 1; r <= ROUNDS; r++)); do
        for p in $(rotate "$r" "${PROXIES[@]}"); do
            tag=proxy-wrk-$p-pool$pool-r$r
            start_pair "$p" "$tag" "$pool"
            run_wrk "$tag"
            stop_pair "$p"
            rps=$(awk -v c="$R_COUNT" -v t="$R_SECONDS" 'BEGIN { printf "%.0f", c / t }')
            per=$(awk -v c="$R_COUNT" -v t="$R_PROXY_CPU" 'BEGIN { if (t > 0) printf "%.0f", c / t; else print "nan" }')
            busy=$(awk -v c="$R_PROXY_CPU" -v t="$R_SECONDS" 'BEGIN { printf "%.3f", c / t }')
            # The backend also accepted curl's check: not an upstream
            # connection of the run.
            ups=$((BACKEND_ACCEPTED - 1))
            per_up=$(awk -v c="$R_COUNT" -v u="$ups" 'BEGIN { if (u > 0) printf "%.1f", c / u; else print "nan" }')
            echo "$p,$r,$pool,$R_COUNT,$R_SECONDS,$rps,$R_PROXY_CPU,$per,$busy,$R_BACKEND_CPU,$ups,$per_up,$R_ERRORS,$R_FOREIGN,$R_LOAD_BUSY" >>"$raw"
            log "$(printf 'wrk pool %-4s round %s/%s %-7s %8s req/s  proxy CPU %5.2fs (busy %s)  %8s req/CPU-s  upstream conns %6s  errors %s  foreign %s  client core %s' \
                "$pool" "$r" "$ROUNDS" "$p" "$(si "$rps")" "$R_PROXY_CPU" "$busy" "$(si "$per")" "$ups" "$R_ERRORS" "$R_FOREIGN" "$R_LOAD_BUSY")"
            sleep 0.5
        done
    done
done

# ---- p99 at a fixed rate ------------------------------------------------------------

p99raw=$RESULTS/proxy-p99-rounds.csv
echo "proxy,pool,rate,round,requests,rps,p50_us,p99_us,max_us,errors,proxy_cpu_s,foreign" >"$p99raw"
for pool in $POOLS; do
    part p99 || break
    for rate in $RATES; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for p in $(rotate "$r" "${PROXIES[@]}"); do
                tag=proxy-p99-$p-pool$pool-$rate-r$r
                start_pair "$p" "$tag" "$pool"
                main_pid=$SERVER_PID
                SERVER_PID=$CPU_PID
                measure_load "$tag" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" \
                    --rate "$rate" -c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
                SERVER_PID=$main_pid
                stop_pair "$p"
                max=$(jq .latency_us.max "$RESULTS/logs/$tag.json")
                echo "$p,$pool,$rate,$r,$M_REQUESTS,$M_RPS,$M_P50,$M_P99,$max,$M_ERRORS,$M_SERVER_CPU,$M_FOREIGN" >>"$p99raw"
                log "$(printf 'p99 pool %-4s rate=%-6s round %s/%s %-7s %8s req/s  p50 %s us  p99 %s us  errors %s  foreign %s' \
                    "$pool" "$rate" "$r" "$ROUNDS" "$p" "$(si "$M_RPS")" "$M_P50" "$M_P99" "$M_ERRORS" "$M_FOREIGN")"
                sleep 0.5
            done
        done
    done
done

# ---- memory per idle client and per pooled upstream connection ------------------------

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The proxy's established connections to the backend (its end has the
# backend's port as destination).
upstream_conns() { ss -Htn state established "( dport = :$BACKEND_PORT )" | wc -l; }

mem=$RESULTS/proxy-mem-rounds.csv
echo "proxy,conns,pool,round,rss_before_kb,rss_idle_kb,rss_burst_kb,upstream_before,upstream_idle,upstream_burst,per_client_bytes,per_pooled_bytes" >"$mem"
if part memory; then
    for ((r = 1; r <= ROUNDS; r++)); do
        for p in $(rotate "$r" "${PROXIES[@]}"); do
            tag=proxy-mem-$p-r$r
            start_pair "$p" "$tag" "$MEM_POOL"
            before=$(rss_kb "$CPU_PID")
            up0=$(upstream_conns)
            coproc IDLE { exec taskset -c "$LOAD_CPU" python3 "$BENCH/proxy_idle.py" --port "$SERVER_PORT" \
                -n "$MEM_CONNS" 2>"$RESULTS/logs/$tag.err"; }
            idle_pid=$IDLE_PID
            line=
            read -r -t 600 line <&"${IDLE[0]}" || true
            [[ $line == idle* ]] || die "bench/proxy_idle.py through $p: $(cat "$RESULTS/logs/$tag.err")"
            # The last answer is read; let the proxy finish with it.
            sleep 0.5
            idle=$(rss_kb "$CPU_PID")
            up1=$(upstream_conns)
            echo >&"${IDLE[1]}"
            line=
            read -r -t 600 line <&"${IDLE[0]}" || true
            [[ $line == burst* ]] || die "bench/proxy_idle.py burst through $p: $(cat "$RESULTS/logs/$tag.err")"
            # Well inside tenk's 4 s pool idle timeout and HAProxy's 5 s
            # pool-purge-delay.
            sleep 0.5
            burst=$(rss_kb "$CPU_PID")
            up2=$(upstream_conns)
            echo >&"${IDLE[1]}"
            wait "$idle_pid" || die "bench/proxy_idle.py through $p failed: $(cat "$RESULTS/logs/$tag.err")"
            stop_pair "$p"
            per_client=$(awk -v a="$idle" -v b="$before" -v n="$MEM_CONNS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
            per_pooled=$(awk -v a="$burst" -v b="$idle" -v n="$((up2 - up1))" 'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "nan" }')
            echo "$p,$MEM_CONNS,$MEM_POOL,$r,$before,$idle,$burst,$up0,$up1,$up2,$per_client,$per_pooled" >>"$mem"
            log "$(printf 'memory round %s/%s %-7s RSS %6s -> %6s kB (%s idle clients: %6s B each) -> %6s kB (upstream %s -> %s: %6s B per pooled)' \
                "$r" "$ROUNDS" "$p" "$before" "$idle" "$MEM_CONNS" "$per_client" "$burst" "$up1" "$up2" "$per_pooled")"
            sleep 0.5
        done
    done
fi

# ---- syscalls per request -----------------------------------------------------------

sys=$RESULTS/proxy-syscalls.csv
echo "proxy,pool,requests,upstream_connects,syscall,calls,per_request" >"$sys"
for pool in $POOLS; do
    part syscalls || break
    for p in "${PROXIES[@]}"; do
        tag=proxy-strace-$p-pool$pool
        start_pair "$p" "$tag" "$pool"
        strace -c -f -p "$CPU_PID" -o "$RESULTS/logs/$tag.strace" 2>"$RESULTS/logs/$tag.strace.err" &
        strace_pid=$!
        # strace prints "Process N attached" once it is in.
        for i in $(seq 100); do
            grep -q attached "$RESULTS/logs/$tag.strace.err" 2>/dev/null && break
            sleep 0.05
        done
        taskset -c "$LOAD_CPU" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" -c "$CONNS" -n "$SYS_REQUESTS" \
            --timeout 30s --json >"$RESULTS/logs/$tag.json" 2>"$RESULTS/logs/$tag.err" ||
            die "load through $p under strace failed: $(cat "$RESULTS/logs/$tag.err")"
        sleep 0.25
        kill -INT "$strace_pid"
        wait "$strace_pid" || true
        stop_pair "$p"
        n=$(jq .requests "$RESULTS/logs/$tag.json")
        ups=$((BACKEND_ACCEPTED - 1))
        # strace -c: "% time seconds usecs/call calls [errors] syscall"; the
        # last line is the total.
        awk -v p="$p" -v pool="$pool" -v n="$n" -v u="$ups" '
            $1 ~ /^[0-9.]+$/ && NF >= 5 { printf "%s,%s,%s,%s,%s,%s,%.3f\n", p, pool, n, u, $NF, $4, $4 / n }
        ' "$RESULTS/logs/$tag.strace" >>"$sys"
        log "syscalls pool $pool $p: $(awk -F, -v p="$p" -v pool="$pool" '$1 == p && $2 == pool && $5 == "total" { print $7 }' "$sys") per request, $ups upstream connects for $n requests"
        sleep 0.5
    done
done

# ---- tables ------------------------------------------------------------------------

median() {
    local v
    v=$(csv_column "$1" "$2" "$3" | grep -v '^nan$' || true)
    [[ -n $v ]] || { echo -; return; }
    spread $v | awk '{ print $1 }'
}
cell() { # FILE FILTER COLUMN -> "median (min-max)"
    local v
    v=$(csv_column "$1" "$2" "$3")
    [[ -n $v ]] || { echo -; return; }
    read -r m lo hi < <(spread $v)
    fmt_spread "$m" "$lo" "$hi"
}
sum() { csv_column "$1" "$2" "$3" | awk '{ s += $1 } END { print s + 0 }'; }
is() { echo "c[\"proxy\"] == \"$1\""; }
# at_most VALUE BOUND -> "met" or "MISSED by N%"
at_most() {
    awk -v v="$1" -v b="$2" 'BEGIN {
        if (v != v + 0 || b != b + 0) print "n/a"
        else if (v <= b) print "met"
        else printf "MISSED by %.0f%%\n", (v - b) / b * 100
    }'
}

header "Reverse proxy (issue 17): tenk serve proxy vs nginx-light (1 worker) vs HAProxy (nbthread 1, http-reuse always), idle upstream pool POOL for all; backend tenk serve http on CPU $LOAD_CPU with the client"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "# nginx: $(nginx -v 2>&1 | sed 's/.*version: //'); haproxy: $(haproxy -v | awk 'NR == 1 { print $3 }'); wrk: $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
echo

if part throughput; then
    echo "Requests per proxy CPU-second, \`wrk -t1 -c$CONNS -d$DURATION\` (median of $ROUNDS, min-max; nginx: its one worker), then per wall second; upstream connects counted by the backend:"
    echo
    echo "| pool | proxy | req/CPU-s | tenk/this (goal) | req/s | proxy core busy | backend CPU-s | upstream connects | req per upstream conn | client core busy | foreign | errors |"
    echo "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for pool in $POOLS; do
        t=$(median "$raw" "$(is tenk) && c[\"pool\"] == $pool" per_cpu_s)
        for p in "${PROXIES[@]}"; do
            s="$(is "$p") && c[\"pool\"] == $pool"
            vs=-
            case $p in
                nginx) goal=1.2 ;;
                haproxy) goal=1.0 ;;
                *) goal= ;;
            esac
            if [[ -n $goal ]]; then
                rt=$(ratio "$t" "$(median "$raw" "$s" per_cpu_s)")
                vs="${rt}x $(meets "$rt" "$goal") (≥ $goal)"
            fi
            echo "| $pool | $p | $(cell "$raw" "$s" per_cpu_s) | $vs | $(cell "$raw" "$s" rps) | $(median "$raw" "$s" proxy_busy) | $(median "$raw" "$s" backend_cpu_s) | $(cell "$raw" "$s" backend_accepted) | $(median "$raw" "$s" requests_per_upstream_conn) | $(median "$raw" "$s" load_core_busy) | $(median "$raw" "$s" foreign) | $(sum "$raw" "$s" errors) |"
        done
    done
    echo
fi

if part p99; then
    echo "Latency at a fixed open-loop rate, $CONNS connections (\`tenk load http http://PROXY/ --rate R -c $CONNS -d $DURATION --warmup $WARMUP\`; median of $ROUNDS, min-max):"
    echo
    echo "| pool | rate | proxy | p99 µs | p50 µs | max µs | achieved req/s | tenk p99 ≤ this (goal) | errors |"
    echo "|---:|---:|---|---:|---:|---:|---:|---|---:|"
    for pool in $POOLS; do
        for rate in $RATES; do
            t=$(median "$p99raw" "$(is tenk) && c[\"pool\"] == $pool && c[\"rate\"] == $rate" p99_us)
            for p in "${PROXIES[@]}"; do
                s="$(is "$p") && c[\"pool\"] == $pool && c[\"rate\"] == $rate"
                v=$(median "$p99raw" "$s" p99_us)
                goal=-
                [[ $p == tenk ]] || goal="$(ratio "$t" "$v")x $(at_most "$t" "$v")"
                echo "| $pool | $rate | $p | $(cell "$p99raw" "$s" p99_us) | $(median "$p99raw" "$s" p50_us | awk '{ printf "%.0f", $1 }') | $(median "$p99raw" "$s" max_us | awk '{ printf "%.0f", $1 }') | $(median "$p99raw" "$s" rps | awk '{ printf "%.0f", $1 }') | $goal | $(sum "$p99raw" "$s" errors) |"
            done
        done
    done
    echo
fi

if part memory; then
    echo "Proxy RSS per idle client connection ($MEM_CONNS clients, one GET each in turn) and per pooled upstream connection (then one GET on all of them at once; pool $MEM_POOL for all; median of $ROUNDS, min-max):"
    echo
    echo "| proxy | B per idle client | B per pooled upstream | upstream conns idle → after burst | RSS kB before → idle → burst |"
    echo "|---|---:|---:|---|---|"
    for p in "${PROXIES[@]}"; do
        s=$(is "$p")
        echo "| $p | $(cell "$mem" "$s" per_client_bytes) | $(cell "$mem" "$s" per_pooled_bytes) | $(median "$mem" "$s" upstream_idle) → $(median "$mem" "$s" upstream_burst) | $(median "$mem" "$s" rss_before_kb) → $(median "$mem" "$s" rss_idle_kb) → $(median "$mem" "$s" rss_burst_kb) |"
    done
    echo
fi

if part syscalls; then
    echo "Syscalls per request under \`strace -c -f -p PROXY\`, \`tenk load http -c $CONNS -n $SYS_REQUESTS\` (one run per pool):"
    echo
    names=$(awk -F, 'NR > 1 && $5 != "total" && $7 >= 0.05 { print $5 }' "$sys" | sort -u)
    printf '| syscall |'
    for pool in $POOLS; do
        for p in "${PROXIES[@]}"; do printf ' %s (pool %s) |' "$p" "$pool"; done
    done
    printf '\n|---|'
    for pool in $POOLS; do
        for p in "${PROXIES[@]}"; do printf -- '---:|'; done
    done
    printf '\n'
    for name in $names total; do
        printf '| %s |' "$name"
        for pool in $POOLS; do
            for p in "${PROXIES[@]}"; do
                v=$(awk -F, -v p="$p" -v pool="$pool" -v s="$name" '$1 == p && $2 == pool && $5 == s { print $7 }' "$sys")
                printf ' %s |' "${v:-0}"
            done
        done
        printf '\n'
    done
    printf '| upstream connects per request |'
    for pool in $POOLS; do
        for p in "${PROXIES[@]}"; do
            printf ' %s |' "$(awk -F, -v p="$p" -v pool="$pool" '$1 == p && $2 == pool && $5 == "total" { printf "%.3f", $4 / $3 }' "$sys")"
        done
    done
    printf '\n\n'
fi
echo "raw: $raw, $p99raw, $mem, $sys"
