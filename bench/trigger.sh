#!/usr/bin/env bash
# Edge vs level vs one-shot: `tenk serve echo --trigger MODE` for each epoll
# mode, on the echo grid (CONNS 100 1000 10000 x PIPELINES 1 16, 64-byte
# messages, `tenk load echo`), with syscalls per round trip from the
# reactor's own counters (the summary line tenk prints on SIGINT).
#
#   bench/trigger.sh                         # ROUNDS=5 DURATION=10s
#   ROUNDS=3 DURATION=3s bench/trigger.sh    # a quick pass
#
# Headline: requests per server CPU-second, raw requests/s beside it; median
# of ROUNDS fresh-server rounds, the modes rotating their order each round.
#
# Syscalls per round trip: the counters cover the server's whole life, so
# the connections' own fixed cost (accept-time epoll_ctl ADD, the close's
# read of EOF and epoll_ctl DEL, the wake-ups while connecting) is measured
# first by a calibration run per mode and connection count (all
# connections made, about one request, closed) and subtracted, per
# connection; round trips are the server's bytes in / 64. What remains is
# the steady state: the target (issue 4) is one read and one write per
# round trip and no epoll_ctl (edge mode; one-shot must re-arm).
#
# Writes results/trigger-rounds.csv, results/trigger.csv; prints the tables.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-"100 1000 10000"}
PIPELINES=${PIPELINES:-"1 16"}
SIZE=64
MODES=(edge level oneshot)

build_tenk

# ---- calibration: the per-connection fixed cost of each mode ------------------

declare -A FIX_WAIT FIX_CTL FIX_READ FIX_WRITE FIX_RT
for mode in "${MODES[@]}"; do
    for c in $CONNS; do
        tag=trigger-calibrate-$mode-c$c
        start_server "$RESULTS/logs/$tag.server" "$TENK" serve echo --port 0 --trigger "$mode"
        timeout 120 taskset -c "$LOAD_CPU" "$TENK" load echo "127.0.0.1:$SERVER_PORT" -c "$c" \
            -d 200ms --rate 5 --size "$SIZE" --json >"$RESULTS/logs/$tag.json" 2>&1 || true
        stop_server
        parse_summary "$RESULTS/logs/$tag.server"
        k=$mode/$c
        read -r "FIX_WAIT[$k]" "FIX_CTL[$k]" "FIX_READ[$k]" "FIX_WRITE[$k]" "FIX_RT[$k]" < <(awk \
            -v a="$S_ACCEPTED" -v w="$S_WAIT" -v c="$S_CTL" -v r="$S_READ" -v wr="$S_WRITE" -v b="$S_BYTES_IN" -v s="$SIZE" \
            'BEGIN { printf "%.4f %.4f %.4f %.4f %.6f\n", w / a, c / a, r / a, wr / a, b / s / a }')
        log "calibration $mode c=$c: per connection ${FIX_WAIT[$k]} epoll_wait, ${FIX_CTL[$k]} epoll_ctl, ${FIX_READ[$k]} read, ${FIX_WRITE[$k]} write"
        sleep 0.5
    done
done

# ---- rounds ----------------------------------------------------------------------

raw=$RESULTS/trigger-rounds.csv
echo "mode,conns,pipeline,round,requests,seconds,rps,server_cpu_s,per_cpu_s,p50_us,p99_us,errors,established,accepted,round_trips,epoll_wait,epoll_ctl,read,write,wait_per_rt,ctl_per_rt,read_per_rt,write_per_rt,foreign,load_foreign,server_cpu_ticks_s,user_share" >"$raw"

