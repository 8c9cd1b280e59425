#!/usr/bin/env bash
# `tenk load http` vs wrk, against the same nginx (nginx-light, one worker,
# `return 200 "Hello, World!"`, access log off: bench/nginx/nginx.conf):
# rate, latency and the load tool's own CPU per request.
#
#   bench/load-vs-wrk.sh                         # ROUNDS=5 DURATION=10s
#   ROUNDS=3 DURATION=3s bench/load-vs-wrk.sh    # a quick pass
#
# nginx runs pinned to SERVER_CPU, the load tool to LOAD_CPU, one thread
# each (wrk -t1, tenk --threads 1), CONNS (100 1000) keep-alive connections,
# one request in flight per connection (wrk cannot pipeline without Lua).
# Each round starts a fresh nginx and runs both tools against it, their
# order alternating. Client CPU: the tool's whole process (utime + stime,
# from the shell's `times` after it exits) over its requests, the same
# accounting for both; tenk's own figure (its thread, measured window only)
# is in the raw CSV. nginx's CPU per request under each tool is beside it.
# Targets (issue 4): tenk load's rate within 5% of wrk's (>= 0.95x), and no
# more client CPU per request than wrk.
#
# Writes results/load-vs-wrk-rounds.csv, results/load-vs-wrk.csv.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-"100 1000"}
TOOLS=(tenk wrk)

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    log "installing nginx-light and wrk"
    (apt-get update -qq && apt-get install -y -qq nginx-light wrk) >&2 || die "cannot install nginx-light and wrk"
fi
PATH=$PATH:/usr/sbin
need nginx wrk
build_tenk

trap 'sampler_stop; stop_nginx' EXIT

# run_client TAG CMD...: runs CMD pinned to LOAD_CPU; its stdout goes to
# logs/TAG.out; sets C_CPU (the process's CPU seconds) and C_END (its end),
# and samples nginx's worker meanwhile into logs/TAG.cpu.
run_client() {
    local tag=$1
    shift
    local out=$RESULTS/logs/$tag.out times=$RESULTS/logs/$tag.times
    local limit
    limit=$(awk -v d="$(seconds "$DURATION")" 'BEGIN { print int(d + 120) }')
    sampler_start "$NGINX_WORKER" "$RESULTS/logs/$tag.cpu"
    local rc=0
    # `times` in the wrapping shell reports its waited-for children: the tool.
    timeout "$limit" taskset -c "$LOAD_CPU" bash -c \
        'out=$1 times_file=$2; shift 2; "$@" >"$out" 2>"$out.err"; rc=$?; times >"$times_file"; exit $rc' \
        _ "$out" "$times" "$@" || rc=$?
    C_END=$EPOCHREALTIME
    sleep 0.25
    sampler_stop
    [[ -s $times ]] || die "$tag: the load tool did not finish (exit $rc): $(cat "$out.err")"
    C_CPU=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.3f\n", t
    }' "$times")
}

# wrk's report -> requests seconds rps p50_us p99_us errors
parse_wrk() {
    awk '
        function us(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v + 0 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v * 1000 }
            if (v ~ /m$/) { sub(/m$/, "", v); return v * 60e6 }
            if (v ~ /s$/) { sub(/s$/, "", v); return v * 1e6 }
            return v
        }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        $2 == "requests" && $3 == "in" { req = $1; d = $4; sub(/s,$/, "", d); secs = d }
        /Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx/ { errors += $NF }
        /Requests\/sec/ { rps = $2 }
        END { printf "%s %s %s %s %s %d\n", req, secs, rps, p50, p99, errors }
    ' "$1"
}

raw=$RESULTS/load-vs-wrk-rounds.csv
echo "tool,conns,round,requests,seconds,rps,p50_us,p99_us,errors,client_cpu_s,client_us_per_req,tenk_self_us_per_req,nginx_cpu_s,nginx_us_per_req,foreign" >"$raw"
url_of() { echo "http://127.0.0.1:$SERVER_PORT/"; }

