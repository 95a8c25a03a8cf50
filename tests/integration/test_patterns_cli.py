"""An operator triaging error patterns with the real ``hookyard errors`` commands.

The rows are inserted with SQL as the database owner, the way the worker would leave them: two
projects, three patterns, and occurrences with a Sentry event or a /v1/errors object as their
payload, received over several days up to today.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.cli import as_json, hookyard, ok, one_line_error
from tests.support.processes import HOOKYARD, fleet_env
from tests.support.waiting import wait_until


def query(database_url: str, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# --- The rows an operator finds ---

#: 70 characters: longer than the list's title column.
LONG_TITLE = "upstream <url> timed out after <num>s while charging order <uuid> for shop <str>"


def sentry_event(event_id: str, *, value: str, checkout_line: int) -> dict[str, Any]:
    """A Python SDK's event for a ValueError raised while handling a KeyError."""
    return {
        "event_id": event_id,
        "timestamp": "2026-03-02T10:15:00.123456Z",
        "platform": "python",
        "level": "error",
        "logger": "django.request",
        "release": "shop@1.4.2",
        "environment": "production",
        "server_name": "web-1",
        "sdk": {"name": "sentry.python.django", "version": "2.19.0"},
        "tags": [["url", "/checkout"]],
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'quantity'",
                    "module": None,
                    "mechanism": {"type": "chained", "handled": True, "source": "__context__"},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "shop/cart.py",
                                "abs_path": "/srv/shop/shop/cart.py",
                                "function": "line_total",
                                "module": "shop.cart",
                                "lineno": 31,
                                "in_app": True,
                                "context_line": '    return item["quantity"] * item["price"]',
                            }
                        ]
                    },
                },
                {
                    "type": "ValueError",
                    "value": value,
                    "module": "builtins",
                    "mechanism": {"type": "django", "handled": False},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "django/core/handlers/exception.py",
                                "abs_path": "/venv/lib/python3.12/site-packages/django/core/handlers/"
                                "exception.py",
                                "function": "inner",
                                "module": "django.core.handlers.exception",
                                "lineno": 55,
                                "in_app": False,
                            },
                            {
                                "filename": "shop/views.py",
                                "abs_path": "/srv/shop/shop/views.py",
                                "function": "checkout",
                                "module": "shop.views",
                                "lineno": checkout_line,
                                "in_app": True,
                                "vars": {"request": "<WSGIRequest: POST '/checkout'>"},
                            },
                        ]
                    },
                },
            ]
        },
        "contexts": {"runtime": {"name": "CPython", "version": "3.12.3"}},
    }


def v1_report(report_id: str) -> dict[str, Any]:
    return {
        "id": report_id,
        "project": "api",
        "service": "billing",
        "environment": "production",
        "release": "2026.03.1",
        "level": "error",
        "message": "upstream https://pay.example.com/v2/charges timed out after 30s while charging order "
        "3f9c1e2a-8d4b-4c6e-9a7f-2b5d8e1c0a93 for shop 'north'",
        "exception_type": "TimeoutError",
        "frames": [
            {"filename": "billing/client.py", "function": "post", "lineno": 88, "in_app": True},
            {"filename": "httpx/_client.py", "function": "send", "lineno": 1014, "in_app": False},
        ],
        "tags": {"region": "ca-central-1"},
        "timestamp": "2026-03-01T08:00:00Z",
    }


@dataclass(frozen=True)
class Seeded:
    database_url: str
    checkout: int  # default/shop, unresolved, Sentry, seen an hour ago
    timeout: int  # acme/api, unresolved, /v1, seen two days ago
    resolved: int  # default/shop, resolved, /v1 message only, seen ten days ago
    today: date


def _pattern(conn: psycopg.Connection[Any], **fields: Any) -> int:
    row = conn.execute(
        """INSERT INTO error_patterns (project_id, pattern_hash, grouping, components, exception_type,
               title, sample_message, level, severity, occurrence_count, first_seen_at, last_seen_at,
               status, resolved_at, regression_count)
           VALUES (%(project_id)s, %(pattern_hash)s, %(grouping)s, %(components)s, %(exception_type)s,
               %(title)s, %(sample_message)s, 'error', 'high', %(occurrence_count)s,
               now() - %(first_seen)s::interval, now() - %(last_seen)s::interval,
               %(status)s, %(resolved_at)s, %(regression_count)s)
           RETURNING id""",
        {"status": "unresolved", "resolved_at": None, "regression_count": 0, **fields},
    ).fetchone()
    assert row is not None
    return int(row[0])


