#!/usr/bin/env bash
# Echo, tenk vs tokio: `tenk serve echo` (one thread, edge-triggered) against
# the tokio current_thread echo peer, 64-byte messages, every combination of
# CONNS (100 1000 10000) connections and PIPELINES (1 16) messages in flight
# per connection, each server driven by two clients in the same run:
# `tenk load echo` and bench/probes echo-client, which shares no code with
# tenk (one thread, raw epoll, every echo checked byte for byte).
#
#   bench/echo.sh                            # ROUNDS=3 DURATION=3s: about 8 min
#   ROUNDS=5 DURATION=10s bench/echo.sh      # the reference run
#   CLIENTS=echo-client PARTS=cpu bench/echo.sh
#
# Parts (PARTS, default "cpu why"):
#   cpu  requests per server CPU-second (the server's exact runtime over the
#        client's measured window); raw requests/s beside it. Per cell and
#        client: ROUNDS rounds, a fresh server each, the clients alternating
#        inside a round and the servers inside each client's turn; the ratio
#        tenk/tokio is the median of the rounds' ratios (each round's tenk
#        over the same round's tokio, same client) with its min-max.
#   why  why the clients' figures differ: one more run per server, client and
#        CONNS at WHY_PIPELINES (1), with the server's syscalls counted by
#        `perf stat` on the syscall tracepoints for WHY_SECONDS (1) from
#        WARMUP + 1 s into the run (clients.sh): requests per server
#        wake-up, epoll_wait, recv, send and epoll_ctl calls per request
#        (a request: a read that returned data, exact at 1 in flight);
#        beside them the client's own CPU per request (its whole process)
#        and, for echo-client, its events per wake-up (its pacing). These
#        runs are not in the CPU figures. The count must end inside the
#        run: DURATION >= WHY_SECONDS + 1 s.
#
# Targets (issue 4, restated in issue 20): per server CPU-second >= 1.15x
# tokio at 10,000 connections, >= 1.05x at 1,000, >= 0.9x the syscall floor
# at 100 (pipeline 1; bench/floor.sh); raw requests/s >= 0.95x tokio.
#
# Writes results/echo-rounds.csv (every run), results/echo.csv (medians),
# results/echo-why.csv, and prints the tables (markdown) on stdout.
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
read -r -a CLIENTS <<<"${CLIENTS:-tenk echo-client}"
PARTS=${PARTS:-"cpu why"}
WHY_PIPELINES=${WHY_PIPELINES:-1}
WHY_SECONDS=${WHY_SECONDS:-1}
SERVERS=(tenk tokio)
part() { [[ " $PARTS " == *" $1 "* ]]; }

build_tenk
build_bench peers
build_bench probes
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

server_cmd() {
    case $1 in
        tenk) echo "$TENK serve echo --port 0" ;;
        tokio) echo "$PEERS/tokio-echo --port 0 --runtime current" ;;
    esac
}

# The floor of this run (the goal at 100 connections, and the gap table).
floor_probe
FLOOR_NS=$(csv_column "$RESULTS/floor.csv" 'c["key"] == "floor_rt_64"' ns_median)
FLOOR_PER_CPU=$(awk -v ns="$FLOOR_NS" 'BEGIN { printf "%.0f", 1e9 / ns }')

# run_one TAG SERVER CLIENT CONNS PIPELINE: a fresh server measured by CLIENT.
run_one() {
    local tag=$1 s=$2 client=$3 c=$4 p=$5 cmd
    # shellcheck disable=SC2046
    start_server "$RESULTS/logs/$tag.server" $(server_cmd "$s")
    mapfile -t cmd < <(client_cmd "$client" echo "$c" "$p" "127.0.0.1:$SERVER_PORT")
    if [[ -n ${WHY:-} ]]; then
        why_start "$tag" "$SERVER_PID" "$(awk -v w="$(seconds "$WARMUP")" 'BEGIN { print w + 1 }')" "$WHY_SECONDS"
    fi
    measure_client "$tag" "$client" "${cmd[@]}"
    stop_server
}

