#!/bin/bash
# Runs one libFuzzer target of tests/fuzz.
#
#   run.sh tests/fuzz/NAME.fuzz   the `make check` test, in TAP: replay the
#                                 seeds and every regression input, then a
#                                 short bounded fuzzing run
#   run.sh --long NAME            `make fuzz`: fuzz for FUZZ_SECONDS (600)
#                                 on a corpus kept in the build tree
#
# NAME.fuzz sets max_len, the longest input worth trying.  The target is
# $TOP_BUILDDIR/tests/fuzz/fuzz_NAME; its seeds are tests/fuzz/seeds/NAME
# and its regressions tests/fuzz/regressions/NAME in the source tree.
# FUZZ_CHECK_SECONDS (20) and FUZZ_CHECK_RUNS (5000000) bound the run in
# `make check`, whichever comes first.  A crash is saved under
# $TOP_BUILDDIR/tests/fuzz/crashes/NAME/.
set -u

top_src=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
top_build=${TOP_BUILDDIR:-$top_src}

long=no
if [ "${1:-}" = --long ]; then
    long=yes
    name=$2
    spec=$top_src/tests/fuzz/$name.fuzz
else
    spec=$1
    name=$(basename "$spec" .fuzz)
fi

max_len=4096
# shellcheck source=/dev/null
. "$spec"

bin=$top_build/tests/fuzz/fuzz_$name
seeds=$top_src/tests/fuzz/seeds/$name
regressions=$top_src/tests/fuzz/regressions/$name
crashes=$top_build/tests/fuzz/crashes/$name
missing="configure found no clang with libFuzzer: install Debian's clang and libclang-rt-14-dev (packaging/install-deps.sh --test installs both), then run ./configure again"

# stat_of KEY LOG prints libFuzzer's final statistic KEY, or "?".
stat_of() {
    local v
    v=$(sed -n "s/^stat::$1: *//p" "$2" | tail -1)
    echo "${v:-?}"
}

# ---- make fuzz ----
if [ "$long" = yes ]; then
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin is not built: $missing" >&2
        exit 1
    fi
    seconds=${FUZZ_SECONDS:-600}
    corpus=$top_build/tests/fuzz/corpus/$name
    mkdir -p "$corpus" "$crashes"
    log=$top_build/tests/fuzz/fuzz_$name.log
    echo "fuzz_$name: ${seconds} s, corpus $corpus, crashes in $crashes/"
    "$bin" -max_total_time="$seconds" -max_len="$max_len" \
        -artifact_prefix="$crashes/" -print_final_stats=1 \
        "$corpus" "$seeds" >"$log" 2>&1
    rc=$?
    echo "fuzz_$name: $(stat_of number_of_executed_units "$log") runs, $(stat_of average_exec_per_sec "$log") exec/s, corpus of $(find "$corpus" -type f | wc -l) inputs"
    if [ "$rc" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzz_$name FAILED: the input is in $crashes/; copy it into tests/fuzz/regressions/$name/ under a name that says what broke, fix the bug, and make check replays it" >&2
        exit 1
    fi
    exit 0
fi

# ---- make check (TAP) ----
if [ ! -x "$bin" ]; then
    echo "1..1"
    echo "not ok 1 - fuzz_$name is built"
    echo "# $missing"
    exit 1
fi

reg_files=()
if [ -d "$regressions" ]; then
    while IFS= read -r f; do
        reg_files+=("$f")
    done < <(find "$regressions" -type f ! -name 'README*' | LC_ALL=C sort)
fi
seed_files=()
while IFS= read -r f; do
    seed_files+=("$f")
done < <(find "$seeds" -type f | LC_ALL=C sort)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$crashes"

echo "1..$((2 + ${#reg_files[@]}))"
n=0
failed=0

# report OK NAME LOG: one TAP line, with the log's tail when it failed.
report() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        failed=1
        echo "not ok $n - $2"
        tail -30 "$3" | sed 's/^/# /'
    fi
}

if [ "${#seed_files[@]}" -eq 0 ]; then
    echo "no seeds" >"$scratch/seeds.log"
    report 1 "fuzz_$name has seeds in tests/fuzz/seeds/$name" "$scratch/seeds.log"
else
    "$bin" "${seed_files[@]}" >"$scratch/seeds.log" 2>&1
    report $? "fuzz_$name replays its ${#seed_files[@]} seeds" "$scratch/seeds.log"
fi

for f in "${reg_files[@]}"; do
    "$bin" "$f" >"$scratch/reg.log" 2>&1
    report $? "fuzz_$name replays regression $(basename "$f")" "$scratch/reg.log"
done

mkdir -p "$scratch/corpus"
seconds=${FUZZ_CHECK_SECONDS:-20}
runs=${FUZZ_CHECK_RUNS:-5000000}
"$bin" -max_total_time="$seconds" -runs="$runs" -max_len="$max_len" \
    -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$scratch/corpus" "$seeds" >"$scratch/fuzz.log" 2>&1
rc=$?
fuzz_seed=$(sed -n 's/^INFO: Seed: //p' "$scratch/fuzz.log" | head -1)
report $rc "fuzz_$name: a bounded run (${seconds} s or ${runs} runs) finds no failure" "$scratch/fuzz.log"
echo "# $(stat_of number_of_executed_units "$scratch/fuzz.log") runs, $(stat_of average_exec_per_sec "$scratch/fuzz.log") exec/s, -seed=${fuzz_seed:-?}"
if [ "$rc" -ne 0 ]; then
    echo "# the failing input is in $crashes/; copy it into tests/fuzz/regressions/$name/"
fi
exit "$failed"
