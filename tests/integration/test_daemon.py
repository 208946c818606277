#!/usr/bin/python3
"""torpord as a program: options, config validation, defaults and signals.

Each test starts its own torpord (or runs it to completion), so a signal
test cannot disturb another.
"""

import asyncio
import os
import re
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, connect, recv, Daemon,  # noqa: E402
                     run_cli, RawWS, check_clean_exit, log_lines_at)

GOOD = [
    "; torpord test config",
    "[core]",
    "log_level = notice",
    "plugins = websocket, relay, echo",
    "shutdown_timeout_ms = 5000",
    "",
    "[transport.websocket]",
    "listen = 127.0.0.1:0",
    "max_message_bytes = 1048576",
    "max_handshake_bytes = 8192",
    "handshake_timeout_ms = 10000",
    "close_timeout_ms = 5000",
    "max_output_bytes = 16777216",
    "",
    "[route.relay]",
    "class = relay",
    "",
    "[route.echo]",
    "class = echo",
]


def write_config(lines):
    fd, path = tempfile.mkstemp(prefix="torpor-", suffix=".conf",
                                dir=harness.SCRATCH)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def plugin_path():
    return harness.env_path("TORPOR_PLUGIN_PATH")


def with_line(after, new_line):
    """GOOD with new_line inserted after the line equal to after; returns
    (lines, 1-based number of new_line)."""
    lines = list(GOOD)
    i = lines.index(after) + 1
    lines.insert(i, new_line)
    return lines, i + 1


def replaced(old, new):
    lines = list(GOOD)
    i = lines.index(old)
    lines[i] = new
    return lines, i + 1


# Each bad config: (what, lines, line number, words stderr must name).
BAD_CONFIGS = [
    ("an unknown section",
     *with_line("class = echo", "[nonsense]"), ["nonsense"]),
    ("an unknown key in [core]",
     *with_line("log_level = notice", "colour = blue"), ["colour"]),
    ("an unknown key in [transport.websocket]",
     *with_line("listen = 127.0.0.1:0", "max_frobs = 3"), ["max_frobs"]),
    ("a bad value for max_message_bytes",
     *replaced("max_message_bytes = 1048576", "max_message_bytes = lots"),
     ["max_message_bytes"]),
    ("a bad log_level",
     *replaced("log_level = notice", "log_level = loud"), ["log_level"]),
    ("a plugin that does not exist",
     *replaced("plugins = websocket, relay, echo",
               "plugins = websocket, relay, echo, nosuchplugin"),
     ["nosuchplugin"]),
    ("a route whose class nobody provides",
     *replaced("class = echo", "class = nosuchclass"), ["nosuchclass"]),
]


def _check_config_rejects(lines, lineno, words):
    async def run(_):
        path = write_config(lines)
        rc, out, err = run_cli(["--config", path, "--check-config",
                                "--plugin-path", plugin_path()])
        check(rc != 0, "--check-config exited 0 on a bad config; stderr:\n"
              + err)
        want = "%s:%d:" % (path, lineno)
        check(want in err, "stderr lacks %r; stderr:\n%s" % (want, err))
        line = next(l for l in err.splitlines() if want in l)
        for word in words:
            check(word in line, "the %r line does not name %r: %r"
                  % (want, word, line))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
        os.unlink(path)
    return run


def _startup_rejects(lines, lineno, words):
    async def run(_):
        path = write_config(lines)
        rc, out, err = run_cli(["--config", path,
                                "--plugin-path", plugin_path()])
        check(rc != 0, "torpord exited 0 on a bad config; stderr:\n" + err)
        check(not re.search(r"listening on", err),
              "torpord started listening on a bad config:\n" + err)
        want = "%s:%d:" % (path, lineno)
        check(want in err, "stderr lacks %r; stderr:\n%s" % (want, err))
        line = next(l for l in err.splitlines() if want in l)
        for word in words:
            check(word in line, "the %r line does not name %r: %r"
                  % (want, word, line))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
        os.unlink(path)
    return run


