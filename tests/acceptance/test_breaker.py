"""The dead-letter breaker: a bad deploy holds the backlog in the queue instead of dead-lettering it."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import free_port
from tests.integration.helpers import github_event, publish_events
from tests.support.processes import HOOKYARD, fleet_env, start_worker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

LIMIT = 5
MESSAGES = 60


def _count(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _breaker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKYARD, "dlq", "breaker", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_always_failing_store_opens_the_breaker_and_the_backlog_waits_until_reset(
    fresh_database_url: str, empty_queues: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = fleet_env(
        DATABASE_URL=fresh_database_url,
        AMQP_URL=empty_queues,
        HOOKYARD_BREAKER_LIMIT=str(LIMIT),
        HOOKYARD_BREAKER_WINDOW="600",
        HOOKYARD_WORKER_METRICS_PORT=str(metrics_port),
        HOOKYARD_LOG_FORMAT="json",
    )
    tag = uuid.uuid4().hex[:8]
    events = [github_event(f"breaker-{tag}-{index}") for index in range(MESSAGES)]
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        # The bad deploy: a rule every stored row breaks, so every event is refused for its data.
        conn.execute("ALTER TABLE events ADD CONSTRAINT bad_deploy CHECK (event_type = 'never')")
        for event in events:
            publish_events(empty_queues, [event])  # one message each: each is its own poison outcome
        worker = start_worker(env, tmp_path / "worker.log", threads=4)
        try:
            wait_until(
                lambda: _count(conn, "SELECT count(*) FROM consumer_breakers WHERE state = 'open'") == 1,
                timeout=60,
                what="the breaker to open",
            )
            # Messages already past the gate when it opened (at most one per thread) still finish.
            time.sleep(1)
            opened_with = _count(conn, "SELECT count(*) FROM dead_letters")
            assert LIMIT <= opened_with <= LIMIT + 4, "the breaker stopped the flood within a thread's worth"
            time.sleep(5)  # more than two polls: a consuming worker would dead-letter the rest meanwhile
            assert _count(conn, "SELECT count(*) FROM dead_letters") == opened_with
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            assert 'hookyard_breaker_open{actor="store_events"} 1.0' in metrics

            status = _breaker("status", env=env)
            assert status.returncode == 0, status.stderr
            assert "store_events" in status.stdout
            assert "open" in status.stdout

            conn.execute("ALTER TABLE events DROP CONSTRAINT bad_deploy")  # the fix is deployed
            reset = _breaker("reset", "store_events", env=env)
            assert reset.returncode == 0, reset.stderr
            waiting = MESSAGES - opened_with
            wait_until(
                lambda: (
                    _count(conn, "SELECT count(*) FROM events WHERE delivery_id LIKE %s", f"breaker-{tag}-%")
                    == waiting
                ),
                timeout=90,
                what="the held backlog to be stored after the reset",
            )
            assert _count(conn, "SELECT count(*) FROM dead_letters") == opened_with
            again = _breaker("reset", "store_events", env=env)
            assert again.returncode != 0
            assert len(again.stderr.strip().splitlines()) == 1
        finally:
            worker.stop()
    log = worker.log()
    assert '"event": "breaker_opened"' in log or '"event":"breaker_opened"' in log
