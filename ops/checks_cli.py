"""``hookyard checks``: heartbeat checks: set, list, show, pause, resume.

The group is registered on the main group by ops/cli.py. Rendering (durations, schedules, the
table, a check's page, the one-line answers, the JSON documents) is pure and tested in
tests/unit; the operations are ops/checks.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from contracts.checks import format_duration
from hookyard.config import load_settings
from ops.patterns_cli import when
from ops.tenancy_cli import database_option

if TYPE_CHECKING:
    from ops.checks import Check, CheckSummary, PauseChange, SetCheck, StatusCounts

F = TypeVar("F", bound=Callable[..., Any])

_JSON_HELP = "One JSON document on stdout (durations in seconds, times in UTC)"
_STATUS_ORDER = ("up", "grace", "down", "new", "paused")


def _database_url(database_url: str | None) -> str:
    return load_settings(database_url=database_url).database_url


def public_url_options(fn: F) -> F:
    """--public-url, --serve-host and --serve-port, read the way ``keys create`` reads them."""
    fn = click.option(
        "--serve-port",
        envvar="HOOKYARD_PORT",
        show_envvar=True,
        type=click.IntRange(1, 65535),
        default=8000,
        show_default=True,
        help="The port `hookyard serve` listens on (used without a public URL)",
    )(fn)
    fn = click.option(
        "--serve-host",
        envvar="HOOKYARD_HOST",
        show_envvar=True,
        default="127.0.0.1",
        show_default=True,
        help="The host `hookyard serve` listens on (used without a public URL)",
    )(fn)
    return click.option(
        "--public-url",
        envvar="HOOKYARD_PUBLIC_URL",
        show_envvar=True,
        default=None,
        help="Base URL senders reach `hookyard serve` at, for the ping URLs "
        "[default: http://HOOKYARD_HOST:HOOKYARD_PORT]",
    )(fn)


def _settings_and_base(
    database_url: str | None, public_url: str | None, serve_host: str, serve_port: int
) -> tuple[str, str]:
    from ops import tenancy  # noqa: PLC0415 - keep --help fast

    settings = load_settings(database_url=database_url, hookyard_public_url=public_url)
    base = tenancy.public_base_url(settings.hookyard_public_url, serve_host, serve_port)
    return settings.database_url, base


# --- Pure rendering ---


def schedule_text(kind: str, period: timedelta | None, schedule: str | None, tz: str) -> str:
    """``every 5m`` or ``cron '*/5 * * * *' Europe/Paris``."""
    if kind == "cron":
        return f"cron '{schedule}' {tz}"
    return f"every {format_duration(period)}" if period is not None else "every ?"


def subject_label(subject: str) -> str:
    """A subject as people read it: the check's own pings (``''``) or ``host:pid:port``."""
    return subject or "(pings)"


def counts_text(counts: StatusCounts) -> str:
    """``2 up, 1 down``: the statuses its subjects have, the ones that need a look first."""
    shown = [f"{number} {status}" for status in _STATUS_ORDER if (number := getattr(counts, status))]
    return ", ".join(shown) or "no subjects"


def render_table(checks: Iterable[CheckSummary]) -> list[str]:
    """The list's table: one line per check, times in UTC."""
    rows = list(checks)
    check_width = max([len("check"), *(len(f"{row.project}/{row.slug}") for row in rows)])
    schedules = [schedule_text(row.kind, row.period, row.schedule, row.tz) for row in rows]
    schedule_width = max([len("schedule"), *(len(text) for text in schedules)])
    subjects = [counts_text(row.subjects) for row in rows]
    subjects_width = max([len("subjects"), *(len(text) for text in subjects)])
    lines = [
        f"{'check':<{check_width}}  {'schedule':<{schedule_width}}  {'grace':>6}  {'state':<6}  "
        f"{'subjects':<{subjects_width}}  {'last report (UTC)':<19}  next due (UTC)"
    ]
    for row, schedule, counted in zip(rows, schedules, subjects, strict=True):
        lines.append(
            f"{row.project + '/' + row.slug:<{check_width}}  {schedule:<{schedule_width}}  "
            f"{format_duration(row.grace):>6}  {'paused' if row.paused else 'active':<6}  "
            f"{counted:<{subjects_width}}  {when(row.last_report_at):<19}  {when(row.next_due_at)}"
        )
    return lines


