"""Budget operations behind ``hookyard budgets``: set, list, show, reserve.

Each operation opens its own connection, runs in one transaction and returns plain dataclasses;
every refusal is a :class:`BudgetError` (or a tenancy error for an unknown project) whose message
is one line for an operator. The rules are migration 0013's functions, through the
``budgets_*`` queries of ``schema/budgets.sql``: ``reserve`` here is the very call
``POST /v1/budgets/reservations`` makes, and ``set`` is the one creation of a budget row that takes
the budget's advisory lock exclusively (see the migration) to sum the usage already stored in its
period.

What ``set`` changes: the row of the current period (created, or given the settings asked for;
a setting not given keeps the stored one), its used amount summed again from ``resource_usage``,
and rows of later periods if usage dated ahead opened some. Later periods open from the current
row's settings with their first usage or reservation (auto-reset), never from an older row's.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import psycopg

from contracts.checks import parse_duration
from contracts.ingest import AMOUNT_LIMIT, TEXT_PATTERN, decimal_text, parse_amount
from contracts.usage import BudgetPeriod, parse_thresholds
from hookyard.errors import HookyardError
from ops.tenancy import DEFAULT_ORG, ProjectRef, _connect, _find_project
from schema import queries

#: A reservation's TTL when none is given (SPEC): 15 minutes.
DEFAULT_TTL_SECONDS: Final = 900
MAX_TTL_SECONDS: Final = 86_400
#: How many of a budget's latest periods and held reservations ``show`` returns.
PERIODS_SHOWN: Final = 12
HELD_SHOWN: Final = 20
#: Allocations are numeric(30, 10): below 10^20, at most 10 decimal places.
_ALLOCATION = re.compile(r"[0-9]{1,20}(\.[0-9]{1,10})?")
_TEXT = re.compile(TEXT_PATTERN)

Row = dict[str, Any]


class BudgetError(HookyardError):
    """A budgets command was refused; the message says why in one line."""


class BudgetNotFound(BudgetError):
    """The project has no budget for that resource type."""


class ReservationRefused(BudgetError):
    """``reserve`` was answered ``budget_exceeded`` or ``no_budget``: nothing is held."""


# --- Pure parsing ---


def parse_period(value: str) -> BudgetPeriod:
    try:
        return BudgetPeriod(value.strip().lower())
    except ValueError:
        names = ", ".join(period.value for period in BudgetPeriod)
        raise BudgetError(f"--period: {value!r} is not one of {names}") from None


def parse_allocation(value: str) -> Decimal:
    """``--amount`` of ``set``: 0 or more (0 allows nothing), at most 10 decimal places."""
    text = value.strip()
    if not _ALLOCATION.fullmatch(text):
        raise BudgetError(
            f"--amount: {value!r} is not an amount: digits with at most 10 decimal places (100, 12.5)"
        )
    amount = Decimal(text)
    if amount >= Decimal(10) ** 20:
        raise BudgetError(f"--amount: {value!r} is too large (below 10^20)")
    return amount


def parse_reservation_amount(value: str) -> Decimal:
    """AMOUNT of ``reserve``: the same rule as the HTTP body's (contracts.ingest.parse_amount)."""
    try:
        return parse_amount(value.strip())
    except (ValueError, InvalidOperation):
        raise BudgetError(
            f"AMOUNT: {value!r} is not an amount: above 0 and below {AMOUNT_LIMIT:.0e}, at most 10 "
            "decimal places (12.5)"
        ) from None


def parse_thresholds_option(value: str) -> list[int]:
    try:
        return list(parse_thresholds(value))
    except ValueError as exc:
        raise BudgetError(f"--thresholds: {exc}") from None


def parse_ttl(value: str) -> int:
    """``--ttl`` of ``reserve``: a duration (``90s``, ``15m``, ``1h``) from 1 s to 1 day, in seconds."""
    try:
        seconds = int(parse_duration(value).total_seconds())
    except ValueError as exc:
        raise BudgetError(f"--ttl: {exc}") from None
    if seconds > MAX_TTL_SECONDS:
        raise BudgetError(f"--ttl: {value!r} is longer than a day (1d at most)")
    return seconds


def check_text(what: str, value: str, longest: int) -> str:
    """``value`` stripped, when it is 1 to ``longest`` characters without control characters."""
    text = value.strip()
    if not text or len(text) > longest or not _TEXT.search(text):
        raise BudgetError(f"{what} {value!r} must be 1 to {longest} characters, none of them a control")
    return text


