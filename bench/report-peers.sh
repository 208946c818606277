#!/bin/bash
# report-peers.sh RAW RESULTS: the Markdown report (RESULTS/peers.md) and
# its plots (RESULTS/peers-*.png, with Debian's gnuplot) of the raw result
# lines that bench/run-peers.sh left in RAW.  Run again by hand, it
# rebuilds the report from the same lines.
#
# A figure that a run did not produce shows as "–"; a run that failed
# shows "failed:" and the first reason the bench gave.  Ratios are torpor
# over the peer, from the same run.
set -eu

RAW=${1:?usage: report-peers.sh RAW RESULTS}
RESULTS=${2:?usage: report-peers.sh RAW RESULTS}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

SYSTEMS="torpor workerd ws socketio floor floor-batched"
PEERS="workerd ws socketio"
declare -A LABEL=([torpor]="torpor (torpord, relay)" [workerd]="workerd (Durable Object)"
    [ws]="Node ws relay" [socketio]="Socket.IO + Redis adapter" [floor]="floor: a write per frame"
    [floor-batched]="floor: a write per read")
MACHINE=$(cat "$RAW/machine.txt" 2>/dev/null || true)

# m KEY: a field of the machine description.
m() {
    local v
    v=$(echo "$MACHINE" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1)
    echo "${v:-?}"
}

# scen_line SYSTEM SCENARIO [RATE]: the bench's result line of that run.
scen_line() {
    local file=$RAW/$1.$2.txt
    [ -f "$file" ] || return 0
    if [ -n "${3:-}" ]; then
        grep "^scenario=.* rate=$3 " "$file" | head -n 1 || true
    else
        grep '^scenario=' "$file" | head -n 1 || true
    fi
}

post_line() {
    grep '^post ' "$RAW/$1.$2.txt" 2>/dev/null | head -n 1 || true
}

# v KEY LINE: a field, "–" when absent.
v() {
    local x
    x=$(field "$1" "$2")
    [ "$x" = "?" ] && x="–"
    echo "$x"
}

# outcome SYSTEM SCENARIO LINE: "ok", "not run" or "failed: REASON".
outcome() {
    local reason
    if [ ! -f "$RAW/$1.$2.txt" ]; then
        echo "not run"
    elif [ "$(field ok "$3")" = 1 ]; then
        echo "ok"
    else
        reason=$(grep -v '^run-peers' "$RAW/$1.$2.err" 2>/dev/null | head -n 1 \
            | sed 's/^torpor-bench: //' | cut -c1-160 | tr '|' '/')
        echo "failed: ${reason:-see $1.$2.err}"
    fi
}

# ratio A B: A / B to two places, "–" unless both are numbers and B > 0.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b
        else printf "–" }'
}

# kib BYTES: bytes as KiB with one decimal.
kib() {
    awk -v b="$1" 'BEGIN { if (b ~ /^-?[0-9.]+$/) printf "%.1f", b / 1024; else printf "–" }'
}

RATES=$(m fm_rates | tr ',' ' ')
[ "$RATES" != "?" ] || RATES="1 10"

