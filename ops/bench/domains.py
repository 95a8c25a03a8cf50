"""Scenarios of the project-facing domains: project keys (issue 9), errors (10), heartbeats (11), usage (12).

Each returns one result per variant, all measured in the same run so that every target compares
numbers taken minutes apart on the same machine (the CLI writes one JSON line per variant, with
the run's id in ``run``). Every variant starts from a fresh bench database and vhost; whatever it
needs (projects, keys, checks, subjects) is loaded with SQL before its processes start, so the
web processes load it with their key registry at start.

- ``keys``: ``/v1/deployments`` end to end under the operator token, then the same requests under
  10,000 project keys (request ``n`` under key ``n mod 10,000``), with the same 10,000 keys loaded
  in both runs. The bodies omit ``project`` in both, so under the token the events have no
  project, under a key its own.
- ``errors``: gzip Sentry envelopes of a ~7.5 KB Python exception event end to end: every event its
  own pattern (``distinct``), every event the same pattern (``hot``), and ``naive``: the distinct
  requests through the same stack with one report per message (HOOKYARD_PUBLISH_BATCH=1, one
  confirm at a time) and one report per transaction (HOOKYARD_STORE_GROUP_EVENTS=1). Stored
  reports are counted in ``error_occurrences``.
- ``heartbeats``: ``steady``: 10,000 instances each reporting every 10 s and 1,000 ping checks
  pinged every 10 s, from the paced client, with ``hookyard scheduler`` sweeping every 5 s;
  every accepted report must be applied, and received → committed freshness comes from the
  workers' ``hookyard_event_freshness_seconds``. ``sweep``: ``sweep_once`` over 100,000 subjects
  of which 1% are due. ``peak`` and ``naive``: heartbeats from wrk as fast as they go, and the
  same through the naive stack.
- ``usage``: CloudEvents end to end, batches of 100 (``batch``) and one per request on the naive
  stack (``naive``), two meters; ``usage-summary``: ``GET /v1/usage/summary`` at a steady rate over
  10 million records; ``reservations``: reserve + commit pairs at 1,000/s (``spread`` over 100
  hard budgets, ``hot`` on one).
"""

from __future__ import annotations

import gzip
import logging
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from ops.bench import histograms
from ops.bench.fleet import Autovacuum, Fleet, Sampler, bench_database
from ops.bench.load import (
    require_wrk,
    run_paced_pairs,
    run_paced_requests,
    run_wrk,
    write_requests,
    write_template,
)
from ops.bench.payloads import (
    RESERVED_RESOURCE,
    USAGE_EVENT_TYPE,
    Instance,
    cloudevents_template,
    deployment_body,
    deployment_requests,
    peak_heartbeats,
    reservation_pairs,
    sentry_requests,
    steady_requests,
    steady_schedule,
)
from ops.bench.requests import INGEST_TOKEN
from ops.bench.scenarios import Options, Progress, _fleet, services
from ops.bench.seed import (
    hard_budgets,
    make_keys,
    projects_with_keys,
    simple_checks,
    sweep_subjects,
    usage_budgets,
    usage_history,
    usage_meters,
)

#: The naive same-stack pipeline: one item per message, each confirmed before the next is
#: published, and one message per transaction (each transaction holds one item: one upsert each).
NAIVE_ENV = {
    "HOOKYARD_PUBLISH_BATCH": "1",
    "HOOKYARD_PUBLISH_IN_FLIGHT": "1",
    "HOOKYARD_STORE_GROUP_EVENTS": "1",
}

#: The naive stack accepts far faster than it stores: its rate is the window's, and waiting for its
#: backlog (minutes) after the window proves nothing more. The drain after it stops here.
NAIVE_DRAIN_S = 60.0

KEY_COUNT = 10_000
KEYS_PER_PROJECT = 10
#: Envelopes are gzip-compressed one by one before the run (~130 µs each): the most a run prepares
#: is this rate times its duration (+20%). ``repeated_requests`` says when wrk ran out.
ERRORS_MAX_RATE = 6_000

