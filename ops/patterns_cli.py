"""``hookyard errors``: error patterns: list, show, resolve, ignore, reopen.

The group is registered on the main group by ops/cli.py. The module is ``patterns_cli``, not
``errors_cli``: in this codebase "errors" names worker failures (workers/errors.py) and HTTP
refusals (producers/errors.py), while these are error *reports* grouped into patterns.
Rendering (the table, the stack, the per-day counts) is pure and tested in tests/unit.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import click

from hookyard.config import load_settings
from ops.tenancy_cli import database_option

if TYPE_CHECKING:
    from ops.patterns import Change, DayCount, Pattern, PatternSummary, Stack, StackException, StackFrame

_JSON_HELP = "One JSON document on stdout"
STATUS_CHOICES = ("unresolved", "resolved", "ignored")  # ops.patterns.STATUSES, kept here for a fast --help
#: Widest title and exception type in the list's table; --json has them whole.
TITLE_WIDTH = 60
TYPE_WIDTH = 32
_BAR_WIDTH = 40


def _database_url(database_url: str | None) -> str:
    return load_settings(database_url=database_url).database_url


# --- Pure rendering ---


def when(value: datetime | None, *, seconds: bool = True) -> str:
    """A time in UTC for a person; ``-`` for none."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def cell(text: str | None, width: int) -> str:
    """``text`` on one line and at most ``width`` characters, cut with an ellipsis; ``-`` for none."""
    if not text:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def to_json(value: Any) -> str:
    """One JSON document: dataclasses as objects, times as RFC 3339 in UTC, days as dates."""

    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.astimezone(UTC).isoformat()
        if isinstance(item, date):
            return item.isoformat()
        raise TypeError(f"{type(item).__name__} is not JSON serializable")

    def plain(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        if isinstance(item, list):
            return [plain(element) for element in item]
        return item

    return json.dumps(plain(value), default=default)


def render_table(patterns: Iterable[PatternSummary]) -> list[str]:
    """The list's table: one line per pattern, times in UTC, type and title cut to fit."""
    rows = list(patterns)
    project_width = max([len("project"), *(len(row.project) for row in rows)])
    type_width = min(TYPE_WIDTH, max([len("type"), *(len(row.exception_type or "-") for row in rows)]))
    lines = [
        f"{'id':>6}  {'project':<{project_width}}  {'status':<10} {'count':>8} {'regr':>4}  "
        f"{'first seen (UTC)':<16}  {'last seen (UTC)':<16}  {'type':<{type_width}}  title"
    ]
    for row in rows:
        lines.append(
            f"{row.id:>6}  {row.project:<{project_width}}  {row.status:<10} {row.occurrence_count:>8} "
            f"{row.regression_count:>4}  {when(row.first_seen_at, seconds=False):<16}  "
            f"{when(row.last_seen_at, seconds=False):<16}  "
            f"{cell(row.exception_type, type_width):<{type_width}}  {cell(row.title, TITLE_WIDTH)}"
        )
    return lines


def render_stack(stack: Stack) -> list[str]:
    """An occurrence's stack the way Python prints a traceback, most recent call last.

    Each exception of the chain (cause first, the raised one last) is its ``type: value`` line,
    then its frames as ``  File "filename", line N, in function``, an in-app frame ending with
    ``[in app]``. A report without an exception is its message. The report's message is shown
    first when it says more than the raised exception's value.
    """
    chain = stack.exceptions
    if not chain:
        return [stack.message or "(no message and no exception)"]
    lines: list[str] = []
    if stack.message and stack.message != chain[-1].value:
        lines.append(f"message: {stack.message}")
    if len(chain) > 1:
        lines.append(f"{len(chain)} chained exceptions, the cause first and the one raised last:")
    for exception in chain:
        lines.append(_exception_line(exception))
        lines.extend(_frame_line(frame) for frame in exception.frames)
        if not exception.frames:
            lines.append("  (no stack trace)")
    return lines


def _exception_line(exception: StackException) -> str:
    if exception.type and exception.value:
        return f"{exception.type}: {exception.value}"
    return exception.type or exception.value or "(an exception with no type and no value)"


def _frame_line(frame: StackFrame) -> str:
    where = frame.filename or frame.module or "<unknown>"
    line = frame.lineno if frame.lineno is not None else "?"
    in_app = "  [in app]" if frame.in_app else ""
    return f'  File "{where}", line {line}, in {frame.function or "<unknown>"}{in_app}'


def render_daily(counts: Iterable[DayCount]) -> list[str]:
    """One line per day, oldest first: the date, the count and a bar scaled to the busiest day."""
    days = list(counts)
    busiest = max((day.occurrences for day in days), default=0)
    lines = []
    for day in days:
        bar = "#" * math.ceil(day.occurrences * _BAR_WIDTH / busiest) if busiest else ""
        lines.append(f"  {day.day.isoformat()}  {day.occurrences:>8}  {bar}".rstrip())
    return lines


def render_pattern(pattern: Pattern, *, days: int, basis: str) -> list[str]:
    """``errors show``: the pattern's fields, its latest occurrence's stack, its recent days."""
    fields = dataclasses.asdict(pattern)
    fields.pop("latest_occurrence")
    fields.pop("daily_counts")
    lines = []
    for name, value in fields.items():
        if isinstance(value, datetime):
            shown = f"{when(value)} UTC"
        elif isinstance(value, dict | list):
            shown = json.dumps(value)
        elif value is None:
            shown = "-"
        else:
            shown = str(value)
        lines.append(f"{name:>19}: {shown}")
    occurrence = pattern.latest_occurrence
    lines.append("")
    if occurrence is None:
        lines.append("latest occurrence: none kept (retention removed them)")
    else:
        about = [occurrence.origin]
        about += [f"release {occurrence.release}"] if occurrence.release else []
        about += [f"environment {occurrence.environment}"] if occurrence.environment else []
        lines.append(
            f"latest occurrence: {occurrence.event_id}, received {when(occurrence.received_at)} UTC "
            f"({', '.join(about)})"
        )
        lines.extend(f"  {line}" for line in render_stack(occurrence.stack))
    lines.append("")
    lines.append(f"occurrences in the last {days} days, {basis}:")
    lines.extend(render_daily(pattern.daily_counts))
    return lines


def change_line(change: Change, verb: str) -> str:
    """The one line a state change prints, e.g. ``pattern 12 resolved (was unresolved)``."""
    if not change.unchanged:
        was = f"was {change.previous}"
    elif change.status == "resolved":
        was = f"was resolved already; resolved at {when(change.resolved_at)} UTC, kept"
    elif change.status == "ignored":
        was = "was ignored already; its limits replaced"
    else:
        was = "was unresolved already; nothing changed"
    line = f"pattern {change.id} {verb} ({was})"
    if change.status == "ignored":
        line += f": {_ignore_limits(change)}"
    return line


def _ignore_limits(change: Change) -> str:
    limits = []
    if change.ignored_until_count is not None:
        more = change.ignored_until_count - change.occurrence_count
        limits.append(f"after {more} more occurrence(s) (at {change.ignored_until_count})")
    if change.ignored_until is not None:
        limits.append(f"on an occurrence after {when(change.ignored_until)} UTC")
    if not limits:
        return "no limit, it stays ignored until reopened"
    return "reopens " + " or ".join(limits) + (", whichever comes first" if len(limits) > 1 else "")


# --- Commands ---


@click.group()
def errors() -> None:
    """Error patterns: list, show, resolve, ignore, reopen.

    The worker groups error reports (Sentry events, /v1/errors) into patterns; ID is a
    pattern's id as `hookyard errors list` shows it. Setting a pattern to the status it has
    already succeeds and says so.
    """


@errors.command("list")
@click.option("--project", help="Only this project's patterns: SLUG (default organization) or ORG/SLUG")
@click.option(
    "--status",
    type=click.Choice([*STATUS_CHOICES, "all"]),
    default="unresolved",
    show_default=True,
    help="Only patterns with this status",
)
@click.option("--since", metavar="DURATION", help="Only patterns last seen this recently: 30m, 24h, 7d, 2w")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Most patterns shown"
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP + " (a list; titles whole)")
@database_option
def errors_list(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str | None, status: str, since: str | None, limit: int, as_json: bool, database_url: str | None
) -> None:
    """List error patterns, most recently seen first."""
    from ops import patterns, tenancy  # noqa: PLC0415 - keep --help fast

    ref = tenancy.parse_project(project) if project else None
    age = patterns.parse_since(since) if since else None
    found = patterns.list_patterns(
        _database_url(database_url),
        project=ref,
        status=None if status == "all" else status,
        since=age,
        limit=limit,
    )
    if found.truncated:
        click.echo(f"showing the {limit} most recently seen; --limit shows more", err=True)
    if as_json:
        click.echo(to_json(found.patterns))
        return
    if not found.patterns:
        where = f" in {ref}" if ref else ""
        recent = f" seen in the last {since}" if since else ""
        hint = "" if status == "all" else "; --status all lists every status"
        click.echo(f"no {'' if status == 'all' else status + ' '}error patterns{where}{recent}{hint}")
        return
    for line in render_table(found.patterns):
        click.echo(line)


