#!/usr/bin/env bash
# Echo, tenk vs tokio: `tenk serve echo` (one thread, edge-triggered) against
# the tokio current_thread echo peer, 64-byte messages, every combination of
# CONNS (100 1000 10000) connections and PIPELINES (1 16) requests in flight
# per connection, driven by `tenk load echo`.
#
#   bench/echo.sh                         # ROUNDS=5 DURATION=10s
#   ROUNDS=3 DURATION=3s bench/echo.sh    # a quick pass
#
# Headline: requests per server CPU-second (the server's utime + stime over
# the load's measured window); raw requests/s beside it. Median of ROUNDS
# fresh-server rounds, tenk and tokio alternating, min-max in brackets.
# Targets (issue 4): per server CPU-second >= 1.15x tokio at 10,000
# connections, >= 1.05x at 1,000, >= 0.9x the syscall floor at 100 (pipeline
# 1; bench/floor.sh); raw requests/s >= 0.95x tokio everywhere.
#
# Writes results/echo-rounds.csv (every run), results/echo.csv (medians) and
# prints the tables (markdown) on stdout.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-"100 1000 10000"}
PIPELINES=${PIPELINES:-"1 16"}
SIZE=64
SERVERS=(tenk tokio)

build_tenk
build_bench peers

server_cmd() {
    case $1 in
        tenk) echo "$TENK serve echo --port 0" ;;
        tokio) echo "$PEERS/tokio-echo --port 0 --runtime current" ;;
    esac
}

# The floor at 100 connections comes from the floor probe (run it if absent).
if [[ ! -s $RESULTS/floor.csv ]]; then
    log "no results/floor.csv yet: running the syscall floor probe first"
    "$BENCH/floor.sh" >/dev/null
fi
FLOOR_NS=$(csv_column "$RESULTS/floor.csv" 'c["key"] == "floor_rt_64"' ns_median)
FLOOR_PER_CPU=$(awk -v ns="$FLOOR_NS" 'BEGIN { printf "%.0f", 1e9 / ns }')

raw=$RESULTS/echo-rounds.csv
echo "server,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,foreign,load_foreign,server_cpu_ticks_s,user_share" >"$raw"

for c in $CONNS; do
    for p in $PIPELINES; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $(rotate "$r" "${SERVERS[@]}"); do
                tag=echo-$s-c$c-p$p-r$r
                # shellcheck disable=SC2046
                start_server "$RESULTS/logs/$tag.server" $(server_cmd "$s")
                measure_load "$tag" "$TENK" load echo "127.0.0.1:$SERVER_PORT" \
                    -c "$c" --pipeline "$p" --size "$SIZE" -d "$DURATION" --warmup "$WARMUP" \
                    --timeout 30s --json
                stop_server
                echo "$s,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$M_FOREIGN,$M_LOAD_FOREIGN,$M_SERVER_CPU_TICKS,$M_USER_SHARE" >>"$raw"
                log "$(printf 'c=%-5s p=%-2s round %s/%s %-5s %8s req/s  server CPU %5.2fs  %8s req/CPU-s  errors %s  foreign %s' \
                    "$c" "$p" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$M_SERVER_CPU" "$(si "$M_PER_CPU")" "$M_ERRORS" "$M_FOREIGN")"
                sleep 0.5
            done
        done
    done
done

# ---- medians, spread, targets -----------------------------------------------

summary=$RESULTS/echo.csv
echo "server,conns,pipeline,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rps_min,rps_max,server_cpu_median,p99_median,errors,foreign_median,foreign_max,load_foreign_median,load_foreign_max,user_share_median" >"$summary"
for c in $CONNS; do
    for p in $PIPELINES; do
        for s in "${SERVERS[@]}"; do
            sel="c[\"server\"] == \"$s\" && c[\"conns\"] == $c && c[\"pipeline\"] == $p"
            read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
            read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
            read -r cm _ _ < <(spread $(csv_column "$raw" "$sel" server_cpu_s))
            read -r p99 _ _ < <(spread $(csv_column "$raw" "$sel" p99_us))
            read -r fm _ fmax < <(spread $(csv_column "$raw" "$sel" foreign))
            read -r lm _ lmax < <(spread $(csv_column "$raw" "$sel" load_foreign))
            read -r um _ _ < <(spread $(csv_column "$raw" "$sel" user_share))
            errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "$s,$c,$p,$ROUNDS,$pm,$pmin,$pmax,$rm,$rmin,$rmax,$cm,$p99,$errors,$fm,$fmax,$lm,$lmax,$um" >>"$summary"
        done
    done
done

get() { # server conns pipeline column
    csv_column "$summary" "c[\"server\"] == \"$1\" && c[\"conns\"] == $2 && c[\"pipeline\"] == $3" "$4"
}

