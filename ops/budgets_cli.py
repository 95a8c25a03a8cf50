"""``hookyard budgets``: usage budgets: set, list, show, and reserve for scripts.

The group is registered on the main group by ops/cli.py. Rendering (the table, a budget's page,
the one-line answers, the JSON documents) is pure; the operations are ops/budgets.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from contracts.ingest import decimal_text
from hookyard.config import load_settings
from ops.patterns_cli import when
from ops.tenancy_cli import database_option

if TYPE_CHECKING:
    from ops.budgets import Budget, BudgetPage, Reservation, SetBudget

_JSON_HELP = "One JSON document on stdout (amounts as decimal strings, times in UTC)"


def _database_url(database_url: str | None) -> str:
    return load_settings(database_url=database_url).database_url


# --- Pure rendering ---


def period_text(budget: Budget) -> str:
    """``daily 2026-11-30``, ``monthly 2026-11``, ``weekly from 2026-11-30``, ``total``."""
    start = budget.period_start.astimezone(UTC)
    if budget.period == "total":
        return "total"
    if budget.period == "monthly" and start.day == 1:
        return f"monthly {start:%Y-%m}"
    if budget.period == "daily":
        return f"daily {start:%Y-%m-%d}"
    return f"{budget.period} from {start:%Y-%m-%d}"


def settings_text(budget: Budget) -> str:
    """``1000 tokens daily (hard, thresholds 50,80,100, auto-reset)``."""
    thresholds = ",".join(str(t) for t in budget.thresholds) or "none"
    reset = "auto-reset" if budget.auto_reset else "no auto-reset"
    return (
        f"{decimal_text(budget.allocated)} {budget.unit} {budget.period} "
        f"({budget.enforcement}, thresholds {thresholds}, {reset})"
    )


def state_text(budget: Budget) -> str:
    """What the period holds, and a note when it has ended."""
    text = (
        f"used {decimal_text(budget.used)}, reserved {decimal_text(budget.reserved)}, "
        f"remaining {decimal_text(budget.remaining)}"
    )
    if budget.current:
        return text
    follows = "the next opens with its first usage or reservation" if budget.auto_reset else "no auto-reset"
    return f"{text} (period ended {when(budget.period_end)} UTC; {follows})"


def render_table(budgets: Iterable[Budget]) -> list[str]:
    """The list's table: one line per budget, its current (or latest) period."""
    rows = list(budgets)
    columns = [
        ("budget", [f"{b.project} {b.resource_type}" for b in rows], "<"),
        ("period", [period_text(b) + ("" if b.current else " (ended)") for b in rows], "<"),
        ("allocated", [decimal_text(b.allocated) for b in rows], ">"),
        ("used", [decimal_text(b.used) for b in rows], ">"),
        ("reserved", [decimal_text(b.reserved) for b in rows], ">"),
        ("remaining", [decimal_text(b.remaining) for b in rows], ">"),
        ("unit", [b.unit for b in rows], "<"),
        ("enforcement", [b.enforcement for b in rows], "<"),
        ("held", [str(b.held) for b in rows], ">"),
    ]
    widths = [max([len(title), *(len(value) for value in values)]) for title, values, _ in columns]
    lines = [
        "  ".join(f"{title:{align}{width}}" for (title, _, align), width in zip(columns, widths, strict=True))
    ]
    for index in range(len(rows)):
        lines.append(
            "  ".join(
                f"{values[index]:{align}{width}}"
                for (_, values, align), width in zip(columns, widths, strict=True)
            ).rstrip()
        )
    return [line.rstrip() for line in lines]


def set_lines(done: SetBudget) -> list[str]:
    """What ``set`` prints: what happened, the settings, the current period."""
    budget = done.budget
    verb = "created" if done.created else "updated"
    end = f" to {when(budget.period_end, seconds=False)}" if budget.period_end else ""
    lines = [
        f"{verb} budget {budget.resource_type} of {budget.project}: {settings_text(budget)}",
        f"  period {when(budget.period_start, seconds=False)}{end} UTC: {state_text(budget)}",
    ]
    if done.crossed:
        lines.append(
            f"  thresholds reached by the period's usage: {', '.join(f'{t}%' for t in done.crossed)}"
        )
    return lines