def project_name(org: str, slug: str) -> str:
    """A project as operators name it: ``slug`` in the default organization, else ``org/slug``."""
    return slug if org == DEFAULT_ORG else f"{org}/{slug}"


# --- What the operations return ---


@dataclass(frozen=True)
class Budget:
    """A budget as ``list`` and ``show`` present it: its row of the current period, or its latest."""

    id: int
    project: str
    resource_type: str
    period: str
    period_start: datetime
    period_end: datetime | None
    allocated: Decimal
    used: Decimal
    reserved: Decimal
    remaining: Decimal
    unit: str
    enforcement: str
    thresholds: list[int]
    auto_reset: bool
    #: False when the row's period has ended and the next has not opened yet.
    current: bool
    #: Reservations held on this row.
    held: int


@dataclass(frozen=True)
class SetBudget:
    budget: Budget
    created: bool
    #: Thresholds the period's usage reaches, recorded now (each once per period).
    crossed: list[int]


@dataclass(frozen=True)
class Period:
    id: int
    period: str
    period_start: datetime
    period_end: datetime | None
    allocated: Decimal
    used: Decimal
    reserved: Decimal
    remaining: Decimal
    #: The thresholds this period crossed.
    alerts: list[int]


@dataclass(frozen=True)
class Alert:
    threshold: int
    used: Decimal
    allocated: Decimal
    crossed_at: datetime


@dataclass(frozen=True)
class Held:
    reservation_id: str
    client_id: str
    amount: Decimal
    overrun: Decimal
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class BudgetPage:
    budget: Budget
    #: The latest periods, newest first.
    periods: list[Period]
    #: Thresholds crossed in the shown period.
    alerts: list[Alert]
    #: Its held reservations, the next to expire first.
    held: list[Held]


@dataclass(frozen=True)
class Reservation:
    #: ``granted`` now, or ``existing`` (reserved before with this id).
    outcome: str
    reservation_id: str
    client_id: str
    state: str
    amount: Decimal
    overrun: Decimal
    remaining: Decimal
    enforcement: str
    expires_at: datetime


# --- Operations ---


def set_budget(
    database_url: str,
    ref: ProjectRef,
    resource_type: str,
    *,
    period: BudgetPeriod | None = None,
    amount: Decimal | None = None,
    unit: str | None = None,
    soft: bool | None = None,
    thresholds: list[int] | None = None,
    auto_reset: bool | None = None,
    at: datetime | None = None,
) -> SetBudget:
    """Create the budget's row of the period containing ``at`` (now), or change it; see the module
    docstring. ``None`` keeps a stored setting (a new budget needs ``period``, ``amount``, ``unit``)."""
    resource_type = check_text("resource type", resource_type, 255)
    with _connect(database_url) as conn:
        project = _find_project(conn, ref)
        try:
            done = conn.execute(
                queries()["budgets_set"],
                {
                    "project_id": project["id"],
                    "resource_type": resource_type,
                    "period": period.value if period is not None else None,
                    "allocated": amount,
                    "unit": check_text("--unit", unit, 64) if unit is not None else None,
                    "enforcement": None if soft is None else ("soft" if soft else "hard"),
                    "thresholds": thresholds,
                    "auto_reset": auto_reset,
                    "at": at,
                },
            ).fetchone()
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.CheckViolation) as exc:
            raise BudgetError(_refusal(exc, "--period, --amount and --unit")) from None
        assert done is not None  # the function returns one row or raises
        budget = _current(conn, project["id"], resource_type, at)
    return SetBudget(budget=budget, created=bool(done["created"]), crossed=list(done["crossed"] or []))


def list_budgets(
    database_url: str, project: ProjectRef | None = None, at: datetime | None = None
) -> list[Budget]:
    """Every budget (of ``project``), each by its row of the current period, else its latest."""
    with _connect(database_url) as conn:
        project_id = _find_project(conn, project)["id"] if project is not None else None
        rows = conn.execute(
            queries()["budgets_list"], {"project_id": project_id, "resource_type": None, "at": at}
        ).fetchall()
    return [_budget(row) for row in rows]


