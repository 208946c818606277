#!/bin/bash
# run-peers.sh: torpor against the servers people pick instead (workerd, a
# Node ws relay, Socket.IO with its Redis adapter) and against the
# kernel's floor, side by side in one run.  Writes the raw result lines
# to BENCH_RESULTS/raw/, then the Markdown report and its plots
# (bench/report-peers.sh).
#
# Builds nothing: `make bench` builds the programs and calls this with
# TORPORD, TORPOR_PLUGIN_PATH, BENCH_BINDIR and BENCH_SANITIZED.  The
# peers come from bench/peers/install.sh, run once.  Sizes, all from the
# environment:
#
#   BENCH_SYSTEMS         "torpor workerd ws socketio floor floor-batched"
#   BENCH_SCENARIOS       "idle fanout-one fanout-many wake"
#   BENCH_PROCS           client processes, 4
#   BENCH_IDLE_CONNS      idle: connections, 15000
#   BENCH_IDLE_ROOMS      idle: rooms they spread over, 1500
#   BENCH_IDLE_MS         idle: how long they are held before the memory is
#                         read; wake: the idle time before each round; 15000
#                         (workerd evicts an idle object after about 10 s)
#   BENCH_HIBERNATE_MS    torpord's relay hibernate_after_ms, 1000
#   BENCH_F1_SUBSCRIBERS  fanout-one: subscribers of the one room, 1000
#   BENCH_F1_WINDOW       fanout-one: messages in flight at most, 16
#   BENCH_SECONDS         how long each fanout run publishes, 10
#   BENCH_FM_ROOMS        fanout-many: rooms, 1000
#   BENCH_FM_SUBSCRIBERS  fanout-many: subscribers per room, 10
#   BENCH_FM_RATES        fanout-many: messages/s per room, "1 10"
#   BENCH_WAKE_ROOMS      wake: rooms of two, 200
#   BENCH_WAKE_ROUNDS     wake: rounds, 3
#   BENCH_SIZE            payload bytes, 64
#   BENCH_FILES           open files each process may hold (servers and
#                         client processes alike), 20000; as root the limit
#                         is set to it, otherwise only lowered to it
#   BENCH_RESULTS         where the report goes, bench/results of the source
#   BENCH_ALLOW_SANITIZED 1 runs on a build with sanitizers anyway (for
#                         trying the script out; its figures mean nothing)
#   BENCH_TMPDIR          parent of the scratch folder, /tmp by default
#
# The floor (bench/floor: one write per frame and recipient, the system
# calls torpord makes) and floor-batched (one write per recipient for all
# that one read brought) run only the fanout scenarios: they have no rooms
# to idle or wake.  Each system gets a fresh server for each scenario, stopped by
# pid afterwards.  A run that fails is recorded with its reason, and the
# next one goes on.  Every wait is bounded: server starts (20 s), each
# bench run (its --max-seconds, then timeout), server exits (20 s, then
# SIGKILL).  The scratch folder is removed at exit.
set -eu

: "${TORPORD:?set TORPORD}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_BINDIR:?set BENCH_BINDIR}"
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=$SRC_DIR/bench/peers
RESULTS=${BENCH_RESULTS:-$SRC_DIR/bench/results}
SYSTEMS=${BENCH_SYSTEMS:-torpor workerd ws socketio floor floor-batched}
SCENARIOS=${BENCH_SCENARIOS:-idle fanout-one fanout-many wake}
PROCS=${BENCH_PROCS:-4}
IDLE_CONNS=${BENCH_IDLE_CONNS:-15000}
IDLE_ROOMS=${BENCH_IDLE_ROOMS:-1500}
IDLE_MS=${BENCH_IDLE_MS:-15000}
HIBERNATE_MS=${BENCH_HIBERNATE_MS:-1000}
F1_SUBSCRIBERS=${BENCH_F1_SUBSCRIBERS:-1000}
F1_WINDOW=${BENCH_F1_WINDOW:-16}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
FM_ROOMS=${BENCH_FM_ROOMS:-1000}
FM_SUBSCRIBERS=${BENCH_FM_SUBSCRIBERS:-10}
FM_RATES=${BENCH_FM_RATES:-1 10}
WAKE_ROOMS=${BENCH_WAKE_ROOMS:-200}
WAKE_ROUNDS=${BENCH_WAKE_ROUNDS:-3}
SIZE=${BENCH_SIZE:-64}
BENCH=$BENCH_BINDIR/torpor-bench
MAX_S=900

