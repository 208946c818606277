#!/bin/bash
# Proves that a third party can build a torpor plugin out of tree: install
# only the public headers and torpor-plugin.pc into a scratch DESTDIR,
# compile shout.c with nothing but `pkg-config --cflags torpor-plugin`, load
# it into a real torpord and talk to it over loopback.  Prints TAP.
#
# Environment (set by `make check`): TOP_BUILDDIR, TORPORD,
# TORPOR_PLUGIN_PATH, PYTHON3; optional CC and PKG_CONFIG.
set -u

here=$(cd "$(dirname "$0")" && pwd)
plan=7
echo "1..$plan"

# shellcheck source=tests/out_of_tree/tap.sh
. "$here/tap.sh"
require_env TOP_BUILDDIR TORPORD TORPOR_PLUGIN_PATH
PYTHON3=${PYTHON3:-/usr/bin/python3}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/torpor-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. Install the headers and the .pc file, and nothing else.
if make -C "$TOP_BUILDDIR" install-torporincludeHEADERS \
        install-pkgconfigDATA DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 \
   && [ -n "$(find "$tmp/root" -name torpor-plugin.pc)" ] \
   && [ -n "$(find "$tmp/root" -path '*/torpor/plugin.h')" ]; then
    ok "make install-torporincludeHEADERS install-pkgconfigDATA into DESTDIR"
else
    not_ok "make install-torporincludeHEADERS install-pkgconfigDATA into DESTDIR" \
        "$(tail -n 30 "$tmp/install.log")" \
        "installed: $(cd "$tmp" && find . -type f | head -n 20)"
    bail_rest "install failed"
fi

# 2. pkg-config, told only about the DESTDIR, points inside it.
pc=$(find "$tmp/root" -name torpor-plugin.pc | head -n 1)
pcdir=$(dirname "$pc")
cflags=$(PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH="$pcdir" \
         "$PKG_CONFIG" --cflags torpor-plugin 2>"$tmp/pkg.err")
rc=$?
incdir=${cflags#-I}
incdir=${incdir%% *}
if [ "$rc" -eq 0 ] && [ "${cflags#-I"$tmp"/root/}" != "$cflags" ] \
   && [ -f "$incdir/torpor/torpor.h" ]; then
    ok "pkg-config --cflags torpor-plugin gives the installed headers"
else
    not_ok "pkg-config --cflags torpor-plugin gives the installed headers" \
        "exit $rc, cflags '$cflags'" "$(cat "$tmp/pkg.err")" \
        "pc file: $(cat "$pc")"
    bail_rest "pkg-config failed"
fi

# 3. Build the class as a module with those flags only (no -I into the
# source tree: the compiler sees the installed copy or nothing).
mkdir -p "$tmp/plugins"
# shellcheck disable=SC2086 # cflags is a list of words
if "$CC" -shared -fPIC -fvisibility=hidden -std=c11 -Wall -Wextra -Werror \
        $cflags -o "$tmp/plugins/shout.so" "$here/shout.c" \
        >"$tmp/cc.log" 2>&1; then
    ok "shout.c builds as a module with only pkg-config's flags"
else
    not_ok "shout.c builds as a module with only pkg-config's flags" \
        "$CC -shared -fPIC -fvisibility=hidden -std=c11 $cflags" \
        "$(cat "$tmp/cc.log")"
    bail_rest "build failed"
fi

# 4. Only the entry point is exported.
exports=$(nm -D --defined-only "$tmp/plugins/shout.so" 2>&1 \
          | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort | tr '\n' ' ')
if [ "$exports" = "torpor_plugin_entry " ]; then
    ok "shout.so exports only torpor_plugin_entry"
else
    not_ok "shout.so exports only torpor_plugin_entry" "exports: $exports"
fi

# 5-7. Load it into a real torpord, talk to it, stop it.
export TORPOR_OOT_PLUGINS="$tmp/plugins:$TORPOR_PLUGIN_PATH"
export TORPOR_OOT_FIRST=$((n + 1))
"$PYTHON3" - "$here/../integration" <<'EOF'
import asyncio
import os
import sys

sys.path.insert(0, sys.argv[1])
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay, echo, shout

[transport.websocket]
listen = 127.0.0.1:0

[route.relay]
class = relay

[route.echo]
class = echo

[route.shout]
class = shout
"""

k = int(os.environ["TORPOR_OOT_FIRST"])
plugins = os.environ["TORPOR_OOT_PLUGINS"]
failed = 0


def report(name, fn):
    global k, failed
    try:
        fn()
        print("ok %d - %s" % (k, name))
    except Exception as exc:
        failed += 1
        print("not ok %d - %s" % (k, name))
        for line in str(exc).splitlines():
            print("# " + line)
    k += 1
    sys.stdout.flush()


def check_config():
    d = harness.Daemon(CONFIG, plugin_path=plugins)
    rc, out, err = harness.run_cli(["--config", d.config_path,
                                    "--check-config", "--plugin-path",
                                    plugins])
    check_eq(rc, 0, "--check-config with shout (stderr %r)" % err)


daemon = harness.Daemon(CONFIG, plugin_path=plugins)


async def talk():
    ws = await harness.connect(daemon, "/shout/x")
    for sent, want in (("hello", "HELLO"),
                       ("Hello, w\u00f6rld 123!", "HELLO, W\u00f6RLD 123!"),
                       (b"bin\x00ary\xff", b"BIN\x00ARY\xff")):
        await ws.send(sent)
        got = await harness.recv(ws)
        check_eq((type(got), got), (type(want), want), "reply to %r" % sent)
    other = await harness.connect(daemon, "/shout/x")
    await other.send("second")
    check_eq(await harness.recv(other), "SECOND", "a second client")
    await harness.close_all(ws, other)


def serve():
    daemon.start()
    asyncio.run(asyncio.wait_for(talk(), harness.TEST_TIMEOUT_S))


def stop():
    rc, log = daemon.stop()
    harness.check_clean_exit(rc, log)


report("torpord --check-config loads the out-of-tree shout plugin",
       check_config)
report("/shout/x answers 'hello' with 'HELLO' (text and binary)", serve)
report("torpord with shout exits 0 on SIGTERM, no sanitizer report", stop)
sys.exit(1 if failed else 0)
EOF
py_rc=$?
if [ "$py_rc" -ne 0 ]; then
    failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
