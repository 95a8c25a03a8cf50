"""The real Sentry SDK, given a project's DSN, reports to Hookyard: grouped, counted once, refused whole."""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import brotli
import httpx
import orjson
import psycopg
import pytest
import sentry_sdk
from sentry_sdk.crons import capture_checkin

from hookyard.config import Settings
from tests.conftest import InProcessServer, InProcessWorker, make_settings, queue_depth
from tests.integration.test_project_keys import create_key, create_project
from tests.support.waiting import wait_until


@pytest.fixture
def fleet(fresh_database_url: str, empty_queues: str) -> Iterator[dict[str, Any]]:
    """A server and a worker over a database of this test's own, with one project and its key."""
    settings = make_settings(fresh_database_url, empty_queues, hookyard_max_body_bytes=256 * 1024)
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        project_id = create_project(db, "checkout")
        _, key = create_key(db, project_id)
        other_id = create_project(db, "billing")
        _, other_key = create_key(db, other_id)
        with InProcessServer(settings) as server, InProcessWorker(settings):
            yield {
                "db": db,
                "settings": settings,
                "url": server.url,
                "project_id": project_id,
                "key": key,
                "other_key": other_key,
                "dsn": f"http://{key}@127.0.0.1:{server.port}/{project_id}",
            }


@pytest.fixture
def sdk(fleet: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[None]:
    """sentry_sdk.init with the project's DSN and the compression the test names (default brotli)."""
    algorithm = getattr(request, "param", "br")
    sentry_sdk.init(
        dsn=fleet["dsn"],
        default_integrations=False,
        auto_enabling_integrations=False,
        _experiments={"transport_compression_algo": algorithm},
    )
    yield
    sentry_sdk.flush(timeout=10)
    sentry_sdk.get_client().close()


def patterns(db: psycopg.Connection[Any], project_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT grouping, exception_type, title, occurrence_count, status::text, regression_count"
        " FROM error_patterns WHERE project_id = %s ORDER BY id",
        (project_id,),
    ).fetchall()


def occurrences(db: psycopg.Connection[Any], project_id: int) -> int:
    row = db.execute("SELECT count(*) FROM error_occurrences WHERE project_id = %s", (project_id,)).fetchone()
    return int(row[0]) if row else 0


def fail_checkout(order: int) -> None:
    try:
        int(f"order-{order}")
    except ValueError as exc:
        raise RuntimeError(f"checkout {order} failed for user{order}@example.com") from exc


@pytest.mark.parametrize("sdk", ["br", "gzip"], indirect=True)
@pytest.mark.usefixtures("sdk")
def test_exceptions_of_one_kind_group_into_one_pattern_counted_exactly(fleet: dict[str, Any]) -> None:
    for order in (17, 4242, 9):
        try:
            fail_checkout(order)
        except RuntimeError:
            sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    db, project = fleet["db"], fleet["project_id"]
    wait_until(lambda: occurrences(db, project) == 3, timeout=20, what="three occurrences")
    [(grouping, exception_type, _, count, status, _)] = wait_until(
        lambda: (rows := patterns(db, project)) and rows[0][3] == 3 and rows, timeout=10, what="the pattern"
    )
    assert (grouping, exception_type, count, status) == ("exception_frames", "RuntimeError", 3, "unresolved")


@pytest.mark.usefixtures("sdk")
def test_messages_fingerprints_and_chains_form_their_own_patterns(fleet: dict[str, Any]) -> None:
    sentry_sdk.capture_message("Payment provider answered 502 after 1200 ms")
    sentry_sdk.capture_message("Payment provider answered 504 after 30000 ms")  # the same message, normalized
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["payment-provider-down"]
        sentry_sdk.capture_message("anything at all")
    try:
        try:
            {}["missing"]
        except KeyError as cause:
            raise RuntimeError("checkout 1 failed for user1@example.com") from cause
    except RuntimeError:
        sentry_sdk.capture_exception()  # same outer exception as fail_checkout, a different cause
    try:
        fail_checkout(1)
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    db, project = fleet["db"], fleet["project_id"]
    wait_until(lambda: occurrences(db, project) == 5, timeout=20, what="five occurrences")
    rows = wait_until(
        lambda: len(rows := patterns(db, project)) == 4 and rows, timeout=10, what="four patterns"
    )
    by_grouping: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_grouping.setdefault(row[0], []).append(row)
    assert [row[3] for row in by_grouping["message"]] == [2]
    assert [row[3] for row in by_grouping["fingerprint"]] == [1]
    assert sorted(row[3] for row in by_grouping["exception_frames"]) == [1, 1]  # the chains differ


@pytest.mark.usefixtures("sdk")
def test_sdk_check_ins_start_and_end_a_run_of_their_monitors_check(fleet: dict[str, Any]) -> None:
    check_in_id = capture_checkin(monitor_slug="nightly-backup", status="in_progress")
    sentry_sdk.flush(timeout=10)
    db = fleet["db"]

    def state() -> tuple[Any, ...] | None:
        return db.execute(
            "SELECT r.status::text, r.running, r.last_duration IS NOT NULL FROM runtime_status r"
            " JOIN checks c ON c.id = r.check_id WHERE c.slug = 'nightly-backup' AND c.project_id = %s",
            (fleet["project_id"],),
        ).fetchone()

    started = wait_until(lambda: (row := state()) is not None and row[1] and row, timeout=20, what="the run")
    assert started == ("new", True, False)
    capture_checkin(monitor_slug="nightly-backup", check_in_id=check_in_id, status="ok", duration=12.5)
    sentry_sdk.flush(timeout=10)
    ended = wait_until(
        lambda: (row := state()) is not None and not row[1] and row, timeout=20, what="the end"
    )
    assert ended == ("up", False, True)


def envelope(event_id: str, message: str = "Disk full on /var/lib/postgresql") -> bytes:
    event = orjson.dumps({"event_id": event_id, "level": "error", "platform": "python", "message": message})
    return b"\n".join(
        [
            orjson.dumps({"event_id": event_id, "sent_at": "2026-11-30T10:00:00Z"}),
            orjson.dumps({"type": "event", "length": len(event)}),
            event,
            orjson.dumps({"type": "session"}),
            b'{"sid": "x", "status": "ok"}',
        ]
    )


def post_envelope(
    fleet: dict[str, Any], body: bytes, *, key: str | None = None, **headers: str
) -> httpx.Response:
    auth = f"Sentry sentry_key={key or fleet['key']}, sentry_version=7, sentry_client=hookyard-test/1"
    return httpx.post(
        f"{fleet['url']}/api/{fleet['project_id']}/envelope/",
        content=body,
        headers={"X-Sentry-Auth": auth, "Content-Type": "application/x-sentry-envelope", **headers},
        timeout=10,
    )


def test_a_redelivered_envelope_counts_once_and_a_regression_reopens_the_pattern(
    fleet: dict[str, Any],
) -> None:
    db, project = fleet["db"], fleet["project_id"]
    first = uuid.uuid4().hex
    for _ in range(3):
        response = post_envelope(fleet, envelope(first))
        assert response.status_code == 200
        assert response.json() == {"id": first}
    wait_until(lambda: occurrences(db, project) == 1, timeout=20, what="the occurrence")
    wait_until(lambda: patterns(db, project)[0][3] == 1, timeout=10, what="a count of one")
    db.execute(
        "UPDATE error_patterns SET status = 'resolved', resolved_at = now() WHERE project_id = %s", (project,)
    )

    assert post_envelope(fleet, envelope(first)).status_code == 200  # a redelivery never regresses
    assert post_envelope(fleet, envelope(uuid.uuid4().hex, "Disk full on /var/lib/redis")).status_code == 200
    wait_until(lambda: occurrences(db, project) == 2, timeout=20, what="the second occurrence")
    [(_, _, _, count, status, regressions)] = wait_until(
        lambda: (rows := patterns(db, project)) and rows[0][4] == "unresolved" and rows,
        timeout=10,
        what="regression",
    )
    assert (count, status, regressions) == (2, "unresolved", 1)


def test_legacy_store_endpoint_and_query_string_key_are_accepted(fleet: dict[str, Any]) -> None:
    event_id = uuid.uuid4().hex
    body = gzip.compress(orjson.dumps({"event_id": event_id, "message": "legacy"}))
    response = httpx.post(
        f"{fleet['url']}/api/{fleet['project_id']}/store/?sentry_key={fleet['key']}&sentry_version=7",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"id": event_id}
    wait_until(lambda: occurrences(fleet["db"], fleet["project_id"]) == 1, timeout=20, what="the occurrence")


#: A well-formed envelope with one event: what a bad item is appended to (and must not save).
GOOD = envelope("0" * 32) + b"\n"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (GOOD + b'{"type": "event", "length": 50}\n{"short": 1}', {}, 400, "invalid_envelope"),
        (GOOD + b'{"type": "event", "length": 2}\n{"longer": 1}', {}, 400, "invalid_envelope"),
        (b"not json\n" + GOOD, {}, 400, "invalid_envelope"),
        (GOOD + b'{"type": "event"}\nnot an event', {}, 400, "invalid_envelope"),
        (GOOD + b"{not an item header}\n{}", {}, 400, "invalid_envelope"),
        (gzip.compress(GOOD)[:-6], {"Content-Encoding": "gzip"}, 400, "invalid_encoding"),
        (zlib.compress(b"\n" * 300_000), {"Content-Encoding": "deflate"}, 413, "payload_too_large"),
        (brotli.compress(b" " * 10_000_000, quality=4), {"Content-Encoding": "br"}, 413, "payload_too_large"),
        (GOOD, {"Content-Encoding": "zstd"}, 415, "unsupported_encoding"),
    ],
    ids=["shorter-than-length", "longer-than-length", "header-not-json", "event-not-json",
         "item-header-not-json", "cut-gzip", "deflate-bomb", "brotli-bomb", "unknown-encoding"],
)  # fmt: skip
def test_bad_envelopes_are_refused_whole_and_nothing_is_stored(
    fleet: dict[str, Any], body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = post_envelope(fleet, body, **headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert queue_depth(fleet["settings"].amqp_url, "errors") == 0
    assert occurrences(fleet["db"], fleet["project_id"]) == 0


def test_a_key_of_another_project_is_403_and_an_unknown_key_401(fleet: dict[str, Any]) -> None:
    body = envelope(uuid.uuid4().hex)
    assert post_envelope(fleet, body, key=fleet["other_key"]).status_code == 403
    assert post_envelope(fleet, body, key="A" * 32).status_code == 401
    response = httpx.post(f"{fleet['url']}/api/{fleet['project_id']}/envelope/", content=body, timeout=10)
    assert response.status_code == 401
    assert queue_depth(fleet["settings"].amqp_url, "errors") == 0


def test_v1_errors_are_grouped_like_sentry_reports(fleet: dict[str, Any]) -> None:
    report = {
        "id": f"v1-{uuid.uuid4()}",
        "message": "connection to 10.0.0.12:5432 refused",
        "exception_type": "OperationalError",
        "frames": [{"filename": "/srv/app/db.py", "function": "connect", "lineno": 41, "in_app": True}],
        "level": "error",
    }
    twin = {**report, "id": f"v1-{uuid.uuid4()}", "frames": [{**report["frames"][0], "lineno": 99}]}
    headers = {"Authorization": f"Bearer {fleet['key']}", "Content-Type": "application/json"}
    response = httpx.post(f"{fleet['url']}/v1/errors", content=orjson.dumps([report, twin]), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"delivery_ids": [report["id"], twin["id"]]}
    again = httpx.post(f"{fleet['url']}/v1/errors", content=orjson.dumps(report), headers=headers)
    assert again.status_code == 202
    wait_until(lambda: occurrences(fleet["db"], fleet["project_id"]) == 2, timeout=20, what="two occurrences")
    rows = wait_until(
        lambda: (rows := patterns(fleet["db"], fleet["project_id"])) and rows[0][3] == 2 and rows,
        timeout=10,
        what="one pattern of two",
    )
    assert [(row[0], row[1], row[3]) for row in rows] == [("exception_frames", "OperationalError", 2)]


def test_v1_errors_under_the_operator_token_must_name_a_project(fleet: dict[str, Any]) -> None:
    settings: Settings = fleet["settings"]
    headers = {
        "Authorization": f"Bearer {settings.hookyard_ingest_token[0]}",
        "Content-Type": "application/json",
    }
    body = {"id": "x", "message": "boom"}
    response = httpx.post(f"{fleet['url']}/v1/errors", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 422
    named = httpx.post(
        f"{fleet['url']}/v1/errors", content=orjson.dumps({**body, "project": "brand-new"}), headers=headers
    )
    assert named.status_code == 202
    project = wait_until(
        lambda: (
            fleet["db"].execute("SELECT id, status::text FROM projects WHERE slug = 'brand-new'").fetchone()
        ),
        timeout=20,
        what="the discovered project",
    )
    assert project[1] == "discovered"
    wait_until(lambda: occurrences(fleet["db"], project[0]) == 1, timeout=10, what="its occurrence")
