#!/usr/bin/env bash
# Graceful restart (issue 18): what a restart costs.
#
# 1. Hand-over time: RESTARTS (20) SIGHUPs to an idle `tenk serve http
#    --pid-file`, one at a time. Timed from the kill to the pid file naming
#    the new process, which it rewrites once it serves (every worker's
#    listeners registered, the old process told and acknowledged); beside
#    it the old process's own figure, from spawning the new process to its
#    readiness byte (`restart: process N serves after X ms`).
# 2. Latency across restarts: `tenk load http` open loop at RATE (10000)
#    req/s on CONNS (50) keep-alive connections for DURATION (20s), with a
#    SIGHUP every EVERY (4s) vs none; p50, p99, max and errors of each run
#    (coordinated omission corrected: a request delayed by a restart counts
#    from when it was due). During a restart the old process answers each
#    connection's next request with `Connection: close` and the load tool
#    reconnects, to the new process.
# 3. Requests spanning a restart: a run's p99 hides the few requests a
#    restart delays among the many it does not, so WINDOWS (10) short
#    runs of WINDOW (1s) at the same RATE and CONNS, each with a SIGHUP in
#    its middle, vs the same windows without; the median and worst of the
#    windows' p99 and max, per mode.
#
#   bench/restart.sh                          # ROUNDS=3
#   ROUNDS=1 DURATION=8s RESTARTS=5 WINDOWS=3 bench/restart.sh   # a smoke test
#
# Placement: the server (old and new processes, one thread each) on
# SERVER_CPU, the load on LOAD_CPU, as the other scripts.

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20s}
source "$(dirname "$0")/lib.sh"

RESTARTS=${RESTARTS:-20}
RATE=${RATE:-10000}
CONNS=${CONNS:-50}
EVERY=${EVERY:-4}
WINDOWS=${WINDOWS:-10}
WINDOW=${WINDOW:-1s}

build_tenk
PIDFILE=$RESULTS/logs/restart.pid

# now_us: the wall clock in microseconds (bash's EPOCHREALTIME, no fork).
now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "$t"; }

# hand_over_us: one SIGHUP to the process the pid file names; prints the
# microseconds until the pid file names another one.
hand_over_us() {
    local old new t0
    read -r old <"$PIDFILE"
    t0=$(now_us)
    kill -HUP "$old"
    while :; do
        new=
        read -r new 2>/dev/null <"$PIDFILE" || true
        [[ -n $new && $new != "$old" ]] && break
    done
    echo $(($(now_us) - t0))
    # The old process drains (no connection: at once) and exits.
    while kill -0 "$old" 2>/dev/null; do sleep 0.01; done
}

