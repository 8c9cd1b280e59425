#!/usr/bin/env bash
# Chat fan-out: `tenk serve chat` (one thread, edge) with CLIENTS (1000)
# clients in one room, SENDERS (10) of them sending at each total rate of
# RATES (messages/s), driven by `tenk load chat`; then memory per queued
# message with STALLED_LIST clients that never read.
#
#   bench/chat.sh                                    # ROUNDS=5 DURATION=10s
#   ROUNDS=1 DURATION=3s WARMUP=1s bench/chat.sh     # a quick pass
#
# Fan-out table, per rate (median of ROUNDS fresh-server rounds, min-max):
# deliveries/s (each message to the CLIENTS-1 other members), delivery
# latency p50/p99 (from the time a message was due to be sent to its
# receipt, measured by every receiver), server CPU per delivery (utime +
# stime of the server from /proc over the load's measured window), lost and
# reordered deliveries (must be 0), and the load tool's own CPU per
# delivery. A rate is sustained when messages/s meets it and the latency
# stays flat.
#
# Memory table: a fresh server per row, STALLED clients that never read
# (tiny receive buffers) and one sender; after WARM messages have filled
# the kernel buffers, MESSAGES more of SIZE bytes wait in the server (see
# bench/chat_rss.py). Shared messages cost about one copy per message plus
# a queue entry per recipient; copies would cost the line's length per
# recipient ("if copied").
#
# Writes results/chat-rounds.csv, results/chat.csv and results/chat-rss.csv,
# and prints the tables (markdown) on stdout.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=${CLIENTS:-1000}
SENDERS=${SENDERS:-10}
RATES=${RATES:-"500 1000 2000"}
STALLED_LIST=${STALLED_LIST:-"1 10 100"}
MESSAGES=${MESSAGES:-4000}
SIZE=${SIZE:-1000}
WARM=${WARM:-2500}

build_tenk

raw=$RESULTS/chat-rounds.csv
echo "rate,round,messages_per_s,deliveries,deliveries_per_s,seconds,server_cpu_s,server_ns_per_delivery,p50_us,p99_us,lost,reordered,expected,delivered,errors,client_us_per_delivery" >"$raw"

for rate in $RATES; do
    for ((r = 1; r <= ROUNDS; r++)); do
        tag=chat-r$rate-$r
        start_server "$RESULTS/logs/$tag.server" "$TENK" serve chat --port 0
        measure_load "$tag" "$TENK" load chat "127.0.0.1:$SERVER_PORT" \
            -c "$CLIENTS" --senders "$SENDERS" --rate "$rate" \
            -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
        stop_server
        json=$RESULTS/logs/$tag.json
        read -r mps lost reordered expected delivered client_us < <(jq -r \
            '.chat | "\(.messages_per_s) \(.lost) \(.reordered) \(.deliveries_expected) \(.deliveries) \(.cpu_us_per_delivery)"' "$json")
        ns=$(awk -v c="$M_SERVER_CPU" -v d="$M_REQUESTS" 'BEGIN { if (d > 0) printf "%.1f", c * 1e9 / d; else print "nan" }')
        echo "$rate,$r,$mps,$M_REQUESTS,$M_RPS,$M_SECONDS,$M_SERVER_CPU,$ns,$M_P50,$M_P99,$lost,$reordered,$expected,$delivered,$M_ERRORS,$client_us" >>"$raw"
        log "$(printf 'rate %-5s round %s/%s  %8s deliveries/s  p99 %6.0f µs  server %5.1f ns/delivery  lost %s reordered %s errors %s' \
            "$rate" "$r" "$ROUNDS" "$(si "$M_RPS")" "$M_P99" "$ns" "$lost" "$reordered" "$M_ERRORS")"
        sleep 0.5
    done
done

