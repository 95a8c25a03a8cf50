"""The pure parts of ``GET /v1/usage/summary``: its parameters, which source answers which days, its body."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.usage_summary import UsageSummary
from producers.errors import IngestError
from producers.keys import OPERATOR, ProjectKey
from producers.usage_summary import (
    Plan,
    SummaryQuery,
    decimal_text,
    parse_query,
    parse_time,
    plan,
    render,
    resolve_project,
)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T10:00:00Z", utc(2026, 1, 15, 10)),
        ("2026-01-15t10:00:00z", utc(2026, 1, 15, 10)),
        ("2026-01-15T11:00:00+01:00", utc(2026, 1, 15, 10)),
        ("2026-01-15T05:30:00-04:30", utc(2026, 1, 15, 10)),
        ("2026-01-15T10:00:00.5Z", utc(2026, 1, 15, 10, 0, 0, 500_000)),
        ("2026-01-15T10:00:00.123456789Z", utc(2026, 1, 15, 10, 0, 0, 123_456)),
        ("2016-12-31T23:59:60Z", utc(2017, 1, 1)),  # a leap second is the next second
        ("0001-01-01T00:00:00+05:00", EARLIEST),  # before year 1 in UTC: the first instant
        ("9999-12-31T23:59:59-01:00", LATEST),
    ],
)
def test_rfc3339_times_are_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-15",
        "2026-01-15T10:00:00",
        "2026-01-15 10:00:00Z",
        "2026-01-15T10:00Z",
        "2026-01-15T10:00:00+0100",
        "2026-01-15T24:00:00Z",
        "2026-01-15T10:60:00Z",
        "2026-01-15T10:00:61Z",
        "2026-01-15T10:00:00+24:00",
        "2026-02-30T10:00:00Z",
        "2026-01-15T10:00:00Z\n",
        "1736935200",
        "",
    ],
)
def test_anything_else_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|out of range"):
        parse_time(text)


def test_an_offset_whose_plus_became_a_space_says_so() -> None:
    with pytest.raises(ValueError, match="%2B"):
        parse_time("2026-01-15T10:00:00 01:00")


def test_the_range_defaults_to_the_last_24_hours() -> None:
    query = parse_query(b"window=hour", now=NOW)
    assert query == SummaryQuery(None, None, NOW - timedelta(hours=24), NOW, "hour", None)
    until = parse_query(b"window=day&to=2026-01-02T00:00:00Z", now=NOW)
    assert (until.start, until.end) == (utc(2026, 1, 1), utc(2026, 1, 2))
    since = parse_query(b"window=day&from=2026-03-01T00:00:00Z", now=NOW)
    assert (since.start, since.end) == (utc(2026, 3, 1), NOW)
    assert parse_query(b"window=day&to=0001-01-01T01:00:00Z", now=NOW).start == EARLIEST


def test_every_parameter_is_read() -> None:
    query = parse_query(
        b"project=acme%2Fgamma&resource_type=llm+tokens&window=month&group_by=model"
        b"&from=2026-01-01T00:00:00%2B01:00&to=2026-02-01T00:00:00Z",
        now=NOW,
    )
    assert query == SummaryQuery(
        "acme/gamma", "llm tokens", utc(2025, 12, 31, 23), utc(2026, 2, 1), "month", "model"
    )


def _refused(query: bytes) -> IngestError:
    with pytest.raises(IngestError) as refused:
        parse_query(query, now=NOW)
    return refused.value


def test_every_field_that_fails_is_listed_once_in_one_422() -> None:
    error = _refused(b"window=weekly&project=Alpha&from=soon&to=later&colour=red&group_by=")
    assert (error.status, error.code) == (422, "validation_failed")
    assert [item["field"] for item in error.extra["errors"]] == [
        "colour",
        "project",
        "window",
        "group_by",
        "from",
        "to",
    ]


def test_from_must_come_before_to() -> None:
    error = _refused(b"window=day&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00%2B23:00")
    assert error.status == 422
    assert error.extra["errors"] == [{"field": "from", "message": "must be before to (2025-12-31T01:00:00Z)"}]
    assert _refused(b"window=day&from=2026-03-11T00:00:00Z").status == 422  # after now, the default to


def test_a_repeated_parameter_or_bytes_that_are_not_utf8_are_400() -> None:
    assert _refused(b"window=day&window=day").code == "duplicate_parameter"
    assert _refused(b"window=day&project=%C3%28").code == "invalid_query"
    assert _refused(b"window=day&project=\xff").code == "invalid_query"


def _key(org: str = "default") -> ProjectKey:
    return ProjectKey(7, "hash", 42, "alpha", org, frozenset({"usage"}), revoked=False)


def test_a_key_reads_its_own_project_whether_or_not_it_names_it() -> None:
    assert resolve_project(_key(), None) == (42, "default", "alpha")
    assert resolve_project(_key(), "alpha") == (42, "default", "alpha")
    assert resolve_project(_key(), "default/alpha") == (42, "default", "alpha")
    assert resolve_project(_key("acme"), "acme/alpha") == (42, "acme", "alpha")
    for other in ("beta", "acme/alpha"):
        with pytest.raises(IngestError) as refused:
            resolve_project(_key(), other)
        assert (refused.value.status, refused.value.code) == (403, "forbidden_project")


def test_the_operator_names_the_project() -> None:
    assert resolve_project(OPERATOR, "alpha") == (None, "default", "alpha")
    assert resolve_project(OPERATOR, "acme/gamma") == (None, "acme", "gamma")
    with pytest.raises(IngestError) as refused:
        resolve_project(OPERATOR, None)
    assert (refused.value.status, refused.value.code) == (400, "missing_parameter")


def _plan(start: datetime, end: datetime, window: str = "day", group_by: str | None = None) -> Plan:
    return plan(SummaryQuery(None, None, start, end, window, group_by), today=date(2026, 3, 10))


def test_whole_days_before_today_come_from_the_view_and_the_rest_from_resource_usage() -> None:
    assert _plan(utc(2026, 1, 1), utc(2026, 3, 1)) == Plan(
        date(2026, 1, 1), date(2026, 3, 1), utc(2026, 1, 1), utc(2026, 3, 1)
    )
    # Part-days at both ends are resource_usage's.
    assert _plan(utc(2026, 1, 1, 6), utc(2026, 2, 1, 12)) == Plan(
        date(2026, 1, 2), date(2026, 2, 1), utc(2026, 1, 2), utc(2026, 2, 1)
    )
    # Today, and anything after, too: the view is always behind on it.
    assert _plan(utc(2026, 1, 1), utc(2026, 4, 1), "month") == Plan(
        date(2026, 1, 1), date(2026, 3, 10), utc(2026, 1, 1), utc(2026, 3, 10)
    )


@pytest.mark.parametrize(
    ("start", "end", "window", "group_by"),
    [
        (utc(2026, 1, 1), utc(2026, 3, 1), "hour", None),
        (utc(2026, 1, 1), utc(2026, 3, 1), "day", "model"),
        (utc(2026, 1, 1, 6), utc(2026, 1, 2, 6), "day", None),  # no whole day inside
        (utc(2026, 3, 10, 1), utc(2026, 3, 12), "day", None),  # nothing before today
        (LATEST - timedelta(hours=1), LATEST, "day", None),
    ],
)
def test_resource_usage_alone_answers_what_the_view_cannot(
    start: datetime, end: datetime, window: str, group_by: str | None
) -> None:
    assert _plan(start, end, window, group_by) == Plan(end.date(), end.date(), end, end)


def test_decimals_are_exact_strings_without_trailing_zeros_or_exponents() -> None:
    assert decimal_text(Decimal("120.5000000000")) == "120.5"
    assert decimal_text(Decimal("100.0000000000")) == "100"
    assert decimal_text(Decimal("0E-10")) == "0"
    assert decimal_text(Decimal("-0.000001")) == "-0.000001"
    assert decimal_text(Decimal("12345678901234567890.0000000001")) == "12345678901234567890.0000000001"
    assert decimal_text(Decimal("1E+3")) == "1000"


def test_the_body_follows_its_published_schema() -> None:
    query = SummaryQuery("alpha", "llm_tokens", utc(2026, 1, 1), utc(2026, 2, 1), "day", "model")
    rows = [
        (utc(2026, 1, 15), "llm_tokens", "tokens", None, 3, Decimal("175.0000000000"), None),
        (utc(2026, 1, 15), "llm_tokens", "tokens", "a", 1, Decimal("100"), Decimal("0.500000")),
    ]
    body = render(query, "alpha", rows)
    UsageSummary.model_validate(body)
    assert body["from"] == "2026-01-01T00:00:00Z"
    assert body["totals"][0] == {
        "window_start": "2026-01-15T00:00:00Z",
        "resource_type": "llm_tokens",
        "unit": "tokens",
        "records": 3,
        "amount": "175",
        "cost_cad": None,
        "group": None,
    }
    ungrouped = render(SummaryQuery("alpha", None, query.start, query.end, "day", None), "alpha", rows[:1])
    UsageSummary.model_validate(ungrouped)
    assert "group" not in ungrouped["totals"][0]
