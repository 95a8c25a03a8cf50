"""Meter and exchange-rate operations behind ``hookyard meters`` and ``hookyard rates``.

Each operation opens its own connection, runs in one transaction and returns plain dataclasses;
every refusal is a :class:`MeterError` whose message is one line for an operator. A meter is
validated by :meth:`contracts.usage.Meter.build`, the rules the web process applies CloudEvents
with, so a meter stored is one it can run; the parsers here only put the option's name in front
of that one-line message. Currencies are checked by :func:`contracts.usage.validate_currency`.

A rate is in force from its ``valid_from`` date until the next rate of its currency (SPEC: usage
is priced by the rate in force on its date). The worker prices a record when it stores it, so a
rate set or replaced later changes no ``cost_cad`` already stored; ``set`` says so when the date
is today or earlier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from psycopg.types.json import Jsonb

from contracts.usage import CAD, Aggregation, Meter, validate_currency
from hookyard.errors import HookyardError
from ops.tenancy import _connect
from schema import queries

#: ``currency_rates.rate_to_cad`` is numeric(20, 10): at most 10 digits each side of the point.
RATE_INTEGER_DIGITS: Final = 10
RATE_PLACES: Final = 10

_GROUP_BY = re.compile(r"^(?P<name>[^=]+)=(?P<path>.+)$", re.DOTALL)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Row = dict[str, Any]


class MeterError(HookyardError):
    """A meters or rates command was refused; the message says why in one line."""


class MeterNotFound(MeterError):
    """No meter has that slug."""


# --- Pure parsing ---


def parse_group_by(values: Iterable[str]) -> dict[str, str]:
    """``--group-by name=path`` options as a mapping; a name given twice is refused (the second
    would silently replace the first)."""
    groups: dict[str, str] = {}
    for value in values:
        found = _GROUP_BY.match(value)
        if found is None:
            raise MeterError(f"--group-by {value!r}: expected NAME=PATH, e.g. model='$.model'")
        name, path = found["name"].strip(), found["path"].strip()
        if name in groups:
            raise MeterError(f"--group-by: {name!r} is given twice; a group-by name takes one path")
        groups[name] = path
    return groups


def build_meter(  # noqa: PLR0917 - the CLI's arguments, in its order
    slug: str,
    event_type: str,
    resource_type: str,
    unit: str,
    aggregation: str,
    value_property: str | None,
    group_by: Mapping[str, str],
) -> Meter:
    """The meter contracts.usage builds from these options, or a :class:`MeterError` with its reason."""
    try:
        return Meter.build(
            slug, event_type, resource_type, unit, aggregation.upper(), value_property, group_by
        )
    except ValueError as exc:
        raise MeterError(_one_line(exc)) from None


def parse_currency(value: str, *, settable: bool = True) -> str:
    """An ISO 4217 code, any case given, upper-cased. A ``settable`` one is not CAD: CAD is the
    currency costs are kept in, its rate is always 1."""
    code = value.strip().upper()
    try:
        validate_currency(code)
    except ValueError as exc:
        raise MeterError(_one_line(exc)) from None
    if settable and code == CAD:
        raise MeterError("CAD is the currency costs are kept in: its rate is always 1 and cannot be set")
    return code


def parse_rate(value: str) -> Decimal:
    """A positive decimal that ``currency_rates`` stores exactly: at most 10 digits before the point
    and 10 after (refused rather than rounded, so the rate shown is the rate used)."""
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        raise MeterError(
            f"rate {value!r} is not a number: give CAD per unit of the currency, e.g. 1.40"
        ) from None
    if not rate.is_finite() or rate <= 0:
        raise MeterError(f"rate {value!r} must be a positive number (CAD per unit of the currency)")
    _, digits, exponent = rate.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    significant = list(digits)
    while len(significant) > 1 and significant[-1] == 0 and exponent < 0:  # trailing zeros do not count
        significant.pop()
        exponent += 1
    places = max(0, -exponent)
    integer_digits = max(0, len(significant) + exponent)
    if places > RATE_PLACES or integer_digits > RATE_INTEGER_DIGITS:
        raise MeterError(
            f"rate {value!r} does not fit: at most {RATE_INTEGER_DIGITS} digits before the point "
            f"and {RATE_PLACES} after"
        )
    return rate


def parse_date(value: str, option: str = "--from") -> date:
    """A ``YYYY-MM-DD`` calendar date."""
    if not _DATE.match(value.strip()):
        raise MeterError(f"{option} {value!r}: expected a date as YYYY-MM-DD, e.g. 2026-01-31")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise MeterError(f"{option} {value!r}: {_one_line(exc)}") from None


def today_utc() -> date:
    """The UTC date now: the default ``--from``, and the day ``rates list`` marks rates in force on."""
    return datetime.now(UTC).date()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- What the operations return ---


@dataclass(frozen=True)
class StoredMeter:
    """A meter as stored: its JSONPaths as the operator gave them."""

    id: int
    slug: str
    event_type: str
    resource_type: str
    unit: str
    aggregation: str
    value_property: str | None
    #: Group-by name -> JSONPath.
    group_by: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class Rate:
    currency: str
    valid_from: date
    #: The day the next rate of the currency takes over; None: in force from valid_from on.
    valid_until: date | None
    rate_to_cad: Decimal
    created_at: datetime
    #: Whether this is the rate in force today (UTC).
    in_force: bool


@dataclass(frozen=True)
class SetRate:
    """A rate after ``set``: new, or replacing the rate of that same date."""

    currency: str
    valid_from: date
    rate_to_cad: Decimal
    #: The rate it replaced, or None when the date had none.
    previous: Decimal | None
    #: True when valid_from is today or earlier: usage of those days stored already keeps the
    #: cost it was given (the worker prices a record once, when it stores it).
    retroactive: bool


def _meter(row: Row) -> StoredMeter:
    return StoredMeter(**{**row, "group_by": dict(row["group_by"] or {})})


# --- Operations ---


def create_meter(
    database_url: str, meter: Meter, value_property: str | None, group_by: Mapping[str, str]
) -> StoredMeter:
    """Store a meter validated by :func:`build_meter`; its slug must be new.

    The paths are stored as the operator wrote them (stripped), since that is what ``list`` shows
    and what the web process parses again with contracts.usage.
    """
    params = {
        "slug": meter.slug,
        "event_type": meter.event_type,
        "resource_type": meter.resource_type,
        "unit": meter.unit,
        "aggregation": meter.aggregation.value,
        "value_property": value_property.strip()
        if meter.aggregation is Aggregation.SUM and value_property
        else None,
        "group_by": Jsonb({name: path.strip() for name, path in sorted(group_by.items())}),
    }
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(queries()["meters_insert"], params).fetchone()
    if row is None:
        raise MeterError(
            f"meter {meter.slug} exists already; `hookyard meters delete {meter.slug}` first to redefine it"
        )
    return _meter(row)


def list_meters(database_url: str) -> list[StoredMeter]:
    with _connect(database_url) as conn:
        return [_meter(row) for row in conn.execute(queries()["meters_list"]).fetchall()]


def delete_meter(database_url: str, slug: str) -> StoredMeter:
    """Remove a meter: CloudEvents of its type stop making usage through it within moments (the web
    processes reload their meters on the notification); the usage it made stays."""
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(queries()["meters_delete"], {"slug": slug}).fetchone()
    if row is None:
        raise MeterNotFound(f"no meter {slug}; `hookyard meters list` shows the meters")
    return _meter(row)


def set_rate(
    database_url: str, currency: str, rate: Decimal, valid_from: date, *, today: date | None = None
) -> SetRate:
    """The rate of ``currency`` (validated by :func:`parse_currency`) from ``valid_from`` on, until
    the next date of that currency; a rate already set for that date is replaced."""
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(
            queries()["rates_set"], {"currency": currency, "valid_from": valid_from, "rate": rate}
        ).fetchone()
    assert row is not None  # an upsert always returns its row
    return SetRate(
        currency=row["currency"],
        valid_from=row["valid_from"],
        rate_to_cad=row["rate_to_cad"],
        previous=row["previous"],
        retroactive=valid_from <= (today or today_utc()),
    )


def list_rates(database_url: str, currency: str | None = None, *, today: date | None = None) -> list[Rate]:
    """Every rate (or one currency's), oldest first per currency."""
    with _connect(database_url) as conn:
        rows = conn.execute(
            queries()["rates_list"], {"currency": currency, "today": today or today_utc()}
        ).fetchall()
    return [Rate(**row) for row in rows]
