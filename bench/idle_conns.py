#!/usr/bin/python3
"""idle_conns.py: open COUNT WebSocket connections into one room and keep
them idle, for bench/run-tls-memory.sh.

    idle_conns.py --uri wss://127.0.0.1:PORT/relay/ROOM --count 2000 \
        [--cafile root.pem] [--max-seconds 300]

Prints "open N" once every connection is open, then holds them, silent
(no pings), until it is killed or --max-seconds passes, and exits.  Opens
at most 64 at a time.  Needs Debian's python3-websockets.  Exits 1 with a
reason on stderr if a connection fails.
"""

import argparse
import asyncio
import ssl
import sys
import time

import websockets


async def open_one(uri, ctx, gate, conns):
    async with gate:
        ws = await websockets.connect(uri, ssl=ctx, compression=None,
                                      ping_interval=None, open_timeout=30,
                                      close_timeout=5)
    conns.append(ws)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--cafile")
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    if not 1 <= args.count <= 20000:
        sys.exit("idle_conns.py: --count must be from 1 to 20000")
    ctx = None
    if args.uri.startswith("wss://"):
        ctx = ssl.create_default_context(cafile=args.cafile)
    deadline = time.monotonic() + args.max_seconds
    gate = asyncio.Semaphore(64)
    conns = []
    tasks = [open_one(args.uri, ctx, gate, conns) for _ in range(args.count)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks),
                               max(1.0, deadline - time.monotonic()))
    except Exception as exc:  # any failure ends the run, with its reason
        sys.exit("idle_conns.py: %d of %d open, then: %r"
                 % (len(conns), args.count, exc))
    print("open %d" % len(conns), flush=True)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


if __name__ == "__main__":
    asyncio.run(main())
