#!/bin/bash
# run-tls-memory.sh: the user-space memory of idle WebSocket connections,
# plain (ws) and TLS (wss), in a hibernating relay room; prints Markdown.
#
# Builds nothing: `make bench-tls-memory` builds torpord and the plugins
# and calls this with the environment below.  Measure a build without
# sanitizers: ASan's shadow memory and quarantine would swamp the figures.
#
#   TORPORD             core/torpord of the build
#   TORPOR_PLUGIN_PATH  where websocket.so and relay.so are
#   PYTHON3             a python3 with the websockets module (Debian's)
#   BENCH_SRCDIR        the bench/ folder of the source tree
#   BENCH_CONNS         connections per run, 2000 by default, at most 10000
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# Each run (ws, then wss) has a torpord of its own on 127.0.0.1 and free
# ports, with one event loop (loops = 1, so every connection lives on the
# same thread) and the relay class hibernating after 500 ms.  A first
# connection opens and closes, so that code paths and OpenSSL's tables are
# paged in, and RSS (VmRSS of /proc/PID/status) is read.  Then a client
# opens BENCH_CONNS connections into one room, they stay idle until the
# room has hibernated with all of them kept (torpord's INFO line says so)
# and 2 s more, and RSS is read again; then a second client adds as many
# again, and RSS is read a third time.  The second difference is the
# cleaner figure: the first batch also fills memory that startup had
# freed, which RSS counts already.  Divided by the count, it is the cost
# of one idle connection in user space: the plugin's record, the core's,
# libevent's event and, for wss, the OpenSSL session (the kernel's socket
# buffers are not in RSS).
#
# Every wait is bounded; torpord and the client are stopped by pid, and
# the scratch folder is removed at exit.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${PYTHON3:?set PYTHON3}"
: "${BENCH_SRCDIR:?set BENCH_SRCDIR}"
CONNS=${BENCH_CONNS:-2000}
HIBERNATE_MS=500

if [ "$CONNS" -lt 1 ] || [ "$CONNS" -gt 10000 ]; then
    echo "run-tls-memory.sh: BENCH_CONNS must be from 1 to 10000" >&2
    exit 1
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 200)) ]; then
    echo "run-tls-memory.sh: ulimit -n is $(ulimit -n); $((CONNS + 200)) descriptors are needed" >&2
    exit 1