report() {
    echo "# torpor against the alternatives: one run"
    echo
    echo "Written by \`make bench\` (bench/run-peers.sh) on $(m date): $(m cores) cores, kernel $(m kernel); load average $(m load_start) at the start and $(m load_end) at the end; the run took $(m elapsed_s) s."
    echo "Node $(m node), workerd $(m workerd), Redis $(m redis); the npm packages as pinned in bench/peers/package-lock.json."
    if [ "$(m sanitized)" = yes ]; then
        echo
        echo "**This run used a build with sanitizers: its figures say nothing about speed or memory.**"
    fi
    echo
    echo "Sizes: $(echo "$MACHINE" | sed -n 's/^sizes //p')."
    echo "Result lines: raw/*.txt; what went wrong: raw/*.err."

    echo
    echo "## Idle connections"
    echo
    echo "Memory is the growth of Rss and Pss (smaps_rollup, the whole server process tree) from before the first connection to the end of the idle time, per connection opened; Redis is counted apart."
    echo
    echo "| system | opened | connect/s | RSS KiB/conn | PSS KiB/conn | Redis RSS KiB/conn | server CPU s while idle | rooms evicted while idle | touch p50 µs | touch p99 µs | result |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
    local sys line post evicted
    for sys in torpor $PEERS; do
        line=$(scen_line "$sys" idle)
        post=$(post_line "$sys" idle)
        case $sys in
        torpor) evicted="$(v hibernations "$post") hibernations, $(v wakeups "$post") wakeups" ;;
        workerd) evicted="$(awk -v c="$(field constructed "$post")" -v r="$(field rooms "$line")" \
            'BEGIN { if (c ~ /^[0-9]+$/ && r ~ /^[0-9]+$/) print c - r " of " r " rebuilt"; else print "–" }')" ;;
        *) evicted="no hibernation" ;;
        esac
        echo "| ${LABEL[$sys]} | $(v opened "$line") of $(v conns "$line") | $(v connect_per_s "$line") | $(kib "$(v idle_rss_per_conn_b "$line")") | $(kib "$(v idle_pss_per_conn_b "$line")") | $(kib "$(v aux_idle_rss_per_conn_b "$line")") | $(v idle_cpu_s "$line") | $evicted | $(v touch_p50_us "$line") | $(v touch_p99_us "$line") | $(outcome "$sys" idle "$line") |"
    done

    echo
    echo "## Fanout to one room"
    echo
    echo "One room, one publisher, a bounded window; latency of every delivery; CPU of the whole server tree (Socket.IO: Node and Redis) per million delivered frames; × floor is that CPU over the CPU of the floor that writes each frame on its own, × batched floor over that of the floor that writes once per recipient all that one read brought, as torpord's corked output does."
    echo
    echo "| system | frames/s | p50 µs | p99 µs | p99.9 µs | server CPU s per M frames | × floor | × batched floor | lost | load generator CPU s per M | result |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    local floor_cpu batched_cpu cpu
    floor_cpu=$(field cpu_s_per_m "$(scen_line floor fanout-one)")
    batched_cpu=$(field cpu_s_per_m "$(scen_line floor-batched fanout-one)")
    for sys in $SYSTEMS; do
        line=$(scen_line "$sys" fanout-one)
        cpu=$(total_cpu "$line")
        echo "| ${LABEL[$sys]} | $(v frames_per_s "$line") | $(v lat_p50_us "$line") | $(v lat_p99_us "$line") | $(v lat_p999_us "$line") | $cpu | $(ratio "$cpu" "$floor_cpu") | $(ratio "$cpu" "$batched_cpu") | $(v lost "$line") | $(v lg_cpu_s_per_m "$line") | $(outcome "$sys" fanout-one "$line") |"
    done

    echo
    echo "## Fanout to many rooms"
    echo
    echo "Every room has one publisher at a fixed rate; latency of every delivery."
    echo
    echo "| system | msgs/s per room | delivered | server CPU s per M frames | × floor | × batched floor | p50 µs | p99 µs | not delivered | load generator CPU s per M | result |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    local rate
    for rate in $RATES; do
        floor_cpu=$(field cpu_s_per_m "$(scen_line floor fanout-many "$rate")")
        batched_cpu=$(field cpu_s_per_m "$(scen_line floor-batched fanout-many "$rate")")
        for sys in $SYSTEMS; do
            line=$(scen_line "$sys" fanout-many "$rate")
            cpu=$(total_cpu "$line")
            echo "| ${LABEL[$sys]} | $rate | $(v delivered "$line") | $cpu | $(ratio "$cpu" "$floor_cpu") | $(ratio "$cpu" "$batched_cpu") | $(v lat_p50_us "$line") | $(v lat_p99_us "$line") | $(v lost "$line") | $(v lg_cpu_s_per_m "$line") | $(outcome "$sys" fanout-many "$line") |"
        done
    done

    echo
    echo "## Wake"
    echo
    echo "Rooms of two, idle before each round; one message timed per room and round after the idle time (wake), and one right after it (awake). Servers without hibernation are measured the same way after the same idle time."
    echo
    echo "| system | samples | rooms evicted | wake p50 µs | wake p99 µs | awake p50 µs | awake p99 µs | result |"
    echo "|---|---:|---|---:|---:|---:|---:|---|"
    for sys in torpor $PEERS; do
        line=$(scen_line "$sys" wake)
        post=$(post_line "$sys" wake)
        case $sys in
        torpor) evicted="$(v hibernations "$post") hibernations" ;;
        workerd) evicted="$(awk -v c="$(field constructed "$post")" -v r="$(field rooms "$line")" \
            'BEGIN { if (c ~ /^[0-9]+$/ && r ~ /^[0-9]+$/) print c - r " rebuilds"; else print "–" }')" ;;
        *) evicted="no hibernation" ;;
        esac
        echo "| ${LABEL[$sys]} | $(v wake_n "$line") | $evicted | $(v wake_p50_us "$line") | $(v wake_p99_us "$line") | $(v awake_p50_us "$line") | $(v awake_p99_us "$line") | $(outcome "$sys" wake "$line") |"
    done

    echo
    echo "## torpor over each peer, same run"
    echo
    echo "Below 1 means torpor needs less (memory, CPU, latency); above 1 means more (rates)."
    echo
    echo "| figure | ÷ workerd | ÷ Node ws | ÷ Socket.IO |"
    echo "|---|---:|---:|---:|"
    ratio_row "idle: RSS per connection" idle idle_rss_per_conn_b
    ratio_row "idle: PSS per connection" idle idle_pss_per_conn_b
    ratio_row "idle: connections opened per second" idle connect_per_s
    ratio_row "fanout-one: frames/s" fanout-one frames_per_s
    ratio_row "fanout-one: p99 latency" fanout-one lat_p99_us
    ratio_row "fanout-one: server CPU per frame" fanout-one cpu
    for rate in $RATES; do
        ratio_row "fanout-many at $rate/s: server CPU per frame" fanout-many cpu "$rate"
        ratio_row "fanout-many at $rate/s: p99 latency" fanout-many lat_p99_us "$rate"
    done
    ratio_row "wake: p50 latency" wake wake_p50_us
    ratio_row "wake: p99 latency" wake wake_p99_us

    echo
    echo "## Plots"
    echo
    echo "![fanout-one throughput](peers-throughput.png)"
    echo
    echo "![fanout-one latency](peers-latency.png)"
    echo
    echo "![server CPU per million frames](peers-cpu.png)"
}

