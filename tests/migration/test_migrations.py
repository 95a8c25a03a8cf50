"""Migrations: one database built from all of them matches the expected schema; twice changes nothing."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from hookyard.config import Settings
from hookyard.errors import MigrationError
from schema.migrate import ensure_partitions, load_migrations, migrate
from tests.integration.helpers import github_event
from tests.support.processes import HOOKYARD, fleet_env
from workers.scheduler import run_once
from workers.store import EventStore

#: The tables and columns users and the acceptance checks read (SPEC "Stored data"), by type.
EXPECTED_COLUMNS = {
    "events": {
        "source": "text", "delivery_id": "text", "received_at": "timestamp with time zone",
        "stored_at": "timestamp with time zone", "event_type": "text", "action": "text", "repository": "text",
        "actor": "text", "team": "text", "channel": "text", "entity_type": "text", "entity_id": "text",
        "project": "text", "service": "text", "environment": "text", "version": "text", "status": "text",
        "payload": "jsonb", "payload_raw": "text", "payload_issue": "text", "project_id": "bigint",
    },
    "event_keys": {"source": "text", "delivery_id": "text", "received_at": "timestamp with time zone"},
    "dead_letters": {
        "id": "bigint", "dedup_key": "text", "queue": "text", "actor": "text", "message_id": "text",
        "source": "text", "delivery_id": "text", "reason": "text", "detail": "text", "attempts": "integer",
        "body": "bytea", "failed_at": "timestamp with time zone", "replayed_at": "timestamp with time zone",
        "replay_count": "integer",
    },
    "consumer_breakers": {
        "actor": "text", "state": "text", "opened_at": "timestamp with time zone", "dead_letters": "integer",
        "window_seconds": "double precision", "detail": "text", "reset_at": "timestamp with time zone",
        "trips": "integer",
    },
    "organizations": {
        "id": "bigint", "slug": "text", "name": "text", "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "projects": {
        "id": "bigint", "organization_id": "bigint", "slug": "text", "name": "text", "status": "USER-DEFINED",
        "description": "text", "git_url": "text", "last_commit_hash": "text", "tech_stack": "jsonb",
        "dependencies": "jsonb", "language_stats": "jsonb", "greediness": "numeric", "metadata": "jsonb",
        "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone",
        "archived_at": "timestamp with time zone",
    },
    "project_keys": {
        "id": "bigint", "project_id": "bigint", "key_hash": "text", "key_prefix": "text", "label": "text",
        "scopes": "ARRAY", "created_at": "timestamp with time zone", "revoked_at": "timestamp with time zone",
        "last_used_at": "timestamp with time zone",
    },
    "project_links": {"target": "text", "project_id": "bigint", "created_at": "timestamp with time zone"},
    "error_patterns": {
        "id": "bigint", "project_id": "bigint", "pattern_hash": "text", "grouping": "text",
        "components": "jsonb", "exception_type": "text", "title": "text", "sample_message": "text",
        "level": "text", "severity": "text",
        "occurrence_count": "bigint", "first_seen_at": "timestamp with time zone",
        "last_seen_at": "timestamp with time zone", "status": "USER-DEFINED",
        "resolved_at": "timestamp with time zone", "regressed_at": "timestamp with time zone",
        "regression_count": "integer", "resolution": "text", "auto_fixable": "boolean",
        "ignored_until": "timestamp with time zone", "ignored_until_count": "bigint",
        "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone",
    },
    "error_occurrences": {
        "project_id": "bigint", "event_id": "text", "received_at": "timestamp with time zone",
        "occurred_at": "timestamp with time zone", "stored_at": "timestamp with time zone",
        "pattern_hash": "text", "level": "text", "exception_type": "text", "message": "text",
        "release": "text", "environment": "text", "origin": "text", "payload": "jsonb",
    },
    "checks": {
        "id": "bigint", "project_id": "bigint", "slug": "text", "uuid": "uuid", "name": "text",
        "kind": "USER-DEFINED", "period": "interval", "schedule": "text", "tz": "text", "grace": "interval",
        "paused": "boolean", "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "runtime_status": {
        "id": "bigint", "project_id": "bigint", "check_id": "bigint", "subject": "text",
        "process_name": "text",
        "host": "text", "pid": "integer", "port": "integer", "status": "USER-DEFINED", "running": "boolean",
        "run_started_at": "timestamp with time zone", "run_id": "text", "cpu_usage": "double precision",
        "memory_usage": "bigint", "last_heartbeat_at": "timestamp with time zone",
        "last_duration": "interval",
        "due_at": "timestamp with time zone", "alarm_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "status_flips": {
        "id": "bigint", "project_id": "bigint", "check_id": "bigint", "subject": "text",
        "from_status": "USER-DEFINED", "to_status": "USER-DEFINED", "at": "timestamp with time zone",
        "cause": "text", "recorded_at": "timestamp with time zone",
    },
    "project_metrics": {
        "project_id": "bigint", "metric_type": "text", "name": "text", "value": "double precision",
        "unit": "text", "recorded_at": "timestamp with time zone", "check_id": "bigint", "subject": "text",
        "metadata": "jsonb",
    },
    "resource_budgets": {
        "id": "bigint", "project_id": "bigint", "resource_type": "text", "budget_period": "USER-DEFINED",
        "period_start": "timestamp with time zone", "period_end": "timestamp with time zone",
        "allocated_amount": "numeric", "used_amount": "numeric", "reserved_amount": "numeric", "unit": "text",
        "auto_reset": "boolean", "enforcement": "USER-DEFINED", "thresholds": "ARRAY",
        "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone",
    },
    "schema_migrations": {
        "version": "integer", "name": "text", "checksum": "text", "applied_at": "timestamp with time zone",
    },
}  # fmt: skip


def catalog(url: str) -> dict[str, Any]:
    """Everything a migration could change, as comparable data."""
    with psycopg.connect(url) as conn:
        return {
            "relations": conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' ORDER BY 1"
            ).fetchall(),
            "columns": conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ).fetchall(),
            "functions": conn.execute(
                "SELECT proname, md5(prosrc) FROM pg_proc"
                " WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
            ).fetchall(),
            "migrations": conn.execute(
                "SELECT version, name, checksum FROM schema_migrations ORDER BY 1"
            ).fetchall(),
        }


def test_migrate_creates_the_database_and_the_expected_schema(empty_database_url: str) -> None:
    applied = migrate(empty_database_url, today=date(2026, 11, 24))
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    with psycopg.connect(empty_database_url) as conn:
        for table, expected in EXPECTED_COLUMNS.items():
            columns = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
                    (table,),
                ).fetchall()
            )
            assert columns == expected, table
        kinds = dict(
            conn.execute("SELECT relname, relkind FROM pg_class WHERE relname LIKE 'events%%'").fetchall()
        )
        assert kinds["events"] == "p"  # partitioned
        assert kinds["events_default"] == "r"
        assert {
            f"events_{month}" for month in ("2026_10", "2026_11", "2026_12", "2027_01", "2027_02")
        } <= set(kinds)
        views = {row[0] for row in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
        assert views == {
            "github_events", "slack_events", "linear_events", "deployment_events", "error_patterns_summary",
            "project_dashboard",
        }  # fmt: skip
        key = conn.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p"
            " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = 'events'::regclass"
        ).fetchone()
        assert key == ("r", "received_at")  # PARTITION BY RANGE (received_at)


def test_migrating_twice_changes_nothing(empty_database_url: str) -> None:
    migrate(empty_database_url, today=date(2026, 11, 24))
    before = catalog(empty_database_url)
    assert migrate(empty_database_url, today=date(2026, 11, 24)) == []
    assert catalog(empty_database_url) == before


def test_hookyard_migrate_twice_from_the_command_line(empty_database_url: str) -> None:
    env = fleet_env(DATABASE_URL=empty_database_url)
    first = subprocess.run(
        [HOOKYARD, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    second = subprocess.run(
        [HOOKYARD, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert first.returncode == 0, first.stderr
    assert f"{len(load_migrations())} migration(s) applied" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "0 migration(s) applied" in second.stdout


def test_a_migration_edited_after_it_was_applied_is_refused(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_database_url)


def test_a_partition_created_later_takes_its_rows_out_of_the_default_partition(
    fresh_database_url: str,
) -> None:
    from psycopg_pool import ConnectionPool  # noqa: PLC0415

    far = datetime(2031, 5, 17, 12, tzinfo=UTC)
    event = github_event().model_copy(update={"received_at": far})
    with ConnectionPool(fresh_database_url, min_size=1, max_size=1) as pool:
        EventStore(pool).store([event])

    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        where = "SELECT tableoid::regclass::text FROM events WHERE delivery_id = %s"
        assert conn.execute(where, (event.delivery_id,)).fetchone() == ("events_default",)  # the safe home
        created = ensure_partitions(conn, months_ahead=0, today=date(2031, 5, 1))
        assert "events_2031_05" in created
        row = conn.execute(
            "SELECT tableoid::regclass::text FROM events WHERE delivery_id = %s", (event.delivery_id,)
        ).fetchone()
        assert row == ("events_2031_05",)
        assert conn.execute("SELECT count(*) FROM events_default").fetchone() == (0,)


def test_retention_drops_expired_partitions_with_their_delivery_keys(fresh_database_url: str) -> None:
    from psycopg_pool import ConnectionPool  # noqa: PLC0415

    old = github_event().model_copy(update={"received_at": datetime(2026, 7, 3, tzinfo=UTC)})
    recent = github_event().model_copy(update={"received_at": datetime(2026, 11, 3, tzinfo=UTC)})
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        ensure_partitions(conn, months_ahead=0, today=date(2026, 8, 1))  # July's partition exists
        with ConnectionPool(fresh_database_url, min_size=1, max_size=1) as pool:
            EventStore(pool).store([old, recent])
        settings = Settings(database_url=fresh_database_url, hookyard_retention_months=3)
        run_once(conn, settings, today=date(2026, 11, 24))  # keep August onwards
        tables = {
            row[0] for row in conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'events_20%%'")
        }
        assert "events_2026_07" not in tables
        assert {"events_2026_08", "events_2026_11", "events_2027_02"} <= tables
        keys = conn.execute(
            "SELECT delivery_id FROM event_keys WHERE delivery_id = ANY(%s)",
            ([old.delivery_id, recent.delivery_id],),
        ).fetchall()
        assert keys == [(recent.delivery_id,)]
