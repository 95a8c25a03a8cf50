"""Usage from the real CloudEvents SDK and /v1/usage: metered, priced, stored once, counted into budgets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from cloudevents.v1.conversion import to_dict, to_structured
from cloudevents.v1.http import CloudEvent

from tests.conftest import InProcessServer, InProcessWorker, make_settings, queue_depth
from tests.integration.test_project_keys import create_key, create_project
from tests.support.waiting import wait_until


@pytest.fixture
def fleet(fresh_database_url: str, empty_queues: str) -> Iterator[dict[str, Any]]:
    settings = make_settings(fresh_database_url, empty_queues)
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        project = create_project(db, "llm-app")
        _, key = create_key(db, project)
        other = create_project(db, "other")
        db.execute(
            "INSERT INTO meters (slug, event_type, resource_type, unit, aggregation, value_property,"
            " group_by) VALUES"
            " ('tokens', 'llm.completion', 'tokens', 'token', 'SUM', '$.tokens', '{\"model\": \"$.model\"}'),"
            " ('calls', 'llm.completion', 'api_calls', 'call', 'COUNT', NULL, '{}')"
        )
        with InProcessServer(settings) as server, InProcessWorker(settings):
            yield {
                "db": db,
                "url": server.url,
                "key": key,
                "project": project,
                "other": other,
                "amqp": empty_queues,
            }


def completion(
    tokens: Any = 1200, model: str = "large", subject: str = "llm-app", **overrides: Any
) -> CloudEvent:
    attributes = {
        "type": "llm.completion",
        "source": "service/chat",
        "id": str(uuid.uuid4()),
        "subject": subject,
        "time": "2026-11-30T10:00:00Z",
        **overrides,
    }
    return CloudEvent(attributes, {"tokens": tokens, "model": model})


def post(fleet: dict[str, Any], headers: dict[str, str], body: bytes | str) -> httpx.Response:
    return httpx.post(
        f"{fleet['url']}/api/v1/events",
        content=body,
        headers={**headers, "Authorization": f"Bearer {fleet['key']}"},
        timeout=10,
    )


def usage_rows(db: psycopg.Connection[Any], project: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT resource_type, amount, unit, metadata FROM resource_usage WHERE project_id = %s"
        " ORDER BY resource_type, amount",
        (project,),
    ).fetchall()


def test_a_structured_cloudevent_from_the_sdk_is_metered_by_every_matching_meter(
    fleet: dict[str, Any],
) -> None:
    headers, body = to_structured(completion(tokens=1200))
    response = post(fleet, headers, body)
    assert response.status_code == 204, response.text
    assert response.content == b""
    rows = wait_until(
        lambda: len(rows := usage_rows(fleet["db"], fleet["project"])) == 2 and rows, what="usage"
    )
    assert rows == [
        ("api_calls", Decimal(1), "call", {}),
        ("tokens", Decimal(1200), "token", {"model": "large"}),
    ]


def test_a_batch_is_stored_once_whatever_the_redeliveries(fleet: dict[str, Any]) -> None:
    events = [completion(tokens=n) for n in (10, 20, 30)]
    body = orjson.dumps([to_dict(event) for event in events])
    headers = {"Content-Type": "application/cloudevents-batch+json; charset=utf-8"}
    for _ in range(3):
        assert post(fleet, headers, body).status_code == 204
    wait_until(lambda: len(usage_rows(fleet["db"], fleet["project"])) == 6, what="six usage rows")
    total = (
        fleet["db"]
        .execute(
            "SELECT sum(amount) FROM resource_usage WHERE project_id = %s AND resource_type = 'tokens'",
            (fleet["project"],),
        )
        .fetchone()
    )
    assert total == (Decimal(60),)


def test_an_event_no_meter_takes_is_kept_as_an_event(fleet: dict[str, Any]) -> None:
    headers, body = to_structured(completion(type="llm.embedding"))
    assert post(fleet, headers, body).status_code == 204
    row = wait_until(
        lambda: (
            fleet["db"]
            .execute("SELECT event_type, project_id FROM events WHERE source = 'cloudevents'")
            .fetchone()
        ),
        what="the unmetered event",
    )
    assert row == ("llm.embedding", fleet["project"])


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("application/cloudevents+json; charset=latin-1", 415), ("application/xml", 415)],
)
def test_a_wrong_content_type_is_415(fleet: dict[str, Any], content_type: str, status: int) -> None:
    _, body = to_structured(completion())
    response = post(fleet, {"Content-Type": content_type}, body)
    assert response.status_code == status
    assert response.json()["error"] == "unsupported_media_type"


def test_a_missing_subject_is_400_and_a_foreign_one_403_with_nothing_published(fleet: dict[str, Any]) -> None:
    event = to_dict(completion())
    del event["subject"]
    response = post(fleet, {"Content-Type": "application/cloudevents+json"}, orjson.dumps(event))
    assert response.status_code == 400, response.text
    headers, body = to_structured(completion(subject="other"))
    assert post(fleet, headers, body).status_code == 403
    assert queue_depth(fleet["amqp"], "usage") == 0


def test_v1_usage_is_priced_in_cad_at_the_rate_in_force_with_decimals(fleet: dict[str, Any]) -> None:
    db = fleet["db"]
    db.execute(
        "INSERT INTO currency_rates (currency, valid_from, rate_to_cad) VALUES ('USD', '2026-11-01', 1.40)"
    )
    db.execute(
        "INSERT INTO currency_rates (currency, valid_from, rate_to_cad) VALUES ('USD', '2026-12-01', 1.50)"
    )
    body = {
        "id": f"u-{uuid.uuid4()}",
        "resource_type": "gpu_seconds",
        "quantity": "0.1",
        "unit": "s",
        "unit_cost": "0.2",
        "currency": "USD",
        "occurred_at": datetime(2026, 11, 30, 12, tzinfo=UTC).isoformat(),
    }
    headers = {"Authorization": f"Bearer {fleet['key']}", "Content-Type": "application/json"}
    for _ in range(2):
        response = httpx.post(
            f"{fleet['url']}/v1/usage", content=orjson.dumps(body), headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
    row = wait_until(
        lambda: db.execute("SELECT amount, cost_cad, billing_period::text FROM resource_usage").fetchall(),
        what="the usage row",
    )
    assert row == [(Decimal("0.1"), Decimal("0.028000"), "2026-11-01")]  # 0.1 x 0.2 x 1.40, exactly


def test_usage_moves_its_budget_once_and_crosses_each_threshold_once(fleet: dict[str, Any]) -> None:
    db = fleet["db"]
    recorded = datetime(2026, 11, 30, 10, tzinfo=UTC)
    db.execute(
        "SELECT * FROM hookyard_set_budget(%s, 'tokens', 'monthly', 1000, 'token', 'hard', '{50,80,100}',"
        " true, %s)",
        (fleet["project"], recorded),
    )
    events = [completion(tokens=n) for n in (300, 300, 300)]  # 30%, 60%, 90%: crosses 50 and 80 once each
    for event in events:
        headers, body = to_structured(event)
        for _ in range(2):  # every event twice: a sender's retry
            assert post(fleet, headers, body).status_code == 204

    def budget() -> tuple[Any, ...] | None:
        row = db.execute(
            "SELECT used_amount FROM resource_budgets WHERE project_id = %s AND resource_type = 'tokens'",
            (fleet["project"],),
        ).fetchone()
        return row if row and row[0] == Decimal(900) else None

    assert wait_until(budget, what="the budget to count 900 tokens") == (Decimal(900),)
    alerts = db.execute("SELECT threshold FROM budget_alerts ORDER BY threshold").fetchall()
    assert alerts == [(50,), (80,)]
    usage = db.execute(
        "SELECT count(*) FROM resource_usage WHERE project_id = %s AND resource_type = 'tokens'",
        (fleet["project"],),
    ).fetchone()
    assert usage == (3,)