raw=$RESULTS/echo-rounds.csv
if part cpu; then
    echo "client,server,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,server_cpu_ticks_s,user_share,client_us_per_req" >"$raw"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for client in $(rotate "$r" "${CLIENTS[@]}"); do
                    for s in $(rotate "$r" "${SERVERS[@]}"); do
                        tag=echo-$client-$s-c$c-p$p-r$r
                        run_one "$tag" "$s" "$client" "$c" "$p"
                        echo "$client,$s,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_SERVER_CPU_TICKS,$M_USER_SHARE,$M_CLIENT_US" >>"$raw"
                        log "$(printf 'c=%-5s p=%-2s round %s/%s %-11s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s  foreign %s' \
                            "$c" "$p" "$r" "$ROUNDS" "$client" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS" "$M_FOREIGN")"
                        sleep 0.5
                    done
                done
            done
        done
    done
fi

why=$RESULTS/echo-why.csv
if part why; then
    echo "client,server,conns,pipeline,rps,perf_rps,per_cpu_s,wait_per_req,ctl_per_req,recv_per_req,send_per_req,req_per_wake,client_us_per_req,client_events_per_wake" >"$why"
    for c in $CONNS; do
        for p in $WHY_PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                for s in "${SERVERS[@]}"; do
                    tag=echo-why-$client-$s-c$c-p$p
                    WHY=1 run_one "$tag" "$s" "$client" "$c" "$p"
                    why_read "$tag" "$WHY_SECONDS"
                    ev=$(jq '.events_per_wakeup // "-"' "$RESULTS/logs/$tag.out" | tr -d '"')
                    echo "$client,$s,$c,$p,$M_RPS,$W_RPS,$M_PER_CPU,$W_WAIT,$W_CTL,$W_RECV,$W_SEND,$W_PER_WAKE,$M_CLIENT_US,$ev" >>"$why"
                    log "why c=$c p=$p $client $s: $(si "$M_RPS") req/s, $W_PER_WAKE req per server wake-up, client $M_CLIENT_US µs/req"
                    sleep 0.5
                done
            done
        done
    done
fi

# ---- tables -------------------------------------------------------------------

header "echo, 64-byte messages: tenk serve echo (1 thread, edge) vs tokio current_thread; clients: ${CLIENTS[*]}"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo

