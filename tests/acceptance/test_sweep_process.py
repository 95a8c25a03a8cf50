"""The real ``hookyard scheduler`` sweeps a silent check to grace, then down, on the wall clock.

``hookyard serve``, ``hookyard worker`` and two ``hookyard scheduler`` processes run over a database
of the test's own. A check pinged once, then given a 2 s period and a 2 s grace with ``hookyard
checks set``, and pinged again, must be moved by the sweep to ``grace`` and then ``down`` within 15
seconds of each deadline (SPEC, "Heartbeats and checks"), by exactly one of the two schedulers: the
other stands by on the advisory lock. The acting scheduler's /metrics then count the down subject
and show a recent sweep.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import psycopg
import pytest

from tests.acceptance.conftest import Fleet
from tests.conftest import free_port
from tests.integration.test_project_keys import create_key, create_project
from tests.support.processes import HOOKYARD, HookyardProcess, fleet_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

SLUG = "every-two-seconds"
PERIOD = timedelta(seconds=2)
GRACE = timedelta(seconds=2)
#: SPEC: "The scheduler moves subjects to grace and down within 15 seconds of their deadline".
WITHIN = timedelta(seconds=15)


@pytest.fixture
def env(fresh_database_url: str, empty_queues: str) -> dict[str, str]:
    """The fleet's settings over a database of this test's own: the scheduler's gauges count every
    subject of the database, and its advisory lock is per database."""
    return fleet_env(
        DATABASE_URL=fresh_database_url,
        AMQP_URL=empty_queues,
        HOOKYARD_WORKER_METRICS_PORT="0",
        HOOKYARD_LOG_FORMAT="json",
    )


def start_scheduler(fleet: Fleet, name: str, metrics_port: int) -> HookyardProcess:
    process = HookyardProcess(
        ["scheduler"],
        {**fleet.env, "HOOKYARD_SWEEP_INTERVAL": "1", "HOOKYARD_SCHEDULER_METRICS_PORT": str(metrics_port)},
        fleet.logs / f"{name}.log",
    )
    fleet.processes.append(process)
    return process


def started(process: HookyardProcess) -> bool:
    return "scheduler_started" in process.log() or process.process.poll() is not None


def subject(db: psycopg.Connection[Any], slug: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT r.status::text, r.last_heartbeat_at, r.due_at, r.alarm_at"
        " FROM runtime_status r JOIN checks c ON c.id = r.check_id WHERE c.slug = %s AND r.subject = ''",
        (slug,),
    ).fetchone()
    return (
        None
        if row is None
        else dict(zip(("status", "last_report_at", "due_at", "alarm_at"), row, strict=True))
    )


def wait_subject(
    db: psycopg.Connection[Any],
    slug: str,
    test: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """The subject's row once ``test`` holds for it."""

    def matching() -> dict[str, Any] | None:
        row = subject(db, slug)
        return row if row is not None and test(row) else None

    found = wait_until(matching, timeout=timeout, what=what)
    assert found is not None
    return found


def flips_since(db: psycopg.Connection[Any], slug: str, since: datetime) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT f.from_status::text, f.to_status::text, f.cause, f.at, f.recorded_at FROM status_flips f"
        " JOIN checks c ON c.id = f.check_id WHERE c.slug = %s AND f.at > %s ORDER BY f.id",
        (slug, since),
    ).fetchall()
    keys = ("from", "to", "cause", "at", "recorded_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def metric(text: str, name: str) -> float | None:
    """The value of the sample ``name`` (with its labels, as exposed) in a /metrics page."""
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[-1])
    return None


