#!/usr/bin/env bash
# Leaks (issue 20): every server under valgrind memcheck through a short
# mixed workload, then SIGINT (a graceful stop), and what memcheck found:
# "definitely lost" bytes (the goal: 0), indirectly and possibly lost,
# still reachable, and memory errors. Servers (SERVERS, default all):
#
#   echo   tenk serve echo                 tenk load echo (64 B)
#   http   tenk serve http                 tenk load http on GET / and on a 404 (not --root:
#                                          valgrind 3.19 lacks openat2(2), which --root needs)
#   chat   tenk serve chat                 tenk load chat (2 rooms, 4 senders)
#   proxy  tenk serve proxy --upstream B   tenk load http through it (B: a tenk serve
#                                          http --root outside valgrind; a second round
#                                          with B killed mid-run: 502s and dead pools)
#   tls    tenk serve http --tls-cert/key  tenk load http https://... --ca (a fresh
#                                          ECDSA P-256 certificate, as bench/tls.sh)
#
# Each load runs LOAD_DURATION (3s) with LOAD_CONNS (20) connections,
# closed loop, tenk load outside valgrind; meanwhile bench/abrupt.py ends
# ABRUPT (40) more connections badly (partial requests and full ones
# unread, then a reset or a close). The command, for each server:
#
#   valgrind --leak-check=full --errors-for-leak-kinds=definite \
#       --error-exitcode=99 --log-file=LOG tenk serve ...
#
# Exit 99 means a definite leak or a memory error. Unpinned (valgrind runs
# every thread on one core of its own anyway). Needs valgrind (apt-get
# install -y valgrind), python3, openssl (tls). Writes results/memcheck.csv
# and the valgrind logs under results/logs/memcheck-*.vg.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVERS=${SERVERS:-"echo http chat proxy tls"}
LOAD_DURATION=${LOAD_DURATION:-3s}
LOAD_CONNS=${LOAD_CONNS:-20}
ABRUPT=${ABRUPT:-40}
VG_EXIT=99

need valgrind python3
build_tenk
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
VALGRIND=(valgrind --leak-check=full --errors-for-leak-kinds=definite "--error-exitcode=$VG_EXIT")

