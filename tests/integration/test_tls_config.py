#!/usr/bin/python3
"""wss:// configuration and reload: bad certificate and key files are
refused by --check-config and at startup with one line naming the file and
OpenSSL's reason; SIGHUP gives new connections a new pair while existing
ones keep theirs, and a bad new pair is logged and changes nothing.

Each test runs its own torpord (or none), on certificates made for this
run with the openssl command.
"""

import os
import re
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, close_all, connect, recv,  # noqa: E402
                     Daemon, run_cli)
import tls_util  # noqa: E402
from tls_util import install_pair, ssl_object, wait_log, wss  # noqa: E402

CERTS = tls_util.Certs()
CERT1, KEY1 = CERTS.server("one", 0x1001, "torpor server one")
CERT2, KEY2 = CERTS.server("two", 0x2002, "torpor server two")
JUNK = CERTS.path("junk.pem")
with open(JUNK, "w") as f:
    f.write("this is not PEM\n")
MISSING = CERTS.path("no-such-file.pem")


def config_lines(cert, key, listen="127.0.0.1:0", listen_tls="127.0.0.1:0",
                 key_first=False, extra=()):
    tls = []
    if cert is not None:
        tls.append("tls_certificate = %s" % cert)
    if key is not None:
        tls.append("tls_private_key = %s" % key)
    if key_first:
        tls.reverse()
    return (["[core]", "log_level = notice",
             "plugins = websocket, relay, echo", "shutdown_timeout_ms = 5000",
             "", "[transport.websocket]", "listen = %s" % listen,
             "listen_tls = %s" % listen_tls] + tls + list(extra)
            + ["", "[route.relay]", "class = relay", "", "[route.echo]",
               "class = echo"])


def write_config(lines):
    fd, path = tempfile.mkstemp(prefix="torpor-", suffix=".conf",
                                dir=harness.SCRATCH)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def line_of(lines, prefix):
    return next(i for i, l in enumerate(lines, 1) if l.startswith(prefix))


# (what, config lines, key whose line is named, words the line must hold)
BAD = [
    ("a missing certificate file",
     config_lines(MISSING, KEY1), "tls_certificate",
     [MISSING, "No such file or directory"]),
    ("a certificate file that is not PEM",
     config_lines(JUNK, KEY1), "tls_certificate",
     ['could not load certificate "%s"' % JUNK, "no start line"]),
    ("a missing private key file",
     config_lines(CERT1, MISSING), "tls_private_key",
     [MISSING, "No such file or directory"]),
    ("a certificate given as the private key",
     config_lines(CERT1, CERT1), "tls_private_key",
     ['could not load private key "%s"' % CERT1, "no PEM private key"]),
    ("a private key that does not match the certificate",
     config_lines(CERT1, KEY2), "tls_private_key",
     ['private key "%s" does not match certificate "%s"' % (KEY2, CERT1),
      "key values mismatch"]),
    ("a mismatched pair with the key first",
     config_lines(CERT1, KEY2, key_first=True), "tls_certificate",
     ['private key "%s" does not match certificate "%s"' % (KEY2, CERT1),
      "key values mismatch"]),
    ("tls_min_version = 1.1",
     config_lines(CERT1, KEY1, extra=["tls_min_version = 1.1"]),
     "tls_min_version", ["expected 1.2 or 1.3"]),
    ("a listen_tls address without a port",
     config_lines(CERT1, KEY1, listen_tls="127.0.0.1"), "listen_tls",
     ["expected HOST:PORT"]),
    # Seen only once every key is in (the configured hook), from here on.
    ("listen_tls without tls_certificate and tls_private_key",
     config_lines(None, None), "listen_tls",
     ['"listen_tls" in section [transport.websocket]',
      "listen_tls needs tls_certificate and tls_private_key"]),
    ("listen_tls without tls_private_key",
     config_lines(CERT1, None), "listen_tls",
     ["listen_tls needs tls_certificate and tls_private_key"]),
    ("empty listen and listen_tls",
     config_lines(CERT1, KEY1, listen="", listen_tls=""), "listen",
     ['"listen" in section [transport.websocket]',
      "listen and listen_tls are both empty"]),
]


def _rejects(lines, key, words, check_only):
    async def run(_):
        path = write_config(lines)
        args = ["--config", path, "--plugin-path",
                harness.env_path("TORPOR_PLUGIN_PATH")]
        if check_only:
            args.append("--check-config")
        rc, out, err = run_cli(args)
        check_eq(rc, 2, "exit code; stderr:\n%s" % err)
        check(not re.search(r"listening on", err),
              "torpord started listening:\n" + err)
        want = "%s:%d: " % (path, line_of(lines, key + " ="))
        bad = [l for l in err.splitlines() if re.search(r" ERR core: \S+:\d+:",
                                                         l)]
        check_eq(len(bad), 1, "FILE:LINE error lines; stderr:\n%s" % err)
        check(want in bad[0], "the error line does not name %r: %r"
              % (want, bad[0]))
        for word in words:
            check(word in bad[0], "the error line does not hold %r: %r"
                  % (word, bad[0]))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
        os.unlink(path)
    return run