async def version(_):
    rc, out, err = run_cli(["--version"])
    check_eq(rc, 0, "exit code of --version")
    first = out.splitlines()[0] if out else ""
    check(re.fullmatch(r"torpord 0\.1\.0 \(plugin ABI 1\.1\)", first),
          "--version printed %r, expected 'torpord 0.1.0 (plugin ABI 1.1)'"
          % out)


async def help_(_):
    rc, out, err = run_cli(["--help"])
    check_eq(rc, 0, "exit code of --help")
    check(re.search(r"(?i)usage", out), "no usage on stdout: %r" % out)
    for opt in ("--config", "--check-config", "--plugin-path", "--version",
                "--help"):
        check(opt in out, "--help does not mention %s:\n%s" % (opt, out))


async def check_config_good(_):
    path = write_config(GOOD)
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", plugin_path()])
    check_eq(rc, 0, "exit code of --check-config on a good config (stderr "
             "%r)" % err)
    check(not log_lines_at(err, "ERR"), "ERR lines:\n" + err)
    check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
    os.unlink(path)


async def example_config_is_valid(_):
    """packaging/torpor.conf documents every key: it must stay valid."""
    path = os.path.join(harness.env_path("TOP_SRCDIR"), "packaging",
                        "torpor.conf")
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", plugin_path()])
    check_eq(rc, 0, "exit code of --check-config on packaging/torpor.conf "
             "(stderr %r)" % err)
    check(not log_lines_at(err, "ERR"), "ERR lines:\n" + err)


async def check_config_missing_file(_):
    path = os.path.join(harness.SCRATCH,
                        "torpor-absent-%s.conf" % harness.unique())
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", plugin_path()])
    check(rc != 0, "--check-config exited 0 on a missing file")
    check(path in err, "stderr does not name %s: %r" % (path, err))


async def plugin_path_option_overrides_config(_):
    lines, _ = with_line("log_level = notice",
                         "plugin_path = /nonexistent/torpor-plugins")
    path = write_config(lines)
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", plugin_path()])
    check_eq(rc, 0, "--plugin-path must override plugin_path (stderr %r)"
             % err)
    rc, out, err = run_cli(["--config", path, "--check-config"])
    check(rc != 0, "with only the config's bad plugin_path, loading must "
          "fail")
    os.unlink(path)


async def plugin_path_from_config(_):
    lines, _ = with_line("log_level = notice",
                         "plugin_path = " + plugin_path())
    path = write_config(lines)
    rc, out, err = run_cli(["--config", path, "--check-config"])
    check_eq(rc, 0, "plugin_path from the config (stderr %r)" % err)
    os.unlink(path)


async def minimal_config_serves(_):
    # Only [core] log_level (and the port, so tests never collide): the
    # plugins and the /relay/ and /echo/ routes come by default.
    d = Daemon("[core]\nlog_level = notice\n"
               "[transport.websocket]\nlisten = 127.0.0.1:0\n")
    try:
        d.start()
        room = harness.unique()
        a = await connect(d, "/relay/" + room)
        b = await connect(d, "/relay/" + room)
        await a.send("default relay")
        check_eq(await recv(b), "default relay", "relay by default")
        e = await connect(d, "/echo/" + room)
        await e.send(b"default echo")
        check_eq(await recv(e), b"default echo", "echo by default")
        await harness.close_all(a, b, e)
    finally:
        rc, log = d.stop()
    check_clean_exit(rc, log)


