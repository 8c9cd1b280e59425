#!/usr/bin/env bash
# Static files: `tenk serve http --root DIR` vs nginx-light (`sendfile on;
# tcp_nopush on;` as Debian's nginx.conf has them, one worker) serving the
# same directory, a 1 KiB and a 1 MiB file, CONNS (100) keep-alive
# connections, one request in flight each, each server driven in the same
# run by every client of CLIENTS (`wrk -t1` and `tenk load http`;
# clients.sh). Both open the file per request (nginx's open_file_cache is
# off by default), send it with sendfile(2) and cork the head with the
# file's first bytes (tenk for files up to 64 KiB, nginx with tcp_nopush).
#
#   bench/static.sh                          # ROUNDS=3 DURATION=3s
#   ROUNDS=5 DURATION=10s bench/static.sh    # the reference run
#   CLIENTS=wrk bench/static.sh              # one client
#
# Headline: requests per server CPU-second (utime + stime of tenk, or of
# nginx's one worker, from /proc over the load's measured window) and its
# inverse, server CPU µs per request; raw requests/s beside it. Same method
# as echo.sh: fresh server per round, clients and servers rotating, median
# and min-max.
# Target (issue 7): >= 1.0x nginx per server CPU-second.
#
# Writes results/static-rounds.csv, results/static.csv.

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH/clients.sh"

CONNS=${CONNS:-"100"}
SIZES=${SIZES:-"1k 1m"}
read -r -a CLIENTS <<<"${CLIENTS:-wrk tenk}"
SERVERS=(tenk nginx)

PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    log "installing nginx-light and wrk"
    (apt-get update -qq && apt-get install -y -qq nginx-light wrk) >&2 || die "cannot install nginx-light and wrk"
fi
build_tenk
"$TENK" serve http --help 2>/dev/null | grep -q -- --root || die "this tenk has no \`serve http --root\`"

# The served directory, readable by nginx's worker (which may drop to an
# unprivileged user).
DOCROOT=$(mktemp -d /tmp/tenk-bench-static.XXXXXX)
chmod 755 "$DOCROOT"
head -c 1024 /dev/urandom >"$DOCROOT/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$DOCROOT/1m.bin"
chmod 644 "$DOCROOT"/*.bin

# start NAME LOG: a fresh server; sets SERVER_PID (the process to stop),
# SERVER_PORT and CPU_PID (the process whose CPU is the server's).
start() {
    case $1 in
        tenk)
            start_server "$2" "$TENK" serve http --port 0 --root "$DOCROOT"
            CPU_PID=$SERVER_PID
            ;;
        nginx)
            start_nginx static.conf "$2" "$SERVER_CPU" 1 "s#@ROOT@#$DOCROOT#g"
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
trap 'sampler_stop; [[ -n ${SERVER_PID:-} ]] && kill -KILL "$SERVER_PID" 2>/dev/null; stop_nginx; rm -rf "$DOCROOT"; true' EXIT

# Both servers must answer the file whole before anything is measured.
check() {
    local size=$1 got
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$SERVER_PORT/$size.bin" || true)
    [[ $got == "200 $(stat -c %s "$DOCROOT/$size.bin")" ]] || die "$2 answered /$size.bin with: $got"
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
raw=$RESULTS/static-rounds.csv
echo "client,server,size,conns,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,client_us_per_req" >"$raw"
for size in $SIZES; do
    for c in $CONNS; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for client in $(rotate "$r" "${CLIENTS[@]}"); do
                for s in $(rotate "$r" "${SERVERS[@]}"); do
                    tag=static-$client-$s-$size-c$c-r$r
                    start "$s" "$RESULTS/logs/$tag.server"
                    if command -v curl >/dev/null; then check "$size" "$s"; fi
                    mapfile -t cmd < <(client_cmd "$client" http "$c" 1 "http://127.0.0.1:$SERVER_PORT/$size.bin")
                    # measure_client samples SERVER_PID: point it at the worker.
                    main_pid=$SERVER_PID
                    SERVER_PID=$CPU_PID
                    measure_client "$tag" "$client" "${cmd[@]}"
                    SERVER_PID=$main_pid
                    stop "$s"
                    echo "$client,$s,$size,$c,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_CLIENT_US" >>"$raw"
                    log "$(printf '%-3s c=%-4s round %s/%s %-4s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s  foreign %s' \
                        "$size" "$c" "$r" "$ROUNDS" "$client" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS" "$M_FOREIGN")"
                    sleep 0.5
                done
            done
        done
    done
done

summary=$RESULTS/static.csv
summarize_rounds "$raw" "$summary" client,server,size,conns

get() { csv_column "$summary" "c[\"client\"] == \"$1\" && c[\"server\"] == \"$2\" && c[\"size\"] == \"$3\" && c[\"conns\"] == $4" "$5"; }
cell() { fmt_spread "$(get "$1" "$2" "$3" "$4" "$5_median")" "$(get "$1" "$2" "$3" "$4" "$5_min")" "$(get "$1" "$2" "$3" "$4" "$5_max")"; }
us_per() { awk -v v="$1" 'BEGIN { if (v > 0) printf "%.1f", 1e6 / v; else print "nan" }'; }

header "Static files (sendfile): tenk serve http --root vs nginx-light (sendfile on, tcp_nopush on, 1 worker); clients: ${CLIENTS[*]}, 1 request in flight per connection"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max), tenk/nginx as the median (min-max) of the rounds' ratios, server CPU µs per request, the client's CPU µs per request, raw requests/s:"
echo
echo "| file | conns | client | tenk req/CPU-s | nginx req/CPU-s | tenk/nginx (target 1.0) | tenk µs/req | nginx µs/req | client µs/req t / n | tenk req/s | nginx req/s | errors t/n |"
echo "|---|---:|---|---:|---:|---|---:|---:|---|---:|---:|---:|"
for size in $SIZES; do
    for c in $CONNS; do
        for client in "${CLIENTS[@]}"; do
            t=$(get "$client" tenk "$size" "$c" per_cpu_median)
            n=$(get "$client" nginx "$size" "$c" per_cpu_median)
            read -r qm qmin qmax < <(round_ratios "$raw" "$client" size="$size" conns="$c" per_cpu_s nginx)
            printf '| %s | %s | %s | %s | %s | %.2fx (%.2f-%.2f) %s | %s | %s | %s / %s | %s | %s | %s/%s |\n' "$size" "$c" "$client" \
                "$(cell "$client" tenk "$size" "$c" per_cpu)" "$(cell "$client" nginx "$size" "$c" per_cpu)" "$qm" "$qmin" "$qmax" "$(meets "$qm" 1.0)" \
                "$(us_per "$t")" "$(us_per "$n")" "$(get "$client" tenk "$size" "$c" client_us_median)" "$(get "$client" nginx "$size" "$c" client_us_median)" \
                "$(cell "$client" tenk "$size" "$c" rps)" "$(cell "$client" nginx "$size" "$c" rps)" \
                "$(get "$client" tenk "$size" "$c" errors)" "$(get "$client" nginx "$size" "$c" errors)"
        done
    done
done
echo
echo "raw rounds: ${raw#"$ROOT"/}; medians: ${summary#"$ROOT"/}"