async def check_config_good(_):
    path = write_config(config_lines(CERT1, KEY1,
                                     extra=["tls_min_version = 1.3"]))
    rc, out, err = run_cli(["--config", path, "--check-config",
                            "--plugin-path",
                            harness.env_path("TORPOR_PLUGIN_PATH")])
    check_eq(rc, 0, "exit code; stderr:\n%s" % err)
    check("is valid" in err, "no 'is valid' line:\n" + err)


async def tls_only(_):
    d = Daemon("\n".join(config_lines(CERT1, KEY1, listen="")) + "\n")
    try:
        d.start()
        check_eq(len(re.findall(r"listening on", d.log())), 1,
                 "listeners; log:\n" + d.log())
        check(tls_util.TLS_LISTEN_RE.search(d.log()),
              "the one listener is not TLS:\n" + d.log())
        ws = await wss_to(d, "/echo/" + harness.unique())
        await ws.send("only tls")
        check_eq(await recv(ws), "only tls", "echo")
        await close_all(ws)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


async def wss_to(d, path):
    return await wss(d, CERTS, path)


def reload_daemon():
    """A daemon whose pair lives in files of its own, as pair one."""
    d = Daemon("[core]\n")  # rewritten below, once its folder exists
    cert = os.path.join(d.dir, "server.pem")
    key = os.path.join(d.dir, "server.key")
    install_pair(CERT1, KEY1, cert, key)
    d.write_config("\n".join(config_lines(cert, key)) + "\n")
    d.start()
    return d, cert, key


def peer(ws):
    pc = ssl_object(ws).getpeercert()
    subject = dict(x[0] for x in pc["subject"])
    return pc["serialNumber"], subject.get("commonName")


async def sighup(d, pattern):
    mark = len(d.log())
    d.send_signal(signal.SIGHUP)
    return wait_log(d, mark, pattern), mark


async def reload_new_pair(_):
    d, cert, key = reload_daemon()
    try:
        room = "/relay/" + harness.unique()
        old = await wss_to(d, room)
        check_eq(peer(old), ("1001", "torpor server one"), "first pair")

        install_pair(CERT2, KEY2, cert, key)
        line, mark = await sighup(d, r"reloaded TLS certificate")
        check(re.match(r"^\S+Z NOTICE ", line), "not NOTICE: %r" % line)
        check('serial 2002' in line and "CN=torpor server two" in line,
              "the reload line does not describe pair two: %r" % line)
        wait_log(d, mark, r"reloaded 1 plugin, 0 kept their previous state")

        new = await wss_to(d, room)
        check_eq(peer(new), ("2002", "torpor server two"),
                 "pair of a connection after the reload")
        # The connection from before goes on, on its own session.
        await old.send("from before")
        check_eq(await recv(new), "from before", "old to new")
        await new.send("from after")
        check_eq(await recv(old), "from after", "new to old")
        plain = await connect(d, room)
        await plain.send("plain")
        check_eq(await recv(old), "plain", "plain to old")
        check_eq(await recv(new), "plain", "plain to new")
        await close_all(old, new, plain)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


async def reload_bad_pair_keeps_old(_):
    d, cert, key = reload_daemon()
    try:
        room = "/relay/" + harness.unique()
        before = await wss_to(d, room)
        for what, src_cert, src_key, words in (
                ("a certificate that is not PEM", JUNK, KEY2,
                 ['could not load certificate "%s"' % cert,
                  "no start line"]),
                ("a key of another pair", CERT2, KEY1,
                 ['private key "%s" does not match certificate "%s"'
                  % (key, cert), "key values mismatch"])):
            install_pair(src_cert, src_key, cert, key)
            line, mark = await sighup(d, r"could not reload TLS certificate")
            check(re.match(r"^\S+Z ERR ", line), "not ERR: %r" % line)
            for word in words + ["keeping the previous pair"]:
                check(word in line, "%s: the line lacks %r: %r"
                      % (what, word, line))
            wait_log(d, mark, r"reloaded 0 plugins, 1 kept their previous "
                     r"state")
            after = await wss_to(d, room)
            check_eq(peer(after), ("1001", "torpor server one"),
                     "pair after a reload with %s" % what)
            await before.send(what)
            check_eq(await recv(after), what, "relay after a bad reload")
            await close_all(after)
        # A good pair again is taken.
        install_pair(CERT2, KEY2, cert, key)
        await sighup(d, r"reloaded TLS certificate")
        after = await wss_to(d, room)
        check_eq(peer(after), ("2002", "torpor server two"),
                 "pair after the good reload")
        await close_all(before, after)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


TESTS = [
    ("--check-config accepts a good TLS config", check_config_good),
] + [
    ("--check-config refuses %s, on its line, with the reason" % what,
     _rejects(lines, key, words, True))
    for what, lines, key, words in BAD
] + [
    ("startup refuses %s, on its line" % what,
     _rejects(lines, key, words, False))
    for what, lines, key, words in BAD[:1] + BAD[4:5] + BAD[8:]
] + [
    ("an empty listen with listen_tls serves wss only", tls_only),
    ("SIGHUP: new connections get the new pair, an old one keeps working",
     reload_new_pair),
    ("SIGHUP with a bad new pair logs why and keeps the old one",
     reload_bad_pair_keeps_old),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
