#!/usr/bin/env bash
# A change against its base, in the same run: two tenk binaries serving the
# echo.sh and http.sh workloads, alternating inside every round, both driven
# by the same load binary (the "after" one), so that only the server differs.
# For refactors that must not cost anything: callgrind's instruction count
# (bench/instructions.sh) says whether the code path grew; this says what the
# machine makes of it, per server CPU-second.
#
#   BEFORE=/path/to/old/tenk bench/before-after.sh          # ROUNDS=5 DURATION=10s
#   BEFORE=... ROUNDS=3 DURATION=3s bench/before-after.sh   # a quick pass
#
# BEFORE (required): the base binary; build it from a worktree of the base
# commit. TENK: the binary under test (default: this tree's, built).
# CONNS (100 1000), PIPELINES (1 16), WORKLOADS (echo http).
#
# Writes results/before-after-rounds.csv and prints a markdown table:
# requests per server CPU-second, median (min-max), and after/before.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -n ${BEFORE:-} && -x ${BEFORE:-} ]] || die "BEFORE=/path/to/base/tenk is required"
CONNS=${CONNS:-"100 1000"}
PIPELINES=${PIPELINES:-"1 16"}
WORKLOADS=${WORKLOADS:-"echo http"}
SERVERS=(before after)
build_tenk

binary() { [[ $1 == before ]] && echo "$BEFORE" || echo "$TENK"; }

raw=$RESULTS/before-after-rounds.csv
echo "workload,server,conns,pipeline,round,rps,per_cpu_s,errors" >"$raw"
for w in $WORKLOADS; do
    for c in $CONNS; do
        for p in $PIPELINES; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for s in $(rotate "$r" "${SERVERS[@]}"); do
                    tag=before-after-$w-$s-c$c-p$p-r$r
                    start_server "$RESULTS/logs/$tag.server" "$(binary "$s")" serve "$w" --port 0
                    case $w in
                        echo) target=(echo "127.0.0.1:$SERVER_PORT" --size 64) ;;
                        http) target=(http "http://127.0.0.1:$SERVER_PORT/") ;;
                    esac
                    measure_load "$tag" "$TENK" load "${target[@]}" -c "$c" --pipeline "$p" \
                        -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
                    stop_server
                    echo "$w,$s,$c,$p,$r,$M_RPS,$M_PER_CPU,$M_ERRORS" >>"$raw"
                    log "$(printf '%-4s c=%-5s p=%-2s round %s/%s %-6s %8s req/s  %8s req/CPU-s  errors %s' \
                        "$w" "$c" "$p" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$(si "$M_PER_CPU")" "$M_ERRORS")"
                    sleep 0.5
                done
            done
        done
    done
done

header "before/after: $BEFORE vs $TENK_REV; load: $TENK"
echo
echo "Requests per server CPU-second (median of $ROUNDS, min-max):"
echo
echo "| workload | conns | in flight | before | after | after/before | errors b/a |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for w in $WORKLOADS; do
    for c in $CONNS; do
        for p in $PIPELINES; do
            sel() { echo "c[\"workload\"] == \"$w\" && c[\"server\"] == \"$1\" && c[\"conns\"] == $c && c[\"pipeline\"] == $p"; }
            read -r bm bmin bmax < <(spread $(csv_column "$raw" "$(sel before)" per_cpu_s))
            read -r am amin amax < <(spread $(csv_column "$raw" "$(sel after)" per_cpu_s))
            be=$(csv_column "$raw" "$(sel before)" errors | awk '{ s += $1 } END { print s + 0 }')
            ae=$(csv_column "$raw" "$(sel after)" errors | awk '{ s += $1 } END { print s + 0 }')
            echo "| $w | $c | $p | $(fmt_spread "$bm" "$bmin" "$bmax") | $(fmt_spread "$am" "$amin" "$amax") | $(ratio "$am" "$bm")x | $be/$ae |"
        done
    done
done
echo
echo "raw rounds: $raw"
