"""``GET /v1/usage/summary``: a project's usage totals per hour, day or month, from PostgreSQL.

The contract (SPEC, "Usage and budgets"):

- Bearer authentication with the ``usage`` scope. A project key reads its own project only:
  ``project`` may be omitted (it is the key's) or name it, else 403 ``forbidden_project``. The
  operator token (``HOOKYARD_INGEST_TOKEN``) reads any project and must name it (400
  ``missing_parameter``); a project that does not exist is 404 ``unknown_project``.
- Query parameters, each at most once (400 ``duplicate_parameter``); an unknown one, or a value
  that does not parse, is 422 ``validation_failed`` listing each: ``project`` (``slug`` or
  ``org/slug``), ``resource_type`` (optional: every type), ``from`` and ``to`` (RFC 3339 with an
  offset; the interval is ``[from, to)``; by default ``to`` is now and ``from`` 24 hours before
  ``to``; ``from`` must be before ``to``), ``window`` (required: ``hour``, ``day`` or ``month``,
  in UTC) and ``group_by`` (optional: a ``metadata`` key, such as a meter's group-by name).
- The answer: ``{"project", "resource_type", "window", "group_by", "from", "to", "totals"}``,
  ``totals`` a list ordered by window start, resource type, unit and group, of ``{"window_start",
  "resource_type", "unit", "records", "amount", "cost_cad"}``, plus ``"group"`` (the metadata
  value, ``null`` for records without it) with ``group_by``. Amounts and costs are decimal
  strings, exact; ``cost_cad`` is ``null`` when no record of the total has a cost. Totals are per
  resource type and unit, never summed across units. Only windows with usage appear.
- At most :data:`MAX_TOTALS` totals: more is 422 ``too_many_totals`` (a shorter range or a
  wider window answers). PostgreSQL unreachable is 503 ``database_unavailable``, a summary
  over :data:`STATEMENT_TIMEOUT` 503 ``summary_timeout``, both with ``Retry-After``.

Where the totals come from. ``resource_usage`` is partitioned by month and indexed by
``(project_id, resource_type, recorded_at)``; ``project_resource_summary`` (the materialized view
the scheduler refreshes every ``HOOKYARD_SUMMARY_REFRESH_INTERVAL`` seconds) holds one row per
project, UTC day, resource type and unit. Measured with ``EXPLAIN ANALYZE`` on 5.1 million rows
(one project with 3.6 million over 14 months), PostgreSQL 15, 2 CPUs, warm cache:

==========================================================  ==============  ============  ========
query                                                       resource_usage  summary view  combined
==========================================================  ==============  ============  ========
month windows, a year, one resource type (1.07 M rows)      930 ms          0.3 ms        3.4 ms
day windows, 30 days, every resource type (260 k rows)      246 ms          0.2 ms        77 ms
hour windows, 24 hours, one resource type (2,880 rows)      2.4 ms          -             -
day windows, 30 days, one type, group_by model (86 k rows)  215 ms          -             -
==========================================================  ==============  ============  ========

So day and month windows without ``group_by`` read whole UTC days from the view, and
``resource_usage`` only for the part-days at either end of the range and for today (UTC), which
the view is always behind on: one statement (``summary_totals`` in schema/usage_summary.sql) adds
the two. Hour windows and ``group_by`` (the view has neither) read ``resource_usage`` alone. The
cost: a record stored for an earlier day (a late sender) shows in day and month totals once the
view is next refreshed, at most ``HOOKYARD_SUMMARY_REFRESH_INTERVAL`` seconds plus a refresh
later; today's totals and hour windows are always current. Without ``resource_type`` the index
cannot bound ``recorded_at`` (it comes after ``resource_type``), so the part-days read the
project's rows of their month's partition (the 77 ms above; an index on ``(project_id,
recorded_at)`` would make it a few ms).

Connections: from the web process's shared pool when it is given one (:func:`from_pool`: at most
half of its connections at once, so a burst of long summaries never starves the reservations),
else one per request, opened and closed. The statements run unprepared, so a pooled connection
never settles on a generic plan that ignores the range, and the statement timeout is set for the
summary's own transaction only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from contracts.ingest import PROJECT_NAME
from contracts.keys import Scope
from hookyard.config import Settings
from producers.deliveries import guard_headers
from producers.deployments import GUARDED_HEADERS
from producers.errors import IngestError
from producers.http import Handler, Request, Response, error_response, json_response
from producers.keys import DEFAULT_ORGANIZATION, KeyRegistry, ProjectKey, authenticate
from schema import queries

log = structlog.get_logger(__name__)

WINDOWS: Final = ("hour", "day", "month")
PARAMETERS: Final = ("project", "resource_type", "from", "to", "window", "group_by")
#: The range asked for when ``from`` is not given: this long before ``to``.
DEFAULT_SPAN: Final = timedelta(hours=24)
#: Totals one answer may hold; more is 422 ``too_many_totals``.
MAX_TOTALS: Final = 10_000
#: The longest one summary may run in PostgreSQL (a year of hour windows with a group-by can).
STATEMENT_TIMEOUT: Final = "10s"
#: Seconds a summary waits for a connection of the shared pool before its 503.
POOL_WAIT: Final = 3.0
#: A resource type as the ingest contracts bound it: 1 to 255 characters, no control character
#: (PostgreSQL text cannot hold a NUL).
RESOURCE_TYPE: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
#: A metadata key: 1 to 64 characters, no control character.
GROUP_KEY: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")

_PROJECT = re.compile(PROJECT_NAME)
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_RETRY_LATER = ((b"retry-after", b"5"),)

#: Opens the connection one summary runs on (an ``async with`` yields it).
Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


# --- Pure parsing ---


@dataclass(frozen=True)
class SummaryQuery:
    """The parameters of one request, parsed and checked; times are UTC, ``start < end``."""

    project: str | None
    resource_type: str | None
    start: datetime
    end: datetime
    window: str
    group_by: str | None


class _Problems:
    """The fields that failed, each with its message: a 422 ``validation_failed`` when any did."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def raise_any(self) -> None:
        if self.errors:
            fields = ", ".join(dict.fromkeys(error["field"] for error in self.errors))
            raise IngestError(
                422, "validation_failed", f"Query parameters that do not hold: {fields}.", errors=self.errors
            )


