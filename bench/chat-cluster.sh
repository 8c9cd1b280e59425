#!/usr/bin/env bash
# Chat across nodes (issue 19): one room of CLIENTS (1000) members,
# SENDERS (10) of them sending at RATE messages/s in all, driven by
# `tenk load chat`, on one node and spread over two nodes linked by a
# local redis-server (`serve chat --redis`, THREADS (1) worker threads
# each); then Redis pub/sub driven directly (redis-benchmark PUBLISH to two
# subscribers).
#
#   bench/chat-cluster.sh                         # DURATION=3s RATES="500 1000"
#   THREADS=2 bench/chat-cluster.sh               # nodes with --threads 2
#
# Per setup and rate: messages/s, deliveries/s, delivery p50/p99 (measured
# by every receiver), lost and reordered (must be 0), the CPU of each node
# and of redis-server over the run (from /proc/PID/task/*/schedstat), and
# Redis CPU per message published. Writes results/chat-cluster.csv and
# prints a markdown table; the load average goes with it (the machine is
# shared). Unpinned: 2 cores hold the load tool, the nodes and Redis.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=${CLIENTS:-1000}
SENDERS=${SENDERS:-10}
RATES=${RATES:-"500 1000"}
DURATION=${DURATION:-3s}
THREADS=${THREADS:-1}
PUBLISHES=${PUBLISHES:-200000}