def _signal_closes_with_1001(signum):
    async def run(_):
        d = Daemon()
        try:
            d.start()
            room = harness.unique()
            clients = [await connect(d, "/relay/" + room) for _ in range(3)]
            clients.append(await connect(d, "/echo/" + room))
            await clients[0].send("warm up")
            for ws in clients[1:3]:
                check_eq(await recv(ws), "warm up", "relay before signal")
            raw = await asyncio.get_running_loop().run_in_executor(
                None, RawWS, d.port, "/relay/" + harness.unique())
            d.send_signal(signum)
            codes = [await harness.close_code_of(ws, 20) for ws in clients]
            raw_code, _ = await asyncio.get_running_loop().run_in_executor(
                None, raw.expect_close)
            try:
                raw.send_frame(harness.OP_CLOSE, harness.close_payload(1001))
            except OSError:
                pass    # the server may already have dropped the socket
            raw.close()
            # One signal only: wait (bounded) for the exit it started.
            rc = await asyncio.get_running_loop().run_in_executor(
                None, d.wait)
        finally:
            # Ends the daemon only if something above failed first.
            _, log = d.stop()
        check_eq(codes, [1001] * len(clients), "close codes at the clients")
        check_eq(raw_code, 1001, "close code in the raw close frame")
        check_clean_exit(rc, log)
    return run


async def shutdown_timeout_frees_unanswered(_):
    """Clients that never answer the close frame keep their connections
    past shutdown_timeout_ms; torpord then exits anyway, and the records
    the core keeps for the transport are freed by it, with no leak."""
    config = harness.DEFAULT_CONFIG.replace(
        "shutdown_timeout_ms = 5000", "shutdown_timeout_ms = 300").replace(
        "max_message_bytes = 1048576",
        "max_message_bytes = 1048576\nclose_timeout_ms = 60000")
    d = Daemon(config)
    raws = []
    half = None
    try:
        d.start()
        loop = asyncio.get_running_loop()
        for _ in range(8):
            raws.append(await loop.run_in_executor(
                None, RawWS, d.port, "/relay/" + harness.unique()))
        # And one still in its handshake, which stop drops.
        half = socket.create_connection(("127.0.0.1", d.port),
                                        timeout=harness.IO_TIMEOUT_S)
        half.sendall(b"GET /relay/half HTTP/1.1\r\n")
        d.send_signal(signal.SIGTERM)
        rc = await loop.run_in_executor(None, d.wait)
    finally:
        _, log = d.stop()
        for raw in raws:
            raw.close()
        if half is not None:
            half.close()
    check(re.search(r"8 connections did not finish closing within 300 ms",
                    log),
          "no warning about the 8 unanswered connections; log tail:\n%s"
          % harness.tail(log))
    check_clean_exit(rc, log)


async def sighup_reloads_log_level(_):
    d = Daemon()
    try:
        d.start()
        room = harness.unique()

        async def activity():
            a = await connect(d, "/relay/" + room)
            b = await connect(d, "/relay/" + room)
            await a.send("traffic")
            check_eq(await recv(b), "traffic", "relay")
            await harness.close_all(a, b)

        await activity()
        check(not log_lines_at(d.log(), "DEBUG"),
              "DEBUG lines at log_level notice:\n" + harness.tail(d.log()))

        d.write_config(harness.DEFAULT_CONFIG.replace(
            "log_level = notice", "log_level = debug"))
        mark = len(d.log())
        d.send_signal(signal.SIGHUP)
        line = await wait_for_log(d, mark, r'log level "debug"')
        check(re.match(r"^\S+Z NOTICE ", line),
              "the reload line is not at NOTICE: %r" % line)
        mark = len(d.log())
        await activity()
        check(log_lines_at(d.log()[mark:], "DEBUG"),
              "no DEBUG lines after switching to debug:\n"
              + harness.tail(d.log()))

        d.write_config(harness.DEFAULT_CONFIG)
        mark = len(d.log())
        d.send_signal(signal.SIGHUP)
        await wait_for_log(d, mark, r'log level "notice"')
        mark = len(d.log())
        await activity()
        check(not log_lines_at(d.log()[mark:], "DEBUG"),
              "DEBUG lines after switching back to notice:\n"
              + harness.tail(d.log()))
    finally:
        rc, log = d.stop()
    check_clean_exit(rc, log)