def _occurrence(
    conn: psycopg.Connection[Any],
    *,
    project_id: int,
    pattern_hash: str,
    event_id: str,
    age: timedelta,
    origin: str,
    payload: dict[str, Any],
) -> None:
    conn.execute(
        """INSERT INTO error_occurrences (project_id, event_id, received_at, occurred_at, pattern_hash,
               level, exception_type, message, release, environment, origin, payload)
           VALUES (%s, %s, now() - %s, now() - %s, %s, 'error', %s, %s, %s, %s, %s, %s)""",
        (
            project_id,
            event_id,
            age,
            age,
            pattern_hash,
            payload.get("exception_type"),
            payload.get("message"),
            payload.get("release"),
            payload.get("environment"),
            origin,
            Jsonb(payload),
        ),
    )


@pytest.fixture
def seeded(fresh_database_url: str) -> Seeded:
    hour, day = timedelta(hours=1), timedelta(days=1)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn, conn.transaction():
        shop = conn.execute(
            "INSERT INTO projects (organization_id, slug, name) "
            "SELECT id, 'shop', 'Shop' FROM organizations WHERE slug = 'default' RETURNING id"
        ).fetchone()
        acme = conn.execute(
            "INSERT INTO organizations (slug, name) VALUES ('acme', 'Acme') RETURNING id"
        ).fetchone()
        assert shop is not None
        assert acme is not None
        api = conn.execute(
            "INSERT INTO projects (organization_id, slug, name) VALUES (%s, 'api', 'API') RETURNING id",
            (acme[0],),
        ).fetchone()
        assert api is not None
        shop_id, api_id = int(shop[0]), int(api[0])

        checkout_hash, timeout_hash, resolved_hash = "a" * 64, "b" * 64, "c" * 64
        checkout = _pattern(
            conn,
            project_id=shop_id,
            pattern_hash=checkout_hash,
            grouping="exception_frames",
            components=Jsonb(["type:KeyError", "frame:shop.cart:line_total", "type:ValueError"]),
            exception_type="ValueError",
            title="invalid literal for int() with base <num>: <str>",
            sample_message="invalid literal for int() with base 10: 'abc'",
            occurrence_count=5,
            first_seen=timedelta(days=20),
            last_seen=hour,
            regression_count=1,
        )
        # Received 20 days ago (outside the 14 days shown), 3 days ago, yesterday and twice today;
        # the latest one (an hour ago) has its own value and line number.
        for event_id, age, value, line in [
            ("e-20d", 20 * day, "invalid literal for int() with base 10: 'old'", 40),
            ("e-3d", 3 * day, "invalid literal for int() with base 10: 'x'", 41),
            ("e-1d", day, "invalid literal for int() with base 10: 'y'", 41),
            ("e-2h", 2 * hour, "invalid literal for int() with base 10: 'z'", 41),
            ("e-1h", hour, "invalid literal for int() with base 10: 'abc'", 42),
        ]:
            _occurrence(
                conn,
                project_id=shop_id,
                pattern_hash=checkout_hash,
                event_id=event_id,
                age=age,
                origin="sentry",
                payload=sentry_event(event_id, value=value, checkout_line=line),
            )

        timeout = _pattern(
            conn,
            project_id=api_id,
            pattern_hash=timeout_hash,
            grouping="exception_frames",
            components=Jsonb(["type:TimeoutError", "frame:client.py:post"]),
            exception_type="TimeoutError",
            title=LONG_TITLE,
            sample_message=v1_report("r1")["message"],
            occurrence_count=3,
            first_seen=5 * day,
            last_seen=2 * day,
        )
        for report_id, age in [("r1", 5 * day), ("r2", 2 * day + hour), ("r3", 2 * day)]:
            _occurrence(
                conn,
                project_id=api_id,
                pattern_hash=timeout_hash,
                event_id=report_id,
                age=age,
                origin="v1",
                payload=v1_report(report_id),
            )

        resolved = _pattern(
            conn,
            project_id=shop_id,
            pattern_hash=resolved_hash,
            grouping="message",
            components=Jsonb(["message:cache miss storm on <str>"]),
            exception_type=None,
            title="cache miss storm on <str>",
            sample_message="cache miss storm on 'carts'",
            occurrence_count=1,
            first_seen=10 * day,
            last_seen=10 * day,
            status="resolved",
            resolved_at=datetime.now(UTC) - 9 * day,
        )
        _occurrence(
            conn,
            project_id=shop_id,
            pattern_hash=resolved_hash,
            event_id="m1",
            age=10 * day,
            origin="v1",
            payload={
                "id": "m1",
                "project": "shop",
                "message": "cache miss storm on 'carts'",
                "level": "warning",
            },
        )
        today = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()
    assert today is not None
    return Seeded(fresh_database_url, checkout, timeout, resolved, today[0])


