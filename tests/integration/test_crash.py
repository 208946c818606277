#!/usr/bin/python3
"""kill -9 a process that commits to the file store with fsync = always,
again and again: after each restart every acknowledged commit is there and
no batch is half applied.

storage_tool write commits batches of eleven writes and prints "acked N"
only after batch N's completion; storage_tool verify checks that every
batch up to the newest is whole and nothing after it exists.
"""

import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import storage_util  # noqa: E402

ROUNDS = 12


def run_rounds(fsync):
    work = os.path.join(harness.SCRATCH, "crash-" + fsync)
    os.makedirs(work)
    config = storage_util.file_config(os.path.join(work, "torpor.conf"),
                                      os.path.join(work, "data"), fsync)
    rng = random.Random(1234)
    acked_total = 0
    for round_no in range(ROUNDS):
        proc = subprocess.Popen([harness.env_path("STORAGE_TOOL"), "write",
                                 config], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        harness._live.add(proc)
        acked = 0
        # Kill after a few acknowledged batches and a random extra moment,
        # so the kill lands at different points of a commit.
        want = rng.randint(1, 30)
        deadline = time.monotonic() + 30
        while acked < want and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"acked "):
                acked = int(line.split()[1])
        time.sleep(rng.random() * 0.02)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
        harness._live.discard(proc)
        for line in rest.splitlines():
            if line.startswith(b"acked "):
                acked = int(line.split()[1])
        check(acked > 0, "round %d: the writer acknowledged nothing: %s"
              % (round_no, err.decode(errors="replace")))
        rc, out, err = storage_util.tool("verify", config)
        check_eq(rc, 0, "round %d: verify (no half batch): %s %s"
                 % (round_no, out, err))
        last = int(out.split("last ")[-1])
        check(last >= acked, "round %d: batch %d was acknowledged but the "
              "store ends at %d" % (round_no, acked, last))
        acked_total = max(acked_total, last)
    return acked_total


async def crash_fsync_always(_):
    run_rounds("always")


async def crash_fsync_interval_keeps_batches_whole(_):
    # With fsync = interval an acknowledged batch may be lost in a crash
    # of the machine, not of the process: the page cache survives kill -9,
    # so here too every acknowledged batch must be there, and whole.
    run_rounds("interval")


TESTS = [
    ("kill -9 during commits, %d times, fsync = always: acknowledged "
     "batches all there, none half applied" % ROUNDS, crash_fsync_always),
    ("the same with fsync = interval", crash_fsync_interval_keeps_batches_whole),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
