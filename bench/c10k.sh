#!/usr/bin/env bash
# The C10K point, measured: ns per wake-up with poll(2) and with epoll when
# 10, 100, 1,000 and 10,000 connections are idle and one is active (a probe,
# not a reactor backend). Pinned to SERVER_CPU (default 0), ROUNDS trials.
#
#   bench/c10k.sh                 # ROUNDS=5, IDLE="10 100 1000 10000"
#
# Writes results/c10k.csv.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IDLE=${IDLE:-"10 100 1000 10000"}
build_bench probes
header "poll(2) vs epoll per wake-up (bench/probes c10k), pinned to CPU $SERVER_CPU" probe
echo
# shellcheck disable=SC2086
taskset -c "$SERVER_CPU" "$BENCH/target/release/c10k" --rounds "$ROUNDS" --csv "$RESULTS/c10k.csv" $IDLE
echo
echo "csv: $RESULTS/c10k.csv"