def parse_time(value: str) -> datetime:
    """An RFC 3339 date-time with an offset, in UTC.

    Stricter than :meth:`datetime.fromisoformat` (no date alone, no missing offset, no ``+0100``)
    and wider in range: a leap second (``23:59:60``) is the next second, fractions beyond
    microseconds are cut, and a time whose UTC falls outside years 1 to 9999 is the first or last
    representable instant (no usage lies beyond either). Raises ``ValueError`` otherwise.
    """
    found = _RFC3339.fullmatch(value)
    if found is None:
        hint = ""
        if re.search(r"\d \d{2}:\d{2}$", value):
            hint = " (a + in a query string is a space: send the offset's + as %2B)"
        raise ValueError(f"not an RFC 3339 time with an offset, like 2026-01-31T00:00:00Z{hint}")
    hour, minute, second = int(found["hour"]), int(found["minute"]), int(found["second"])
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("the time of day is out of range")
    day = date.fromisoformat(found["date"])  # raises for 2026-02-30
    micros = int((found["fraction"] or "0")[:6].ljust(6, "0"))
    local = datetime.combine(day, time(hour, minute, min(second, 59), micros))
    offset = timedelta(0)
    if found["offset"] not in {"Z", "z"}:
        sign = -1 if found["offset"][0] == "-" else 1
        off_hours, off_minutes = int(found["offset"][1:3]), int(found["offset"][4:6])
        if off_hours > 23 or off_minutes > 59:
            raise ValueError("the offset is out of range")
        offset = sign * timedelta(hours=off_hours, minutes=off_minutes)
    shift = (timedelta(seconds=1) if second == 60 else timedelta(0)) - offset
    try:
        return (local + shift).replace(tzinfo=UTC)
    except OverflowError:
        return _EARLIEST if shift < timedelta(0) else _LATEST


def parse_query(query_string: bytes, *, now: datetime) -> SummaryQuery:
    """The request's parameters, or 400 (a query that is not UTF-8, a repeated parameter) or 422
    ``validation_failed`` listing every field that fails. ``project`` is not required here: that
    depends on the credentials (see :func:`resolve_project`)."""
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise IngestError(400, "invalid_query", "The query string is not UTF-8.") from None
    values: dict[str, str] = {}
    problems = _Problems()
    for name, value in pairs:
        if name in values:
            raise IngestError(
                400, "duplicate_parameter", f"The {name} parameter was given more than once; give it once."
            )
        values[name] = value
        if name not in PARAMETERS:
            problems.add(name, f"unknown parameter; the parameters are {', '.join(PARAMETERS)}")

    _check_values(values, problems)
    times: dict[str, datetime] = {}
    for name in ("from", "to"):
        if name in values:
            try:
                times[name] = parse_time(values[name])
            except ValueError as exc:
                problems.add(name, str(exc))
    problems.raise_any()

    window = values["window"]
    end = times.get("to", now)
    start = times.get("from") or (end - DEFAULT_SPAN if end - _EARLIEST > DEFAULT_SPAN else _EARLIEST)
    if start >= end:
        problems.add("from", f"must be before to ({_rfc3339(end)})")
        problems.raise_any()
    return SummaryQuery(
        values.get("project"), values.get("resource_type"), start, end, window, values.get("group_by")
    )


