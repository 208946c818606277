#!/bin/bash
# run-wake.sh: wake latency of the relay and chat classes, printed as
# Markdown.
#
# Builds nothing: `make bench-wake` builds the programs and calls this
# with the environment below.
#
#   TORPORD             core/torpord of the build
#   TORPOR_PLUGIN_PATH  where websocket.so, relay.so, chat.so, file.so are
#   BENCH_BINDIR        where torpor-wake-bench is
#   BENCH_ROOMS         rooms per run, 200 by default, at most 500
#   BENCH_ROUNDS        rounds per run, 5 by default, at most 5
#   BENCH_HIBERNATE_MS  hibernate_after_ms of both classes, 500 by default
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# Runs: relay, then chat with the file store on its default fsync =
# always, then chat with fsync = never, which leaves the disk out of
# chat's figures.  Each run has a torpord of its own, on 127.0.0.1 and a
# free port, in a folder of its own (its working directory, so its file
# store writes ./torpor-data there).  The bench leaves the rooms idle for
# 3 x hibernate_after_ms before each round.  torpord is stopped with
# SIGTERM, by pid, and its closing counters must show at least one
# hibernation per room and round, or the run counts as failed.
#
# Every wait is bounded: torpord's start (20 s), the bench (its own
# --max-seconds, then timeout), torpord's exit (20 s, then SIGKILL).  The
# scratch folder is removed at exit, and a torpord still running killed.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_BINDIR:?set BENCH_BINDIR}"
ROOMS=${BENCH_ROOMS:-200}
ROUNDS=${BENCH_ROUNDS:-5}
HIBERNATE_MS=${BENCH_HIBERNATE_MS:-500}
IDLE_MS=$((3 * HIBERNATE_MS))
# Rounds of idling, plus generous time for 2 * ROOMS connections and
# 2 * ROOMS * (ROUNDS + 1) messages.
MAX_S=$((ROUNDS * IDLE_MS / 1000 + 120))

BENCH=$BENCH_BINDIR/torpor-wake-bench
[ -x "$BENCH" ] \
    || { echo "run-wake.sh: could not find \"$BENCH\"" >&2; exit 1; }
[ -x "$TORPORD" ] \
    || { echo "run-wake.sh: could not find \"$TORPORD\"" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-wake.XXXXXX")
PID=
FAILED=0

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

# start_torpord DIR: start torpord in DIR on DIR/torpor.conf; sets PID and
# PORT, or returns 1 with the reason on stderr.
start_torpord() {
    local dir=$1 i
    (cd "$dir" && exec "$TORPORD" --config torpor.conf \
        --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
    PID=$!
    for i in $(seq 200); do
        PORT=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' \
            "$dir/torpord.log" 2>/dev/null | head -n 1)
        if [ -n "$PORT" ]; then
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            echo "torpord exited before listening: $(tail -n 1 "$dir/torpord.log")" >&2
            PID=
            return 1
        fi
        sleep 0.1
    done
    echo "torpord logged no \"listening on\" within 20 s" >&2
    return 1
}

# stop_torpord: SIGTERM, then wait up to 20 s for the exit, then SIGKILL.
stop_torpord() {
    local i
    kill -TERM "$PID" 2>/dev/null || true
    for i in $(seq 200); do
        if ! kill -0 "$PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "torpord did not exit within 20 s of SIGTERM: killed" >&2
        kill -KILL "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
    PID=
}

# run_row CLASS LABEL FSYNC: one torpord, one bench run, two table rows.
run_row() {
    local klass=$1 label=$2 fsync=$3 dir out stopped hib wakes
    dir=$TMP/$klass-$fsync
    mkdir -p "$dir"
    cat >"$dir/torpor.conf" <<EOF
[core]
log_level = notice
plugins = websocket, relay, chat

[transport.websocket]
listen = 127.0.0.1:0

[class.relay]
hibernate_after_ms = $HIBERNATE_MS

[class.chat]
hibernate_after_ms = $HIBERNATE_MS

[storage.file]
fsync = $fsync
EOF
    if ! start_torpord "$dir" 2>"$TMP/err"; then
        FAILED=1
        printf '| %s | | failed: %s ||||||\n' "$label" "$(tail -n 1 "$TMP/err" | tr '|' '/')"
        return
    fi
    if ! out=$(timeout $((MAX_S + 30)) "$BENCH" --port "$PORT" \
        --class "$klass" --rooms "$ROOMS" --rounds "$ROUNDS" \
        --idle-ms "$IDLE_MS" --max-seconds "$MAX_S" 2>"$TMP/err"); then
        FAILED=1
        stop_torpord
        printf '| %s | | failed: %s ||||||\n' "$label" "$(tail -n 1 "$TMP/err" | tr '|' '/')"
        return
    fi
    stop_torpord
    # "stopped: N wakeups, M hibernations, ..." at NOTICE, on exit.
    stopped=$(grep -o 'stopped: [0-9]* wakeups, [0-9]* hibernations' \
        "$dir/torpord.log" | tail -n 1)
    wakes=$(echo "$stopped" | awk '{ print $2 }')
    hib=$(echo "$stopped" | awk '{ print $4 }')
    if [ -z "$hib" ] || [ "$hib" -lt $((ROOMS * ROUNDS)) ]; then
        FAILED=1
        printf '| %s | | failed: %s hibernations, fewer than the %s samples ||||||\n' \
            "$label" "${hib:-no count of}" $((ROOMS * ROUNDS))
        return
    fi
    printf '| %s | hibernating | %s | %s | %s | %s | %s |\n' "$label" \
        "$(field wake_n "$out")" "$(field wake_p50_us "$out")" \
        "$(field wake_p99_us "$out")" "$(field wake_p999_us "$out")" \
        "$(field wake_max_us "$out")"
    printf '| %s | awake | %s | %s | %s | %s | %s |\n' "$label" \
        "$(field awake_n "$out")" "$(field awake_p50_us "$out")" \
        "$(field awake_p99_us "$out")" "$(field awake_p999_us "$out")" \
        "$(field awake_max_us "$out")"
    NOTES="$NOTES
- $label: torpord counted $hib hibernations and $wakes wakeups; the longest round took $(field pass_max_ms "$out") ms."
    rm -rf "$dir"
}

NOTES=
echo "Machine: $(nproc) cores, kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Each run: $ROOMS rooms of 2 clients, $ROUNDS rounds, hibernate_after_ms = $HIBERNATE_MS, rooms idle $IDLE_MS ms before each round; one sample per room, round and state."
echo
echo "| class | room | samples | p50 µs | p99 µs | p99.9 µs | max µs |"
echo "|---|---|---:|---:|---:|---:|---:|"
run_row relay "relay" always
run_row chat "chat, fsync = always" always
run_row chat "chat, fsync = never" never
echo "$NOTES"
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
exit "$FAILED"
