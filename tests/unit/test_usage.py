"""Usage contracts (contracts/usage.py): CloudEvents, meters, money, budget periods and thresholds.

Pure: no services. Every amount is a Decimal; the expected values are written as text.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from contracts.usage import (
    AMOUNT_LIMIT,
    CAD,
    CLOUDEVENT_MEDIA_TYPES,
    DEFAULT_THRESHOLDS,
    MAX_PATH_SEGMENTS,
    TOTAL_START,
    Aggregation,
    BudgetPeriod,
    CloudEventIn,
    Meter,
    cost_cad,
    crossed_thresholds,
    json_path_value,
    meter_amount,
    meter_groups,
    parse_json_path,
    parse_media_type,
    parse_thresholds,
    period_bounds,
    validate_currency,
)

D = Decimal


def event(**changes: Any) -> dict[str, Any]:
    """A valid CloudEvent body, with ``changes`` applied (a value of ``...`` removes the attribute)."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "svc/api",
        "type": "llm.tokens",
        "subject": "acme",
        "time": "2026-03-02T12:00:00Z",
        "data": {"tokens": 12, "model": "small"},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


def tokens_meter(**group_by: str) -> Meter:
    return Meter.build("tokens", "llm.tokens", "tokens", "tokens", Aggregation.SUM, "$.tokens", group_by)


def sum_of(value: Any) -> Decimal | None:
    return meter_amount(tokens_meter(), {"tokens": value})


# --- CloudEvents ----------------------------------------------------------------------------------


def test_a_cloudevent_with_every_required_attribute_is_accepted() -> None:
    parsed = CloudEventIn.model_validate(event())
    assert (parsed.source, parsed.id, parsed.type, parsed.subject) == (
        "svc/api",
        "evt-1",
        "llm.tokens",
        "acme",
    )
    assert parsed.time == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert parsed.data == {"tokens": 12, "model": "small"}


def test_time_and_data_may_be_absent() -> None:
    parsed = CloudEventIn.model_validate(event(time=..., data=...))
    assert parsed.time is None
    assert parsed.data is None


def test_specversion_0_3_is_refused() -> None:
    with pytest.raises(ValidationError, match="specversion"):
        CloudEventIn.model_validate(event(specversion="0.3"))


def test_specversion_as_a_json_number_is_refused() -> None:
    with pytest.raises(ValidationError, match="specversion"):
        CloudEventIn.model_validate(event(specversion=1.0))


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "subject"])
def test_an_event_missing_a_required_attribute_is_refused(attribute: str) -> None:
    with pytest.raises(ValidationError, match=attribute):
        CloudEventIn.model_validate(event(**{attribute: ...}))


@pytest.mark.parametrize("subject", ["acme", "a", "acme-api_2", "org/acme", "0rg/0", "a" * 64])
def test_subject_is_a_project_slug_or_org_slash_slug(subject: str) -> None:
    assert CloudEventIn.model_validate(event(subject=subject)).subject == subject


@pytest.mark.parametrize("subject", ["", "Acme", "-acme", "acme/", "/acme", "a/b/c", "acme x", "a" * 65])
def test_a_subject_that_names_no_project_is_refused(subject: str) -> None:
    with pytest.raises(ValidationError, match="subject"):
        CloudEventIn.model_validate(event(subject=subject))


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_id_source_and_type_are_1_to_255_characters(attribute: str) -> None:
    assert CloudEventIn.model_validate(event(**{attribute: "x" * 255}))
    for refused in ("", "x" * 256, 42):
        with pytest.raises(ValidationError, match=attribute):
            CloudEventIn.model_validate(event(**{attribute: refused}))


def test_extension_attributes_are_kept() -> None:
    parsed = CloudEventIn.model_validate(
        event(traceparent="00-abc-def-01", region="ca-central", dataschema="x")
    )
    assert parsed.model_extra == {"traceparent": "00-abc-def-01", "region": "ca-central", "dataschema": "x"}


@pytest.mark.parametrize("data", [[1, 2], "tokens=12", 12, True])
def test_data_that_is_not_a_json_object_is_refused(data: Any) -> None:
    with pytest.raises(ValidationError, match="data"):
        CloudEventIn.model_validate(event(data=data))


