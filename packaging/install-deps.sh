#!/bin/sh
# Installs what torpor needs on Debian 12: the build dependencies, and with
# --test also what the test suite drives (real clients, a headless
# Chromium, PostgreSQL, clang for the fuzz targets, the openssl command for
# the TLS tests' certificates, strace to count torpord's system calls,
# Node's ws, playwright-core and protobufjs from the npm registry).
#
#   packaging/install-deps.sh          build and run torpord
#   packaging/install-deps.sh --test   also run `make check`
#   packaging/install-deps.sh --bench  also run `make bench`: the servers
#                                      torpor is compared with, Redis and
#                                      gnuplot (bench/peers/install.sh)
set -eu

want_test=no
want_bench=no
for arg in "$@"; do
    case "$arg" in
    --test) want_test=yes ;;
    --bench) want_bench=yes ;;
    -h|--help)
        sed -n '2,12s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *)
        echo "install-deps.sh: unknown option \"$arg\"" >&2
        exit 2
        ;;
    esac
done

sudo=
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
fi

build_pkgs="build-essential autoconf automake libtool pkgconf
    libevent-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev zlib1g-dev
    libinih-dev libpq-dev libnng-dev check"
test_pkgs="python3 python3-websockets nodejs nng-utils postgresql openssl
    clang libclang-rt-14-dev chromium strace"

pkgs=$build_pkgs
if [ "$want_test" = yes ]; then
    pkgs="$pkgs $test_pkgs"
fi

# Skip apt entirely when everything is there: CI machines are reused.
missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    $sudo apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

# Debian splits npm out of nodejs; NodeSource's nodejs carries npm and
# conflicts with Debian's, so npm is installed only where it is missing.
if [ "$want_test" = yes ] && ! command -v npm >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends npm
fi

if [ "$want_test" = yes ]; then
    top=$(cd "$(dirname "$0")/.." && pwd)
    # Node's ws client and playwright-core, and the Node.js backend
    # worker's protobufjs, pinned by their lock files.
    if command -v npm >/dev/null 2>&1; then
        (cd "$top/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
        (cd "$top/examples/workers/node" && npm ci --no-audit --no-fund --loglevel=error)
    else
        echo "install-deps.sh: npm not found after installing it" >&2
        exit 1
    fi
fi

if [ "$want_bench" = yes ]; then
    "$(cd "$(dirname "$0")/.." && pwd)/bench/peers/install.sh"
fi
