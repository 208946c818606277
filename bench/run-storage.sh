#!/bin/bash
# run-storage.sh: the storage benchmark matrix, printed as Markdown.
#
# Builds nothing: `make bench-storage` builds the programs and calls this
# with the environment below.
#
#   BENCH_BINDIR        where torpor-storage-bench and fsync-floor are
#   TORPOR_PLUGIN_PATH  where file.so and postgres.so are
#   BENCH_PGCTL         tests/pg/pgctl.sh
#   BENCH_POSTGRES      yes (default) or no: run the postgres rows
#   BENCH_SECONDS       length of each run, 5 by default
#   BENCH_TMPDIR        parent of the scratch folder, /tmp by default
#
# Rows: file with fsync = always, interval (10 ms) and never, and postgres
# on its defaults (synchronous_commit on, pool_size 2); each with 1 object
# and a window of 1 (one client waiting for each commit), and 1,000
# objects with a window of 256; each with 100-byte and 10-KiB values.
# Then the raw fdatasync rate of the same filesystem for both sizes, and
# the ratio of file/always at 1,000 objects to it.
#
# Every run is bounded by its own clock and, should it hang, by timeout.
# The scratch folder (the file store's data, the PostgreSQL cluster) is
# removed at exit, and the cluster stopped, whatever happens.
set -eu

: "${BENCH_BINDIR:?set BENCH_BINDIR}"
: "${TORPOR_PLUGIN_PATH:?set TORPOR_PLUGIN_PATH}"
: "${BENCH_PGCTL:?set BENCH_PGCTL}"
export TORPOR_PLUGIN_PATH
BENCH_POSTGRES=${BENCH_POSTGRES:-yes}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
# The program's own watchdog ends a hung run 30 s after its end; this is
# a second bound, for a hang before the run starts.
RUN_LIMIT_S=$((SECONDS_PER_RUN + 90))

BENCH=$BENCH_BINDIR/torpor-storage-bench
FLOOR=$BENCH_BINDIR/fsync-floor
[ -x "$BENCH" ] && [ -x "$FLOOR" ] \
    || { echo "run-storage.sh: could not find the programs in \"$BENCH_BINDIR\"" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/torpor-bench.XXXXXX")
# Under root, pgctl.sh runs the server as another user, who must be able
# to reach the cluster's folder.
chmod 755 "$TMP"
PG_DIR=$TMP/pg
PG_STARTED=no
FAILED=0

cleanup() {
    if [ "$PG_STARTED" = yes ]; then
        bash "$BENCH_PGCTL" stop "$PG_DIR" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/lib.sh"

# write_config FILE BACKEND: the [core] and [storage] part of a config.
write_config() {
    cat >"$1" <<EOF
[core]
plugins =
log_level = warn
[storage]
backend = $2
EOF
}

# bench_row LABEL POLICY OBJECTS VALUE_BYTES CONFIG: one run, one row.
bench_row() {
    local backend=$1 policy=$2 objects=$3 bytes=$4 config=$5 window out
    window=1
    if [ "$objects" -gt 1 ]; then
        window=256
    fi
    if out=$(timeout "$RUN_LIMIT_S" "$BENCH" --config "$config" \
        --objects "$objects" --value-bytes "$bytes" \
        --seconds "$SECONDS_PER_RUN" --window "$window" 2>"$TMP/err"); then
        RESULT=$out
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$backend" "$policy" "$objects" "$window" "$(size_name "$bytes")" \
            "$(field commits "$out")" "$(field commits_per_s "$out")" \
            "$(field p50_us "$out")" "$(field p99_us "$out")" \
            "$(field p999_us "$out")" "$(field cpu_s "$out")"
    else
        RESULT=
        FAILED=1
        printf '| %s | %s | %s | %s | %s | failed: %s |||||\n' \
            "$backend" "$policy" "$objects" "$window" "$(size_name "$bytes")" \
            "$(tail -n 1 "$TMP/err" | tr '|' '/')"
    fi
}

size_name() {
    case $1 in
    10240) echo "10 KiB" ;;
    *) echo "$1 B" ;;
    esac
}

SIZES="100 10240"
OBJECTS="1 1000"
declare -A ALWAYS_RATE FLOOR_RATE

