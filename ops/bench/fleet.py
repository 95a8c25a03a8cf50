"""The fleet under test: real ``hookyard`` processes on a bench database and vhost of their own."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pika
import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from hookyard.errors import HookyardError
from ops.bench.requests import GITHUB_SECRET, INGEST_TOKEN, SLACK_SECRET
from ops.broker import purge
from schema.migrate import migrate

HOOKYARD = str(Path(sys.executable).parent / "hookyard")


def bench_database(database_url: str) -> str:
    """A fresh, migrated ``<name>_bench`` database next to the configured one."""
    parts = urlsplit(database_url)
    name = f"{parts.path.lstrip('/')}_bench"
    with psycopg.connect(make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    url = parts._replace(path=f"/{name}").geturl()
    migrate(url)
    # Flush what earlier scenarios wrote (a drain writes gigabytes), so their checkpoint does not
    # land inside this scenario's measurement. Needs superuser; without it the run goes on.
    with (
        psycopg.connect(url, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CHECKPOINT")
    return url


def bench_vhost(amqp_url: str, vhost: str = "hookyard_bench") -> str:
    """The bench's own vhost (made with rabbitmqctl when missing), every Hookyard queue emptied."""
    parts = urlsplit(amqp_url)
    url = parts._replace(path="/" + quote(vhost, safe="")).geturl()
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except pika.exceptions.AMQPError:
        if shutil.which("rabbitmqctl") is None:
            raise HookyardError(
                f"create the RabbitMQ vhost {vhost!r} for the bench (rabbitmqctl add_vhost)"
            ) from None
        user = parts.username or "guest"
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
    purge(url)
    return url


@dataclass
class Sampler:
    """Peak RSS and CPU seconds of named processes (children included), sampled every ``interval``.

    A name may stand for a tree (``hookyard worker --processes 2`` is a supervisor and two
    children): ``peak_rss`` is its largest single process, ``peak_tree_rss`` the tree's total.
    """

    processes: dict[str, psutil.Process]
    interval: float = 0.5
    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_tree_rss: dict[str, int] = field(default_factory=dict)
    series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree(self, process: psutil.Process) -> list[psutil.Process]:
        try:
            return [process, *process.children(recursive=True)]
        except psutil.Error:
            return []

    def _cpu(self, name: str) -> float:
        total = 0.0
        for process in self._tree(self.processes[name]):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def __enter__(self) -> Sampler:
        self._cpu_start = {name: self._cpu(name) for name in self.processes}
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.monotonic() - self._started
            for name, process in self.processes.items():
                sizes = []
                for member in self._tree(process):
                    try:
                        sizes.append(member.memory_info().rss)
                    except psutil.Error:
                        continue
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), max(sizes, default=0))
                self.peak_tree_rss[name] = max(self.peak_tree_rss.get(name, 0), sum(sizes))
                self.series.setdefault(name, []).append((now, sum(sizes)))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self._started
        self.cpu_percent = {
            # A child that exits mid-run takes its CPU seconds with it: never report less than 0.
            name: round(max(0.0, 100 * (self._cpu(name) - start) / elapsed), 1)
            for name, start in self._cpu_start.items()
        }

    def summary(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": {name: round(rss / 2**20, 1) for name, rss in self.peak_rss.items()},
            "peak_tree_rss_mb": {name: round(rss / 2**20, 1) for name, rss in self.peak_tree_rss.items()},
            "cpu_percent_of_one_core": self.cpu_percent,
        }


class Autovacuum:
    """What PostgreSQL's autovacuum would do, done by the bench when the server has it off.

    A server with ``autovacuum = off`` (this machine's CI configuration) never vacuums the tables
    a long run churns: every heartbeat rewrites its subject's ``runtime_status`` row (``alarm_at``
    is indexed, so no update is HOT), and without vacuum the dead rows pile up until the worker
    and the sweep spend their time walking them. Every ``interval`` seconds (autovacuum_naptime's
    default), this vacuums each table past autovacuum's default threshold (50 dead rows + 20% of
    the live ones), as the launcher would; on a server with autovacuum on it does nothing.
    """

    def __init__(self, database_url: str, interval: float = 60.0) -> None:
        self.database_url = database_url
        self.interval = interval
        self.vacuums: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SHOW autovacuum").fetchone()
        self.server_autovacuum = str(row[0]) if row else "unknown"

    def __enter__(self) -> Autovacuum:
        if self.server_autovacuum == "off":
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                due = conn.execute(
                    "SELECT relid::regclass::text, n_dead_tup FROM pg_stat_user_tables"
                    " WHERE n_dead_tup > 50 + 0.2 * n_live_tup"
                ).fetchall()
                for table, dead in due:
                    started = time.monotonic()
                    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(table)))
                    self.vacuums.append(
                        {
                            "table": table,
                            "dead_rows": int(dead),
                            "seconds": round(time.monotonic() - started, 2),
                        }
                    )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self) -> dict[str, Any]:
        return {
            "server_autovacuum": self.server_autovacuum,
            "emulated_every_s": self.interval if self.server_autovacuum == "off" else None,
            "vacuums": self.vacuums,
        }


