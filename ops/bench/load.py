"""Load generators: wrk for open throttle, a paced asyncio client for a steady rate.

wrk (C, event loop) costs the fleet the least CPU at thousands of requests a second. The paced
client sends on a fixed schedule and measures each latency from the moment the request was due,
so a stall is charged to every request it delayed (no coordinated omission); it reports the
rate it actually achieved, which shows whether it kept up.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from hookyard.errors import HookyardError
from ops.bench.requests import generate


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``samples`` (nearest rank), in the samples' unit."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1]}


def write_requests(requests: Iterable[bytes], threads: int, prefix: Path) -> tuple[str, str, int]:
    """wrk's file mode: request ``n`` goes to thread ``n % threads``. Returns (mode, prefix, count)."""
    handles = [open(f"{prefix}.{index}", "wb") for index in range(threads)]  # noqa: SIM115 - closed below
    count = 0
    try:
        for count, request in enumerate(requests, 1):
            handles[(count - 1) % threads].write(b"%08d" % len(request) + request)
    finally:
        for handle in handles:
            handle.close()
    return "file", str(prefix), count


def write_template(template: bytes, prefix: Path) -> tuple[str, str]:
    """wrk's template mode: every occurrence of the placeholder becomes the request's counter."""
    Path(f"{prefix}.template").write_bytes(template)
    return "template", str(prefix)


def write_request_files(size: str, total: int, threads: int, directory: Path) -> tuple[str, str]:
    """Prepare wrk's input; returns (mode, prefix) for ``ops/bench/wrk.lua``."""
    prefix = directory / f"requests-{size}"
    if size == "small":
        mode, name, _ = write_requests(generate(size, total), threads, prefix)
        return mode, name
    template = next(generate(size, 1, tag="SPLICE"))
    head, _, tail = template.partition(b"SPLICE-000000000")
    # A unique run tag keeps ids apart from any earlier run on the same database.
    Path(f"{prefix}.head").write_bytes(head + time.strftime("%H%M%S").encode() + b"-")
    Path(f"{prefix}.tail").write_bytes(tail)
    return "splice", str(prefix)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise HookyardError(
            "wrk is not installed: `apt-get install wrk` (or `make bench`, which installs it)"
        )


def prepare_wrk(
    size: str, *, duration: float, threads: int, max_rate: int, directory: Path
) -> tuple[str, str]:
    """Write wrk's requests before the clock starts (signing ~10^5 Slack requests takes seconds)."""
    require_wrk()
    return write_request_files(size, int(max_rate * duration * 1.2), threads, directory)


def run_wrk(
    url: str, prepared: tuple[str, str], *, duration: float, connections: int, threads: int
) -> dict[str, Any]:
    """Run wrk against ``url`` for ``duration`` seconds; its summary as a dict."""
    wrk = shutil.which("wrk") or "wrk"
    mode, prefix = prepared
    script = resources.files("ops.bench").joinpath("wrk.lua")
    completed = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s", "-s", str(script),
         url, "--", mode, prefix],
        capture_output=True, text=True, timeout=duration + 120, check=False,
    )  # fmt: skip
    summary = next((line for line in completed.stdout.splitlines() if line.startswith("{")), None)
    if completed.returncode != 0 or summary is None:
        raise HookyardError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    result: dict[str, Any] = json.loads(summary)
    result["non_2xx"] = result["errors"].pop("status")
    return result


async def _paced(
    host: str,
    port: int,
    requests: Iterator[bytes],
    rate: float,
    connections: int,
    *,
    ok: tuple[bytes, ...] = (b"HTTP/1.1 202",),
    label: Callable[[int], str] | None = None,
    by_label: dict[str, list[float]] | None = None,
) -> tuple[list[float], int, int, float]:
    """Send ``requests`` at ``rate``/s over ``connections`` keep-alive connections.

    A response whose status line starts with none of ``ok`` counts as a failure. With ``label``,
    each latency is also added to ``by_label[label(n)]`` for the ``n``-th request.
    """
    queue: asyncio.Queue[tuple[float, bytes, int]] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                due, request, number = await queue.get()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latency = time.perf_counter() - due
                latencies.append(latency)
                if label is not None and by_label is not None:
                    by_label.setdefault(label(number), []).append(latency)
                if not status_line.startswith(ok):
                    failures += 1
                queue.task_done()
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    started = time.perf_counter()
    sent = 0
    for number, request in enumerate(requests):
        sent += 1
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, request, number))
    await queue.join()
    elapsed = time.perf_counter() - started
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return latencies, failures, sent, elapsed


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    """Send one request on a keep-alive connection: its (status line, body)."""
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status_line, await reader.readexactly(length)


