"""An operator setting budgets and a script reserving with the real ``hookyard budgets`` commands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.cli import as_json, hookyard, ok, one_line_error


def rows(database_url: str, statement: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def database(fresh_database_url: str) -> str:
    ok(hookyard(fresh_database_url, "projects", "create", "acme"))
    return fresh_database_url


def store_usage(database_url: str, amount: str, unit: str = "tokens") -> None:
    """A usage record as the worker stores it, already in the current period."""
    now = datetime.now(UTC)
    rows(
        database_url,
        "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, recorded_at, "
        "received_at, billing_period, origin) SELECT id, %s, 'tokens', %s, %s, %s, %s, %s, 'v1' "
        "FROM projects WHERE slug = 'acme'",
        (str(uuid.uuid4()), Decimal(amount), unit, now, now, now.date()),
    )


def test_an_operator_sets_a_budget_that_counts_the_usage_already_stored_and_lists_and_shows_it(
    database: str,
) -> None:
    store_usage(database, "600")
    store_usage(database, "999", unit="calls")  # another unit: not this budget's
    created = ok(
        hookyard(
            database,
            "budgets",
            "set",
            "acme",
            "tokens",
            "--period",
            "monthly",
            "--amount",
            "1000",
            "--unit",
            "tokens",
            "--thresholds",
            "50, 80",
        )
    )
    assert created.splitlines()[0] == (
        "created budget tokens of acme: 1000 tokens monthly (hard, thresholds 50,80, auto-reset)"
    )
    assert "used 600, reserved 0, remaining 400" in created
    assert "thresholds reached by the period's usage: 50%" in created

    listed = as_json(hookyard(database, "budgets", "list", "--json"))
    assert len(listed) == 1
    budget = listed[0]
    assert {key: budget[key] for key in ("project", "resource_type", "period", "allocated", "used")} == {
        "project": "acme",
        "resource_type": "tokens",
        "period": "monthly",
        "allocated": "1000",
        "used": "600",
    }
    assert budget["current"] is True
    assert budget["period_start"] == datetime.now(UTC).strftime("%Y-%m-01T00:00:00+00:00")

    table = ok(hookyard(database, "budgets", "list", "--project", "acme")).splitlines()
    assert table[0].split() == [
        "budget",
        "period",
        "allocated",
        "used",
        "reserved",
        "remaining",
        "unit",
        "enforcement",
        "held",
    ]
    assert table[1].split()[:2] == ["acme", "tokens"]
    assert table[1].split()[-5:] == ["0", "400", "tokens", "hard", "0"]

    page = as_json(hookyard(database, "budgets", "show", "acme", "tokens", "--json"))
    assert [alert["threshold"] for alert in page["alerts"]] == [50]
    assert [period["alerts"] for period in page["periods"]] == [[50]]
    assert page["held"] == []
    shown = ok(hookyard(database, "budgets", "show", "acme", "tokens"))
    assert "settings: 1000 tokens monthly (hard, thresholds 50,80, auto-reset)" in shown
    assert "thresholds crossed this period:" in shown


def test_set_changes_only_what_it_is_given_and_sums_the_period_again(database: str) -> None:
    ok(
        hookyard(
            database,
            "budgets",
            "set",
            "acme",
            "tokens",
            "--period",
            "daily",
            "--amount",
            "100",
            "--unit",
            "tokens",
        )
    )
    store_usage(database, "90")  # stored without the worker's increment: set sums it again
    changed = as_json(
        hookyard(
            database,
            "budgets",
            "set",
            "acme",
            "tokens",
            "--amount",
            "80",
            "--soft",
            "--no-auto-reset",
            "--json",
        )
    )
    assert changed["created"] is False
    assert changed["crossed"] == [50, 80, 100]
    budget = changed["budget"]
    assert (budget["period"], budget["unit"], budget["thresholds"]) == ("daily", "tokens", [50, 80, 100])
    assert (budget["allocated"], budget["used"], budget["remaining"]) == ("80", "90", "-10")
    assert (budget["enforcement"], budget["auto_reset"]) == ("soft", False)
    assert len(rows(database, "SELECT * FROM resource_budgets")) == 1
    again = as_json(hookyard(database, "budgets", "set", "acme", "tokens", "--json"))
    assert again["crossed"] == []  # each threshold once per period


def test_a_script_reserves_with_the_id_first_and_the_same_id_returns_the_first_reservation(
    database: str,
) -> None:
    ok(
        hookyard(
            database,
            "budgets",
            "set",
            "acme",
            "tokens",
            "--period",
            "total",
            "--amount",
            "100",
            "--unit",
            "tokens",
        )
    )
    first = ok(
        hookyard(database, "budgets", "reserve", "acme", "tokens", "60", "--id", "job-7", "--ttl", "1h")
    )
    reservation_id, *fields = first.split()
    assert uuid.UUID(reservation_id)
    assert fields[:3] == ["remaining=40", "state=held", "amount=60"]
    again = ok(hookyard(database, "budgets", "reserve", "acme", "tokens", "60", "--id", "job-7"))
    assert again.split()[0] == reservation_id
    assert again.rstrip().endswith("(reserved before with this id)")
    held = rows(database, "SELECT expires_at - created_at AS ttl FROM budget_reservations")
    assert [row["ttl"].total_seconds() for row in held] == [3600]

    refused = one_line_error(hookyard(database, "budgets", "reserve", "acme", "tokens", "40.01"))
    assert (
        refused
        == "hookyard: budget_exceeded: acme tokens has 40 left, 40.01 asked (hard budget); nothing reserved"
    )
    none = one_line_error(hookyard(database, "budgets", "reserve", "acme", "calls", "1"))
    assert none.startswith("hookyard: no_budget: acme has no budget for calls now")
    document = as_json(hookyard(database, "budgets", "reserve", "acme", "tokens", "40", "--json"))
    assert (document["outcome"], document["remaining"], document["state"]) == ("granted", "0", "held")

    lowered = one_line_error(hookyard(database, "budgets", "set", "acme", "tokens", "--amount", "50"))
    assert "held reservations hold 100" in lowered


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["set", "acme", "tokens", "--period", "yearly", "--amount", "1", "--unit", "u"],
            "--period: 'yearly'",
        ),
        (["set", "acme", "tokens", "--period", "daily", "--amount", "-1", "--unit", "u"], "--amount: '-1'"),
        (
            [
                "set",
                "acme",
                "tokens",
                "--period",
                "daily",
                "--amount",
                "1",
                "--unit",
                "u",
                "--thresholds",
                "0",
            ],
            "--thresholds: invalid thresholds '0'",
        ),
        (["set", "acme", "tokens", "--amount", "5"], "there is no budget of tokens yet: give --period"),
        (["set", "nobody", "tokens", "--amount", "5"], "no project default/nobody"),
        (["reserve", "acme", "tokens", "0"], "AMOUNT: '0' is not an amount"),
        (["reserve", "acme", "tokens", "1", "--ttl", "2d"], "--ttl: '2d' is longer than a day"),
        (["show", "acme", "tokens"], "no budget for tokens"),
    ],
)
def test_bad_input_is_one_line(database: str, args: list[str], expected: str) -> None:
    assert expected in one_line_error(hookyard(database, "budgets", *args))