fi
command -v openssl >/dev/null \
    || { echo "run-tls-memory.sh: the openssl command is needed" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-tls-memory.XXXXXX")
PID=
CLIENT=

cleanup() {
    for p in $CLIENT $PID; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The certificates: a root the client trusts, and a server pair.
(
    cd "$TMP"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key
    openssl req -x509 -new -key root.key -out root.pem -days 1 \
        -subj "/CN=torpor bench root"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
    openssl req -new -key server.key -out server.csr -subj "/CN=torpor bench"
    printf 'subjectAltName=IP:127.0.0.1\n' >leaf.ext
    openssl x509 -req -in server.csr -CA root.pem -CAkey root.key \
        -set_serial 0x42 -days 1 -extfile leaf.ext -out server.pem
) >"$TMP/openssl.log" 2>&1 \
    || { echo "run-tls-memory.sh: openssl failed: $(tail -n 1 "$TMP/openssl.log")" >&2; exit 1; }

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# wait_for FILE REGEX SECONDS: wait until FILE has a line matching REGEX.
wait_for() {
    local i
    for i in $(seq $(($3 * 10))); do
        if grep -Eq "$2" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# stop_pid PID: SIGTERM, up to 20 s, then SIGKILL.
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# open_batch DIR URI N TOTAL: start a client that opens N connections into
# the room, wait until they are open and the room has hibernated with TOTAL
# connections kept, then 2 s more.  Leaves the client running (its pid
# added to CLIENT); returns 1 with the reason in WHY.
open_batch() {
    local dir=$1 uri=$2 n=$3 total=$4 out
    out=$dir/client-$total.out
    "$PYTHON3" "$BENCH_SRCDIR/idle_conns.py" --uri "$uri/relay/room" \
        --count "$n" --cafile "$TMP/root.pem" --max-seconds 300 \
        >"$out" 2>&1 &
    CLIENT="$CLIENT $!"
    if ! wait_for "$out" '^open ' 240; then
        WHY="client: $(tail -n 1 "$out")"
        return 1
    fi
    if ! wait_for "$dir/torpord.log" "object hibernated .* $total connections kept" 60; then
        WHY="the room did not hibernate with $total connections"
        return 1
    fi
    sleep 2
}

# run MODE: one torpord, two batches of CONNS; prints a table row.
FAILED=0
WHY=
run() {
    local mode=$1 dir port uri base one two p
    WHY=
    dir=$TMP/$mode
    mkdir -p "$dir"
    cat >"$dir/torpor.conf" <<EOF
[core]
log_level = info
plugins = websocket, relay
loops = 1

[transport.websocket]
listen = 127.0.0.1:0
listen_tls = 127.0.0.1:0
tls_certificate = $TMP/server.pem
tls_private_key = $TMP/server.key

[class.relay]
hibernate_after_ms = $HIBERNATE_MS

[route.relay]
class = relay
EOF
    (cd "$dir" && exec "$TORPORD" --config torpor.conf \
        --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
    PID=$!
    if ! wait_for "$dir/torpord.log" 'listening on .* with TLS' 20; then
        WHY="torpord did not start: $(tail -n 1 "$dir/torpord.log")"
    elif [ "$mode" = wss ]; then
        port=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)" with TLS.*/\1/p' "$dir/torpord.log")
        uri=wss://127.0.0.1:$port
    else
        port=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)"$/\1/p' "$dir/torpord.log")
        uri=ws://127.0.0.1:$port
    fi
    # Warm up: one connection in and out, then its room hibernates.
    if [ -z "$WHY" ] && ! timeout 60 "$PYTHON3" "$BENCH_SRCDIR/idle_conns.py" \
        --uri "$uri/relay/warmup" --count 1 --cafile "$TMP/root.pem" \
        --max-seconds 1 >"$dir/warmup.out" 2>&1; then
        WHY="warm-up: $(tail -n 1 "$dir/warmup.out")"
    fi
    if [ -z "$WHY" ]; then
        sleep $((3 * HIBERNATE_MS / 1000 + 1))
        base=$(rss_kib "$PID")
        if open_batch "$dir" "$uri" "$CONNS" "$CONNS"; then
            one=$(rss_kib "$PID")
            if open_batch "$dir" "$uri" "$CONNS" $((2 * CONNS)); then
                two=$(rss_kib "$PID")
            fi
        fi
    fi
    for p in $CLIENT; do
        stop_pid "$p"
    done
    CLIENT=
    stop_pid "$PID"
    PID=
    if [ -n "$WHY" ]; then
        echo "| $mode | failed: $WHY |||||"
        FAILED=1
        return
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$mode" "$base" "$one" "$two" \
        "$(awk -v a="$one" -v b="$base" -v n="$CONNS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')" \
        "$(awk -v a="$two" -v b="$one" -v n="$CONNS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')"
}

echo "Machine: $(nproc) cores, kernel $(uname -r), $(openssl version | cut -d' ' -f1-2), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Two batches of $CONNS idle connections in one relay room that hibernates after $HIBERNATE_MS ms; torpord with one event loop.  RSS is read with the room hibernated."
echo
echo "| mode | RSS before, KiB | RSS with $CONNS, KiB | RSS with $((2 * CONNS)), KiB | bytes per connection, first $CONNS | bytes per connection, next $CONNS |"
echo "|---|---:|---:|---:|---:|---:|"
run ws
run wss
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
exit "$FAILED"