async def wait_for_log(d, mark, pattern, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in d.log()[mark:].splitlines():
            if re.search(pattern, line, re.I):
                return line
        await asyncio.sleep(0.05)
    raise harness.TestFailure("no log line matching %r within %d s; log "
                              "tail:\n%s" % (pattern, timeout,
                                             harness.tail(d.log())))

def fixture_plugin_path():
    return "%s:%s" % (plugin_path(), harness.env_path("TORPOR_FIXTURE_PATH"))


async def configured_hook_reports_filed_by_key(_):
    """The probe fixture's configured hook reports a problem against its
    key refuse_with and one against its section: each is filed at its own
    line (a section's problem at the line of its first key), and a start
    refuses the same file before any plugin starts."""
    lines = ["[core]", "plugins = websocket, probe",
             "[transport.websocket]", "listen = 127.0.0.1:0",
             "[class.probe]", "hibernate_after_ms = 500",
             "refuse_with = told to refuse", "[route.probe]",
             "class = probe"]
    path = write_config(lines)
    for extra in (["--check-config"], []):
        rc, out, err = run_cli(["--config", path, "--plugin-path",
                                fixture_plugin_path()] + extra)
        what = "with " + extra[0] if extra else "at start"
        check_eq(rc, 2, "exit code %s; stderr:\n%s" % (what, err))
        for want in ('%s:7: "refuse_with" in section [class.probe]: told to '
                     'refuse' % path,
                     "%s:6: section [class.probe]: the whole section" % path,
                     'configuration "%s" has 2 problems' % path):
            check(want in err, "%s: stderr lacks %r:\n%s" % (what, want, err))
        check("listening on" not in err, "it listened:\n" + err)
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
    os.unlink(path)


async def configured_hook_sees_the_routes(_):
    """The hook is given the daemon's route names: the probe fixture
    refuses a configuration with no route named "probe", and with no
    [class.probe] section the problem is filed against the file alone."""
    path = write_config(["[core]", "plugins = websocket, probe",
                         "[transport.websocket]", "listen = 127.0.0.1:0"])
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", fixture_plugin_path()])
    check_eq(rc, 2, "exit code; stderr:\n" + err)
    check('%s: section [class.probe]: no route is named "probe"' % path
          in err, "stderr:\n" + err)
    with open(path, "a") as f:
        f.write("[route.probe]\nclass = probe\n")
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path", fixture_plugin_path()])
    check_eq(rc, 0, "exit code with the route; stderr:\n" + err)
    os.unlink(path)


TESTS = [
    ("--version prints 'torpord 0.1.0 (plugin ABI 1.1)' and exits 0",
     version),
    ("--help prints usage with every option and exits 0", help_),
    ("--check-config accepts a complete good config", check_config_good),
    ("the example config packaging/torpor.conf is valid",
     example_config_is_valid),
    ("--check-config fails on a missing config file, naming it",
     check_config_missing_file),
    ("--plugin-path overrides the config's plugin_path",
     plugin_path_option_overrides_config),
    ("plugin_path in the config is used without --plugin-path",
     plugin_path_from_config),
    ("a plugin's configured hook: each problem at its key's line, at "
     "--check-config and at start", configured_hook_reports_filed_by_key),
    ("a plugin's configured hook is given the daemon's routes",
     configured_hook_sees_the_routes),
] + [
    ("--check-config rejects %s at FILE:%d" % (what, n),
     _check_config_rejects(lines, n, words))
    for what, lines, n, words in BAD_CONFIGS
] + [
    ("startup rejects %s at FILE:%d" % (what, n),
     _startup_rejects(lines, n, words))
    for what, lines, n, words in BAD_CONFIGS
] + [
    ("a config setting only [core] log_level serves /relay/ and /echo/",
     minimal_config_serves),
    ("SIGTERM closes every client with 1001 and exits 0",
     _signal_closes_with_1001(signal.SIGTERM)),
    ("SIGINT closes every client with 1001 and exits 0",
     _signal_closes_with_1001(signal.SIGINT)),
    ("SIGTERM with clients that never answer: exit after "
     "shutdown_timeout_ms, their records freed",
     shutdown_timeout_frees_unanswered),
    ("SIGHUP re-reads log_level: debug then back to notice",
     sighup_reloads_log_level),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
