#!/usr/bin/env bash
# TLS (issue 16): `tenk serve http --tls-cert --tls-key` vs nginx-light (one
# worker, bench/nginx/tls.conf: TLS 1.2 and 1.3, `ssl_session_cache
# shared:SSL:10m`, `ssl_session_tickets on`, `access_log off`), both
# answering GET / with the 13-byte "Hello, World!" of bench/http.sh, with
# the same certificate: an ECDSA P-256 CA and a server certificate (IP SAN
# 127.0.0.1, SEC1 key) made with openssl into a temporary directory per
# run, never committed. Independent clients only (OpenSSL-based), each
# pinned to one suite so that both servers negotiate the same one:
# TLS_AES_128_GCM_SHA256 for TLS 1.3 and ECDHE-ECDSA-AES128-GCM-SHA256 for
# TLS 1.2, key exchange X25519 (the clients offer X25519:P-256; P-256 must
# be there for TLS 1.2, whose supported groups also cover the certificate's
# curve). The pin is an OPENSSL_CONF client configuration (honoured by wrk,
# openssl and Python's ssl) plus the clients' own flags where they have one.
# The `suite` part prints what each server negotiated.
#
# Parts (PARTS, default all):
#   suite      what openssl s_client negotiates with each server, TLS 1.3 and 1.2
#   keepalive  keep-alive HTTPS requests per server CPU-second, CONNS (100)
#              connections, 1 request in flight: `wrk -t1 -c100 -d$DURATION`
#              and `h2load --h1 -t1 -c100 -D $DURATION` (if installed)
#   handshake  handshakes per server CPU-second, each with one GET:
#              `openssl s_time -new` (full) and `-reuse` (resumed), TLS 1.3
#              and 1.2 (-www /: the read also collects TLS 1.3 tickets,
#              without which -reuse does not resume), one connection at a
#              time; `wrk -H 'Connection: close'` (wrk keeps each
#              connection's session, so after the first these are resumed
#              TLS 1.3 handshakes, PSK + ECDHE); `h2load --h1 -c N -n N`
#              (HS_BURST connections at once, one request each, no
#              resumption: full TLS 1.3 handshakes)
#   memory     RSS per idle TLS connection at MEM_CONNS (1000 10000):
#              bench/tls_idle.py opens N connections (TLS 1.3, handshake +
#              one keep-alive GET each) and holds them; (RSS after - RSS
#              before) / N of tenk's process, of nginx's worker
#   p99        p99 at fixed open-loop rates RATES (10000 req/s), CONNS
#              connections, `tenk load http https://... --rate R --ca CA`,
#              once this tenk's load generator speaks TLS (else "pending")
#
#   bench/tls.sh                           # ROUNDS=3 DURATION=2s: about 2 min per server (4 for both)
#   ROUNDS=5 DURATION=10s bench/tls.sh     # the reference run
#   PARTS="suite memory" bench/tls.sh      # some parts only
#
# tenk is measured only if `tenk serve http --help` lists --tls-cert;
# before that the script prints "tenk: no TLS yet" and measures nginx alone,
# so the same script runs unchanged once tenk has TLS.
#
# Method as bench/http.sh: server pinned to SERVER_CPU, clients and the
# sampler to LOAD_CPU; a fresh server per run; the servers alternate inside
# each round; the server's CPU (schedstat of every thread; nginx: its one
# worker) over the client's whole run, from just before its start to 0.25 s
# after its exit (wrk and h2load have no warm-up here, so the CONNS first
# handshakes are inside the window: under 1 % of it); median and min-max of
# ROUNDS. Memory is MEM_ROUNDS (1) rounds; MEM_REQUEST=0 holds the
# connections after the handshake alone, without the GET.
#
# Needs: openssl, python3, curl; nginx-light and wrk (installed when
# missing); h2load (apt-get install -y nghttp2-client) is optional.
# Writes results/tls-rounds.csv, results/tls-mem-rounds.csv,
# results/tls-p99-rounds.csv, results/tls-suites.csv.

