#!/usr/bin/env bash
# Static files: `tenk serve http --root DIR` vs nginx-light (`sendfile on`,
# one worker) serving the same directory, a 1 KiB and a 1 MiB file, CONNS
# (100) keep-alive connections, one request in flight each, driven by
# `tenk load http`. Both open the file per request (nginx's
# open_file_cache is off by default) and send it with sendfile(2).
#
#   bench/static.sh                          # ROUNDS=5 DURATION=10s
#   ROUNDS=1 DURATION=3s bench/static.sh     # a quick pass
#
# Headline: requests per server CPU-second (utime + stime of tenk, or of
# nginx's one worker, from /proc over the load's measured window) and its
# inverse, server CPU µs per request; raw requests/s beside it. Same method
# as echo.sh: fresh server per round, servers rotating, median and min-max.
# Target (issue 7): >= 1.0x nginx per server CPU-second.
#
# Writes results/static-rounds.csv, results/static.csv.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-"100"}
SIZES=${SIZES:-"1k 1m"}
SERVERS=(tenk nginx)

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    log "installing nginx-light"
    (apt-get update -qq && apt-get install -y -qq nginx-light) >&2 || die "cannot install nginx-light"
fi
PATH=$PATH:/usr/sbin
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

raw=$RESULTS/static-rounds.csv
echo "server,size,conns,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established" >"$raw"
for size in $SIZES; do
    for c in $CONNS; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $(rotate "$r" "${SERVERS[@]}"); do
                tag=static-$s-$size-c$c-r$r
                start "$s" "$RESULTS/logs/$tag.server"
                if command -v curl >/dev/null; then check "$size" "$s"; fi
                # measure_load samples SERVER_PID: point it at the worker.
                main_pid=$SERVER_PID
                SERVER_PID=$CPU_PID
                measure_load "$tag" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/$size.bin" \
                    -c "$c" -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
                SERVER_PID=$main_pid
                stop "$s"
                echo "$s,$size,$c,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED" >>"$raw"
                log "$(printf '%-3s c=%-4s round %s/%s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s' \
                    "$size" "$c" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS")"
                sleep 0.5
            done
        done
    done
done

summary=$RESULTS/static.csv
echo "server,size,conns,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rps_min,rps_max,server_cpu_median,p99_median,errors" >"$summary"
for size in $SIZES; do
    for c in $CONNS; do
        for s in "${SERVERS[@]}"; do
            sel="c[\"server\"] == \"$s\" && c[\"size\"] == \"$size\" && c[\"conns\"] == $c"
            read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
            read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
            read -r cm _ _ < <(spread $(csv_column "$raw" "$sel" server_cpu_s))
            read -r p99 _ _ < <(spread $(csv_column "$raw" "$sel" p99_us))
            errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "$s,$size,$c,$ROUNDS,$pm,$pmin,$pmax,$rm,$rmin,$rmax,$cm,$p99,$errors" >>"$summary"
        done
    done
done

get() { csv_column "$summary" "c[\"server\"] == \"$1\" && c[\"size\"] == \"$2\" && c[\"conns\"] == $3" "$4"; }
cell() { fmt_spread "$(get "$1" "$2" "$3" "$4_median")" "$(get "$1" "$2" "$3" "$4_min")" "$(get "$1" "$2" "$3" "$4_max")"; }
us_per() { awk -v v="$1" 'BEGIN { if (v > 0) printf "%.1f", 1e6 / v; else print "nan" }'; }

header "Static files (sendfile): tenk serve http --root vs nginx-light (sendfile on, 1 worker); load: tenk load http, 1 request in flight per connection"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max), server CPU µs per request, raw requests/s:"
echo
echo "| file | conns | tenk req/CPU-s | nginx req/CPU-s | tenk/nginx (target 1.0) | tenk µs/req | nginx µs/req | | tenk req/s | nginx req/s | errors t/n |"
echo "|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|"
for size in $SIZES; do
    for c in $CONNS; do
        t=$(get tenk "$size" "$c" per_cpu_median)
        n=$(get nginx "$size" "$c" per_cpu_median)
        rt=$(ratio "$t" "$n")
        echo "| $size | $c | $(cell tenk "$size" "$c" per_cpu) | $(cell nginx "$size" "$c" per_cpu) | ${rt}x $(meets "$rt" 1.0) | $(us_per "$t") | $(us_per "$n") | | $(cell tenk "$size" "$c" rps) | $(cell nginx "$size" "$c" rps) | $(get tenk "$size" "$c" errors)/$(get nginx "$size" "$c" errors) |"
    done
done
echo
echo "raw rounds: $raw; medians: $summary"