def _check_values(values: dict[str, str], problems: _Problems) -> None:
    """Every parameter but the times, each against its rule."""
    project = values.get("project")
    if project is not None and not _PROJECT.fullmatch(project):
        problems.add("project", "a project slug, or org/slug (lowercase letters, digits, _ and -)")
    resource_type = values.get("resource_type")
    if resource_type is not None and not RESOURCE_TYPE.fullmatch(resource_type):
        problems.add("resource_type", "1 to 255 characters, no control characters")
    window = values.get("window")
    if window is None:
        problems.add("window", f"required: one of {', '.join(WINDOWS)}")
    elif window not in WINDOWS:
        problems.add("window", f"one of {', '.join(WINDOWS)}")
    group_by = values.get("group_by")
    if group_by is not None and not GROUP_KEY.fullmatch(group_by):
        problems.add("group_by", "a metadata key: 1 to 64 characters, no control characters")


def resolve_project(principal: Any, project: str | None) -> tuple[int | None, str, str]:
    """``(project id or None, organization, slug)`` of the project the request reads.

    A key's own project (its id known); for the operator, the project named, whose id the caller
    looks up. 403 ``forbidden_project`` when a key names another project; 400
    ``missing_parameter`` when the operator names none.
    """
    if isinstance(principal, ProjectKey):
        if project is not None and not principal.names(project):
            raise IngestError(
                403,
                "forbidden_project",
                f"This key belongs to project {principal.project_slug}, not {project}.",
            )
        return principal.project_id, principal.organization_slug, principal.project_slug
    if project is None:
        raise IngestError(
            400, "missing_parameter", "The project parameter is required with the operator token."
        )
    org, _, slug = project.rpartition("/")
    return None, org or DEFAULT_ORGANIZATION, slug


@dataclass(frozen=True)
class Plan:
    """Which part of ``[start, end)`` each source answers (see schema/usage_summary.sql)."""

    #: Whole UTC days ``[summary_from, summary_to)`` from the view; empty when equal.
    summary_from: date
    summary_to: date
    #: ``resource_usage`` answers ``[start, head_end)`` and ``[tail_start, end)``.
    head_end: datetime
    tail_start: datetime


def plan(query: SummaryQuery, today: date) -> Plan:
    """The view for whole UTC days before ``today`` when it can answer (day and month windows
    without a group-by), ``resource_usage`` for the rest."""
    start, end = query.start, query.end
    if query.window != "hour" and query.group_by is None and start.date() < date.max:
        first = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)
        last = min(end.date(), today)  # end's own day is whole only up to end: it is not taken
        if first < last:
            return Plan(first, last, _midnight(first), _midnight(last))
    return Plan(end.date(), end.date(), end, end)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# --- Pure rendering ---


def decimal_text(value: Decimal) -> str:
    """An exact decimal string without trailing zeros or an exponent: ``12.5000000000`` -> ``12.5``.

    Never through ``normalize()``, which rounds to the context's 28 digits: a sum of numeric(30, 10)
    amounts can hold more.
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def project_name(org: str, slug: str) -> str:
    """How SPEC names a project: its slug in the default organization, else ``org/slug``."""
    return slug if org == DEFAULT_ORGANIZATION else f"{org}/{slug}"


def render(query: SummaryQuery, project: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The answer's body from the rows of ``summary_totals``."""
    totals = []
    for window_start, resource_type, unit, group, records, amount, cost_cad in rows:
        total: dict[str, Any] = {
            "window_start": _rfc3339(window_start),
            "resource_type": resource_type,
            "unit": unit,
            "records": int(records),
            "amount": decimal_text(amount),
            "cost_cad": None if cost_cad is None else decimal_text(cost_cad),
        }
        if query.group_by is not None:
            total["group"] = group
        totals.append(total)
    return {
        "project": project,
        "resource_type": query.resource_type,
        "window": query.window,
        "group_by": query.group_by,
        "from": _rfc3339(query.start),
        "to": _rfc3339(query.end),
        "totals": totals,
    }


