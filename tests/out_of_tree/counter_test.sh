#!/bin/bash
# Proves that the tutorial's example works as docs/class-tutorial.md says:
# install only the public headers and torpor-plugin.pc into a scratch
# DESTDIR, build examples/counter with its own Makefile and nothing but
# pkg-config, check that the tutorial quotes counter.c verbatim, then load
# counter.so into a real torpord and drive a room over loopback: totals
# broadcast after durable puts, "?" to the sender only, the config key,
# state rebuilt after hibernation, the reset alarm, and a restart on the
# same data folder.  Prints TAP.
#
# Environment (set by `make check`): TOP_BUILDDIR, TOP_SRCDIR, TORPORD,
# TORPOR_PLUGIN_PATH, PYTHON3; optional CC, MAKE and PKG_CONFIG.
set -u

here=$(cd "$(dirname "$0")" && pwd)
plan=13
echo "1..$plan"

# shellcheck source=tests/out_of_tree/tap.sh
. "$here/tap.sh"
require_env TOP_BUILDDIR TORPORD TORPOR_PLUGIN_PATH
TOP_SRCDIR=${TOP_SRCDIR:-$here/../..}
PYTHON3=${PYTHON3:-/usr/bin/python3}
MAKE=${MAKE:-make}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
example="$TOP_SRCDIR/examples/counter"
tutorial="$TOP_SRCDIR/docs/class-tutorial.md"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/torpor-counter.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. Install the headers and the .pc file, and nothing else.
if "$MAKE" -C "$TOP_BUILDDIR" install-torporincludeHEADERS \
        install-pkgconfigDATA DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 \
   && [ -n "$(find "$tmp/root" -name torpor-plugin.pc)" ] \
   && [ -n "$(find "$tmp/root" -path '*/torpor/class.h')" ]; then
    ok "make install-torporincludeHEADERS install-pkgconfigDATA into DESTDIR"
else
    not_ok "make install-torporincludeHEADERS install-pkgconfigDATA into DESTDIR" \
        "$(tail -n 30 "$tmp/install.log")"
    bail_rest "install failed"
fi

# 2. pkg-config, told only about the DESTDIR, points inside it.
pc=$(find "$tmp/root" -name torpor-plugin.pc | head -n 1)
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$("$PKG_CONFIG" --cflags torpor-plugin 2>"$tmp/pkg.err")
rc=$?
if [ "$rc" -eq 0 ] && [ "${cflags#-I"$tmp"/root/}" != "$cflags" ]; then
    ok "pkg-config --cflags torpor-plugin gives the installed headers"
else
    not_ok "pkg-config --cflags torpor-plugin gives the installed headers" \
        "exit $rc, cflags '$cflags'" "$(cat "$tmp/pkg.err")"
    bail_rest "pkg-config failed"
fi

# 3. The example's own Makefile builds it, from another folder, with
# warnings as errors; the source tree is only read.
mkdir -p "$tmp/build"
if "$MAKE" -C "$tmp/build" -f "$example/Makefile" \
        CFLAGS="-O2 -g -Wall -Wextra -Werror" >"$tmp/cc.log" 2>&1 \
   && [ -f "$tmp/build/counter.so" ]; then
    ok "examples/counter/Makefile builds counter.so with pkg-config's flags"
else
    not_ok "examples/counter/Makefile builds counter.so with pkg-config's flags" \
        "$(cat "$tmp/cc.log")"
    bail_rest "build failed"
fi

# 4. Only the entry point is exported.
exports=$(nm -D --defined-only "$tmp/build/counter.so" 2>&1 \
          | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort | tr '\n' ' ')
if [ "$exports" = "torpor_plugin_entry " ]; then
    ok "counter.so exports only torpor_plugin_entry"
else
    not_ok "counter.so exports only torpor_plugin_entry" "exports: $exports"
fi

# 5. Every C block of the tutorial is a verbatim part of counter.c.
if out=$("$PYTHON3" - "$tutorial" "$example/counter.c" 2>&1 <<'EOF'
import re
import sys

doc = open(sys.argv[1]).read()
src = open(sys.argv[2]).read()
blocks = re.findall(r"^```c\n(.*?)^```$", doc, re.S | re.M)
if len(blocks) < 8:
    sys.exit("only %d ```c blocks in the tutorial" % len(blocks))
bad = [b for b in blocks if b not in src]
for b in bad:
    print("not in counter.c:\n" + b)
sys.exit(1 if bad else 0)
EOF
); then
    ok "docs/class-tutorial.md quotes examples/counter/counter.c verbatim"
else
    not_ok "docs/class-tutorial.md quotes examples/counter/counter.c verbatim" \
        "$out"
fi

# 6-13. Load it into a real torpord and drive a room.
export TORPOR_COUNTER_PLUGINS="$tmp/build:$TORPOR_PLUGIN_PATH"
export TORPOR_COUNTER_FIRST=$((n + 1))
"$PYTHON3" - "$here/../integration" <<'EOF'
import asyncio
import os
import re
import sys
import time

sys.path.insert(0, sys.argv[1])
import harness  # noqa: E402
from harness import check, check_eq, connect, recv  # noqa: E402

CONFIG = """\
[core]
log_level = info
plugins = websocket, counter
alarm_poll_ms = 50

[transport.websocket]
listen = 127.0.0.1:0

[class.counter]
step_limit = %(step_limit)s
hibernate_after_ms = 200

[route.counter]
class = counter
"""

