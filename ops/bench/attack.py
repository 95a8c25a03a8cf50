"""Hostile clients for the ``edge`` scenario, in a process of their own.

Slow clients ("slowloris") hold connections open by sending a request head a line at a time and
never finishing it; when the server answers or closes one, it is opened again at once, so the
server always faces about ``--slow`` of them. They are first opened over ``--ramp`` seconds, as
a slowloris tool does, so that their timeouts fall due spread out rather than all at once. One
more client sends a giant header over and over, each on a new connection, ``--giant-rate``
times a second: a fixed load, because a client sending as fast as it can would measure how much
CPU the load generator takes from the server on a machine they share, not the server. They run
in their own process so that their CPU and GIL do not slow the paced client that measures
latency.

Run as ``python -m ops.bench.attack --port P``: it prints ``ready`` once every slow connection is
open, keeps attacking until its stdin closes, then prints one JSON line of what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from typing import Any

_SLOW_HEAD = b"POST /webhooks/slack HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"


class Tally:
    """What the attackers saw, by kind of client and outcome."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.open_slow = 0
        self.most_open_slow = 0
        self.giant_seconds: list[float] = []

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.giant_seconds)
        return {
            "outcomes": dict(self.outcomes),
            "most_slow_connections_open": self.most_open_slow,
            "giant_requests": len(ordered),
            "giant_answer_ms": {
                "p50": round(1000 * ordered[len(ordered) // 2], 2) if ordered else None,
                "max": round(1000 * ordered[-1], 2) if ordered else None,
            },
        }


def answer_status(answer: bytes) -> str:
    """``"408"`` from ``HTTP/1.1 408 …``; ``"closed"`` when the server closed without a word."""
    parts = answer.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 and answer.startswith(b"HTTP/") else "closed"


async def _slow_client(
    host: str, port: int, tally: Tally, opened: asyncio.Event, stop: asyncio.Event
) -> None:
    first = True
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            tally.outcomes["slow_connect_failed"] += 1
            await asyncio.sleep(0.1)
            continue
        tally.open_slow += 1
        tally.most_open_slow = max(tally.most_open_slow, tally.open_slow)
        if first:
            opened.set()
            first = False
        try:
            writer.write(_SLOW_HEAD)
            line = 0
            while not stop.is_set():
                try:
                    answer = await asyncio.wait_for(reader.read(4096), timeout=2.0)
                except TimeoutError:
                    line += 1
                    writer.write(b"X-Slow-%d: still coming\r\n" % line)  # one more line, never the end
                    continue
                tally.outcomes[f"slow_{answer_status(answer)}"] += 1
                break
        except OSError:
            tally.outcomes["slow_reset"] += 1
        finally:
            tally.open_slow -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _giant_client(
    host: str, port: int, *, header_bytes: int, rate: float, tally: Tally, stop: asyncio.Event
) -> None:
    filler = b"a" * header_bytes
    due = time.perf_counter()
    while not stop.is_set():
        due = max(due + 1 / rate, time.perf_counter())  # behind schedule: no burst to catch up
        await asyncio.sleep(due - time.perf_counter())
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            tally.outcomes["giant_connect_failed"] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            writer.write(b"POST /webhooks/slack HTTP/1.1\r\nHost: bench\r\nX-Giant: " + filler + b"\r\n\r\n")
            with contextlib.suppress(OSError):  # a server that stops reading resets the sending side
                await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), timeout=30)
            tally.outcomes[f"giant_{answer_status(answer)}"] += 1
        except (OSError, TimeoutError):
            tally.outcomes["giant_reset"] += 1
        finally:
            tally.giant_seconds.append(time.perf_counter() - started)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def attack(
    host: str, port: int, *, slow: int, ramp: float, header_bytes: int, giant_rate: float
) -> dict[str, Any]:
    """Attack until stdin closes; what was seen, as a dict."""
    loop = asyncio.get_running_loop()
    tally, stop = Tally(), asyncio.Event()
    tasks = []
    started = time.perf_counter()
    for number in range(slow):
        await asyncio.sleep(max(0.0, started + ramp * number / slow - time.perf_counter()))
        opened = asyncio.Event()
        tasks.append(asyncio.create_task(_slow_client(host, port, tally, opened, stop)))
        await opened.wait()
    giant = _giant_client(host, port, header_bytes=header_bytes, rate=giant_rate, tally=tally, stop=stop)
    tasks.append(asyncio.create_task(giant))
    print("ready", flush=True)  # the bench reads this line
    await loop.run_in_executor(None, sys.stdin.read)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow", type=int, default=1000, help="slow connections held open")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which they are first opened")
    parser.add_argument("--header-bytes", type=int, default=1 << 20, help="size of each giant header")
    parser.add_argument("--giant-rate", type=float, default=10.0, help="giant headers sent per second")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.slow + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    summary = asyncio.run(
        attack(
            args.host, args.port, slow=args.slow, ramp=args.ramp, header_bytes=args.header_bytes,
            giant_rate=args.giant_rate,
        )
    )  # fmt: skip
    print(json.dumps(summary), flush=True)  # the bench reads this line


if __name__ == "__main__":
    main()