# total_cpu LINE: server CPU s per million frames, Redis included.
total_cpu() {
    awk -v s="$(field cpu_s_per_m "$1")" -v a="$(field aux_cpu_s_per_m "$1")" 'BEGIN {
        if (s !~ /^[0-9.]+$/) { printf "–"; exit }
        if (a ~ /^[0-9.]+$/) s += a
        printf "%.3f", s }'
}

# ratio_row TITLE SCENARIO KEY [RATE]: torpor's figure over each peer's.
ratio_row() {
    local title=$1 scen=$2 key=$3 rate=${4:-} mine row peer
    if [ "$key" = cpu ]; then
        mine=$(total_cpu "$(scen_line torpor "$scen" "$rate")")
    else
        mine=$(field "$key" "$(scen_line torpor "$scen" "$rate")")
    fi
    row="| $title"
    for peer in $PEERS; do
        local theirs
        if [ "$key" = cpu ]; then
            theirs=$(total_cpu "$(scen_line "$peer" "$scen" "$rate")")
        else
            theirs=$(field "$key" "$(scen_line "$peer" "$scen" "$rate")")
        fi
        row="$row | $(ratio "$mine" "$theirs")"
    done
    echo "$row |"
}

# plot_data: gnuplot's inputs, one row per system, "?" where missing.
plot_data() {
    local sys line name cpu rate
    : >"$TMPD/throughput.dat"
    : >"$TMPD/latency.dat"
    : >"$TMPD/cpu.dat"
    for sys in $SYSTEMS; do
        name=$sys
        line=$(scen_line "$sys" fanout-one)
        echo "$name $(field frames_per_s "$line")" >>"$TMPD/throughput.dat"
        if [ "${sys%-batched}" != floor ]; then
            echo "$name $(field lat_p50_us "$line") $(field lat_p99_us "$line") $(field lat_p999_us "$line")" >>"$TMPD/latency.dat"
        fi
        cpu="$name $(total_cpu "$line")"
        for rate in $RATES; do
            cpu="$cpu $(total_cpu "$(scen_line "$sys" fanout-many "$rate")")"
        done
        echo "${cpu//–/?}" >>"$TMPD/cpu.dat"
    done
}

mkdir -p "$RESULTS"
report >"$RESULTS/peers.md"
if command -v gnuplot >/dev/null 2>&1; then
    TMPD=$(mktemp -d)
    trap 'rm -rf "$TMPD"' EXIT
    plot_data
    set -- $RATES
    # gnuplot warns of every system a partial run left out: keep quiet
    # unless it fails.
    if ! gnuplot -e "data='$TMPD'; out='$RESULTS'; rates='$*'" \
        "$HERE/plot-peers.gp" 2>"$TMPD/gnuplot.err"; then
        echo "report-peers.sh: could not draw the plots: $(tail -n 1 "$TMPD/gnuplot.err")" >&2
    fi
else
    echo "report-peers.sh: gnuplot is missing: no plots (bench/peers/install.sh installs it)" >&2
fi
