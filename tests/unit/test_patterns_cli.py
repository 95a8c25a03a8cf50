"""``hookyard errors`` rendering and parsing: pure functions, no database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from ops import patterns
from ops.patterns import (
    Change,
    DayCount,
    PatternError,
    PatternSummary,
    Stack,
    parse_since,
    parse_until,
    stack_of,
)
from ops.patterns_cli import (
    STATUS_CHOICES,
    cell,
    change_line,
    render_daily,
    render_stack,
    render_table,
    to_json,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def sentry_frame(filename: str, function: str, lineno: int, *, in_app: bool) -> dict[str, Any]:
    return {
        "filename": filename,
        "abs_path": f"/srv/app/{filename}",
        "function": function,
        "module": filename.removesuffix(".py").replace("/", "."),
        "lineno": lineno,
        "in_app": in_app,
        "context_line": "    do_it()",
    }


# --- The stack of a Sentry event ---


def test_a_sentry_exception_reads_as_its_type_and_value_then_python_traceback_frames() -> None:
    event = {
        "event_id": "9f0a6c1e3b2d4f5a8c7e6d5b4a3f2e1d",
        "level": "error",
        "platform": "python",
        "exception": {
            "values": [
                {
                    "type": "ZeroDivisionError",
                    "value": "division by zero",
                    "module": "builtins",
                    "mechanism": {"type": "excepthook", "handled": False},
                    "stacktrace": {
                        "frames": [
                            sentry_frame("gunicorn/workers/sync.py", "handle", 135, in_app=False),
                            sentry_frame("shop/reports.py", "average", 18, in_app=True),
                        ]
                    },
                }
            ]
        },
    }
    assert render_stack(stack_of("sentry", event)) == [
        "ZeroDivisionError: division by zero",
        '  File "gunicorn/workers/sync.py", line 135, in handle',
        '  File "shop/reports.py", line 18, in average  [in app]',
    ]


def test_a_chain_is_shown_cause_first_and_says_so() -> None:
    event = {
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'sku'",
                    "stacktrace": {"frames": [sentry_frame("a.py", "f", 1, in_app=True)]},
                },
                {
                    "type": "LookupFailed",
                    "value": "no price",
                    "stacktrace": {"frames": [sentry_frame("b.py", "g", 2, in_app=True)]},
                },
            ]
        }
    }
    assert render_stack(stack_of("sentry", event)) == [
        "2 chained exceptions, the cause first and the one raised last:",
        "KeyError: 'sku'",
        '  File "a.py", line 1, in f  [in app]',
        "LookupFailed: no price",
        '  File "b.py", line 2, in g  [in app]',
    ]


def test_missing_frame_fields_fall_back_without_failing() -> None:
    event = {
        "exception": {
            "values": [
                {
                    "type": "Error",
                    "stacktrace": {
                        "frames": [
                            {"abs_path": "/app/main.js", "function": "run"},
                            {"module": "com.example.Worker", "lineno": "7", "in_app": "yes"},
                            {},
                            "not a frame",
                        ]
                    },
                }
            ]
        }
    }
    assert render_stack(stack_of("sentry", event)) == [
        "Error",
        '  File "/app/main.js", line ?, in run',
        '  File "com.example.Worker", line ?, in <unknown>',
        '  File "<unknown>", line ?, in <unknown>',
    ]


@pytest.mark.parametrize(
    "exception",
    [
        [{"type": "OSError", "value": "disk full"}],  # a bare list
        {"type": "OSError", "value": "disk full"},  # the legacy single-exception interface
    ],
    ids=["bare list", "single object"],
)
def test_older_exception_shapes_are_read_too(exception: object) -> None:
    assert render_stack(stack_of("sentry", {"exception": exception})) == [
        "OSError: disk full",
        "  (no stack trace)",
    ]


def test_a_sentry_message_without_exception_is_its_message() -> None:
    event = {"logentry": {"message": "payment %s failed", "params": ["p1"], "formatted": "payment p1 failed"}}
    assert render_stack(stack_of("sentry", event)) == ["payment p1 failed"]
    assert render_stack(stack_of("sentry", {"message": "cache cold"})) == ["cache cold"]
    assert render_stack(stack_of("sentry", {"message": {"message": "template only"}})) == ["template only"]


def test_a_logged_exception_shows_its_log_message_first() -> None:
    event = {
        "logentry": {"formatted": "checkout failed for cart 12"},
        "exception": {"values": [{"type": "ValueError", "value": "bad quantity"}]},
    }
    assert render_stack(stack_of("sentry", event))[:2] == [
        "message: checkout failed for cart 12",
        "ValueError: bad quantity",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "text",
        {},
        {"exception": "x"},
        {"exception": {"values": "x"}},
        {"exception": {"values": [1, None]}},
    ],
)
def test_a_payload_of_any_shape_renders_without_raising(payload: object) -> None:
    assert render_stack(stack_of("sentry", payload)) == ["(no message and no exception)"]


# --- The stack of a /v1/errors object ---


def test_a_v1_report_is_its_exception_type_message_and_frames() -> None:
    body = {
        "id": "r1",
        "project": "api",
        "message": "connection refused",
        "exception_type": "ConnectionError",
        "frames": [
            {"filename": "billing/client.py", "function": "post", "lineno": 88, "in_app": True},
            {"filename": "urllib3/connection.py", "function": "connect", "lineno": 411, "in_app": False},
        ],
    }
    stack = stack_of("v1", body)
    assert stack.message == "connection refused"
    assert render_stack(stack) == [
        "ConnectionError: connection refused",
        '  File "billing/client.py", line 88, in post  [in app]',
        '  File "urllib3/connection.py", line 411, in connect',
    ]


def test_a_v1_report_with_only_a_message_is_that_message() -> None:
    assert render_stack(stack_of("v1", {"id": "r2", "message": "quota exceeded"})) == ["quota exceeded"]


def test_a_v1_report_with_frames_and_no_type_still_shows_its_frames() -> None:
    body = {"message": "boom", "frames": [{"filename": "job.py", "function": "run", "lineno": 3}]}
    assert render_stack(stack_of("v1", body)) == ["boom", '  File "job.py", line 3, in run']


# --- The list's table and JSON ---


def summary(**fields: Any) -> PatternSummary:
    values: dict[str, Any] = {
        "id": 12,
        "project": "default/shop",
        "status": "unresolved",
        "occurrence_count": 1234,
        "first_seen_at": datetime(2026, 3, 1, 8, 0, 59, tzinfo=UTC),
        "last_seen_at": datetime(2026, 3, 2, 11, 30, tzinfo=UTC),
        "exception_type": "ValueError",
        "title": "bad input <num>",
        "regression_count": 2,
        "level": "error",
        "severity": "high",
    }
    return PatternSummary(**(values | fields))


def test_the_table_cuts_long_titles_and_types_to_one_line_and_shows_utc() -> None:
    long_title = "word " * 30
    lines = render_table(
        [summary(title=long_title, exception_type="x" * 50), summary(id=7, exception_type=None)]
    )
    assert lines[0].split()[:5] == ["id", "project", "status", "count", "regr"]
    first = lines[1]
    assert "2026-03-01 08:00  2026-03-02 11:30" in first
    assert first.endswith(cell(long_title, 60))
    assert len(cell(long_title, 60)) == 60
    assert "x" * 31 + "\u2026" in first
    assert " - " in lines[2]


def test_a_time_from_another_zone_is_shown_in_utc() -> None:
    plus_two = datetime(2026, 3, 2, 15, 30, tzinfo=timezone(timedelta(hours=2)))
    line = render_table([summary(last_seen_at=plus_two)])[1]
    assert "2026-03-02 13:30" in line


def test_cell_flattens_whitespace_and_marks_a_cut() -> None:
    assert cell("a\nb\t c", 10) == "a b c"
    assert cell("abcdef", 4) == "abc\u2026"
    assert cell(None, 4) == "-"


def test_json_gives_times_in_utc_and_days_as_dates() -> None:
    document = json.loads(to_json([summary(), DayCount(date(2026, 3, 2), 3)]))
    assert document[0]["first_seen_at"] == "2026-03-01T08:00:59+00:00"
    assert document[1] == {"day": "2026-03-02", "occurrences": 3}


def test_the_status_choices_are_the_enum_of_migration_0009() -> None:
    assert STATUS_CHOICES == patterns.STATUSES


# --- Days ---


def test_the_days_are_bars_scaled_to_the_busiest_one() -> None:
    counts = [DayCount(date(2026, 3, 1), 0), DayCount(date(2026, 3, 2), 4), DayCount(date(2026, 3, 3), 1)]
    assert render_daily(counts) == [
        "  2026-03-01         0",
        "  2026-03-02         4  " + "#" * 40,
        "  2026-03-03         1  " + "#" * 10,
    ]
    assert render_daily([DayCount(date(2026, 3, 1), 0)]) == ["  2026-03-01         0"]


# --- State-change lines ---


def change(previous: str, status: str, **fields: Any) -> Change:
    values: dict[str, Any] = {
        "id": 12,
        "previous": previous,
        "status": status,
        "occurrence_count": 47,
        "resolved_at": None,
        "resolution": None,
        "auto_fixable": False,
        "ignored_until": None,
        "ignored_until_count": None,
    }
    return Change(**(values | fields))


def test_a_change_is_one_line_naming_the_status_it_had() -> None:
    assert change_line(change("unresolved", "resolved", resolved_at=NOW), "resolved") == (
        "pattern 12 resolved (was unresolved)"
    )
    assert change_line(change("ignored", "unresolved"), "reopened") == "pattern 12 reopened (was ignored)"


def test_the_same_status_again_is_a_success_with_a_note() -> None:
    assert change_line(change("resolved", "resolved", resolved_at=NOW), "resolved") == (
        "pattern 12 resolved (was resolved already; resolved at 2026-03-02 12:00:00 UTC, kept)"
    )
    assert change_line(change("unresolved", "unresolved"), "reopened") == (
        "pattern 12 reopened (was unresolved already; nothing changed)"
    )
    assert change_line(change("ignored", "ignored"), "ignored") == (
        "pattern 12 ignored (was ignored already; its limits replaced): "
        "no limit, it stays ignored until reopened"
    )


def test_an_ignore_line_says_what_reopens_it() -> None:
    assert change_line(change("unresolved", "ignored", ignored_until_count=57), "ignored") == (
        "pattern 12 ignored (was unresolved): reopens after 10 more occurrence(s) (at 57)"
    )
    both = change("resolved", "ignored", ignored_until_count=48, ignored_until=NOW)
    assert change_line(both, "ignored") == (
        "pattern 12 ignored (was resolved): reopens after 1 more occurrence(s) (at 48) "
        "or on an occurrence after 2026-03-02 12:00:00 UTC, whichever comes first"
    )


# --- Durations and times ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)), ("2w", timedelta(weeks=2))],
)
def test_since_takes_the_dead_letter_durations(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3x", "is not a duration"),
        ("24", "is not a duration"),
        ("-1h", "is not a duration"),
        ("0d", "is no time at all"),
        ("99999999999d", "too long"),
    ],
)
def test_a_bad_since_is_one_line(text: str, says: str) -> None:
    with pytest.raises(PatternError, match=says) as caught:
        parse_since(text)
    assert "\n" not in str(caught.value)


def test_until_takes_a_duration_from_the_databases_now() -> None:
    assert parse_until("2h", now=NOW) == patterns.Until(after=timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T09:00:00Z", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        ("2026-05-01t09:00:00z", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        ("2026-05-01T11:00:00.5+02:00", datetime(2026, 5, 1, 9, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-05-01 09:00:00+00:00", datetime(2026, 5, 1, 9, tzinfo=UTC)),
    ],
)
def test_until_takes_an_rfc_3339_time(text: str, expected: datetime) -> None:
    parsed = parse_until(text, now=NOW)
    assert parsed.at == expected
    assert parsed.after is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("soon", "is neither a duration"),
        ("2026-13-01T00:00:00Z", "is neither a duration"),
        ("2026-05-01T09:00:00", "has no UTC offset"),
        ("2026-05-01", "has no UTC offset"),
        ("2026-03-02T11:59:59Z", "is in the past"),
        ("0s", "is no time at all"),
    ],
)
def test_a_bad_until_is_one_line(text: str, says: str) -> None:
    with pytest.raises(PatternError, match=says) as caught:
        parse_until(text, now=NOW)
    assert "\n" not in str(caught.value)


def test_a_stack_is_a_plain_value_for_json() -> None:
    stack = stack_of("v1", {"message": "m", "exception_type": "E"})
    assert json.loads(to_json(stack)) == {
        "message": "m",
        "exceptions": [{"type": "E", "value": "m", "frames": []}],
    }
    assert isinstance(stack, Stack)