[ -x "$BENCH" ] || { echo "run-peers.sh: could not find \"$BENCH\"" >&2; exit 1; }
if [ -n "${BENCH_SANITIZED:-}" ] && [ "${BENCH_ALLOW_SANITIZED:-0}" != 1 ]; then
    echo "run-peers.sh: could not run: this build has sanitizers ($BENCH_SANITIZED), which would make torpord and the load generator several times slower; build without them (./configure with no options) or set BENCH_ALLOW_SANITIZED=1 to try the script out" >&2
    exit 1
fi
if [ $((IDLE_CONNS % IDLE_ROOMS)) -ne 0 ] || [ $((IDLE_CONNS / IDLE_ROOMS)) -lt 2 ]; then
    echo "run-peers.sh: could not split $IDLE_CONNS connections into $IDLE_ROOMS rooms of 2 or more" >&2
    exit 1
fi
for sys in $SYSTEMS; do
    case $sys in
    torpor | floor | floor-batched) ;;
    workerd | ws | socketio)
        [ -d "$PEERS_DIR/node_modules" ] || {
            echo "run-peers.sh: could not find $PEERS_DIR/node_modules: run bench/peers/install.sh first" >&2
            exit 1
        }
        ;;
    *) echo "run-peers.sh: unknown system \"$sys\"" >&2; exit 1 ;;
    esac
done

# Every server and client process inherits this limit: 20,000 open files
# per process unless BENCH_FILES says otherwise.  Only root may raise the
# hard limit; anyone may lower theirs.
FILES=${BENCH_FILES:-20000}
HARD=$(ulimit -Hn)
if [ "$(id -u)" != 0 ] && [ "$HARD" != unlimited ] && [ "$FILES" -gt "$HARD" ]; then
    echo "run-peers.sh: could not allow $FILES open files: the hard limit is $HARD; running with $HARD" >&2
    FILES=$HARD