for c in $CONNS; do
    for p in $PIPELINES; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for mode in $(rotate "$r" "${MODES[@]}"); do
                tag=trigger-$mode-c$c-p$p-r$r
                start_server "$RESULTS/logs/$tag.server" "$TENK" serve echo --port 0 --trigger "$mode"
                measure_load "$tag" "$TENK" load echo "127.0.0.1:$SERVER_PORT" \
                    -c "$c" --pipeline "$p" --size "$SIZE" -d "$DURATION" --warmup "$WARMUP" \
                    --timeout 30s --json
                stop_server
                parse_summary "$RESULTS/logs/$tag.server"
                k=$mode/$c
                read -r rt wpr cpr rpr wrpr < <(awk \
                    -v a="$S_ACCEPTED" -v b="$S_BYTES_IN" -v s="$SIZE" \
                    -v w="$S_WAIT" -v c="$S_CTL" -v r="$S_READ" -v wr="$S_WRITE" \
                    -v fw="${FIX_WAIT[$k]}" -v fc="${FIX_CTL[$k]}" -v fr="${FIX_READ[$k]}" -v fwr="${FIX_WRITE[$k]}" -v frt="${FIX_RT[$k]}" '
                    function steady(total, fixed) { v = (total - fixed * a) / rt; return v < 0 ? 0 : v }
                    BEGIN {
                        rt = b / s - frt * a
                        printf "%.0f %.4f %.4f %.4f %.4f\n", b / s, steady(w, fw), steady(c, fc), steady(r, fr), steady(wr, fwr)
                    }')
                echo "$mode,$c,$p,$r,$M_REQUESTS,$M_SECONDS,$M_RPS,$M_SERVER_CPU,$M_PER_CPU,$M_P50,$M_P99,$M_ERRORS,$M_CONNECTED,$S_ACCEPTED,$rt,$S_WAIT,$S_CTL,$S_READ,$S_WRITE,$wpr,$cpr,$rpr,$wrpr,$M_FOREIGN,$M_LOAD_FOREIGN,$M_SERVER_CPU_TICKS,$M_USER_SHARE" >>"$raw"
                log "$(printf 'c=%-5s p=%-2s round %s/%s %-7s %8s req/s %8s req/CPU-s  per round trip: %s wait %s ctl %s read %s write  errors %s  foreign %s' \
                    "$c" "$p" "$r" "$ROUNDS" "$mode" "$(si "$M_RPS")" "$(si "$M_PER_CPU")" "$wpr" "$cpr" "$rpr" "$wrpr" "$M_ERRORS" "$M_FOREIGN")"
                sleep 0.5
            done
        done
    done
done

# ---- medians ----------------------------------------------------------------------

summary=$RESULTS/trigger.csv
echo "mode,conns,pipeline,rounds,per_cpu_median,per_cpu_min,per_cpu_max,rps_median,rps_min,rps_max,p99_median,errors,wait_per_rt,ctl_per_rt,read_per_rt,write_per_rt,foreign_median,foreign_max,load_foreign_median,load_foreign_max" >"$summary"
for c in $CONNS; do
    for p in $PIPELINES; do
        for mode in "${MODES[@]}"; do
            sel="c[\"mode\"] == \"$mode\" && c[\"conns\"] == $c && c[\"pipeline\"] == $p"
            med() { spread $(csv_column "$raw" "$sel" "$1") | cut -d' ' -f1; }
            read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" per_cpu_s))
            read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
            read -r fm _ fmax < <(spread $(csv_column "$raw" "$sel" foreign))
            read -r lm _ lmax < <(spread $(csv_column "$raw" "$sel" load_foreign))
            errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "$mode,$c,$p,$ROUNDS,$pm,$pmin,$pmax,$rm,$rmin,$rmax,$(med p99_us),$errors,$(med wait_per_rt),$(med ctl_per_rt),$(med read_per_rt),$(med write_per_rt),$fm,$fmax,$lm,$lmax" >>"$summary"
        done
    done
done

get() { # mode conns pipeline column
    csv_column "$summary" "c[\"mode\"] == \"$1\" && c[\"conns\"] == $2 && c[\"pipeline\"] == $3" "$4"
}
cell() { fmt_spread "$(get "$1" "$2" "$3" "$4_median")" "$(get "$1" "$2" "$3" "$4_min")" "$(get "$1" "$2" "$3" "$4_max")"; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }

header "echo, 64-byte messages: tenk serve echo --trigger edge|level|oneshot; load: tenk load echo"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max):"
echo
echo "| conns | in flight | edge | level | oneshot | level/edge | oneshot/edge | errors e/l/o |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
    for p in $PIPELINES; do
        e=$(get edge "$c" "$p" per_cpu_median)
        echo "| $c | $p | $(cell edge "$c" "$p" per_cpu) | $(cell level "$c" "$p" per_cpu) | $(cell oneshot "$c" "$p" per_cpu) | $(ratio "$(get level "$c" "$p" per_cpu_median)" "$e")x | $(ratio "$(get oneshot "$c" "$p" per_cpu_median)" "$e")x | $(get edge "$c" "$p" errors)/$(get level "$c" "$p" errors)/$(get oneshot "$c" "$p" errors) |"
    done
done
echo
echo "Raw requests/s (median, min-max), and the noise indicators: the share of the server's core / the load's core that went to anything else (medians over the mode's rounds):"
echo
echo "| conns | in flight | edge | level | oneshot | foreign e | foreign l | foreign o |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
    for p in $PIPELINES; do
        echo "| $c | $p | $(cell edge "$c" "$p" rps) | $(cell level "$c" "$p" rps) | $(cell oneshot "$c" "$p" rps) | $(pct "$(get edge "$c" "$p" foreign_median)") / $(pct "$(get edge "$c" "$p" load_foreign_median)") | $(pct "$(get level "$c" "$p" foreign_median)") / $(pct "$(get level "$c" "$p" load_foreign_median)") | $(pct "$(get oneshot "$c" "$p" foreign_median)") / $(pct "$(get oneshot "$c" "$p" load_foreign_median)") |"
    done
done
echo
echo "Steady-state syscalls per round trip (median; epoll_wait / epoll_ctl / read / write), connection set-up and close subtracted:"
echo
echo "| conns | in flight | edge | level | oneshot |"
echo "|---:|---:|---|---|---|"
for c in $CONNS; do
    for p in $PIPELINES; do
        row="| $c | $p |"
        for mode in "${MODES[@]}"; do
            row+=" $(f2 "$(get "$mode" "$c" "$p" wait_per_rt)") / $(f2 "$(get "$mode" "$c" "$p" ctl_per_rt)") / $(f2 "$(get "$mode" "$c" "$p" read_per_rt)") / $(f2 "$(get "$mode" "$c" "$p" write_per_rt)") |"
        done
        echo "$row"
    done
done
echo
echo "Target (edge, 1 in flight): one read and one write per round trip, no epoll_ctl:"
for c in $CONNS; do
    verdict=$(awk -v r="$(get edge "$c" 1 read_per_rt)" -v w="$(get edge "$c" 1 write_per_rt)" -v x="$(get edge "$c" 1 ctl_per_rt)" 'BEGIN {
        ok = (r <= 1.01 && w <= 1.01 && x < 0.005)
        printf "%s (read %.3f, write %.3f, epoll_ctl %.4f per round trip)\n", ok ? "met" : "MISSED", r, w, x }')
    echo "- $c connections: $verdict"
done
echo
echo "raw rounds: $raw; medians: $summary"
