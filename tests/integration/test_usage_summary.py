"""``GET /v1/usage/summary`` on the real server: totals per window, group-bys, who may ask, and refusals.

Usage rows are inserted with SQL as the database owner, the way the usage worker leaves them, across
hours, days and months of January and February 2026 (days before today, so day and month totals of
whole days come from the materialized view, refreshed here as the scheduler would).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from contracts.keys import Scope, key_hash, key_prefix, new_key
from contracts.usage_summary import UsageSummary
from producers import usage_summary
from producers.http import Request
from tests.conftest import INGEST_TOKENS, InProcessServer, free_port, make_settings

OPERATOR = INGEST_TOKENS[0]
_ids = itertools.count()


def create_project(db: psycopg.Connection[Any], slug: str, org: str = "default") -> int:
    db.execute("INSERT INTO organizations (slug, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (org, org))
    row = db.execute(
        "INSERT INTO projects (organization_id, slug, name) SELECT id, %s, %s FROM organizations"
        " WHERE slug = %s RETURNING id",
        (slug, slug, org),
    ).fetchone()
    assert row is not None
    return int(row[0])


def create_key(db: psycopg.Connection[Any], project_id: int, scopes: tuple[Scope, ...] = tuple(Scope)) -> str:
    key = new_key()
    db.execute(
        "INSERT INTO project_keys (project_id, key_hash, key_prefix, scopes) VALUES (%s, %s, %s, %s)",
        (project_id, key_hash(key), key_prefix(key), [str(scope) for scope in scopes]),
    )
    return key


def use(
    db: psycopg.Connection[Any],
    project_id: int,
    at: str | datetime,
    amount: str,
    *,
    resource_type: str = "llm_tokens",
    unit: str | None = "tokens",
    cost: str | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """One usage record, as the worker stores it."""
    recorded_at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    db.execute(
        "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, cost_cad,"
        " recorded_at, received_at, billing_period, origin, metadata)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " date_trunc('month', %s AT TIME ZONE 'UTC')::date, 'v1', %s)",
        (
            project_id,
            f"u-{next(_ids)}",
            resource_type,
            Decimal(amount),
            unit,
            None if cost is None else Decimal(cost),
            recorded_at,
            recorded_at,
            recorded_at,
            psycopg.types.json.Jsonb(metadata or {}),
        ),
    )


def refresh(db: psycopg.Connection[Any]) -> None:
    db.execute("SELECT hookyard_refresh_resource_summary()")


@pytest.fixture
def usage(fresh_database_url: str, amqp_url: str) -> Iterator[dict[str, Any]]:
    """Projects alpha and beta (default organization) and acme/gamma, their keys, alpha's usage of
    January and February 2026, and a server over that database."""
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        for month in ("2026-01-01", "2026-02-01"):
            db.execute(
                "SELECT hookyard_ensure_month_partition('resource_usage', 'recorded_at', %s)", (month,)
            )
        alpha, beta, gamma = (
            create_project(db, "alpha"),
            create_project(db, "beta"),
            create_project(db, "gamma", "acme"),
        )
        keys = {
            "alpha": create_key(db, alpha),
            "alpha_no_usage": create_key(db, alpha, (Scope.DEPLOYMENTS, Scope.BUDGETS)),
            "alpha_revoked": create_key(db, alpha),
            "beta": create_key(db, beta),
            "gamma": create_key(db, gamma),
        }
        db.execute(
            "UPDATE project_keys SET revoked_at = now() WHERE key_hash = %s",
            (key_hash(keys["alpha_revoked"]),),
        )
        use(db, alpha, "2026-01-15T10:05:00Z", "100", cost="0.5", metadata={"model": "a"})
        use(db, alpha, "2026-01-15T10:55:00Z", "50", cost="0.25", metadata={"model": "b"})
        use(db, alpha, "2026-01-15T11:10:00Z", "25")
        use(db, alpha, "2026-01-15T12:00:00Z", "7", unit=None)
        use(db, alpha, "2026-01-15T10:30:00Z", "30", resource_type="gpu_seconds", unit="seconds", cost="3")
        use(db, alpha, "2026-01-16T09:00:00Z", "10", cost="0.1", metadata={"model": "a"})
        use(db, alpha, "2026-01-31T23:59:59.999999Z", "2", cost="0.02", metadata={"model": "b"})
        use(db, alpha, "2026-02-01T00:00:00Z", "1.5", cost="0.015", metadata={"model": "a"})
        use(db, beta, "2026-01-15T10:00:00Z", "999", cost="9")
        refresh(db)
        with InProcessServer(make_settings(fresh_database_url, amqp_url)) as server:
            yield {"url": server.url, "db": db, "keys": keys, "alpha": alpha, "gamma": gamma}


def summary(base: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}/v1/usage/summary", params=params, headers=headers, timeout=10)


def totals(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    UsageSummary.model_validate(response.json())
    found: list[dict[str, Any]] = response.json()["totals"]
    return found


def brief(response: httpx.Response) -> list[tuple[Any, ...]]:
    """Each total as (window start, resource type, unit, records, amount, cost[, group])."""
    return [
        (
            t["window_start"],
            t["resource_type"],
            t["unit"],
            t["records"],
            t["amount"],
            t["cost_cad"],
            *((t["group"],) if "group" in t else ()),
        )
        for t in totals(response)
    ]


def test_hour_windows_total_each_hour_per_resource_type_and_unit(usage: dict[str, Any]) -> None:
    answer = summary(
        usage["url"], OPERATOR, project="alpha", window="hour",
        to="2026-01-16T00:00:00Z", **{"from": "2026-01-15T00:00:00Z"},
    )  # fmt: skip
    assert brief(answer) == [
        ("2026-01-15T10:00:00Z", "gpu_seconds", "seconds", 1, "30", "3"),
        ("2026-01-15T10:00:00Z", "llm_tokens", "tokens", 2, "150", "0.75"),
        ("2026-01-15T11:00:00Z", "llm_tokens", "tokens", 1, "25", None),
        ("2026-01-15T12:00:00Z", "llm_tokens", None, 1, "7", None),
    ]
    body = answer.json()
    assert body["project"] == "alpha"
    assert body["window"] == "hour"
    assert body["resource_type"] is None
    assert (body["from"], body["to"]) == ("2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z")


def test_day_and_month_windows_count_each_instant_once_at_their_boundaries(usage: dict[str, Any]) -> None:
    days = summary(
        usage["url"], OPERATOR, project="alpha", window="day", resource_type="llm_tokens",
        to="2026-02-02T00:00:00Z", **{"from": "2026-01-15T00:00:00Z"},
    )  # fmt: skip
    assert brief(days) == [
        ("2026-01-15T00:00:00Z", "llm_tokens", None, 1, "7", None),
        ("2026-01-15T00:00:00Z", "llm_tokens", "tokens", 3, "175", "0.75"),
        ("2026-01-16T00:00:00Z", "llm_tokens", "tokens", 1, "10", "0.1"),
        ("2026-01-31T00:00:00Z", "llm_tokens", "tokens", 1, "2", "0.02"),
        ("2026-02-01T00:00:00Z", "llm_tokens", "tokens", 1, "1.5", "0.015"),
    ]
    months = summary(
        usage["url"], OPERATOR, project="alpha", window="month",
        to="2026-03-01T00:00:00Z", **{"from": "2026-01-01T00:00:00Z"},
    )  # fmt: skip
    assert brief(months) == [
        ("2026-01-01T00:00:00Z", "gpu_seconds", "seconds", 1, "30", "3"),
        ("2026-01-01T00:00:00Z", "llm_tokens", None, 1, "7", None),
        ("2026-01-01T00:00:00Z", "llm_tokens", "tokens", 5, "187", "0.87"),
        ("2026-02-01T00:00:00Z", "llm_tokens", "tokens", 1, "1.5", "0.015"),
    ]


def test_a_range_that_cuts_days_counts_only_what_lies_inside_it(usage: dict[str, Any]) -> None:
    # [10:30 on the 15th, 09:00 on the 16th): the part-days at both ends, and `to` itself excluded.
    cut = summary(
        usage["url"], OPERATOR, project="alpha", window="day", resource_type="llm_tokens",
        to="2026-01-16T09:00:00Z", **{"from": "2026-01-15T10:30:00Z"},
    )  # fmt: skip
    assert brief(cut) == [
        ("2026-01-15T00:00:00Z", "llm_tokens", None, 1, "7", None),
        ("2026-01-15T00:00:00Z", "llm_tokens", "tokens", 2, "75", "0.25"),
    ]
    # Offsets are read as given and answered in UTC: 11:00+01:00 is 10:00Z.
    offset = summary(
        usage["url"], OPERATOR, project="alpha", window="hour", resource_type="llm_tokens",
        to="2026-01-15T12:00:00+01:00", **{"from": "2026-01-15T11:00:00+01:00"},
    )  # fmt: skip
    assert brief(offset) == [("2026-01-15T10:00:00Z", "llm_tokens", "tokens", 2, "150", "0.75")]
    assert (offset.json()["from"], offset.json()["to"]) == ("2026-01-15T10:00:00Z", "2026-01-15T11:00:00Z")


def test_group_by_gives_one_total_per_metadata_value(usage: dict[str, Any]) -> None:
    grouped = summary(
        usage["url"], OPERATOR, project="alpha", window="day", resource_type="llm_tokens", group_by="model",
        to="2026-01-17T00:00:00Z", **{"from": "2026-01-15T00:00:00Z"},
    )  # fmt: skip
    assert brief(grouped) == [
        ("2026-01-15T00:00:00Z", "llm_tokens", None, 1, "7", None, None),
        ("2026-01-15T00:00:00Z", "llm_tokens", "tokens", 1, "25", None, None),  # no model
        ("2026-01-15T00:00:00Z", "llm_tokens", "tokens", 1, "100", "0.5", "a"),
        ("2026-01-15T00:00:00Z", "llm_tokens", "tokens", 1, "50", "0.25", "b"),
        ("2026-01-16T00:00:00Z", "llm_tokens", "tokens", 1, "10", "0.1", "a"),
    ]
    assert grouped.json()["group_by"] == "model"
    ungrouped = summary(
        usage["url"], OPERATOR, project="alpha", window="day", resource_type="llm_tokens",
        to="2026-01-17T00:00:00Z", **{"from": "2026-01-15T00:00:00Z"},
    )  # fmt: skip
    assert all("group" not in total for total in totals(ungrouped))


def test_late_usage_of_an_earlier_day_joins_day_totals_at_the_next_refresh(usage: dict[str, Any]) -> None:
    db, base = usage["db"], usage["url"]
    use(db, usage["alpha"], "2026-01-16T09:30:00Z", "5", cost="0.05")
    window = {"to": "2026-01-17T00:00:00Z", "from": "2026-01-16T00:00:00Z"}
    hours = summary(base, OPERATOR, project="alpha", window="hour", resource_type="llm_tokens", **window)
    assert brief(hours) == [("2026-01-16T09:00:00Z", "llm_tokens", "tokens", 2, "15", "0.15")]
    # Whole past days are read from the view: the late record is there after the scheduler's refresh.
    days = {"project": "alpha", "window": "day", "resource_type": "llm_tokens", **window}
    assert brief(summary(base, OPERATOR, **days)) == [
        ("2026-01-16T00:00:00Z", "llm_tokens", "tokens", 1, "10", "0.1")
    ]
    refresh(db)
    assert brief(summary(base, OPERATOR, **days)) == [
        ("2026-01-16T00:00:00Z", "llm_tokens", "tokens", 2, "15", "0.15")
    ]


def test_todays_usage_is_in_day_totals_at_once(usage: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    use(usage["db"], usage["alpha"], now, "4", resource_type="storage_gb", unit="GB")
    answer = summary(
        usage["url"], OPERATOR, project="alpha", window="day", resource_type="storage_gb",
        to=(now + timedelta(seconds=1)).isoformat(), **{"from": (now - timedelta(days=3)).isoformat()},
    )  # fmt: skip
    assert [(t["records"], t["amount"]) for t in totals(answer)] == [(1, "4")]
    # The default range is the last 24 hours.
    recent = summary(usage["url"], OPERATOR, project="alpha", window="hour", resource_type="storage_gb")
    assert [(t["records"], t["amount"]) for t in totals(recent)] == [(1, "4")]
    assert datetime.fromisoformat(recent.json()["to"]) - datetime.fromisoformat(
        recent.json()["from"]
    ) == timedelta(hours=24)


def test_who_may_read_which_project(usage: dict[str, Any]) -> None:
    base, keys = usage["url"], usage["keys"]
    january = {"window": "month", "to": "2026-02-01T00:00:00Z", "from": "2026-01-01T00:00:00Z"}
    own = summary(base, keys["alpha"], **january)
    assert own.json()["project"] == "alpha"
    assert totals(own) == totals(summary(base, keys["alpha"], project="alpha", **january))
    assert totals(own) == totals(summary(base, keys["alpha"], project="default/alpha", **january))
    assert totals(own) == totals(summary(base, OPERATOR, project="alpha", **january))
    assert [t["amount"] for t in totals(summary(base, keys["beta"], **january))] == ["999"]

    refusals = [
        (summary(base, keys["alpha"], project="beta", **january), 403, "forbidden_project"),
        (summary(base, keys["beta"], project="alpha", **january), 403, "forbidden_project"),
        (summary(base, keys["alpha_no_usage"], **january), 403, "missing_scope"),
        (summary(base, keys["alpha_revoked"], **january), 401, "key_revoked"),
        (summary(base, None, project="alpha", **january), 401, "missing_token"),
        (summary(base, "not-a-token", project="alpha", **january), 401, "invalid_token"),
        (summary(base, OPERATOR, **january), 400, "missing_parameter"),
        (summary(base, OPERATOR, project="nobody", **january), 404, "unknown_project"),
        (summary(base, keys["gamma"], project="gamma", **january), 403, "forbidden_project"),
    ]
    for response, status, error in refusals:
        assert (response.status_code, response.json()["error"]) == (status, error), response.text
        assert set(response.json()) >= {"error", "detail"}

    # A project outside the default organization is named org/slug, by keys and in answers.
    gamma = summary(base, keys["gamma"], project="acme/gamma", **january)
    assert (gamma.status_code, gamma.json()["project"], totals(gamma)) == (200, "acme/gamma", [])
    assert summary(base, OPERATOR, project="acme/gamma", **january).json()["project"] == "acme/gamma"


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["window"]),
        ({"window": "week"}, ["window"]),
        ({"window": "day", "from": "2026-01-15"}, ["from"]),
        ({"window": "day", "to": "2026-01-15T10:00:00"}, ["to"]),
        ({"window": "day", "from": "2026-01-15T25:00:00Z"}, ["from"]),
        ({"window": "day", "from": "2026-02-30T00:00:00Z"}, ["from"]),
        ({"window": "day", "from": "2026-01-15T10:00:00 01:00"}, ["from"]),  # a + sent unencoded
        ({"window": "day", "from": "2026-01-16T00:00:00Z", "to": "2026-01-15T00:00:00Z"}, ["from"]),
        ({"window": "day", "from": "2026-01-16T00:00:00Z", "to": "2026-01-16T00:00:00Z"}, ["from"]),
        ({"window": "day", "project": "Alpha"}, ["project"]),
        ({"window": "day", "resource_type": ""}, ["resource_type"]),
        ({"window": "day", "resource_type": "x" * 256}, ["resource_type"]),
        ({"window": "day", "group_by": "mo\x00del"}, ["group_by"]),
        ({"window": "day", "group_by": ""}, ["group_by"]),
        ({"window": "day", "groupby": "model"}, ["groupby"]),
        ({"window": "fortnight", "from": "yesterday"}, ["window", "from"]),
    ],
)
def test_parameters_that_do_not_hold_are_422_with_each_field(
    usage: dict[str, Any], params: dict[str, str], fields: list[str]
) -> None:
    answer = summary(usage["url"], OPERATOR, **{"project": "alpha", **params})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed"
    assert body["detail"]
    assert [error["field"] for error in body["errors"]] == fields
    assert all(error["message"] for error in body["errors"])


def test_a_repeated_parameter_or_a_query_that_is_not_utf8_is_400(usage: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    for query, error in (
        ("project=alpha&window=day&window=hour", "duplicate_parameter"),
        ("project=alpha&window=day&resource_type=%FF", "invalid_query"),
    ):
        answer = httpx.get(f"{usage['url']}/v1/usage/summary?{query}", headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (400, error), answer.text


def test_more_totals_than_one_answer_holds_is_422(usage: dict[str, Any]) -> None:
    db = usage["db"]
    busy = create_project(db, "busy")
    db.execute(
        "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, recorded_at,"
        " received_at, billing_period, origin)"
        " SELECT %s, 'b' || g, 'calls', 1, 'calls', t, t,"
        " date_trunc('month', t AT TIME ZONE 'UTC')::date, 'v1'"
        " FROM generate_series(0, 10000) g,"
        " LATERAL (SELECT timestamptz '2026-01-01Z' + g * interval '1 hour' AS t) s",
        (busy,),
    )
    span = {"from": "2026-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"}
    hourly = summary(usage["url"], OPERATOR, project="busy", window="hour", **span)
    assert (hourly.status_code, hourly.json()["error"]) == (422, "too_many_totals"), hourly.text
    refresh(db)
    daily = summary(usage["url"], OPERATOR, project="busy", window="day", **span)
    assert len(totals(daily)) == 417
    assert sum(int(total["amount"]) for total in totals(daily)) == 10_001


def test_postgresql_unreachable_is_503_with_retry_after(amqp_url: str) -> None:
    settings = make_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", amqp_url)
    server = InProcessServer(settings)
    server.server.config.lifespan = "off"  # no publisher, no key registry: only the operator token
    with server as running:
        answer = summary(running.url, OPERATOR, project="alpha", window="day")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "database_unavailable"
    assert answer.headers["retry-after"] == "5"


def _request(query: str) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/v1/usage/summary", "query_string": query.encode()}
    return Request(scope, {"authorization": f"Bearer {OPERATOR}"}, receive, frozenset(), {})


def test_with_the_web_process_pool_summaries_take_at_most_half_of_it(
    fresh_database_url: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_summary, "POOL_WAIT", 0.2)
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        use(db, create_project(db, "pooled"), datetime.now(UTC) - timedelta(minutes=5), "3")

    async def scenario() -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            fresh_database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=True)
        try:
            handler = usage_summary.summary_endpoint(make_settings(fresh_database_url, amqp_url), None, pool)
            answer = await handler(_request("project=pooled&window=day"))
            assert answer.status == 200, answer.body
            assert [t["amount"] for t in orjson.loads(answer.body)["totals"]] == ["3"]

            share = usage_summary.from_pool(pool)  # 2 of the 4 connections
            async with share() as first, share():
                assert not first.closed
                with pytest.raises(PoolTimeout):
                    async with share():
                        pass
                async with pool.connection(timeout=0.2), pool.connection(timeout=0.2):
                    pass  # the other half is still there for the reservations
            async with share():
                pass
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_pool_that_cannot_reach_postgresql_is_503(amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_summary, "POOL_WAIT", 0.5)
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"

    async def scenario() -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            nowhere, min_size=1, max_size=2, open=False, kwargs={"connect_timeout": 1}
        )
        await pool.open(wait=False)
        try:
            handler = usage_summary.summary_endpoint(make_settings(nowhere, amqp_url), None, pool)
            answer = await handler(_request("project=alpha&window=day"))
            assert (answer.status, orjson.loads(answer.body)["error"]) == (503, "database_unavailable")
            assert (b"retry-after", b"5") in answer.headers
        finally:
            await pool.close()

    asyncio.run(scenario())