#: A pair of dependent requests: the first, and what makes the second from the first's answer
#: (None when the first's answer does not allow one).
Pair = tuple[bytes, Callable[[bytes], bytes | None]]


async def _paced_pairs(
    host: str, port: int, pairs: Iterator[Pair], rate: float, connections: int, *, ok: tuple[bytes, bytes]
) -> dict[str, Any]:
    """Start a pair every ``1/rate`` s; each pair's second request follows its first's answer."""
    queue: asyncio.Queue[tuple[float, Pair]] = asyncio.Queue()
    first_ms: list[float] = []
    second_ms: list[float] = []
    pair_ms: list[float] = []
    failures = {"first": 0, "second": 0}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                due, (first, then) = await queue.get()
                status, body = await _exchange(reader, writer, first)
                answered = time.perf_counter()
                first_ms.append(1000 * (answered - due))
                second = then(body) if status.startswith(ok[0]) else None
                if second is None:
                    failures["first"] += 1
                else:
                    status, _ = await _exchange(reader, writer, second)
                    done = time.perf_counter()
                    second_ms.append(1000 * (done - answered))
                    pair_ms.append(1000 * (done - due))
                    if not status.startswith(ok[1]):
                        failures["second"] += 1
                queue.task_done()
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    started = time.perf_counter()
    sent = 0
    for number, pair in enumerate(pairs):
        sent += 1
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, pair))
    await queue.join()
    elapsed = time.perf_counter() - started
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return {
        "pairs": sent,
        "achieved_rate": round(sent / elapsed, 1),
        "completed_per_s": round(len(pair_ms) / elapsed, 1),
        "failures": failures,
        "latency_ms": percentiles(pair_ms),
        "first_latency_ms": percentiles(first_ms),
        "second_latency_ms": percentiles(second_ms),
    }


def run_paced_pairs(
    url: str, pairs: Iterator[Pair], *, rate: float, connections: int = 64, ok: tuple[bytes, bytes]
) -> dict[str, Any]:
    """Pairs of dependent requests at a steady ``rate`` of pairs/s; latencies in ms.

    A pair's latency runs from its due time to its second answer (a stall counts against every
    pair it delayed); the first request's from its due time, the second's from the first's answer.
    ``ok``: the status lines (prefixes) each answer must start with.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    return asyncio.run(_paced_pairs(host, int(port), pairs, rate, connections, ok=ok))


def run_paced(url: str, size: str, *, rate: float, duration: float, connections: int = 64) -> dict[str, Any]:
    """A steady ``rate`` for ``duration`` seconds; latencies in ms from each request's due time."""
    requests = generate(size, int(rate * duration))  # made as they go: Slack stamps stay fresh
    return run_paced_requests(url, requests, rate=rate, connections=connections)


def run_paced_requests(
    url: str,
    requests: Iterator[bytes],
    *,
    rate: float,
    connections: int = 64,
    ok: tuple[bytes, ...] = (b"HTTP/1.1 202",),
    label: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """Send every request of ``requests`` (pulled at its due time) at ``rate``/s; see :func:`run_paced`.

    With ``label`` (request number → name), ``latency_ms_by_label`` has the percentiles of each name.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    by_label: dict[str, list[float]] = {}
    latencies, failures, sent, elapsed = asyncio.run(
        _paced(host, int(port), requests, rate, connections, ok=ok, label=label, by_label=by_label)
    )
    result: dict[str, Any] = {
        "requests": sent,
        "achieved_rate": round(sent / elapsed, 1),
        "non_2xx": failures,
        "latency_ms": {key: value * 1000 for key, value in percentiles(latencies).items()},
    }
    if label is not None:
        result["latency_ms_by_label"] = {
            name: {key: value * 1000 for key, value in percentiles(found).items()}
            for name, found in by_label.items()
        }
    return result
