# Starting and stopping the systems that bench/run-peers.sh compares;
# sourced, not run.  Every server listens on 127.0.0.1 only, on a port of
# its own, and runs in a folder of its own (its working directory).
#
# start_SYSTEM DIR starts one and sets SERVER_PID, PORT, PROTO (ws or sio),
# SERVER_LOG (its stdout and stderr) and AUX_PID (the pid of a helper
# reported apart, Redis, or empty); on failure it returns 1 with the
# reason on stderr.  stop_servers stops what
# was started, by pid.  The caller sets TORPORD, TORPOR_PLUGIN_PATH,
# BENCH_BINDIR, PEERS_DIR and HIBERNATE_MS.

SERVER_PID=
SERVER_LOG=
AUX_PID=
PORT=
PROTO=

# free_port prints a TCP port of 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# await_port FILE SED PID: prints the port that the sed expression finds
# in FILE, waiting up to 20 s; fails once PID has exited or time is up.
await_port() {
    local file=$1 expr=$2 pid=$3 i port
    for i in $(seq 200); do
        port=$(sed -n "$expr" "$file" 2>/dev/null | head -n 1)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "exited before listening: $(tail -n 1 "$file" 2>/dev/null)" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "did not listen within 20 s" >&2
    return 1
}

# running PID: whether PID runs, a zombie (exited, not yet reaped) not.
running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# stop_pid PID: SIGTERM, up to 20 s for the exit, then SIGKILL.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "pid $pid did not exit within 20 s of SIGTERM: killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_servers() {
    stop_pid "$SERVER_PID"
    stop_pid "$AUX_PID"
    SERVER_PID=
    AUX_PID=
}

# torpord with the relay class, whose rooms hibernate after HIBERNATE_MS.
start_torpor() {
    local dir=$1
    cat >"$dir/torpor.conf" <<CONF
[core]
log_level = notice
plugins = websocket, relay

[transport.websocket]
listen = 127.0.0.1:0

[class.relay]
hibernate_after_ms = $HIBERNATE_MS
CONF
    SERVER_LOG=$dir/torpord.log
    (cd "$dir" && exec "$TORPORD" --config torpor.conf \
        --plugin-path "$TORPOR_PLUGIN_PATH" >torpord.log 2>&1) &
    SERVER_PID=$!
    PROTO=ws
    PORT=$(await_port "$dir/torpord.log" \
        's/.*listening on "127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$SERVER_PID")
}

# workerd with the Room Durable Object of bench/peers/workerd; its
# storage is in memory.
start_workerd() {
    local dir=$1 port
    port=$(free_port) || return 1
    SERVER_LOG=$dir/workerd.log
    (cd "$dir" && exec "$PEERS_DIR/node_modules/workerd/bin/workerd" serve \
        "$PEERS_DIR/workerd/relay.capnp" \
        --socket-addr "http=127.0.0.1:$port" >workerd.log 2>&1) &
    SERVER_PID=$!
    PROTO=ws
    await_port "$dir/workerd.log" "s/^Listening on http:\/\/127\.0\.0\.1:\($port\).*/\1/p" \
        "$SERVER_PID" >/dev/null || return 1
    PORT=$port
}

start_ws() {
    local dir=$1
    SERVER_LOG=$dir/ws.log
    (cd "$dir" && exec node "$PEERS_DIR/ws-relay.mjs" 0 >ws.log 2>&1) &
    SERVER_PID=$!
    PROTO=ws
    PORT=$(await_port "$dir/ws.log" 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
        "$SERVER_PID")
}

# Socket.IO with the Redis adapter, and a Redis of its own that keeps
# nothing on disk.
start_socketio() {
    local dir=$1 redis_port
    redis_port=$(free_port) || return 1
    (cd "$dir" && exec redis-server --port "$redis_port" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize no >redis.log 2>&1) &
    AUX_PID=$!
    await_port "$dir/redis.log" "s/.*Ready to accept connections.*/$redis_port/p" \
        "$AUX_PID" >/dev/null || return 1
    SERVER_LOG=$dir/socketio.log
    (cd "$dir" && exec node "$PEERS_DIR/socketio-relay.mjs" 0 "$redis_port" \
        >socketio.log 2>&1) &
    SERVER_PID=$!
    PROTO=sio
    PORT=$(await_port "$dir/socketio.log" \
        's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$SERVER_PID")
}

# The kernel's floor: bench/floor, a relay that only makes system calls,
# one write per frame and recipient as torpord makes them.
start_floor() {
    local dir=$1
    SERVER_LOG=$dir/floor.log
    (cd "$dir" && exec "$BENCH_BINDIR/floor" --port 0 --per-frame \
        --max-seconds 3600 >floor.log 2>&1) &
    SERVER_PID=$!
    PROTO=ws
    PORT=$(await_port "$dir/floor.log" \
        's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$SERVER_PID")
}

# The same floor with one write per recipient for all a read brought:
# what batching could save at best.
start_floor_batched() {
    local dir=$1
    SERVER_LOG=$dir/floor.log
    (cd "$dir" && exec "$BENCH_BINDIR/floor" --port 0 --max-seconds 3600 \
        >floor.log 2>&1) &
    SERVER_PID=$!
    PROTO=ws
    PORT=$(await_port "$dir/floor.log" \
        's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$SERVER_PID")
}

# workerd_constructed PORT: how many Room objects workerd has constructed.
workerd_constructed() {
    node -e 'fetch(process.argv[1]).then((r) => r.json()).then((j) => console.log(j.constructed), () => console.log("?"))' \
        "http://127.0.0.1:$1/stats"
}
