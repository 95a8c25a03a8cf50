"""Healthchecks-compatible pings, instance heartbeats and Sentry check-ins, on the real fleet.

Transitions that wait for time are driven by calling the sweep with a clock the test sets.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests.conftest import InProcessServer, InProcessWorker, make_settings, queue_depth
from tests.integration.test_project_keys import create_key, create_project
from tests.support.waiting import wait_until
from workers.sweep import sweep_once


@pytest.fixture
def fleet(fresh_database_url: str, empty_queues: str) -> Iterator[dict[str, Any]]:
    settings = make_settings(fresh_database_url, empty_queues)
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        project = create_project(db, "crons")
        _, key = create_key(db, project)
        with InProcessServer(settings) as server, InProcessWorker(settings):
            yield {"db": db, "url": server.url, "key": key, "project": project, "amqp": empty_queues}


def status(db: psycopg.Connection[Any], slug: str, subject: str = "") -> dict[str, Any] | None:
    row = db.execute(
        "SELECT r.status::text, r.running, r.last_duration, r.due_at, r.alarm_at, r.cpu_usage, r.memory_usage"
        " FROM runtime_status r JOIN checks c ON c.id = r.check_id WHERE c.slug = %s AND r.subject = %s",
        (slug, subject),
    ).fetchone()
    if row is None:
        return None
    keys = ("status", "running", "last_duration", "due_at", "alarm_at", "cpu", "memory")
    return dict(zip(keys, row, strict=True))


def flips(db: psycopg.Connection[Any], slug: str) -> list[tuple[str, str, str]]:
    return [
        (str(a), str(b), str(c))
        for a, b, c in db.execute(
            "SELECT f.from_status::text, f.to_status::text, f.cause FROM status_flips f"
            " JOIN checks c ON c.id = f.check_id WHERE c.slug = %s ORDER BY f.id",
            (slug,),
        ).fetchall()
    ]


def wait_status(db: psycopg.Connection[Any], slug: str, expected: str, subject: str = "") -> dict[str, Any]:
    return wait_until(
        lambda: (row := status(db, slug, subject)) is not None and row["status"] == expected and row,
        timeout=20,
        what=f"{slug} to be {expected}",
    )


def test_the_healthchecks_curl_one_liner_reports_success_and_failure(fleet: dict[str, Any]) -> None:
    base = f"{fleet['url']}/ping/{fleet['key']}/nightly-backup"
    created = httpx.get(f"{base}?create=1", timeout=10)
    assert (created.status_code, created.text) == (201, "Created")
    assert created.headers["ping-body-limit"] == "10000"
    assert created.headers["content-type"].startswith("text/plain")
    again = httpx.get(f"{base}?create=1", timeout=10)
    assert (again.status_code, again.text) == (200, "OK")
    wait_status(fleet["db"], "nightly-backup", "up")

    # What a crontab line does: run the job, then ping with its exit status and its output.
    script = (
        'log="$(echo backup failed: disk full; false)"; curl -fsS -m 10 --retry 5 --data-raw "$log" URL/$?'
    )
    result = subprocess.run(
        ["bash", "-c", script.replace("URL", base)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "OK"
    wait_status(fleet["db"], "nightly-backup", "down")
    row = (
        fleet["db"]
        .execute("SELECT exit_status, body, signal FROM check_pings ORDER BY received_at DESC LIMIT 1")
        .fetchone()
    )
    assert row == (1, "backup failed: disk full", "fail")
    assert flips(fleet["db"], "nightly-backup") == [("new", "up", "success"), ("up", "down", "fail")]


def test_a_start_and_its_end_paired_by_rid_give_the_run_duration(fleet: dict[str, Any]) -> None:
    httpx.get(f"{fleet['url']}/ping/{fleet['key']}/etl?create=1", timeout=10)
    check_uuid = wait_until(
        lambda: fleet["db"].execute("SELECT uuid::text FROM checks WHERE slug = 'etl'").fetchone(),
        what="the check",
    )[0]
    rid = str(uuid.uuid4())
    assert httpx.post(f"{fleet['url']}/ping/{check_uuid}/start?rid={rid}", timeout=10).text == "OK"
    wait_until(
        lambda: (row := status(fleet["db"], "etl")) is not None and row["running"], what="the run to start"
    )
    assert httpx.head(f"{fleet['url']}/ping/{check_uuid}/0?rid={rid}", timeout=10).status_code == 200
    row = wait_until(
        lambda: (row := status(fleet["db"], "etl")) is not None and not row["running"] and row, what="the end"
    )
    assert row["status"] == "up"
    assert row["last_duration"] is not None
    assert row["last_duration"] >= timedelta(0)
    metrics = fleet["db"].execute("SELECT metric_type, name, unit FROM project_metrics").fetchall()
    assert ("duration", "etl", "s") in metrics


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("{key}/backup/256", ""),
        ("{key}/Bad_Slug", ""),
        ("{key}/backup", "?rid=not-a-uuid"),
        ("{key}/backup/restart", ""),
    ],
)
def test_bad_ping_urls_are_400_invalid_url_format_with_nothing_stored(
    fleet: dict[str, Any], path: str, query: str
) -> None:
    response = httpx.post(
        f"{fleet['url']}/ping/{path.format(key=fleet['key'])}{query}", content=b"x", timeout=10
    )
    assert (response.status_code, response.text) == (400, "invalid url format")
    assert queue_depth(fleet["amqp"], "heartbeats") == 0


def test_unknown_checks_and_keys_are_404_not_found(fleet: dict[str, Any]) -> None:
    for path in (f"{fleet['key']}/never-created", f"{uuid.uuid4()}", f"{'A' * 32}/backup"):
        response = httpx.get(f"{fleet['url']}/ping/{path}", timeout=10)
        assert (response.status_code, response.text) == (404, "not found")
    assert queue_depth(fleet["amqp"], "heartbeats") == 0


def test_a_post_body_is_kept_up_to_ten_thousand_bytes(fleet: dict[str, Any]) -> None:
    base = f"{fleet['url']}/ping/{fleet['key']}/verbose"
    assert httpx.post(f"{base}?create=1", content=b"x" * 25_000, timeout=10).status_code == 201
    body = wait_until(
        lambda: fleet["db"].execute("SELECT body FROM check_pings WHERE signal = 'success'").fetchone(),
        what="the ping",
    )[0]
    assert body == "x" * 10_000


def heartbeat(key: str, url: str, **fields: Any) -> httpx.Response:
    body = {
        "id": f"hb-{uuid.uuid4()}",
        "instance": {"host": "web-1", "pid": 4242, "port": 8000},
        "sent_at": datetime.now(UTC).isoformat(),
        "service": "api",
        **fields,
    }
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(f"{url}/v1/heartbeats", content=orjson.dumps(body), headers=headers, timeout=10)


def test_instance_heartbeats_create_their_check_and_record_cpu_memory_and_metrics(
    fleet: dict[str, Any],
) -> None:
    response = heartbeat(fleet["key"], fleet["url"], cpu_percent=37.5, memory_mb=512, metrics={"queue": 12})
    assert response.status_code == 202, response.text
    row = wait_status(fleet["db"], "api", "up", subject="web-1:4242:8000")
    assert (row["cpu"], row["memory"]) == (37.5, 512 * 1024 * 1024)
    names = {
        (metric_type, name, value)
        for metric_type, name, value in fleet["db"]
        .execute("SELECT metric_type, name, value FROM project_metrics ORDER BY name")
        .fetchall()
    }
    assert names == {
        ("resource", "cpu_percent", 37.5),
        ("resource", "memory", 512.0),
        ("custom", "queue", 12.0),
    }
    check = fleet["db"].execute("SELECT period, grace FROM checks WHERE slug = 'api'").fetchone()
    assert check == (timedelta(days=1), timedelta(hours=1))  # SPEC's defaults


def test_a_late_report_never_moves_a_status_backwards_and_a_duplicate_applies_once(
    fleet: dict[str, Any],
) -> None:
    now = datetime.now(UTC)
    duplicate_id = f"hb-{uuid.uuid4()}"
    assert (
        heartbeat(
            fleet["key"], fleet["url"], id=duplicate_id, signal="fail", sent_at=now.isoformat()
        ).status_code
        == 202
    )
    wait_status(fleet["db"], "api", "down", subject="web-1:4242:8000")
    late = (now - timedelta(seconds=30)).isoformat()
    assert heartbeat(fleet["key"], fleet["url"], signal="ok", sent_at=late).status_code == 202
    assert (
        heartbeat(
            fleet["key"], fleet["url"], id=duplicate_id, signal="fail", sent_at=now.isoformat()
        ).status_code
        == 202
    )
    marker = heartbeat(fleet["key"], fleet["url"], service="marker")  # applied after the two above
    assert marker.status_code == 202
    wait_status(fleet["db"], "marker", "up", subject="web-1:4242:8000")
    assert status(fleet["db"], "api", "web-1:4242:8000")["status"] == "down"  # type: ignore[index]
    assert flips(fleet["db"], "api") == [("new", "down", "fail")]


def test_subjects_go_to_grace_then_down_on_the_sweep_clock_and_a_ping_brings_them_back(
    fleet: dict[str, Any],
) -> None:
    db = fleet["db"]
    base = f"{fleet['url']}/ping/{fleet['key']}/every-minute"
    httpx.get(f"{base}?create=1", timeout=10)
    db.execute(
        "UPDATE checks SET period = interval '1 minute', grace = interval '30 seconds'"
        " WHERE slug = 'every-minute'"
    )
    pinged_at = datetime.now(UTC)
    assert httpx.get(base, timeout=10).text == "OK"
    def second_ping_applied() -> dict[str, Any] | None:
        row = status(db, "every-minute")
        due = row["due_at"] if row else None
        # Due a minute after the second ping; the first, under the default period, is due in a day.
        if due is not None and pinged_at + timedelta(seconds=59) <= due <= pinged_at + timedelta(minutes=2):
            return row
        return None

    row = wait_until(second_ping_applied, what="the second ping applied")
    due = row["due_at"]
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        assert sweep_once(conn, due - timedelta(seconds=1)).flips == 0
        assert status(db, "every-minute")["status"] == "up"  # type: ignore[index]
        assert sweep_once(conn, due + timedelta(seconds=1)).flips == 1
        assert status(db, "every-minute")["status"] == "grace"  # type: ignore[index]
        assert sweep_once(conn, due + timedelta(seconds=31)).flips == 1
        assert status(db, "every-minute")["status"] == "down"  # type: ignore[index]
        assert sweep_once(conn, due + timedelta(days=1)).flips == 0  # down stays down until a report
    assert httpx.get(base, timeout=10).text == "OK"
    wait_status(db, "every-minute", "up")
    assert [to for _, to, _ in flips(db, "every-minute")] == ["up", "grace", "down", "up"]


def test_a_started_run_that_never_ends_is_down_after_the_grace_time(fleet: dict[str, Any]) -> None:
    db = fleet["db"]
    base = f"{fleet['url']}/ping/{fleet['key']}/hangs"
    httpx.get(f"{base}?create=1", timeout=10)
    wait_status(db, "hangs", "up")
    started = datetime.now(UTC)
    assert httpx.get(f"{base}/start", timeout=10).text == "OK"
    wait_until(lambda: (row := status(db, "hangs")) is not None and row["running"], what="the start")
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        # The check was created with SPEC's default grace: a run may take up to an hour.
        sweep_once(conn, started + timedelta(minutes=59))
        assert status(db, "hangs")["status"] == "up"  # type: ignore[index]
        sweep_once(conn, started + timedelta(hours=1, minutes=1))
    assert status(db, "hangs")["status"] == "down"  # type: ignore[index]


def test_the_sweep_finds_due_subjects_through_the_alarm_index(fleet: dict[str, Any]) -> None:
    db = fleet["db"]
    db.execute("SET enable_seqscan = off")  # a tiny table: make the planner show what it would use at size
    plan = "\n".join(
        row[0]
        for row in db.execute(
            "EXPLAIN SELECT id FROM runtime_status WHERE alarm_at <= now() ORDER BY alarm_at LIMIT 100"
        ).fetchall()
    )
    assert "runtime_status_alarm_idx" in plan


def test_a_sentry_check_in_feeds_the_same_checks(fleet: dict[str, Any]) -> None:
    check_in_id = uuid.uuid4().hex
    item = orjson.dumps({"check_in_id": check_in_id, "monitor_slug": "sentry-cron", "status": "in_progress"})
    body = b"\n".join([b"{}", orjson.dumps({"type": "check_in", "length": len(item)}), item])
    response = httpx.post(
        f"{fleet['url']}/api/{fleet['project']}/envelope/",
        content=body,
        headers={"X-Sentry-Auth": f"Sentry sentry_key={fleet['key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    wait_until(
        lambda: (row := status(fleet["db"], "sentry-cron")) is not None and row["running"], what="the run"
    )