@errors.command("show")
@click.argument("pattern_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def errors_show(pattern_id: int, as_json: bool, database_url: str | None) -> None:
    """Show a pattern: its fields, its latest occurrence's stack and its occurrences per day."""
    from ops import patterns  # noqa: PLC0415

    pattern = patterns.show_pattern(_database_url(database_url), pattern_id)
    if as_json:
        document = json.loads(to_json(pattern))
        document["daily_counts_basis"] = patterns.DAILY_BASIS
        click.echo(json.dumps(document))
        return
    for line in render_pattern(pattern, days=patterns.DAILY_DAYS, basis=patterns.DAILY_BASIS):
        click.echo(line)


@errors.command("resolve")
@click.argument("pattern_id", metavar="ID", type=int)
@click.option(
    "--resolution", metavar="TEXT", help="How it was fixed (an empty one clears it) [default: kept]"
)
@click.option(
    "--auto-fixable/--no-auto-fixable",
    default=None,
    help="Whether a fix could be applied automatically next time [default: kept]",
)
@database_option
def errors_resolve(
    pattern_id: int, resolution: str | None, auto_fixable: bool | None, database_url: str | None
) -> None:
    """Mark a pattern resolved: its next occurrence reopens it as a regression."""
    from ops import patterns  # noqa: PLC0415

    change = patterns.resolve(
        _database_url(database_url), pattern_id, resolution=resolution, auto_fixable=auto_fixable
    )
    click.echo(change_line(change, "resolved"))


@errors.command("ignore")
@click.argument("pattern_id", metavar="ID", type=int)
@click.option(
    "--until-count",
    type=click.IntRange(1, 1_000_000_000),
    metavar="N",
    help="Reopen it after N more occurrences",
)
@click.option(
    "--until",
    metavar="TIME",
    help="Reopen it on an occurrence after this RFC 3339 time (2026-05-01T09:00:00Z) or duration (2h, 7d)",
)
@database_option
def errors_ignore(
    pattern_id: int, until_count: int | None, until: str | None, database_url: str | None
) -> None:
    """Mark a pattern ignored, for good or until a limit passes (both: whichever comes first).

    Ignoring an ignored pattern replaces its limits with the ones given.
    """
    from ops import patterns  # noqa: PLC0415

    limit = patterns.parse_until(until) if until else None
    change = patterns.ignore(_database_url(database_url), pattern_id, until_count=until_count, until=limit)
    click.echo(change_line(change, "ignored"))


@errors.command("reopen")
@click.argument("pattern_id", metavar="ID", type=int)
@database_option
def errors_reopen(pattern_id: int, database_url: str | None) -> None:
    """Mark a pattern unresolved again, clearing its resolution time and ignore limits.

    A reopen is not a regression: regression_count and regressed_at are left as they are.
    """
    from ops import patterns  # noqa: PLC0415

    change = patterns.reopen(_database_url(database_url), pattern_id)
    click.echo(change_line(change, "reopened"))