def test_binary_data_is_refused_because_it_cannot_be_metered() -> None:
    with pytest.raises(ValidationError, match="data_base64"):
        CloudEventIn.model_validate(event(data=..., data_base64="AAEC"))


@pytest.mark.parametrize("time", ["2026-03-02T12:00:00", 1772452800, "yesterday"])
def test_a_time_without_an_offset_or_as_a_number_is_refused(time: Any) -> None:
    with pytest.raises(ValidationError, match="time"):
        CloudEventIn.model_validate(event(time=time))


def test_a_time_with_an_offset_is_kept_as_the_same_instant() -> None:
    parsed = CloudEventIn.model_validate(event(time="2026-03-02T07:00:00-05:00"))
    assert parsed.time == datetime(2026, 3, 2, 12, tzinfo=UTC)


def test_an_event_from_the_cloudevents_sdk_validates_with_its_extensions() -> None:
    from cloudevents.v1.conversion import to_structured  # noqa: PLC0415 - only this test needs the SDK
    from cloudevents.v1.http import CloudEvent  # noqa: PLC0415 - only this test needs the SDK

    sent = CloudEvent(
        {"type": "llm.tokens", "source": "svc/api", "subject": "org/acme", "traceparent": "00-abc"},
        {"tokens": 12},
    )
    headers, body = to_structured(sent)
    assert parse_media_type(headers["content-type"]) == "application/cloudevents+json"
    parsed = CloudEventIn.model_validate(orjson.loads(body))
    assert parsed.subject == "org/acme"
    assert parsed.data == {"tokens": 12}
    assert parsed.model_extra == {"traceparent": "00-abc"}


# --- media types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "media_type"),
    [
        ("application/cloudevents+json", "application/cloudevents+json"),
        ("application/cloudevents-batch+json", "application/cloudevents-batch+json"),
        ("application/json", "application/json"),
        ("application/cloudevents+json; charset=utf-8", "application/cloudevents+json"),
        ("application/cloudevents-batch+json;charset=UTF-8", "application/cloudevents-batch+json"),
        ('application/json; charset="utf-8"', "application/json"),
        ("Application/JSON ; Charset=utf-8 ", "application/json"),
        ("application/json;", "application/json"),
    ],
)
def test_the_three_media_types_are_taken_with_or_without_a_utf8_charset(header: str, media_type: str) -> None:
    assert parse_media_type(header) == media_type


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "text/plain",
        "application/xml",
        "application/jsonx",
        "application/cloudevents+json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=utf8",
        "application/json; charset",
        "application/json; boundary=x",
        "application/json; charset=utf-8; version=2",
        "application/cloudevents+json, application/json",
    ],
)
def test_other_media_types_charsets_and_parameters_are_refused(header: str | None) -> None:
    assert parse_media_type(header) is None


def test_every_cloudevent_media_type_is_listed_once() -> None:
    assert len(set(CLOUDEVENT_MEDIA_TYPES)) == 3