# stop_last: SIGTERM to the process the pid file names (not SERVER_PID:
# after a restart that is a process that has exited).
stop_last() {
    local pid
    read -r pid 2>/dev/null <"$PIDFILE" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap 'stop_last; cleanup_servers' EXIT

header "graceful restart: hand-over time and latency across restarts"
printf '# hand-over: %s SIGHUPs, idle server; latency: RATE=%s CONNS=%s, a SIGHUP every %ss\n' \
    "$RESTARTS" "$RATE" "$CONNS" "$EVERY"

# ---- 1. hand-over time -------------------------------------------------------
rm -f "$PIDFILE"
start_server "$RESULTS/logs/restart-handover.log" "$TENK" serve http --port 0 --pid-file "$PIDFILE"
while [[ ! -s $PIDFILE ]]; do sleep 0.01; done
times=()
for _ in $(seq "$RESTARTS"); do
    times+=("$(hand_over_us)")
done
read -r med lo hi < <(spread "${times[@]}")
own=$(sed -n 's/.*serves after \([0-9]*\) ms.*/\1/p' "$RESULTS/logs/restart-handover.log")
read -r omed olo ohi < <(spread $own)
printf 'hand-over, SIGHUP to the new process accepting (pid file rewritten): median %.1f ms (%.1f-%.1f)\n' \
    "$(awk -v v="$med" 'BEGIN{print v/1000}')" "$(awk -v v="$lo" 'BEGIN{print v/1000}')" \
    "$(awk -v v="$hi" 'BEGIN{print v/1000}')"
printf 'hand-over, spawn to the readiness byte (old process): median %s ms (%s-%s)\n' "$omed" "$olo" "$ohi"
stop_last

# ---- 2. latency across restarts ------------------------------------------------
secs=$(seconds "$DURATION")
printf '\n%-10s %6s %12s %10s %10s %10s %8s\n' run round "req/s" "p50 µs" "p99 µs" "max µs" errors
for round in $(seq "$ROUNDS"); do
    for mode in $(rotate "$round" none restarts); do
        rm -f "$PIDFILE"
        start_server "$RESULTS/logs/restart-$mode-$round.log" "$TENK" serve http --port 0 --pid-file "$PIDFILE"
        while [[ ! -s $PIDFILE ]]; do sleep 0.01; done
        json=$RESULTS/logs/restart-$mode-$round.json
        taskset -c "$LOAD_CPU" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" \
            -c "$CONNS" --rate "$RATE" -d "$DURATION" --warmup 1s --json >"$json" \
            2>"$RESULTS/logs/restart-$mode-$round.err" &
        load=$!
        if [[ $mode == restarts ]]; then
            sleep 1 # the warm-up
            t=$EVERY
            while ((t < ${secs%.*})); do
                sleep "$EVERY"
                hand_over_us >/dev/null
                t=$((t + EVERY))
            done
        fi
        wait "$load" || true
        printf '%-10s %6s %12.0f %10s %10s %10s %8s\n' "$mode" "$round" \
            "$(jq .requests_per_s "$json")" "$(jq .latency_us.p50 "$json")" \
            "$(jq .latency_us.p99 "$json")" "$(jq .latency_us.max "$json")" "$(jq .errors_total "$json")"
        stop_last
    done
done

# ---- 3. requests spanning a restart ------------------------------------------
half=$(awk -v v="$(seconds "$WINDOW")" 'BEGIN { print v / 2 }')
printf '\n# %s windows of %s, a SIGHUP half-way through each (restarts) or none\n' "$WINDOWS" "$WINDOW"
printf '%-10s %14s %14s %14s %14s %8s\n' run "p99 med µs" "p99 worst µs" "max med µs" "max worst µs" errors
for mode in none restarts; do
    rm -f "$PIDFILE"
    start_server "$RESULTS/logs/restart-window-$mode.log" "$TENK" serve http --port 0 --pid-file "$PIDFILE"
    while [[ ! -s $PIDFILE ]]; do sleep 0.01; done
    p99s=() maxes=() errors=0
    for w in $(seq "$WINDOWS"); do
        json=$RESULTS/logs/restart-window-$mode-$w.json
        taskset -c "$LOAD_CPU" "$TENK" load http "http://127.0.0.1:$SERVER_PORT/" \
            -c "$CONNS" --rate "$RATE" -d "$WINDOW" --json >"$json" \
            2>"$RESULTS/logs/restart-window-$mode-$w.err" &
        load=$!
        if [[ $mode == restarts ]]; then
            sleep "$half"
            hand_over_us >/dev/null
        fi
        wait "$load" || true
        p99s+=("$(jq .latency_us.p99 "$json")")
        maxes+=("$(jq .latency_us.max "$json")")
        errors=$((errors + $(jq .errors_total "$json")))
    done
    read -r pmed _ phi < <(spread "${p99s[@]}")
    read -r mmed _ mhi < <(spread "${maxes[@]}")
    printf '%-10s %14s %14s %14s %14s %8s\n' "$mode" "$pmed" "$phi" "$mmed" "$mhi" "$errors"
    stop_last
done
