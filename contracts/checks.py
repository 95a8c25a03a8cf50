"""Heartbeat checks: the status state machine and the schedule arithmetic workers and the scheduler share.

A *subject* (one ``runtime_status`` row: a pinged check, or one instance of a heartbeating
service) has a status: ``new``, ``up``, ``grace``, ``down`` or ``paused``. Reports (``start``,
``success``, ``fail``, ``log``) move it through :func:`apply`; the passing of time moves it through
:func:`sweep`; the operator moves it through :func:`pause` and :func:`resume`. Nothing here reads
a clock, a database or the network: every time is given, every result is returned.
Healthchecks.io (``hc/api/models.py``: ``Check.ping``, ``get_grace_start``, ``get_status``) is
the reference; where this module differs it says so.

Reports (:func:`apply`):

- **success**: the subject is ``up``; the next report is due at ``schedule.next_due(at)`` (the
  period after the report, or the first cron time strictly after it in the check's zone).
- **fail**: the subject is ``down`` and stays there until a success: no alarm. ``due_at`` is still
  set to ``schedule.next_due(at)``, for display only (when the job is expected next).
- **start**: the run is *running* (``run_started_at``, ``run_id`` = its ``rid``); the status does
  not change (a ``new`` subject stays ``new`` until its first success, as in Healthchecks), nor
  does ``due_at``. A start while a run is open replaces that run (Healthchecks keeps one
  ``last_start``), so the deadline is counted from the newer start.
- **log**: changes nothing, not even ``last_report_at`` (Healthchecks: a log ping records output,
  it is not a sign of life). So a log never resumes a paused check and never makes an earlier
  success look late.
- **rid pairing**, exactly Healthchecks' rules. An end (success or fail) whose ``rid`` equals the
  running start's (two absent rids are equal) ends the run and sets ``last_duration`` to
  ``at - run_started_at``. Otherwise a fail, or a success without a rid, ends the run unmeasured;
  a success with another rid leaves the run open (another run of the same job ended). Every
  applied end sets ``last_duration``: ``None`` when it measured no run, as Healthchecks does. So
  the worker knows a run was measured when ``apply`` returned a new object for a success or fail
  and its ``last_duration`` is not ``None``.
- **Order.** ``last_report_at`` is the own time of the newest start, success or fail applied. A
  report older than it is ignored whole: no status, run or duration changes (so a late success
  never closes a run either, whatever its rid; SPEC: "never moves a status backwards"). At the
  same instant: a start equal to the open run (same time, same rid) is a duplicate; a success or
  fail when no run is open is a duplicate or a tie, and the first end applied at an instant wins.
  A start and its end at the same instant are both applied (a run of 0 s). ``apply`` returns the
  very same ``Subject`` object when the report changes nothing.
- **Paused.** A start, success or fail resumes a paused check (``paused=True``, the check's flag,
  or a stored status ``paused``): the subject restarts from ``new`` with no run and no deadline,
  as Healthchecks' resume leaves it, then the report applies. So a success gives ``paused -> up``,
  a fail ``paused -> down``, a start ``paused -> new`` while running, each flip with cause
  ``resumed by ping``. A check paused after a report was sent but before it was applied is still
  resumed by it: the subject does not remember when it was paused.

The passing of time (:func:`sweep`, and the SQL below): a subject moves at its deadlines.

- ``up`` at ``due_at`` -> ``grace`` (cause ``due passed``); ``grace`` (or ``up``) at ``due_at +
  grace`` -> ``down`` (``grace passed``); a running ``new``, ``up`` or ``grace`` subject at
  ``run_started_at + grace`` -> ``down`` (``start overdue``). A start on a ``new`` check that never
  ends does go down, as in Healthchecks; a ``new`` subject without a start never moves.
  ``down`` and ``paused`` never move: a down subject waits for a success, so a start on a down
  subject sets no alarm. Going down by ``start overdue`` leaves the run open, so its end still
  measures it.
- Each flip is dated at its deadline, not when the sweep ran (Healthchecks dates its flip at
  ``going_down_after()``). A sweep that ran late records every step it missed: ``up`` past
  ``due_at + grace`` gives two flips, ``up -> grace`` at ``due_at`` and ``grace -> down`` at
  ``due_at + grace``, so ``status_flips`` holds the same history whether the scheduler was on time
  or not. When two deadlines fall at the same instant, ``start overdue`` wins (one flip to ``down``).
- Healthchecks keeps ``grace`` as a computed status and stores only ``up -> down``; SPEC stores
  ``grace`` in ``runtime_status``, so it is a flip of its own here.

``alarm_at`` (:func:`sweep_alarm`) is the next deadline of the subject's state, ``None`` when
nothing can happen without a report:

==========  ==========================================================================
status      alarm_at (``S`` = ``run_started_at + grace`` when running, else none)
==========  ==========================================================================
new         ``S``, or none
up          the earlier of ``due_at`` and ``S``
grace       the earlier of ``due_at + grace`` and ``S``
down        none
paused      none (and none for any subject of a check whose ``paused`` flag is set)
==========  ==========================================================================

The sweep as one SQL ``UPDATE`` over ``runtime_status`` joined to ``checks``, for rows with
``alarm_at <= now`` and ``NOT checks.paused``. With ``S = CASE WHEN running THEN run_started_at +
grace END``, ``D = due_at`` and ``E = due_at + grace`` (a NULL is "never": ``least`` skips it and
``now >= NULL`` is false), the first row that matches gives the new status and ``alarm_at``, and
the ``status_flips`` rows (``at: from -> to, cause``; ``X`` is ``start overdue`` when ``S <= E``,
else ``grace passed``):

======  ===================  ======  ==============  ===================================================
status  when                 status  alarm_at        flips
======  ===================  ======  ==============  ===================================================
new     ``now >= S``         down    NULL            S: new -> down, start overdue
new     otherwise            new     S               none
up      ``now >= S``,        down    NULL            S: up -> down, start overdue
        ``S <= D``
up      ``now >=             down    NULL            D: up -> grace, due passed;
        least(S, E)``                                least(S, E): grace -> down, X
up      ``now >= D``         grace   least(S, E)     D: up -> grace, due passed
up      otherwise            up      least(D, S)     none
grace   ``now >=             down    NULL            least(S, E): grace -> down, X
        least(S, E)``
grace   otherwise            grace   least(S, E)     none
down    always               down    NULL            none
paused  always               paused  NULL            none
======  ===================  ======  ==============  ===================================================

``running``, ``run_started_at``, ``run_id``, ``due_at``, ``last_report_at`` and ``last_duration``
are never changed by the sweep. ``tests/unit/test_checks.py`` checks every row of this table
against :func:`sweep`.

Durations (:func:`parse_duration`): a whole number and one unit, ``s``, ``m``, ``h`` or ``d``
(``30s``, ``90s``, ``5m``, ``2h``, ``1d``); no fractions (``1.5h`` is ``90m``), no compounds, no
bare numbers, from 1 s up to 36500 days (a bound that keeps every deadline far from the year
9999, where Python's dates end).

Cron (:class:`Schedule`): five fields, as Healthchecks validates them (cronsim also takes a
seconds field; Healthchecks refuses it, so do we), evaluated by cronsim in the check's zone with
its Debian-cron handling of daylight saving time: a time that does not exist (02:30 on the day
clocks go forward) runs at the first minute that does (03:00), and a fixed time that happens
twice (02:30 on the day clocks go back) runs once, at its first occurrence. One difference from
Healthchecks: cronsim, asked for the time after the second 02:15 of such a night, answers the
first 02:30, which is earlier; :meth:`Schedule.next_due` skips to the next time strictly after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


class Status(StrEnum):
    """A subject's status, as stored in ``runtime_status.status``."""

    NEW = "new"
    UP = "up"
    GRACE = "grace"
    DOWN = "down"
    PAUSED = "paused"