HEARTBEAT_PROJECTS = 100
INSTANCES_PER_PROJECT = 100
PING_CHECKS_PER_PROJECT = 10
#: Every instance and ping check reports once per period.
HEARTBEAT_PERIOD = 10.0
#: Grace of the instances' check before ``down`` (its period is ``--heartbeat-check-period``).
INSTANCE_GRACE = timedelta(seconds=30)
PING_CHECK = (timedelta(minutes=1), timedelta(minutes=1))
SWEEP_SUBJECTS = 100_000
SWEEP_DUE_FRACTION = 0.01
FRESHNESS = "hookyard_event_freshness_seconds"

#: Checks applied reports are counted by: their ledger keys.
CHECK_KEYS = "SELECT count(*) FROM event_keys WHERE source = 'check'"
#: CloudEvents per request of the usage scenario's batches, and the connections that send them:
#: 256 connections of 100-event batches keep 25,600 events in flight, and the web process answers
#: most with 503 once RabbitMQ's confirms wait behind them past HOOKYARD_CONFIRM_TIMEOUT (223 of
#: 412 requests in a 5 s try); 8 or 32 batching clients sent as many events/s with none refused.
USAGE_BATCH = 100
USAGE_BATCH_CONNECTIONS = 16


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _wanted(options: Options, variant: str) -> bool:
    return not options.variants or variant in options.variants


def _remove(prefix: str) -> None:
    """Delete a prepared request set (hundreds of MB) once its variants are done."""
    for path in Path(prefix).parent.glob(Path(prefix).name + ".*"):
        path.unlink(missing_ok=True)


def _start(fleet: Fleet, options: Options, *, scheduler: bool = False) -> dict[str, psutil.Process]:
    processes = {
        "web": fleet.start_web(),
        "worker": fleet.start_worker(options.worker_threads, options.worker_processes),
    }
    if scheduler:
        processes["scheduler"] = fleet.start_scheduler()
    time.sleep(2)  # the worker's consumers attach
    return processes


def _latency(load: dict[str, Any]) -> dict[str, float]:
    return {key: round(value / 1000, 2) for key, value in load["latency_us"].items() if key != "mean"}