# --- JSONPath ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("$.tokens", ("tokens",)),
        ("$.usage.input_tokens", ("usage", "input_tokens")),
        ("$.items[0].qty", ("items", 0, "qty")),
        ("$['weird key']", ("weird key",)),
        ('$["weird key"]', ("weird key",)),
        ("$['a.b'][12]['c']", ("a.b", 12, "c")),
        ("$._private.x1", ("_private", "x1")),
        ("  $.tokens ", ("tokens",)),
        ("$[10]", (10,)),
    ],
)
def test_the_supported_jsonpath_forms_parse_to_names_and_indices(
    path: str, parsed: tuple[str | int, ...]
) -> None:
    assert parse_json_path(path) == parsed


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("$['it\\'s']", "it's"),
        ('$["say \\"hi\\""]', 'say "hi"'),
        ("$['back\\\\slash']", "back\\slash"),
        ("$['tab\\there']", "tab\there"),
        ("$['caf\\u00e9']", "café"),
        ("$['\\ud83d\\ude00']", "\U0001f600"),
        ("$['a\"b']", 'a"b'),
        ("$['é']", "é"),
    ],
)
def test_quoted_names_take_rfc_9535_escapes(path: str, name: str) -> None:
    assert parse_json_path(path) == (name,)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("tokens", "starts with \\$"),
        ("$", "names a value inside data"),
        ("$..tokens", "recursive descent"),
        ("$.*", "member name"),
        ("$[*]", "wildcards"),
        ("$.items[*].qty", "wildcards"),
        ("$[?(@.qty > 1)]", "filters"),
        ("$[?@.qty]", "filters"),
        ("$[0:2]", "slices"),
        ("$[:2]", "slices"),
        ("$[0,1]", "unions"),
        ("$['a','b']", "unions"),
        ("$[-1]", "negative"),
        ("$[01]", "expected"),
        ("$.", "member name"),
        ("$.a-b", "unexpected '-'"),
        ("$.1a", "member name"),
        ("$.a b", "unexpected ' '"),
        ("$[0", "expected"),
        ("$['open", "unterminated"),
        ("$['a\\x']", "invalid escape"),
        ("$['a\\\"']", "invalid escape"),
        ("$['\\u12']", "four hex digits"),
        ("$['\\ud83d']", "high surrogate"),
        ("$['\\ude00']", "low surrogate"),
        ("$['a\nb']", "control character"),
        ("@.tokens", "starts with \\$"),
        ("$.length()", "unexpected '\\('"),
        ("$" + ".a" * (MAX_PATH_SEGMENTS + 1), "segments"),
        ("$." + "a" * 600, "longer than"),
    ],
)
def test_anything_beyond_the_safe_subset_is_refused_in_one_line(path: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        parse_json_path(path)
    assert "\n" not in str(refused.value)
    assert "supported: $.name" in str(refused.value)


def test_a_path_finds_nested_members_and_array_elements() -> None:
    data = {"usage": {"input_tokens": 7}, "items": [{"qty": 2}, {"qty": 3}], "weird key": "w"}
    assert json_path_value(data, parse_json_path("$.usage.input_tokens")) == 7
    assert json_path_value(data, parse_json_path("$.items[1].qty")) == 3
    assert json_path_value(data, parse_json_path("$['weird key']")) == "w"
    assert json_path_value(data, parse_json_path("$.items[0]")) == {"qty": 2}


@pytest.mark.parametrize(
    "path",
    [
        "$.missing",
        "$.usage.missing",
        "$.items[2].qty",
        "$.items.qty",  # a name on an array
        "$.usage[0]",  # an index on an object
        "$.text[0]",  # strings are not arrays
        "$.usage.input_tokens.deeper",
        "$.nothing.deeper",
    ],
)
def test_a_path_that_leads_nowhere_gives_none(path: str) -> None:
    data = {"usage": {"input_tokens": 7}, "items": [{"qty": 2}, {"qty": 3}], "text": "abc", "nothing": None}
    assert json_path_value(data, parse_json_path(path)) is None


# --- meters --------------------------------------------------------------------------------------------


def test_a_sum_meter_parses_its_value_property_and_sorts_its_group_bys() -> None:
    meter = Meter.build(
        "llm-tokens",
        "llm.tokens",
        "tokens",
        "tokens",
        "SUM",
        "$.usage.total",
        {"model": "$.model", "b": "$.x[0]"},
    )
    assert meter.aggregation is Aggregation.SUM
    assert meter.value_path == ("usage", "total")
    assert meter.group_by == (("b", ("x", 0)), ("model", ("model",)))


def test_a_count_meter_has_no_value_path() -> None:
    meter = Meter.build("calls", "api.call", "api_calls", "calls", Aggregation.COUNT, None, {})
    assert meter.value_path is None
    assert meter.group_by == ()


def test_the_same_meter_built_twice_is_equal() -> None:
    assert tokens_meter(model="$.model", region="$.region") == tokens_meter(
        region="$.region", model="$.model"
    )


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"aggregation": "SUM", "value_property": None}, "SUM meter needs a value property"),
        ({"aggregation": "COUNT", "value_property": "$.tokens"}, "COUNT meter takes no value property"),
        ({"aggregation": "AVG"}, "expected COUNT or SUM"),
        ({"aggregation": "sum"}, "expected COUNT or SUM"),
        ({"slug": "Tokens"}, "invalid meter slug"),
        ({"slug": ""}, "invalid meter slug"),
        ({"event_type": ""}, "invalid event type"),
        ({"event_type": " llm.tokens"}, "invalid event type"),
        ({"resource_type": "r" * 51}, "invalid resource type"),
        ({"unit": "u" * 21}, "invalid unit"),
        ({"value_property": "$..tokens"}, "recursive descent"),
        ({"group_by": {"model": "$.models[*]"}}, "wildcards"),
        ({"group_by": {"my model": "$.model"}}, "invalid group-by name"),
        ({"group_by": {f"g{i}": "$.x" for i in range(17)}}, "at most 16 group-bys"),
    ],
)
def test_an_invalid_meter_is_refused_in_one_line(arguments: dict[str, Any], reason: str) -> None:
    given: dict[str, Any] = {
        "slug": "tokens",
        "event_type": "llm.tokens",
        "resource_type": "tokens",
        "unit": "tokens",
        "aggregation": "SUM",
        "value_property": "$.tokens",
        "group_by": {},
    }
    given.update(arguments)
    with pytest.raises(ValueError, match=reason) as refused:
        Meter.build(**given)
    assert "\n" not in str(refused.value)