WORK=$(mktemp -d /tmp/tenk-memcheck.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/root"
head -c 4096 /dev/urandom >"$WORK/root/file.bin"
echo "hello" >"$WORK/root/index.html"

VG_PID=
BACKEND_PID=
kill_all() {
    [[ -z $VG_PID ]] || kill -KILL "$VG_PID" 2>/dev/null || true
    [[ -z $BACKEND_PID ]] || kill -KILL "$BACKEND_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap kill_all EXIT

# vg_start LOG VGLOG CMD...: CMD under valgrind; waits (up to 120 s: valgrind
# starts slowly) for the banner. Sets VG_PID and VG_PORT.
vg_start() {
    local logfile=$1 vglog=$2
    shift 2
    : >"$logfile"
    "${VALGRIND[@]}" "--log-file=$vglog" "$@" >"$logfile" 2>&1 &
    VG_PID=$!
    VG_PORT=
    local i
    for i in $(seq 1200); do
        VG_PORT=$(sed -n 's/.* listening on .*:\([0-9][0-9]*\) .*/\1/p' "$logfile" | head -1 || true)
        [[ -n $VG_PORT ]] && return 0
        kill -0 "$VG_PID" 2>/dev/null || die "server exited at start under valgrind: $(tail -n 5 "$logfile" "$vglog")"
        sleep 0.1
    done
    die "no banner from the server under valgrind after 120 s: $(tail -5 "$logfile")"
}

# vg_stop: SIGINT, then waits up to 300 s for valgrind's leak check; sets VG_RC.
vg_stop() {
    kill -INT "$VG_PID" 2>/dev/null || true
    local i
    VG_RC=
    for i in $(seq 3000); do
        kill -0 "$VG_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$VG_PID" 2>/dev/null; then
        log "valgrind $VG_PID did not exit in 300 s after SIGINT; killing it"
        kill -KILL "$VG_PID" 2>/dev/null || true
    fi
    wait "$VG_PID" && VG_RC=0 || VG_RC=$?
    VG_PID=
}

# load TAG CMD...: a load run outside valgrind, its errors tolerated (a
# server under valgrind is slow; the leaks, not the rate, are measured).
load() {
    local tag=$1
    shift
    "$@" -d "$LOAD_DURATION" --warmup 0s --timeout 10s --max-errors 1000000000 --json \
        >"$RESULTS/logs/$tag.json" 2>"$RESULTS/logs/$tag.err" || true
    jq -r '"\(.requests) requests, \(.errors_total) errors"' "$RESULTS/logs/$tag.json" 2>/dev/null ||
        echo "no report: $(tail -1 "$RESULTS/logs/$tag.err")"
}

abrupt() { # KIND
    python3 "$BENCH/abrupt.py" --port "$VG_PORT" --kind "$1" -n "$ABRUPT" 2>>"$RESULTS/logs/memcheck-abrupt.err" ||
        log "abrupt.py against port $VG_PORT failed (see results/logs/memcheck-abrupt.err)"
}

# leak_bytes VGLOG KIND -> bytes of "KIND lost:" (or "still reachable:") in the LEAK SUMMARY; 0 when absent
leak_bytes() {
    awk -v k="$2" '
        index($0, k ":") { s = substr($0, index($0, k ":") + length(k) + 1); gsub(",", "", s); split(s, f, " "); b = f[1] }
        END { print b + 0 }' "$1"
}

if [[ " $SERVERS " == *" tls "* ]]; then
    need openssl
    (
        cd "$WORK"
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key
        openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=tenk memcheck CA' \
            -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem
        openssl ecparam -name prime256v1 -genkey -noout -out server.key
        openssl req -new -key server.key -subj '/CN=127.0.0.1' -out server.csr
        printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
            'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
            -extfile server.ext -out server.pem
    ) >"$RESULTS/logs/memcheck-pki.log" 2>&1 || die "making the certificates failed: $(cat "$RESULTS/logs/memcheck-pki.log")"
fi

csv=$RESULTS/memcheck.csv
echo "server,command,exit,definitely_lost_b,indirectly_lost_b,possibly_lost_b,still_reachable_b,errors,workload" >"$csv"
for s in $SERVERS; do
    tag=memcheck-$s
    vglog=$RESULTS/logs/$tag.vg
    work=()
    bg=()
    case $s in
        echo) cmd=("$TENK" serve echo --port 0) ;;
        # Not --root: valgrind 3.19 has no openat2(2), without which tenk
        # refuses --root rather than serve files unconfined.
        http) cmd=("$TENK" serve http --port 0) ;;
        chat) cmd=("$TENK" serve chat --port 0) ;;
        proxy)
            "$TENK" serve http --port 0 --root "$WORK/root" >"$RESULTS/logs/$tag.backend" 2>&1 &
            BACKEND_PID=$!
            for _ in $(seq 100); do
                bport=$(sed -n 's/.* listening on .*:\([0-9][0-9]*\) .*/\1/p' "$RESULTS/logs/$tag.backend" | head -1 || true)
                [[ -z $bport ]] || break
                sleep 0.05
            done
            [[ -n $bport ]] || die "the proxy's backend did not start: $(cat "$RESULTS/logs/$tag.backend")"
            cmd=("$TENK" serve proxy --port 0 --upstream "127.0.0.1:$bport")
            ;;
        tls) cmd=("$TENK" serve http --port 0 --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key") ;;
        *) die "unknown server $s (echo http chat proxy tls)" ;;
    esac
    log "== memcheck $s: valgrind ${cmd[*]##*/}"
    vg_start "$RESULTS/logs/$tag.server" "$vglog" "${cmd[@]}"
    url=http://127.0.0.1:$VG_PORT
    case $s in
        echo)
            abrupt echo &
            bg+=($!)
            work+=("echo: $(load "$tag-1" "$TENK" load echo "127.0.0.1:$VG_PORT" --size 64 -c "$LOAD_CONNS")")
            ;;
        http)
            abrupt http &
            bg+=($!)
            work+=("GET /: $(load "$tag-1" "$TENK" load http "$url/" -c "$LOAD_CONNS")")
            work+=("GET /missing (404): $(load "$tag-2" "$TENK" load http "$url/missing" -c "$LOAD_CONNS")")
            ;;
        chat)
            abrupt chat &
            bg+=($!)
            work+=("chat: $(load "$tag-1" "$TENK" load chat "127.0.0.1:$VG_PORT" -c "$LOAD_CONNS" --rooms 2 --senders 4 --rate 200)")
            ;;
        proxy)
            abrupt http &
            bg+=($!)
            work+=("GET /file.bin: $(load "$tag-1" "$TENK" load http "$url/file.bin" -c "$LOAD_CONNS")")
            # The backend dies under load: pooled upstreams end, requests get 502.
            (sleep 1 && kill -KILL "$BACKEND_PID") &
            bg+=($!)
            work+=("backend killed: $(load "$tag-2" "$TENK" load http "$url/" -c "$LOAD_CONNS")")
            wait "$BACKEND_PID" 2>/dev/null || true
            BACKEND_PID=
            ;;
        tls)
            abrupt tls &
            bg+=($!)
            work+=("GET / over TLS: $(load "$tag-1" "$TENK" load http "https://127.0.0.1:$VG_PORT/" --ca "$WORK/ca.pem" -c "$LOAD_CONNS")")
            work+=("a handshake per request: $(load "$tag-2" "$TENK" load http "https://127.0.0.1:$VG_PORT/" --ca "$WORK/ca.pem" -c 4 --new-conn-per-request)")
            ;;
    esac
    wait "${bg[@]}" || true # abrupt.py and the backend's killer (not valgrind)
    vg_stop
    [[ -s $vglog ]] || die "no valgrind log for $s"
    def=$(leak_bytes "$vglog" "definitely lost")
    ind=$(leak_bytes "$vglog" "indirectly lost")
    pos=$(leak_bytes "$vglog" "possibly lost")
    rea=$(leak_bytes "$vglog" "still reachable")
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$vglog" | tail -1 | tr -d ,)
    shown="valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=$VG_EXIT tenk ${cmd[*]:1}"
    shown=${shown//$WORK/DIR}
    desc=$(printf '%s; ' "${work[@]}")
    desc="$desc$ABRUPT ended abruptly"
    echo "$s,$shown,$VG_RC,$def,$ind,$pos,$rea,${errs:-nan},${desc//,/}" >>"$csv"
    log "$(printf 'memcheck %-5s exit %s: definitely lost %s B, indirectly %s B, possibly %s B, still reachable %s B, %s errors (%s)' \
        "$s" "$VG_RC" "$def" "$ind" "$pos" "$rea" "${errs:-?}" "$desc")"
done

printf '# %s\n' "Leaks (issue 20): valgrind memcheck of each server under a short mixed workload, then SIGINT"
printf '# machine: %s\n# tenk: %s\n' "$(machine)" "$TENK_REV"
echo "# valgrind: $(valgrind --version); load average (1, 5, 15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| server | definitely lost | indirectly lost | possibly lost | still reachable | errors | exit | workload |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
tail -n +2 "$csv" | while IFS=, read -r s _ rc def ind pos rea errs desc; do
    echo "| $s | $def B | $ind B | $pos B | $rea B | $errs | $rc | $desc |"
done
echo
echo "Commands (DIR a temporary directory; exit $VG_EXIT = a definite leak or a memory error):"
echo
echo '```'
tail -n +2 "$csv" | cut -d, -f2
echo '```'
echo
echo "raw: $csv, valgrind logs: $RESULTS/logs/memcheck-*.vg"