def set_lines(check: SetCheck) -> list[str]:
    """What ``set`` prints: what happened, the uuid and the two ping URLs."""
    verb = "created" if check.created else "updated"
    name = f" ({check.name})" if check.name else ""
    lines = [
        f"{verb} check {check.slug}{name} of {check.project}: "
        f"{schedule_text(check.kind, check.period, check.schedule, check.tz)}, "
        f"grace {format_duration(check.grace)}{', paused' if check.paused else ''}",
        f"  uuid      {check.uuid}",
    ]
    lines.extend(f"  ping url  {url}" for url in check.ping_urls)
    if check.retimed:
        flipped = f", {check.flipped} of them changed status" if check.flipped else ""
        lines.append(f"  {check.retimed} subject(s) timed again by the new schedule{flipped}")
    return lines


def render_check(check: Check) -> list[str]:
    """``checks show``: the check's fields, its ping URLs, its subjects and its latest flips."""
    fields: list[tuple[str, str]] = [
        ("check", check.slug),
        ("project", check.project),
        ("uuid", check.uuid),
        ("name", check.name or "-"),
        ("schedule", schedule_text(check.kind, check.period, check.schedule, check.tz)),
        ("grace", format_duration(check.grace)),
        ("paused", "yes" if check.paused else "no"),
        ("created", f"{when(check.created_at)} UTC"),
        ("updated", f"{when(check.updated_at)} UTC"),
    ]
    lines = [f"{label:>9}: {value}" for label, value in fields]
    lines.extend(
        f"{'ping urls' if index == 0 else '':>9}{':' if index == 0 else ' '} {url}"
        for index, url in enumerate(check.ping_urls)
    )
    lines.append("")
    if not check.subjects:
        lines.append("subjects: none yet (a subject appears with its first report)")
    else:
        lines.append(f"subjects: {len(check.subjects)}")
        for subject in check.subjects:
            running = ", running since " + when(subject.run_started_at) if subject.running else ""
            lines.append(
                f"  {subject_label(subject.subject):<24} {subject.status:<6}  "
                f"last report {when(subject.last_heartbeat_at)}  due {when(subject.due_at)}{running}"
            )
    lines.append("")
    if not check.flips:
        lines.append("status flips: none yet")
    else:
        lines.append(f"latest status flips (UTC), newest first: {len(check.flips)}")
        lines.extend(
            f"  {when(flip.at)}  {subject_label(flip.subject):<24} "
            f"{flip.from_status} -> {flip.to_status}  ({flip.cause})"
            for flip in check.flips
        )
    return lines


def pause_line(change: PauseChange) -> str:
    """The one line ``pause`` or ``resume`` prints; a repeat says so."""
    what = f"check {change.slug} of {change.project}"
    moved = len(change.subjects)
    if change.paused and not change.unchanged:
        return f"paused {what}: {moved} subject(s) paused"
    if change.paused:
        more = f"{moved} more subject(s) paused" if moved else "nothing changed"
        return f"{what} was paused already; {more}"
    if not change.unchanged:
        return f"resumed {what}: {moved} subject(s) new until their next report"
    more = f"{moved} paused subject(s) set to new" if moved else "nothing changed"
    return f"{what} was not paused; {more}"


def to_json(value: Any) -> str:
    """One JSON document: dataclasses as objects, a duration ``x`` as ``x_seconds`` (a number),
    times as RFC 3339 in UTC."""
    return json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, timedelta):
                seconds = item.total_seconds()
                plain[f"{key}_seconds"] = int(seconds) if seconds.is_integer() else seconds
            elif item is None and key in _DURATIONS:
                plain[f"{key}_seconds"] = None
            else:
                plain[key] = _plain(item)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


#: Duration fields that may be None: their key says seconds whether or not they hold one.
_DURATIONS = frozenset({"period", "last_duration"})


# --- Commands ---


@click.group()
def checks() -> None:
    """Heartbeat checks: set, list, show, pause, resume.

    A check expects reports on time: pings of a cron job (/ping/...) or /v1/heartbeats of a
    service's instances, each a subject with its own status (new, up, grace, down, paused).
    PROJECT is SLUG (default organization) or ORG/SLUG; a check's SLUG is 1 to 100 of a-z, 0-9,
    '_' and '-'. Durations are a number and s, m, h or d (90s, 5m, 1h, 2d): one second or more.
    """


