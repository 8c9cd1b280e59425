#!/usr/bin/env bash
# The syscall floor: ns per call of the syscalls an echo round trip cannot
# avoid (loopback send+recv pair, recv of queued data, epoll_wait with 1 and
# 64 ready events, epoll_ctl MOD), and the round trips per CPU-second they
# allow, and a blocking ping-pong with its peer on LOAD_CPU (what waking
# and sleeping add) and an awake one (both ends polling: what the other
# core alone adds). The probe runs pinned to SERVER_CPU (default 0),
# ROUNDS trials.
#
#   bench/floor.sh          # ROUNDS=5
#
# Writes results/floor.csv; echo.sh and http.sh run it first (the floor of
# the same run) and bench/gap.py reads it.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_bench probes
header "syscall floor (bench/probes floor), pinned to CPU $SERVER_CPU" probe
echo
taskset -c "$SERVER_CPU" "$BENCH/target/release/floor" --rounds "$ROUNDS" --csv "$RESULTS/floor.csv" --peer-cpu "$LOAD_CPU"
echo
echo "csv: $RESULTS/floor.csv"
