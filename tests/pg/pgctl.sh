#!/bin/bash
# pgctl.sh: a throwaway PostgreSQL cluster for tests.
#
#   pgctl.sh start DIR [--tcp]   make and start a cluster in DIR; print its
#                                conninfo on stdout
#   pgctl.sh down DIR            stop the server, keep its data
#   pgctl.sh up DIR              start a stopped server again, same port
#   pgctl.sh stop DIR            stop the server and remove DIR
#
# The server listens on a unix socket in DIR only, or with --tcp also on
# 127.0.0.1 at a free port (the printed conninfo then uses TCP).  The
# database "torpor" belongs to the role "torpor", which may create
# databases; local connections are trusted, which is fine for a cluster
# that lives as long as one test run.  fsync stays on: crash tests need
# the server to be as durable as a real one.
#
# PostgreSQL refuses to run as root, so under root (as in CI) the cluster
# belongs to the system user torpor-test, made on first use.  Every wait is
# bounded.  PG_BINDIR overrides where initdb and pg_ctl are found.
set -eu

PGCTL_USER=torpor-test
WAIT_S=30

die() {
    echo "pgctl.sh: $*" >&2
    exit 1
}

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
        return
    fi
    d=$(command -v pg_ctl 2>/dev/null) || die "could not find pg_ctl: set PG_BINDIR"
    dirname "$d"
}

# as_owner runs a command as the cluster's owner, from a directory it may
# enter, so that initdb and pg_ctl do not trip over root's working dir.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u "$PGCTL_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$PGCTL_USER" >/dev/null 2>&1 && return 0
    # Two test binaries may race to create it: the loser finds it made.
    useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PGCTL_USER" 2>/dev/null \
        || id "$PGCTL_USER" >/dev/null 2>&1 \
        || die "could not create user \"$PGCTL_USER\""
}

# free_port picks a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    local p tries=0
    while [ $tries -lt 100 ]; do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
        tries=$((tries + 1))
    done
    die "could not find a free port"
}

conninfo() {
    local dir=$1 port
    port=$(cat "$dir/port")
    if [ -f "$dir/tcp" ]; then
        echo "host=127.0.0.1 port=$port dbname=torpor user=torpor"
    else
        echo "host=$dir port=$port dbname=torpor user=torpor"
    fi
}

server_start() {
    local dir=$1
    as_owner "$BINDIR/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" \
        -w -t "$WAIT_S" >/dev/null \
        || { tail -n 20 "$dir/postgres.log" >&2 || true; die "could not start PostgreSQL in \"$dir\""; }
}

cmd_start() {
    local dir=$1 tcp=$2 port listen
    [ ! -e "$dir/data" ] || die "\"$dir/data\" exists already"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The socket path must fit sun_path (107 bytes) with ".s.PGSQL.NNNNN".
    [ ${#dir} -le 90 ] || die "\"$dir\" is too long for a socket path"
    ensure_user
    if [ "$(id -u)" = 0 ]; then
        chown "$PGCTL_USER" "$dir"
    fi
    chmod 755 "$dir"
    as_owner test -w "$dir" \
        || die "\"$dir\" is out of reach of user \"$(as_owner id -un)\": is a parent directory closed?"

    if [ "$tcp" = yes ]; then
        port=$(free_port)
        listen=127.0.0.1
        touch "$dir/tcp"
    else
        port=5432
        listen=
    fi
    echo "$port" >"$dir/port"

    # --no-sync only skips flushing the fresh catalog at initdb; the
    # server itself runs with fsync on.
    as_owner "$BINDIR/initdb" -D "$dir/data" -U postgres -A trust \
        -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "could not initdb \"$dir/data\""; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$dir'
shared_buffers = 16MB
max_connections = 100
EOF
    server_start "$dir"
    PGCONNECT_TIMEOUT=10 "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$dir" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE torpor LOGIN CREATEDB" \
        -c "CREATE DATABASE torpor OWNER torpor" >/dev/null \
        || die "could not create the torpor database"
    conninfo "$dir"
}

cmd_down() {
    local dir=$1
    [ -d "$dir/data" ] || die "no cluster in \"$dir\""
    as_owner "$BINDIR/pg_ctl" stop -D "$dir/data" -m fast -w -t "$WAIT_S" \
        >/dev/null || die "could not stop PostgreSQL in \"$dir\""
}

cmd_up() {
    local dir=$1
    [ -d "$dir/data" ] || die "no cluster in \"$dir\""
    server_start "$dir"
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$BINDIR/pg_ctl" stop -D "$dir/data" -m fast -w \
            -t "$WAIT_S" >/dev/null 2>&1 \
            || as_owner "$BINDIR/pg_ctl" stop -D "$dir/data" -m immediate \
                -w -t "$WAIT_S" >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

[ $# -ge 2 ] || die "usage: pgctl.sh start|down|up|stop DIR [--tcp]"
BINDIR=$(find_bindir)
case "$1" in
start)
    tcp=no
    if [ "${3:-}" = --tcp ]; then
        tcp=yes
    fi
    cmd_start "$2" "$tcp"
    ;;
down) cmd_down "$2" ;;
up) cmd_up "$2" ;;
stop) cmd_stop "$2" ;;
*) die "unknown command \"$1\"" ;;
esac
