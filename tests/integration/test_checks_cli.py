"""An operator setting up and silencing heartbeat checks with the real ``hookyard checks`` commands.

Subjects are inserted with SQL as the database owner, the way the worker would leave them after
some reports: the CLI only re-times, pauses and resumes them.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.cli import as_json, ok, one_line_error
from tests.support.processes import HOOKYARD, fleet_env

PUBLIC_URL = "https://hooks.example.com/hy"


def hookyard(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKYARD, *args],
        env=fleet_env(DATABASE_URL=database_url, COLUMNS="200", HOOKYARD_PUBLIC_URL=PUBLIC_URL, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(database_url: str, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def check_row(database_url: str, slug: str) -> dict[str, Any]:
    found = rows(
        database_url,
        "SELECT id, project_id, uuid::text AS uuid, name, kind::text AS kind, period, schedule, tz, "
        "grace, paused FROM checks WHERE slug = %(slug)s",
        {"slug": slug},
    )
    assert len(found) == 1, found
    return found[0]


def add_subject(
    database_url: str, slug: str, subject: str, status: str, last: datetime | None, **fields: Any
) -> None:
    check = check_row(database_url, slug)
    values = {
        "project_id": check["project_id"],
        "check_id": check["id"],
        "subject": subject,
        "status": status,
        "last_heartbeat_at": last,
        "due_at": fields.get("due_at"),
        "alarm_at": fields.get("alarm_at"),
        "running": fields.get("running", False),
        "run_started_at": fields.get("run_started_at"),
    }
    rows(
        database_url,
        "INSERT INTO runtime_status (project_id, check_id, subject, status, last_heartbeat_at, due_at, "
        "alarm_at, running, run_started_at) VALUES (%(project_id)s, %(check_id)s, %(subject)s, "
        "%(status)s, %(last_heartbeat_at)s, %(due_at)s, %(alarm_at)s, %(running)s, %(run_started_at)s)",
        values,
    )


def subjects(database_url: str, slug: str) -> dict[str, dict[str, Any]]:
    found = rows(
        database_url,
        "SELECT r.subject, r.status::text AS status, r.due_at, r.alarm_at, r.last_heartbeat_at, r.running "
        "FROM runtime_status r JOIN checks c ON c.id = r.check_id WHERE c.slug = %(slug)s",
        {"slug": slug},
    )
    return {row["subject"]: row for row in found}


def flips(database_url: str, slug: str) -> list[tuple[str, str, str, str]]:
    found = rows(
        database_url,
        "SELECT f.subject, f.from_status::text AS from_status, f.to_status::text AS to_status, f.cause "
        "FROM status_flips f JOIN checks c ON c.id = f.check_id WHERE c.slug = %(slug)s "
        "ORDER BY f.id",
        {"slug": slug},
    )
    return [(row["subject"], row["from_status"], row["to_status"], row["cause"]) for row in found]


def db_now(database_url: str) -> datetime:
    now: datetime = rows(database_url, "SELECT now() AS now")[0]["now"]
    return now


@pytest.fixture
def db(fresh_database_url: str) -> str:
    """A fresh database with the project `shop` in the default organization."""
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    return fresh_database_url


# --- set ---


def test_set_creates_a_simple_check_and_prints_its_uuid_and_both_ping_urls(db: str) -> None:
    out = ok(hookyard(db, "checks", "set", "shop", "backup", "--period", "5m", "--grace", "90s"))

    stored = check_row(db, "backup")
    assert (stored["kind"], stored["period"], stored["grace"], stored["schedule"]) == (
        "simple",
        timedelta(minutes=5),
        timedelta(seconds=90),
        None,
    )
    assert stored["paused"] is False
    lines = out.splitlines()
    assert lines[0] == "created check backup of default/shop: every 5m, grace 90s"
    assert lines[1].split() == ["uuid", stored["uuid"]]
    assert lines[2].split(maxsplit=2)[2] == f"{PUBLIC_URL}/ping/{stored['uuid']}"
    assert lines[3].split(maxsplit=2)[2] == f"{PUBLIC_URL}/ping/<project key>/backup"
    assert len(lines) == 4


def test_a_new_check_without_grace_gets_an_hour_and_a_cron_one_keeps_its_zone(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Paris"))

    stored = check_row(db, "nightly")
    assert (stored["kind"], stored["schedule"], stored["tz"], stored["period"], stored["grace"]) == (
        "cron",
        "0 3 * * *",
        "Europe/Paris",
        None,
        timedelta(hours=1),
    )
    [listed] = as_json(hookyard(db, "checks", "list", "--json"))
    assert listed["kind"] == "cron"
    assert listed["schedule"] == "0 3 * * *"
    assert listed["tz"] == "Europe/Paris"
    assert listed["period_seconds"] is None
    assert listed["grace_seconds"] == 3600


def test_setting_a_check_again_changes_it_in_place_and_keeps_what_is_not_given(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "sync", "--period", "1h", "--grace", "5m", "--name", "Sync"))
    before = check_row(db, "sync")

    out = ok(hookyard(db, "checks", "set", "shop", "sync", "--cron", "*/15  *  * * *"))

    after = check_row(db, "sync")
    assert (
        out.splitlines()[0] == "updated check sync (Sync) of default/shop: cron '*/15 * * * *' UTC, grace 5m"
    )
    assert after["uuid"] == before["uuid"]
    assert (after["kind"], after["schedule"], after["period"]) == ("cron", "*/15 * * * *", None)
    assert (after["grace"], after["name"], after["tz"]) == (timedelta(minutes=5), "Sync", "UTC")

    ok(hookyard(db, "checks", "set", "shop", "sync", "--period", "2d", "--grace", "1h", "--name", ""))

    again = check_row(db, "sync")
    assert (again["kind"], again["period"], again["schedule"]) == ("simple", timedelta(days=2), None)
    assert (again["grace"], again["name"]) == (timedelta(hours=1), None)
    assert rows(db, "SELECT count(*) AS n FROM checks")[0]["n"] == 1


def test_a_new_period_times_up_and_grace_subjects_again_from_their_last_report(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "api", "--period", "10m", "--grace", "5m"))
    now = db_now(db)
    last = {
        "web-1:10:8000": now - timedelta(minutes=20),  # grace under 10m; not due yet under 1h
        "web-2:11:8000": now - timedelta(minutes=70),  # up under its old alarm; in grace under 1h + 30m
        "web-3:12:8000": now - timedelta(hours=3),  # past due and grace under 1h + 30m: down
        "web-4:13:8000": now - timedelta(hours=3),  # down: waits for a report
    }
    add_subject(db, "api", "web-1:10:8000", "grace", last["web-1:10:8000"])
    add_subject(db, "api", "web-2:11:8000", "up", last["web-2:11:8000"])
    add_subject(db, "api", "web-3:12:8000", "up", last["web-3:12:8000"])
    add_subject(db, "api", "web-4:13:8000", "down", last["web-4:13:8000"], due_at=now, alarm_at=None)
    add_subject(db, "api", "web-5:14:8000", "new", None)

    out = ok(hookyard(db, "checks", "set", "shop", "api", "--period", "1h", "--grace", "30m"))

    assert "3 subject(s) timed again by the new schedule, 3 of them changed status" in out
    found = subjects(db, "api")
    hour, half = timedelta(hours=1), timedelta(minutes=30)
    assert found["web-1:10:8000"]["status"] == "up"
    assert found["web-1:10:8000"]["due_at"] == last["web-1:10:8000"] + hour
    assert found["web-1:10:8000"]["alarm_at"] == last["web-1:10:8000"] + hour
    assert found["web-2:11:8000"]["status"] == "grace"
    assert found["web-2:11:8000"]["alarm_at"] == last["web-2:11:8000"] + hour + half
    assert (found["web-3:12:8000"]["status"], found["web-3:12:8000"]["alarm_at"]) == ("down", None)
    assert found["web-3:12:8000"]["due_at"] == last["web-3:12:8000"] + hour
    assert (found["web-4:13:8000"]["status"], found["web-4:13:8000"]["due_at"]) == ("down", now)
    assert (found["web-5:14:8000"]["status"], found["web-5:14:8000"]["due_at"]) == ("new", None)
    assert flips(db, "api") == [
        ("web-1:10:8000", "grace", "up", "rescheduled"),
        ("web-2:11:8000", "up", "grace", "rescheduled"),
        ("web-3:12:8000", "up", "down", "rescheduled"),
    ]


def test_a_cron_schedule_times_subjects_by_its_next_time_in_its_zone(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "report", "--period", "1d"))
    last = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    add_subject(db, "report", "", "up", last)

    ok(hookyard(db, "checks", "set", "shop", "report", "--cron", "0 3 * * *", "--tz", "Europe/Paris"))

    pings = subjects(db, "report")[""]
    # 03:00 in Paris on 3 March (winter time, UTC+1) is 02:00 UTC; long past, and its hour of
    # grace with it: the subject is down at once.
    assert pings["due_at"] == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    assert (pings["status"], pings["alarm_at"]) == ("down", None)
    assert flips(db, "report") == [("", "up", "down", "rescheduled")]


def test_a_paused_check_given_a_new_schedule_stays_paused_and_its_subjects_untouched(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "api", "--period", "1h"))
    add_subject(db, "api", "web-1:1:80", "up", db_now(db))
    ok(hookyard(db, "checks", "pause", "shop", "api"))

    out = ok(hookyard(db, "checks", "set", "shop", "api", "--period", "1m"))

    assert out.splitlines()[0] == "updated check api of default/shop: every 1m, grace 1h, paused"
    assert "timed again" not in out
    assert check_row(db, "api")["paused"] is True
    found = subjects(db, "api")["web-1:1:80"]
    assert (found["status"], found["due_at"], found["alarm_at"]) == ("paused", None, None)


# --- list and show ---


def test_list_json_counts_each_checks_subjects_by_status_with_its_last_report_and_next_deadline(
    db: str,
) -> None:
    ok(hookyard(db, "projects", "create", "blog"))
    ok(hookyard(db, "checks", "set", "shop", "api", "--period", "1h"))
    ok(hookyard(db, "checks", "set", "blog", "cron-job", "--cron", "*/5 * * * *"))
    now = db_now(db)
    add_subject(db, "api", "web-1:1:80", "up", now - timedelta(minutes=1), due_at=now + timedelta(minutes=59))
    add_subject(db, "api", "web-2:2:80", "down", now - timedelta(hours=5), due_at=now - timedelta(hours=4))
    add_subject(db, "api", "web-3:3:80", "up", now - timedelta(minutes=2), due_at=now + timedelta(minutes=58))

    listed = as_json(hookyard(db, "checks", "list", "--json"))

    assert [(check["project"], check["slug"]) for check in listed] == [
        ("default/blog", "cron-job"),
        ("default/shop", "api"),
    ]
    api = listed[1]
    assert api["subjects"] == {"new": 0, "up": 2, "grace": 0, "down": 1, "paused": 0, "total": 3}
    assert datetime.fromisoformat(api["last_report_at"]) == now - timedelta(minutes=1)
    assert datetime.fromisoformat(api["next_due_at"]) == now + timedelta(minutes=58)
    assert (api["period_seconds"], api["grace_seconds"], api["paused"]) == (3600, 3600, False)
    assert listed[0]["subjects"]["total"] == 0
    assert listed[0]["last_report_at"] is None

    only_blog = as_json(hookyard(db, "checks", "list", "--project", "blog", "--json"))
    assert [check["slug"] for check in only_blog] == ["cron-job"]
    table = ok(hookyard(db, "checks", "list")).splitlines()
    assert table[0].split()[:3] == ["check", "schedule", "grace"]
    assert table[2].startswith("default/shop/api")
    assert "2 up, 1 down" in table[2]
    assert "cron '*/5 * * * *' UTC" in table[1]


def test_list_says_when_there_are_no_checks(db: str) -> None:
    assert ok(hookyard(db, "checks", "list", "--project", "shop")).startswith("no checks in default/shop")
    assert as_json(hookyard(db, "checks", "list", "--json")) == []


def test_show_json_gives_the_check_its_ping_urls_subjects_and_latest_flips(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "backup", "--period", "1d", "--grace", "2h"))
    add_subject(db, "backup", "", "up", db_now(db))
    ok(hookyard(db, "checks", "pause", "shop", "backup"))

    shown = as_json(hookyard(db, "checks", "show", "shop", "backup", "--json"))

    uuid = check_row(db, "backup")["uuid"]
    assert (shown["slug"], shown["project"], shown["uuid"], shown["paused"]) == (
        "backup",
        "default/shop",
        uuid,
        True,
    )
    assert (shown["period_seconds"], shown["grace_seconds"]) == (86400, 7200)
    assert shown["ping_urls"] == [f"{PUBLIC_URL}/ping/{uuid}", f"{PUBLIC_URL}/ping/<project key>/backup"]
    [subject] = shown["subjects"]
    assert (subject["subject"], subject["status"], subject["alarm_at"]) == ("", "paused", None)
    assert [
        (flip["subject"], flip["from_status"], flip["to_status"], flip["cause"]) for flip in shown["flips"]
    ] == [("", "up", "paused", "paused")]

    page = ok(hookyard(db, "checks", "show", "shop", "backup"))
    assert "schedule: every 1d" in page
    assert "(pings)" in page
    assert "up -> paused  (paused)" in page


# --- pause and resume ---


def test_pause_and_resume_move_every_subject_with_a_flip_each_and_a_repeat_says_so(db: str) -> None:
    ok(hookyard(db, "checks", "set", "shop", "api", "--period", "1h"))
    now = db_now(db)
    add_subject(
        db,
        "api",
        "web-1:1:80",
        "up",
        now,
        due_at=now + timedelta(hours=1),
        alarm_at=now + timedelta(hours=1),
        running=True,
        run_started_at=now,
    )
    add_subject(db, "api", "web-2:2:80", "down", now - timedelta(hours=3))

    paused = ok(hookyard(db, "checks", "pause", "shop", "api"))

    assert paused.strip() == "paused check api of default/shop: 2 subject(s) paused"
    assert check_row(db, "api")["paused"] is True
    found = subjects(db, "api")
    # As Healthchecks' pause: the open run is forgotten, so it cannot go down when resumed.
    assert {name: (row["status"], row["alarm_at"], row["running"]) for name, row in found.items()} == {
        "web-1:1:80": ("paused", None, False),
        "web-2:2:80": ("paused", None, False),
    }
    assert flips(db, "api") == [
        ("web-1:1:80", "up", "paused", "paused"),
        ("web-2:2:80", "down", "paused", "paused"),
    ]

    again = ok(hookyard(db, "checks", "pause", "default/shop", "api"))
    assert again.strip() == "check api of default/shop was paused already; nothing changed"
    assert len(flips(db, "api")) == 2

    resumed = ok(hookyard(db, "checks", "resume", "shop", "api"))

    assert resumed.strip() == "resumed check api of default/shop: 2 subject(s) new until their next report"
    assert check_row(db, "api")["paused"] is False
    assert {
        name: (row["status"], row["alarm_at"], row["due_at"]) for name, row in subjects(db, "api").items()
    } == {
        "web-1:1:80": ("new", None, None),
        "web-2:2:80": ("new", None, None),
    }
    assert flips(db, "api")[2:] == [
        ("web-1:1:80", "paused", "new", "resumed"),
        ("web-2:2:80", "paused", "new", "resumed"),
    ]
    assert ok(hookyard(db, "checks", "resume", "shop", "api")).strip() == (
        "check api of default/shop was not paused; nothing changed"
    )
    listed = as_json(hookyard(db, "checks", "list", "--json"))
    assert listed[0]["subjects"]["new"] == 2


# --- Refusals: one line each ---


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--period", "5x"), "--period"),
        (("--period", "0s"), "--period"),
        (("--period", "5m", "--grace", "abc"), "--grace"),
        (("--cron", "61 * * * *"), "--cron"),
        (("--cron", "every day"), "--cron"),
        (("--cron", "0 3 * * *", "--tz", "Mars/Olympus_Mons"), "Mars/Olympus_Mons"),
        (("--period", "5m", "--tz", "Europe/Paris"), "--tz"),
    ],
)
def test_bad_durations_cron_expressions_and_zones_are_one_line_and_store_nothing(
    db: str, args: tuple[str, ...], expected: str
) -> None:
    line = one_line_error(hookyard(db, "checks", "set", "shop", "job", *args))

    assert line.startswith("hookyard: ")
    assert expected in line
    assert rows(db, "SELECT count(*) AS n FROM checks")[0]["n"] == 0


def test_a_schedule_must_be_given_once(db: str) -> None:
    neither = one_line_error(hookyard(db, "checks", "set", "shop", "job"), exit_code=2)
    both = one_line_error(
        hookyard(db, "checks", "set", "shop", "job", "--period", "5m", "--cron", "* * * * *"), exit_code=2
    )
    assert "--period" in neither
    assert "not both" in both


def test_unknown_projects_and_checks_and_bad_slugs_are_one_line(db: str) -> None:
    assert "no project default/nope" in one_line_error(
        hookyard(db, "checks", "set", "nope", "job", "--period", "5m")
    )
    assert "no organization acme" in one_line_error(hookyard(db, "checks", "list", "--project", "acme/shop"))
    assert "has no check ghost" in one_line_error(hookyard(db, "checks", "pause", "shop", "ghost"))
    assert "has no check ghost" in one_line_error(hookyard(db, "checks", "resume", "shop", "ghost"))
    assert "has no check ghost" in one_line_error(hookyard(db, "checks", "show", "shop", "ghost"))
    assert "not a check slug" in one_line_error(
        hookyard(db, "checks", "set", "shop", "Job", "--period", "1m")
    )
    assert "not a check slug" in one_line_error(hookyard(db, "checks", "pause", "shop", "a" * 101))