def pattern_row(database_url: str, pattern_id: int) -> dict[str, Any]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT status::text AS status, occurrence_count, resolved_at, regressed_at, regression_count, "
            "resolution, auto_fixable, ignored_until, ignored_until_count FROM error_patterns WHERE id = %s",
            (pattern_id,),
        ).fetchone()
    assert row is not None
    return row


def listed(seeded: Seeded, *args: str) -> list[int]:
    return [row["id"] for row in as_json(hookyard(seeded.database_url, "errors", "list", "--json", *args))]


# --- list ---


def test_errors_list_shows_unresolved_patterns_most_recently_seen_first(seeded: Seeded) -> None:
    out = ok(hookyard(seeded.database_url, "errors", "list"))
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["id", "project", "status", "count", "regr", "first"]
    assert len(lines) == 3
    checkout, timeout = lines[1].split(), lines[2].split()
    assert checkout[:5] == [str(seeded.checkout), "default/shop", "unresolved", "5", "1"]
    assert timeout[:5] == [str(seeded.timeout), "acme/api", "unresolved", "3", "0"]
    assert "ValueError" in lines[1]
    assert "invalid literal for int() with base <num>: <str>" in lines[1]


def test_errors_list_filters_by_project_status_and_last_seen(seeded: Seeded) -> None:
    assert listed(seeded) == [seeded.checkout, seeded.timeout]
    assert listed(seeded, "--project", "shop") == [seeded.checkout]
    assert listed(seeded, "--project", "default/shop", "--status", "all") == [
        seeded.checkout,
        seeded.resolved,
    ]
    assert listed(seeded, "--project", "acme/api") == [seeded.timeout]
    assert listed(seeded, "--status", "resolved") == [seeded.resolved]
    assert listed(seeded, "--status", "ignored") == []
    assert listed(seeded, "--status", "all") == [seeded.checkout, seeded.timeout, seeded.resolved]
    assert listed(seeded, "--since", "24h") == [seeded.checkout]
    assert listed(seeded, "--since", "30m") == []
    assert listed(seeded, "--since", "7d", "--status", "all") == [seeded.checkout, seeded.timeout]
    assert listed(seeded, "--since", "2w", "--status", "all") == [
        seeded.checkout,
        seeded.timeout,
        seeded.resolved,
    ]


def test_errors_list_json_gives_every_column_and_the_whole_title_the_table_cuts(seeded: Seeded) -> None:
    rows = {row["id"]: row for row in as_json(hookyard(seeded.database_url, "errors", "list", "--json"))}
    timeout = rows[seeded.timeout]
    assert timeout["project"] == "acme/api"
    assert timeout["status"] == "unresolved"
    assert timeout["occurrence_count"] == 3
    assert timeout["regression_count"] == 0
    assert timeout["exception_type"] == "TimeoutError"
    assert timeout["title"] == LONG_TITLE
    first, last = (
        datetime.fromisoformat(timeout["first_seen_at"]),
        datetime.fromisoformat(timeout["last_seen_at"]),
    )
    assert first.utcoffset() == timedelta(0)
    assert timedelta(days=2, minutes=59) < last - first < timedelta(days=3, minutes=1)

    table = ok(hookyard(seeded.database_url, "errors", "list"))
    assert LONG_TITLE not in table
    assert LONG_TITLE[:59] + "\u2026" in table


def test_errors_list_says_when_nothing_matches_and_when_the_limit_cut_the_list(seeded: Seeded) -> None:
    result = hookyard(seeded.database_url, "errors", "list", "--status", "ignored")
    assert ok(result).strip() == "no ignored error patterns; --status all lists every status"

    limited = hookyard(seeded.database_url, "errors", "list", "--limit", "1", "--json")
    assert [row["id"] for row in as_json(limited)] == [seeded.checkout]
    assert limited.stderr.strip() == "showing the 1 most recently seen; --limit shows more"


# --- show ---