def render_page(page: BudgetPage) -> list[str]:
    """``budgets show``: the budget, its latest periods, the shown period's alerts and held reservations."""
    budget = page.budget
    fields = [
        ("budget", f"{budget.resource_type} of {budget.project}"),
        ("settings", settings_text(budget)),
        ("period", f"{when(budget.period_start)} to {when(budget.period_end)} UTC"),
        ("state", state_text(budget)),
        ("held", f"{budget.held} reservation(s)"),
    ]
    lines = [f"{label:>8}: {value}" for label, value in fields]
    lines.append("")
    lines.append(f"latest periods (UTC), newest first: {len(page.periods)}")
    for period in page.periods:
        crossed = ",".join(f"{t}%" for t in period.alerts) or "-"
        lines.append(
            f"  {when(period.period_start, seconds=False)}  {period.period:<7}  "
            f"allocated {decimal_text(period.allocated)}  used {decimal_text(period.used)}  "
            f"reserved {decimal_text(period.reserved)}  crossed {crossed}"
        )
    lines.append("")
    if not page.alerts:
        lines.append("thresholds crossed this period: none")
    else:
        lines.append("thresholds crossed this period:")
        lines.extend(
            f"  {alert.threshold:>4}%  at {when(alert.crossed_at)}  used {decimal_text(alert.used)} "
            f"of {decimal_text(alert.allocated)}"
            for alert in page.alerts
        )
    lines.append("")
    if not page.held:
        lines.append("held reservations: none")
    else:
        lines.append("held reservations, the next to expire first:")
        lines.extend(
            f"  {held.reservation_id}  {decimal_text(held.amount):>12}  expires {when(held.expires_at)}  "
            f"id {held.client_id}"
            for held in page.held
        )
    return lines


def reservation_line(reservation: Reservation) -> str:
    """``<reservation id> remaining=880 state=held expires_at=...``: the id first, for scripts."""
    again = " (reserved before with this id)" if reservation.outcome == "existing" else ""
    overrun = f" overrun={decimal_text(reservation.overrun)}" if reservation.overrun else ""
    expires = reservation.expires_at.astimezone(UTC).isoformat()
    return (
        f"{reservation.reservation_id} remaining={decimal_text(reservation.remaining)} "
        f"state={reservation.state} amount={decimal_text(reservation.amount)}{overrun} "
        f"expires_at={expires}{again}"
    )


def to_json(value: Any) -> str:
    """One JSON document: dataclasses as objects, amounts as exact decimal strings, times in UTC."""
    return json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


# --- Commands ---


@click.group()
def budgets() -> None:
    """Usage budgets: set, list, show, and reserve amounts.

    A budget caps a project's usage of one resource type per period (daily, weekly, monthly, or
    total), in a unit; hard budgets refuse reservations they cannot cover, soft ones grant them
    and record the overrun. Thresholds (percentages) are alerted once per period. PROJECT is SLUG
    (default organization) or ORG/SLUG. Periods are in UTC.
    """


