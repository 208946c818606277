#!/bin/bash
# Keeps the comparison benchmark from rotting: runs bench/torpor-bench
# against a real torpord (relay rooms that hibernate) in every scenario at
# tiny sizes, and against bench/floor, and checks that each run printed
# its figures and lost nothing.  Then the bench's own failure paths: a
# server that drops messages must be reported as losing them, nothing
# listening must be reported as connections refused, and a bad argument
# as a usage error.  Asserts no speed: the figures only have to be there.
# Prints TAP.
#
# Environment (set by `make check`): TOP_BUILDDIR, TORPORD,
# TORPOR_PLUGIN_PATH.
set -u

here=$(cd "$(dirname "$0")" && pwd)
plan=13
echo "1..$plan"

# shellcheck source=tests/out_of_tree/tap.sh
. "$here/../out_of_tree/tap.sh"
require_env TOP_BUILDDIR TORPORD TORPOR_PLUGIN_PATH
bench=$TOP_BUILDDIR/bench/torpor-bench
floor=$TOP_BUILDDIR/bench/floor

tmp=$(mktemp -d "${TMPDIR:-/tmp}/torpor-bench-smoke.XXXXXX")
pids=
cleanup() {
    local pid
    for pid in $pids; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# await_port FILE SED PID: the port the sed expression finds in FILE,
# within 20 s, while PID runs.
await_port() {
    local i port
    for i in $(seq 200); do
        port=$(sed -n "$2" "$1" 2>/dev/null | head -n 1)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop PID: SIGTERM, then up to 20 s for the exit.
stop() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# value KEY FILE: a field of the bench's first result line holding KEY.
value() {
    grep -o "\(^\| \)$1=[^ ]*" "$2" | head -n 1 | sed 's/.*=//'
}

# check_run NAME FILE RC KEY...: the run exited 0, said ok=1, lost
# nothing, and printed each KEY as a number.  A memory delta may be
# negative: Pss falls when another process maps the same pages.
check_run() {
    local name=$1 out=$2 rc=$3 key bad=
    shift 3
    [ "$rc" -eq 0 ] || bad="exit status $rc"
    grep -q ' ok=1$' "$out" || bad="$bad; no ok=1"
    if grep -q ' lost=' "$out" && grep ' lost=' "$out" | grep -qv ' lost=0 '; then
        bad="$bad; messages lost"
    fi
    for key in "$@"; do
        [[ "$(value "$key" "$out")" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || bad="$bad; no figure $key"
    done
    if [ -z "$bad" ]; then
        ok "$name"
    else
        not_ok "$name" "${bad#; }" "$(cat "$out")" "$(tail -n 5 "$out.err")"
    fi
}

cat >"$tmp/torpor.conf" <<EOF
[core]
log_level = notice
plugins = websocket, relay

[transport.websocket]
listen = 127.0.0.1:0

[class.relay]
hibernate_after_ms = 200
EOF
(cd "$tmp" && exec "$TORPORD" --config torpor.conf \
    --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
tpid=$!
pids="$pids $tpid"
if port=$(await_port "$tmp/torpord.log" \
    's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$tpid"); then
    ok "torpord starts with relay rooms that hibernate after 200 ms"
else
    not_ok "torpord starts with relay rooms that hibernate after 200 ms" \
        "$(tail -n 5 "$tmp/torpord.log")"
    bail_rest "torpord did not start"
fi
common=(--port "$port" --procs 2 --server-pid "$tpid" --max-seconds 60)

# Every scenario against torpord.
out=$tmp/idle
"$bench" "${common[@]}" --scenario idle --rooms 4 --room-size 5 \
    --idle-ms 800 >"$out" 2>"$out.err"
check_run "idle: 20 connections open, held, touched, memory read" "$out" $? \
    connect_per_s idle_rss_per_conn_b idle_pss_per_conn_b touch_p99_us lg_cpu_s

out=$tmp/fanout-one
"$bench" "${common[@]}" --scenario fanout-one --room-size 21 --window 8 \
    --seconds 1 >"$out" 2>"$out.err"
check_run "fanout-one: 20 subscribers get every message, in order" "$out" $? \
    frames_per_s lat_p50_us lat_p99_us lat_p999_us cpu_s_per_m lg_cpu_s_per_m

out=$tmp/fanout-many
"$bench" "${common[@]}" --scenario fanout-many --rooms 6 --room-size 4 \
    --seconds 1 --rate 5 --rate 20 >"$out" 2>"$out.err"
check_run "fanout-many: 6 rooms at 5 and 20 messages/s, nothing lost" "$out" $? \
    delivered lat_p99_us cpu_s_per_m
if [ "$(grep -c ' rate=' "$out")" -ne 2 ]; then
    not_ok "fanout-many prints one line per rate" "$(cat "$out")"
else
    ok "fanout-many prints one line per rate"
fi

# The idle time outlasts the bench's own timeouts, which must not end
# connections that are open and quiet.
out=$tmp/wake
"$bench" "${common[@]}" --scenario wake --rooms 4 --rounds 2 \
    --idle-ms 800 --timeout-ms 500 >"$out" 2>"$out.err"
check_run "wake: one sample per room and round after the rooms hibernated" \
    "$out" $? wake_p50_us wake_p99_us awake_p50_us awake_p99_us
if [ "$(value wake_n "$out")" != 8 ]; then
    not_ok "wake: 2 rounds of 4 rooms give 8 samples" "$(cat "$out")"
else
    ok "wake: 2 rounds of 4 rooms give 8 samples"
fi

# What torpord counted shows the idle rooms and the wake rooms did sleep.
stop "$tpid"
hib=$(sed -n 's/.*stopped: [0-9]* wakeups, \([0-9]*\) hibernations.*/\1/p' \
    "$tmp/torpord.log" | tail -n 1)
if [ -n "$hib" ] && [ "$hib" -ge 12 ]; then
    ok "torpord hibernated the 4 idle rooms once and the 4 wake rooms twice ($hib hibernations)"
else
    not_ok "torpord hibernated the 4 idle rooms once and the 4 wake rooms twice" \
        "hibernations: ${hib:-none}" "$(tail -n 3 "$tmp/torpord.log")"
fi

# The floor, writing frame by frame and a read at a time.
for mode in --per-frame --batched; do
    flag=$mode
    [ "$mode" = --batched ] && flag=
    (exec "$floor" --port 0 $flag --max-seconds 60 >"$tmp/floor.log" 2>&1) &
    fpid=$!
    pids="$pids $fpid"
    out=$tmp/floor$mode
    if fport=$(await_port "$tmp/floor.log" \
        's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$fpid"); then
        "$bench" --port "$fport" --procs 2 --server-pid "$fpid" --max-seconds 60 \
            --scenario fanout-one --room-size 11 --seconds 1 >"$out" 2>"$out.err"
        check_run "floor $mode: fanout-one through the floor, nothing lost" "$out" $? \
            frames_per_s cpu_s_per_m
    else
        not_ok "floor $mode: fanout-one through the floor, nothing lost" \
            "$(cat "$tmp/floor.log")"
    fi
    stop "$fpid"
done

# A server that drops every 50th message: the bench must say so.
(exec "$floor" --port 0 --drop-every 50 --max-seconds 60 >"$tmp/floor.log" 2>&1) &
fpid=$!
pids="$pids $fpid"
out=$tmp/lossy
if fport=$(await_port "$tmp/floor.log" \
    's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$fpid"); then
    "$bench" --port "$fport" --procs 2 --max-seconds 60 --scenario fanout-one \
        --room-size 5 --seconds 1 --drain-ms 1000 >"$out" 2>"$out.err"
    rc=$?
    lost=$(value lost "$out")
    gaps=$(value gaps "$out")
    if [ "$rc" -eq 1 ] && grep -q ' ok=0$' "$out" && [ "${lost:-0}" -gt 0 ] \
        && [ "${gaps:-0}" -gt 0 ]; then
        ok "messages a server drops are counted as lost (lost=$lost, gaps=$gaps)"
    else
        not_ok "messages a server drops are counted as lost" "exit $rc" \
            "$(cat "$out")" "$(cat "$out.err")"
    fi
else
    not_ok "messages a server drops are counted as lost" "$(cat "$tmp/floor.log")"
fi
stop "$fpid"

# Nothing listening: refused connections, said plainly, exit 1.
out=$tmp/refused
"$bench" --port "$port" --procs 1 --scenario fanout-one --room-size 3 \
    --seconds 1 --max-seconds 30 >"$out" 2>"$out.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q ' opened=0 failed=3 ' "$out" \
    && grep -q 'could not open connection .*Connection refused' "$out.err"; then
    ok "connections refused are reported with their reason"
else
    not_ok "connections refused are reported with their reason" "exit $rc" \
        "$(cat "$out")" "$(cat "$out.err")"
fi

# A bad argument: usage, exit 2.
"$bench" --port 1 --scenario fanout-one --window 0 >"$tmp/usage" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'could not read "--window"' "$tmp/usage"; then
    ok "a bad argument is refused with a usage error"
else
    not_ok "a bad argument is refused with a usage error" "exit $rc" \
        "$(cat "$tmp/usage")"
fi

[ "$failed" -eq 0 ]
