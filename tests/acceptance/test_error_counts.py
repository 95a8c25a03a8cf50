"""Exact error counts across two worker processes, with every envelope delivered several times."""

from __future__ import annotations

import random
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests.conftest import INGEST_TOKENS, free_port
from tests.integration.test_project_keys import create_key, create_project
from tests.support.processes import HookyardProcess, fleet_env, start_web
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

HOT = 300  # reports of one pattern: every worker transaction touches its row
COLD = 60  # reports of their own patterns
COPIES = 3  # each envelope is sent this many times (a sender's retries, redeliveries)


def envelope(event_id: str, message: str) -> bytes:
    event = orjson.dumps({"event_id": event_id, "level": "error", "platform": "python", "message": message})
    return b"\n".join(
        [orjson.dumps({"event_id": event_id}), orjson.dumps({"type": "event", "length": len(event)}), event]
    )


def test_two_worker_processes_count_a_hot_pattern_exactly_however_often_reports_are_redelivered(
    fresh_database_url: str, empty_queues: str, tmp_path: Path
) -> None:
    env = fleet_env(
        DATABASE_URL=fresh_database_url,
        AMQP_URL=empty_queues,
        HOOKYARD_INGEST_TOKEN=INGEST_TOKENS[0],
        HOOKYARD_WORKER_METRICS_PORT="0",
        HOOKYARD_LOG_FORMAT="json",
    )
    port = free_port()
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        project = create_project(db, "hot")
        _, key = create_key(db, project)
        processes: list[HookyardProcess] = []
        try:
            processes.append(start_web(env, port, tmp_path / "web.log"))
            processes.append(
                HookyardProcess(
                    ["worker", "--processes", "2", "--threads", "4"], env, tmp_path / "worker.log"
                )
            )
            hot = [envelope(uuid.uuid4().hex, f"Timeout after {n} ms calling payments") for n in range(HOT)]
            shuffler = random.Random(7)  # noqa: S311 - an order for the test, not a secret
            # Letters only: the normalizer keeps words and replaces numbers and hex ids.
            words = ["".join(shuffler.choices(string.ascii_lowercase, k=12)) for _ in range(COLD)]
            cold = [envelope(uuid.uuid4().hex, f"no handler registered for {word}") for word in words]
            sends = (hot + cold) * COPIES
            shuffler.shuffle(sends)
            headers = {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"}

            def send(body: bytes) -> int:
                with httpx.Client(timeout=20) as client:
                    url = f"http://127.0.0.1:{port}/api/{project}/envelope/"
                    return client.post(url, content=body, headers=headers).status_code

            with ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(send, sends))
            assert set(statuses) == {200}

            def counts() -> dict[str, Any] | None:
                rows = db.execute(
                    "SELECT title, occurrence_count FROM error_patterns WHERE project_id = %s", (project,)
                ).fetchall()
                total = sum(count for _, count in rows)
                return dict(rows) if total >= HOT + COLD else None

            patterns = wait_until(counts, timeout=90, what="every report counted")
            occurrences = db.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM error_occurrences WHERE project_id = %s",
                (project,),
            ).fetchone()
        finally:
            for process in processes:
                process.stop()
    assert occurrences == (HOT + COLD, HOT + COLD)
    assert len(patterns) == 1 + COLD
    assert patterns["Timeout after <num> ms calling payments"] == HOT
    assert sum(patterns.values()) == HOT + COLD
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