fi
ulimit -n "$FILES"

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-peers.XXXXXX")
. "$PEERS_DIR/servers.sh"
cleanup() {
    stop_servers 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RAW=$RESULTS/raw
mkdir -p "$RAW"
rm -f "$RAW"/*.txt "$RAW"/*.err

# bench_args SCENARIO: the sizes of one scenario, as torpor-bench options.
bench_args() {
    local rate
    case $1 in
    idle)
        echo "--rooms $IDLE_ROOMS --room-size $((IDLE_CONNS / IDLE_ROOMS)) --idle-ms $IDLE_MS"
        ;;
    fanout-one)
        echo "--room-size $((F1_SUBSCRIBERS + 1)) --window $F1_WINDOW --seconds $SECONDS_PER_RUN"
        ;;
    fanout-many)
        echo -n "--rooms $FM_ROOMS --room-size $((FM_SUBSCRIBERS + 1)) --seconds $SECONDS_PER_RUN"
        for rate in $FM_RATES; do
            echo -n " --rate $rate"
        done
        echo
        ;;
    wake)
        echo "--rooms $WAKE_ROOMS --room-size 2 --rounds $WAKE_ROUNDS --idle-ms $IDLE_MS"
        ;;
    esac
}

# run_one SYSTEM SCENARIO: a fresh server, one bench run, the server
# stopped; the bench's lines go to raw/SYSTEM.SCENARIO.txt with one more,
# "post ...", of what the server itself counted.
run_one() {
    local sys=$1 scen=$2 dir out err rc=0 post
    dir=$TMP/$sys-$scen
    out=$RAW/$sys.$scen.txt
    err=$RAW/$sys.$scen.err
    mkdir -p "$dir"
    echo "run-peers.sh: $sys $scen" >&2
    if ! "start_${sys//-/_}" "$dir" 2>"$err"; then
        echo "post system=$sys scenario=$scen rc=start" >"$out"
        sed -i 's/^/could not start: /' "$err"
        stop_servers
        return
    fi
    local aux=()
    [ -z "$AUX_PID" ] || aux=(--aux-pid "$AUX_PID")
    # shellcheck disable=SC2046
    timeout $((MAX_S + 30)) "$BENCH" --port "$PORT" --proto "$PROTO" \
        --scenario "$scen" --procs "$PROCS" --size "$SIZE" \
        --tag "$sys" --server-pid "$SERVER_PID" "${aux[@]}" \
        --max-seconds "$MAX_S" $(bench_args "$scen") >"$out" 2>"$err" || rc=$?
    post="post system=$sys scenario=$scen rc=$rc"
    if ! running "$SERVER_PID"; then
        # The server's own last words come first in the reasons.
        { echo "the server exited during the run: $(grep -v '^[[:space:]]*$' \
            "$SERVER_LOG" | tail -n 1 | cut -c1-200)"; cat "$err"; } >"$err.new"
        mv "$err.new" "$err"
        post="$post server_exited=1"
    elif [ "$sys" = workerd ]; then
        post="$post constructed=$(workerd_constructed "$PORT")"
    fi
    stop_servers 2>>"$err"
    if [ "$sys" = torpor ]; then
        # "stopped: N wakeups, M hibernations, ..." at NOTICE, on exit.
        post="$post $(grep -o 'stopped: [0-9]* wakeups, [0-9]* hibernations' \
            "$dir/torpord.log" | tail -n 1 \
            | awk '{ print "wakeups=" $2 " hibernations=" $4 }')"
    fi
    echo "$post" >>"$out"
    rm -rf "$dir"
}

START=$(date +%s)
{
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cores=$(nproc) kernel=$(uname -r)"
    echo "load_start=$(cut -d' ' -f1 /proc/loadavg)"
    echo "sizes procs=$PROCS idle_conns=$IDLE_CONNS idle_rooms=$IDLE_ROOMS idle_ms=$IDLE_MS hibernate_ms=$HIBERNATE_MS f1_subscribers=$F1_SUBSCRIBERS f1_window=$F1_WINDOW seconds=$SECONDS_PER_RUN fm_rooms=$FM_ROOMS fm_subscribers=$FM_SUBSCRIBERS fm_rates=${FM_RATES// /,} wake_rooms=$WAKE_ROOMS wake_rounds=$WAKE_ROUNDS size=$SIZE files=$(ulimit -n)"
    echo "sanitized=${BENCH_SANITIZED:+yes}"
    echo "node=$(node --version 2>/dev/null || echo none)"
    echo "workerd=$("$PEERS_DIR/node_modules/workerd/bin/workerd" --version 2>/dev/null | sed 's/^workerd //' || echo none)"
    echo "redis=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
} >"$RAW/machine.txt"

for sys in $SYSTEMS; do
    for scen in $SCENARIOS; do
        if [ "${sys%-batched}" = floor ] && { [ "$scen" = idle ] || [ "$scen" = wake ]; }; then
            continue
        fi
        run_one "$sys" "$scen"
    done
done

{
    echo "load_end=$(cut -d' ' -f1 /proc/loadavg)"
    echo "elapsed_s=$(($(date +%s) - START))"
} >>"$RAW/machine.txt"
bash "$SRC_DIR/bench/report-peers.sh" "$RAW" "$RESULTS"
echo "run-peers.sh: wrote $RESULTS/peers.md in $(($(date +%s) - START)) s" >&2
