"""The sweep: subjects move to ``grace`` and ``down`` when nothing arrives in time.

The worker that applies a report sets the subject's ``alarm_at``, the next moment its status
could change with nothing arriving (the due time, the end of grace, the end of a started run's
grace). The sweep reads only subjects whose alarm has passed, through the partial index on
``alarm_at``, moves each with :func:`contracts.checks.sweep` (the same rules the worker uses),
and writes the status flips. A subject a worker holds locked is skipped: the report it is
applying decides its state. Run by the scheduler every ``HOOKYARD_SWEEP_INTERVAL`` seconds, one
scheduler at a time, with the clock given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
import structlog
from psycopg.rows import dict_row

from contracts.checks import Flip, sweep
from hookyard import metrics
from hookyard.clock import Clock
from schema import queries
from workers.heartbeats import schedule_of, subject_of_row

log = structlog.get_logger(__name__)

#: Subjects one sweep transaction takes; a larger backlog is taken by the next round at once.
SWEEP_BATCH = 20_000


@dataclass
class SweepResult:
    examined: int = 0
    flips: int = 0
    seconds: float = 0.0


def sweep_once(
    conn: psycopg.Connection[tuple[object, ...]], now: datetime, *, batch: int = SWEEP_BATCH
) -> SweepResult:
    """Move every subject whose alarm passed by ``now``; returns what it did. Commits its own work."""
    started = time.perf_counter()
    result = SweepResult()
    while True:
        with conn.transaction():
            cursor = conn.cursor(row_factory=dict_row)
            rows = cursor.execute(queries()["sweep_due_subjects"], {"now": now, "limit": batch}).fetchall()
            updates: list[tuple[int, str, bool, datetime | None]] = []
            flips: list[tuple[dict[str, object], Flip]] = []
            for row in rows:
                schedule = schedule_of(
                    str(row["kind"]),
                    row["period"],
                    row["schedule"],
                    str(row["tz"]),
                    row["grace"],
                )
                state, moved = sweep(subject_of_row(row), schedule, now, paused=bool(row["paused"]))
                updates.append((int(row["id"]), state.status.value, state.running, state.alarm_at))
                flips.extend((row, flip) for flip in moved)
            if updates:
                conn.execute(
                    queries()["sweep_update_subjects"],
                    {
                        "id": [u[0] for u in updates],
                        "status": [u[1] for u in updates],
                        "running": [u[2] for u in updates],
                        "alarm_at": [u[3] for u in updates],
                    },
                )
            if flips:
                conn.execute(
                    queries()["insert_status_flips"],
                    {
                        "project_id": [row["project_id"] for row, _ in flips],
                        "check_id": [row["check_id"] for row, _ in flips],
                        "subject": [row["subject"] for row, _ in flips],
                        "from_status": [flip.from_status.value for _, flip in flips],
                        "to_status": [flip.to_status.value for _, flip in flips],
                        "at": [flip.at for _, flip in flips],
                        "cause": [flip.cause for _, flip in flips],
                    },
                )
        for _, flip in flips:
            metrics.STATUS_FLIPS.labels(flip.from_status.value, flip.to_status.value).inc()
            log.info(
                "subject_flipped",
                from_status=flip.from_status.value,
                to_status=flip.to_status.value,
                cause=flip.cause,
            )
        result.examined += len(rows)
        result.flips += len(flips)
        if len(rows) < batch:
            break
    result.seconds = time.perf_counter() - started
    metrics.SWEEP_DURATION.observe(result.seconds)
    metrics.SWEEP_LAST_RUN.set(time.time())
    return result


def report_gauges(conn: psycopg.Connection[tuple[object, ...]], now: datetime) -> None:
    """Subjects per status and the seconds until the nearest alarm, for Prometheus."""
    counts = {
        str(status): float(str(count)) for status, count in conn.execute(queries()["sweep_status_counts"])
    }
    for status in ("new", "up", "grace", "down", "paused"):
        metrics.SUBJECTS.labels(status).set(counts.get(status, 0.0))
    row = conn.execute(queries()["sweep_next_alarm"]).fetchone()
    nearest = row[0] if row else None
    metrics.NEXT_DEADLINE.set(
        (nearest - now).total_seconds() if isinstance(nearest, datetime) else float("nan")
    )


def run_sweep(conn: psycopg.Connection[tuple[object, ...]], clock: Clock) -> SweepResult:
    """One sweep at ``clock.now()`` and the gauges after it."""
    now = clock.now()
    result = sweep_once(conn, now)
    report_gauges(conn, now)
    if result.flips:
        log.info("sweep_done", examined=result.examined, flips=result.flips, seconds=round(result.seconds, 3))
    return result


def clear_gauges() -> None:
    """What a standby scheduler exports: nothing it did not measure (its last sweep's numbers
    would read as current next to the acting scheduler's)."""
    for status in ("new", "up", "grace", "down", "paused"):
        metrics.SUBJECTS.labels(status).set(float("nan"))
    metrics.NEXT_DEADLINE.set(float("nan"))
