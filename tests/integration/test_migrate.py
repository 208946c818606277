#!/usr/bin/python3
"""torporctl migrate copies every object's keys and alarms from the file
store to PostgreSQL and back, and the data compares equal at each step.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import storage_util  # noqa: E402

OBJECTS = 300


def dump(config):
    rc, out, err = storage_util.tool("dump", config)
    check_eq(rc, 0, "storage_tool dump %s: %s" % (config, err))
    return out


async def migrate_file_to_postgres_and_back(_):
    work = os.path.join(harness.SCRATCH, "migrate")
    os.makedirs(work)
    pg = storage_util.Postgres()
    try:
        a = storage_util.file_config(os.path.join(work, "a.conf"),
                                     os.path.join(work, "a"))
        p = storage_util.pg_config(os.path.join(work, "p.conf"),
                                   pg.conninfo)
        b = storage_util.file_config(os.path.join(work, "b.conf"),
                                     os.path.join(work, "b"))
        rc, out, err = storage_util.tool("fill", a, str(OBJECTS))
        check_eq(rc, 0, "fill: %s" % err)
        original = dump(a)
        check_eq(original.count("\nobject ") + original.startswith("object "),
                 OBJECTS, "objects written")

        rc, out, err = storage_util.torporctl("migrate", "--from", a,
                                              "--to", p)
        check_eq(rc, 0, "migrate file -> postgres: %s %s" % (out, err))
        check("migrated: counts match" in out, "counts reported: " + out)
        check("%d objects, %d keys" % (OBJECTS, OBJECTS * 4) in out,
              "counts of objects and keys: " + out)
        check_eq(dump(p), original, "postgres holds what the file store had")

        rc, out, err = storage_util.torporctl("migrate", "--from", p,
                                              "--to", b)
        check_eq(rc, 0, "migrate postgres -> file: %s %s" % (out, err))
        check_eq(dump(b), original, "back in a file store, unchanged")

        rc, out, err = storage_util.torporctl("migrate", "--from", a,
                                              "--to", p)
        check(rc != 0, "migrating into a non-empty backend is refused")
        check("destination already holds objects" in err,
              "the refusal says why: " + err)
    finally:
        pg.stop()


TESTS = [
    ("torporctl migrate: file -> postgres -> file, data equal, counts "
     "checked", migrate_file_to_postgres_and_back),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