class Fleet:
    """``hookyard serve`` and ``hookyard worker`` as processes, with their logs in ``directory``."""

    def __init__(self, database_url: str, amqp_url: str, directory: Path, port: int, **env: str) -> None:
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database_url = database_url
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKYARD_")}
        self.env.update(
            {
                "DATABASE_URL": database_url,
                "AMQP_URL": amqp_url,
                "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
                "SLACK_SIGNING_SECRET": SLACK_SECRET,
                "HOOKYARD_INGEST_TOKEN": INGEST_TOKEN,
                "HOOKYARD_LOG_FORMAT": "json",
                "HOOKYARD_LOG_LEVEL": "warning",
                "HOOKYARD_WORKER_METRICS_PORT": "0",
                **env,
            }
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> psutil.Process:
        log = (self.directory / f"{name}.log").open("ab")
        process = subprocess.Popen([HOOKYARD, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return psutil.Process(process.pid)

    def start_web(self) -> psutil.Process:
        process = self.start("web", "serve", "--port", str(self.port))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise HookyardError(f"hookyard serve did not become ready; see {self.directory / 'web.log'}")

    def start_worker(self, threads: int, processes: int = 1) -> psutil.Process:
        return self.start("worker", "worker", "--processes", str(processes), "--threads", str(threads))

    def start_scheduler(self) -> psutil.Process:
        """``hookyard scheduler``: partitions, then the heartbeat sweep every HOOKYARD_SWEEP_INTERVAL."""
        return self.start("scheduler", "scheduler")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def stored(self) -> int:
        return self.count("SELECT count(*) FROM events")

    def count(self, query: str) -> int:
        """The one number ``query`` answers (a ``count(*)``), on a connection of its own."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    def inserted_keys(self) -> int:
        """Ledger rows inserted, from PostgreSQL's statistics: no scan, so polling it costs nothing.

        The statistics trail commits (an idle backend may hold them back for seconds) and also
        count rolled-back inserts: use it for progress, and :meth:`stored` for the answer.
        """
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = 'event_keys'"
            ).fetchone()
        return int(row[0]) if row else 0

    def write_timing(self, since: datetime) -> dict[str, Any]:
        """How ``events`` was written, on the database's clock (``stored_at`` is a transaction's start).

        ``rows``: rows written before the last transaction began; ``span_s``: from the first
        transaction's start to the last one's (leaving out the worker's start-up and the bench's
        polling); ``since_s``: from ``since`` to the last one's start. The rows of the last
        transaction are left out of ``rows`` because their time is in neither span.
        ``committed_after_ms``: percentiles of how long after ``since`` each row was committed.
        """
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE stored_at < last),"
                " extract(epoch FROM last - first)::float8, extract(epoch FROM last - %(since)s)::float8,"
                " percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
                " (ORDER BY extract(epoch FROM stored_at - %(since)s))"
                " FROM events, (SELECT min(stored_at) AS first, max(stored_at) AS last FROM events) AS span"
                " GROUP BY first, last",
                {"since": since},
            ).fetchone()
        if row is None:
            return {"rows": 0, "span_s": 0.0, "since_s": 0.0, "committed_after_ms": {}}
        rows, span, since_last, quantiles = row
        p50, p95, p99 = (round(value * 1000, 1) for value in quantiles)
        return {
            "rows": int(rows),
            "span_s": float(span),
            "since_s": float(since_last),
            "committed_after_ms": {"p50": p50, "p95": p95, "p99": p99, "max": round(since_last * 1000, 1)},
        }

    def wait_drained(self, expected: int, timeout: float, progress: Any = None) -> int:
        """Like :meth:`wait_stored`, but without counting rows while they are written.

        ``count(*)`` over a growing ``events`` every quarter second took CPU from the drain it
        was timing. Statistics cost nothing; a real count confirms the end, or looks when the
        statistics stop moving (an idle backend may hold them back for seconds).
        """
        seen = {"keys": -1, "since": time.monotonic()}

        def count() -> int:
            keys, now = self.inserted_keys(), time.monotonic()
            if keys != seen["keys"]:
                seen.update(keys=keys, since=now)
            if keys >= expected or now - seen["since"] > 2:
                return self.stored()
            return keys

        return self._poll(count, expected, timeout, progress, interval=0.5)[0]

    def wait_stored(self, expected: int, timeout: float, progress: Any = None) -> tuple[int, float]:
        """Poll until ``expected`` rows are stored, or the count stops moving for 15 s."""
        return self._poll(self.stored, expected, timeout, progress, interval=0.25)

    def wait_for(
        self, count: Callable[[], int], expected: int, timeout: float, interval: float = 0.5
    ) -> tuple[int, float]:
        """Poll ``count`` until it reaches ``expected``, stops moving for 15 s, or ``timeout`` passes."""
        return self._poll(count, expected, timeout, None, interval)

    @staticmethod
    def _poll(
        count: Callable[[], int], expected: int, timeout: float, progress: Any, interval: float
    ) -> tuple[int, float]:
        """Call ``count`` until it reaches ``expected``, stops moving for 15 s, or ``timeout`` passes."""
        started = time.monotonic()
        last, last_change = -1, started
        while True:
            counted = count()
            now = time.monotonic()
            if counted != last:
                last, last_change = counted, now
                if progress:
                    progress(counted, expected)
            if counted >= expected or now - last_change > 15 or now - started > timeout:
                return counted, now - started
            time.sleep(interval)
