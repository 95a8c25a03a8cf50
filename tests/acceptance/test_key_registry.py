"""Each ``hookyard serve`` holds the keys in memory: revocations reach every process within 5 s,
and known keys keep working while PostgreSQL is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
import pytest

from contracts.keys import key_hash
from ops import samples
from tests.conftest import INGEST_TOKENS, free_port
from tests.integration.test_project_keys import create_key, create_project
from tests.support.processes import HookyardProcess, fleet_env, start_web
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def deploy(port: int, token: str) -> int:
    body = orjson.dumps({**samples.deployment(), "project": None})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/deployments", content=body, headers=headers, timeout=10
    ).status_code


def test_a_revoked_key_is_refused_by_every_serve_process_within_five_seconds(
    fresh_database_url: str, empty_queues: str, tmp_path: Path
) -> None:
    env = fleet_env(
        DATABASE_URL=fresh_database_url,
        AMQP_URL=empty_queues,
        HOOKYARD_INGEST_TOKEN=INGEST_TOKENS[0],
        HOOKYARD_LOG_FORMAT="json",
    )
    ports = [free_port(), free_port()]
    webs = [start_web(env, port, tmp_path / f"web-{port}.log") for port in ports]
    try:
        with psycopg.connect(fresh_database_url, autocommit=True) as db:
            _, key = create_key(db, create_project(db, "revoked-soon"))
            # Created after both started: they learn of it by notification, not at start.
            for port in ports:
                wait_until(
                    lambda p=port: deploy(p, key) == 202, timeout=5, what=f"port {port} to accept the new key"
                )
            db.execute("UPDATE project_keys SET revoked_at = now() WHERE key_hash = %s", (key_hash(key),))
            revoked_at = time.monotonic()
            for port in ports:
                wait_until(
                    lambda p=port: deploy(p, key) == 401, timeout=5, what=f"port {port} to refuse the key"
                )
            assert time.monotonic() - revoked_at < 5
    finally:
        for web in webs:
            web.stop()


def test_known_keys_are_accepted_through_a_postgresql_outage_and_changes_resume_after_it(
    fresh_database_url: str, empty_queues: str, tmp_path: Path
) -> None:
    parts = urlsplit(fresh_database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    port = free_port()
    env = fleet_env(
        DATABASE_URL=parts._replace(netloc=f"{parts.username}@{proxy.address}").geturl(),
        AMQP_URL=empty_queues,
        HOOKYARD_INGEST_TOKEN=INGEST_TOKENS[0],
        HOOKYARD_LOG_FORMAT="json",
    )
    web: HookyardProcess | None = None
    try:
        with psycopg.connect(fresh_database_url, autocommit=True) as db:
            project = create_project(db, "outage")
            _, known = create_key(db, project)
            web = start_web(env, port, tmp_path / "web.log")
            wait_until(lambda: deploy(port, known) == 202, timeout=10, what="the key to be accepted")

            proxy.cut()
            _, created_during = create_key(db, project)
            for _ in range(20):
                assert deploy(port, known) == 202  # answered from memory, confirmed by RabbitMQ
            assert deploy(port, created_during) == 401  # not known before the outage
            assert deploy(port, INGEST_TOKENS[0]) == 202  # the operator token needs no database

            proxy.restore()
            wait_until(lambda: deploy(port, created_during) == 202, timeout=20, what="the registry to reload")
            db.execute("UPDATE project_keys SET revoked_at = now() WHERE project_id = %s", (project,))
            wait_until(lambda: deploy(port, known) == 401, timeout=5, what="the revocation after the outage")
        log: Any = web.log()
        assert log.count('"key_registry_unavailable"') == 1
        assert log.count('"key_registry_restored"') == 1
    finally:
        if web is not None:
            web.stop()
        proxy.close()
