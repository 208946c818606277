#!/bin/sh
# Installs what bench/run-peers.sh compares torpor with, and draws with:
# workerd, ws, Socket.IO, its Redis adapter and the Redis client from the
# npm registry, pinned by package-lock.json, into bench/peers/node_modules
# (workerd's binary comes inside its npm package); Debian's redis-server,
# gnuplot, Node.js and npm with apt-get (through sudo when not root).
#
# Debian's redis-server package may start a system Redis on port 6379
# where services can start; the benchmark leaves it alone and starts a
# Redis of its own on a free port of 127.0.0.1.
set -eu

sudo=
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
fi

missing=
for p in redis-server gnuplot-nox nodejs python3; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
# Debian splits npm out of nodejs; NodeSource's nodejs carries npm and
# conflicts with Debian's, so npm is installed only where it is missing.
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi
if [ -n "$missing" ]; then
    $sudo apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
echo "install.sh: $(node_modules/workerd/bin/workerd --version), $(redis-server --version | cut -d' ' -f1-3), node $(node --version)"