def test_a_count_meter_counts_one_per_event_whatever_its_data() -> None:
    meter = Meter.build("calls", "api.call", "api_calls", "calls", "COUNT", None, {})
    assert meter_amount(meter, {"tokens": 12}) == D(1)
    assert meter_amount(meter, None) == D(1)


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        (12, "12"),
        (0, "0"),
        ("12.5", "12.5"),
        ("1e3", "1E+3"),
        ("0.000000000000000001", "1E-18"),
        (0.1, "0.1"),
        (2.675, "2.675"),
        (1e-7, "1E-7"),
        (123456789012345, "123456789012345"),
        ("999999999999999.999999999999999999", "999999999999999.999999999999999999"),
        ("12.500000000000000000000000", "12.500000000000000000000000"),
    ],
)
def test_a_sum_meter_reads_numbers_and_decimal_strings_exactly(value: Any, amount: str) -> None:
    result = sum_of(value)
    assert result == D(amount)
    assert str(result) == amount


def test_float_amounts_carry_no_binary_noise_so_they_add_up_exactly() -> None:
    parts = [sum_of(0.1), sum_of(0.2)]
    assert all(part is not None for part in parts)
    assert sum(part for part in parts if part is not None) == D("0.3")
    assert sum(sum_of(0.1) or D(0) for _ in range(10)) == D(1)


def test_a_float_that_is_not_a_short_decimal_is_read_as_its_shortest_text() -> None:
    # 0.1 + 0.2 computed in binary by the sender is 0.30000000000000004, and is kept as such
    assert sum_of(0.1 + 0.2) == D("0.30000000000000004")


def test_a_negative_zero_is_zero() -> None:
    amount = sum_of(-0.0)
    assert amount == 0
    assert amount is not None
    assert not amount.is_signed()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        "abc",
        "",
        " 12",
        "+1",
        "1_000",
        "0x10",
        "NaN",
        "Infinity",
        "-12",
        float("nan"),
        float("inf"),
        -1,
        -0.5,
        [12],
        {"value": 12},
        AMOUNT_LIMIT,
        10**15,
        10**4000,
        "1e999999999",
        "1e-999999999",
        "0.0000000000000000001",
        1e-19,
        D("NaN"),
    ],
)
def test_a_sum_value_that_is_not_a_usable_number_leaves_the_event_unmetered(value: Any) -> None:
    assert sum_of(value) is None


def test_a_sum_meter_with_no_data_or_no_value_leaves_the_event_unmetered() -> None:
    assert meter_amount(tokens_meter(), None) is None
    assert meter_amount(tokens_meter(), {}) is None


