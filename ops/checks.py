"""Heartbeat-check operations behind ``hookyard checks``: set, list, show, pause, resume.

Each operation opens its own connection, runs in one transaction and returns plain dataclasses;
every refusal is a :class:`CheckError` (or a tenancy error for an unknown project) whose message
is one line for an operator. Durations and schedules are parsed and validated by
:mod:`contracts.checks`, the module the worker times subjects with; the parsers here only put the
option's name in front of its one-line message.

What ``set`` does to the subjects of a check whose schedule changes (:func:`retime`): each
``up`` or ``grace`` subject gets its deadline again under the new schedule, counted from its last
success or failure, and the status that deadline gives it at this moment, as the sweep would
take it: ``up`` when the deadline is ahead, ``grace`` when only the grace time is, ``down`` when
both have passed (or a started run's grace has). A status that changes is one ``status_flips``
row, dated now, cause ``rescheduled``. All of it happens in the transaction that changes the
check, so the sweep never acts on an old deadline of a subject the check had then. ``new``,
``down`` and ``paused`` subjects have no deadline to move: they wait for a report (or a resume).

The last success or failure is ``last_heartbeat_at``, except when the newest report is the start
of the run still open (``run_started_at = last_heartbeat_at``): then, under an old period, it is
``due_at - period`` (exact: the worker sets ``due_at`` one period after each end); under an old
cron schedule it cannot be recovered and the start is counted from, which can only put the
deadline later, by at most the time between that end and the start (the run's own deadline,
start + grace, stands either way).

``pause`` and ``resume`` move every subject by :func:`contracts.checks.pause` and
:func:`contracts.checks.resume`: paused, with no run and no deadline; then ``new`` (as
Healthchecks: a resumed check waits for its next report and cannot go down before it). Each
subject's change is a ``status_flips`` row (cause ``paused`` or ``resumed``). Pausing a paused
check, or resuming one that is not paused, succeeds and says so.

Every change locks the check's subjects before the check's row, the order the worker takes them
in (it locks the subjects of a batch, then resumes a paused check), so the two never deadlock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import IsolationLevel

from contracts import checks as rules
from contracts.checks import DEFAULT_GRACE, Schedule, Status, Subject, parse_duration
from hookyard.errors import HookyardError
from ops.tenancy import ProjectRef, _connect, _find_project, ping_url
from schema import queries

#: A check's slug, as SPEC fixes it for ping URLs.
CHECK_SLUG: Final = re.compile(r"^[a-z0-9_-]{1,100}$")
#: What ``set`` prints in the slug URL where the project's key goes: keys are stored as hashes only.
KEY_PLACEHOLDER: Final = "<project key>"
#: How many of a check's latest status flips ``show`` returns.
FLIPS_SHOWN: Final = 20
#: The cause of a status changed by ``set`` giving a check a new schedule.
RESCHEDULED: Final = "rescheduled"

Row = dict[str, Any]


class CheckError(HookyardError):
    """A checks command was refused; the message says why in one line."""


class CheckNotFound(CheckError):
    """The project has no check of that slug."""


# --- Pure parsing ---


def check_slug(value: str) -> str:
    """``value`` when it is a check slug (``[a-z0-9_-]{1,100}``), else a :class:`CheckError`."""
    if not CHECK_SLUG.match(value):
        raise CheckError(
            f"check {value!r} is not a check slug: 1 to 100 lowercase letters, digits, '_' and '-'"
        )
    return value


def parse_duration_option(option: str, value: str) -> timedelta:
    """A ``--period`` or ``--grace`` as contracts.checks reads durations (``90s``, ``5m``, ``1h``,
    ``2d``; one second or more), its refusal prefixed with the option."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CheckError(f"{option}: {_one_line(exc)}") from None


@dataclass(frozen=True)
class ScheduleRequest:
    """The schedule ``set`` asks for; ``tz`` and ``grace`` None keep the stored ones (a new check:
    UTC and contracts.checks' DEFAULT_GRACE)."""

    kind: str
    period: timedelta | None = None
    expression: str | None = None
    tz: str | None = None
    grace: timedelta | None = None