def test_errors_show_prints_the_latest_sentry_stack_like_a_traceback_and_the_days(seeded: Seeded) -> None:
    out = ok(hookyard(seeded.database_url, "errors", "show", str(seeded.checkout)))
    assert "            project: default/shop" in out
    assert "   regression_count: 1" in out
    assert "latest occurrence: e-1h, received " in out
    assert "(sentry, release shop@1.4.2, environment production)" in out
    # The latest occurrence's chain, cause first, frames most recent call last, in-app marked.
    stack = out[out.index("latest occurrence") :].splitlines()[1:8]
    assert stack == [
        "  2 chained exceptions, the cause first and the one raised last:",
        "  KeyError: 'quantity'",
        '    File "shop/cart.py", line 31, in line_total  [in app]',
        "  ValueError: invalid literal for int() with base 10: 'abc'",
        '    File "django/core/handlers/exception.py", line 55, in inner',
        '    File "shop/views.py", line 42, in checkout  [in app]',
        "",
    ]
    assert (
        "occurrences in the last 14 days, per UTC day of receipt, "
        "counted from the occurrences kept (subject to retention):" in out
    )
    days = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.startswith("  20")}
    expected = {(seeded.today - timedelta(days=n)).isoformat(): 0 for n in range(14)}
    expected.update(
        {
            seeded.today.isoformat(): 2,
            (seeded.today - timedelta(days=1)).isoformat(): 1,
            (seeded.today - timedelta(days=3)).isoformat(): 1,
        }
    )
    assert days == expected


def test_errors_show_json_gives_the_fields_the_parsed_stack_and_fourteen_days(seeded: Seeded) -> None:
    shown = as_json(hookyard(seeded.database_url, "errors", "show", str(seeded.timeout), "--json"))
    assert shown["id"] == seeded.timeout
    assert shown["project"] == "acme/api"
    assert shown["title"] == LONG_TITLE
    assert shown["status"] == "unresolved"
    assert shown["resolution"] is None
    assert shown["components"] == ["type:TimeoutError", "frame:client.py:post"]
    latest = shown["latest_occurrence"]
    assert latest["event_id"] == "r3"
    assert latest["origin"] == "v1"
    assert latest["release"] == "2026.03.1"
    assert latest["stack"] == {
        "message": v1_report("r3")["message"],
        "exceptions": [
            {
                "type": "TimeoutError",
                "value": v1_report("r3")["message"],
                "frames": [
                    {
                        "filename": "billing/client.py",
                        "function": "post",
                        "lineno": 88,
                        "in_app": True,
                        "module": None,
                    },
                    {
                        "filename": "httpx/_client.py",
                        "function": "send",
                        "lineno": 1014,
                        "in_app": False,
                        "module": None,
                    },
                ],
            }
        ],
    }
    counts = shown["daily_counts"]
    assert [day["day"] for day in counts] == [
        (seeded.today - timedelta(days=n)).isoformat() for n in range(13, -1, -1)
    ]
    by_day = {day["day"]: day["occurrences"] for day in counts}
    assert by_day[(seeded.today - timedelta(days=2)).isoformat()] == 2
    assert by_day[(seeded.today - timedelta(days=5)).isoformat()] == 1
    assert sum(by_day.values()) == 3
    assert "retention" in shown["daily_counts_basis"]


def test_errors_show_of_a_v1_report_without_an_exception_prints_its_message(seeded: Seeded) -> None:
    out = ok(hookyard(seeded.database_url, "errors", "show", str(seeded.resolved)))
    assert "latest occurrence: m1, received " in out
    assert "\n  cache miss storm on 'carts'\n" in out
    assert "             status: resolved" in out


# --- resolve, ignore, reopen ---


def test_resolve_sets_the_status_time_resolution_and_auto_fixable_and_clears_the_ignore(
    seeded: Seeded,
) -> None:
    url, pattern = seeded.database_url, seeded.checkout
    ok(hookyard(url, "errors", "ignore", str(pattern), "--until-count", "3", "--until", "2h"))

    result = hookyard(
        url, "errors", "resolve", str(pattern), "--resolution", "parse quantity as int", "--auto-fixable"
    )
    assert ok(result).strip() == f"pattern {pattern} resolved (was ignored)"
    row = pattern_row(url, pattern)
    assert row["status"] == "resolved"
    assert datetime.now(UTC) - row["resolved_at"] < timedelta(minutes=1)
    assert row["resolution"] == "parse quantity as int"
    assert row["auto_fixable"] is True
    assert row["ignored_until"] is None
    assert row["ignored_until_count"] is None
    assert row["regression_count"] == 1

    # Again: it succeeds, says so and keeps the first resolved_at and the notes not given.
    again = ok(hookyard(url, "errors", "resolve", str(pattern))).strip()
    assert again.startswith(f"pattern {pattern} resolved (was resolved already; resolved at ")
    assert pattern_row(url, pattern) == row

    ok(hookyard(url, "errors", "resolve", str(pattern), "--no-auto-fixable", "--resolution", ""))
    assert pattern_row(url, pattern) | {"auto_fixable": True, "resolution": "parse quantity as int"} == row
    assert pattern_row(url, pattern)["resolution"] is None
    assert pattern_row(url, pattern)["auto_fixable"] is False