def test_the_scheduler_process_sweeps_a_silent_check_to_grace_then_down_and_only_one_scheduler_acts(
    fleet: Fleet, fresh_database_url: str
) -> None:
    ports = {"scheduler-a": free_port(), "scheduler-b": free_port()}
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        _, key = create_key(db, create_project(db, "crons"))
        fleet.web()
        fleet.worker()
        # Two schedulers started together: one takes the advisory lock and sweeps, the other stands by.
        schedulers = {name: start_scheduler(fleet, name, port) for name, port in ports.items()}
        for name, process in schedulers.items():
            wait_until(partial(started, process), timeout=30, what=f"{name} to start")
            assert process.process.poll() is None, f"{name} exited:\n{process.log()}"

        base = f"{fleet.url}/ping/{key}/{SLUG}"
        created = httpx.get(f"{base}?create=1", timeout=10)
        assert (created.status_code, created.text) == (201, "Created")
        first = wait_subject(
            db, SLUG, lambda row: row["status"] == "up", timeout=20, what="the check created and up"
        )

        result = subprocess.run(
            [HOOKYARD, "checks", "set", "crons", SLUG, "--period", "2s", "--grace", "2s"],
            env=fleet.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "every 2s, grace 2s" in result.stdout, result.stdout

        assert httpx.get(base, timeout=10).text == "OK"
        # The ping applied: the subject is up, due one period after it. (The set above timed the
        # subject again from the first ping, and may have moved it to grace or down already.)
        applied = wait_subject(
            db,
            SLUG,
            lambda row: row["last_report_at"] > first["last_report_at"],
            timeout=20,
            what="the second ping applied",
        )
        assert applied["status"] == "up"
        due = applied["due_at"]
        assert due == applied["last_report_at"] + PERIOD
        assert applied["alarm_at"] == due
        down_at = due + GRACE

        # No more pings: grace at due, down at due + grace, each recorded within 15 s of its deadline.
        down = wait_subject(
            db,
            SLUG,
            lambda row: row["status"] == "down",
            timeout=(down_at + WITHIN - datetime.now(UTC)).total_seconds() + 1,
            what="the subject to go down",
        )
        assert down["alarm_at"] is None  # down waits for a report
        flips = flips_since(db, SLUG, applied["last_report_at"])
        assert [(flip["from"], flip["to"], flip["cause"]) for flip in flips] == [
            ("up", "grace", "due passed"),
            ("grace", "down", "grace passed"),
        ], flips
        grace_flip, down_flip = flips
        assert grace_flip["at"] == due  # each flip is dated at its deadline ...
        assert down_flip["at"] == down_at
        assert due <= grace_flip["recorded_at"] <= due + WITHIN  # ... and written within 15 s of it
        assert down_at <= down_flip["recorded_at"] <= down_at + WITHIN

        # Exactly one scheduler acted; the other logged that it stands by, and swept nothing.
        standby = [name for name, process in schedulers.items() if "scheduler_standby" in process.log()]
        assert len(standby) == 1, {name: process.log() for name, process in schedulers.items()}
        (idle,) = standby
        (acting,) = set(schedulers) - {idle}
        assert "subject_flipped" in schedulers[acting].log()
        assert "subject_flipped" not in schedulers[idle].log()
        assert "scheduler_standby" not in schedulers[acting].log()

        # The acting scheduler's metrics: one subject down, a sweep within the last few seconds.
        def acting_metrics() -> str | None:
            page = httpx.get(f"http://127.0.0.1:{ports[acting]}/metrics", timeout=5).text
            return page if metric(page, 'hookyard_subjects{status="down"}') == 1.0 else None

        page = wait_until(acting_metrics, timeout=10, what="the acting scheduler to count the down subject")
        assert page is not None
        assert metric(page, 'hookyard_subjects{status="up"}') == 0.0
        assert metric(page, 'hookyard_subjects{status="grace"}') == 0.0
        last_sweep = metric(page, "hookyard_sweep_last_run_timestamp_seconds")
        assert last_sweep is not None
        assert time.time() - 5 <= last_sweep <= time.time() + 1, last_sweep
        assert (metric(page, 'hookyard_status_flips_total{from_status="grace",to_status="down"}') or 0) >= 1
        assert (metric(page, "hookyard_sweep_seconds_count") or 0) >= 1

        # The standby never swept, and exports no count of subjects it did not measure.
        idle_page = httpx.get(f"http://127.0.0.1:{ports[idle]}/metrics", timeout=5).text
        assert metric(idle_page, "hookyard_sweep_last_run_timestamp_seconds") == 0.0
        down = metric(idle_page, 'hookyard_subjects{status="down"}')
        assert down is None or math.isnan(down)

        for name, process in schedulers.items():
            assert process.stop() == 0, f"{name}:\n{process.log()}"
