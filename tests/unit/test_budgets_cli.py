"""``hookyard budgets``: its option parsers and what it prints, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.usage import BudgetPeriod
from ops import budgets
from ops.budgets_cli import render_table, reservation_line, set_lines, state_text, to_json

START = datetime(2031, 3, 9, tzinfo=UTC)


def budget(**fields: Any) -> budgets.Budget:
    values: dict[str, Any] = {
        "id": 1,
        "project": "acme",
        "resource_type": "tokens",
        "period": "daily",
        "period_start": START,
        "period_end": datetime(2031, 3, 10, tzinfo=UTC),
        "allocated": Decimal("1000.0000000000"),
        "used": Decimal("600.5000000000"),
        "reserved": Decimal("0E-10"),
        "remaining": Decimal("399.5000000000"),
        "unit": "tokens",
        "enforcement": "hard",
        "thresholds": [50, 80, 100],
        "auto_reset": True,
        "current": True,
        "held": 0,
        **fields,
    }
    return budgets.Budget(**values)


def test_the_period_option_takes_the_four_periods() -> None:
    assert budgets.parse_period("Weekly") is BudgetPeriod.WEEKLY
    with pytest.raises(budgets.BudgetError, match="not one of daily, weekly, monthly, total"):
        budgets.parse_period("yearly")


@pytest.mark.parametrize(
    ("text", "amount"), [("0", Decimal(0)), ("12.5", Decimal("12.5")), (" 100 ", Decimal(100))]
)
def test_an_allocation_is_zero_or_more_with_ten_places_at_most(text: str, amount: Decimal) -> None:
    assert budgets.parse_allocation(text) == amount


@pytest.mark.parametrize("text", ["-1", "1e3", "1.12345678901", "abc", "", "1" * 21])
def test_an_allocation_that_is_not_one_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(budgets.BudgetError, match="--amount"):
        budgets.parse_allocation(text)


def test_a_reservation_amount_follows_the_http_body_rule() -> None:
    assert budgets.parse_reservation_amount("0.25") == Decimal("0.25")
    for text in ("0", "-3", "1e2", "x"):
        with pytest.raises(budgets.BudgetError, match="AMOUNT"):
            budgets.parse_reservation_amount(text)


def test_a_ttl_is_a_duration_of_one_second_to_one_day() -> None:
    assert budgets.parse_ttl("15m") == 900
    assert budgets.parse_ttl("1d") == 86_400
    for text in ("2d", "0s", "soon"):
        with pytest.raises(budgets.BudgetError, match="--ttl"):
            budgets.parse_ttl(text)


def test_thresholds_are_percentages_sorted_once_each() -> None:
    assert budgets.parse_thresholds_option("100, 50,80,50") == [50, 80, 100]
    with pytest.raises(budgets.BudgetError, match="--thresholds"):
        budgets.parse_thresholds_option("0")


def test_text_options_refuse_control_characters_and_blanks() -> None:
    assert budgets.check_text("--unit", " tokens ", 64) == "tokens"
    for text in ("", "  ", "a\x00b", "x" * 65):
        with pytest.raises(budgets.BudgetError, match="--unit"):
            budgets.check_text("--unit", text, 64)


def test_the_table_has_one_line_per_budget_with_exact_amounts() -> None:
    lines = render_table([budget(), budget(project="ops/api", resource_type="calls", current=False, held=3)])
    assert lines[0].split() == [
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
    assert lines[1].split() == [
        "acme",
        "tokens",
        "daily",
        "2031-03-09",
        "1000",
        "600.5",
        "0",
        "399.5",
        "tokens",
        "hard",
        "0",
    ]
    assert "(ended)" in lines[2]
    assert lines[2].split()[-1] == "3"


def test_an_ended_period_says_when_the_next_one_opens() -> None:
    assert state_text(budget()) == "used 600.5, reserved 0, remaining 399.5"
    assert "the next opens with its first usage or reservation" in state_text(budget(current=False))
    assert "no auto-reset" in state_text(budget(current=False, auto_reset=False))


def test_set_says_what_it_did_and_which_thresholds_the_period_reached() -> None:
    lines = set_lines(budgets.SetBudget(budget=budget(), created=True, crossed=[50]))
    assert (
        lines[0]
        == "created budget tokens of acme: 1000 tokens daily (hard, thresholds 50,80,100, auto-reset)"
    )
    assert (
        lines[1]
        == "  period 2031-03-09 00:00 to 2031-03-10 00:00 UTC: used 600.5, reserved 0, remaining 399.5"
    )
    assert lines[2] == "  thresholds reached by the period's usage: 50%"


def test_reserve_prints_the_reservation_id_first_for_scripts() -> None:
    made = budgets.Reservation(
        outcome="granted",
        reservation_id="0e32f095-1ae5-4f63-bad6-235b55d03af6",
        client_id="job-1",
        state="held",
        amount=Decimal("12.5000000000"),
        overrun=Decimal(0),
        remaining=Decimal("87.5"),
        enforcement="hard",
        expires_at=datetime(2031, 3, 9, 12, 15, tzinfo=UTC),
    )
    assert reservation_line(made) == (
        "0e32f095-1ae5-4f63-bad6-235b55d03af6 remaining=87.5 state=held amount=12.5 "
        "expires_at=2031-03-09T12:15:00+00:00"
    )
    document = json.loads(to_json(made))
    assert (document["amount"], document["remaining"], document["expires_at"]) == (
        "12.5",
        "87.5",
        "2031-03-09T12:15:00+00:00",
    )
