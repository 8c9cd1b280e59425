#!/usr/bin/env bash
# The whole suite, then its charts: every script bench/README.md's table
# names but the two before/after measures (instructions, before-after):
# floor, c10k, echo, trigger, load-vs-wrk, http (when this tenk has `serve
# http`), static (when it has `serve http --root`), threads (when it has
# `--threads`/`--accept`), tls (nginx alone until tenk has `--tls-cert`),
# proxy (when it has `serve proxy`), chat-cluster (redis-server) and
# restart (both need `--pid-file`, with their own settings), latency,
# scale and memcheck (these three need `serve http`, memcheck valgrind). Each table is also kept as
# results/NAME.md; the SVG charts are drawn from the CSVs into
# docs/charts/.
# A script that fails is reported and the rest still run.
#
#   bench/all.sh                           # ROUNDS=5 DURATION=10s: about 3 h
#   ROUNDS=3 DURATION=3s bench/all.sh      # a quick pass: about 50 min
#
# Every script also runs alone; see the head of each for what it measures.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_tenk
failed=()
for script in floor c10k echo trigger load-vs-wrk http static threads tls proxy chat-cluster restart latency scale memcheck; do
    if [[ " http static threads latency scale memcheck " == *" $script "* ]] && ! "$TENK" serve http --help >/dev/null 2>&1; then
        log "== bench/$script.sh skipped: this tenk has no \`serve http\`"
        continue
    fi
    if [[ $script == proxy ]] && ! "$TENK" serve proxy --help >/dev/null 2>&1; then
        log "== bench/proxy.sh skipped: this tenk has no \`serve proxy\`"
        continue
    fi
    if [[ $script == threads ]] && [[ $("$TENK" serve echo --help 2>/dev/null) != *--accept* ]]; then
        log "== bench/threads.sh skipped: this tenk has no \`--threads\`/\`--accept\`"
        continue
    fi
    if [[ " chat-cluster restart " == *" $script "* ]] && ! "$TENK" serve http --help 2>/dev/null | grep -q -- --pid-file; then
        log "== bench/$script.sh skipped: this tenk has no \`--pid-file\` (round two's operations)"
        continue
    fi
    if [[ $script == chat-cluster ]] && ! command -v redis-server >/dev/null; then
        log "== bench/chat-cluster.sh skipped: no redis-server (apt-get install -y redis-server)"
        continue
    fi
    if [[ $script == memcheck ]] && ! command -v valgrind >/dev/null; then
        log "== bench/memcheck.sh skipped: no valgrind (apt-get install -y valgrind)"
        continue
    fi
    log "== bench/$script.sh (ROUNDS=$ROUNDS DURATION=$DURATION)"
    # Passed on: they override the shorter own defaults of tls.sh
    # (ROUNDS=3 DURATION=2s), proxy.sh, latency.sh and scale.sh (ROUNDS=3
    # DURATION=3s).
    # chat-cluster.sh and restart.sh keep their own settings: their
    # DURATION is a run with restarts or a fan-out, not a round's length.
    settings=(ROUNDS="$ROUNDS" DURATION="$DURATION")
    [[ " chat-cluster restart " == *" $script "* ]] && settings=(-u ROUNDS -u DURATION)
    if ! env "${settings[@]}" "$BENCH/$script.sh" | tee "$RESULTS/$script.md"; then
        failed+=("$script")
    fi
    echo
done

build_bench chart
"$BENCH/target/release/chart" "$RESULTS" "$ROOT/docs/charts"
if ((${#failed[@]})); then
    die "failed: ${failed[*]} (see their output above)"
fi
