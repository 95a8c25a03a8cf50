"""The pure parts of `hookyard meters` and `hookyard rates`: their options and their output."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts.usage import Aggregation
from ops.meters import (
    MeterError,
    Rate,
    SetRate,
    build_meter,
    parse_currency,
    parse_date,
    parse_group_by,
    parse_rate,
)
from ops.meters_cli import decimal_text, rate_table, set_rate_lines, to_json


def test_group_bys_are_name_path_pairs_each_name_once() -> None:
    assert parse_group_by(["model=$.model", " region = $['cloud region'] ", "k=$.a=b"]) == {
        "model": "$.model",
        "region": "$['cloud region']",
        "k": "$.a=b",
    }
    with pytest.raises(MeterError, match="expected NAME=PATH"):
        parse_group_by(["model"])
    with pytest.raises(MeterError, match="given twice"):
        parse_group_by(["model=$.a", "model=$.b"])


def test_a_meter_is_validated_by_contracts_usage() -> None:
    meter = build_meter(
        "tokens", "llm.completion", "llm_tokens", "tokens", "sum", "$.usage.tokens", {"m": "$.m"}
    )
    assert (meter.aggregation, meter.value_path, meter.group_by) == (
        Aggregation.SUM,
        ("usage", "tokens"),
        (("m", ("m",)),),
    )
    with pytest.raises(MeterError, match="recursive descent"):
        build_meter("tokens", "e", "r", "u", "SUM", "$..tokens", {})


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1.40", Decimal("1.40")),
        ("0.0000000001", Decimal("0.0000000001")),
        ("9999999999.9999999999", Decimal("9999999999.9999999999")),
        ("1.400000000000000000000000000000000", Decimal("1.4")),  # trailing zeros are not places
        ("1E+3", Decimal("1000")),
    ],
)
def test_rates_fit_the_column_exactly(text: str, rate: Decimal) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-1.4",
        "abc",
        "Infinity",
        "NaN",
        "1.00000000001",
        "10000000000",
        "1.0000000000000000000000000000001",
    ],
)
def test_rates_that_would_be_rounded_or_are_not_positive_are_refused(text: str) -> None:
    with pytest.raises(MeterError):
        parse_rate(text)


def test_currencies_are_iso_codes_any_case_and_cad_takes_no_rate() -> None:
    assert parse_currency("usd") == "USD"
    assert parse_currency("CAD", settable=False) == "CAD"
    with pytest.raises(MeterError, match="CAD is the currency"):
        parse_currency("cad")
    with pytest.raises(MeterError, match="ISO 4217"):
        parse_currency("U$D")


def test_dates_are_calendar_days() -> None:
    assert parse_date("2026-01-31") == date(2026, 1, 31)
    for text in ("2026-02-30", "31/01/2026", "2026-1-5", "today"):
        with pytest.raises(MeterError, match="--from"):
            parse_date(text)


def test_rates_are_shown_exactly_and_as_decimal_strings_in_json() -> None:
    assert decimal_text(Decimal("1.4000000000")) == "1.4"
    assert decimal_text(Decimal("12345678901234567890.1234567890")) == "12345678901234567890.123456789"
    rate = Rate(
        "USD", date(2026, 1, 1), None, Decimal("1.4000000000"), datetime(2026, 1, 1, tzinfo=UTC), True
    )
    assert json.loads(to_json([rate])) == [
        {
            "currency": "USD",
            "valid_from": "2026-01-01",
            "valid_until": None,
            "rate_to_cad": "1.4",
            "created_at": "2026-01-01T00:00:00+00:00",
            "in_force": True,
        }
    ]
    assert rate_table([rate])[1].split() == ["USD", "2026-01-01", "-", "1.4", "in", "force"]
    replaced = SetRate("USD", date(2026, 1, 1), Decimal("1.41"), Decimal("1.4"), retroactive=False)
    assert set_rate_lines(replaced) == ["rate replaced: 1 USD = 1.41 CAD from 2026-01-01 (was 1.4)"]
