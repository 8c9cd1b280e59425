#!/usr/bin/env bash
# HTTP hello, server side: `tenk serve http` (GET / -> "Hello, World!") vs
# the tokio + httparse peer (current_thread) vs nginx-light (one worker),
# all answering GET / with the same 13-byte body and the same headers
# (Server, Date, Content-Type: text/plain, Content-Length; nginx adds
# Connection: keep-alive). CONNS (100 1000 10000) keep-alive connections x
# PIPELINES (1 16) requests in flight, each server driven in the same run by
# every client of CLIENTS: `tenk load http`, and the independent wrk
# (`-t1`, 1 in flight only: it cannot pipeline without Lua) and
# `h2load --h1 -t1 -m P` (-m is HTTP/1.1 pipelining).
#
#   bench/http.sh                            # ROUNDS=3 DURATION=3s: about 15 min
#   ROUNDS=5 DURATION=10s bench/http.sh      # the reference run
#   CLIENTS="wrk" PIPELINES=1 bench/http.sh  # one client
#   SKIP=tenk-nginx-10000-16 bench/http.sh   # leave a run out (see SKIP below)
#   OUT=http-p16 PIPELINES=16 PARTS=cpu bench/http.sh   # into results/http-p16*.csv
#
# Parts (PARTS, default "cpu why"), as in echo.sh:
#   cpu  requests per server CPU-second (for nginx, its one worker) over the
#        client's measured window, raw requests/s beside it; fresh server per
#        run, the clients alternating inside a round and the servers inside
#        each client's turn; ratios are the median (min-max) of the rounds'
#        ratios, each server measured by the same client in the same round.
#   why  one more run per server, client and CONNS at WHY_PIPELINES (1):
#        the server's syscalls by `perf stat` (clients.sh) for WHY_SECONDS
#        (1), per request and per wake-up, and the client's CPU per request
#        (wrk, without a warm-up, is counted near the end of its run).
#        The count must end inside the run: DURATION >= WHY_SECONDS + 1 s.
#
# Target (issue 6, restated in issue 20): per server CPU-second >= 1.3x
# nginx, with the independent clients.
#
# Writes results/http-rounds.csv, results/http.csv, results/http-why.csv
# (OUT names them otherwise).
# First the syscall floor probe (bench/floor.sh -> results/floor.csv: the
# floor of the same run; FLOOR=keep reuses the file); last the gap between
# each server's CPU per request and that floor, split (bench/gap.py).

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH/clients.sh"

CONNS=${CONNS:-"100 1000 10000"}
PIPELINES=${PIPELINES:-"1 16"}
read -r -a CLIENTS <<<"${CLIENTS:-tenk wrk h2load}"
PARTS=${PARTS:-"cpu why"}
WHY_PIPELINES=${WHY_PIPELINES:-1}
WHY_SECONDS=${WHY_SECONDS:-1}
# CLIENT-SERVER-CONNS-PIPELINE runs left out (none by default).
SKIP=${SKIP-}
# The results' name: results/$OUT-rounds.csv, $OUT.csv, $OUT-why.csv.
OUT=${OUT:-http}
SERVERS=(tenk tokio nginx)
part() { [[ " $PARTS " == *" $1 "* ]]; }

PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
    log "installing nginx-light, wrk and nghttp2-client (h2load)"
    (apt-get update -qq && apt-get install -y -qq nginx-light wrk nghttp2-client) >&2 ||
        die "cannot install nginx-light, wrk and nghttp2-client"
fi
build_tenk
build_bench peers
build_bench probes
# The floor of this run, for the gap table (issue 20's floor goal).
floor_probe
"$TENK" serve http --help >/dev/null 2>&1 || die "this tenk has no \`serve http\`"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# start NAME LOG: a fresh server; sets SERVER_PID (the process to stop),
# SERVER_PORT and CPU_PID (the process whose CPU is the server's).
start() {
    case $1 in
        tenk)
            start_server "$2" "$TENK" serve http --port 0
            CPU_PID=$SERVER_PID
            ;;
        tokio)
            # The same Server header length as tenk's, so every response
            # has the same size.
            start_server "$2" "$PEERS/tokio-http" --port 0 --runtime current --server-name tenk
            CPU_PID=$SERVER_PID
            ;;
        nginx)
            start_nginx nginx.conf "$2" "$SERVER_CPU" 1
            CPU_PID=${NGINX_WORKERS[0]}
            ;;
    esac
}

stop() {
    if [[ $1 == nginx ]]; then
        stop_nginx
    else
        stop_server
    fi
}
trap 'sampler_stop; [[ -n ${SERVER_PID:-} ]] && kill -KILL "$SERVER_PID" 2>/dev/null; stop_nginx; true' EXIT

