#!/usr/bin/env bash
# HTTP hello, server side: `tenk serve http` (GET / -> "Hello, World!") vs
# the tokio + httparse peer (current_thread) vs nginx-light (one worker),
# all answering GET / with the same 13-byte body and the same headers
# (Server, Date, Content-Type: text/plain, Content-Length; nginx adds
# Connection: keep-alive). Load: `tenk load http`, CONNS (100 1000)
# keep-alive connections x PIPELINES (1 16) requests in flight.
#
#   bench/http.sh                         # ROUNDS=5 DURATION=10s
#   ROUNDS=3 DURATION=3s bench/http.sh    # a quick pass
#
# Headline: requests per server CPU-second (for nginx, its one worker);
# raw requests/s beside it. Same method as echo.sh: fresh server per round,
# servers rotating, median and min-max of ROUNDS.
#
# Writes results/http-rounds.csv, results/http.csv.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-"100 1000"}
PIPELINES=${PIPELINES:-"1 16"}
SERVERS=(tenk tokio nginx)

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    log "installing nginx-light"
    (apt-get update -qq && apt-get install -y -qq nginx-light) >&2 || die "cannot install nginx-light"
fi
PATH=$PATH:/usr/sbin
build_tenk
build_bench peers
"$TENK" serve http --help >/dev/null 2>&1 || die "this tenk has no \`serve http\`"

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

raw=$RESULTS/http-rounds.csv
echo "server,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,load_foreign,server_cpu_ticks_s,user_share" >"$raw"
for c in $CONNS; do
    for p in $PIPELINES; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $(rotate "$r" "${SERVERS[@]}"); do
                tag=http-$s-c$c-p$p-r$r
                start "$s" "$RESULTS/logs/$tag.server"
                # measure_load samples SERVER_PID: point it at the worker.
                main_pid=$SERVER_PID
                SERVER_PID=$CPU_PID
                measure_load "$tag" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" \
                    -c "$c" --pipeline "$p" -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
                SERVER_PID=$main_pid
                stop "$s"
                echo "$s,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_LOAD_FOREIGN,$M_SERVER_CPU_TICKS,$M_USER_SHARE" >>"$raw"
                log "$(printf 'c=%-5s p=%-2s round %s/%s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s' \
                    "$c" "$p" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS")"
                sleep 0.5
            done
        done
    done
done

summary=$RESULTS/http.csv
echo "server,conns,pipeline,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rps_min,rps_max,server_cpu_median,p99_median,errors" >"$summary"
for c in $CONNS; do
    for p in $PIPELINES; do
        for s in "${SERVERS[@]}"; do
            sel="c[\"server\"] == \"$s\" && c[\"conns\"] == $c && c[\"pipeline\"] == $p"
            read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
            read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
            read -r cm _ _ < <(spread $(csv_column "$raw" "$sel" server_cpu_s))
            read -r p99 _ _ < <(spread $(csv_column "$raw" "$sel" p99_us))
            errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "$s,$c,$p,$ROUNDS,$pm,$pmin,$pmax,$rm,$rmin,$rmax,$cm,$p99,$errors" >>"$summary"
        done
    done
done

get() { csv_column "$summary" "c[\"server\"] == \"$1\" && c[\"conns\"] == $2 && c[\"pipeline\"] == $3" "$4"; }
cell() { fmt_spread "$(get "$1" "$2" "$3" "$4_median")" "$(get "$1" "$2" "$3" "$4_min")" "$(get "$1" "$2" "$3" "$4_max")"; }

header "HTTP GET / \"Hello, World!\": tenk serve http vs tokio + httparse (current_thread) vs nginx-light (1 worker); load: tenk load http"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max), then raw requests/s:"
echo
echo "| conns | in flight | tenk req/CPU-s | tokio req/CPU-s | nginx req/CPU-s | tenk/tokio | tenk/nginx | | tenk req/s | tokio req/s | nginx req/s | errors t/k/n |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"
for c in $CONNS; do
    for p in $PIPELINES; do
        t=$(get tenk "$c" "$p" per_cpu_median)
        echo "| $c | $p | $(cell tenk "$c" "$p" per_cpu) | $(cell tokio "$c" "$p" per_cpu) | $(cell nginx "$c" "$p" per_cpu) | $(ratio "$t" "$(get tokio "$c" "$p" per_cpu_median)")x | $(ratio "$t" "$(get nginx "$c" "$p" per_cpu_median)")x | | $(cell tenk "$c" "$p" rps) | $(cell tokio "$c" "$p" rps) | $(cell nginx "$c" "$p" rps) | $(get tenk "$c" "$p" errors)/$(get tokio "$c" "$p" errors)/$(get nginx "$c" "$p" errors) |"
    done
done
echo
echo "raw rounds: $raw; medians: $summary"