def show_budget(
    database_url: str, ref: ProjectRef, resource_type: str, at: datetime | None = None
) -> BudgetPage:
    """One budget: its current (or latest) period, its latest periods, that period's alerts and
    held reservations."""
    resource_type = check_text("resource type", resource_type, 255)
    with _connect(database_url) as conn:
        project = _find_project(conn, ref)
        budget = _current(conn, project["id"], resource_type, at)
        periods = conn.execute(
            queries()["budgets_periods"],
            {"project_id": project["id"], "resource_type": resource_type, "limit": PERIODS_SHOWN},
        ).fetchall()
        alerts = conn.execute(queries()["budgets_alerts"], {"budget_id": budget.id}).fetchall()
        held = conn.execute(
            queries()["budgets_held"], {"budget_id": budget.id, "limit": HELD_SHOWN}
        ).fetchall()
    return BudgetPage(
        budget=budget,
        periods=[
            Period(
                id=row["id"],
                period=row["period"],
                period_start=row["period_start"],
                period_end=row["period_end"],
                allocated=row["allocated_amount"],
                used=row["used_amount"],
                reserved=row["reserved_amount"],
                remaining=row["remaining"],
                alerts=list(row["alerts"]),
            )
            for row in periods
        ],
        alerts=[
            Alert(
                threshold=row["threshold"],
                used=row["used_amount"],
                allocated=row["allocated_amount"],
                crossed_at=row["crossed_at"],
            )
            for row in alerts
        ],
        held=[
            Held(
                reservation_id=str(row["id"]),
                client_id=row["client_id"],
                amount=row["amount"],
                overrun=row["overrun"],
                created_at=row["created_at"],
                expires_at=row["expires_at"],
            )
            for row in held
        ],
    )


def reserve(
    database_url: str,
    ref: ProjectRef,
    resource_type: str,
    amount: Decimal,
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    client_id: str | None = None,
    at: datetime | None = None,
) -> Reservation:
    """Reserve ``amount`` as ``POST /v1/budgets/reservations`` does (the same SQL function).

    ``client_id`` is the idempotency key (a new random one when None): reserving again with it
    returns the first reservation. A refusal (``budget_exceeded``, ``no_budget``) raises
    :class:`ReservationRefused`; nothing is held then.
    """
    resource_type = check_text("resource type", resource_type, 255)
    client_id = check_text("--id", client_id, 255) if client_id is not None else str(uuid.uuid4())
    with _connect(database_url) as conn:
        project = _find_project(conn, ref)
        row = conn.execute(
            queries()["budgets_reserve"],
            {
                "project_id": project["id"],
                "org": None,
                "slug": None,
                "client_id": client_id,
                "resource_type": resource_type,
                "amount": amount,
                "ttl_seconds": ttl_seconds,
                "at": at,
            },
        ).fetchone()
    assert row is not None  # the function returns one row
    name = project_name(ref.org, ref.slug)
    if row["outcome"] == "no_budget":
        raise ReservationRefused(
            f"no_budget: {name} has no budget for {resource_type} now; "
            f"`hookyard budgets set {name} {resource_type} --period P --amount N --unit U` sets one"
        )
    if row["outcome"] == "budget_exceeded":
        raise ReservationRefused(
            f"budget_exceeded: {name} {resource_type} has {decimal_text(row['remaining'])} left, "
            f"{decimal_text(amount)} asked (hard budget); nothing reserved"
        )
    return Reservation(
        outcome=row["outcome"],
        reservation_id=str(row["reservation_id"]),
        client_id=client_id,
        state=row["state"],
        amount=row["reserved"],
        overrun=row["overrun"],
        remaining=row["remaining"],
        enforcement=row["enforcement"],
        expires_at=row["expires_at"],
    )


# --- Helpers ---


def _current(
    conn: psycopg.Connection[dict[str, Any]], project_id: int, resource_type: str, at: datetime | None
) -> Budget:
    row = conn.execute(
        queries()["budgets_list"], {"project_id": project_id, "resource_type": resource_type, "at": at}
    ).fetchone()
    if row is None:
        raise BudgetNotFound(
            f"no budget for {resource_type}; `hookyard budgets set PROJECT {resource_type} --period P "
            "--amount N --unit U` sets one"
        )
    return _budget(row)


def _budget(row: Row) -> Budget:
    return Budget(
        id=row["id"],
        project=project_name(row["org"], row["project"]),
        resource_type=row["resource_type"],
        period=row["period"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        allocated=row["allocated_amount"],
        used=row["used_amount"],
        reserved=row["reserved_amount"],
        remaining=row["remaining"],
        unit=row["unit"],
        enforcement=row["enforcement"],
        thresholds=list(row["thresholds"]),
        auto_reset=bool(row["auto_reset"]),
        current=bool(row["current"]),
        held=int(row["held"]),
    )


def _refusal(exc: psycopg.Error, needed: str) -> str:
    message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
    return message.replace("give its period, amount and unit", f"give {needed}")