summary=$RESULTS/echo.csv
if part cpu; then
    summarize_rounds "$raw" "$summary" client,server,conns,pipeline

    get() { # client server conns pipeline column
        csv_column "$summary" "c[\"client\"] == \"$1\" && c[\"server\"] == \"$2\" && c[\"conns\"] == $3 && c[\"pipeline\"] == $4" "$5"
    }
    cell() { fmt_spread "$(get "$1" "$2" "$3" "$4" "$5_median")" "$(get "$1" "$2" "$3" "$4" "$5_min")" "$(get "$1" "$2" "$3" "$4" "$5_max")"; }

    echo "Requests per server CPU-second (median of $ROUNDS, min-max) by client; tenk/tokio is the median of the rounds' ratios (min-max); then raw requests/s:"
    echo
    echo "| conns | in flight | client | tenk req/CPU-s | tokio req/CPU-s | tenk/tokio | target | | tenk req/s | tokio req/s | tenk/tokio (target 0.95) | errors t/k |"
    echo "|---:|---:|---|---:|---:|---:|---|---|---:|---:|---|---:|"
    for c in $CONNS; do
        for p in $PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                read -r qm qmin qmax < <(round_ratios "$raw" "$client" conns="$c" pipeline="$p" per_cpu_s tokio)
                read -r wm _ _ < <(round_ratios "$raw" "$client" conns="$c" pipeline="$p" rps tokio)
                case $c in
                    10000) target=1.15 ;;
                    1000) target=1.05 ;;
                    *) target= ;;
                esac
                if [[ -n $target ]]; then
                    verdict="≥ ${target}x tokio: $(meets "$qm" "$target")"
                elif [[ $c == 100 && $p == 1 ]]; then
                    floor_ratio=$(ratio "$(get "$client" tenk "$c" "$p" per_cpu_median)" "$FLOOR_PER_CPU")
                    verdict="≥ 0.9x floor ($(si "$FLOOR_PER_CPU")): ${floor_ratio}x, $(meets "$floor_ratio" 0.9)"
                else
                    verdict="(none)"
                fi
                printf '| %s | %s | %s | %s | %s | %.2fx (%.2f-%.2f) | %s | | %s | %s | %.2fx %s | %s/%s |\n' \
                    "$c" "$p" "$client" "$(cell "$client" tenk "$c" "$p" per_cpu)" "$(cell "$client" tokio "$c" "$p" per_cpu)" \
                    "$qm" "$qmin" "$qmax" "$verdict" "$(cell "$client" tenk "$c" "$p" rps)" "$(cell "$client" tokio "$c" "$p" rps)" \
                    "$wm" "$(meets "$wm" 0.95)" "$(get "$client" tenk "$c" "$p" errors)" "$(get "$client" tokio "$c" "$p" errors)"
            done
        done
    done
    echo
    echo "Per request: the server's CPU (µs, median) split by its user-space share of utime + stime (user = the server's own code, the rest the kernel's); the client's whole-process CPU per request; server CPU used in the window (s, of $(seconds "$DURATION")); p99 (tenk load only; µs); the share of the server's core that went to anything else (median / max):"
    echo
    echo "| conns | in flight | client | tenk µs/req (user + kernel) | tokio µs/req (user + kernel) | client µs/req under tenk / tokio | CPU s tenk / tokio | p99 µs tenk / tokio | foreign tenk; tokio |"
    echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    split() { # client server conns pipeline -> "total (user + kernel)" in µs per request
        awk -v r="$(get "$1" "$2" "$3" "$4" per_cpu_median)" -v u="$(get "$1" "$2" "$3" "$4" user_share_median)" \
            'BEGIN { t = 1e6 / r; printf "%.2f (%.2f + %.2f)", t, t * u, t * (1 - u) }'
    }
    for c in $CONNS; do
        for p in $PIPELINES; do
            for client in "${CLIENTS[@]}"; do
                printf '| %s | %s | %s | %s | %s | %.2f / %.2f | %.2f / %.2f | %s / %s | %s / %s; %s / %s |\n' "$c" "$p" "$client" \
                    "$(split "$client" tenk "$c" "$p")" "$(split "$client" tokio "$c" "$p")" \
                    "$(get "$client" tenk "$c" "$p" client_us_median)" "$(get "$client" tokio "$c" "$p" client_us_median)" \
                    "$(get "$client" tenk "$c" "$p" server_cpu_median)" "$(get "$client" tokio "$c" "$p" server_cpu_median)" \
                    "$(int "$(get "$client" tenk "$c" "$p" p99_median)")" "$(int "$(get "$client" tokio "$c" "$p" p99_median)")" \
                    "$(pct "$(get "$client" tenk "$c" "$p" foreign_median)")" "$(pct "$(get "$client" tenk "$c" "$p" foreign_max)")" \
                    "$(pct "$(get "$client" tokio "$c" "$p" foreign_median)")" "$(pct "$(get "$client" tokio "$c" "$p" foreign_max)")"
            done
        done
    done
    echo
fi

if part why; then
    echo "Why the clients differ (one run each, $WHY_SECONDS s of \`perf stat\` syscall counts of the server, per request = per read that returned data; rates: the client's whole run, and counted in that second): requests per server wake-up, the server's syscalls per request, the client's CPU per request and, for echo-client, its events per wake-up:"
    echo
    echo "| conns | in flight | client | server | req/s (run; counted) | req/CPU-s | req per wake-up | epoll_wait/req | recv/req | send/req | epoll_ctl/req | client µs/req | client events/wake |"
    echo "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$why" | awk -F, '{ printf "| %s | %s | %s | %s | %s; %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $4, $1, $2, $5, $6, $7, $12, $8, $10, $11, $9, $13, $14 }'
    echo
fi
# shellcheck disable=SC2086 # CONNS is a list
gap_table "$summary" "$why" $CONNS
echo "raw rounds: ${raw#"$ROOT"/}; medians: ${summary#"$ROOT"/}; why: ${why#"$ROOT"/}; floor: ${RESULTS#"$ROOT"/}/floor.csv"
