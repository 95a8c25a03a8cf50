"""``hookyard preflight`` logs in with the real credentials and says, in one line each, what is wrong.

Every case runs the installed command as ``make run`` does, against the run's own vhost and
databases; the broken cases point it at a wrong password, a vhost or role that does not exist.
"""

from __future__ import annotations

import subprocess
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import RUN_ID
from tests.support.processes import HOOKYARD, fleet_env
from tests.support.services import vhost_url


def preflight(database_url: str, amqp_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKYARD, "preflight", *args],
        env=fleet_env(DATABASE_URL=database_url, AMQP_URL=amqp_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed preflight (exit 1, no traceback, no banner)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "Hookyard is starting" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hookyard: ")
    return lines[0]


def with_netloc(url: str, netloc: str) -> str:
    return urlsplit(url)._replace(netloc=netloc).geturl()


def test_preflight_against_a_migrated_database_and_the_right_vhost_prints_every_url(
    database_url: str, amqp_url: str
) -> None:
    result = preflight(
        database_url,
        amqp_url,
        HOOKYARD_WORKER_PROCESSES="3",
        HOOKYARD_WORKER_METRICS_PORT="9500",
        HOOKYARD_SCHEDULER_METRICS_PORT="9600",
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "WARNING" not in result.stdout
    assert "Hookyard is starting:" in result.stdout
    for port in (9500, 9501, 9502):
        assert f"http://127.0.0.1:{port}/metrics" in result.stdout
    assert "9503" not in result.stdout
    assert "http://127.0.0.1:9600/metrics" in result.stdout


def test_a_wrong_rabbitmq_password_is_one_line_naming_the_user(database_url: str, amqp_url: str) -> None:
    parts = urlsplit(amqp_url)
    wrong = with_netloc(amqp_url, f"{parts.username}:not-the-password@{parts.hostname}:{parts.port or 5672}")

    line = one_failure(preflight(database_url, wrong))

    assert f"refused user {parts.username!r}" in line
    assert "ACCESS_REFUSED" in line
    assert "AMQP_URL" in line


def test_a_missing_vhost_is_one_line_saying_how_to_create_it(
    database_url: str, rabbitmq: tuple[str, Any]
) -> None:
    base, _ = rabbitmq
    missing = f"hookyard_missing_{RUN_ID}"

    line = one_failure(preflight(database_url, vhost_url(base, missing)))

    assert f"vhost {missing!r} does not exist" in line
    assert f"rabbitmqctl add_vhost {missing}" in line


def test_a_postgresql_role_that_does_not_exist_is_one_line_naming_it(
    database_url: str, amqp_url: str
) -> None:
    parts = urlsplit(database_url)
    role = f"hookyard_nobody_{RUN_ID}"

    line = one_failure(
        preflight(with_netloc(database_url, f"{role}@{parts.hostname}:{parts.port}"), amqp_url)
    )

    assert f"refused user {role!r}" in line
    assert f'role "{role}" does not exist' in line
    assert "DATABASE_URL" in line


def test_a_database_not_created_yet_is_a_warning_that_migrate_creates_it(
    empty_database_url: str, amqp_url: str
) -> None:
    result = preflight(empty_database_url, amqp_url)

    assert result.returncode == 0, result.stderr
    name = urlsplit(empty_database_url).path.lstrip("/")
    assert f"WARNING: database {name!r} does not exist yet: run `hookyard migrate`" in result.stdout
    assert "Hookyard is starting:" in result.stdout


def test_require_migrated_turns_a_missing_database_into_a_failure(
    empty_database_url: str, amqp_url: str
) -> None:
    line = one_failure(preflight(empty_database_url, amqp_url, "--require-migrated"))

    assert "does not exist yet: run `hookyard migrate`" in line


@pytest.fixture
def one_pending(fresh_database_url: str) -> str:
    """A migrated database that has forgotten its last migration."""
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"
        )
    return fresh_database_url


def test_pending_migrations_are_counted_in_a_warning(one_pending: str, amqp_url: str) -> None:
    result = preflight(one_pending, amqp_url)

    assert result.returncode == 0, result.stderr
    assert "WARNING: 1 migration(s) pending: run `hookyard migrate`" in result.stdout


def test_require_migrated_fails_on_pending_migrations(one_pending: str, amqp_url: str) -> None:
    line = one_failure(preflight(one_pending, amqp_url, "--require-migrated"))

    assert line == "hookyard: 1 migration(s) pending: run `hookyard migrate`"


def test_both_services_broken_give_one_line_each(database_url: str, amqp_url: str) -> None:
    parts = urlsplit(amqp_url)
    wrong_amqp = with_netloc(
        amqp_url, f"{parts.username}:not-the-password@{parts.hostname}:{parts.port or 5672}"
    )
    pg = urlsplit(database_url)
    wrong_pg = with_netloc(database_url, f"hookyard_nobody_{RUN_ID}@{pg.hostname}:{pg.port}")

    result = preflight(wrong_pg, wrong_amqp)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rabbitmq, postgres = result.stderr.strip().splitlines()
    assert "RabbitMQ" in rabbitmq
    assert "PostgreSQL" in postgres
