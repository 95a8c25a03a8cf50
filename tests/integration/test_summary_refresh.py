"""The scheduler's pass refreshes ``project_resource_summary`` without blocking its readers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from hookyard.config import Settings
from workers.scheduler import run_once


def summary_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT project, usage_date::text, resource_type, unit, records, total_amount, total_cost_cad"
        " FROM project_resource_summary ORDER BY 1, 2, 3, 4"
    ).fetchall()


def refreshes_observed() -> float:
    return REGISTRY.get_sample_value("hookyard_summary_refresh_seconds_count") or 0.0


@pytest.fixture
def owner(fresh_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The database owner's connection, with one project and a day of its usage stored."""
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        project = conn.execute(
            "INSERT INTO projects (organization_id, slug, name) SELECT id, 'metered', 'metered'"
            " FROM organizations WHERE slug = 'default' RETURNING id"
        ).fetchone()
        assert project is not None
        at = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0)
        for number, amount in enumerate(("100", "20.5")):
            conn.execute(
                "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, cost_cad,"
                " recorded_at, received_at, billing_period, origin)"
                " VALUES (%s, %s, 'llm_tokens', %s, 'tokens', 0.01, %s, %s, %s, 'v1')",
                (project[0], f"u{number}", Decimal(amount), at, at, at.date().replace(day=1)),
            )
        yield conn


def test_a_scheduler_pass_refreshes_the_usage_summary(owner: psycopg.Connection[Any]) -> None:
    assert summary_rows(owner) == []  # usage stored since the view was last refreshed is not in it yet
    before = refreshes_observed()
    settings = Settings(
        database_url="postgresql://unused@127.0.0.1/unused", hookyard_summary_refresh_interval=0.001
    )
    run_once(owner, settings)
    today = datetime.now(UTC).date().isoformat()
    assert summary_rows(owner) == [
        ("metered", today, "llm_tokens", "tokens", 2, Decimal("120.5000000000"), Decimal("0.020000"))
    ]
    assert refreshes_observed() == before + 1


def test_readers_and_the_refresh_never_wait_for_each_other(
    owner: psycopg.Connection[Any], fresh_database_url: str
) -> None:
    settings = Settings(database_url=fresh_database_url, hookyard_summary_refresh_interval=0.001)
    with psycopg.connect(fresh_database_url) as reader, psycopg.connect(fresh_database_url) as refresher:
        for conn in (owner, reader, refresher):
            conn.execute("SET lock_timeout = '2s'")  # a wait would fail the test, not hang it
        # A reader inside a long transaction does not hold the refresh up...
        assert summary_rows(reader) == []
        run_once(owner, settings)
        # ...and while a refresh is under way (not yet committed), readers read what it replaces.
        owner.execute(
            "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, recorded_at,"
            " received_at, billing_period, origin)"
            " SELECT project_id, 'u-late', resource_type, 1, unit, recorded_at, received_at, billing_period,"
            " origin FROM resource_usage LIMIT 1"
        )
        refresher.execute("SELECT hookyard_refresh_resource_summary()")
        reader.commit()
        assert [row[4] for row in summary_rows(reader)] == [2]
        refresher.commit()
        reader.commit()
        assert [row[4] for row in summary_rows(reader)] == [3]
