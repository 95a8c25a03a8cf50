"""Fixtures shared by every tier: real services, isolated per run, removed afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pika
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from hookyard.config import Settings
from ops.broker import purge
from tests.support.services import (
    RabbitAdmin,
    rabbit_admin_available,
    reachable,
    unavailable,
    vhost_url,
)
from tests.support.waiting import wait_until

RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"

GITHUB_SECRETS = ("gh-current-secret", "gh-previous-secret")
SLACK_SECRETS = ("slack-current-secret", "slack-previous-secret")
LINEAR_SECRETS = ("linear-current-secret", "linear-previous-secret")
INGEST_TOKENS = ("ingest-token-current", "ingest-token-previous")


def _docker_available() -> bool:
    try:
        import docker  # noqa: PLC0415

        docker.from_env().ping()
    except Exception:  # noqa: BLE001 - no Docker engine, for whatever reason, means: don't use it
        return False
    return True


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL to the ``postgres`` database of a server the suite may create databases on."""
    url = os.environ.get("HOOKYARD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if reachable(url, 5432):
        yield url
        return
    if not _docker_available():
        unavailable("PostgreSQL")
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    with PostgresContainer("postgres:15", driver=None) as container:
        yield container.get_connection_url().replace("/test", "/postgres")


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[tuple[str, RabbitAdmin]]:
    """(base AMQP URL without vhost, an admin that can add and delete vhosts)."""
    url = os.environ.get("HOOKYARD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if reachable(url, 5672) and rabbit_admin_available():
        yield url, RabbitAdmin()
        return
    if not _docker_available():
        unavailable("RabbitMQ (with rabbitmqctl to create a vhost)")
    from testcontainers.rabbitmq import RabbitMqContainer  # noqa: PLC0415

    with RabbitMqContainer("rabbitmq:3.10") as container:
        host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
        yield f"amqp://guest:guest@{host}:{port}/", RabbitAdmin(container)


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(statement)
    return make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def as_url(conninfo: str) -> str:
    """psycopg conninfo → a postgresql:// URL, as Hookyard's settings take it."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    return f"postgresql://{user}{password}@{host}:{port}/{params['dbname']}"


@pytest.fixture(scope="session")
def template_database(postgres_admin_url: str) -> Iterator[str]:
    """A database migrated once per run; tests get copies of it."""
    from schema.migrate import migrate  # noqa: PLC0415

    name = f"hookyard_tpl_{RUN_ID}"
    url = as_url(make_conninfo(postgres_admin_url, dbname=name))
    migrate(url)
    yield name
    _drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str, template_database: str) -> Iterator[str]:
    """The run's database: migrated, shared by the tests of the run (they use unique delivery ids)."""
    name = f"hookyard_test_{RUN_ID}"
    conninfo = _create_database(postgres_admin_url, name, template_database)
    yield as_url(conninfo)
    _drop_database(postgres_admin_url, name)


@pytest.fixture
def fresh_database_url(postgres_admin_url: str, template_database: str) -> Iterator[str]:
    """A migrated database of this test's own, for tests that count every row."""
    name = f"hookyard_fresh_{RUN_ID}_{secrets.token_hex(3)}"
    conninfo = _create_database(postgres_admin_url, name, template_database)
    yield as_url(conninfo)
    _drop_database(postgres_admin_url, name)


@pytest.fixture
def empty_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A name for a database that does not exist yet (migrate must create it); dropped afterwards."""
    name = f"hookyard_empty_{RUN_ID}_{secrets.token_hex(3)}"
    yield as_url(make_conninfo(postgres_admin_url, dbname=name))
    _drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def amqp_url(rabbitmq: tuple[str, RabbitAdmin]) -> Iterator[str]:
    """The run's own RabbitMQ vhost."""
    base, admin = rabbitmq
    vhost = f"hookyard_test_{RUN_ID}"
    admin.add_vhost(vhost, "guest")
    yield vhost_url(base, vhost)
    admin.delete_vhost(vhost)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def make_settings(database_url: str, amqp_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "github_webhook_secret": GITHUB_SECRETS,
        "slack_signing_secret": SLACK_SECRETS,
        "linear_webhook_secret": LINEAR_SECRETS,
        "hookyard_ingest_token": INGEST_TOKENS,
        "hookyard_worker_metrics_port": 0,
        "hookyard_log_format": "json",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, amqp_url: str) -> Settings:
    return make_settings(database_url, amqp_url)


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in ``queue`` (0 when it does not exist yet)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
    finally:
        if connection.is_open:
            connection.close()


@pytest.fixture
def empty_queues(amqp_url: str) -> str:
    """The run's vhost with every Hookyard queue declared and empty."""
    purge(amqp_url)
    return amqp_url


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InProcessServer:
    """The real ingestion app on a real uvicorn server, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn  # noqa: PLC0415

        from producers.app import create_app  # noqa: PLC0415
        from producers.edge import EdgeLimits, edge_protocol  # noqa: PLC0415

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            http=edge_protocol(EdgeLimits.from_settings(settings)),  # the protocol `hookyard serve` runs
            ws="none",
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=15, what="uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def server(settings: Settings, empty_queues: str) -> Iterator[InProcessServer]:
    with InProcessServer(settings) as running:
        yield running


class InProcessWorker:
    """The real Dramatiq worker with the fleet's actors, in threads of the test process."""

    def __init__(self, settings: Settings, threads: int = 4) -> None:
        import dramatiq  # noqa: PLC0415
        from psycopg_pool import ConnectionPool  # noqa: PLC0415

        from workers.actors import build_broker, register_actors  # noqa: PLC0415
        from workers.group import GroupCommit  # noqa: PLC0415
        from workers.heartbeats import CheckStore  # noqa: PLC0415
        from workers.patterns import PatternStore  # noqa: PLC0415
        from workers.registry import QUEUES  # noqa: PLC0415
        from workers.store import EventStore  # noqa: PLC0415
        from workers.usage import UsageStore  # noqa: PLC0415

        self.pool: ConnectionPool[Any] = ConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=threads + 1,
            timeout=5,
            open=False,
            kwargs={"connect_timeout": 3},
        )
        self.pool.open(wait=False)
        self.broker = build_broker(settings.amqp_url)
        self.actors = register_actors(
            self.broker,
            {
                "events": GroupCommit(EventStore(self.pool)),
                "errors": GroupCommit(PatternStore(self.pool)),
                "heartbeats": GroupCommit(CheckStore(self.pool)),
                "usage": GroupCommit(UsageStore(self.pool)),
            },
        )
        self.worker = dramatiq.Worker(self.broker, queues=set(QUEUES), worker_threads=threads)

    def __enter__(self) -> InProcessWorker:
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop(timeout=10_000)
        self.broker.close()
        self.pool.close()


@pytest.fixture
def worker(settings: Settings, empty_queues: str) -> Iterator[InProcessWorker]:
    with InProcessWorker(settings) as running:
        yield running
