#!/usr/bin/env bash
# Scaling over connections and memory under load (issue 20): echo
# (`tenk serve echo` vs the tokio current_thread peer, 64 B) and HTTP
# (`tenk serve http` vs nginx-light, one worker, GET / "Hello, World!") at
# CONNS (10 100 1000 10000) busy connections, one request in flight each,
# closed loop (`tenk load`): requests per server CPU-second and the
# server's RSS under load. Then, at BUSY_CONNS (10000) busy connections,
# the servers with no peer here: chat (`tenk serve chat`, `tenk load chat
# -c 10000 --rooms CHAT_ROOMS --senders CHAT_SENDERS --rate CHAT_RATE`:
# every member receives its room's messages) and the proxy (`tenk serve
# proxy` in front of `tenk serve http`, both on SERVER_CPU; `tenk load
# http -c 10000` through the proxy).
#
#   bench/scale.sh                            # ROUNDS=3 DURATION=3s: about 8 min
#   ROUNDS=5 DURATION=10s bench/scale.sh      # the reference run
#   PARTS=chat bench/scale.sh                 # some parts only (echo http chat proxy)
#
# RSS is VmRSS of the serving process (nginx: its one worker, whose
# connections they are; the master holds none and stays at its start-up
# size), sampled five times a second while the load runs: the peak over
# the run, and the idle figure of the fresh server just before. "Per
# connection" is (peak - idle) / connections: user-space memory only
# (socket buffers live in the kernel's slabs, charged to no process).
# CPU method as bench/echo.sh (server on SERVER_CPU, load on LOAD_CPU,
# fresh server per run, servers alternating, median and min-max of ROUNDS).
#
# Writes results/scale-rounds.csv (every run) and results/scale.csv
# (medians; bench/chart draws docs/charts/scale.svg from it).

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=${PARTS:-"echo http chat proxy"}
CONNS=${CONNS:-"10 100 1000 10000"}
BUSY_CONNS=${BUSY_CONNS:-10000}
CHAT_ROOMS=${CHAT_ROOMS:-100}
CHAT_SENDERS=${CHAT_SENDERS:-100}
CHAT_RATE=${CHAT_RATE:-1000}
SIZE=64

PATH=$PATH:/usr/sbin
if [[ " $PARTS " == *" http "* ]] && ! command -v nginx >/dev/null; then
    log "installing nginx-light"
    (apt-get update -qq && apt-get install -y -qq nginx-light) >&2 || die "cannot install nginx-light"
fi
build_tenk
build_bench peers
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
part() { [[ " $PARTS " == *" $1 "* ]]; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# rss_start PID FILE: VmRSS of PID five times a second into FILE until
# rss_stop; rss_peak FILE: the largest.
rss_start() {
    (
        while [[ -e /proc/$1 ]]; do
            rss_kb "$1"
            sleep 0.2
        done
    ) >"$2" &
    RSS_PID=$!
    taskset -pc "$LOAD_CPU" "$RSS_PID" >/dev/null
}
rss_stop() {
    [[ -n ${RSS_PID:-} ]] || return 0
    kill "$RSS_PID" 2>/dev/null || true
    wait "$RSS_PID" 2>/dev/null || true
    RSS_PID=
}
rss_peak() { awk '$1 > m { m = $1 } END { print m + 0 }' "$1"; }

BACKEND_PID=
stop_backend() {
    [[ -n $BACKEND_PID ]] || return 0
    kill -INT "$BACKEND_PID" 2>/dev/null || true
    wait "$BACKEND_PID" 2>/dev/null || true
    BACKEND_PID=
}

# start WORKLOAD SERVER LOG: a fresh server; sets SERVER_PID (the process
# to stop), SERVER_PORT and CPU_PID (the process measured).
start() {
    case $1-$2 in
        echo-tenk) start_server "$3" "$TENK" serve echo --port 0 ;;
        echo-tokio) start_server "$3" "$PEERS/tokio-echo" --port 0 --runtime current ;;
        http-tenk) start_server "$3" "$TENK" serve http --port 0 ;;
        http-nginx) start_nginx nginx.conf "$3" "$SERVER_CPU" 1 ;;
        chat-tenk) start_server "$3" "$TENK" serve chat --port 0 ;;
        proxy-tenk)
            start_server "$3.backend" "$TENK" serve http --port 0
            BACKEND_PID=$SERVER_PID
            local backend_port=$SERVER_PORT
            start_server "$3" "$TENK" serve proxy --port 0 --upstream "127.0.0.1:$backend_port"
            ;;
        *) die "no server $2 for $1" ;;
    esac
    CPU_PID=$SERVER_PID
    [[ $2 != nginx ]] || CPU_PID=${NGINX_WORKERS[0]}
}

stop() {
    if [[ $1 == nginx ]]; then stop_nginx; else stop_server; fi
    stop_backend
}

load_cmd() { # WORKLOAD CONNS
    case $1 in
        echo) echo "$TENK load echo 127.0.0.1:$SERVER_PORT --size $SIZE -c $2" ;;
        http | proxy) echo "$TENK load http http://127.0.0.1:$SERVER_PORT/ -c $2" ;;
        chat) echo "$TENK load chat 127.0.0.1:$SERVER_PORT -c $2 --rooms $CHAT_ROOMS --senders $CHAT_SENDERS --rate $CHAT_RATE" ;;
    esac
}