def test_group_by_values_are_strings_and_missing_ones_are_absent() -> None:
    meter = tokens_meter(
        model="$.model", tier="$.tier", streamed="$.streamed", ratio="$.ratio", extra="$.extra", gone="$.gone"
    )
    data = {
        "model": "small",
        "tier": 3,
        "streamed": True,
        "ratio": 0.5,
        "extra": {"b": 1, "a": [1]},
        "gone": None,
    }
    assert meter_groups(meter, data) == {
        "model": "small",
        "tier": "3",
        "streamed": "true",
        "ratio": "0.5",
        "extra": '{"a":[1],"b":1}',
    }


def test_an_event_without_data_has_no_group_values() -> None:
    assert meter_groups(tokens_meter(model="$.model"), None) == {}


# --- money ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["CAD", "USD", "EUR", "JPY", "XAU"])
def test_three_uppercase_letters_are_a_currency(code: str) -> None:
    assert validate_currency(code) == code


@pytest.mark.parametrize("code", ["", "usd", "Usd", "US", "USDD", "U5D", "ÀBC", " USD", "USD\n", "U D"])
def test_anything_else_is_not_a_currency(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217") as refused:
        validate_currency(code)
    assert "\n" not in str(refused.value)


def exact_cost(*factors: str) -> Decimal:
    """The product rounded half to even to 6 places, computed with fractions: no Decimal context involved."""
    product = Fraction(1)
    for factor in factors:
        product *= Fraction(factor)
    return D(round(product * 10**6)).scaleb(-6)


def test_a_given_cost_wins_over_the_computed_one_and_is_rounded_the_same_way() -> None:
    assert cost_cad(D(10), D("2"), "USD", D("1.40"), D("3.1234565")) == D("3.123456")
    assert cost_cad(D(10), None, "USD", None, D("5")) == D("5.000000")


def test_a_cad_cost_is_amount_times_unit_cost_whatever_rate_is_given() -> None:
    assert cost_cad(D(1500), D("0.000002"), CAD, None, None) == D("0.003000")
    assert cost_cad(D(1500), D("0.000002"), CAD, D("9"), None) == D("0.003000")


def test_a_foreign_cost_is_converted_at_the_given_rate() -> None:
    assert cost_cad(D(1000), D("0.003"), "USD", D("1.40"), None) == D("4.200000")
    assert str(cost_cad(D(3), D("0.1"), "EUR", D("1.5"), None)) == "0.450000"


def test_a_cost_without_unit_cost_or_without_a_rate_is_unknown() -> None:
    assert cost_cad(D(10), None, CAD, None, None) is None
    assert cost_cad(D(10), D("0.5"), "USD", None, None) is None


@pytest.mark.parametrize(
    ("amount", "cost"),
    [
        ("0.0000005", "0.000000"),
        ("0.0000015", "0.000002"),
        ("0.0000025", "0.000002"),
        ("0.0000035", "0.000004"),
        ("0.00000250001", "0.000003"),
        ("-0.0000015", "-0.000002"),
    ],
)
def test_costs_round_half_to_even_at_six_places(amount: str, cost: str) -> None:
    assert cost_cad(D(amount), D(1), CAD, None, None) == D(cost)


def test_a_cost_is_rounded_once_from_the_exact_product() -> None:
    # 31 significant digits: a 28-digit context would round to ...0005 first, then to even (1.000000)
    amount = D("1.000000500000000000000000000001")
    assert cost_cad(amount, D(1), CAD, None, None) == D("1.000001")


@pytest.mark.parametrize(
    ("amount", "unit_cost", "rate"),
    [
        ("123456789.123456", "0.000001234567", "1.3579"),
        ("999999999999999.999999", "0.99999999999", "1.41421356237309504880168872"),
        ("0.1", "0.2", "0.3"),
        ("7", "0.000000142857142857142857", "1.000000000000000000000000001"),
    ],
)
def test_costs_of_large_numbers_and_many_decimal_places_are_exact(
    amount: str, unit_cost: str, rate: str
) -> None:
    assert cost_cad(D(amount), D(unit_cost), "USD", D(rate), None) == exact_cost(amount, unit_cost, rate)


def test_a_cost_that_rounds_to_zero_is_an_unsigned_zero() -> None:
    cost = cost_cad(D("-0.0000001"), D(1), CAD, None, None)
    assert cost == 0
    assert cost is not None
    assert not cost.is_signed()


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ((D(1), D(1), "usd", D(1), None), "ISO 4217"),
        ((D(1), D(1), "USD", D(0), None), "must be positive"),
        ((D(1), D(1), "USD", D(-1), None), "must be positive"),
        ((D("NaN"), D(1), CAD, None, None), "finite"),
        ((D(1), D("Infinity"), CAD, None, None), "finite"),
        ((D("1e999999"), D(1), CAD, None, None), "out of range"),
        ((D(1), None, CAD, None, D("1e18")), "out of range"),
    ],
)
def test_malformed_cost_inputs_are_refused(arguments: tuple[Any, ...], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        cost_cad(*arguments)


# --- budget periods -------------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    """A UTC time; ``clock`` is the hour, minute, second and microsecond, missing ones 0."""
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


LAST_MICROSECOND = (23, 59, 59, 999999)


@pytest.mark.parametrize(
    ("period", "at", "bounds"),
    [
        # daily: the UTC day; its last microsecond is still in it, midnight starts the next
        ("daily", utc(2026, 3, 2, 12), (utc(2026, 3, 2), utc(2026, 3, 3))),
        ("daily", utc(2026, 3, 2, *LAST_MICROSECOND), (utc(2026, 3, 2), utc(2026, 3, 3))),
        ("daily", utc(2026, 3, 3), (utc(2026, 3, 3), utc(2026, 3, 4))),
        ("daily", utc(2025, 12, 31, *LAST_MICROSECOND), (utc(2025, 12, 31), utc(2026, 1, 1))),
        ("daily", utc(2024, 2, 28, 23), (utc(2024, 2, 28), utc(2024, 2, 29))),
        ("daily", utc(2024, 2, 29, 6), (utc(2024, 2, 29), utc(2024, 3, 1))),
        ("daily", utc(2023, 2, 28, 6), (utc(2023, 2, 28), utc(2023, 3, 1))),
        # weekly: Monday 00:00 UTC to the next Monday (2 March 2026 is a Monday)
        ("weekly", utc(2026, 3, 2), (utc(2026, 3, 2), utc(2026, 3, 9))),
        ("weekly", utc(2026, 3, 5, 12), (utc(2026, 3, 2), utc(2026, 3, 9))),
        ("weekly", utc(2026, 3, 8, *LAST_MICROSECOND), (utc(2026, 3, 2), utc(2026, 3, 9))),
        ("weekly", utc(2026, 3, 9), (utc(2026, 3, 9), utc(2026, 3, 16))),
        ("weekly", utc(2026, 1, 1), (utc(2025, 12, 29), utc(2026, 1, 5))),  # ISO week 1 starts in December
        ("weekly", utc(2024, 2, 29), (utc(2024, 2, 26), utc(2024, 3, 4))),
        # monthly: the calendar month; December's end is January's start of the next year
        ("monthly", utc(2026, 3, 15), (utc(2026, 3, 1), utc(2026, 4, 1))),
        ("monthly", utc(2025, 12, 31, *LAST_MICROSECOND), (utc(2025, 12, 1), utc(2026, 1, 1))),
        ("monthly", utc(2026, 1, 1), (utc(2026, 1, 1), utc(2026, 2, 1))),
        ("monthly", utc(2024, 2, 29, *LAST_MICROSECOND), (utc(2024, 2, 1), utc(2024, 3, 1))),
        ("monthly", utc(2024, 3, 1), (utc(2024, 3, 1), utc(2024, 4, 1))),
        ("monthly", utc(2026, 4, 30, 23), (utc(2026, 4, 1), utc(2026, 5, 1))),
    ],
)
def test_a_period_contains_its_last_microsecond_and_not_the_next_midnight(
    period: str, at: datetime, bounds: tuple[datetime, datetime]
) -> None:
    assert period_bounds(BudgetPeriod(period), at) == bounds


def test_periods_are_taken_in_utc_whatever_the_offset_of_the_time_given() -> None:
    # 01:00 at +05:00 on Monday 2 March is 20:00 UTC on Sunday 1 March
    at = datetime(2026, 3, 2, 1, tzinfo=timezone(timedelta(hours=5)))
    assert period_bounds(BudgetPeriod.DAILY, at) == (utc(2026, 3, 1), utc(2026, 3, 2))
    assert period_bounds(BudgetPeriod.WEEKLY, at) == (utc(2026, 2, 23), utc(2026, 3, 2))
    assert period_bounds(BudgetPeriod.MONTHLY, at) == (utc(2026, 3, 1), utc(2026, 4, 1))
    start, end = period_bounds(BudgetPeriod.DAILY, at)
    assert start.tzinfo is UTC
    assert end is not None
    assert end.tzinfo is UTC


@pytest.mark.parametrize("period", [BudgetPeriod.DAILY, BudgetPeriod.WEEKLY, BudgetPeriod.MONTHLY])
def test_every_instant_of_a_leap_year_is_in_exactly_one_period(period: BudgetPeriod) -> None:
    at = utc(2023, 12, 25)
    previous: tuple[datetime, datetime | None] | None = None
    while at < utc(2025, 1, 8):
        start, end = period_bounds(period, at)
        assert end is not None
        assert start <= at < end
        if previous is not None and previous[0] != start:
            assert previous[1] == start  # the next period starts where the previous one ended
        previous = (start, end)
        at += timedelta(hours=7)


def test_a_total_period_without_an_anchor_covers_all_time() -> None:
    assert period_bounds(BudgetPeriod.TOTAL, utc(2026, 3, 2)) == (TOTAL_START, None)
    assert period_bounds(BudgetPeriod.TOTAL, TOTAL_START) == (TOTAL_START, None)


def test_a_total_period_starts_at_its_anchor_in_utc_and_never_ends() -> None:
    anchor = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert period_bounds(BudgetPeriod.TOTAL, utc(2030, 1, 1), anchor=anchor) == (
        utc(2026, 3, 2, 14, 30),
        None,
    )
    assert period_bounds(BudgetPeriod.TOTAL, anchor, anchor=anchor) == (utc(2026, 3, 2, 14, 30), None)


def test_usage_before_a_total_budgets_anchor_is_in_no_period_of_it() -> None:
    with pytest.raises(ValueError, match="before the budget's anchor"):
        period_bounds(BudgetPeriod.TOTAL, utc(2026, 3, 2, 14, 29), anchor=utc(2026, 3, 2, 14, 30))


def test_the_anchor_does_not_move_calendar_periods() -> None:
    assert period_bounds(BudgetPeriod.MONTHLY, utc(2026, 3, 20), anchor=utc(2026, 3, 15, 8)) == (
        utc(2026, 3, 1),
        utc(2026, 4, 1),
    )


def test_a_period_may_be_named_by_its_stored_text() -> None:
    assert period_bounds("weekly", utc(2026, 3, 4)) == (utc(2026, 3, 2), utc(2026, 3, 9))  # type: ignore[arg-type]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_bounds(BudgetPeriod.DAILY, datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        period_bounds(BudgetPeriod.TOTAL, utc(2026, 3, 2), anchor=datetime(2026, 3, 1))


# --- thresholds -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "thresholds"),
    [
        ("50,80,100", (50, 80, 100)),
        (" 100, 50 ,80,50 ", (50, 80, 100)),
        ("1", (1,)),
        ("1000,150", (150, 1000)),
        ("050", (50,)),
    ],
)
def test_thresholds_are_sorted_unique_whole_percentages(text: str, thresholds: tuple[int, ...]) -> None:
    assert parse_thresholds(text) == thresholds