for c in $CONNS; do
    for ((r = 1; r <= ROUNDS; r++)); do
        start_nginx nginx.conf "$RESULTS/logs/nginx-c$c-r$r.out" "$SERVER_CPU" 1
        NGINX_WORKER=${NGINX_WORKERS[0]}
        for tool in $(rotate "$r" "${TOOLS[@]}"); do
            tag=lvw-$tool-c$c-r$r
            case $tool in
                tenk)
                    run_client "$tag" "$TENK" load http "$(url_of)" -c "$c" --threads 1 -d "$DURATION" \
                        --timeout 10s --json
                    json=$RESULTS/logs/$tag.out
                    jq -e .requests "$json" >/dev/null 2>&1 || die "tenk load failed: $(cat "$json.err")"
                    req=$(jq .requests "$json")
                    secs=$(jq .duration_s "$json")
                    rps=$(jq .requests_per_s "$json")
                    p50=$(jq .latency_us.p50 "$json")
                    p99=$(jq .latency_us.p99 "$json")
                    errors=$(jq .errors_total "$json")
                    self=$(jq .cpu_us_per_request "$json")
                    ;;
                wrk)
                    run_client "$tag" wrk -t1 -c "$c" -d "$DURATION" --timeout 10s --latency "$(url_of)"
                    read -r req secs rps p50 p99 errors < <(parse_wrk "$RESULTS/logs/$tag.out")
                    [[ -n $req ]] || die "cannot read wrk's report: $(cat "$RESULTS/logs/$tag.out")"
                    self=
                    ;;
            esac
            nginx_cpu=$(server_cpu "$RESULTS/logs/$tag.cpu" "$C_END" "$secs")
            foreign=$(foreign_share "$RESULTS/logs/$tag.cpu" "$C_END" "$secs")
            read -r cpr npr < <(awk -v c="$C_CPU" -v n="$nginx_cpu" -v r="$req" 'BEGIN { printf "%.3f %.3f\n", c / r * 1e6, n / r * 1e6 }')
            echo "$tool,$c,$r,$req,$secs,$rps,$p50,$p99,$errors,$C_CPU,$cpr,$self,$nginx_cpu,$npr,$foreign" >>"$raw"
            log "$(printf 'c=%-5s round %s/%s %-4s %8s req/s  p50 %6.0fµs p99 %6.0fµs  client %.2f µs/req  nginx %.2f µs/req  errors %s' \
                "$c" "$r" "$ROUNDS" "$tool" "$(si "$rps")" "$p50" "$p99" "$cpr" "$npr" "$errors")"
            sleep 0.5
        done
        stop_nginx
    done
done

summary=$RESULTS/load-vs-wrk.csv
echo "tool,conns,rounds,rps_median,rps_min,rps_max,p50_median,p99_median,client_us_median,client_us_min,client_us_max,nginx_us_median,errors" >"$summary"
for c in $CONNS; do
    for tool in "${TOOLS[@]}"; do
        sel="c[\"tool\"] == \"$tool\" && c[\"conns\"] == $c"
        read -r rm rmin rmax < <(spread $(csv_column "$raw" "$sel" rps))
        read -r p50 _ _ < <(spread $(csv_column "$raw" "$sel" p50_us))
        read -r p99 _ _ < <(spread $(csv_column "$raw" "$sel" p99_us))
        read -r cm cmin cmax < <(spread $(csv_column "$raw" "$sel" client_us_per_req))
        read -r nm _ _ < <(spread $(csv_column "$raw" "$sel" nginx_us_per_req))
        errors=$(csv_column "$raw" "$sel" errors | awk '{ s += $1 } END { print s + 0 }')
        echo "$tool,$c,$ROUNDS,$rm,$rmin,$rmax,$p50,$p99,$cm,$cmin,$cmax,$nm,$errors" >>"$summary"
    done
done

get() { csv_column "$summary" "c[\"tool\"] == \"$1\" && c[\"conns\"] == $2" "$3"; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
f0() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }

header "tenk load http vs wrk against one nginx-light worker (return 200 \"Hello, World!\"), 1 load thread, 1 in flight per connection"
echo
echo "Median of $ROUNDS rounds (min-max). Client CPU = the load tool's process CPU per request."
echo
echo "| conns | tenk load req/s | wrk req/s | tenk/wrk (target ≥ 0.95) | p50 / p99 µs tenk | p50 / p99 µs wrk | client µs/req tenk | client µs/req wrk | tenk/wrk (target ≤ 1.00) | nginx µs/req under tenk / wrk | errors tenk/wrk |"
echo "|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|"
for c in $CONNS; do
    rr=$(ratio "$(get tenk "$c" rps_median)" "$(get wrk "$c" rps_median)")
    cr=$(ratio "$(get tenk "$c" client_us_median)" "$(get wrk "$c" client_us_median)")
    cverdict=$(awk -v v="$cr" 'BEGIN { if (v <= 1.0) print "met"; else printf "MISSED by %.0f%%\n", (v - 1) * 100 }')
    echo "| $c | $(fmt_spread "$(get tenk "$c" rps_median)" "$(get tenk "$c" rps_min)" "$(get tenk "$c" rps_max)") | $(fmt_spread "$(get wrk "$c" rps_median)" "$(get wrk "$c" rps_min)" "$(get wrk "$c" rps_max)") | ${rr}x $(meets "$rr" 0.95) | $(f0 "$(get tenk "$c" p50_median)") / $(f0 "$(get tenk "$c" p99_median)") | $(f0 "$(get wrk "$c" p50_median)") / $(f0 "$(get wrk "$c" p99_median)") | $(f2 "$(get tenk "$c" client_us_median)") ($(f2 "$(get tenk "$c" client_us_min)")-$(f2 "$(get tenk "$c" client_us_max)")) | $(f2 "$(get wrk "$c" client_us_median)") ($(f2 "$(get wrk "$c" client_us_min)")-$(f2 "$(get wrk "$c" client_us_max)")) | ${cr}x $cverdict | $(f2 "$(get tenk "$c" nginx_us_median)") / $(f2 "$(get wrk "$c" nginx_us_median)") | $(get tenk "$c" errors)/$(get wrk "$c" errors) |"
done
echo
echo "raw rounds: $raw; medians: $summary"
