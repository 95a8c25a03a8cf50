"""An operator defining meters and exchange rates with the real ``hookyard meters`` and ``hookyard rates``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.support.cli import as_json, hookyard, ok, one_line_error


def rows(database_url: str, statement: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(statement).fetchall()


def test_a_sum_meter_with_group_bys_is_stored_as_given_and_listed(fresh_database_url: str) -> None:
    tokens = [
        "meters", "create", "llm-tokens", "--event-type", "llm.completion", "--resource-type", "llm_tokens",
        "--unit", "tokens", "--aggregation", "SUM", "--value-property", "$.usage.total_tokens",
        "--group-by", "model=$.model", "--group-by", "region=$['cloud region']",
    ]  # fmt: skip
    created = ok(hookyard(fresh_database_url, *tokens))
    assert created.startswith("created meter llm-tokens:")
    calls = [
        "meters", "create", "api-calls", "--event-type", "llm.completion", "--resource-type", "api_calls",
        "--unit", "calls", "--aggregation", "count",
    ]  # fmt: skip
    ok(hookyard(fresh_database_url, *calls))
    stored = rows(
        fresh_database_url,
        "SELECT slug, event_type, resource_type, unit, aggregation::text AS aggregation, value_property,"
        " group_by FROM meters ORDER BY slug",
    )
    assert stored == [
        {
            "slug": "api-calls",
            "event_type": "llm.completion",
            "resource_type": "api_calls",
            "unit": "calls",
            "aggregation": "COUNT",
            "value_property": None,
            "group_by": {},
        },
        {
            "slug": "llm-tokens",
            "event_type": "llm.completion",
            "resource_type": "llm_tokens",
            "unit": "tokens",
            "aggregation": "SUM",
            "value_property": "$.usage.total_tokens",
            "group_by": {"model": "$.model", "region": "$['cloud region']"},
        },
    ]
    listed = as_json(hookyard(fresh_database_url, "meters", "list", "--json"))
    assert [(m["slug"], m["aggregation"], m["value_property"], m["group_by"]) for m in listed] == [
        ("api-calls", "COUNT", None, {}),
        ("llm-tokens", "SUM", "$.usage.total_tokens", {"model": "$.model", "region": "$['cloud region']"}),
    ]
    assert all(datetime.fromisoformat(m["created_at"]).tzinfo is not None for m in listed)
    table = ok(hookyard(fresh_database_url, "meters", "list")).splitlines()
    assert table[0].split() == ["slug", "event", "type", "measure", "resource", "type", "unit", "group", "by"]
    assert "SUM($.usage.total_tokens)" in table[2]
    assert "model=$.model, region=$['cloud region']" in table[2]


def test_meters_that_could_not_run_are_refused_with_one_line(fresh_database_url: str) -> None:
    base = ["meters", "create", "m", "--event-type", "e", "--resource-type", "r", "--unit", "u"]
    refusals = {
        "a SUM meter needs a value property": [*base, "--aggregation", "SUM"],
        "a COUNT meter takes no value property": [*base, "--aggregation", "COUNT", "--value-property", "$.x"],
        "a path starts with $": [*base, "--aggregation", "SUM", "--value-property", "tokens"],
        "wildcards are not supported": [*base, "--aggregation", "SUM", "--value-property", "$.items[*]"],
        "invalid group-by name 'the model'": [*base, "--aggregation", "COUNT", "--group-by", "the model=$.m"],
        "expected NAME=PATH": [*base, "--aggregation", "COUNT", "--group-by", "model"],
        "'model' is given twice": [
            *base, "--aggregation", "COUNT", "--group-by", "model=$.a", "--group-by", "model=$.b",
        ],
        "invalid meter slug 'Tokens'": [
            "meters", "create", "Tokens", "--event-type", "e", "--resource-type", "r", "--unit", "u",
            "--aggregation", "COUNT",
        ],
        "invalid unit": [
            "meters", "create", "m", "--event-type", "e", "--resource-type", "r", "--unit", "u" * 21,
            "--aggregation", "COUNT",
        ],
    }  # fmt: skip
    for reason, args in refusals.items():
        line = one_line_error(hookyard(fresh_database_url, *args))
        assert line.startswith("hookyard: "), line
        assert reason in line, line
    usage_error = one_line_error(hookyard(fresh_database_url, *base, "--aggregation", "MAX"), exit_code=2)
    assert "MAX" in usage_error
    assert rows(fresh_database_url, "SELECT slug FROM meters") == []


def test_a_slug_is_one_meter_until_it_is_deleted(fresh_database_url: str) -> None:
    create = [
        "meters", "create", "calls", "--event-type", "api.call", "--resource-type", "api_calls",
        "--unit", "calls", "--aggregation", "COUNT",
    ]  # fmt: skip
    ok(hookyard(fresh_database_url, *create))
    taken = one_line_error(hookyard(fresh_database_url, *create))
    assert "meter calls exists already" in taken
    assert "hookyard meters delete calls" in taken
    deleted = ok(hookyard(fresh_database_url, "meters", "delete", "calls"))
    assert deleted.startswith("deleted meter calls")
    assert rows(fresh_database_url, "SELECT slug FROM meters") == []
    assert "no meter calls" in one_line_error(hookyard(fresh_database_url, "meters", "delete", "calls"))
    assert ok(hookyard(fresh_database_url, "meters", "list")).startswith("no meters")
    assert as_json(hookyard(fresh_database_url, "meters", "list", "--json")) == []
    ok(hookyard(fresh_database_url, *create))


def test_rates_are_in_force_from_their_date_until_the_next_one(fresh_database_url: str) -> None:
    today = datetime.now(UTC).date()
    ok(hookyard(fresh_database_url, "rates", "set", "usd", "1.40", "--from", "2026-01-01"))
    later = (today + timedelta(days=30)).isoformat()
    ok(hookyard(fresh_database_url, "rates", "set", "USD", "1.3925", "--from", later))
    default = as_json(hookyard(fresh_database_url, "rates", "set", "EUR", "1.5", "--json"))
    assert default == {
        "currency": "EUR",
        "valid_from": today.isoformat(),
        "rate_to_cad": "1.5",
        "previous": None,
        "retroactive": True,
    }
    stored = rows(
        fresh_database_url,
        "SELECT currency::text AS currency, valid_from, rate_to_cad FROM currency_rates ORDER BY 1, 2",
    )
    assert [
        (r["currency"], r["valid_from"].isoformat(), str(r["rate_to_cad"].normalize())) for r in stored
    ] == [
        ("EUR", today.isoformat(), "1.5"),
        ("USD", "2026-01-01", "1.4"),
        ("USD", later, "1.3925"),
    ]
    listed = as_json(hookyard(fresh_database_url, "rates", "list", "--currency", "usd", "--json"))
    assert [(r["valid_from"], r["valid_until"], r["rate_to_cad"], r["in_force"]) for r in listed] == [
        ("2026-01-01", later, "1.4", True),
        (later, None, "1.3925", False),
    ]
    table = ok(hookyard(fresh_database_url, "rates", "list")).splitlines()
    assert len(table) == 4
    assert table[1].split() == ["EUR", today.isoformat(), "-", "1.5", "in", "force"]


def test_setting_a_rate_for_a_date_that_has_one_replaces_it_and_says_what_it_was(
    fresh_database_url: str,
) -> None:
    first = ok(hookyard(fresh_database_url, "rates", "set", "USD", "1.40", "--from", "2026-03-01"))
    assert first.splitlines()[0] == "rate set: 1 USD = 1.4 CAD from 2026-03-01"
    assert "usage already stored keeps the cost it was given" in first
    again = ok(hookyard(fresh_database_url, "rates", "set", "USD", "1.41", "--from", "2026-03-01"))
    assert again.splitlines()[0] == "rate replaced: 1 USD = 1.41 CAD from 2026-03-01 (was 1.4)"
    future = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    ahead = ok(hookyard(fresh_database_url, "rates", "set", "USD", "1.42", "--from", future))
    assert ahead.splitlines() == [f"rate set: 1 USD = 1.42 CAD from {future}"]
    assert len(rows(fresh_database_url, "SELECT 1 FROM currency_rates")) == 2


def test_rates_that_could_not_price_anything_are_refused_with_one_line(fresh_database_url: str) -> None:
    refusals = {
        "CAD is the currency costs are kept in": ["CAD", "1"],
        "invalid currency 'US'": ["US", "1.2"],
        "invalid currency 'EURO'": ["EURO", "1.2"],
        "rate 'abc' is not a number": ["USD", "abc"],
        "rate '0' must be a positive number": ["USD", "0"],
        "rate 'NaN' must be a positive number": ["USD", "NaN"],
        "at most 10 digits before the point and 10 after": ["USD", "1.12345678901"],
        "--from '2026-02-30'": ["USD", "1.4", "--from", "2026-02-30"],
        "expected a date as YYYY-MM-DD": ["USD", "1.4", "--from", "next week"],
    }
    for reason, args in refusals.items():
        line = one_line_error(hookyard(fresh_database_url, "rates", "set", *args))
        assert reason in line, line
    assert rows(fresh_database_url, "SELECT 1 FROM currency_rates") == []
    assert ok(hookyard(fresh_database_url, "rates", "list")).startswith("no rates")
    assert ok(hookyard(fresh_database_url, "rates", "list", "--currency", "CAD")).startswith(
        "CAD has no rates"
    )


def test_an_unreachable_database_is_one_line(fresh_database_url: str) -> None:
    nowhere = "postgresql://postgres@127.0.0.1:1/nowhere"
    for args in (["meters", "list"], ["rates", "set", "USD", "1.4"]):
        line = one_line_error(hookyard(nowhere, *args))
        assert "PostgreSQL" in line, line