echo "Machine: $(nproc) cores, kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Each run: ${SECONDS_PER_RUN} s, at most 5,000,000 commits; one put of one key per commit."
echo
echo "| backend | policy | objects | window | value | commits | commits/s | p50 µs | p99 µs | p99.9 µs | CPU s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

for policy in always interval never; do
    for objects in $OBJECTS; do
        for bytes in $SIZES; do
            run=$TMP/file-$policy-$objects-$bytes
            mkdir -p "$run"
            write_config "$run/torpor.conf" file
            cat >>"$run/torpor.conf" <<EOF
[storage.file]
dir = $run/data
fsync = $policy
fsync_interval_ms = 10
EOF
            bench_row file "$policy" "$objects" "$bytes" "$run/torpor.conf"
            if [ "$policy" = always ] && [ "$objects" = 1000 ]; then
                ALWAYS_RATE[$bytes]=$(field commits_per_s "$RESULT")
            fi
            rm -rf "$run"
        done
    done
done

if [ "$BENCH_POSTGRES" = yes ]; then
    # Defaults: pool_size 2, and the server's synchronous_commit = on.
    if conninfo=$(bash "$BENCH_PGCTL" start "$PG_DIR" 2>"$TMP/pg-err"); then
        PG_STARTED=yes
        pg_version=$(grep -m1 -o 'PostgreSQL [0-9.]*' "$PG_DIR/postgres.log" 2>/dev/null || true)
        for objects in $OBJECTS; do
            for bytes in $SIZES; do
                config=$TMP/pg.conf
                write_config "$config" postgres
                printf '[storage.postgres]\nconninfo = %s\n' "$conninfo" >>"$config"
                bench_row postgres "default" "$objects" "$bytes" "$config"
            done
        done
    else
        FAILED=1
        echo "| postgres | default | | | | failed to start: $(tail -n 1 "$TMP/pg-err") |||||"
    fi
fi

echo
echo "file: fsync_interval_ms = 10 for interval, other settings default.  postgres: plugin and server defaults (pool_size 2, synchronous_commit on, fsync on)."
echo
# df -T names ext4 as such; stat -f only knows its ext2/ext3 magic.
fs_dev=$(df -PT "$TMP" | awk 'NR == 2 { print $1 }')
fs_type=$(df -PT "$TMP" | awk 'NR == 2 { print $2 }')
echo "fsync floor: pwrite + fdatasync of one record at a time, in a new file under $TMP ($fs_type on $fs_dev, the filesystem of the file store's data dir)."
echo
echo "| record | appends | appends/s | p50 µs | p99 µs |"
echo "|---:|---:|---:|---:|---:|"
for bytes in $SIZES; do
    if out=$(timeout "$RUN_LIMIT_S" "$FLOOR" --dir "$TMP" \
        --record-bytes "$bytes" --seconds "$SECONDS_PER_RUN" 2>"$TMP/err"); then
        FLOOR_RATE[$bytes]=$(field appends_per_s "$out")
        printf '| %s | %s | %s | %s | %s |\n' "$(size_name "$bytes")" \
            "$(field appends "$out")" "${FLOOR_RATE[$bytes]}" \
            "$(field p50_us "$out")" "$(field p99_us "$out")"
    else
        FAILED=1
        printf '| %s | failed: %s ||||\n' "$(size_name "$bytes")" \
            "$(tail -n 1 "$TMP/err" | tr '|' '/')"
    fi
done

echo
for bytes in $SIZES; do
    a=${ALWAYS_RATE[$bytes]:-?}
    f=${FLOOR_RATE[$bytes]:-?}
    if [[ $a =~ ^[0-9]+$ ]] && [[ $f =~ ^[0-9]+$ ]] && [ "$f" -gt 0 ]; then
        ratio=$(awk -v a="$a" -v f="$f" 'BEGIN { printf "%.1f", a / f }')
    else
        ratio="?"
    fi
    echo "file/always, 1,000 objects, $(size_name "$bytes"): $a commits/s against $f synced appends/s: ratio $ratio"
done
if [ -n "${pg_version:-}" ]; then
    echo
    echo "postgres: $pg_version, started by pgctl.sh on a unix socket in $PG_DIR (same filesystem)."
fi
exit "$FAILED"