@budgets.command("set")
@click.argument("project")
@click.argument("resource_type")
@click.option("--period", help="daily, weekly, monthly or total [default: kept; required for a new budget]")
@click.option(
    "--amount",
    help="The allocation per period, in the unit: 0 or more [default: kept; required for a new budget]",
)
@click.option(
    "--unit", help="What the amount counts: tokens, calls, CAD... [default: kept; required for a new budget]"
)
@click.option(
    "--soft/--hard",
    "soft",
    default=None,
    help="Soft grants past the allocation and records the overrun [default: kept; a new budget: hard]",
)
@click.option(
    "--thresholds",
    metavar="PERCENTS",
    help="Alert percentages, e.g. 50,80,100 [default: kept; a new budget: 50,80,100]",
)
@click.option(
    "--auto-reset/--no-auto-reset",
    "auto_reset",
    default=None,
    help="Open each next period with the same settings [default: kept; a new budget: auto-reset]",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def budgets_set(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str,
    resource_type: str,
    period: str | None,
    amount: str | None,
    unit: str | None,
    soft: bool | None,
    thresholds: str | None,
    auto_reset: bool | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a budget, or change it from the current period on.

    The current period's used amount is summed again from the usage stored in it, and the
    thresholds it has reached are alerted (once per period). Later periods open with these
    settings. A new --period applies from the current period on; earlier periods keep theirs.
    """
    from ops import budgets as ops_budgets  # noqa: PLC0415 - keep --help fast
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    done = ops_budgets.set_budget(
        _database_url(database_url),
        ref,
        resource_type,
        period=ops_budgets.parse_period(period) if period is not None else None,
        amount=ops_budgets.parse_allocation(amount) if amount is not None else None,
        unit=unit,
        soft=soft,
        thresholds=ops_budgets.parse_thresholds_option(thresholds) if thresholds is not None else None,
        auto_reset=auto_reset,
    )
    if as_json:
        click.echo(to_json(done))
        return
    for line in set_lines(done):
        click.echo(line)


@budgets.command("list")
@click.option("--project", help="Only this project's budgets: SLUG (default organization) or ORG/SLUG")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP + " (a list)")
@database_option
def budgets_list(project: str | None, as_json: bool, database_url: str | None) -> None:
    """List budgets with their current period: allocated, used, reserved, remaining."""
    from ops import budgets as ops_budgets  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project) if project else None
    found = ops_budgets.list_budgets(_database_url(database_url), ref)
    if as_json:
        click.echo(to_json(found))
        return
    if not found:
        where = f" in {ref}" if ref else ""
        click.echo(
            f"no budgets{where}; `hookyard budgets set PROJECT RESOURCE_TYPE --period daily "
            "--amount N --unit U` sets one"
        )
        return
    for line in render_table(found):
        click.echo(line)


@budgets.command("show")
@click.argument("project")
@click.argument("resource_type")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def budgets_show(project: str, resource_type: str, as_json: bool, database_url: str | None) -> None:
    """Show a budget: its settings, current period, latest periods, alerts and held reservations."""
    from ops import budgets as ops_budgets  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    page = ops_budgets.show_budget(_database_url(database_url), tenancy.parse_project(project), resource_type)
    if as_json:
        click.echo(to_json(page))
        return
    for line in render_page(page):
        click.echo(line)


@budgets.command("reserve")
@click.argument("project")
@click.argument("resource_type")
@click.argument("amount")
@click.option(
    "--ttl",
    default="15m",
    show_default=True,
    help="Until it expires unless committed or released (90s, 15m, 1h; 1d at most)",
)
@click.option(
    "--id",
    "client_id",
    help="Idempotency key: reserving again with it returns the first [default: a random one]",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def budgets_reserve(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str,
    resource_type: str,
    amount: str,
    ttl: str,
    client_id: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Reserve AMOUNT of a budget, as POST /v1/budgets/reservations does.

    Prints the reservation id first, then the remaining amount. Exits 1 with one line when the
    budget cannot cover it (budget_exceeded) or there is none (no_budget). Commit or release it
    over HTTP (POST /v1/budgets/reservations/<id>/commit or /release), or let it expire.
    """
    from ops import budgets as ops_budgets  # noqa: PLC0415
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    reservation = ops_budgets.reserve(
        _database_url(database_url),
        ref,
        resource_type,
        ops_budgets.parse_reservation_amount(amount),
        ttl_seconds=ops_budgets.parse_ttl(ttl),
        client_id=client_id,
    )
    click.echo(to_json(reservation) if as_json else reservation_line(reservation))