# run_one TAG SERVER CLIENT CONNS PIPELINE: a fresh server measured by
# CLIENT; returns 1 (nothing run) where the client does not fit.
run_one() {
    local tag=$1 s=$2 client=$3 c=$4 p=$5 cmd main_pid
    mapfile -t cmd < <(client_cmd "$client" http "$c" "$p" "http://127.0.0.1:@PORT@/")
    ((${#cmd[@]})) || return 1
    [[ " $SKIP " != *" $client-$s-$c-$p "* ]] || { log "skipped: $client-$s-$c-$p (SKIP)"; return 1; }
    start "$s" "$RESULTS/logs/$tag.server"
    cmd=("${cmd[@]//@PORT@/$SERVER_PORT}")
    # measure_client samples SERVER_PID: point it at the worker.
    main_pid=$SERVER_PID
    SERVER_PID=$CPU_PID
    if [[ -n ${WHY:-} ]]; then
        # After the warm-up; wrk has none and connects inside its duration
        # (for seconds at 10,000 connections), so count near its end.
        local delay
        delay=$(awk -v w="$(seconds "$WARMUP")" -v d="$(seconds "$DURATION")" -v n="$WHY_SECONDS" -v wrk="$([[ $client == wrk ]] && echo 1)" \
            'BEGIN { x = wrk ? d - n - 0.3 : w + 1; print (x < 0.3 ? 0.3 : x) }')
        why_start "$tag" "$CPU_PID" "$delay" "$WHY_SECONDS"
    fi
    measure_client "$tag" "$client" "${cmd[@]}"
    SERVER_PID=$main_pid
    stop "$s"
}

raw=$RESULTS/$OUT-rounds.csv
if part cpu; then
    echo "client,server,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,server_cpu_ticks_s,user_share,client_us_per_req" >"$raw"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for client in $(rotate "$r" "${CLIENTS[@]}"); do
                    for s in $(rotate "$r" "${SERVERS[@]}"); do
                        tag=http-$client-$s-c$c-p$p-r$r
                        run_one "$tag" "$s" "$client" "$c" "$p" || continue
                        echo "$client,$s,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_SERVER_CPU_TICKS,$M_USER_SHARE,$M_CLIENT_US" >>"$raw"
                        log "$(printf 'c=%-5s p=%-2s round %s/%s %-6s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s  foreign %s' \
                            "$c" "$p" "$r" "$ROUNDS" "$client" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS" "$M_FOREIGN")"
                        sleep 0.5
                    done
                done
            done
        done
    done
fi

why=$RESULTS/$OUT-why.csv
if part why; then
    echo "client,server,conns,pipeline,rps,perf_rps,per_cpu_s,wait_per_req,ctl_per_req,recv_per_req,send_per_req,req_per_wake,client_us_per_req" >"$why"
    for c in $CONNS; do
        for p in $WHY_PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                for s in "${SERVERS[@]}"; do
                    tag=http-why-$client-$s-c$c-p$p
                    WHY=1 run_one "$tag" "$s" "$client" "$c" "$p" || continue
                    why_read "$tag" "$WHY_SECONDS"
                    echo "$client,$s,$c,$p,$M_RPS,$W_RPS,$M_PER_CPU,$W_WAIT,$W_CTL,$W_RECV,$W_SEND,$W_PER_WAKE,$M_CLIENT_US" >>"$why"
                    log "why c=$c p=$p $client $s: $(si "$M_RPS") req/s, $W_PER_WAKE req per server wake-up, client $M_CLIENT_US µs/req"
                    sleep 0.5
                done
            done
        done
    done
fi

# ---- tables -------------------------------------------------------------------

header "HTTP GET / \"Hello, World!\": tenk serve http vs tokio + httparse (current_thread) vs nginx-light (1 worker); clients: ${CLIENTS[*]}"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo

summary=$RESULTS/$OUT.csv
if part cpu; then
    summarize_rounds "$raw" "$summary" client,server,conns,pipeline

    get() { # client server conns pipeline column
        csv_column "$summary" "c[\"client\"] == \"$1\" && c[\"server\"] == \"$2\" && c[\"conns\"] == $3 && c[\"pipeline\"] == $4" "$5"
    }
    cell() { # "-" for a server left out (SKIP)
        [[ -n $(get "$1" "$2" "$3" "$4" "$5_median") ]] || { echo -; return; }
        fmt_spread "$(get "$1" "$2" "$3" "$4" "$5_median")" "$(get "$1" "$2" "$3" "$4" "$5_min")" "$(get "$1" "$2" "$3" "$4" "$5_max")"
    }
    vs() { # client conns pipeline peer [goal]
        local m lo hi
        read -r m lo hi < <(round_ratios "$raw" "$1" conns="$2" pipeline="$3" per_cpu_s "$4")
        [[ $m == "${m#nan}" && -n $m ]] || { echo -; return; }
        printf '%.2fx (%.2f-%.2f)' "$m" "$lo" "$hi"
        [[ -z ${5:-} ]] || printf ' %s' "$(meets "$m" "$5")"
    }

    echo "Requests per server CPU-second (median of $ROUNDS, min-max) by client; tenk/peer is the median of the rounds' ratios (min-max):"
    echo
    echo "| conns | in flight | client | tenk req/CPU-s | tokio req/CPU-s | nginx req/CPU-s | tenk/tokio | tenk/nginx (goal 1.3) | errors t/k/n |"
    echo "|---:|---:|---|---:|---:|---:|---:|---|---:|"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                [[ -n $(get "$client" tenk "$c" "$p" rps_median) ]] || continue
                echo "| $c | $p | $client | $(cell "$client" tenk "$c" "$p" per_cpu) | $(cell "$client" tokio "$c" "$p" per_cpu) | $(cell "$client" nginx "$c" "$p" per_cpu) | $(vs "$client" "$c" "$p" tokio) | $(vs "$client" "$c" "$p" nginx 1.3) | $(get "$client" tenk "$c" "$p" errors)/$(get "$client" tokio "$c" "$p" errors)/$(get "$client" nginx "$c" "$p" errors) |"
            done
        done
    done
    echo
    echo "Raw requests/s (median, min-max); per request the server's CPU (µs) split user + kernel by its utime/stime share, and the client's whole-process CPU (µs); p99 (µs, tenk load and wrk); foreign share of the server's core (median):"
    echo
    echo "| conns | in flight | client | tenk req/s | tokio req/s | nginx req/s | server µs/req t / k / n (user + kernel) | client µs/req t / k / n | p99 µs t / k / n | foreign t / k / n |"
    echo "|---:|---:|---|---:|---:|---:|---|---|---|---|"
    split() { # client server conns pipeline -> "total (user + kernel)"
        [[ -n $(get "$1" "$2" "$3" "$4" per_cpu_median) ]] || { echo -; return; }
        awk -v r="$(get "$1" "$2" "$3" "$4" per_cpu_median)" -v u="$(get "$1" "$2" "$3" "$4" user_share_median)" \
            'BEGIN { t = 1e6 / r; printf "%.2f (%.2f + %.2f)", t, t * u, t * (1 - u) }'
    }
    for c in $CONNS; do
        for p in $PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                [[ -n $(get "$client" tenk "$c" "$p" rps_median) ]] || continue
                echo "| $c | $p | $client | $(cell "$client" tenk "$c" "$p" rps) | $(cell "$client" tokio "$c" "$p" rps) | $(cell "$client" nginx "$c" "$p" rps) | $(split "$client" tenk "$c" "$p") / $(split "$client" tokio "$c" "$p") / $(split "$client" nginx "$c" "$p") | $(get "$client" tenk "$c" "$p" client_us_median) / $(get "$client" tokio "$c" "$p" client_us_median) / $(get "$client" nginx "$c" "$p" client_us_median) | $(int "$(get "$client" tenk "$c" "$p" p99_median)") / $(int "$(get "$client" tokio "$c" "$p" p99_median)") / $(int "$(get "$client" nginx "$c" "$p" p99_median)") | $(pct "$(get "$client" tenk "$c" "$p" foreign_median)") / $(pct "$(get "$client" tokio "$c" "$p" foreign_median)") / $(pct "$(get "$client" nginx "$c" "$p" foreign_median)") |"
            done
        done
    done
    echo
fi

if part why; then
    echo "Why the clients differ (one run each, $WHY_SECONDS s of \`perf stat\` syscall counts of the server, per request = per read that returned data): requests per server wake-up, the server's syscalls per request, the client's CPU per request:"
    echo
    echo "| conns | in flight | client | server | req/s (run; counted) | req/CPU-s | req per wake-up | epoll_wait/req | recv/req | send/req | epoll_ctl/req | client µs/req |"
    echo "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$why" | awk -F, '{ printf "| %s | %s | %s | %s | %s; %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $4, $1, $2, $5, $6, $7, $12, $8, $10, $11, $9, $13 }'
    echo
fi
# The floor goal names HTTP at 100 and 1,000 connections only.
gap_table "$summary" "$why" 100 1000
echo "raw rounds: ${raw#"$ROOT"/}; medians: ${summary#"$ROOT"/}; why: ${why#"$ROOT"/}; floor: ${RESULTS#"$ROOT"/}/floor.csv"