def test_the_default_thresholds_are_50_80_and_100() -> None:
    assert parse_thresholds("50,80,100") == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "0",
        "1001",
        "50,,80",
        "50,",
        ",50",
        "5.5",
        "-5",
        "50%",
        "fifty",
        "\u0665\u0660",
    ],  # Arabic-Indic 50
)
def test_anything_else_is_not_a_threshold_list(text: str) -> None:
    with pytest.raises(ValueError, match="whole percentages from 1 to 1000") as refused:
        parse_thresholds(text)
    assert "\n" not in str(refused.value)


def crossings(
    allocated: str, pieces: list[Decimal], thresholds: tuple[int, ...] = (50, 80, 100)
) -> list[list[int]]:
    """What each piece of usage crosses, as the worker applies them one by one."""
    used = D(0)
    crossed = []
    for piece in pieces:
        crossed.append(crossed_thresholds(thresholds, D(allocated), used, used + piece))
        used += piece
    return crossed


def test_usage_in_pieces_crosses_each_threshold_once_when_it_reaches_it() -> None:
    pieces = [D(30), D(20), D("29.99"), D("0.01"), D(19), D(1), D(5), D(100)]
    assert crossings("100", pieces) == [[], [50], [], [80], [], [100], [], []]


def test_one_large_piece_crosses_several_thresholds_in_order() -> None:
    assert crossings("100", [D(10), D(150)]) == [[], [50, 80, 100]]


