"""``hookyard checks`` rendering, parsing and re-timing: pure functions, no database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.checks import Flip, Schedule, Status, Subject
from ops import checks as ops_checks
from ops.checks import (
    RESCHEDULED,
    Check,
    CheckError,
    CheckSummary,
    FlipRow,
    PauseChange,
    SetCheck,
    StatusCounts,
    SubjectRow,
    check_slug,
    last_end,
    parse_schedule,
    ping_urls,
    retime,
)
from ops.checks_cli import (
    counts_text,
    pause_line,
    render_check,
    render_table,
    schedule_text,
    set_lines,
    subject_label,
    to_json,
)
from schema import queries

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UUID = "0c5a3f6e-8a43-4f3e-9a55-6f2b1f0d9e71"


def counts(**values: int) -> StatusCounts:
    every = {"new": 0, "up": 0, "grace": 0, "down": 0, "paused": 0, **values}
    return StatusCounts(**every, total=sum(every.values()))


def summary(**fields: object) -> CheckSummary:
    values: dict[str, object] = {
        "id": 1,
        "project": "default/shop",
        "slug": "backup",
        "uuid": UUID,
        "name": None,
        "kind": "simple",
        "period": timedelta(minutes=5),
        "schedule": None,
        "tz": "UTC",
        "grace": timedelta(minutes=1),
        "paused": False,
        "subjects": counts(),
        "last_report_at": None,
        "next_due_at": None,
        **fields,
    }
    return CheckSummary(**values)  # type: ignore[arg-type]


# --- Durations and schedules ---


def test_a_simple_schedule_reads_as_its_period_and_a_cron_one_as_its_expression_and_zone() -> None:
    assert schedule_text("simple", timedelta(minutes=5), None, "UTC") == "every 5m"
    assert schedule_text("cron", None, "0 3 * * *", "Europe/Paris") == "cron '0 3 * * *' Europe/Paris"


def test_a_period_is_parsed_with_the_grace_left_to_the_stored_one_when_not_given() -> None:
    request = parse_schedule(period="5m", cron=None, tz=None, grace=None)
    assert (request.kind, request.period, request.grace, request.expression) == (
        "simple",
        timedelta(minutes=5),
        None,
        None,
    )
    with_grace = parse_schedule(period="1d", cron=None, tz=None, grace="90s")
    assert with_grace.grace == timedelta(seconds=90)


def test_a_cron_expression_is_kept_with_its_spaces_collapsed_and_its_zone() -> None:
    request = parse_schedule(period=None, cron=" 0  3 * * 1-5 ", tz="Europe/Paris", grace="1h")
    assert (request.kind, request.expression, request.tz, request.grace) == (
        "cron",
        "0 3 * * 1-5",
        "Europe/Paris",
        timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"period": "5x"}, "--period"),
        ({"period": "0s"}, "--period"),
        ({"period": "-5m"}, "--period"),
        ({"period": "5m", "grace": "0m"}, "--grace"),
        ({"cron": "61 * * * *"}, "--cron"),
        ({"cron": "* * *"}, "--cron"),
        ({"cron": "0 3 * * *", "tz": "Nowhere/Special"}, "Nowhere/Special"),
        ({"period": "5m", "tz": "Europe/Paris"}, "--tz"),
        ({}, "--period"),
        ({"period": "5m", "cron": "* * * * *"}, "not both"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_what_is_wrong(options: dict[str, str], named: str) -> None:
    arguments: dict[str, str | None] = {"period": None, "cron": None, "tz": None, "grace": None, **options}
    with pytest.raises(CheckError) as refused:
        parse_schedule(**arguments)
    assert named in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("slug", ["backup", "a", "nightly_db-2", "x" * 100, "0"])
def test_check_slugs_follow_the_ping_url_pattern(slug: str) -> None:
    assert check_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "Backup", "x" * 101, "a b", "a/b", "é"])
def test_anything_else_is_refused_as_a_check_slug(slug: str) -> None:
    with pytest.raises(CheckError, match="not a check slug"):
        check_slug(slug)


def test_the_ping_urls_are_by_uuid_and_by_a_key_placeholder_and_slug() -> None:
    assert ping_urls("https://hooks.example.com/hy/", UUID, "backup") == [
        f"https://hooks.example.com/hy/ping/{UUID}",
        "https://hooks.example.com/hy/ping/<project key>/backup",
    ]


# --- Re-timing a subject under a new schedule ---

HOURLY = Schedule.simple(timedelta(hours=1), timedelta(minutes=10))


def subject(status: Status, last: datetime, **fields: object) -> Subject:
    values: dict[str, object] = {
        "status": status,
        "last_report_at": last,
        "running": False,
        "run_started_at": None,
        "run_id": None,
        "last_duration": None,
        "due_at": None,
        "alarm_at": None,
        **fields,
    }
    return Subject(**values)  # type: ignore[arg-type]


def test_a_subject_in_grace_not_due_under_the_new_schedule_is_up_again_with_a_flip_dated_now() -> None:
    last = NOW - timedelta(minutes=20)
    after, flips = retime(subject(Status.GRACE, last), HOURLY, since=last, now=NOW)
    assert (after.status, after.due_at, after.alarm_at) == (
        Status.UP,
        last + timedelta(hours=1),
        last + timedelta(hours=1),
    )
    assert flips == [Flip(Status.GRACE, Status.UP, NOW, RESCHEDULED)]


def test_an_up_subject_past_its_new_deadline_is_in_grace_until_the_grace_ends() -> None:
    last = NOW - timedelta(minutes=65)
    after, flips = retime(subject(Status.UP, last), HOURLY, since=last, now=NOW)
    assert (after.status, after.alarm_at) == (Status.GRACE, last + timedelta(minutes=70))
    assert flips == [Flip(Status.UP, Status.GRACE, NOW, RESCHEDULED)]


def test_a_subject_past_its_new_deadline_and_grace_is_down_with_one_flip_and_no_alarm() -> None:
    last = NOW - timedelta(hours=3)
    after, flips = retime(subject(Status.UP, last), HOURLY, since=last, now=NOW)
    assert (after.status, after.alarm_at) == (Status.DOWN, None)
    assert flips == [Flip(Status.UP, Status.DOWN, NOW, RESCHEDULED)]


def test_a_subject_whose_status_stays_gets_its_new_deadline_and_no_flip() -> None:
    last = NOW - timedelta(minutes=5)
    before = subject(Status.UP, last, due_at=NOW + timedelta(days=1), alarm_at=NOW + timedelta(days=1))
    after, flips = retime(before, HOURLY, since=last, now=NOW)
    assert (after.status, after.due_at, after.alarm_at) == (
        Status.UP,
        last + timedelta(hours=1),
        last + timedelta(hours=1),
    )
    assert flips == []


def test_a_run_started_and_not_ended_keeps_its_own_earlier_deadline() -> None:
    started = NOW - timedelta(minutes=2)
    before = subject(Status.UP, started, running=True, run_started_at=started)
    after, _ = retime(before, HOURLY, since=NOW - timedelta(minutes=30), now=NOW)
    assert after.alarm_at == started + timedelta(minutes=10)
    assert after.running


def test_a_cron_schedule_is_due_at_its_next_time_in_its_zone() -> None:
    nightly = Schedule.from_cron("0 3 * * *", "Europe/Paris", timedelta(hours=1))
    last = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    after, _ = retime(subject(Status.UP, last), nightly, since=last, now=last + timedelta(minutes=1))
    assert after.due_at == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 03:00 in Paris, winter time


def test_the_last_end_is_the_last_report_unless_that_is_the_open_runs_start() -> None:
    ended = NOW - timedelta(minutes=40)
    assert last_end(subject(Status.UP, ended), old_period=timedelta(hours=1)) == ended
    started = NOW - timedelta(minutes=5)
    running = subject(
        Status.UP, started, running=True, run_started_at=started, due_at=ended + timedelta(hours=1)
    )
    # Under an old period the end is recovered from the deadline it set; under cron it is not.
    assert last_end(running, old_period=timedelta(hours=1)) == ended
    assert last_end(running, old_period=None) == started
    # An end after the open run's start (another run's success) is the last end.
    later = subject(Status.UP, NOW, running=True, run_started_at=started, due_at=NOW + timedelta(hours=1))
    assert last_end(later, old_period=timedelta(hours=1)) == NOW


# --- The list, a check's page and the one-line answers ---


def test_the_statuses_of_a_checks_subjects_read_worst_first_and_none_says_so() -> None:
    assert counts_text(counts(up=2, down=1, new=1)) == "2 up, 1 down, 1 new"
    assert counts_text(counts()) == "no subjects"


def test_the_table_has_one_aligned_line_per_check() -> None:
    lines = render_table(
        [
            summary(
                subjects=counts(up=2, down=1), last_report_at=NOW, next_due_at=NOW + timedelta(minutes=5)
            ),
            summary(
                slug="nightly",
                kind="cron",
                period=None,
                schedule="0 3 * * *",
                tz="Europe/Paris",
                grace=timedelta(hours=1),
                paused=True,
            ),
        ]
    )
    assert lines[0].split() == ["check", "schedule", "grace", "state", "subjects", "last", "report", "(UTC)",
                                "next", "due", "(UTC)"]  # fmt: skip
    assert lines[1].split() == [
        "default/shop/backup", "every", "5m", "1m", "active", "2", "up,", "1", "down",
        "2026-03-02", "12:00:00", "2026-03-02", "12:05:00",
    ]  # fmt: skip
    assert "cron '0 3 * * *' Europe/Paris" in lines[2]
    assert lines[2].split()[-5:] == ["paused", "no", "subjects", "-", "-"]
    assert lines[0].index("state") == lines[1].index("active") == lines[2].index("paused")


def test_set_prints_what_it_did_then_the_uuid_and_both_ping_urls() -> None:
    done = SetCheck(
        project="default/shop",
        slug="backup",
        uuid=UUID,
        name="Nightly backup",
        kind="simple",
        period=timedelta(days=1),
        schedule=None,
        tz="UTC",
        grace=timedelta(hours=1),
        paused=False,
        created=False,
        ping_urls=ping_urls("http://127.0.0.1:8000", UUID, "backup"),
        retimed=2,
        flipped=1,
    )
    assert set_lines(done) == [
        "updated check backup (Nightly backup) of default/shop: every 1d, grace 1h",
        f"  uuid      {UUID}",
        f"  ping url  http://127.0.0.1:8000/ping/{UUID}",
        "  ping url  http://127.0.0.1:8000/ping/<project key>/backup",
        "  2 subject(s) timed again by the new schedule, 1 of them changed status",
    ]


def _check(**fields: object) -> Check:
    values: dict[str, object] = {
        "id": 7,
        "project": "default/shop",
        "project_id": 3,
        "slug": "api",
        "uuid": UUID,
        "name": None,
        "kind": "simple",
        "period": timedelta(minutes=1),
        "schedule": None,
        "tz": "UTC",
        "grace": timedelta(seconds=30),
        "paused": False,
        "created_at": NOW,
        "updated_at": NOW,
        "ping_urls": ping_urls("http://h:1", UUID, "api"),
        "subjects": [],
        "flips": [],
        **fields,
    }
    return Check(**values)  # type: ignore[arg-type]


def _subject(name: str, status: str, **fields: object) -> SubjectRow:
    values: dict[str, object] = {
        "subject": name,
        "status": status,
        "running": False,
        "run_started_at": None,
        "last_heartbeat_at": NOW,
        "last_duration": None,
        "due_at": NOW + timedelta(minutes=1),
        "alarm_at": NOW + timedelta(minutes=1),
        "process_name": None,
        "host": None,
        "pid": None,
        "port": None,
        "cpu_usage": None,
        "memory_usage": None,
        "updated_at": NOW,
        **fields,
    }
    return SubjectRow(**values)  # type: ignore[arg-type]


def test_a_checks_page_lists_its_ping_urls_subjects_and_flips_newest_first() -> None:
    page = render_check(
        _check(
            subjects=[
                _subject("", "up"),
                _subject("web-1:42:8000", "down", running=True, run_started_at=NOW),
            ],
            flips=[
                FlipRow("web-1:42:8000", "grace", "down", NOW, "grace passed"),
                FlipRow("", "new", "up", NOW - timedelta(minutes=1), "success"),
            ],
        )
    )
    assert " schedule: every 1m" in page
    assert f"ping urls: http://h:1/ping/{UUID}" in page
    assert " " * 11 + "http://h:1/ping/<project key>/api" in page
    assert "subjects: 2" in page
    [pings] = [line for line in page if line.startswith("  (pings)")]
    assert pings.split()[1] == "up"
    [instance] = [line for line in page if line.startswith("  web-1:42:8000")]
    assert instance.endswith("running since 2026-03-02 12:00:00")
    flips = page[page.index("latest status flips (UTC), newest first: 2") + 1 :]
    assert flips[0].endswith("grace -> down  (grace passed)")
    assert flips[1].endswith("new -> up  (success)")


def test_a_check_without_subjects_or_flips_says_so() -> None:
    page = render_check(_check())
    assert "subjects: none yet (a subject appears with its first report)" in page
    assert "status flips: none yet" in page
    assert subject_label("") == "(pings)"


@pytest.mark.parametrize(
    ("paused", "previous", "moved", "line"),
    [
        (True, False, 2, "paused check api of default/shop: 2 subject(s) paused"),
        (True, True, 0, "check api of default/shop was paused already; nothing changed"),
        (True, True, 1, "check api of default/shop was paused already; 1 more subject(s) paused"),
        (False, True, 2, "resumed check api of default/shop: 2 subject(s) new until their next report"),
        (False, False, 0, "check api of default/shop was not paused; nothing changed"),
        (False, False, 1, "check api of default/shop was not paused; 1 paused subject(s) set to new"),
    ],
)
def test_pause_and_resume_answer_in_one_line_and_a_repeat_says_so(
    paused: bool, previous: bool, moved: int, line: str
) -> None:
    change = PauseChange("default/shop", "api", paused, previous, [("", "up")] * moved)
    assert pause_line(change) == line


# --- JSON ---


def test_json_gives_durations_in_seconds_and_times_in_utc() -> None:
    paris = datetime(2026, 3, 2, 13, 0, tzinfo=UTC).astimezone()
    document = json.loads(
        to_json(
            _check(
                kind="cron",
                period=None,
                schedule="0 3 * * *",
                created_at=paris,
                subjects=[_subject("", "up", last_duration=timedelta(seconds=2.5))],
            )
        )
    )
    assert document["period_seconds"] is None
    assert "period" not in document
    assert document["grace_seconds"] == 30
    assert document["created_at"] == "2026-03-02T13:00:00+00:00"
    assert document["subjects"][0]["last_duration_seconds"] == 2.5
    assert document["ping_urls"][1] == "http://h:1/ping/<project key>/api"


def test_a_list_in_json_counts_the_subjects_by_status_with_their_total() -> None:
    [document] = json.loads(to_json([summary(subjects=counts(up=1, paused=2))]))
    assert document["subjects"] == {"new": 0, "up": 1, "grace": 0, "down": 0, "paused": 2, "total": 3}
    assert document["uuid"] == UUID


def test_every_query_the_checks_operations_run_is_packaged_under_the_checks_prefix() -> None:
    source = Path(ops_checks.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r'queries\(\)\["(\w+)"\]', source))
    assert used
    assert all(name.startswith("checks_") and queries()[name].strip() for name in used), used
