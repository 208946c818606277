"""Helpers for the storage integration tests: configs for each backend, a
throwaway PostgreSQL from tests/pg/pgctl.sh, and the storage_tool driver.
"""

import os
import subprocess
import tempfile

import harness
from harness import TestFailure

HERE = os.path.dirname(os.path.abspath(__file__))
PGCTL = os.path.join(HERE, "..", "pg", "pgctl.sh")


def file_config(path, data_dir, fsync="always"):
    with open(path, "w") as f:
        f.write("[core]\nlog_level = warn\n"
                "[storage]\nbackend = file\n"
                "[storage.file]\ndir = %s\nfsync = %s\n" % (data_dir, fsync))
    return path


def pg_config(path, conninfo):
    with open(path, "w") as f:
        f.write("[core]\nlog_level = warn\n"
                "[storage]\nbackend = postgres\n"
                "[storage.postgres]\nconninfo = %s\n" % conninfo)
    return path


class Postgres:
    """A PostgreSQL cluster of pgctl.sh's, for one test script."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="torpor-pg-")
        os.rmdir(self.dir)  # pgctl.sh makes it, owned by the right user
        out = subprocess.run(["bash", PGCTL, "start", self.dir],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=120)
        if out.returncode != 0:
            raise TestFailure("pgctl.sh start failed: %s"
                              % out.stderr.decode(errors="replace"))
        self.conninfo = out.stdout.decode().strip()

    def ctl(self, verb):
        out = subprocess.run(["bash", PGCTL, verb, self.dir],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=120)
        if out.returncode != 0:
            raise TestFailure("pgctl.sh %s failed: %s"
                              % (verb, out.stderr.decode(errors="replace")))

    def stop(self):
        self.ctl("stop")


def tool(*args, timeout=120):
    """Run storage_tool; returns (exit code, stdout text, stderr text)."""
    out = subprocess.run([harness.env_path("STORAGE_TOOL")] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout)
    return (out.returncode, out.stdout.decode(errors="replace"),
            out.stderr.decode(errors="replace"))


def torporctl(*args, timeout=300):
    out = subprocess.run([harness.env_path("TORPORCTL"), "--plugin-path",
                          harness.env_path("TORPOR_PLUGIN_PATH")] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout)
    return (out.returncode, out.stdout.decode(errors="replace"),
            out.stderr.decode(errors="replace"))
