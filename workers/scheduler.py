"""Periodic jobs: partitions ahead, retention, the heartbeat sweep. One scheduler acts at a time."""

from __future__ import annotations

import signal
import threading
import time
from datetime import date

import psycopg
import structlog
from prometheus_client import start_http_server
from psycopg import sql

from hookyard import metrics
from hookyard.clock import SYSTEM, Clock
from hookyard.config import Settings
from schema import queries
from schema.migrate import PARTITIONED_TABLES, ensure_partitions, month_starts
from workers.reservations import expire_reservations
from workers.summary import refresh_summary
from workers.sweep import clear_gauges, run_sweep

log = structlog.get_logger(__name__)

_SCHEDULER_LOCK = 0x5363686564  # "Sched"


def run_once(
    conn: psycopg.Connection[tuple[object, ...]], settings: Settings, today: date | None = None
) -> None:
    """One pass: create partitions ahead, drop expired ones, report stray rows. Idempotent."""
    today = today or date.today()
    for name in ensure_partitions(conn, months_ahead=settings.hookyard_partitions_ahead, today=today):
        metrics.PARTITIONS_CREATED.labels(name.rsplit("_", 2)[0]).inc()
    if settings.hookyard_retention_months:
        cutoff = month_starts(today, settings.hookyard_retention_months, 0)[0]
        drop_partitions_before(conn, cutoff)
    for table, key in PARTITIONED_TABLES:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"{table}_default"))
        ).fetchone()
        stray = int(str(row[0])) if row else 0
        metrics.DEFAULT_PARTITION_ROWS.labels(table).set(stray)
        if stray:
            log.warning("rows_in_default_partition", table=table, rows=stray, key=key)
    refresh_summary(conn, settings)
    metrics.SCHEDULER_LAST_RUN.set(time.time())


def drop_partitions_before(conn: psycopg.Connection[tuple[object, ...]], cutoff: date) -> list[str]:
    """Drop monthly partitions that end on or before ``cutoff``, with their ledger keys."""
    dropped = []
    for table, key in PARTITIONED_TABLES:
        rows = conn.execute(queries()["partitions_before"], {"parent": table, "cutoff": cutoff}).fetchall()
        for (partition,) in rows:
            with conn.transaction():
                # With the owner's rights (migration 0008): the partition goes with its month's
                # ledger keys, and the fleet's own role needs no DDL and no DELETE on event_keys.
                conn.execute("SELECT hookyard_drop_month_partition(%s::regclass)", (str(partition),))
            metrics.PARTITIONS_DROPPED.labels(table).inc()
            log.info("partition_dropped", table=table, partition=partition, key=key)
            dropped.append(str(partition))
    return dropped


def run_scheduler(settings: Settings, clock: Clock = SYSTEM) -> int:
    """Run passes every ``HOOKYARD_SCHEDULER_INTERVAL`` seconds, and the heartbeat sweep every
    ``HOOKYARD_SWEEP_INTERVAL`` seconds, until SIGTERM/SIGINT. One scheduler acts at a time."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if port := settings.hookyard_scheduler_metrics_port:
        try:
            start_http_server(port, addr=settings.hookyard_metrics_host)
            log.info("metrics_listening", url=f"http://{settings.hookyard_metrics_host}:{port}/metrics")
        except OSError as exc:
            log.warning("metrics_port_busy", port=port, error=str(exc))
    log.info("scheduler_started", interval=settings.hookyard_scheduler_interval)
    next_pass = 0.0
    standby = False
    while not stop.is_set():
        try:
            with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=5) as conn:
                locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_SCHEDULER_LOCK,)).fetchone()
                if not (locked and locked[0]):
                    if not standby:
                        log.info("scheduler_standby", detail="another scheduler holds the lock")
                        standby = True
                    # A standby exports nothing stale, and takes over within one sweep interval.
                    clear_gauges()
                    stop.wait(settings.hookyard_sweep_interval)
                    continue
                if standby:
                    log.info("scheduler_acting", detail="took the lock")
                    standby = False
                # Holding the lock for as long as the connection lives: one scheduler acts.
                while not stop.is_set():
                    if time.monotonic() >= next_pass:
                        run_once(conn, settings)
                        log.info("scheduler_pass_done")
                        next_pass = time.monotonic() + settings.hookyard_scheduler_interval
                    run_sweep(conn, clock)
                    expire_reservations(conn, clock)
                    stop.wait(settings.hookyard_sweep_interval)
        except psycopg.Error as exc:
            log.warning(
                "scheduler_pass_failed", error=str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
            )
            stop.wait(min(settings.hookyard_sweep_interval * 2, settings.hookyard_scheduler_interval))
    log.info("scheduler_stopped")
    return 0
