#!/bin/bash
# run-nng.sh: messages published over nng into a room with WebSocket
# clients, printed as Markdown.
#
# Builds nothing: `make bench-nng` builds the program and calls this with
# the environment below.
#
#   TORPORD             core/torpord of the build
#   TORPOR_PLUGIN_PATH  where websocket.so, relay.so, nng.so, file.so are
#   BENCH_BINDIR        where torpor-nng-bench is
#   BENCH_CLIENTS       WebSocket clients in the room, 100 by default
#   BENCH_MESSAGES      messages of the reqW and push phases, 20000
#   BENCH_WINDOW        requests in flight in the reqW phase, 16
#   BENCH_BYTES         bytes per message, 64
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# One torpord on 127.0.0.1, its WebSocket and nng addresses on free
# ports, in a folder of its own; stopped with SIGTERM, by pid.  Every wait
# is bounded: torpord's start (20 s), the bench (--max-seconds, then
# timeout), torpord's exit (20 s, then SIGKILL).  The scratch folder is
# removed at exit, and a torpord still running killed.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_BINDIR:?set BENCH_BINDIR}"
CLIENTS=${BENCH_CLIENTS:-100}
MESSAGES=${BENCH_MESSAGES:-20000}
WINDOW=${BENCH_WINDOW:-16}
BYTES=${BENCH_BYTES:-64}
MAX_S=300

BENCH=$BENCH_BINDIR/torpor-nng-bench
[ -x "$BENCH" ] \
    || { echo "run-nng.sh: could not find \"$BENCH\"" >&2; exit 1; }
[ -x "$TORPORD" ] \
    || { echo "run-nng.sh: could not find \"$TORPORD\"" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-nng.XXXXXX")
PID=

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/lib.sh"

cat >"$TMP/torpor.conf" <<CONF
[core]
log_level = notice
plugins = websocket, relay, nng

[transport.websocket]
listen = 127.0.0.1:0

[transport.nng]
listen.requests = rep tcp://127.0.0.1:0 publish
listen.stream = pull tcp://127.0.0.1:0 publish
CONF

(cd "$TMP" && exec "$TORPORD" --config torpor.conf \
    --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
PID=$!
WS_PORT=
REQ_URL=
PUSH_URL=
for i in $(seq 200); do
    WS_PORT=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' \
        "$TMP/torpord.log" | head -n 1)
    REQ_URL=$(sed -n 's/.*listening on "\(tcp:[^"]*\)" for listen\.requests .*/\1/p' \
        "$TMP/torpord.log" | head -n 1)
    PUSH_URL=$(sed -n 's/.*listening on "\(tcp:[^"]*\)" for listen\.stream .*/\1/p' \
        "$TMP/torpord.log" | head -n 1)
    if [ -n "$WS_PORT" ] && [ -n "$REQ_URL" ] && [ -n "$PUSH_URL" ]; then
        break
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "run-nng.sh: torpord exited before listening: $(tail -n 1 "$TMP/torpord.log")" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$PUSH_URL" ]; then
    echo "run-nng.sh: torpord logged no nng \"listening on\" within 20 s" >&2
    exit 1
fi

FAILED=0
if ! out=$(timeout $((MAX_S + 60)) "$BENCH" --ws-port "$WS_PORT" \
    --req "$REQ_URL" --push "$PUSH_URL" --clients "$CLIENTS" \
    --messages "$MESSAGES" --window "$WINDOW" --bytes "$BYTES" \
    --max-seconds "$MAX_S" 2>"$TMP/err"); then
    FAILED=1
fi

kill -TERM "$PID" 2>/dev/null || true
for i in $(seq 200); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
    echo "run-nng.sh: torpord did not exit within 20 s of SIGTERM: killed" >&2
    kill -KILL "$PID" 2>/dev/null || true
fi
wait "$PID" 2>/dev/null || true
PID=

echo "Machine: $(nproc) cores, kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "One relay room with $CLIENTS WebSocket clients (C, one reader thread); messages of $BYTES bytes published over nng; latency from the publisher's send to each client's read, one sample per message and client."
echo
echo "| phase | messages | msgs/s | deliveries/s | p50 µs | p99 µs | p99.9 µs | max µs | ack p50 µs | ack p99 µs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
while read -r line; do
    [ -n "$line" ] || continue
    phase=$(field phase "$line")
    case $phase in
    req1) label="REQ/REP, 1 at a time, unloaded" ;;
    reqW) label="REQ/REP, $WINDOW in flight" ;;
    push) label="PUSH/PULL, flood" ;;
    paced) label="PUSH/PULL, half the flood's rate" ;;
    *) label=$phase ;;
    esac
    # PUSH has no acknowledgement to time.
    ack50=$(field ack_p50_us "$line")
    ack99=$(field ack_p99_us "$line")
    [ "$ack50" != "?" ] || ack50=n/a
    [ "$ack99" != "?" ] || ack99=n/a
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(field messages "$line")" "$(field msgs_per_s "$line")" \
        "$(field deliveries_per_s "$line")" "$(field p50_us "$line")" \
        "$(field p99_us "$line")" "$(field p999_us "$line")" \
        "$(field max_us "$line")" "$ack50" "$ack99"
done <<<"${out:-}"
if [ "$FAILED" -ne 0 ]; then
    echo
    echo "failed: $(tail -n 1 "$TMP/err")"
fi
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
exit "$FAILED"