header "echo, 64-byte messages: tenk serve echo (1 thread, edge) vs tokio current_thread; load: tenk load echo"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max), and raw requests/s:"
echo
echo "| conns | in flight | tenk req/CPU-s | tokio req/CPU-s | tenk/tokio | target | | tenk req/s | tokio req/s | tenk/tokio (target 0.95) | errors |"
echo "|---:|---:|---:|---:|---:|---|---|---:|---:|---|---:|"
for c in $CONNS; do
    for p in $PIPELINES; do
        tk=$(fmt_spread "$(get tenk "$c" "$p" per_cpu_median)" "$(get tenk "$c" "$p" per_cpu_min)" "$(get tenk "$c" "$p" per_cpu_max)")
        to=$(fmt_spread "$(get tokio "$c" "$p" per_cpu_median)" "$(get tokio "$c" "$p" per_cpu_min)" "$(get tokio "$c" "$p" per_cpu_max)")
        cpu_ratio=$(ratio "$(get tenk "$c" "$p" per_cpu_median)" "$(get tokio "$c" "$p" per_cpu_median)")
        case $c in
            10000) target=1.15 ;;
            1000) target=1.05 ;;
            *) target= ;;
        esac
        if [[ -n $target ]]; then
            verdict="≥ ${target}x tokio: $(meets "$cpu_ratio" "$target")"
        elif [[ $c == 100 && $p == 1 ]]; then
            floor_ratio=$(ratio "$(get tenk "$c" "$p" per_cpu_median)" "$FLOOR_PER_CPU")
            verdict="≥ 0.9x floor ($(si "$FLOOR_PER_CPU")): ${floor_ratio}x, $(meets "$floor_ratio" 0.9)"
        else
            verdict="(none)"
        fi
        tr=$(fmt_spread "$(get tenk "$c" "$p" rps_median)" "$(get tenk "$c" "$p" rps_min)" "$(get tenk "$c" "$p" rps_max)")
        or=$(fmt_spread "$(get tokio "$c" "$p" rps_median)" "$(get tokio "$c" "$p" rps_min)" "$(get tokio "$c" "$p" rps_max)")
        rps_ratio=$(ratio "$(get tenk "$c" "$p" rps_median)" "$(get tokio "$c" "$p" rps_median)")
        errs="$(get tenk "$c" "$p" errors)/$(get tokio "$c" "$p" errors)"
        echo "| $c | $p | $tk | $to | ${cpu_ratio}x | $verdict | | $tr | $or | ${rps_ratio}x $(meets "$rps_ratio" 0.95) | $errs |"
    done
done
echo
echo "Server CPU used in the measured window (median, seconds of $(seconds "$DURATION") s; one core is the most a one-thread server can use), p99 latency, and the noise indicators: the share of the server's core, and of the load's core, that went to anything else during the window (median / max over the rounds)."
echo
pct() { awk -v v="$1" 'BEGIN { printf "%.0f%%", v * 100 }'; }
echo "| conns | in flight | tenk CPU s | tokio CPU s | tenk p99 µs | tokio p99 µs | foreign, server core (tenk runs; tokio runs) | foreign, load core (tenk runs; tokio runs) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
    for p in $PIPELINES; do
        printf "| %s | %s | %.2f | %.2f | %.0f | %.0f | %s / %s; %s / %s | %s / %s; %s / %s |\n" "$c" "$p" \
            "$(get tenk "$c" "$p" server_cpu_median)" "$(get tokio "$c" "$p" server_cpu_median)" \
            "$(get tenk "$c" "$p" p99_median)" "$(get tokio "$c" "$p" p99_median)" \
            "$(pct "$(get tenk "$c" "$p" foreign_median)")" "$(pct "$(get tenk "$c" "$p" foreign_max)")" \
            "$(pct "$(get tokio "$c" "$p" foreign_median)")" "$(pct "$(get tokio "$c" "$p" foreign_max)")" \
            "$(pct "$(get tenk "$c" "$p" load_foreign_median)")" "$(pct "$(get tenk "$c" "$p" load_foreign_max)")" \
            "$(pct "$(get tokio "$c" "$p" load_foreign_median)")" "$(pct "$(get tokio "$c" "$p" load_foreign_max)")"
    done
done
echo
echo "Where the server's CPU goes, per request (median server CPU per request, split by the median user-space share of utime + stime): user space is the server's own code, the rest is the kernel's."
echo
echo "| conns | in flight | tenk µs/req | tenk user µs | tenk kernel µs | tokio µs/req | tokio user µs | tokio kernel µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
split() { # server conns pipeline -> "total user kernel" in µs per request
    awk -v r="$(get "$1" "$2" "$3" per_cpu_median)" -v u="$(get "$1" "$2" "$3" user_share_median)" \
        'BEGIN { t = 1e6 / r; printf "%.2f | %.2f | %.2f", t, t * u, t * (1 - u) }'
}
for c in $CONNS; do
    for p in $PIPELINES; do
        echo "| $c | $p | $(split tenk "$c" "$p") | $(split tokio "$c" "$p") |"
    done
done
echo
echo "raw rounds: $raw; medians: $summary"