def parse_schedule(
    *, period: str | None, cron: str | None, tz: str | None, grace: str | None
) -> ScheduleRequest:
    """Exactly one of ``period`` and ``cron``; ``tz`` only with ``cron``. Validated by
    contracts.checks.Schedule, the worker's own, so a schedule stored is one it can time."""
    if period is None and cron is None:
        raise CheckError("give the schedule: --period (e.g. 5m) or --cron (e.g. '*/5 * * * *')")
    if period is not None and cron is not None:
        raise CheckError("give either --period or --cron, not both: a check has one schedule")
    if tz is not None and cron is None:
        raise CheckError("--tz applies to --cron schedules only; a --period counts from the last report")
    grace_delta = parse_duration_option("--grace", grace) if grace is not None else None
    if period is not None:
        every = parse_duration_option("--period", period)
        return ScheduleRequest(kind="simple", period=every, grace=grace_delta)
    assert cron is not None  # one of the two, checked above
    probe = grace_delta or DEFAULT_GRACE
    schedule = _validated("--cron", lambda: Schedule.from_cron(cron, "UTC", probe))
    if tz is not None:
        _validated("--tz", lambda: Schedule.from_cron(cron, tz, probe))
    return ScheduleRequest(kind="cron", expression=schedule.cron, tz=tz, grace=grace_delta)


def _validated(option: str, build: Callable[[], Schedule]) -> Schedule:
    try:
        return build()
    except ValueError as exc:
        raise CheckError(f"{option}: {_one_line(exc)}") from None


def ping_urls(public_url: str, uuid: str, slug: str) -> list[str]:
    """A check's two ping URLs: by its uuid, and by the project's key (shown as
    :data:`KEY_PLACEHOLDER`: only a key's hash is stored) and its slug."""
    return [f"{public_url.rstrip('/')}/ping/{uuid}", ping_url(public_url, KEY_PLACEHOLDER) + slug]


def schedule_of(row: Row) -> Schedule:
    """A stored check's schedule, as the worker builds it."""
    if row["kind"] == "cron":
        return Schedule.from_cron(row["schedule"], row["tz"], row["grace"])
    return Schedule.simple(row["period"], row["grace"])


def subject_of(row: Row) -> Subject:
    """A ``runtime_status`` row as contracts.checks sees it."""
    return Subject(
        status=Status(row["status"]),
        last_report_at=row["last_heartbeat_at"],
        running=row["running"],
        run_started_at=row["run_started_at"],
        run_id=row["run_id"],
        last_duration=row["last_duration"],
        due_at=row["due_at"],
        alarm_at=row["alarm_at"],
    )


def last_end(subject: Subject, *, old_period: timedelta | None) -> datetime | None:
    """When the subject last succeeded or failed, as far as its row tells (the module's docstring):
    ``last_report_at``, unless that is the open run's start, then ``due_at - old_period`` when the
    old schedule was a period, else the start itself."""
    last = subject.last_report_at
    newest_is_start = subject.running and last is not None and subject.run_started_at == last
    if newest_is_start and old_period is not None and subject.due_at is not None:
        return subject.due_at - old_period
    return last


def retime(
    subject: Subject, schedule: Schedule, *, since: datetime, now: datetime
) -> tuple[Subject, list[rules.Flip]]:
    """An ``up`` or ``grace`` subject under a new ``schedule``: due at ``schedule.next_due(since)``
    (its last success or failure), and the status and alarm that deadline gives it at ``now`` by
    contracts.checks.sweep. A status that changes is one flip dated ``now``, cause
    :data:`RESCHEDULED`; the sweep's intermediate steps did not happen and are not recorded."""
    timed = replace(subject, status=Status.UP, due_at=schedule.next_due(since))
    swept, _ = rules.sweep(timed, schedule, now)
    if swept.status is subject.status:
        return swept, []
    return swept, [rules.Flip(subject.status, swept.status, now, RESCHEDULED)]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- What the operations return ---


@dataclass(frozen=True)
class SetCheck:
    """A check after ``set``: created or changed, with its ping URLs and the subjects re-timed."""

    project: str
    slug: str
    uuid: str
    name: str | None
    kind: str
    period: timedelta | None
    schedule: str | None
    tz: str
    grace: timedelta
    paused: bool
    created: bool
    ping_urls: list[str]
    #: Subjects whose deadlines moved with the schedule (see the module's docstring).
    retimed: int
    #: Those of them whose status changed, each with a status flip.
    flipped: int


@dataclass(frozen=True)
class StatusCounts:
    new: int
    up: int
    grace: int
    down: int
    paused: int
    total: int


@dataclass(frozen=True)
class CheckSummary:
    """A check as ``checks list`` shows it."""

    id: int
    project: str
    slug: str
    uuid: str
    name: str | None
    kind: str
    period: timedelta | None
    schedule: str | None
    tz: str
    grace: timedelta
    paused: bool
    subjects: StatusCounts
    #: The latest report of any of its subjects.
    last_report_at: datetime | None
    #: The nearest deadline of its ``up`` and ``grace`` subjects.
    next_due_at: datetime | None