summary=$RESULTS/chat.csv
echo "rate,rounds,messages_per_s,deliveries_per_s_median,deliveries_per_s_min,deliveries_per_s_max,p50_us,p99_median,p99_min,p99_max,server_ns_median,server_ns_min,server_ns_max,server_cpu_s,lost,reordered,errors,client_us_per_delivery" >"$summary"
for rate in $RATES; do
    sel="c[\"rate\"] == $rate"
    read -r mps _ _ < <(spread $(csv_column "$raw" "$sel" messages_per_s))
    read -r dm dmin dmax < <(spread $(csv_column "$raw" "$sel" deliveries_per_s))
    read -r p50 _ _ < <(spread $(csv_column "$raw" "$sel" p50_us))
    read -r pm pmin pmax < <(spread $(csv_column "$raw" "$sel" p99_us))
    read -r nm nmin nmax < <(spread $(csv_column "$raw" "$sel" server_ns_per_delivery))
    read -r cpu _ _ < <(spread $(csv_column "$raw" "$sel" server_cpu_s))
    read -r cu _ _ < <(spread $(csv_column "$raw" "$sel" client_us_per_delivery))
    total() { csv_column "$raw" "$sel" "$1" | awk '{ s += $1 } END { print s + 0 }'; }
    echo "$rate,$ROUNDS,$mps,$dm,$dmin,$dmax,$p50,$pm,$pmin,$pmax,$nm,$nmin,$nmax,$cpu,$(total lost),$(total reordered),$(total errors),$cu" >>"$summary"
done

# ---- memory per queued message --------------------------------------------

rss_csv=$RESULTS/chat-rss.csv
echo "stalled,messages,size,line_bytes,growth,per_message,per_queued_pair,copied_per_message" >"$rss_csv"
for k in $STALLED_LIST; do
    tag=chat-rss-$k
    start_server "$RESULTS/logs/$tag.server" "$TENK" serve chat --port 0 \
        --output-limit-hard 0 --output-limit-soft 0 --write-timeout 0 --idle-timeout 0
    timeout 300 taskset -c "$LOAD_CPU" python3 "$BENCH/chat_rss.py" "$SERVER_PID" "$SERVER_PORT" \
        --stalled "$k" --messages "$MESSAGES" --size "$SIZE" --warm "$WARM" >"$RESULTS/logs/$tag.json" ||
        die "chat_rss.py failed: $(cat "$RESULTS/logs/$tag.json")"
    stop_server
    jq -r '[.stalled, .messages, .size, .line_bytes, .growth, .per_message, .per_queued_pair, .copied_per_message] | @csv' \
        "$RESULTS/logs/$tag.json" >>"$rss_csv"
    log "stalled $k: $(jq -c . "$RESULTS/logs/$tag.json")"
done

header "chat fan-out: tenk serve chat (1 thread, edge), $CLIENTS clients in one room, $SENDERS senders; load: tenk load chat"
echo
echo "| rate (msg/s) | achieved | deliveries/s | p50 | p99 | server CPU s | server ns/delivery | lost | reordered | errors | load µs/delivery |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
while IFS=, read -r rate _ mps dm dmin dmax p50 pm pmin pmax nm nmin nmax cpu lost reordered errors cu; do
    [[ $rate == rate ]] && continue
    printf '| %s | %.0f | %s | %s µs | %s µs (%s-%s) | %.2f | %s (%s-%s) | %s | %s | %s | %.2f |\n' \
        "$rate" "$mps" "$(fmt_spread "$dm" "$dmin" "$dmax")" "$(si "$p50")" "$(si "$pm")" "$(si "$pmin")" "$(si "$pmax")" \
        "$cpu" "$nm" "$nmin" "$nmax" "$lost" "$reordered" "$errors" "$cu"
done <"$summary"
echo
echo "Memory per queued message: $MESSAGES messages of $SIZE bytes waiting for each stalled client (fresh server per row):"
echo
echo "| stalled clients | RSS growth | per message | per (message, client) | if copied, per message |"
echo "|---:|---:|---:|---:|---:|"
while IFS=, read -r k _ _ line growth per pair copied; do
    [[ $k == stalled ]] && continue
    printf '| %s | %.1f MB | %.0f B | %.0f B | %s B |\n' "$k" "$(awk -v g="$growth" 'BEGIN { print g / 1e6 }')" "$per" "$pair" "$copied"
done <"$rss_csv"
echo
echo "raw rounds: $raw; medians: $summary; memory: $rss_csv"
