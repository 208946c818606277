#!/bin/bash
# run-idle.sh: what an idle WebSocket connection costs torpord in memory,
# printed as Markdown.
#
# Builds nothing: `make bench-idle` builds the programs and calls this
# with the environment below.
#
#   TORPORD             core/torpord of the build
#   TORPOR_PLUGIN_PATH  where websocket.so, relay.so and file.so are
#   BENCH_BINDIR        where torpor-idle-bench is
#   BENCH_CONNS         idle connections, 15000 by default, at most 19000
#   BENCH_ROOMS         relay rooms they spread over, 1500 by default
#   BENCH_CLIENTS       client processes sharing them, 4 by default
#   BENCH_HIBERNATE_MS  hibernate_after_ms of relay, 1000 by default
#   BENCH_LOOPS         [core] loops of torpord, 2 by default
#   BENCH_WARMUP        connections opened and closed before the warm
#                       baseline, 1000 by default (over a tenth as many
#                       rooms); 0 skips it
#   BENCH_ARENA_MAX     MALLOC_ARENA_MAX for torpord; unset: glibc's default
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# One torpord on 127.0.0.1 and a free port, in a scratch folder (its
# working directory).  Its memory is read three times, from /proc/PID:
# VmRSS and RssAnon from status, Pss from smaps_rollup.
#
#   cold   once torpord is listening and its RSS has stopped changing;
#   warm   after BENCH_WARMUP connections were opened, held and closed,
#          which pays the one-time costs that come with the first
#          connections (thread stacks reached by a read, code pages, the
#          epoll arrays, malloc arenas) before counting;
#   after  once every connection is open, every room has hibernated, and
#          RSS has stopped changing.
#
# Per connection is (after - warm) / BENCH_CONNS, and (after - cold) /
# BENCH_CONNS beside it.  Both include each room's own record, a tenth
# of a room per connection by default.
#
# That every room hibernated is read from torpord's INFO lines: for each
# room the last of "object hibernated ..., N connections kept" and
# "object woke from hibernation" must be a hibernation, and the kept
# connections must add up to BENCH_CONNS.
#
# Every wait is bounded: torpord's start (20 s), each wait for a steady
# RSS (30 s), the clients' connecting (600 s), the hibernation of every
# room (60 s plus hibernate_after_ms), the clients' close (60 s), and
# torpord's exit (20 s, then SIGKILL).  The scratch folder is removed at
# exit, and torpord or a client still running killed, by pid.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_BINDIR:?set BENCH_BINDIR}"
CONNS=${BENCH_CONNS:-15000}
ROOMS=${BENCH_ROOMS:-1500}
CLIENTS=${BENCH_CLIENTS:-4}
HIBERNATE_MS=${BENCH_HIBERNATE_MS:-1000}
LOOPS=${BENCH_LOOPS:-2}
WARMUP=${BENCH_WARMUP:-1000}

BENCH=$BENCH_BINDIR/torpor-idle-bench
[ -x "$BENCH" ] \
    || { echo "run-idle.sh: could not find \"$BENCH\"" >&2; exit 1; }
[ -x "$TORPORD" ] \
    || { echo "run-idle.sh: could not find \"$TORPORD\"" >&2; exit 1; }
if [ "$CONNS" -gt 19000 ] || [ "$CONNS" -lt "$CLIENTS" ] \
    || [ "$ROOMS" -lt "$CLIENTS" ] || [ "$ROOMS" -gt "$CONNS" ]; then
    echo "run-idle.sh: need CLIENTS <= ROOMS <= CONNS <= 19000, got $CLIENTS, $ROOMS, $CONNS" >&2
    exit 1
fi
# torpord holds every connection, plus listeners, the loops' descriptors
# and its storage; one process may hold at most 20,000.
NOFILE=$((CONNS + 500))
if [ "$NOFILE" -gt 20000 ]; then
    NOFILE=20000
fi
ulimit -n "$NOFILE" 2>/dev/null || {
    echo "run-idle.sh: could not raise the descriptor limit to $NOFILE (hard limit $(ulimit -Hn))" >&2
    exit 1
}

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-idle.XXXXXX")
PID=
CLIENT_PIDS=