@dataclass(frozen=True)
class SubjectRow:
    """A subject as ``checks show`` shows it."""

    #: ``''`` for the check's pings, ``host:pid:port`` for an instance of a service.
    subject: str
    status: str
    running: bool
    run_started_at: datetime | None
    last_heartbeat_at: datetime | None
    last_duration: timedelta | None
    due_at: datetime | None
    alarm_at: datetime | None
    process_name: str | None
    host: str | None
    pid: int | None
    port: int | None
    cpu_usage: float | None
    memory_usage: int | None
    updated_at: datetime


@dataclass(frozen=True)
class FlipRow:
    subject: str
    from_status: str
    to_status: str
    at: datetime
    cause: str


@dataclass(frozen=True)
class Check:
    """A check with every field, its ping URLs, its subjects and its latest status flips."""

    id: int
    project: str
    project_id: int
    slug: str
    uuid: str
    name: str | None
    kind: str
    period: timedelta | None
    schedule: str | None
    tz: str
    grace: timedelta
    paused: bool
    created_at: datetime
    updated_at: datetime
    ping_urls: list[str]
    subjects: list[SubjectRow]
    #: Newest first, at most :data:`FLIPS_SHOWN`.
    flips: list[FlipRow]


@dataclass(frozen=True)
class PauseChange:
    """A check after ``pause`` or ``resume``; ``previous == paused`` when it was so already."""

    project: str
    slug: str
    paused: bool
    previous: bool
    #: The subjects that changed status, each with the status it had.
    subjects: list[tuple[str, str]]

    @property
    def unchanged(self) -> bool:
        return self.previous == self.paused


# --- Operations ---


Connection = psycopg.Connection[Row]


def set_check(
    database_url: str,
    ref: ProjectRef,
    slug: str,
    request: ScheduleRequest,
    *,
    public_url: str,
    name: str | None = None,
) -> SetCheck:
    """Create the check or give it this schedule (grace, zone and name not given are kept), and
    re-time its ``up`` and ``grace`` subjects, all in one transaction."""
    check_slug(slug)
    with _connect(database_url) as conn, conn.transaction():
        project = _find_project(conn, ref)
        if project["status"] == "archived":
            raise CheckError(f"project {ref} is archived: it takes no new or changed checks")
        params = {"project_id": project["id"], "slug": slug}
        before = conn.execute(queries()["checks_find"], params).fetchone()
        subjects = _lock_subjects(conn, before["id"]) if before else []
        row = conn.execute(
            queries()["checks_upsert"],
            {
                **params,
                "name": name,
                "kind": request.kind,
                "period": request.period,
                "schedule": request.expression,
                "tz": request.tz,
                "grace": request.grace,
            },
        ).fetchone()
        assert row is not None  # an upsert always returns its row
        timed = [s for s in subjects if s["status"] in {"up", "grace"} and s["last_heartbeat_at"]]
        flipped = 0
        if timed and not row["paused"]:
            old_period = before["period"] if before and before["kind"] == "simple" else None
            flipped = _retime(conn, timed, schedule_of(row), old_period=old_period)
        else:
            timed = []
    uuid = str(row["uuid"])
    return SetCheck(
        project=str(ref),
        slug=row["slug"],
        uuid=uuid,
        name=row["name"],
        kind=row["kind"],
        period=row["period"],
        schedule=row["schedule"],
        tz=row["tz"],
        grace=row["grace"],
        paused=row["paused"],
        created=row["created"],
        ping_urls=ping_urls(public_url, uuid, row["slug"]),
        retimed=len(timed),
        flipped=flipped,
    )


def _lock_subjects(conn: Connection, check_id: int) -> list[Row]:
    return conn.execute(queries()["checks_lock_subjects"], {"check_id": check_id}).fetchall()


def _retime(conn: Connection, rows: list[Row], schedule: Schedule, *, old_period: timedelta | None) -> int:
    """New deadlines for ``rows`` under ``schedule``; returns how many changed status."""
    moved: list[tuple[Row, Subject, list[rules.Flip]]] = []
    for row in rows:
        subject = subject_of(row)
        since = last_end(subject, old_period=old_period)
        assert since is not None  # only subjects that have reported are timed
        after, flips = retime(subject, schedule, since=since, now=row["now"])
        moved.append((row, after, flips))
    _write(conn, moved)
    return sum(1 for _, _, flips in moved if flips)


