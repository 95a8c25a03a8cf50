"""Error-pattern operations behind ``hookyard errors``: list, show, resolve, ignore, reopen.

Each operation opens its own connection, runs in one transaction and returns plain dataclasses;
every refusal is a :class:`PatternError` (or a tenancy ``NotFound`` for an unknown project) whose
message is one line for an operator. The parsers (``parse_since``, ``parse_until``) and the
stack reader (``stack_of``) are pure.

A state change is one UPDATE of one row (see schema/patterns.sql), so it never races the worker
that counts occurrences. Changing a pattern to the status it has already succeeds: ``Change``
says so (``previous == status``) and the command prints a note. What such a repeat does:

- ``resolve`` keeps the first ``resolved_at``; a ``--resolution`` or ``--[no-]auto-fixable``
  given replaces the stored one, one not given keeps it.
- ``ignore`` replaces the limits with the ones given (none: ignored with no limit);
  ``--until-count N`` counts N more from the count at that moment.
- ``reopen`` leaves an unresolved pattern as it was (an unresolved pattern has no ignore limits
  nor resolved_at to clear).

``resolution`` and ``auto_fixable`` survive ``ignore`` and ``reopen``: they describe the last
fix, which a regression or a reopen does not erase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from psycopg import IsolationLevel

from hookyard.errors import HookyardError
from ops.dlq import parse_age
from ops.tenancy import ProjectRef, _connect, _find_project
from schema import queries

#: The statuses a pattern can have, as migration 0009's enum spells them.
STATUSES: Final = ("unresolved", "resolved", "ignored")
#: How many days ``show`` counts occurrences for, today (UTC) included.
DAILY_DAYS: Final = 14
#: How the per-day counts are made, said wherever they are shown.
DAILY_BASIS: Final = "per UTC day of receipt, counted from the occurrences kept (subject to retention)"

_DURATION: Final = re.compile(r"^\d+[smhdw]$")


class PatternError(HookyardError):
    """An errors command was refused; the message says why in one line."""


class PatternNotFound(PatternError):
    """No error pattern has the id given."""


# --- Pure parsing ---


def _duration(option: str, value: str) -> timedelta:
    try:
        delta = parse_age(value)
    except HookyardError:
        raise PatternError(
            f"{option} {value!r} is not a duration: a number followed by s, m, h, d or w (e.g. 24h)"
        ) from None
    except OverflowError:  # timedelta refuses more than 999999999 days
        raise PatternError(f"{option} {value!r} is too long a duration") from None
    if not delta:
        raise PatternError(f"{option} {value!r} is no time at all; give a duration above zero")
    return delta


def parse_since(value: str) -> timedelta:
    """``--since``: ``30m``, ``24h``, ``7d``, ``2w``... (ops/dlq.py's durations), above zero."""
    return _duration("--since", value)


@dataclass(frozen=True)
class Until:
    """An ignore's time limit: an absolute time, or a duration counted from the database's now."""

    at: datetime | None = None
    after: timedelta | None = None


def parse_until(value: str, now: datetime | None = None) -> Until:
    """``--until``: a duration from now (``2h``, ``7d``) or an RFC 3339 time with its offset.

    A time must carry its UTC offset (``Z`` or ``+02:00``) and lie in the future of ``now``
    (this machine's clock unless given).
    """
    text = value.strip()
    if _DURATION.match(text):
        return Until(after=_duration("--until", text))
    try:
        # RFC 3339 allows a lowercase t and z, which fromisoformat does not.
        at = datetime.fromisoformat(text.upper())
    except ValueError:
        raise PatternError(
            f"--until {value!r} is neither a duration (e.g. 2h, 7d) nor an RFC 3339 time "
            "(e.g. 2026-05-01T09:00:00Z)"
        ) from None
    if at.tzinfo is None:
        raise PatternError(
            f"--until {value!r} has no UTC offset: give a time such as 2026-05-01T09:00:00Z "
            "or 2026-05-01T11:00:00+02:00"
        )
    if at <= (now or datetime.now(UTC)):
        raise PatternError(f"--until {value!r} is in the past; an ignore must end in the future")
    return Until(at=at)


# --- The stack of an occurrence ---


@dataclass(frozen=True)
class StackFrame:
    filename: str | None
    function: str | None
    lineno: int | None
    in_app: bool | None
    module: str | None


@dataclass(frozen=True)
class StackException:
    """One exception of a chain; ``frames`` oldest call first (most recent call last)."""

    type: str | None
    value: str | None
    frames: tuple[StackFrame, ...]


@dataclass(frozen=True)
class Stack:
    """What an occurrence says went wrong: its message and its exception chain, cause first."""

    message: str | None
    exceptions: tuple[StackException, ...]


def stack_of(origin: str, payload: object) -> Stack:
    """The stack in an occurrence's payload: a Sentry event (``origin`` ``sentry``) or a
    ``/v1/errors`` object (``v1``).

    Sentry: ``exception.values[]`` (also a bare list, or one exception object), each with
    ``type``, ``value`` and ``stacktrace.frames[]`` (``filename`` else ``abs_path``,
    ``function``, ``lineno``, ``in_app``, ``module``); the message from ``logentry`` or
    ``message``. /v1: ``exception_type`` and ``message`` with ``frames``, as one exception when
    there is a type or a frame. Never raises: a field missing or of another shape is left out.
    """
    if not isinstance(payload, Mapping):
        return Stack(message=None, exceptions=())
    if origin == "v1":
        return _v1_stack(payload)
    return Stack(
        message=_message(payload.get("logentry")) or _message(payload.get("message")),
        exceptions=_sentry_exceptions(payload.get("exception")),
    )


def _v1_stack(body: Mapping[str, Any]) -> Stack:
    message = _str(body.get("message"))
    exception_type = _str(body.get("exception_type"))
    frames = _frames(body.get("frames"))
    if not exception_type and not frames:
        return Stack(message=message, exceptions=())
    return Stack(message=message, exceptions=(StackException(exception_type, message, frames),))


def _sentry_exceptions(raw: object) -> tuple[StackException, ...]:
    values: object = raw
    if isinstance(raw, Mapping):
        values = raw.get("values")
        if values is None and ("type" in raw or "value" in raw):
            values = [raw]  # the legacy single-exception interface
    if not isinstance(values, list):
        return ()
    return tuple(
        StackException(
            type=_str(item.get("type")),
            value=_str(item.get("value")),
            frames=_frames(_get(item, "stacktrace").get("frames")),
        )
        for item in values
        if isinstance(item, Mapping)
    )


def _frames(raw: object) -> tuple[StackFrame, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        StackFrame(
            filename=_str(item.get("filename")) or _str(item.get("abs_path")),
            function=_str(item.get("function")),
            lineno=_int(item.get("lineno")),
            in_app=flag if isinstance(flag := item.get("in_app"), bool) else None,
            module=_str(item.get("module")),
        )
        for item in raw
        if isinstance(item, Mapping)
    )


def _message(raw: object) -> str | None:
    """A message from a string, or from Sentry's message/logentry object (formatted first)."""
    if isinstance(raw, str):
        return raw or None
    if isinstance(raw, Mapping):
        return _str(raw.get("formatted")) or _str(raw.get("message"))
    return None


def _get(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# --- What the operations return ---


@dataclass(frozen=True)
class PatternSummary:
    """A pattern as ``errors list`` shows it."""

    id: int
    project: str
    status: str
    occurrence_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    exception_type: str | None
    title: str
    regression_count: int
    level: str | None
    severity: str


@dataclass(frozen=True)
class PatternList:
    patterns: list[PatternSummary]
    #: True when more patterns matched than the limit let through.
    truncated: bool


@dataclass(frozen=True)
class Occurrence:
    event_id: str
    received_at: datetime
    occurred_at: datetime
    origin: str
    level: str | None
    exception_type: str | None
    message: str | None
    release: str | None
    environment: str | None
    stack: Stack


@dataclass(frozen=True)
class DayCount:
    day: date
    occurrences: int


@dataclass(frozen=True)
class Pattern:
    """A pattern with every field, its latest occurrence kept and its recent days."""

    id: int
    project: str
    project_id: int
    status: str
    exception_type: str | None
    title: str
    sample_message: str | None
    level: str | None
    severity: str
    occurrence_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    regressed_at: datetime | None
    regression_count: int
    resolution: str | None
    auto_fixable: bool
    ignored_until: datetime | None
    ignored_until_count: int | None
    grouping: str
    components: Any
    pattern_hash: str
    created_at: datetime
    updated_at: datetime
    #: None when retention dropped every occurrence of the pattern.
    latest_occurrence: Occurrence | None
    #: Oldest day first, today (UTC) last; see :data:`DAILY_BASIS`.
    daily_counts: list[DayCount]


@dataclass(frozen=True)
class Change:
    """A pattern after a state change; ``previous == status`` when it had that status already."""

    id: int
    previous: str
    status: str
    occurrence_count: int
    resolved_at: datetime | None
    resolution: str | None
    auto_fixable: bool
    ignored_until: datetime | None
    ignored_until_count: int | None

    @property
    def unchanged(self) -> bool:
        return self.previous == self.status


# --- Operations ---


def list_patterns(
    database_url: str,
    *,
    project: ProjectRef | None = None,
    status: str | None = "unresolved",
    since: timedelta | None = None,
    limit: int = 100,
) -> PatternList:
    """Patterns most recently seen first: one project's or all, of one status or all (None),
    last seen within ``since`` or ever; at most ``limit`` of them."""
    with _connect(database_url) as conn:
        project_id = _find_project(conn, project)["id"] if project else None
        rows = conn.execute(
            queries()["errors_list"],
            {"project_id": project_id, "status": status, "since": since, "limit": limit},
        ).fetchall()
    return PatternList([PatternSummary(**row) for row in rows[:limit]], truncated=len(rows) > limit)


def show_pattern(database_url: str, pattern_id: int) -> Pattern:
    """Every field of the pattern, its latest occurrence kept (with its stack) and its counts
    for the last :data:`DAILY_DAYS` days, read in one snapshot."""
    with _connect(database_url) as conn:
        # One snapshot: the counts and the latest occurrence agree with the pattern's row.
        conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
        row = conn.execute(queries()["errors_show"], {"id": pattern_id}).fetchone()
        if row is None:
            raise _not_found(pattern_id)
        keys = {"project_id": row["project_id"], "pattern_hash": row["pattern_hash"]}
        latest = conn.execute(queries()["errors_latest_occurrence"], keys).fetchone()
        days = conn.execute(queries()["errors_daily_counts"], {**keys, "days": DAILY_DAYS}).fetchall()
    occurrence = None
    if latest is not None:
        payload = latest.pop("payload")
        occurrence = Occurrence(**latest, stack=stack_of(latest["origin"], payload))
    return Pattern(**row, latest_occurrence=occurrence, daily_counts=[DayCount(**day) for day in days])


def resolve(
    database_url: str, pattern_id: int, *, resolution: str | None = None, auto_fixable: bool | None = None
) -> Change:
    """Mark the pattern resolved (now, unless it was already) with its ignore limits cleared;
    ``resolution`` and ``auto_fixable`` are set when given (None keeps what is stored).
    The worker reopens it as a regression when it occurs again."""
    return _change(
        database_url, "errors_resolve", pattern_id, resolution=resolution, auto_fixable=auto_fixable
    )


def ignore(
    database_url: str, pattern_id: int, *, until_count: int | None = None, until: Until | None = None
) -> Change:
    """Mark the pattern ignored, replacing any earlier limits with these: ``until_count`` more
    occurrences (stored as ``occurrence_count + until_count`` by the UPDATE itself) and/or a time
    limit. The worker reopens it on the first occurrence past either; with neither it stays ignored."""
    until = until or Until()
    return _change(
        database_url,
        "errors_ignore",
        pattern_id,
        until_count=until_count,
        until_at=until.at,
        until_in=until.after,
    )


def reopen(database_url: str, pattern_id: int) -> Change:
    """Mark the pattern unresolved by hand: resolved_at and the ignore limits cleared, and no
    regression counted."""
    return _change(database_url, "errors_reopen", pattern_id)


def _change(database_url: str, query: str, pattern_id: int, **params: Any) -> Change:
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(queries()[query], {"id": pattern_id, **params}).fetchone()
    if row is None:
        raise _not_found(pattern_id)
    return Change(**row)


def _not_found(pattern_id: int) -> PatternNotFound:
    return PatternNotFound(
        f"no error pattern with id {pattern_id}; `hookyard errors list --status all` lists them"
    )