trap 'rss_stop; sampler_stop; stop_server; stop_nginx; stop_backend' EXIT

raw=$RESULTS/scale-rounds.csv
echo "workload,server,conns,round,requests,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,rss_idle_kb,rss_peak_kb,per_conn_b,backend_rss_kb,foreign,load_foreign" >"$raw"

# one WORKLOAD SERVER CONNS ROUND
one() {
    local w=$1 s=$2 c=$3 r=$4 tag main_pid idle peak per backend_rss=-
    tag=scale-$w-$s-c$c-r$r
    start "$w" "$s" "$RESULTS/logs/$tag.server"
    idle=$(rss_kb "$CPU_PID")
    rss_start "$CPU_PID" "$RESULTS/logs/$tag.rss"
    main_pid=$SERVER_PID
    SERVER_PID=$CPU_PID
    # shellcheck disable=SC2046
    measure_load "$tag" $(load_cmd "$w" "$c") -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
    SERVER_PID=$main_pid
    rss_stop
    [[ -z $BACKEND_PID ]] || backend_rss=$(rss_kb "$BACKEND_PID")
    stop "$s"
    peak=$(rss_peak "$RESULTS/logs/$tag.rss")
    per=$(awk -v p="$peak" -v i="$idle" -v c="$c" 'BEGIN { printf "%.0f", (p - i) * 1024 / c }')
    echo "$w,$s,$c,$r,$M_REQUESTS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$idle,$peak,$per,$backend_rss,$M_FOREIGN,$M_LOAD_FOREIGN" >>"$raw"
    log "$(printf '%-5s c=%-5s round %s/%s %-5s %8s /s  %8s /CPU-s  RSS %6s -> %6s kB (%s B/conn)  errors %s  foreign %s' \
        "$w" "$c" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$(si "$M_PER_CPU")" "$idle" "$peak" "$per" "$M_ERRORS" "$M_FOREIGN")"
    sleep 0.5
}

for w in echo http; do
    part "$w" || continue
    case $w in echo) servers=(tenk tokio) ;; http) servers=(tenk nginx) ;; esac
    for c in $CONNS; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $(rotate "$r" "${servers[@]}"); do
                one "$w" "$s" "$c" "$r"
            done
        done
    done
done
for w in chat proxy; do
    part "$w" || continue
    for ((r = 1; r <= ROUNDS; r++)); do
        one "$w" tenk "$BUSY_CONNS" "$r"
    done
done

summary=$RESULTS/scale.csv
echo "workload,server,conns,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rss_peak_median,rss_peak_min,rss_peak_max,rss_idle_median,per_conn_median,backend_rss_median,errors,foreign_max" >"$summary"
while IFS=, read -r w s c; do
    sel="c[\"workload\"] == \"$w\" && c[\"server\"] == \"$s\" && c[\"conns\"] == $c"
    read -r pm plo phi < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
    read -r rm _ _ < <(spread $(csv_column "$raw" "$sel" rps))
    read -r km klo khi < <(spread $(csv_column "$raw" "$sel" rss_peak_kb))
    read -r im _ _ < <(spread $(csv_column "$raw" "$sel" rss_idle_kb))
    read -r bm _ _ < <(spread $(csv_column "$raw" "$sel" per_conn_b))
    bk=$(csv_column "$raw" "$sel" backend_rss_kb | grep -v '^-$' || true)
    if [[ -n $bk ]]; then read -r bk _ _ < <(spread $bk); else bk=-; fi
    errs=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
    fmax=$(csv_column "$raw" "$sel" foreign | sort -g | tail -1)
    echo "$w,$s,$c,$ROUNDS,$pm,$plo,$phi,$rm,$km,$klo,$khi,$im,$bm,$bk,$errs,$fmax" >>"$summary"
done < <(tail -n +2 "$raw" | cut -d, -f1-3 | awk '!seen[$0]++')

header "Scaling over busy connections (issue 20): per server CPU-second and server RSS under load; load: tenk load, closed loop, 1 in flight"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| workload | server | connections | per server CPU-s | req/s | RSS idle kB | RSS under load kB | B per busy conn | errors | foreign max |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
tail -n +2 "$summary" | while IFS=, read -r w s c _ pm plo phi rm km klo khi im bm bk errs fmax; do
    label=$s
    [[ $w != proxy ]] || label="tenk proxy (backend tenk http: $bk kB)"
    printf '| %s | %s | %s | %s | %s | %s | %s (%s-%s) | %s | %s | %s |\n' "$w" "$label" "$c" "$(fmt_spread "$pm" "$plo" "$phi")" \
        "$(si "$rm")" "$im" "$km" "$klo" "$khi" "$bm" "$errs" "$fmax"
done
echo
echo "chat: $CHAT_ROOMS rooms, $CHAT_SENDERS senders, $CHAT_RATE messages/s in all (its requests are deliveries); proxy: tenk serve proxy and its backend both on CPU $SERVER_CPU, CPU and RSS the proxy's"
echo
echo "raw: $raw, $summary"