class Signal(StrEnum):
    """What a report says: a ping's suffix, a heartbeat's ``signal``, a Sentry check-in's status."""

    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    LOG = "log"


class Cause(StrEnum):
    """Why a status changed: ``status_flips.cause``."""

    SUCCESS = "success"
    FAIL = "fail"
    RESUMED_BY_PING = "resumed by ping"
    DUE_PASSED = "due passed"
    GRACE_PASSED = "grace passed"
    START_OVERDUE = "start overdue"
    PAUSED = "paused"
    RESUMED = "resumed"


DEFAULT_PERIOD = timedelta(days=1)
DEFAULT_GRACE = timedelta(hours=1)
#: The shortest period or grace (SPEC: "any period or grace of one second or more").
MIN_DURATION = timedelta(seconds=1)
#: The longest: about a century, far from the year 9999 where datetime arithmetic ends.
MAX_DURATION = timedelta(days=36500)
#: Healthchecks validates a cron expression by computing its first time after this one.
_CRON_PROBE = datetime(2000, 1, 1)  # naive, as Healthchecks passes it

_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def parse_duration(text: str) -> timedelta:
    """``30s``, ``90s``, ``5m``, ``2h``, ``1d``: a whole number and one unit, from 1 s to 36500 d.

    Surrounding blanks are ignored. Raises ``ValueError`` with a one-line message otherwise.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a whole number and a unit s, m, h or d (30s, 5m, 2h, 1d)"
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    # compared as a number first: a dozen digits of days is more than timedelta holds
    delta = timedelta(seconds=min(seconds, MAX_DURATION.days * 86400 + 1))
    _check_range(f"duration {text!r}", delta)
    return delta


def format_duration(delta: timedelta) -> str:
    """A duration as :func:`parse_duration` reads it, in the largest unit that divides it exactly.

    ``parse_duration(format_duration(d)) == d`` for every ``d`` that :func:`parse_duration`
    returns. A duration with a fraction of a second (a measured run) is written in seconds with
    its decimals (``1.25s``), which :func:`parse_duration` does not read. Raises ``ValueError`` for
    a negative duration.
    """
    if delta < timedelta(0):
        raise ValueError(f"invalid duration {delta!r}: a duration is never negative")
    seconds = delta.days * 86400 + delta.seconds
    if delta.microseconds:
        return f"{seconds}.{delta.microseconds:06d}".rstrip("0") + "s"
    for unit, size in _FORMAT_UNITS:
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_range(what: str, delta: timedelta) -> None:
    if delta < MIN_DURATION:
        raise ValueError(f"invalid {what}: it must be at least 1s")
    if delta > MAX_DURATION:
        raise ValueError(f"invalid {what}: it must be at most {format_duration(MAX_DURATION)}")


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a key naming a directory of the zone database (``Europe``)
        raise ValueError(f"unknown time zone {tz!r}: expected an IANA name such as Europe/Paris") from None


def _check_cron(expression: str) -> None:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        next(CronSim(expression, _CRON_PROBE))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {str(exc).lower()}") from None
    except StopIteration:
        raise ValueError(f"invalid cron expression {expression!r}: it never fires") from None


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment.isoformat()}")


@dataclass(frozen=True)
class Schedule:
    """A check's timing: a period or a cron expression in a time zone, and a grace time.

    Construction validates it (``ValueError`` with a one-line message), so a ``Schedule`` that
    exists can always be timed. Use :meth:`simple` or :meth:`from_cron`.
    """

    kind: Literal["simple", "cron"]
    period: timedelta | None
    cron: str | None
    tz: str
    grace: timedelta

    def __post_init__(self) -> None:
        _check_range("grace", self.grace)
        _zone(self.tz)
        if self.kind == "simple":
            if self.period is None or self.cron is not None:
                raise ValueError("a simple schedule has a period and no cron expression")
            _check_range("period", self.period)
        elif self.kind == "cron":
            if self.cron is None or self.period is not None:
                raise ValueError("a cron schedule has a cron expression and no period")
            _check_cron(self.cron)
        else:
            raise ValueError(f"unknown schedule kind {self.kind!r}: expected simple or cron")

    @staticmethod
    def simple(period: timedelta = DEFAULT_PERIOD, grace: timedelta = DEFAULT_GRACE) -> Schedule:
        """Due one ``period`` after each success."""
        return Schedule(kind="simple", period=period, cron=None, tz="UTC", grace=grace)

    @staticmethod
    def from_cron(expression: str, tz: str = "UTC", grace: timedelta = DEFAULT_GRACE) -> Schedule:
        """Due at the next time of a five-field cron ``expression`` in the IANA zone ``tz``.

        Runs of blanks in the expression are folded to one space.
        """
        return Schedule(kind="cron", period=None, cron=" ".join(expression.split()), tz=tz, grace=grace)

    def next_due(self, after: datetime) -> datetime:
        """When the report after one at ``after`` is expected, in UTC; always later than ``after``.

        Simple: ``after + period``, in elapsed time (a day is 24 hours, across DST too). Cron: the
        first cron time strictly after ``after``, read on the clock of ``tz`` as cronsim reads it.
        Raises ``ValueError`` for a naive ``after``.
        """
        _require_aware(after, "after")
        if self.period is not None:
            return after.astimezone(UTC) + self.period
        if self.cron is None:  # pragma: no cover -- __post_init__ guarantees one or the other
            raise ValueError("a schedule has a period or a cron expression")
        times = CronSim(self.cron, after.astimezone(_zone(self.tz)))
        try:
            due = next(times).astimezone(UTC)
            # cronsim's fix-up of a repeated local hour can answer a time before `after`
            while due <= after:
                due = next(times).astimezone(UTC)
        except StopIteration:
            raise ValueError(f"cron expression {self.cron!r} has no time after {after.isoformat()}") from None
        return due


@dataclass(frozen=True)
class Subject:
    """One monitored subject's state, as stored in its ``runtime_status`` row.

    ``last_report_at``: the own time of the newest start, success or fail applied (logs do not
    count). ``running``: a start with no end yet, ``run_started_at`` its time and ``run_id`` its
    rid. ``last_duration``: the run the latest end measured, ``None`` when it measured none.
    ``due_at``: when the next report is expected (grace starts there); set by every success and
    fail, ``None`` while ``new`` or ``paused``, kept (the missed deadline) when the sweep moves the
    subject. ``alarm_at``: the next time the sweep must look at it, see :func:`sweep_alarm`.
    """

    status: Status
    last_report_at: datetime | None
    running: bool
    run_started_at: datetime | None
    run_id: str | None
    last_duration: timedelta | None
    due_at: datetime | None
    alarm_at: datetime | None

    @staticmethod
    def new() -> Subject:
        """A subject that has never reported: ``new``, no run, no deadline."""
        return Subject(
            status=Status.NEW,
            last_report_at=None,
            running=False,
            run_started_at=None,
            run_id=None,
            last_duration=None,
            due_at=None,
            alarm_at=None,
        )


@dataclass(frozen=True)
class Report:
    """One report of a subject: its signal, its own time (timezone-aware) and its run id."""

    signal: Signal
    at: datetime
    rid: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.at, "a report's time")


@dataclass(frozen=True)
class Flip:
    """One status change, a ``status_flips`` row: ``cause`` is a :class:`Cause` value."""

    from_status: Status
    to_status: Status
    at: datetime
    cause: str


def apply(
    subject: Subject, report: Report, schedule: Schedule, *, paused: bool = False
) -> tuple[Subject, list[Flip]]:
    """The subject after ``report``, and the status change it made (none or one flip at ``report.at``).

    ``paused`` is the check's flag: the subject is then treated as paused whatever its stored
    status, and a start, success or fail resumes it. Returns ``subject`` itself, and no flip,
    when the report changes nothing: a log, a report older than ``last_report_at``, a duplicate.
    The returned subject's ``alarm_at`` is :func:`sweep_alarm` of its new state.
    """
    if report.signal is Signal.LOG or _is_stale(subject, report):
        return subject, []
    resuming = paused or subject.status is Status.PAUSED
    base = _resumed(subject) if resuming else subject
    if report.signal is Signal.START:
        after = replace(
            base, last_report_at=report.at, running=True, run_started_at=report.at, run_id=report.rid
        )
        cause = Cause.RESUMED_BY_PING
    else:
        status, cause = (
            (Status.UP, Cause.SUCCESS) if report.signal is Signal.SUCCESS else (Status.DOWN, Cause.FAIL)
        )
        after = _end_run(base, report)
        after = replace(after, status=status, last_report_at=report.at, due_at=schedule.next_due(report.at))
    after = replace(after, alarm_at=sweep_alarm(after, schedule))
    if after.status is subject.status:
        return after, []
    if resuming:
        cause = Cause.RESUMED_BY_PING
    return after, [Flip(subject.status, after.status, report.at, cause)]


def _is_stale(subject: Subject, report: Report) -> bool:
    """True for a report older than the newest applied, or a duplicate of it."""
    last = subject.last_report_at
    if last is None or report.at > last:
        return False
    if report.at < last:
        return True
    if report.signal is Signal.START:
        return subject.running and subject.run_started_at == report.at and subject.run_id == report.rid
    return not subject.running


def _resumed(subject: Subject) -> Subject:
    """A paused subject as a ping resumes it: ``new``, no run, no deadline (Healthchecks' resume)."""
    return replace(
        subject,
        status=Status.NEW,
        running=False,
        run_started_at=None,
        run_id=None,
        due_at=None,
        alarm_at=None,
    )


def _end_run(subject: Subject, report: Report) -> Subject:
    """The run fields after a success or fail, by Healthchecks' rid rules."""
    if not subject.running:
        return replace(subject, last_duration=None)
    ended = replace(subject, running=False, run_started_at=None, run_id=None, last_duration=None)
    if subject.run_id == report.rid:
        started = subject.run_started_at
        return replace(ended, last_duration=None if started is None else report.at - started)
    if report.signal is Signal.FAIL or report.rid is None:
        return ended
    return replace(subject, last_duration=None)  # another run's success: this one stays open


@dataclass(frozen=True)
class _Step:
    at: datetime
    to_status: Status
    cause: Cause


def _next_step(subject: Subject, grace: timedelta) -> _Step | None:
    """The earliest move the passing of time would make, or ``None``: the table of the docstring."""
    if subject.status in (Status.DOWN, Status.PAUSED):
        return None
    steps: list[_Step] = []
    # listed first so that it wins a tie (min keeps the first of equal keys)
    if subject.running and subject.run_started_at is not None:
        steps.append(_Step(subject.run_started_at + grace, Status.DOWN, Cause.START_OVERDUE))
    if subject.due_at is not None:
        if subject.status is Status.UP:
            steps.append(_Step(subject.due_at, Status.GRACE, Cause.DUE_PASSED))
        elif subject.status is Status.GRACE:
            steps.append(_Step(subject.due_at + grace, Status.DOWN, Cause.GRACE_PASSED))
    return min(steps, key=lambda step: step.at, default=None)


def sweep_alarm(subject: Subject, schedule: Schedule) -> datetime | None:
    """The next time the subject's status can change with no report, as the SQL sweep computes it.

    ``None`` when only a report can change it: ``new`` and not running, ``down``, ``paused``.
    """
    step = _next_step(subject, schedule.grace)
    return None if step is None else step.at


def sweep(
    subject: Subject, schedule: Schedule, now: datetime, *, paused: bool = False
) -> tuple[Subject, list[Flip]]:
    """The subject at ``now`` when nothing arrived: every deadline passed by ``now`` taken in order.

    Each flip is dated at its deadline. The returned subject's ``alarm_at`` is its next deadline
    (:func:`sweep_alarm`); only ``status`` and ``alarm_at`` change. A subject of a paused check
    (``paused``) or a ``paused`` one never moves and gets no alarm.
    """
    if paused or subject.status is Status.PAUSED:
        return _with_alarm(subject, None), []
    flips: list[Flip] = []
    state = subject
    while (step := _next_step(state, schedule.grace)) is not None and step.at <= now:
        flips.append(Flip(state.status, step.to_status, step.at, step.cause))
        state = replace(state, status=step.to_status)
    return _with_alarm(state, sweep_alarm(state, schedule)), flips


def _with_alarm(subject: Subject, alarm_at: datetime | None) -> Subject:
    return subject if subject.alarm_at == alarm_at else replace(subject, alarm_at=alarm_at)


def pause(subject: Subject, *, at: datetime) -> tuple[Subject, list[Flip]]:
    """The subject paused at ``at`` (by the operator): no run, no deadline, no alarm.

    As Healthchecks' pause: the open run is forgotten. Already paused: unchanged, no flip.
    """
    if subject.status is Status.PAUSED:
        return subject, []
    paused = replace(
        subject,
        status=Status.PAUSED,
        running=False,
        run_started_at=None,
        run_id=None,
        due_at=None,
        alarm_at=None,
    )
    return paused, [Flip(subject.status, Status.PAUSED, at, Cause.PAUSED)]


def resume(subject: Subject, *, at: datetime) -> tuple[Subject, list[Flip]]:
    """The subject resumed at ``at`` by the operator: ``new`` (it waits for its next report, as in
    Healthchecks, and never goes down before it). Not paused: unchanged, no flip."""
    if subject.status is not Status.PAUSED:
        return subject, []
    return _resumed(subject), [Flip(Status.PAUSED, Status.NEW, at, Cause.RESUMED)]