def wrk_window(
    fleet: Fleet,
    processes: dict[str, psutil.Process],
    prepared: tuple[str, str],
    *,
    options: Options,
    progress: Progress,
    label: str,
    count: Callable[[], int],
    per_request: int = 1,
    prepared_requests: int | None = None,
    connections: int | None = None,
    drain_timeout: float = 300,
) -> dict[str, Any]:
    """wrk for ``duration``; ``count`` (items stored) read at both ends of the window, then drained.

    ``events_per_s`` is what was stored during the window; ``accepted_per_s`` what the web answered
    2xx. Every accepted request must become ``per_request`` stored items. ``connections``
    overrides ``options.connections``; the drain after the window is bounded by ``drain_timeout``.
    """
    connections = connections or options.connections
    progress(f"{label}: {options.duration:g} s of wrk, {connections} connections")
    with Sampler({**processes, **services()}) as sampler:
        before, started = count(), time.monotonic()
        load = run_wrk(
            fleet.url, prepared, duration=options.duration, connections=connections,
            threads=options.wrk_threads,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        during = count() - before
    accepted = load["requests"] - load["non_2xx"] - sum(load["errors"].values())
    progress(f"{label}: draining what was accepted ({during:,} of {accepted * per_request:,} stored)")
    stored, drain_s = fleet.wait_for(lambda: count() - before, accepted * per_request, timeout=drain_timeout)
    result: dict[str, Any] = {
        "events_per_s": round(during / elapsed, 1),
        "accepted_per_s": round(accepted / (load["duration_us"] / 1e6), 1),
        "latency_ms": _latency(load),
        "requests": load["requests"],
        "connections": connections,
        "non_2xx": load["non_2xx"],
        "socket_errors": load["errors"],
        "expected_stored": accepted * per_request,
        "stored_after_drain": stored,
        "drain_after_load_s": round(drain_s, 1),
        **sampler.summary(),
    }
    if prepared_requests is not None:
        result["prepared_requests"] = prepared_requests
        # Past the prepared set wrk starts over; a repeat is stored once, so not counted.
        result["repeated_requests"] = max(0, load["requests"] - prepared_requests)
    return result


# --- keys (issue 9) --------------------------------------------------------------------------


def keys(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """/v1/deployments end to end: the operator token, then 10,000 project keys; see the module."""
    require_wrk()
    run = uuid.uuid4().hex[:8]
    secrets = make_keys(KEY_COUNT)
    total = int(options.max_rate * options.duration * 1.2)
    results = []
    for variant, tokens in (("token", [INGEST_TOKEN]), ("keys", secrets)):
        if not _wanted(options, variant):
            continue
        started = _now()
        fleet = _fleet(options)
        prefix = str(options.directory / f"keys-{variant}")
        try:
            projects = KEY_COUNT // KEYS_PER_PROJECT
            progress(f"keys/{variant}: loading {KEY_COUNT:,} keys of {projects:,} projects")
            projects_with_keys(fleet.database_url, secrets, keys_per_project=KEYS_PER_PROJECT)
            progress(f"keys/{variant}: writing {total:,} deployments over {len(tokens):,} bearer token(s)")
            mode, prefix, prepared = write_requests(
                deployment_requests(tokens, total, f"{run}-{variant}"), options.wrk_threads, Path(prefix)
            )
            processes = _start(fleet, options)
            result = wrk_window(
                fleet, processes, (mode, prefix), options=options, progress=progress, label=f"keys/{variant}",
                count=fleet.stored, prepared_requests=prepared,
            )  # fmt: skip
        finally:
            fleet.stop_all()
            _remove(prefix)
        results.append(
            {
                "variant": variant, "size": "deployment",
                "body_bytes": len(deployment_body(f"{run}-{variant}-000000000")),
                "keys_loaded": KEY_COUNT, "bearer_tokens_used": len(tokens), "run": run,
                "started_at": started, **result,
            }
        )  # fmt: skip
    return results


# --- errors (issue 10) -----------------------------------------------------------------------


def errors(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """Sentry envelopes end to end: distinct patterns, one hot pattern, and the naive stack."""
    require_wrk()
    run = uuid.uuid4().hex[:8]
    key = make_keys(1)[0]
    total = int(min(options.max_rate, ERRORS_MAX_RATE) * options.duration * 1.2)
    prepared: dict[bool, tuple[tuple[str, str], int, int]] = {}  # distinct → (wrk input, count, project)
    results = []
    variants: tuple[tuple[str, bool, dict[str, str]], ...] = (
        ("distinct", True, {}),
        ("hot", False, {}),
        ("naive", True, NAIVE_ENV),
    )
    try:
        for variant, distinct, env in variants:
            if not _wanted(options, variant):
                continue
            started = _now()
            fleet = _fleet(options, **env)
            try:
                (project,) = projects_with_keys(fleet.database_url, [key], prefix="bench-errors")
                ready = prepared.get(distinct)
                if ready is None or ready[2] != project.project_id:
                    kind = "distinct" if distinct else "hot"
                    progress(f"errors/{variant}: compressing {total:,} envelopes ({kind} patterns)")
                    requests = sentry_requests(
                        project_id=project.project_id, key=key, count=total, distinct=distinct,
                        tag=f"{run}-{kind}",
                    )  # fmt: skip
                    mode, prefix, count = write_requests(
                        requests, options.wrk_threads, options.directory / f"errors-{kind}"
                    )
                    ready = prepared[distinct] = ((mode, prefix), count, project.project_id)
                processes = _start(fleet, options)
                result = wrk_window(
                    fleet, processes, ready[0], options=options, progress=progress, label=f"errors/{variant}",
                    count=partial(fleet.count, "SELECT count(*) FROM error_occurrences"),
                    prepared_requests=ready[1], drain_timeout=NAIVE_DRAIN_S if env else 300,
                )  # fmt: skip
                result["patterns"] = fleet.count("SELECT count(*) FROM error_patterns")
            finally:
                fleet.stop_all()
            sample = next(
                sentry_requests(project_id=1, key=key, count=1, distinct=distinct, tag="size")
            ).split(b"\r\n\r\n", 1)[1]
            results.append(
                {
                    "variant": variant, "size": "sentry-event", "body_bytes": len(sample),
                    "decoded_bytes": len(gzip.decompress(sample)), "run": run, "started_at": started,
                    "naive_env": env, **result,
                }
            )  # fmt: skip
    finally:
        for (_, prefix), _, _ in prepared.values():
            _remove(prefix)
    return results


# --- heartbeats (issue 11) -------------------------------------------------------------------


def _heartbeat_fleet(
    database_url: str, secrets: list[str], check_period: float
) -> tuple[list[Instance], list[str]]:
    """Projects, their keys and checks: the instances (round-robin over projects) and ping paths.

    Half the ping checks are pinged by uuid (``/ping/<uuid>``), half by key and slug.
    """
    projects = projects_with_keys(database_url, secrets, prefix="bench-hb")
    ids = [project.project_id for project in projects]
    period = timedelta(seconds=check_period)
    simple_checks(database_url, ids, ["api"], period=period, grace=INSTANCE_GRACE)
    jobs = [f"job-{n}" for n in range(PING_CHECKS_PER_PROJECT)]
    uuids = simple_checks(database_url, ids, jobs, period=PING_CHECK[0], grace=PING_CHECK[1])
    key_of = {project.project_id: project.key for project in projects}
    instances = [
        Instance(project.key, f"{project.slug}-{n:03d}.internal", 1000 + n, 8080)
        for n in range(INSTANCES_PER_PROJECT)
        for project in projects
    ]
    paths = [
        f"/ping/{check_uuid}" if index % 2 == 0 else f"/ping/{key_of[project_id]}/{slug}"
        for index, ((project_id, slug), check_uuid) in enumerate(sorted(uuids.items()))
    ]
    return instances, paths


def freshness_summary(buckets: dict[float, float]) -> dict[str, float]:
    """Quantiles (ms, interpolated within buckets) and the share within 1 s of a window's histogram."""

    def ms(q: float) -> float:
        value = histograms.quantile(buckets, q)
        return round(value * 1000, 1) if not math.isnan(value) else -1.0

    within = histograms.fraction_within(buckets, 1.0)
    return {
        "observed": int(buckets.get(math.inf, 0)),
        "p50_ms": ms(0.5), "p95_ms": ms(0.95), "p99_ms": ms(0.99),
        "within_1s": round(within, 5) if not math.isnan(within) else 0.0,
    }  # fmt: skip


def _scrape_when_up(urls: list[str], timeout: float = 30) -> dict[float, float]:
    """The workers' freshness histogram, once every worker process serves its metrics."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return histograms.scrape(urls, FRESHNESS)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _flips(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT from_status::text || '->' || to_status::text, count(*) FROM status_flips GROUP BY 1"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def _steady(options: Options, progress: Progress, secrets: list[str], run: str) -> dict[str, Any]:
    metrics_port = options.port + 1000
    scheduler_port = options.port + 1100
    fleet = _fleet(
        options,
        HOOKYARD_WORKER_METRICS_PORT=str(metrics_port),
        HOOKYARD_SCHEDULER_METRICS_PORT=str(scheduler_port),
        HOOKYARD_SWEEP_INTERVAL="5",
    )
    workers = [f"http://127.0.0.1:{metrics_port + n}/metrics" for n in range(options.worker_processes)]
    duration = options.heartbeat_duration
    try:
        instances, paths = _heartbeat_fleet(fleet.database_url, secrets, options.heartbeat_check_period)
        rate, _ = steady_schedule(len(instances), len(paths), HEARTBEAT_PERIOD)
        processes = _start(fleet, options, scheduler=True)
        before = _scrape_when_up(workers)
        progress(
            f"heartbeats/steady: {len(instances):,} instances and {len(paths):,} ping checks every "
            f"{HEARTBEAT_PERIOD:g} s ({rate:,.0f} requests/s) for {duration:g} s, sweep every 5 s"
        )
        with Sampler({**processes, **services()}) as sampler, Autovacuum(fleet.database_url) as vacuum:
            load = run_paced_requests(
                fleet.url,
                steady_requests(instances, paths, period=HEARTBEAT_PERIOD, duration=duration, tag=run),
                rate=rate,
                ok=(b"HTTP/1.1 202", b"HTTP/1.1 200"),
            )
        accepted = load["requests"] - load["non_2xx"]
        progress(f"heartbeats/steady: waiting for all {accepted:,} accepted reports to be applied")
        applied, _ = fleet.wait_for(lambda: fleet.count(CHECK_KEYS), accepted, timeout=120)
        window = histograms.window(before, histograms.scrape(workers, FRESHNESS))
        scheduler = httpx.get(f"http://127.0.0.1:{scheduler_port}/metrics", timeout=5).text
        sweeps = histograms.sample_sum(scheduler, "hookyard_sweep_seconds_count")
        sweep_buckets = histograms.buckets_from_text(scheduler, "hookyard_sweep_seconds")
        flips = _flips(fleet.database_url)
    finally:
        fleet.stop_all()
    return {
        "variant": "steady", "size": "heartbeat+ping", "run": run,
        "events_per_s": load["achieved_rate"], "target_rate": round(rate, 1), "duration_s": duration,
        "instances": len(instances), "ping_checks": len(paths), "period_s": HEARTBEAT_PERIOD,
        "check_period_s": options.heartbeat_check_period, "check_grace_s": INSTANCE_GRACE.total_seconds(),
        "latency_ms": {key: round(value, 2) for key, value in load["latency_ms"].items()},
        "requests": load["requests"], "non_2xx": load["non_2xx"],
        "accepted": accepted, "applied": applied,
        "freshness": freshness_summary(window),
        "sweeps": int(sweeps),
        "sweep_seconds_mean": round(histograms.sample_sum(scheduler, "hookyard_sweep_seconds_sum")
                                    / sweeps, 4) if sweeps else None,
        "sweep_seconds_p99": round(histograms.quantile(sweep_buckets, 0.99), 4) if sweeps else None,
        "status_flips": flips,
        "vacuum": vacuum.summary(),
        **sampler.summary(),
    }  # fmt: skip


def sweep_benchmark(database_url: str, *, subjects: int, due_fraction: float) -> dict[str, Any]:
    """Time ``sweep_once`` over ``subjects`` subjects, ``due_fraction`` of them due; then idle."""
    from workers.sweep import sweep_once  # noqa: PLC0415 - the worker's code, only for this scenario

    now = datetime.now(UTC)
    total, due = sweep_subjects(database_url, subjects=subjects, due_fraction=due_fraction, now=now)
    # As the fleet runs in the bench (HOOKYARD_LOG_LEVEL=warning): no line per flip on stderr.
    logger = logging.getLogger("workers.sweep")
    level = logger.level
    logger.setLevel(logging.WARNING)
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        first = sweep_once(conn, now)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        idle = sweep_once(conn, now)
        idle_s = time.perf_counter() - started
    logger.setLevel(level)
    return {
        "subjects": total, "due": due, "examined": first.examined, "flips": first.flips,
        "sweep_s": round(first_s, 4), "idle_sweep_s": round(idle_s, 4), "idle_examined": idle.examined,
    }  # fmt: skip


def _sweep(options: Options, progress: Progress, run: str) -> dict[str, Any]:
    started = _now()
    progress(f"heartbeats/sweep: {SWEEP_SUBJECTS:,} subjects, {SWEEP_DUE_FRACTION:.0%} due")
    url = bench_database(options.database_url)
    result = sweep_benchmark(url, subjects=SWEEP_SUBJECTS, due_fraction=SWEEP_DUE_FRACTION)
    return {
        "variant": "sweep", "size": "runtime_status", "run": run, "started_at": started,
        "events_per_s": round(result["examined"] / result["sweep_s"], 1) if result["sweep_s"] else 0.0,
        "peak_rss_mb": {}, "cpu_percent_of_one_core": {}, **result,
    }  # fmt: skip


def _peak(
    options: Options,
    progress: Progress,
    *,
    secrets: list[str],
    run: str,
    variant: str,
    env: dict[str, str],
    prepared: dict[str, Any],
) -> dict[str, Any]:
    fleet = _fleet(options, **env)
    try:
        instances, _ = _heartbeat_fleet(fleet.database_url, secrets, options.heartbeat_check_period)
        if "input" not in prepared:
            total = int(options.max_rate * options.duration * 1.2)
            progress(f"heartbeats/{variant}: writing {total:,} heartbeats of {len(instances):,} instances")
            mode, prefix, count = write_requests(
                peak_heartbeats(instances, total, run), options.wrk_threads, options.directory / "heartbeats"
            )
            prepared.update(input=(mode, prefix), count=count)
        processes = _start(fleet, options)
        result = wrk_window(
            fleet, processes, prepared["input"], options=options, progress=progress,
            label=f"heartbeats/{variant}", count=partial(fleet.count, CHECK_KEYS),
            prepared_requests=prepared["count"], drain_timeout=NAIVE_DRAIN_S if env else 300,
        )  # fmt: skip
    finally:
        fleet.stop_all()
    body = next(peak_heartbeats(instances, 1, run)).split(b"\r\n\r\n", 1)[1]
    return {"variant": variant, "size": "heartbeat", "body_bytes": len(body), "run": run,
            "naive_env": env, **result}  # fmt: skip


def heartbeats(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """Steady heartbeats and pings with the sweep, a sweep of 100,000 subjects, peak and naive."""
    run = uuid.uuid4().hex[:8]
    secrets = make_keys(HEARTBEAT_PROJECTS)
    results = []
    if _wanted(options, "steady"):
        started = _now()
        results.append({**_steady(options, progress, secrets, run), "started_at": started})
    if _wanted(options, "sweep"):
        results.append(_sweep(options, progress, run))
    prepared: dict[str, Any] = {}
    try:
        for variant, env in (("peak", {}), ("naive", NAIVE_ENV)):
            if _wanted(options, variant):
                require_wrk()
                started = _now()
                results.append(
                    {
                        **_peak(
                            options,
                            progress,
                            secrets=secrets,
                            run=run,
                            variant=variant,
                            env=env,
                            prepared=prepared,
                        ),
                        "started_at": started,
                    }
                )
    finally:
        if "input" in prepared:
            _remove(prepared["input"][1])
    return results


# --- usage (issue 12) ------------------------------------------------------------------------

#: Records in the history that ``usage-summary`` reads, and the months they span.
SUMMARY_ROWS = 10_000_000
SUMMARY_MONTHS = 14
SUMMARY_PROJECTS = 50
SUMMARY_RATE = 5.0


def usage(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """CloudEvents end to end: batches of 100 with two meters, and the naive stack one per request.

    Every event has its own id (wrk's template mode puts the request's counter in each of them).
    The project's key sends them; each event becomes two usage records (SUM of ``data.tokens``,
    COUNT), each counted into a monthly soft budget when ``hookyard_set_budget`` exists.
    ``events_per_s`` counts events (records stored / 2) committed during the window.
    """
    require_wrk()
    run = uuid.uuid4().hex[:8]
    key = make_keys(1)[0]
    results = []
    variants: tuple[tuple[str, int, dict[str, str], int | None], ...] = (
        ("batch", USAGE_BATCH, {}, USAGE_BATCH_CONNECTIONS),
        ("naive", 1, NAIVE_ENV, None),
    )
    for variant, batch, env, connections in variants:
        if not _wanted(options, variant):
            continue
        started = _now()
        fleet = _fleet(options, **env)
        try:
            (project,) = projects_with_keys(fleet.database_url, [key], prefix="bench-usage")
            meters = usage_meters(fleet.database_url, USAGE_EVENT_TYPE)
            budgets = usage_budgets(fleet.database_url, project.project_id)
            template = cloudevents_template(
                token=key, subject=project.slug, batch=batch, time=datetime.now(UTC).isoformat()
            )
            prepared = write_template(template, options.directory / f"usage-{variant}")
            processes = _start(fleet, options)
            records = "SELECT count(*) FROM event_keys WHERE source = 'usage'"
            result = wrk_window(
                fleet, processes, prepared, options=options, progress=progress, label=f"usage/{variant}",
                count=lambda: fleet.count(records) // meters, per_request=batch,  # noqa: B023 - called now
                connections=connections, drain_timeout=NAIVE_DRAIN_S if env else 300,
            )  # fmt: skip
            result["records_stored"] = fleet.count(records)
        finally:
            fleet.stop_all()
        results.append(
            {
                "variant": variant, "size": f"cloudevents-{batch}", "events_per_request": batch,
                "body_bytes": len(template.split(b"\r\n\r\n", 1)[1]), "meters": meters,
                "budgets": budgets, "run": run, "started_at": started, "naive_env": env, **result,
            }
        )  # fmt: skip
    return results


def summary_requests(key: str, now: datetime) -> list[tuple[str, bytes]]:
    """The summaries a dashboard asks for, by name: (name, raw GET request)."""

    def at(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    shapes = {
        "month-12mo-type": f"window=month&resource_type=llm.tokens&from={at(now - timedelta(days=365))}",
        "day-30d-all": f"window=day&from={at(now - timedelta(days=30))}",
        "hour-24h-type": f"window=hour&resource_type=llm.tokens&from={at(now - timedelta(hours=24))}",
        "day-30d-type-model": f"window=day&resource_type=llm.tokens&group_by=model"
        f"&from={at(now - timedelta(days=30))}",
    }
    return [
        (
            name,
            f"GET /v1/usage/summary?{query}&to={at(now)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nAccept: application/json\r\n\r\n".encode(),
        )
        for name, query in shapes.items()
    ]


def usage_summary(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """GET /v1/usage/summary at a steady rate over 10 million usage records; latency per shape."""
    run = uuid.uuid4().hex[:8]
    started = _now()
    fleet = _fleet(options)
    try:
        keys = make_keys(SUMMARY_PROJECTS)
        projects = projects_with_keys(fleet.database_url, keys, prefix="bench-usage")
        progress(f"usage-summary: inserting {SUMMARY_ROWS:,} usage records over {SUMMARY_MONTHS} months")
        began = time.monotonic()
        now = datetime.now(UTC)
        usage_history(
            fleet.database_url, rows=SUMMARY_ROWS, project_ids=[p.project_id for p in projects],
            months=SUMMARY_MONTHS, now=now,
        )  # fmt: skip
        loaded_s = time.monotonic() - began
        web = fleet.start_web()
        shapes = summary_requests(projects[0].key, now)
        total = int(SUMMARY_RATE * options.duration)
        progress(
            f"usage-summary: {SUMMARY_RATE:g} summaries/s for {options.duration:g} s ({len(shapes)} shapes)"
        )
        with Sampler({"web": web, **services()}) as sampler:
            load = run_paced_requests(
                fleet.url, (shapes[n % len(shapes)][1] for n in range(total)), rate=SUMMARY_RATE,
                connections=4, ok=(b"HTTP/1.1 200",), label=lambda n: shapes[n % len(shapes)][0],
            )  # fmt: skip
    finally:
        fleet.stop_all()
    return [
        {
            "variant": "summary", "size": "resource_usage", "run": run, "started_at": started,
            "rows": SUMMARY_ROWS, "months": SUMMARY_MONTHS, "rows_of_project": SUMMARY_ROWS // 2,
            "load_s": round(loaded_s, 1), "events_per_s": load["achieved_rate"], "target_rate": SUMMARY_RATE,
            "latency_ms": {key: round(value, 2) for key, value in load["latency_ms"].items()},
            "latency_ms_by_shape": {
                name: {key: round(value, 2) for key, value in found.items()}
                for name, found in load["latency_ms_by_label"].items()
            },
            "requests": load["requests"], "non_2xx": load["non_2xx"], **sampler.summary(),
        }
    ]  # fmt: skip


#: Reserve → commit pairs started per second, and the projects (each with its own hard budget) they
#: are spread over; ``hot`` puts every pair on one budget row.
RESERVATION_RATE = 1000.0
RESERVATION_PROJECTS = 100


def reservations(size: str, options: Options, progress: Progress) -> list[dict[str, Any]]:
    """Reserve then commit, at 1,000 pairs/s for ``duration``: over 100 budgets, then over one."""
    run = uuid.uuid4().hex[:8]
    results = []
    for variant, projects in (("spread", RESERVATION_PROJECTS), ("hot", 1)):
        if not _wanted(options, variant):
            continue
        started = _now()
        fleet = _fleet(options)
        try:
            keys = make_keys(projects)
            seeded = projects_with_keys(fleet.database_url, keys, prefix="bench-budget")
            hard_budgets(fleet.database_url, [p.project_id for p in seeded], RESERVED_RESOURCE, "s")
            web = fleet.start_web()
            total = int(RESERVATION_RATE * options.duration)
            progress(
                f"reservations/{variant}: {RESERVATION_RATE:g} reserve+commit pairs/s for "
                f"{options.duration:g} s over {projects} hard budget(s)"
            )
            with Sampler({"web": web, **services()}) as sampler:
                load = run_paced_pairs(
                    fleet.url, reservation_pairs(keys, total, f"{run}-{variant}"), rate=RESERVATION_RATE,
                    ok=(b"HTTP/1.1 201", b"HTTP/1.1 200"),
                )  # fmt: skip
            committed = fleet.count("SELECT count(*) FROM budget_reservations WHERE state = 'committed'")
        finally:
            fleet.stop_all()
        results.append(
            {
                "variant": variant, "size": "reservation", "run": run, "started_at": started,
                "budgets": projects, "target_rate": RESERVATION_RATE,
                "events_per_s": load["completed_per_s"], "pairs": load["pairs"],
                "achieved_rate": load["achieved_rate"], "failures": load["failures"], "committed": committed,
                "latency_ms": {k: round(v, 2) for k, v in load["latency_ms"].items()},
                "reserve_latency_ms": {k: round(v, 2) for k, v in load["first_latency_ms"].items()},
                "commit_latency_ms": {k: round(v, 2) for k, v in load["second_latency_ms"].items()},
                **sampler.summary(),
            }
        )  # fmt: skip
    return results


DOMAIN_SCENARIOS: dict[str, Callable[[str, Options, Progress], list[dict[str, Any]]]] = {
    "keys": keys,
    "errors": errors,
    "heartbeats": heartbeats,
    "usage": usage,
    "usage-summary": usage_summary,
    "reservations": reservations,
}
