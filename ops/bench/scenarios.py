"""The scenarios of ``hookyard bench``. Each returns one JSON-ready dict."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from contracts import EventEnvelope, EventFields, Source, encode_batch
from contracts.topology import EVENTS
from hookyard.config import available_cpus
from hookyard.errors import HookyardError
from ops import samples
from ops.bench.fleet import Fleet, Sampler, bench_database, bench_vhost
from ops.bench.load import prepare_wrk, run_paced, run_wrk
from ops.bench.requests import body_bytes
from ops.broker import ConfirmingPublisher, purge

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    database_url: str
    amqp_url: str
    directory: Path
    port: int = 8077
    duration: float = 60.0
    connections: int = 256
    wrk_threads: int = 2
    worker_threads: int = 8
    worker_processes: int = field(default_factory=available_cpus)
    max_rate: int = 9000
    rate: float = 2000.0
    soak_duration: float = 600.0
    soak_rate: float = 1000.0
    drain_events: int = 200_000
    drain_batch: int = 100
    #: The heartbeats scenario's steady phase (the issue asks 5 minutes).
    heartbeat_duration: float = 60.0
    #: The period of the instances' check in that phase (they report every 10 s): each moves to
    #: ``grace`` when its next report is not applied within this.
    heartbeat_check_period: float = 10.0
    #: The variants of a domain scenario to run (keys, errors, heartbeats); empty: every one.
    variants: tuple[str, ...] = ()


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def source_state() -> dict[str, Any]:
    """The commit checked out, and how many paths of the work tree differ from it.

    The fleet runs the work tree, so a result measured beside uncommitted changes says so.
    """

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=30).stdout

    try:
        head = git("rev-parse", "--short=12", "HEAD").strip()
        changed = git("status", "--porcelain").splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"head": head, "uncommitted_paths": len(changed)}


def services() -> dict[str, psutil.Process]:
    """PostgreSQL's postmaster and RabbitMQ's Erlang VM, for CPU and memory alongside the fleet."""
    found: dict[str, psutil.Process] = {}
    for process in psutil.process_iter(["name", "ppid"]):
        name = process.info["name"] or ""
        try:
            if name == "postgres" and psutil.Process(process.info["ppid"]).name() != "postgres":
                found["postgresql"] = process
            elif (
                name.startswith("beam")
                and "rabbit" in process.cmdline()
                # The node, not a short-lived rabbitmqctl on an Erlang VM of its own.
                and ("rabbitmq" not in found or "boot" in process.cmdline())
            ):
                found["rabbitmq"] = process
        except psutil.Error:
            continue
    return found


def _fleet(options: Options, **env: str) -> Fleet:
    return Fleet(
        bench_database(options.database_url),
        bench_vhost(options.amqp_url),
        options.directory,
        options.port,
        **env,
    )


def _throughput(
    scenario: str, size: str, options: Options, progress: Progress, *, worker: bool, **env: str
) -> dict[str, Any]:
    fleet = _fleet(options, **env)
    try:
        processes = {"web": fleet.start_web()}
        if worker:
            processes["worker"] = fleet.start_worker(options.worker_threads, options.worker_processes)
            time.sleep(2)  # consumers attach
        prepared = prepare_wrk(
            size, duration=options.duration, threads=options.wrk_threads, max_rate=options.max_rate,
            directory=options.directory,
        )  # fmt: skip
        progress(f"{scenario}/{size}: {options.duration:g} s of wrk, {options.connections} connections")
        with Sampler({**processes, **services()}) as sampler:
            before, started = fleet.stored(), time.monotonic()
            load = run_wrk(
                fleet.url, prepared, duration=options.duration, connections=options.connections,
                threads=options.wrk_threads,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            during = fleet.stored() - before
        accepted = load["requests"] - load["non_2xx"] - sum(load["errors"].values())
        result: dict[str, Any] = {
            "accepted_per_s": round(accepted / (load["duration_us"] / 1e6), 1),
            "latency_ms": {
                key: round(value / 1000, 2) for key, value in load["latency_us"].items() if key != "mean"
            },
            "requests": load["requests"],
            "non_2xx": load["non_2xx"],
            "socket_errors": load["errors"],
            **sampler.summary(),
        }
        if worker:
            progress(f"{scenario}/{size}: draining what was accepted")
            stored, drain_s = fleet.wait_stored(accepted, timeout=600)
            result.update(
                events_per_s=round(during / elapsed, 1),
                stored_after_drain=stored,
                drain_after_load_s=round(drain_s, 1),
            )
        else:
            result["events_per_s"] = result["accepted_per_s"]
        return result
    finally:
        fleet.stop_all()


def e2e(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """Signed deliveries over HTTP → 202 → RabbitMQ → worker → committed rows, as fast as it goes."""
    return _throughput("e2e", size, options, progress, worker=True)


def naive(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """The yardstick: one synchronous publisher confirm per request, one INSERT per message."""
    return _throughput(
        "naive",
        size,
        options,
        progress,
        worker=True,
        HOOKYARD_PUBLISH_BATCH="1",
        HOOKYARD_PUBLISH_IN_FLIGHT="1",
    )


def ingest(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """The web tier and the broker alone: 202s per second, no worker."""
    return _throughput("ingest", size, options, progress, worker=False)


def _events(size: str, count: int) -> list[EventEnvelope]:
    if size == "small":
        payload, source, event_type = samples.slack_message(), Source.SLACK, "message"
    else:
        build = samples.github_star if size == "medium" else samples.github_issue_opened
        event_type, payload, _ = build()
        source = Source.GITHUB
    text, tag, now = payload.decode(), uuid.uuid4().hex[:8], datetime.now(UTC)
    fields = (
        EventFields(repository="hookyard/fleet", actor="octocat")
        if source is Source.GITHUB
        else EventFields()
    )
    return [
        EventEnvelope(
            source=source, delivery_id=f"drain-{tag}-{index}", event_type=event_type, action="created",
            received_at=now, payload=text, fields=fields,
        )
        for index in range(count)
    ]  # fmt: skip


def _copy_ceiling(database_url: str, events: list[EventEnvelope]) -> float:
    """Rows/s of a bare COPY of the same rows into ``events`` (no ledger, no Python per row)."""
    columns = (
        "source",
        "delivery_id",
        "received_at",
        "event_type",
        "action",
        "repository",
        "actor",
        "payload",
    )
    buffer = io.StringIO()
    for event in events:
        values = [
            event.source.value, event.delivery_id, event.received_at.isoformat(), event.event_type,
            event.action or "", event.fields.repository or "", event.fields.actor or "", event.payload,
        ]  # fmt: skip
        buffer.write(",".join('"' + value.replace('"', '""') + '"' for value in values) + "\n")
    data = buffer.getvalue().encode()
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE events, event_keys")
        conn.commit()
        started = time.monotonic()
        with conn.cursor().copy(f"COPY events ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start : start + (1 << 20)])
        conn.commit()
        return len(events) / (time.monotonic() - started)


def drain(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """A queue pre-filled with events → committed rows, against a bare COPY of the same rows."""
    fleet = _fleet(options)
    events = _events(size, options.drain_events)
    try:
        progress(f"drain/{size}: publishing {len(events)} events in messages of {options.drain_batch}")
        with ConfirmingPublisher(fleet.env["AMQP_URL"]) as broker:
            for start in range(0, len(events), options.drain_batch):
                broker.publish(EVENTS.queue, encode_batch(events[start : start + options.drain_batch]))
        progress(f"drain/{size}: starting the worker")
        worker_started = datetime.now(UTC)
        worker = fleet.start_worker(options.worker_threads, options.worker_processes)
        with Sampler({"worker": worker, **services()}) as sampler:
            stored = fleet.wait_drained(
                len(events),
                timeout=1800,
                progress=lambda n, total: progress(f"drain/{size}: {n}/{total} stored"),
            )
        fleet.stop("worker")
        timing = fleet.write_timing(worker_started)  # before the COPY ceiling replaces the rows
        spanned, span, since_start = timing["rows"], timing["span_s"], timing["since_s"]
        worker_rate = spanned / span if span > 0 else 0.0
        progress(f"drain/{size}: measuring a bare COPY of the same rows")
        copy_rate = _copy_ceiling(fleet.database_url, events)
        return {
            # First to last write on the database's clock; the rate from the worker's launch
            # includes its start-up (imports, connections, consumers attaching).
            "events_per_s": round(worker_rate, 1),
            "events_per_s_from_launch": round(spanned / since_start, 1) if since_start > 0 else 0.0,
            # How long each event of the backlog waited for its commit after the worker launched.
            "committed_after_launch_ms": timing["committed_after_ms"],
            "stored": stored,
            "copy_ceiling_per_s": round(copy_rate, 1),
            "fraction_of_copy": round(worker_rate / copy_rate, 3),
            "events_per_message": options.drain_batch,
            **sampler.summary(),
        }
    finally:
        fleet.stop_all()


def _freshness(database_url: str) -> dict[str, float]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
            " (ORDER BY extract(epoch FROM stored_at - received_at)), max(stored_at - received_at)"
            " FROM events"
        ).fetchone()
    assert row is not None
    p50, p95, p99 = (value * 1000 for value in row[0])
    return {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2),
            "max": round(row[1].total_seconds() * 1000, 2)}  # fmt: skip


def _web_and_worker(fleet: Fleet, options: Options) -> dict[str, psutil.Process]:
    processes = {
        "web": fleet.start_web(),
        "worker": fleet.start_worker(options.worker_threads, options.worker_processes),
    }
    time.sleep(2)  # the worker's consumers attach
    return processes


def latency(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """A steady rate: 202 latency percentiles, and received → committed freshness of the same events."""
    fleet = _fleet(options)
    try:
        processes = _web_and_worker(fleet, options)
        progress(f"latency/{size}: {options.rate:g} requests/s for {options.duration:g} s")
        with Sampler({**processes, **services()}) as sampler:
            load = run_paced(fleet.url, size, rate=options.rate, duration=options.duration)
        fleet.wait_stored(load["requests"] - load["non_2xx"], timeout=120)
        return {
            "events_per_s": load["achieved_rate"],
            "target_rate": options.rate,
            "latency_ms": {key: round(value, 2) for key, value in load["latency_ms"].items()},
            "freshness_ms": _freshness(fleet.database_url),
            "requests": load["requests"],
            "non_2xx": load["non_2xx"],
            **sampler.summary(),
        }
    finally:
        fleet.stop_all()


def soak(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """A long steady rate: does the web or worker RSS grow?"""
    fleet = _fleet(options)
    try:
        processes = _web_and_worker(fleet, options)
        progress(f"soak/{size}: {options.soak_rate:g} requests/s for {options.soak_duration:g} s")
        with Sampler(processes, interval=5) as sampler:
            load = run_paced(fleet.url, size, rate=options.soak_rate, duration=options.soak_duration)
        growth = {}
        for name, series in sampler.series.items():
            # After a minute of warm-up, compare the second minute with the last one.
            second = [rss for at, rss in series if 60 <= at < 120]
            last = [rss for at, rss in series if at >= series[-1][0] - 60]
            if second and last:
                growth[name] = round((sum(last) / len(last) - sum(second) / len(second)) / 2**20, 1)
        return {
            "events_per_s": load["achieved_rate"],
            "latency_ms": {key: round(value, 2) for key, value in load["latency_ms"].items()},
            "requests": load["requests"],
            "non_2xx": load["non_2xx"],
            "rss_growth_mb_second_to_last_minute": growth,
            **sampler.summary(),
        }
    finally:
        fleet.stop_all()


def _paced_phase(fleet: Fleet, web: psutil.Process, size: str, options: Options) -> dict[str, Any]:
    with Sampler({"web": web}) as sampler:
        load = run_paced(fleet.url, size, rate=options.rate, duration=options.duration)
    return {
        "achieved_rate": load["achieved_rate"],
        "latency_ms": {key: round(value, 2) for key, value in load["latency_ms"].items()},
        "requests": load["requests"],
        "non_2xx": load["non_2xx"],
        "web_cpu_percent_of_one_core": sampler.cpu_percent["web"],
    }


def edge(size: str, options: Options, progress: Progress) -> dict[str, Any]:
    """The edge limits under attack: 202 latency at a steady rate, alone and beside hostile clients.

    Two phases of ``duration`` each, in one run against one web process (no worker): the paced
    client alone, then the same client while ``ops/bench/attack.py`` holds 1,000 slow
    connections (each re-opened as soon as the server times it out) and sends a 1 MiB header
    ten times a second. The verdict compares the two 202 p99s.
    """
    fleet = _fleet(options)
    attacker: subprocess.Popen[str] | None = None
    try:
        web = fleet.start_web()
        progress(f"edge/{size}: {options.rate:g} requests/s for {options.duration:g} s, unloaded")
        unloaded = _paced_phase(fleet, web, size, options)
        purge(fleet.env["AMQP_URL"])  # both phases publish into an empty queue (there is no worker)
        progress(f"edge/{size}: opening {EDGE_SLOW_CLIENTS} slow connections and a giant-header sender")
        attacker = subprocess.Popen(
            [sys.executable, "-m", "ops.bench.attack", "--port", str(options.port),
             "--slow", str(EDGE_SLOW_CLIENTS), "--header-bytes", str(EDGE_HEADER_BYTES),
             "--giant-rate", str(EDGE_GIANT_RATE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert attacker.stdin is not None
        assert attacker.stdout is not None
        if attacker.stdout.readline().strip() != "ready":
            raise HookyardError("the edge attackers did not start; see the lines above")
        progress(f"edge/{size}: {options.rate:g} requests/s for {options.duration:g} s, under attack")
        with Sampler({"web": web, **services()}) as sampler:
            loaded = _paced_phase(fleet, web, size, options)
        out, _ = attacker.communicate(timeout=120)  # closes its stdin: it stops and reports
        attack = {"giant_per_s": EDGE_GIANT_RATE, **json.loads(out.strip().splitlines()[-1])}
        return {
            "events_per_s": loaded["achieved_rate"],
            "target_rate": options.rate,
            "latency_ms": loaded["latency_ms"],
            "unloaded": unloaded,
            "loaded": loaded,
            "p99_ratio": round(loaded["latency_ms"]["p99"] / max(unloaded["latency_ms"]["p99"], 0.001), 2),
            "attack": {"slow_clients": EDGE_SLOW_CLIENTS, "header_bytes": EDGE_HEADER_BYTES, **attack},
            **sampler.summary(),
        }
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()
        fleet.stop_all()


#: The edge scenario's hostile clients: slow connections held open, and giant headers (size, rate).
EDGE_SLOW_CLIENTS = 1000
EDGE_HEADER_BYTES = 1 << 20
EDGE_GIANT_RATE = 10

SCENARIOS: dict[str, Callable[[str, Options, Progress], dict[str, Any]]] = {
    "e2e": e2e, "ingest": ingest, "drain": drain, "latency": latency, "soak": soak, "naive": naive,
    "edge": edge,
}  # fmt: skip
__all__ = ["SCENARIOS", "Options", "body_bytes", "machine", "source_state"]