def test_thresholds_above_100_percent_are_crossed_as_the_overrun_grows() -> None:
    assert crossings("10", [D(10), D(5), D(5)], (100, 150, 200)) == [[100], [150], [200]]


def test_float_sized_pieces_reach_a_threshold_exactly() -> None:
    # ten events of 0.1 against a budget of 1: the fifth reaches 50 % exactly, the tenth 100 %
    pieces = [sum_of(0.1) or D(0) for _ in range(10)]
    crossed = crossings("1", pieces)
    assert crossed[4] == [50]
    assert crossed[7] == [80]
    assert crossed[9] == [100]
    assert sum(len(step) for step in crossed) == 3


def test_every_order_of_the_same_pieces_crosses_each_threshold_exactly_once() -> None:
    pieces = [D(10), D(40), D("0.5"), D("29.5"), D(20), D("0.000001")]
    for order in itertools.permutations(pieces):
        crossed = [t for step in crossings("100", list(order)) for t in step]
        assert crossed == [50, 80, 100]


def test_usage_that_stays_on_a_level_does_not_cross_it_again() -> None:
    assert crossed_thresholds((50,), D(100), D(50), D(50)) == []
    assert crossed_thresholds((50,), D(100), D(50), D("50.000001")) == []


def test_usage_that_does_not_grow_crosses_nothing() -> None:
    assert crossed_thresholds((50, 80, 100), D(100), D(90), D(10)) == []