cleanup() {
    local p
    for p in $CLIENT_PIDS; do
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/lib.sh"

fail() {
    echo "run-idle.sh: $*" >&2
    exit 1
}

# mem_read: sets RSS_KB, ANON_KB and PSS_KB from torpord's /proc files.
mem_read() {
    RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
    ANON_KB=$(awk '/^RssAnon:/ { print $2 }' "/proc/$PID/status")
    PSS_KB=$(awk '/^Pss:/ { print $2 }' "/proc/$PID/smaps_rollup")
}

# wait_steady: until torpord's RSS is the same over three reads 0.5 s
# apart, for 30 s at most (then it goes on, saying so).
wait_steady() {
    local last=-1 same=0 i
    for i in $(seq 60); do
        mem_read
        if [ "$RSS_KB" = "$last" ]; then
            same=$((same + 1))
            if [ "$same" -ge 2 ]; then
                return 0
            fi
        else
            same=0
        fi
        last=$RSS_KB
        sleep 0.5
    done
    NOTES="$NOTES
- RSS was still changing 30 s into a wait for it to settle; read anyway."
}

start_torpord() {
    local i
    (cd "$TMP" && exec env ${BENCH_ARENA_MAX:+MALLOC_ARENA_MAX=$BENCH_ARENA_MAX} \
        "$TORPORD" --config torpor.conf \
        --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
    PID=$!
    for i in $(seq 200); do
        PORT=$(sed -n 's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' \
            "$TMP/torpord.log" 2>/dev/null | head -n 1)
        if [ -n "$PORT" ]; then
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            PID=
            fail "torpord exited before listening: $(tail -n 1 "$TMP/torpord.log")"
        fi
        sleep 0.1
    done
    fail "torpord logged no \"listening on\" within 20 s"
}

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
        NOTES="$NOTES
- torpord did not exit within 20 s of SIGTERM: killed."
        kill -KILL "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
    PID=
}

# clients_start N ROOMS PREFIX K: K client processes share N connections
# over ROOMS rooms named PREFIX-0 .. PREFIX-(ROOMS-1); their output goes
# to $TMP/PREFIX-J.out.
clients_start() {
    local n=$1 rooms=$2 prefix=$3 k=$4 j first count nrooms
    CLIENT_PIDS=
    for j in $(seq 0 $((k - 1))); do
        first=$((rooms * j / k))
        nrooms=$((rooms * (j + 1) / k - first))
        count=$((n * (j + 1) / k - n * j / k))
        "$BENCH" --port "$PORT" --conns "$count" --rooms "$nrooms" \
            --first "$first" --prefix "$prefix" --max-seconds 3600 \
            >"$TMP/$prefix-$j.out" 2>"$TMP/$prefix-$j.err" &
        CLIENT_PIDS="$CLIENT_PIDS $!"
    done
}

# clients_await_open PREFIX: until every client printed its conns= line;
# fails if one exits first, or after 600 s.
clients_await_open() {
    local prefix=$1 i j p ready
    for i in $(seq 6000); do
        ready=0
        j=0
        for p in $CLIENT_PIDS; do
            if grep -q '^conns=' "$TMP/$prefix-$j.out" 2>/dev/null; then
                ready=$((ready + 1))
            elif ! kill -0 "$p" 2>/dev/null; then
                fail "client $j of \"$prefix\" exited before it opened its connections: $(tail -n 1 "$TMP/$prefix-$j.err")"
            fi
            j=$((j + 1))
        done
        if [ "$ready" -eq "$j" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "the clients of \"$prefix\" did not open their connections within 600 s"
}

# clients_close PREFIX: SIGUSR1 to each client, then wait for its exit
# (60 s at most); fails unless each closed every connection cleanly.
clients_close() {
    local prefix=$1 p j i
    for p in $CLIENT_PIDS; do
        kill -USR1 "$p"
    done
    j=0
    for p in $CLIENT_PIDS; do
        for i in $(seq 600); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if ! wait "$p"; then
            CLIENT_PIDS=
            fail "client $j of \"$prefix\" failed: $(tail -n 1 "$TMP/$prefix-$j.err")"
        fi
        j=$((j + 1))
    done
    CLIENT_PIDS=
}

# hibernated PREFIX: prints "ROOMS CONNS": the rooms of PREFIX whose last
# hibernation line is not followed by a wake, and the connections those
# lines kept.
hibernated() {
    awk -v pat="object=\"relay/$1-[0-9]+\"" '
        match($0, pat) {
            room = substr($0, RSTART, RLENGTH)
            if ($0 ~ /object hibernated after/) {
                match($0, /, [0-9]+ connections kept/)
                kept[room] = substr($0, RSTART + 2, RLENGTH - 2) + 0
                asleep[room] = 1
            } else if ($0 ~ /object woke from hibernation/) {
                asleep[room] = 0
            }
        }
        END {
            rooms = 0; conns = 0
            for (room in asleep) {
                if (asleep[room]) { rooms++; conns += kept[room] }
            }
            print rooms, conns
        }' "$TMP/torpord.log"
}

NOTES=
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
cat >"$TMP/torpor.conf" <<EOF
[core]
log_level = info
plugins = websocket, relay
loops = $LOOPS

[transport.websocket]
listen = 127.0.0.1:0

[class.relay]
hibernate_after_ms = $HIBERNATE_MS
EOF

SIZES=$("$BENCH" --sizes)
start_torpord
wait_steady
COLD_RSS=$RSS_KB COLD_ANON=$ANON_KB COLD_PSS=$PSS_KB

if [ "$WARMUP" -gt 0 ]; then
    WARM_ROOMS=$(((WARMUP + 9) / 10))
    clients_start "$WARMUP" "$WARM_ROOMS" warm 1
    clients_await_open warm
    clients_close warm
fi
wait_steady
WARM_RSS=$RSS_KB WARM_ANON=$ANON_KB WARM_PSS=$PSS_KB

clients_start "$CONNS" "$ROOMS" idle "$CLIENTS"
clients_await_open idle
CONNECT_MS=0
for j in $(seq 0 $((CLIENTS - 1))); do
    ms=$(field connect_ms "$(grep '^conns=' "$TMP/idle-$j.out")")
    if [ "${ms%.*}" -gt "$CONNECT_MS" ]; then
        CONNECT_MS=${ms%.*}
    fi
done

deadline=$((SECONDS + 60 + HIBERNATE_MS / 1000))
while :; do
    read -r HIB_ROOMS HIB_CONNS <<<"$(hibernated idle)"
    if [ "$HIB_ROOMS" -eq "$ROOMS" ] && [ "$HIB_CONNS" -eq "$CONNS" ]; then
        break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        fail "only $HIB_ROOMS of $ROOMS rooms hibernated, keeping $HIB_CONNS of $CONNS connections"
    fi
    sleep 0.5
done
wait_steady
AFTER_RSS=$RSS_KB AFTER_ANON=$ANON_KB AFTER_PSS=$PSS_KB
read -r CHECK_ROOMS CHECK_CONNS <<<"$(hibernated idle)"
[ "$CHECK_ROOMS" -eq "$ROOMS" ] \
    || fail "a room woke while memory was read: $CHECK_ROOMS of $ROOMS hibernating"

clients_close idle
stop_torpord

# per KB_AFTER KB_BEFORE: bytes per connection, one decimal.
per() {
    awk -v a="$1" -v b="$2" -v n="$CONNS" \
        'BEGIN { printf "%.1f", (a - b) * 1024 / n }'
}

echo "Machine: $(nproc) cores, kernel $(uname -r), load average $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end."
echo "Run: $CONNS idle connections over $ROOMS relay rooms from $CLIENTS client processes, hibernate_after_ms = $HIBERNATE_MS, $LOOPS event loops, warm-up $WARMUP connections, MALLOC_ARENA_MAX ${BENCH_ARENA_MAX:-unset}."
echo "Records: $SIZES"
echo
echo "| measure | cold kB | warm kB | after kB | B/conn from warm | B/conn from cold |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| VmRSS | $COLD_RSS | $WARM_RSS | $AFTER_RSS | $(per "$AFTER_RSS" "$WARM_RSS") | $(per "$AFTER_RSS" "$COLD_RSS") |"
echo "| RssAnon | $COLD_ANON | $WARM_ANON | $AFTER_ANON | $(per "$AFTER_ANON" "$WARM_ANON") | $(per "$AFTER_ANON" "$COLD_ANON") |"
echo "| Pss | $COLD_PSS | $WARM_PSS | $AFTER_PSS | $(per "$AFTER_PSS" "$WARM_PSS") | $(per "$AFTER_PSS" "$COLD_PSS") |"
echo
echo "- Connected $CONNS in $CONNECT_MS ms (the slowest client): $(awk -v n="$CONNS" -v ms="$CONNECT_MS" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }') connections/s, upgrades included."
echo "- Hibernated: $HIB_ROOMS of $ROOMS rooms, keeping $HIB_CONNS connections, when memory was read.$NOTES"