def _write(conn: Connection, moved: Iterable[tuple[Row, Subject, list[rules.Flip]]]) -> None:
    """The subjects' new state and their flips, one statement each."""
    moved = list(moved)
    if not moved:
        return
    states = [(row, state) for row, state, _ in moved]
    conn.execute(
        queries()["checks_write_subjects"],
        {
            "id": [row["id"] for row, _ in states],
            "status": [state.status.value for _, state in states],
            "running": [state.running for _, state in states],
            "run_started_at": [state.run_started_at for _, state in states],
            "run_id": [state.run_id for _, state in states],
            "due_at": [state.due_at for _, state in states],
            "alarm_at": [state.alarm_at for _, state in states],
        },
    )
    flips = [(row, flip) for row, _, row_flips in moved for flip in row_flips]
    if flips:
        conn.execute(
            queries()["checks_insert_flips"],
            {
                "project_id": [row["project_id"] for row, _ in flips],
                "check_id": [row["check_id"] for row, _ in flips],
                "subject": [row["subject"] for row, _ in flips],
                "from_status": [flip.from_status.value for _, flip in flips],
                "to_status": [flip.to_status.value for _, flip in flips],
                "at": [flip.at for _, flip in flips],
                "cause": [str(flip.cause) for _, flip in flips],
            },
        )


def list_checks(database_url: str, *, project: ProjectRef | None = None) -> list[CheckSummary]:
    """Every check (or one project's), by project then slug, with its subjects counted by status."""
    with _connect(database_url) as conn:
        project_id = _find_project(conn, project)["id"] if project else None
        rows = conn.execute(queries()["checks_list"], {"project_id": project_id}).fetchall()
    return [_summary(row) for row in rows]


def _summary(row: Row) -> CheckSummary:
    counts = StatusCounts(
        new=row.pop("new"),
        up=row.pop("up"),
        grace=row.pop("grace_subjects"),
        down=row.pop("down"),
        paused=row.pop("paused_subjects"),
        total=row.pop("subjects"),
    )
    return CheckSummary(**{**row, "uuid": str(row["uuid"])}, subjects=counts)


def show_check(database_url: str, ref: ProjectRef, slug: str, *, public_url: str) -> Check:
    """The check's fields and ping URLs, its subjects and its latest flips, read in one snapshot."""
    check_slug(slug)
    with _connect(database_url) as conn:
        # One snapshot: the subjects and flips agree with each other and with the check's row.
        conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
        project = _find_project(conn, ref)
        row = conn.execute(queries()["checks_show"], {"project_id": project["id"], "slug": slug}).fetchone()
        if row is None:
            raise _not_found(ref, slug)
        subjects = conn.execute(queries()["checks_subjects"], {"check_id": row["id"]}).fetchall()
        flips = conn.execute(
            queries()["checks_flips"], {"check_id": row["id"], "limit": FLIPS_SHOWN}
        ).fetchall()
    uuid = str(row.pop("uuid"))
    return Check(
        **row,
        uuid=uuid,
        ping_urls=ping_urls(public_url, uuid, slug),
        subjects=[SubjectRow(**subject) for subject in subjects],
        flips=[FlipRow(**flip) for flip in flips],
    )


def pause(database_url: str, ref: ProjectRef, slug: str) -> PauseChange:
    """Pause the check: every subject ``paused``, with no run and no deadline (contracts.checks.pause),
    each change a status flip."""
    return _set_paused(database_url, ref, slug, paused=True)


def resume(database_url: str, ref: ProjectRef, slug: str) -> PauseChange:
    """Resume the check: every paused subject ``new`` (contracts.checks.resume: it waits for its
    next report, which starts its deadlines again), each change a status flip."""
    return _set_paused(database_url, ref, slug, paused=False)


def _set_paused(database_url: str, ref: ProjectRef, slug: str, *, paused: bool) -> PauseChange:
    check_slug(slug)
    move = rules.pause if paused else rules.resume
    with _connect(database_url) as conn, conn.transaction():
        project = _find_project(conn, ref)
        check = conn.execute(queries()["checks_find"], {"project_id": project["id"], "slug": slug}).fetchone()
        if check is None:
            raise _not_found(ref, slug)
        rows = _lock_subjects(conn, check["id"])
        changed = conn.execute(
            queries()["checks_set_paused"], {"id": check["id"], "paused": paused}
        ).fetchone()
        if changed is None:  # deleted since it was found
            raise _not_found(ref, slug)
        moved = []
        for row in rows:
            after, flips = move(subject_of(row), at=row["now"])
            if flips:
                moved.append((row, after, flips))
        _write(conn, moved)
    return PauseChange(
        project=str(ref),
        slug=slug,
        paused=paused,
        previous=changed["previous"],
        subjects=[(row["subject"], row["status"]) for row, _, _ in moved],
    )


def _not_found(ref: ProjectRef, slug: str) -> CheckNotFound:
    return CheckNotFound(
        f"project {ref} has no check {slug}; `hookyard checks list --project {ref}` lists its checks"
    )