def test_ignore_until_count_stores_the_current_count_plus_n(seeded: Seeded) -> None:
    url, pattern = seeded.database_url, seeded.timeout
    query(url, "UPDATE error_patterns SET occurrence_count = 47 WHERE id = %(id)s", {"id": pattern})

    line = ok(hookyard(url, "errors", "ignore", str(pattern), "--until-count", "10")).strip()
    assert line == f"pattern {pattern} ignored (was unresolved): reopens after 10 more occurrence(s) (at 57)"
    row = pattern_row(url, pattern)
    assert (row["status"], row["ignored_until_count"], row["ignored_until"]) == ("ignored", 57, None)


def test_ignore_until_count_counts_from_a_worker_increment_committed_while_it_waited(seeded: Seeded) -> None:
    url, pattern = seeded.database_url, seeded.checkout
    with psycopg.connect(url) as worker:
        # A worker's upsert holds the row: the ignore waits for it and then counts from its result.
        worker.execute(
            "UPDATE error_patterns SET occurrence_count = occurrence_count + 2 WHERE id = %s", (pattern,)
        )
        ignoring = subprocess.Popen(
            [HOOKYARD, "errors", "ignore", str(pattern), "--until-count", "10"],
            env=fleet_env(DATABASE_URL=url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waiting = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        wait_until(lambda: query(url, waiting) == [(1,)], what="the ignore to wait for the row lock")
        worker.commit()
    out, err = ignoring.communicate(timeout=60)
    assert ignoring.returncode == 0, err
    assert out.strip().endswith("reopens after 10 more occurrence(s) (at 17)")
    assert pattern_row(url, pattern)["ignored_until_count"] == 5 + 2 + 10


def test_ignore_until_a_duration_or_a_time_and_both_whichever_first(seeded: Seeded) -> None:
    url, pattern = seeded.database_url, seeded.checkout
    before = datetime.now(UTC)
    line = ok(hookyard(url, "errors", "ignore", str(pattern), "--until", "2h")).strip()
    assert line.startswith(f"pattern {pattern} ignored (was unresolved): reopens on an occurrence after ")
    until = pattern_row(url, pattern)["ignored_until"]
    assert before + timedelta(hours=2) - timedelta(seconds=5) < until < datetime.now(UTC) + timedelta(hours=2)
    assert pattern_row(url, pattern)["ignored_until_count"] is None

    line = ok(
        hookyard(
            url,
            "errors",
            "ignore",
            str(pattern),
            "--until",
            "2030-05-01T11:00:00+02:00",
            "--until-count",
            "4",
        )
    ).strip()
    assert line == (
        f"pattern {pattern} ignored (was ignored already; its limits replaced): reopens after 4 more "
        "occurrence(s) (at 9) or on an occurrence after 2030-05-01 09:00:00 UTC, whichever comes first"
    )
    row = pattern_row(url, pattern)
    assert row["ignored_until"] == datetime(2030, 5, 1, 9, tzinfo=UTC)
    assert row["ignored_until_count"] == 9

    # Ignoring with no limit replaces the limits with none.
    line = ok(hookyard(url, "errors", "ignore", str(pattern))).strip()
    assert line.endswith("no limit, it stays ignored until reopened")
    row = pattern_row(url, pattern)
    assert (row["status"], row["ignored_until"], row["ignored_until_count"]) == ("ignored", None, None)


def test_ignoring_a_resolved_pattern_clears_its_resolved_time_and_keeps_its_resolution(
    seeded: Seeded,
) -> None:
    url, pattern = seeded.database_url, seeded.resolved
    ok(hookyard(url, "errors", "resolve", str(pattern), "--resolution", "bigger cache"))
    line = ok(hookyard(url, "errors", "ignore", str(pattern))).strip()
    assert line.startswith(f"pattern {pattern} ignored (was resolved)")
    row = pattern_row(url, pattern)
    assert (row["status"], row["resolved_at"], row["resolution"]) == ("ignored", None, "bigger cache")


def test_reopen_clears_the_resolved_time_and_ignore_limits_and_is_no_regression(seeded: Seeded) -> None:
    url = seeded.database_url
    line = ok(hookyard(url, "errors", "reopen", str(seeded.resolved))).strip()
    assert line == f"pattern {seeded.resolved} reopened (was resolved)"
    row = pattern_row(url, seeded.resolved)
    assert (row["status"], row["resolved_at"], row["regressed_at"], row["regression_count"]) == (
        "unresolved",
        None,
        None,
        0,
    )

    ok(hookyard(url, "errors", "ignore", str(seeded.checkout), "--until-count", "2", "--until", "1d"))
    assert ok(hookyard(url, "errors", "reopen", str(seeded.checkout))).strip() == (
        f"pattern {seeded.checkout} reopened (was ignored)"
    )
    row = pattern_row(url, seeded.checkout)
    assert (row["status"], row["ignored_until"], row["ignored_until_count"], row["regression_count"]) == (
        "unresolved",
        None,
        None,
        1,
    )

    again = hookyard(url, "errors", "reopen", str(seeded.checkout))
    assert (
        ok(again).strip() == f"pattern {seeded.checkout} reopened (was unresolved already; nothing changed)"
    )
    assert pattern_row(url, seeded.checkout) == row


def test_a_reopened_pattern_is_listed_again_and_a_resolved_one_no_longer(seeded: Seeded) -> None:
    ok(hookyard(seeded.database_url, "errors", "resolve", str(seeded.checkout)))
    ok(hookyard(seeded.database_url, "errors", "reopen", str(seeded.resolved)))
    assert listed(seeded) == [seeded.timeout, seeded.resolved]


# --- one-line refusals ---


@pytest.mark.parametrize(
    "args",
    [
        ("show", "999999"),
        ("show", "999999", "--json"),
        ("resolve", "999999"),
        ("ignore", "999999", "--until-count", "3"),
        ("reopen", "999999"),
    ],
    ids=" ".join,
)
def test_an_unknown_pattern_id_is_one_line_and_exit_1(seeded: Seeded, args: tuple[str, ...]) -> None:
    line = one_line_error(hookyard(seeded.database_url, "errors", *args))
    assert line == "hookyard: no error pattern with id 999999; `hookyard errors list --status all` lists them"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("list", "--since", "3x"), "--since '3x' is not a duration"),
        (("list", "--since", "24"), "--since '24' is not a duration"),
        (("list", "--since", "0h"), "--since '0h' is no time at all"),
        (("list", "--since", "99999999999d"), "--since '99999999999d' is too long a duration"),
        (("list", "--project", "Not A Slug"), "is neither SLUG nor ORG/SLUG"),
        (("list", "--project", "acme/nope"), "no project acme/nope"),
        (("ignore", "1", "--until", "tomorrow"), "--until 'tomorrow' is neither a duration"),
        (("ignore", "1", "--until", "2020-01-01T00:00:00Z"), "is in the past"),
        (("ignore", "1", "--until", "2030-01-01T09:00:00"), "has no UTC offset"),
        (("ignore", "1", "--until", "2030-01-01"), "has no UTC offset"),
        (("ignore", "1", "--until", "0m"), "--until '0m' is no time at all"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_bad_durations_times_and_projects_are_one_line_and_exit_1(
    seeded: Seeded, args: tuple[str, ...], says: str
) -> None:
    line = one_line_error(hookyard(seeded.database_url, "errors", *args))
    assert line.startswith("hookyard: ")
    assert says in line
    assert pattern_row(seeded.database_url, seeded.checkout)["status"] == "unresolved"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("ignore", "1", "--until-count", "0"), "--until-count"),
        (("ignore", "1", "--until-count", "many"), "--until-count"),
        (("show", "twelve"), "ID"),
        (("list", "--status", "open"), "--status"),
        (("list", "--limit", "0"), "--limit"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_bad_flags_are_one_usage_line_and_exit_2(seeded: Seeded, args: tuple[str, ...], says: str) -> None:
    line = one_line_error(hookyard(seeded.database_url, "errors", *args), exit_code=2)
    assert says in line


def test_an_unmigrated_database_is_one_line_naming_the_fix(
    empty_database_url: str, postgres_admin_url: str
) -> None:
    name = str(conninfo_to_dict(empty_database_url)["dbname"])
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    line = one_line_error(hookyard(empty_database_url, "errors", "list"))
    assert line.endswith("the database is not migrated; run `hookyard migrate`")