k = int(os.environ["TORPOR_COUNTER_FIRST"])
plugins = os.environ["TORPOR_COUNTER_PLUGINS"]
failed = 0
room = harness.unique("counter")
path = "/counter/" + room
obj = "counter/" + room
daemon = harness.Daemon(CONFIG % {"step_limit": 100}, plugin_path=plugins)
HIBERNATED = 'INFO core object="%s": object hibernated' % obj
WOKE = 'INFO core object="%s": object woke from hibernation' % obj


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
        if daemon.proc is not None:
            for line in harness.tail(daemon.log(), 15).splitlines():
                print("# " + line)
    k += 1
    sys.stdout.flush()


def run(coro_fn):
    def fn():
        asyncio.run(asyncio.wait_for(coro_fn(), harness.TEST_TIMEOUT_S))
    return fn


async def join():
    """A client of the room, past the total a newcomer hears first."""
    ws = await connect(daemon, path)
    first = await recv(ws)
    check(re.fullmatch(r"total \d+", first) is not None,
          "a newcomer hears the total first, got %r" % first)
    return ws, int(first.split()[1])


def check_config():
    good = harness.Daemon(CONFIG % {"step_limit": 100}, plugin_path=plugins)
    rc, _, err = harness.run_cli(["--config", good.config_path,
                                  "--check-config", "--plugin-path", plugins])
    check_eq(rc, 0, "--check-config with step_limit = 100 (stderr %r)" % err)
    bad = harness.Daemon(CONFIG % {"step_limit": 0}, plugin_path=plugins)
    rc, _, err = harness.run_cli(["--config", bad.config_path,
                                  "--check-config", "--plugin-path", plugins])
    check_eq(rc, 2, "--check-config with step_limit = 0 (stderr %r)" % err)
    want = ('bad value "0" for "step_limit" in section [class.counter]: '
            'expected a number from 1 to 1000000000')
    check(want in err, "the plugin's reason is reported: %r" % err)


async def totals_to_everyone():
    daemon.start()
    a, total_a = await join()
    b, total_b = await join()
    check_eq((total_a, total_b), (0, 0), "a new room starts at 0")
    await a.send("+5")
    check_eq((await recv(a), await recv(b)), ("total 5", "total 5"),
             "after +5")
    await b.send("+2")
    check_eq((await recv(a), await recv(b)), ("total 7", "total 7"),
             "after +2")
    await harness.close_all(a, b)


async def question_to_sender():
    a, total = await join()
    b, _ = await join()
    check_eq(total, 7, "a newcomer's total, read back from storage")
    await a.send("?")
    check_eq(await recv(a), "total 7", "answer to ?")
    await harness.expect_nothing(b, 0.3)
    await a.send("+101")
    check_eq(await recv(a),
             "error: expected +N, N from 0 to 100", "+101 over step_limit")
    await a.send("nonsense")
    check_eq(await recv(a), "error: expected +N, ? or reset in MS",
             "an unknown message")
    await harness.expect_nothing(b, 0.3)
    await harness.close_all(a, b)


async def survives_hibernation():
    a, _ = await join()
    before = daemon.log().count(HIBERNATED)
    end = time.monotonic() + 10
    while daemon.log().count(HIBERNATED) <= before:
        check(time.monotonic() < end,
              "no %r line within 10 s" % HIBERNATED)
        await asyncio.sleep(0.05)
    check(a.open, "the client stays connected while the room hibernates")
    woke = daemon.log().count(WOKE)
    await a.send("?")
    check_eq(await recv(a), "total 7", "answer to ? after hibernation")
    check_eq(daemon.log().count(WOKE), woke + 1,
             "the ? woke the room (count of %r)" % WOKE)
    await harness.close_all(a)


async def reset_alarm():
    a, _ = await join()
    b, _ = await join()
    t0 = time.monotonic()
    await a.send("reset in 200")
    check_eq(await recv(a), "reset in 200 ms", "answer to reset in 200")
    check_eq((await recv(a), await recv(b)),
             ("reset: total 0", "reset: total 0"), "the room hears the reset")
    waited = time.monotonic() - t0
    check(waited >= 0.19, "the reset came after %.3f s, not 0.2" % waited)
    await a.send("?")
    check_eq(await recv(a), "total 0", "answer to ? after the reset")
    await b.send("+3")
    check_eq((await recv(a), await recv(b)), ("total 3", "total 3"),
             "after +3")
    await harness.close_all(a, b)


def first_stop():
    rc, log = daemon.stop()
    harness.check_clean_exit(rc, log)


async def survives_restart():
    daemon.start()      # the same folder, so the same ./torpor-data
    a, total = await join()
    check_eq(total, 3, "the total a newcomer hears after the restart")
    await a.send("?")
    check_eq(await recv(a), "total 3", "answer to ? after the restart")
    await a.send("+4")
    check_eq(await recv(a), "total 7", "after +4")
    await harness.close_all(a)


def last_stop():
    rc, log = daemon.stop()
    harness.check_clean_exit(rc, log)


report("torpord --check-config takes [class.counter] step_limit and "
       "refuses step_limit = 0 with the plugin's reason", check_config)
report("+5 then +2: every client of the room hears total 5, then total 7",
       run(totals_to_everyone))
report("? answers total 7 to the sender only; +101 over step_limit = 100 "
       "and an unknown message answer an error", run(question_to_sender))
report("after the room hibernates (\"object hibernated\"), ? wakes it and "
       "answers total 7, rebuilt from storage", run(survives_hibernation))
report("reset in 200: the sender hears reset in 200 ms, the room "
       "reset: total 0 no sooner than 0.2 s later, ? answers total 0",
       run(reset_alarm))
report("torpord exits 0 on SIGTERM with no sanitizer report", first_stop)
report("restarted on the same data folder, the room's total is still 3",
       run(survives_restart))
report("the restarted torpord exits 0 on SIGTERM with no sanitizer report",
       last_stop)
sys.exit(1 if failed else 0)
EOF
py_rc=$?
if [ "$py_rc" -ne 0 ]; then
    failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