# shellcheck disable=SC2046 # $(csv_column ...) lists values to split, on purpose
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2s}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=${PARTS:-"suite keepalive handshake memory p99"}
CONNS=${CONNS:-100}
MEM_CONNS=${MEM_CONNS:-"1000 10000"}
MEM_ROUNDS=${MEM_ROUNDS:-1}
MEM_REQUEST=${MEM_REQUEST:-1}
HS_BURST=${HS_BURST:-2000}
RATES=${RATES:-10000}
# openssl s_time takes whole seconds.
HS_TIME=${HS_TIME:-$(awk -v d="$(seconds "$DURATION")" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }')}
SUITE13=TLS_AES_128_GCM_SHA256
SUITE12=ECDHE-ECDSA-AES128-GCM-SHA256
KX_GROUPS=X25519:P-256

need openssl python3 curl
PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    log "installing nginx-light and wrk"
    (apt-get update -qq && apt-get install -y -qq nginx-light wrk) >&2 || die "cannot install nginx-light and wrk"
fi
HAVE_H2LOAD=
if command -v h2load >/dev/null; then HAVE_H2LOAD=1; else log "h2load not installed (apt-get install -y nghttp2-client): its rows are skipped"; fi
build_tenk

if "$TENK" serve http --help 2>/dev/null | grep -q -- --tls-cert; then
    SERVERS=(tenk nginx)
    TENK_TLS=1
else
    log "tenk: no TLS yet (\`tenk serve http --help\` has no --tls-cert); measuring nginx alone"
    SERVERS=(nginx)
    TENK_TLS=
fi
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
LOAD_TLS=
if "$TENK" load http --help 2>/dev/null | grep -q -- '--ca'; then LOAD_TLS=1; fi

# ---- the certificate and the client's pin -------------------------------------

PKI=$(mktemp -d /tmp/tenk-bench-tls.XXXXXX)
chmod 755 "$PKI"
CA=$PKI/ca.pem
CERT=$PKI/server.pem
KEY=$PKI/server.key
CLIENT_CONF=$PKI/client.cnf
(
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=tenk bench CA' \
        -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem
    # SEC1 ("EC PRIVATE KEY"), as `openssl ecparam -genkey` writes it.
    openssl ecparam -name prime256v1 -genkey -noout -out server.key
    openssl req -new -key server.key -subj '/CN=127.0.0.1' -out server.csr
    printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
        'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile server.ext -out server.pem
    chmod 644 ./*.pem server.key
) >"$RESULTS/logs/tls-pki.log" 2>&1 || die "making the certificates failed: $(cat "$RESULTS/logs/tls-pki.log")"
cat >"$CLIENT_CONF" <<EOF
# Client side only (OPENSSL_CONF of the clients, never of a server).
openssl_conf = tenk_bench_client
[tenk_bench_client]
ssl_conf = tenk_bench_ssl
[tenk_bench_ssl]
system_default = tenk_bench_suite
[tenk_bench_suite]
Ciphersuites = $SUITE13
CipherString = $SUITE12
Groups = $KX_GROUPS
EOF

# ---- servers --------------------------------------------------------------------

# start NAME LOG: a fresh server; sets SERVER_PID (the process to stop),
# SERVER_PORT and CPU_PID (the process whose CPU and RSS are the server's).
start() {
    case $1 in
        tenk)
            # The idle timeout of nginx's keepalive_timeout (tls.conf): the
            # memory part's first connections idle while the rest open.
            start_server "$2" "$TENK" serve http --port 0 --tls-cert "$CERT" --tls-key "$KEY" --idle-timeout 300s
            CPU_PID=$SERVER_PID
            ;;
        nginx)
            start_nginx tls.conf "$2" "$SERVER_CPU" 1 "s#@CERT@#$CERT#g" "s#@KEY@#$KEY#g"
            CPU_PID=${NGINX_WORKERS[0]}
            ;;
    esac
    local got
    got=$(curl -s --cacert "$CA" "https://127.0.0.1:$SERVER_PORT/" || true)
    [[ $got == "Hello, World!" ]] || die "$1 answered GET / over TLS with: $got"
}

stop() {
    if [[ $1 == nginx ]]; then
        stop_nginx
    else
        stop_server
    fi
}
trap 'sampler_stop; [[ -n ${SERVER_PID:-} ]] && kill -KILL "$SERVER_PID" 2>/dev/null; stop_nginx; rm -rf "$PKI"; true' EXIT

# run_client TAG CMD...: with a server started (CPU_PID), runs the client CMD
# pinned to LOAD_CPU under the client configuration, its output in
# $RESULTS/logs/TAG.out. Sets R_SECONDS (the client's run, wall clock),
# R_SERVER_CPU (the server's exact runtime from just before the client
# starts to 0.25 s after it exits, closes included: a fresh server does
# nothing else, and runs of a second or less, like the h2load burst, are
# measured whole rather than interpolated between samples) and R_FOREIGN
# (the noise indicator over the run, from the sampler).
run_client() {
    local tag=$1
    shift
    local out=$RESULTS/logs/$tag.out samples=$RESULTS/logs/$tag.cpu
    sampler_start "$CPU_PID" "$samples"
    sleep 0.15 # a sample before the window's start
    local t_start=$EPOCHREALTIME rc=0 cpu_start
    read_runtime "$CPU_PID"
    cpu_start=$RUNTIME_NS
    OPENSSL_CONF=$CLIENT_CONF timeout 300 taskset -c "$LOAD_CPU" "$@" >"$out" 2>&1 || rc=$?
    local t_end=$EPOCHREALTIME
    sleep 0.25 # the server finishes the last closes; a sample after the window
    read_runtime "$CPU_PID"
    sampler_stop
    ((rc == 0)) || die "client failed (exit $rc): $* : $(tail -5 "$out")"
    R_SECONDS=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')
    R_SERVER_CPU=$(awk -v a="$cpu_start" -v b="$RUNTIME_NS" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    R_FOREIGN=$(foreign_share "$samples" "$t_end" "$R_SECONDS")
}

# Each parser reads a client's output and sets COUNT (requests or
# handshakes completed), ERRORS and RESUMED (share of resumed handshakes, or
# "-" where the client does not say).
parse_wrk() {
    COUNT=$(awk '/ requests in / { print $1; exit }' "$1")
    ERRORS=$(awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$1")
    RESUMED=-
    [[ -n $COUNT ]] || die "no request count in $1: $(tail -3 "$1")"
}
parse_h2load() {
    # requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout
    read -r COUNT ERRORS < <(awk '/^requests:/ { gsub(",", ""); print $8, $10 + $12 + $14; exit }' "$1")
    RESUMED=-
    [[ -n $COUNT ]] || die "no request count in $1: $(tail -3 "$1")"
}
parse_s_time() {
    COUNT=$(awk '/ connections in .*user sec/ { print $1; exit }' "$1")
    ERRORS=0
    # One character per connection: r resumed, * full (lines of those only).
    RESUMED=$(awk '/^[r*]+$/ { n += length($0); r += gsub("r", "") } END { if (n) printf "%.3f", r / n; else print "nan" }' "$1")
    [[ -n $COUNT ]] || die "no connection count in $1: $(tail -3 "$1")"
}

raw=$RESULTS/tls-rounds.csv
echo "part,workload,server,round,count,seconds,rate,server_cpu_s,per_cpu_s,errors,resumed,foreign" >"$raw"

# measure PART WORKLOAD PARSER CMD_TEMPLATE...: ROUNDS rounds of every
# server, fresh server each, rotating; @PORT@ in the command is the server's.
measure() {
    local part=$1 workload=$2 parser=$3
    shift 3
    local r s tag arg
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(rotate "$r" "${SERVERS[@]}"); do
            tag=tls-$workload-$s-r$r
            start "$s" "$RESULTS/logs/$tag.server"
            local cmd=()
            for arg in "$@"; do cmd+=("${arg//@PORT@/$SERVER_PORT}"); done
            run_client "$tag" "${cmd[@]}"
            stop "$s"
            "$parser" "$RESULTS/logs/$tag.out"
            local rate per
            rate=$(awk -v c="$COUNT" -v t="$R_SECONDS" 'BEGIN { printf "%.0f", c / t }')
            per=$(awk -v c="$COUNT" -v t="$R_SERVER_CPU" 'BEGIN { if (t > 0) printf "%.0f", c / t; else print "nan" }')
            echo "$part,$workload,$s,$r,$COUNT,$R_SECONDS,$rate,$R_SERVER_CPU,$per,$ERRORS,$RESUMED,$R_FOREIGN" >>"$raw"
            log "$(printf '%-22s round %s/%s %-5s %8s /s  server CPU %5.2fs  %8s /CPU-s  resumed %s  errors %s  foreign %s' \
                "$workload" "$r" "$ROUNDS" "$s" "$(si "$rate")" "$R_SERVER_CPU" "$(si "$per")" "$RESUMED" "$ERRORS" "$R_FOREIGN")"
            sleep 0.5
        done
    done
}

URL='https://127.0.0.1:@PORT@/'
H2LOAD_PIN=(--h1 -t1 "--tls13-ciphers=$SUITE13" "--ciphers=$SUITE12" "--groups=$KX_GROUPS")

part() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- suite: what each server negotiates ------------------------------------------

suites=$RESULTS/tls-suites.csv
echo "server,client,protocol,suite,group,verification" >"$suites"
if part suite; then
    for s in "${SERVERS[@]}"; do
        start "$s" "$RESULTS/logs/tls-suite-$s.server"
        for v in 1_3 1_2; do
            out=$RESULTS/logs/tls-suite-$s-$v.out
            OPENSSL_CONF=$CLIENT_CONF openssl s_client -connect "127.0.0.1:$SERVER_PORT" "-tls$v" -CAfile "$CA" -brief </dev/null >"$out" 2>&1 || true
            proto=$(sed -n 's/^Protocol version: //p' "$out" | head -1)
            suite=$(sed -n 's/^Ciphersuite: //p' "$out" | head -1)
            group=$(sed -n 's/^\(Server\|Peer\) Temp Key: \([^,]*\).*/\2/p' "$out" | head -1)
            verify=$(sed -n 's/^Verification: //p' "$out" | head -1)
            echo "$s,openssl s_client -tls$v,${proto:-failed},${suite:--},${group:--},${verify:--}" >>"$suites"
        done
        if [[ -n $HAVE_H2LOAD ]]; then
            out=$RESULTS/logs/tls-suite-$s-h2load.out
            OPENSSL_CONF=$CLIENT_CONF h2load "${H2LOAD_PIN[@]}" -c1 -n1 "https://127.0.0.1:$SERVER_PORT/" >"$out" 2>&1 || true
            proto=$(sed -n 's/^TLS Protocol: //p' "$out")
            suite=$(sed -n 's/^Cipher: //p' "$out")
            group=$(sed -n 's/^Server Temp Key: \([^ ]*\).*/\1/p' "$out")
            echo "$s,h2load --h1,${proto:-failed},${suite:--},${group:--},-" >>"$suites"
        fi
        stop "$s"
    done
fi

# ---- keep-alive requests, handshakes ------------------------------------------------

if part keepalive; then
    measure keepalive "keepalive-wrk" parse_wrk wrk -t1 "-c$CONNS" "-d$DURATION" "$URL"
    if [[ -n $HAVE_H2LOAD ]]; then
        measure keepalive "keepalive-h2load" parse_h2load h2load "${H2LOAD_PIN[@]}" "-c$CONNS" -D "$DURATION" "$URL"
    fi
fi

if part handshake; then
    for v in 1_3 1_2; do
        for mode in new reuse; do
            measure handshake "$mode-tls$v-s_time" parse_s_time openssl s_time -connect '127.0.0.1:@PORT@' "-$mode" "-tls$v" \
                -ciphersuites "$SUITE13" -cipher "$SUITE12" -CAfile "$CA" -time "$HS_TIME" -www /
        done
    done
    measure handshake "close-wrk" parse_wrk wrk -t1 "-c$CONNS" "-d$DURATION" -H 'Connection: close' "$URL"
    if [[ -n $HAVE_H2LOAD ]]; then
        measure handshake "burst-h2load" parse_h2load h2load "${H2LOAD_PIN[@]}" "-c$HS_BURST" "-n$HS_BURST" "$URL"
    fi
fi

# ---- memory per idle connection -----------------------------------------------------

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

mem=$RESULTS/tls-mem-rounds.csv
echo "server,conns,round,rss_before_kb,rss_after_kb,per_conn_bytes,negotiated" >"$mem"
if part memory; then
    for n in $MEM_CONNS; do
        for ((r = 1; r <= MEM_ROUNDS; r++)); do
            for s in $(rotate "$r" "${SERVERS[@]}"); do
                tag=tls-mem-$s-n$n-r$r
                start "$s" "$RESULTS/logs/$tag.server"
                before=$(rss_kb "$CPU_PID")
                idle_args=(--port "$SERVER_PORT" --ca "$CA" -n "$n")
                ((MEM_REQUEST)) || idle_args+=(--no-request)
                coproc IDLE { OPENSSL_CONF=$CLIENT_CONF exec taskset -c "$LOAD_CPU" python3 "$BENCH/tls_idle.py" \
                    "${idle_args[@]}" 2>"$RESULTS/logs/$tag.err"; }
                idle_pid=$IDLE_PID
                line=
                read -r -t 600 line <&"${IDLE[0]}" || true
                [[ $line == ready* ]] || die "bench/tls_idle.py against $s: $(cat "$RESULTS/logs/$tag.err")"
                # The last connection's answer is read; let the server finish
                # with it (nginx moves it to its keep-alive state) first.
                sleep 0.5
                after=$(rss_kb "$CPU_PID")
                echo >&"${IDLE[1]}"
                wait "$idle_pid" || die "bench/tls_idle.py against $s failed: $(cat "$RESULTS/logs/$tag.err")"
                stop "$s"
                read -r _ _ tls cipher <<<"$line"
                per=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
                echo "$s,$n,$r,$before,$after,$per,$tls $cipher" >>"$mem"
                log "$(printf 'memory n=%-6s round %s/%s %-5s RSS %6s -> %6s kB: %6s B per idle TLS connection (%s %s)' \
                    "$n" "$r" "$MEM_ROUNDS" "$s" "$before" "$after" "$per" "$tls" "$cipher")"
                sleep 0.5
            done
        done
    done
fi

# ---- p99 at a fixed rate ------------------------------------------------------------------

p99raw=$RESULTS/tls-p99-rounds.csv
echo "server,rate,round,requests,rps,p50_us,p99_us,errors,server_cpu_s,foreign" >"$p99raw"
if part p99 && [[ -n $LOAD_TLS ]]; then
    for rate in $RATES; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $(rotate "$r" "${SERVERS[@]}"); do
                tag=tls-p99-$s-$rate-r$r
                start "$s" "$RESULTS/logs/$tag.server"
                main_pid=$SERVER_PID
                SERVER_PID=$CPU_PID
                measure_load "$tag" "$TENK" load http "https://127.0.0.1:$SERVER_PORT/" --ca "$CA" \
                    --rate "$rate" -c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --timeout 30s --json
                SERVER_PID=$main_pid
                stop "$s"
                echo "$s,$rate,$r,$M_REQUESTS,$M_RPS,$M_P50,$M_P99,$M_ERRORS,$M_SERVER_CPU,$M_FOREIGN" >>"$p99raw"
                log "$(printf 'p99 rate=%-6s round %s/%s %-5s %8s req/s  p50 %s us  p99 %s us  errors %s' \
                    "$rate" "$r" "$ROUNDS" "$s" "$(si "$M_RPS")" "$M_P50" "$M_P99" "$M_ERRORS")"
                sleep 0.5
            done
        done
    done
fi

# ---- tables ----------------------------------------------------------------------------------

# cell WORKLOAD SERVER COLUMN -> "median (min-max)", or "pending" for a tenk without TLS
cell() {
    [[ $2 != tenk || -n $TENK_TLS ]] || { echo pending; return; }
    local v
    v=$(csv_column "$raw" "c[\"workload\"] == \"$1\" && c[\"server\"] == \"$2\"" "$3")
    [[ -n $v ]] || { echo -; return; }
    read -r m lo hi < <(spread $v)
    fmt_spread "$m" "$lo" "$hi"
}
median() {
    local v
    v=$(csv_column "$1" "$2" "$3" | grep -v '^-$' || true)
    [[ -n $v ]] || { echo -; return; }
    spread $v | awk '{ print $1 }'
}
# share 0.998 -> 99.8 %; "-" (the client does not tell) stays "-"
share() { awk -v v="$1" 'BEGIN { if (v == v + 0) printf "%.1f %%\n", v * 100; else print "-" }'; }
versus() { # WORKLOAD GOAL
    [[ -n $TENK_TLS ]] || { echo "pending"; return; }
    local t n rt
    t=$(median "$raw" "c[\"workload\"] == \"$1\" && c[\"server\"] == \"tenk\"" per_cpu_s)
    n=$(median "$raw" "c[\"workload\"] == \"$1\" && c[\"server\"] == \"nginx\"" per_cpu_s)
    rt=$(ratio "$t" "$n")
    echo "${rt}x $(meets "$rt" "$2")"
}

header "TLS (issue 16): tenk serve http --tls-cert/--tls-key vs nginx-light (1 worker, session cache + tickets); ECDSA P-256; clients pinned to $SUITE13 / $SUITE12, $KX_GROUPS"
[[ -n $TENK_TLS ]] || echo "# tenk: no TLS yet (its columns say pending)"
echo "# load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo

if part suite; then
    echo "Negotiated (the clients' pin; both servers must agree):"
    echo
    echo "| server | client | protocol | suite | key exchange | verification |"
    echo "|---|---|---|---|---|---|"
    tail -n +2 "$suites" | awk -F, '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }'
    echo
fi

if part keepalive || part handshake; then
    echo "Per server CPU-second (median of $ROUNDS, min-max; nginx: its one worker), then per wall second:"
    echo
    echo "| workload | client | nginx /CPU-s | tenk /CPU-s | tenk/nginx (goal) | nginx /s | tenk /s | resumed n/t | errors n/t |"
    echo "|---|---|---:|---:|---|---:|---:|---|---|"
    row() { # WORKLOAD LABEL CLIENT GOAL
        local sel_n="c[\"workload\"] == \"$1\" && c[\"server\"] == \"nginx\"" sel_t="c[\"workload\"] == \"$1\" && c[\"server\"] == \"tenk\""
        [[ -n $(csv_column "$raw" "$sel_n" count) ]] || return 0
        local res_n res_t err_n err_t
        res_n=$(share "$(median "$raw" "$sel_n" resumed)")
        err_n=$(csv_column "$raw" "$sel_n" errors | awk '{ s += $1 } END { print s + 0 }')
        if [[ -n $TENK_TLS ]]; then
            res_t=$(share "$(median "$raw" "$sel_t" resumed)")
            err_t=$(csv_column "$raw" "$sel_t" errors | awk '{ s += $1 } END { print s + 0 }')
        else
            res_t=pending
            err_t=pending
        fi
        echo "| $2 | \`$3\` | $(cell "$1" nginx per_cpu_s) | $(cell "$1" tenk per_cpu_s) | $(versus "$1" "$4") | $(cell "$1" nginx rate) | $(cell "$1" tenk rate) | $res_n/$res_t | $err_n/$err_t |"
    }
    row keepalive-wrk "keep-alive requests, $CONNS conns" "wrk -t1 -c$CONNS -d$DURATION" 1.2
    row keepalive-h2load "keep-alive requests, $CONNS conns" "h2load --h1 -t1 -c$CONNS -D $DURATION" 1.2
    row new-tls1_3-s_time "full handshakes, TLS 1.3" "openssl s_time -new -tls1_3 -www /" 1.0
    row reuse-tls1_3-s_time "resumed handshakes, TLS 1.3" "openssl s_time -reuse -tls1_3 -www /" 1.0
    row new-tls1_2-s_time "full handshakes, TLS 1.2" "openssl s_time -new -tls1_2 -www /" 1.0
    row reuse-tls1_2-s_time "resumed handshakes, TLS 1.2" "openssl s_time -reuse -tls1_2 -www /" 1.0
    row close-wrk "resumed TLS 1.3 + 1 request, $CONNS conns" "wrk -t1 -c$CONNS -d$DURATION -H 'Connection: close'" 1.0
    row burst-h2load "full TLS 1.3 + 1 request, $HS_BURST at once" "h2load --h1 -t1 -c$HS_BURST -n$HS_BURST" 1.0
    echo
fi

if part memory; then
    if ((MEM_REQUEST)); then held="after the handshake and one GET"; else held="after the handshake alone"; fi
    echo "Server RSS per idle TLS connection (TLS 1.3, $held; median of $MEM_ROUNDS):"
    echo
    echo "| connections | nginx (worker) B/conn | tenk B/conn | tenk/nginx (goal < 1.0) | negotiated |"
    echo "|---:|---:|---:|---|---|"
    for n in $MEM_CONNS; do
        nv=$(median "$mem" "c[\"server\"] == \"nginx\" && c[\"conns\"] == $n" per_conn_bytes)
        neg=$(csv_column "$mem" "c[\"conns\"] == $n" negotiated | sort -u | paste -sd/ -)
        if [[ -n $TENK_TLS ]]; then
            tv=$(median "$mem" "c[\"server\"] == \"tenk\" && c[\"conns\"] == $n" per_conn_bytes)
            rt=$(ratio "$tv" "$nv")
            vs="${rt}x $(awk -v v="$rt" 'BEGIN { if (v != v + 0) print "n/a"; else if (v < 1) print "met"; else printf "MISSED by %.0f%%\n", (v - 1) * 100 }')"
        else
            tv=pending
            vs=pending
        fi
        echo "| $n | $nv | $tv | $vs | $neg |"
    done
    echo
fi

if part p99; then
    if [[ -z $LOAD_TLS ]]; then
        echo "p99 at a fixed rate: pending (this tenk's \`load http\` has no https / --ca yet)."
    else
        echo "p99 at a fixed open-loop rate, $CONNS connections (\`tenk load http https://... --rate R --ca CA\`; median of $ROUNDS):"
        echo
        echo "| rate | nginx p99 µs | tenk p99 µs | nginx p50 µs | tenk p50 µs | errors n/t |"
        echo "|---:|---:|---:|---:|---:|---|"
        for rate in $RATES; do
            p() { median "$p99raw" "c[\"server\"] == \"$1\" && c[\"rate\"] == $rate" "$2"; }
            e() { csv_column "$p99raw" "c[\"server\"] == \"$1\" && c[\"rate\"] == $rate" errors | awk '{ s += $1 } END { print s + 0 }'; }
            if [[ -n $TENK_TLS ]]; then
                echo "| $rate | $(p nginx p99_us) | $(p tenk p99_us) | $(p nginx p50_us) | $(p tenk p50_us) | $(e nginx)/$(e tenk) |"
            else
                echo "| $rate | $(p nginx p99_us) | pending | $(p nginx p50_us) | pending | $(e nginx)/pending |"
            fi
        done
    fi
    echo
fi
echo "raw: $raw, $mem, $p99raw, $suites"
