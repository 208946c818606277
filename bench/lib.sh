# Shell helpers shared by the bench/run-*.sh scripts; sourced, not run.

# field NAME LINE: the value of NAME=... in a result line, "?" if absent.
field() {
    local word
    for word in $2; do
        case $word in
        "$1"=*) echo "${word#*=}"; return ;;
        esac
    done
    echo "?"
}