@checks.command("set")
@click.argument("project")
@click.argument("slug")
@click.option(
    "--period", metavar="DURATION", help="A report is due this long after the last one (5m, 1h, 1d)"
)
@click.option("--cron", metavar="EXPR", help="A report is due at each time of this cron expression")
@click.option(
    "--tz",
    metavar="ZONE",
    help="The time zone of --cron, e.g. Europe/Paris [default: kept; a new check: UTC]",
)
@click.option(
    "--grace",
    metavar="DURATION",
    help="How long past due before down (1m, 1h) [default: kept; a new check: 1h]",
)
@click.option("--name", help="A display name (an empty one clears it) [default: kept]")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@public_url_options
@database_option
def checks_set(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str,
    slug: str,
    period: str | None,
    cron: str | None,
    tz: str | None,
    grace: str | None,
    name: str | None,
    as_json: bool,
    public_url: str | None,
    serve_host: str,
    serve_port: int,
    database_url: str | None,
) -> None:
    """Create a check, or change its schedule: --period D or --cron EXPR [--tz ZONE].

    Prints the check's uuid and its ping URLs. Subjects that are up or in grace get their
    deadline again from their last report under the new schedule.
    """
    from ops import checks as ops_checks  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    if period is None and cron is None:
        raise click.UsageError("give the schedule: --period DURATION or --cron EXPR")
    if period is not None and cron is not None:
        raise click.UsageError("give either --period or --cron, not both")
    ref = tenancy.parse_project(project)
    ops_checks.check_slug(slug)
    request = ops_checks.parse_schedule(period=period, cron=cron, tz=tz, grace=grace)
    url, base = _settings_and_base(database_url, public_url, serve_host, serve_port)
    done = ops_checks.set_check(url, ref, slug, request, public_url=base, name=name)
    if as_json:
        click.echo(to_json(done))
        return
    for line in set_lines(done):
        click.echo(line)


@checks.command("list")
@click.option("--project", help="Only this project's checks: SLUG (default organization) or ORG/SLUG")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP + " (a list)")
@database_option
def checks_list(project: str | None, as_json: bool, database_url: str | None) -> None:
    """List checks with their schedule, their subjects by status, last report and next deadline."""
    from ops import checks as ops_checks  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project) if project else None
    found = ops_checks.list_checks(_database_url(database_url), project=ref)
    if as_json:
        click.echo(to_json(found))
        return
    if not found:
        where = f" in {ref}" if ref else ""
        click.echo(f"no checks{where}; `hookyard checks set PROJECT SLUG --period 1d` creates one")
        return
    for line in render_table(found):
        click.echo(line)


@checks.command("show")
@click.argument("project")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@public_url_options
@database_option
def checks_show(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str,
    slug: str,
    as_json: bool,
    public_url: str | None,
    serve_host: str,
    serve_port: int,
    database_url: str | None,
) -> None:
    """Show a check: its schedule, ping URLs, subjects and latest status flips."""
    from ops import checks as ops_checks  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    ops_checks.check_slug(slug)
    url, base = _settings_and_base(database_url, public_url, serve_host, serve_port)
    shown = ops_checks.show_check(url, ref, slug, public_url=base)
    if as_json:
        click.echo(to_json(shown))
        return
    for line in render_check(shown):
        click.echo(line)


@checks.command("pause")
@click.argument("project")
@click.argument("slug")
@database_option
def checks_pause(project: str, slug: str, database_url: str | None) -> None:
    """Pause a check: its subjects are paused and never go down until it resumes or is pinged."""
    from ops import checks as ops_checks  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    change = ops_checks.pause(_database_url(database_url), tenancy.parse_project(project), slug)
    click.echo(pause_line(change))


@checks.command("resume")
@click.argument("project")
@click.argument("slug")
@database_option
def checks_resume(project: str, slug: str, database_url: str | None) -> None:
    """Resume a paused check: its subjects are new again until their next report."""
    from ops import checks as ops_checks  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    change = ops_checks.resume(_database_url(database_url), tenancy.parse_project(project), slug)
    click.echo(pause_line(change))
