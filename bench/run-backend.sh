#!/bin/bash
# run-backend.sh: round trips through the backend class with 1 and 4
# moderator workers, printed as Markdown.
#
# Builds nothing: `make bench-backend` builds the programs and calls this
# with the environment below.  For figures, build without
# --enable-sanitizers: the output says when the build carries ASan.
#
#   TORPORD             core/torpord of the build
#   TORPOR_PLUGIN_PATH  where websocket.so, backend.so, file.so are
#   BENCH_BINDIR        where torpor-backend-bench is
#   BENCH_WORKER        the C moderator worker (torpor-moderator)
#   BENCH_ROOMS         rooms, each with one message in flight; 16 by
#                       default, at most 1000
#   BENCH_MESSAGES      measured round trips per room, 500 by default
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# Each run has a torpord of its own, on 127.0.0.1 and a free port, with
# the file store in its folder, [class.backend] workers on a Unix socket
# there, and N workers started with --quiet; the bench starts once
# torpord logs N connected.  Everything is stopped with SIGTERM, by pid.
#
# Every wait is bounded: torpord's start (20 s), the workers' connection
# (20 s), the bench (its own --max-seconds, then timeout), each exit (20
# s, then SIGKILL).  The scratch folder is removed at exit, and anything
# still running killed.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_BINDIR:?set BENCH_BINDIR}"
: "${BENCH_WORKER:?set BENCH_WORKER}"
ROOMS=${BENCH_ROOMS:-16}
MESSAGES=${BENCH_MESSAGES:-500}
MAX_S=300

BENCH=$BENCH_BINDIR/torpor-backend-bench
for f in "$BENCH" "$TORPORD" "$BENCH_WORKER"; do
    [ -x "$f" ] || { echo "run-backend.sh: could not find \"$f\"" >&2; exit 1; }
done

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-backend.XXXXXX")
PIDS=
FAILED=0

# stop_pid PID: SIGTERM, wait up to 20 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid did not exit within 20 s of SIGTERM: killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    local pid
    for pid in $PIDS; do
        stop_pid "$pid"
    done
    PIDS=
}

cleanup() {
    local pid
    for pid in $PIDS; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/lib.sh"

# wait_log FILE PATTERN: wait up to 20 s for a line matching PATTERN.
wait_log() {
    local i
    for i in $(seq 200); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# run_row N: one torpord, N workers, one bench run, one table row.
run_row() {
    local n=$1 dir port out i pid
    dir=$TMP/workers-$n
    mkdir -p "$dir"
    cat >"$dir/torpor.conf" <<CONF
[core]
log_level = info
plugins = websocket, backend

[transport.websocket]
listen = 127.0.0.1:0

[class.backend]
workers = ipc://$dir/workers.sock

[route.mod]
class = backend
CONF
    (cd "$dir" && exec "$TORPORD" --config torpor.conf \
        --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
    PIDS="$PIDS $!"
    if ! wait_log "$dir/torpord.log" 'listening on "127\.0\.0\.1:'; then
        FAILED=1
        printf '| %s | failed: torpord did not start: %s |||||\n' "$n" "$(tail -n 1 "$dir/torpord.log" | tr '|' '/')"
        stop_all
        return
    fi
    port=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$dir/torpord.log" | head -n 1)
    for i in $(seq "$n"); do
        "$BENCH_WORKER" --url "ipc://$dir/workers.sock" --name "w$i" --quiet \
            2>"$dir/w$i.log" &
        PIDS="$PIDS $!"
    done
    if ! wait_log "$dir/torpord.log" ": $n connected"; then
        FAILED=1
        printf '| %s | failed: %s workers did not connect |||||\n' "$n" "$n"
        stop_all
        return
    fi
    if ! out=$(timeout $((MAX_S + 30)) "$BENCH" --port "$port" \
        --rooms "$ROOMS" --messages "$MESSAGES" --max-seconds "$MAX_S" \
        2>"$TMP/err"); then
        FAILED=1
        stop_all
        printf '| %s | failed: %s |||||\n' "$n" "$(tail -n 1 "$TMP/err" | tr '|' '/')"
        return
    fi
    stop_all
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" \
        "$(field messages "$out")" "$(field per_s "$out")" \
        "$(field p50_us "$out")" "$(field p99_us "$out")" \
        "$(field p999_us "$out")" "$(field max_us "$out")"
    NOTES="$NOTES
- $n worker(s): $(grep -o 'backend: stopped: .*' "$dir/torpord.log" | tail -n 1)."
    rm -rf "$dir"
}

NOTES=
echo "Machine: $(nproc) cores, kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
# core/torpord may be libtool's wrapper script: ask a plugin of the build.
if grep -q __asan_init "$TORPOR_PLUGIN_PATH/backend.so" 2>/dev/null; then
    echo "**This build has sanitizers: these figures are not representative.**"
fi
echo "Each run: $ROOMS rooms of 2 clients, one message in flight per room, $MESSAGES measured round trips per room (10 more first, unmeasured); C moderator workers on a Unix socket, torpord, workers and bench on one machine."
echo
echo "| workers | round trips | per second | p50 µs | p99 µs | p99.9 µs | max µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
run_row 1
run_row 4
echo "$NOTES"
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
exit "$FAILED"