need redis-server
need redis-benchmark
need jq
build_tenk

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_PID=$!
NODES=()
cleanup() {
    for p in "${NODES[@]}" "$REDIS_PID"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
for _ in $(seq 50); do
    [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
    sleep 0.1
done

# node NAME: starts a node; sets NODE_PID and NODE_PORT.
node() {
    local logfile=$RESULTS/logs/chat-cluster-$1.log
    : >"$logfile"
    "$TENK" serve chat --port 0 --threads "$THREADS" --redis "redis://127.0.0.1:$REDIS_PORT" --node "$1" >"$logfile" 2>&1 &
    NODE_PID=$!
    NODES+=("$NODE_PID")
    NODE_PORT=
    for _ in $(seq 100); do
        NODE_PORT=$(sed -n 's/.* listening on .*:\([0-9][0-9]*\) .*/\1/p' "$logfile" | head -1 || true)
        [[ -n $NODE_PORT ]] && return 0
        sleep 0.05
    done
    die "node $1 did not start: $(cat "$logfile")"
}

cpu_ns() { read_runtime "$1"; echo "$RUNTIME_NS"; }

# results/chat-cluster.csv, or chat-cluster-threadsN.csv with THREADS=N > 1.
csv=$RESULTS/chat-cluster.csv
[[ $THREADS == 1 ]] || csv=$RESULTS/chat-cluster-threads$THREADS.csv
echo "setup,threads,rate,messages_per_s,deliveries_per_s,p50_us,p99_us,lost,reordered,node_a_cpu_s,node_b_cpu_s,redis_cpu_s,published,redis_cpu_us_per_message,load_avg" >"$csv"

run() { # SETUP RATE TARGETS NODE_PIDS...
    local setup=$1 rate=$2 targets=$3
    shift 3
    local pids=("$@") before=() after=() r0 r1 json
    for p in "${pids[@]}"; do before+=("$(cpu_ns "$p")"); done
    r0=$(cpu_ns "$REDIS_PID")
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    json=$RESULTS/logs/chat-cluster-$setup-$rate.json
    "$TENK" load chat "$targets" -c "$CLIENTS" --senders "$SENDERS" --rate "$rate" \
        -d "$DURATION" --warmup 1s --timeout 30s --json >"$json" || log "load exit $?"
    for p in "${pids[@]}"; do after+=("$(cpu_ns "$p")"); done
    r1=$(cpu_ns "$REDIS_PID")
    # PUBLISH calls and the µs Redis spent in them (INFO commandstats).
    local published exec_us
    read -r published exec_us < <(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_publish:calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2/p')
    published=${published:-0}
    local a_cpu b_cpu redis_cpu per_msg load
    a_cpu=$(awk -v a="${before[0]}" -v b="${after[0]}" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    b_cpu=-
    [[ ${#pids[@]} -gt 1 ]] && b_cpu=$(awk -v a="${before[1]}" -v b="${after[1]}" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    redis_cpu=$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    # Upper bound: all of Redis's CPU over the run (joins, nick claims,
    # refreshes included) per message published; and PUBLISH's own time.
    per_msg=$(awk -v c="$redis_cpu" -v n="$published" -v e="${exec_us:-0}" 'BEGIN { if (n > 0) printf "%.1f (%.2f in PUBLISH)", c * 1e6 / n, e / n; else print "-" }')
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r mps dps p50 p99 lost reordered < <(jq -r \
        '"\(.chat.messages_per_s | floor) \(.chat.deliveries_per_s | floor) \(.latency_us.p50 | floor) \(.latency_us.p99 | floor) \(.chat.lost) \(.chat.reordered)"' "$json")
    echo "$setup,$THREADS,$rate,$mps,$dps,$p50,$p99,$lost,$reordered,$a_cpu,$b_cpu,$redis_cpu,$published,$per_msg,$load" >>"$csv"
    log "$setup rate $rate: $(si "$dps") deliveries/s p99 ${p99}µs lost $lost reordered $reordered; CPU A ${a_cpu}s B ${b_cpu}s redis ${redis_cpu}s for $published commands; load $load"
}

for rate in $RATES; do
    node solo
    solo=$NODE_PID
    run one-node "$rate" "127.0.0.1:$NODE_PORT" "$solo"
    kill -INT "$solo"; wait "$solo" 2>/dev/null || true
    node A; a=$NODE_PID; pa=$NODE_PORT
    node B; b=$NODE_PID; pb=$NODE_PORT
    run two-nodes "$rate" "127.0.0.1:$pa,127.0.0.1:$pb" "$a" "$b"
    kill -INT "$a" "$b"; wait "$a" "$b" 2>/dev/null || true
done

# The bus alone: PUBLISH of a chat-sized payload to one channel with two
# subscribers (as a room on two other nodes), pipelined 16 deep.
sub_log=$RESULTS/logs/chat-cluster-subs.log
for _ in 1 2; do
    redis-cli -p "$REDIS_PORT" subscribe tenk:room:bench >>"$sub_log" 2>&1 &
    NODES+=("$!")
done
sleep 0.3
# The size of a node's message: `tenk2 NODE STREAM SEQ MICROS NICK` and the line.
payload=$(printf 'tenk2 A 1700.0.3 42 1700000000000000 s1\n<s1> m 1 2 123456789%.0s' 1)
redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
r0=$(cpu_ns "$REDIS_PID")
bench=$(redis-benchmark -p "$REDIS_PORT" -n "$PUBLISHES" -P 16 -c 4 -q PUBLISH tenk:room:bench "$payload" 2>&1 | tr '\r' '\n' | grep -a 'requests per second' | tail -1)
r1=$(cpu_ns "$REDIS_PID")
exec_us=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_publish:.*,usec=\([0-9]*\),.*/\1/p')
per=$(awk -v a="$r0" -v b="$r1" -v n="$PUBLISHES" -v e="${exec_us:-0}" 'BEGIN { printf "%.2f (%.2f in PUBLISH)", (b - a) / 1e3 / n, e / n }')
rps=$(echo "$bench" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p')
log "redis-benchmark PUBLISH to 2 subscribers: $bench; redis ${per} µs CPU per publish"
echo "redis-benchmark (2 subscribers),-,-,${rps%.*},$(awk -v r="$rps" 'BEGIN { printf "%d", 2 * r }'),-,-,-,-,-,-,$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'),$PUBLISHES,$per,$(cut -d' ' -f1 /proc/loadavg)" >>"$csv"

echo
echo "| setup | threads | rate | messages/s | deliveries/s | p50 µs | p99 µs | lost | reordered | CPU A s | CPU B s | Redis CPU s | published | Redis CPU µs/message | load avg |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
tail -n +2 "$csv" | tr ',' '|' | sed 's/^/| /; s/$/ |/'