# --- The endpoint ---


def connect_each_time(database_url: str) -> Connect:
    """A connection of its own per summary, closed after it."""

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, connect_timeout=3)
        async with conn:
            yield conn

    return connect


def from_pool(pool: AsyncConnectionPool[Any]) -> Connect:
    """Connections of the web process's shared pool, of which summaries take at most half at once.

    A summary may hold its connection for seconds; the other half stays free for the requests
    that must answer in milliseconds (budget reservations). A summary that finds no free share
    within :data:`POOL_WAIT` seconds gets the 503 of a database that does not answer.
    """
    gate = asyncio.Semaphore(max(1, pool.max_size // 2))

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            await asyncio.wait_for(gate.acquire(), POOL_WAIT)
        except TimeoutError:
            raise PoolTimeout(f"no share of the pool freed within {POOL_WAIT:g} s") from None
        try:
            async with pool.connection(timeout=POOL_WAIT) as conn:
                yield conn
        finally:
            gate.release()

    return connect


async def read_totals(
    conn: psycopg.AsyncConnection[Any],
    query: SummaryQuery,
    project: tuple[int | None, str, str],
    today: date,
) -> list[tuple[Any, ...]] | None:
    """The totals' rows (at most ``MAX_TOTALS + 1``), or None when the operator's project does not
    exist; in one transaction under :data:`STATEMENT_TIMEOUT`."""
    project_id, org, slug = project
    chosen = plan(query, today)
    async with conn.transaction():
        await conn.execute(queries()["summary_statement_timeout"], {"timeout": STATEMENT_TIMEOUT})
        if project_id is None:
            found = await (
                await conn.execute(queries()["summary_project"], {"org": org, "slug": slug})
            ).fetchone()
            if found is None:
                return None
            project_id = int(found[0])
        cursor = await conn.execute(
            queries()["summary_totals"],
            {
                "window": query.window,
                "project_id": project_id,
                "resource_type": query.resource_type,
                "group_by": query.group_by,
                "from": query.start,
                "to": query.end,
                "head_end": chosen.head_end,
                "tail_start": chosen.tail_start,
                "summary_from": chosen.summary_from,
                "summary_to": chosen.summary_to,
                "limit": MAX_TOTALS + 1,
            },
            prepare=False,
        )
        return list(await cursor.fetchall())


def summary_endpoint(
    settings: Settings,
    registry: KeyRegistry | None,
    pool: AsyncConnectionPool[Any] | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handler:
    """The ``GET /v1/usage/summary`` handler (see the module docstring): bearer tokens from
    ``settings``, project keys from ``registry``, and each summary's connection from ``pool``
    (:func:`from_pool`), or without one a connection of its own on ``settings.database_url``."""
    tokens = settings.hookyard_ingest_token
    connect = from_pool(pool) if pool is not None else connect_each_time(settings.database_url)

    async def summary(request: Request) -> Response:
        try:
            guard_headers(request.headers, request.repeated, GUARDED_HEADERS)
            principal = authenticate(request.headers, tokens, registry, Scope.USAGE)
            now = clock()
            query = parse_query(request.scope.get("query_string", b""), now=now)
            project = resolve_project(principal, query.project)
        except IngestError as exc:
            return error_response(exc)
        name = project_name(project[1], project[2])
        try:
            async with connect() as conn:
                rows = await read_totals(conn, query, project, now.date())
        except psycopg.errors.QueryCanceled:
            log.warning("usage_summary_timeout", project=name, window=query.window, timeout=STATEMENT_TIMEOUT)
            return json_response(
                {
                    "error": "summary_timeout",
                    "detail": f"The summary took longer than {STATEMENT_TIMEOUT}; ask for a shorter "
                    "range or a wider window.",
                },
                503,
                headers=_RETRY_LATER,
            )
        except (psycopg.Error, OSError) as exc:
            log.warning("usage_summary_unavailable", project=name, error=_first_line(exc))
            return json_response(
                {"error": "database_unavailable", "detail": "PostgreSQL did not answer; retry later."},
                503,
                headers=_RETRY_LATER,
            )
        if rows is None:
            return json_response({"error": "unknown_project", "detail": f"There is no project {name}."}, 404)
        if len(rows) > MAX_TOTALS:
            return json_response(
                {
                    "error": "too_many_totals",
                    "detail": f"The summary has more than {MAX_TOTALS} totals; ask for a shorter range "
                    "or a wider window.",
                },
                422,
            )
        return json_response(render(query, name, rows))

    return summary


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