def test_repeated_thresholds_are_crossed_once() -> None:
    assert crossed_thresholds((80, 50, 80), D(100), D(0), D(100)) == [50, 80]


def test_a_zero_budget_has_every_threshold_crossed_by_the_first_positive_usage() -> None:
    assert crossings("0", [D(0), D("0.000001"), D(5)]) == [[], [50, 80, 100], []]


def test_a_budget_created_over_existing_usage_crosses_from_zero_to_that_sum() -> None:
    assert crossed_thresholds(DEFAULT_THRESHOLDS, D(100), D(0), D(85)) == [50, 80]


def test_thresholds_are_compared_exactly_even_beyond_28_digits() -> None:
    # 100 % of this budget is ...678.4; a 28-digit context would round it to ...678.0, below "after"
    allocated = D("1234567890123456789012345678.4")
    assert crossed_thresholds((100,), allocated, D(0), D("1234567890123456789012345678.2")) == []
    assert crossed_thresholds((100,), allocated, D(0), allocated) == [100]


@pytest.mark.parametrize(
    ("allocated", "before", "after"),
    [(D(-1), D(0), D(1)), (D("NaN"), D(0), D(1)), (D(1), D(0), D("Infinity")), (D(1), D("NaN"), D(1))],
)
def test_a_negative_or_non_finite_budget_is_refused(
    allocated: Decimal, before: Decimal, after: Decimal
) -> None:
    with pytest.raises(ValueError, match=r"allocated amount cannot be negative|finite"):
        crossed_thresholds((50,), allocated, before, after)
