# tap.sh: TAP reporting for the out-of-tree test scripts, sourced after
# they set $plan and print "1..$plan".
n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/# /'
    done
}
# bail_rest fails every test not yet reported, so a broken step never
# passes what depends on it.
bail_rest() {
    while [ "$n" -lt "$plan" ]; do
        not_ok "not run: $1"
    done
    exit 1
}
# require_env fails everything unless each named variable is set.
require_env() {
    local var missing=
    for var in "$@"; do
        if [ -z "${!var:-}" ]; then
            missing="$missing $var"
        fi
    done
    if [ -n "$missing" ]; then
        not_ok "environment is set" "unset:$missing (run with make check)"
        bail_rest "environment missing"
    fi
}
