"""The bodies of ``/v1/budgets/reservations``: amounts exact, and refused exactly where the schema says."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.ingest import (
    AMOUNT_LIMIT,
    AMOUNT_PATTERN,
    TEXT_PATTERN,
    CommitIn,
    ReservationIn,
    decimal_text,
    parse_amount,
)


def reservation(**fields: Any) -> ReservationIn:
    return ReservationIn.model_validate({"id": "job-1", "resource_type": "tokens", "amount": 1, **fields})


@pytest.mark.parametrize(
    ("given_amount", "expected"),
    [
        ("12.5", Decimal("12.5")),
        ("0.0000000001", Decimal("0.0000000001")),
        ("999999999999999.9999999999", Decimal("999999999999999.9999999999")),
        ("007", Decimal(7)),
        (3, Decimal(3)),
        (0.1, Decimal("0.1")),  # through its shortest text, not 0.1000000000000000055...
        (1.23456789015, Decimal("1.2345678902")),  # a number is rounded to 10 places, half to even
        (1e-10, Decimal("1E-10")),
    ],
)
def test_an_amount_is_exact_to_ten_places(given_amount: Any, expected: Decimal) -> None:
    assert parse_amount(given_amount) == expected


@pytest.mark.parametrize(
    "refused",
    [
        0,
        -1,
        "0",
        "0.0",
        "-1",
        "+1",
        "1e3",
        "1.",
        ".5",
        "0.00000000001",
        "1.12345678901",
        "1000000000000000",
        1e15,
        5e-11,
        float("nan"),
        float("inf"),
        True,
        None,
        [],
        {},
    ],
)
def test_an_amount_out_of_its_range_or_form_is_refused(refused: Any) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_amount(refused)


@given(st.decimals(min_value=Decimal("1E-10"), max_value=AMOUNT_LIMIT - Decimal("1E-10"), places=10))
def test_every_amount_written_out_with_ten_places_matches_the_pattern_and_reads_back(amount: Decimal) -> None:
    text = format(amount, "f")
    assert re.search(AMOUNT_PATTERN, text)
    assert parse_amount(text) == amount


@given(st.from_regex(AMOUNT_PATTERN, fullmatch=True))
def test_every_string_the_pattern_allows_is_an_amount(text: str) -> None:
    assert Decimal(0) < parse_amount(text) < AMOUNT_LIMIT


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("90.0000000000"), "90"),
        (Decimal("-0.50"), "-0.5"),
        (Decimal("0E-10"), "0"),
        (Decimal("1E+2"), "100"),
    ],
)
def test_answers_write_amounts_without_exponent_or_trailing_zeros(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


def test_a_reservation_defaults_to_fifteen_minutes_and_takes_whole_seconds_only() -> None:
    assert reservation().ttl_seconds == 900
    assert reservation(ttl_seconds=60.0).ttl_seconds == 60  # JSON Schema's integers include 60.0
    for refused in (0, 86_401, "60", 1.5, True):
        with pytest.raises(ValidationError):
            reservation(ttl_seconds=refused)


def test_ids_and_resource_types_are_text_postgresql_can_hold() -> None:
    assert reservation(id="  job 7 ").id == "job 7"
    for field in ("id", "resource_type"):
        for refused in ("", "   ", "a\x00b", "a\x1fb", "x" * 256):
            with pytest.raises(ValidationError):
                reservation(**{field: refused})
    assert re.search(TEXT_PATTERN, "tokens")
    assert not re.search(TEXT_PATTERN, "\u3000")


def test_unknown_fields_are_refused_so_a_misspelt_ttl_is_not_silently_the_default() -> None:
    with pytest.raises(ValidationError, match="ttl_second"):
        reservation(ttl_second=60)
    with pytest.raises(ValidationError):
        CommitIn.model_validate({"amount": 1, "amout": 2})
    assert CommitIn.model_validate({"amount": "2.5"}).amount == Decimal("2.5")


def test_the_project_is_a_slug_or_org_slug() -> None:
    assert reservation(project="acme/api").project == "acme/api"
    with pytest.raises(ValidationError):
        reservation(project="Acme")
