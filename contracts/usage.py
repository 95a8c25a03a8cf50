"""Usage and budgets: the rules the CloudEvents endpoint, the usage worker and the budget SQL share.

Nothing here reads a clock, a database or the network: every time is given, every result is
returned. Amounts and money are :class:`~decimal.Decimal` from end to end; a float is never
used for either (a JSON number arrives as a float and is converted through its shortest text,
so ``0.1`` is ``Decimal("0.1")``, not ``0.1000000000000000055...``).

CloudEvents (:class:`CloudEventIn`, :func:`parse_media_type`), in OpenMeter's form:

- ``specversion`` is ``"1.0"``; ``id``, ``source`` and ``type`` are 1 to 255 characters;
  ``subject`` names the project (its slug, or ``org/slug``); ``time`` is an RFC 3339 time with an
  offset, or absent (the endpoint then uses the time received); ``data`` is a JSON object, or
  absent. Other attributes are CloudEvents extensions and are kept (``model_extra``), except
  ``data_base64``: binary data cannot be metered, so an event carrying it is refused.
- ``(source, id)`` is the event's identity (SPEC). Both may contain any character, ``:``
  included, so a ledger key built from them must encode them unambiguously (a JSON array, or a
  length prefix), never by joining them with a separator.
- The media types are ``application/cloudevents+json``, ``application/cloudevents-batch+json``
  and ``application/json``, compared without regard to case, with at most a ``charset=utf-8``
  parameter (quoted or not, any case); any other charset or parameter is refused.

Meters (:class:`Meter`, :func:`meter_amount`, :func:`meter_groups`) turn one CloudEvent into one
usage record per meter whose ``event_type`` equals the event's ``type``:

- ``COUNT``: every event is 1.
- ``SUM``: the value at ``value_property`` in ``data``: a JSON number, or a string in JSON's
  number syntax (``"12.5"``, ``"1e3"``; no blanks, no ``+``, no ``NaN``). Booleans, other strings,
  objects, arrays, a missing value, ``NaN`` and infinities give ``None``: the event is
  *unmetered* for that meter (counted in a metric and kept in ``events``). So are negative
  values (usage is consumption; a negative record would let a project key hand its own budget
  back), magnitudes of :data:`AMOUNT_LIMIT` or more, and values with more than
  :data:`AMOUNT_MAX_PLACES` decimal places (trailing zeros aside): these bounds keep every later
  exact sum small. Within them the value is exact: it is never rounded here.
- Group-by values are the strings at their paths (numbers, booleans, objects and arrays as
  compact JSON text, ``true``, ``12.5``, ``{"a":1}``); a missing or ``null`` value is absent.
- Paths are a safe subset of JSONPath (RFC 9535): ``$`` followed by one or more segments,
  ``.name`` (a letter or ``_``, then letters, digits or ``_``), ``[0]`` (an index from 0, no
  leading zeros) or ``['any key']`` / ``["any key"]`` (RFC 9535 escapes). No wildcards, filters,
  slices, unions, negative indices or recursive descent: each path names at most one value, and
  evaluating it costs one step per segment. At most :data:`MAX_PATH_SEGMENTS` segments,
  :data:`MAX_PATH_LENGTH` characters.

Money (:func:`cost_cad`): ``cost_cad`` is the given one when there is one; else ``amount *
unit_cost * rate``, with the rate 1 for ``CAD`` and otherwise the rate in force for that
currency on the usage's date; no unit cost, or no rate, gives ``None`` (cost unknown, not zero).
The product is computed exactly, then rounded once to 6 decimal places (:data:`COST_QUANTUM`)
half to even (banker's rounding: no bias upwards over many records); a given cost is rounded the
same way. The stored ``cost_cad`` column therefore needs a scale of 6 (the seed's
``DECIMAL(10,4)`` would round a second time).

Budget periods (:func:`period_bounds`) are half-open ``[start, end)`` in UTC: ``daily`` the UTC
day, ``weekly`` the ISO week from Monday 00:00 UTC, ``monthly`` the calendar month, ``total``
from the budget's anchor (its creation; :data:`TOTAL_START` without one) with no end. The next
period starts at the very instant the previous one ends, so each instant is in exactly one period.
The seed's ``period_end DATE`` compared with ``BETWEEN`` would put the boundary day in two
periods; store the bounds as ``timestamptz`` and compare ``start <= recorded_at < end``
(``end`` ``NULL`` or ``'infinity'`` for ``total``).

Thresholds (:func:`crossed_thresholds`): threshold ``t`` (a percentage, 1 to 1000) is crossed by
the increment that takes ``used_amount`` from ``before`` to ``after`` when ``before < allocated *
t / 100 <= after``: reaching the level exactly crosses it, and since ``used_amount`` only grows,
each threshold is crossed by exactly one increment per budget period, however the usage is cut
into pieces. A budget of 0 allows nothing, so the first increment that makes usage positive
crosses every threshold at once (any usage is over any percentage of nothing). A budget created
with usage already in its period (below) crosses the thresholds from 0 to that sum at creation.
``budget_alerts`` should still be unique per (budget, period start, threshold) with ``ON CONFLICT
DO NOTHING``, so a retried transaction cannot alert twice.

Which budgets a usage record falls in (the worker's increment and the creation's sum must use
the same rule): the budget's project and ``resource_type`` equal the record's, and
``period_start <= recorded_at < period_end``. A record whose ``unit`` equals the budget's adds its
``amount``; when the budget's unit is ``CAD`` and the record's is not, the record adds its
``cost_cad`` (a record without a cost adds nothing); any other record adds nothing.

How usage moves ``used_amount`` exactly once per record (the worker):

1. The usage actor stores records through :class:`workers.ledger.LedgerStore`: each record's key
   (a CloudEvent's ``(source, id)`` with the meter's slug, as one event makes one record per
   meter; a ``/v1/usage`` body's project and ``id``) is claimed in ``event_keys`` in the same
   transaction that writes it, and only records whose claim is new are inserted.
2. In that same transaction, and only for the records inserted now, the worker adds each
   budget's share (summed per budget, rule above) with one ``UPDATE resource_budgets SET
   used_amount = used_amount + delta``, budgets taken in id order so concurrent batches never
   deadlock. It sums the amounts as stored (``RETURNING`` of the insert), so the budget moves by
   exactly what the rows hold after the column's rounding. For :func:`crossed_thresholds`,
   ``after`` is the ``used_amount`` the ``UPDATE`` returns and ``before`` is ``after - delta``
   (both read from the locked row, so concurrent increments never see the same ``before``).
3. Commit, then acknowledge. A redelivered record finds its claim and writes nothing, so it
   moves no budget; a failed transaction rolls back the claim, the row and the increment
   together. The seed's ``BEFORE INSERT`` trigger is not used: it refused usage over budget
   (SPEC: usage is a fact, always stored), used ``CURRENT_DATE`` instead of the record's time, and
   only knew daily budgets. A trigger doing step 2 would be correct too, being in the same
   transaction; refusing is what reservations are for.

How a record that lands in a period with no budget row yet is counted (budget creation):

- Whoever creates a budget row (``hookyard budgets set``, the scheduler opening the next period
  of an ``auto_reset`` budget, a reservation opening a period) inserts it with ``used_amount`` =
  the sum, by the rule above, of the ``resource_usage`` already stored in its period, in one
  ``INSERT ... SELECT`` statement (on conflict it may change the budget's settings, never its
  ``used_amount``). The worker never creates budget rows: its ``UPDATE`` simply matches none.
- Without a lock, a usage transaction and a creation that overlap could each miss the other (the
  creation's sum does not see the uncommitted record; the worker's ``UPDATE`` does not see the
  uncommitted budget), and the record would be counted nowhere. So both take a transaction
  advisory lock on ``(project_id, hashtext(resource_type))``: the worker
  ``pg_advisory_xact_lock_shared`` (workers do not block each other), in key order, after
  inserting its records and before its ``UPDATE``; the creation ``pg_advisory_xact_lock`` before
  its ``INSERT ... SELECT``. Under ``READ COMMITTED`` (each statement takes a fresh snapshot),
  whichever commits second sees what the first committed: the record is counted once, by the
  ``UPDATE`` when the budget existed first, by the sum otherwise.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.ingest import PROJECT_NAME

# --- CloudEvents ------------------------------------------------------------------------------

#: The content types ``POST /api/v1/events`` takes: one event, a batch, or either as plain JSON.
CLOUDEVENT_MEDIA_TYPES = (
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
)


class CloudEventIn(BaseModel):
    """One CloudEvent in the JSON format (specversion 1.0), as OpenMeter ingests it.

    Extension attributes are kept in ``model_extra``; ``data_base64`` is refused.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=255)
    source: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=255)
    subject: str = Field(pattern=PROJECT_NAME, description="Project slug (or org/slug)")
    time: AwareDatetime | None = None
    datacontenttype: str | None = Field(default=None, max_length=255)
    data: dict[str, Any] | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        # pydantic would read a number as Unix time; CloudEvents times are RFC 3339 strings
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("time must be an RFC 3339 string")
        return value

    @model_validator(mode="after")
    def _no_binary_data(self) -> CloudEventIn:
        if self.model_extra and "data_base64" in self.model_extra:
            raise ValueError("data_base64 is not accepted: usage data must be a JSON object in data")
        return self


def parse_media_type(content_type: str | None) -> str | None:
    """The media type of a ``Content-Type`` header, lowercased, when it is one of
    :data:`CLOUDEVENT_MEDIA_TYPES` with no parameter but ``charset=utf-8``; else ``None``."""
    if content_type is None:
        return None
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in CLOUDEVENT_MEDIA_TYPES:
        return None
    for parameter in parameters.split(";"):
        if not parameter.strip():
            continue  # RFC 9110 allows empty parameters ("application/json;")
        name, equals, value = parameter.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not equals or name.strip().lower() != "charset" or value.lower() != "utf-8":
            return None
    return media_type


# --- meters -----------------------------------------------------------------------------------


class Aggregation(StrEnum):
    """How a meter turns events into amounts (OpenMeter's names)."""

    COUNT = "COUNT"
    SUM = "SUM"


#: A path as :func:`parse_json_path` returns it: member names and array indices.
JsonPath = tuple[str | int, ...]
MAX_PATH_SEGMENTS = 32
MAX_PATH_LENGTH = 512
#: Meter slugs: the same shape as project slugs.
METER_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Group-by names: keys of ``resource_usage.metadata``.
GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_GROUP_BY = 16
#: SUM amounts are below this (a quadrillion units of anything, per event).
AMOUNT_LIMIT = Decimal(10) ** 15
#: SUM amounts have at most this many decimal places.
AMOUNT_MAX_PLACES = 18

_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "/": "/", "\\": "\\"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_PATH_HELP = "supported: $.name, $.a.b, $.items[0], $['any key']"
#: JSON's number syntax, for SUM values sent as strings.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_MAX_PLACES)


def parse_json_path(path: str) -> JsonPath:
    """``$.tokens`` -> ``("tokens",)``; ``$.items[0].qty`` -> ``("items", 0, "qty")``;
    ``$['weird key']`` -> ``("weird key",)``.

    Surrounding blanks are ignored. Raises ``ValueError`` with a one-line message for anything
    outside the subset described in the module docstring.
    """
    text = path.strip()
    if len(text) > MAX_PATH_LENGTH:
        raise _path_error(path, f"longer than {MAX_PATH_LENGTH} characters")
    if not text.startswith("$"):
        raise _path_error(path, "a path starts with $")
    segments: list[str | int] = []
    position = 1
    while position < len(text):
        if text.startswith("..", position):
            raise _path_error(path, "recursive descent (..) is not supported")
        if text[position] == ".":
            match = _MEMBER_NAME.match(text, position + 1)
            if match is None:
                raise _path_error(
                    path, f"a member name is expected at {position + 1} (quote others: $['a-b'])"
                )
            segments.append(match[0])
            position = match.end()
        elif text[position] == "[":
            segment, position = _bracket(path, text, position + 1)
            segments.append(segment)
        else:
            raise _path_error(path, f"unexpected {text[position]!r} at {position}")
    if not segments:
        raise _path_error(path, "a path names a value inside data ($ alone is the whole object)")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise _path_error(path, f"more than {MAX_PATH_SEGMENTS} segments")
    return tuple(segments)


def _bracket(path: str, text: str, position: int) -> tuple[str | int, int]:
    """The segment of a ``[...]`` whose content starts at ``position``, and the position after ``]``."""
    segment: str | int
    if position < len(text) and text[position] in "'\"":
        segment, position = _quoted(path, text, position)
    else:
        match = _INDEX.match(text, position)
        if match is None:
            found = text[position : position + 1]
            why = {
                "*": "wildcards are not supported",
                "?": "filters are not supported",
                "-": "negative indices are not supported",
                ":": "slices are not supported",
            }.get(found, f"an index or a quoted name is expected at {position}")
            raise _path_error(path, why)
        segment, position = int(match[0]), match.end()
    if text[position : position + 1] != "]":
        why = {":": "slices are not supported", ",": "unions are not supported"}.get(
            text[position : position + 1], f"']' is expected at {position}"
        )
        raise _path_error(path, why)
    return segment, position + 1


def _quoted(path: str, text: str, position: int) -> tuple[str, int]:
    """The string literal opening at ``position`` (RFC 9535 rules) and the position after it."""
    quote = text[position]
    chars: list[str] = []
    position += 1
    while position < len(text):
        char = text[position]
        if char == quote:
            return "".join(chars), position + 1
        if char < " ":
            raise _path_error(path, f"a control character in a name at {position} must be escaped")
        if char != "\\":
            chars.append(char)
            position += 1
            continue
        escaped = text[position + 1 : position + 2]
        if escaped == quote:
            chars.append(quote)
            position += 2
        elif escaped in _ESCAPES:
            chars.append(_ESCAPES[escaped])
            position += 2
        elif escaped == "u":
            code, position = _unicode_escape(path, text, position)
            chars.append(code)
        else:
            raise _path_error(path, f"invalid escape at {position}")
    raise _path_error(path, "unterminated quoted name")


def _unicode_escape(path: str, text: str, position: int) -> tuple[str, int]:
    """``\\uXXXX`` (or a surrogate pair of them) at ``position``: the character and the position after."""
    code = _hex4(path, text, position)
    position += 6
    if 0xDC00 <= code <= 0xDFFF:
        raise _path_error(path, f"a lone low surrogate at {position - 6}")
    if 0xD800 <= code <= 0xDBFF:
        low = _hex4(path, text, position) if text.startswith("\\u", position) else -1
        if not 0xDC00 <= low <= 0xDFFF:
            raise _path_error(path, f"a high surrogate without its low half at {position - 6}")
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        position += 6
    return chr(code), position


def _hex4(path: str, text: str, position: int) -> int:
    match = _HEX4.fullmatch(text, position + 2, position + 6)
    if match is None:
        raise _path_error(path, f"\\u needs four hex digits at {position}")
    return int(match[0], 16)


def _path_error(path: str, why: str) -> ValueError:
    return ValueError(f"unsupported JSONPath {path!r}: {why}; {_PATH_HELP}")


def json_path_value(data: Any, path: JsonPath) -> Any | None:
    """The value at ``path`` in ``data``; ``None`` when a member or index is missing, or a step
    meets something that is not an object (for a name) or an array (for an index)."""
    node = data
    for segment in path:
        if isinstance(segment, str):
            if not isinstance(node, Mapping) or segment not in node:
                return None
            node = node[segment]
        else:
            if isinstance(node, str | bytes) or not isinstance(node, Sequence):
                return None
            if not 0 <= segment < len(node):
                return None
            node = node[segment]
    return node


@dataclass(frozen=True)
class Meter:
    """One meter: which events it takes, what it counts, and what it groups by."""

    slug: str
    event_type: str
    resource_type: str
    unit: str
    aggregation: Aggregation
    #: SUM: where the amount is in ``data``; COUNT: ``None``.
    value_path: JsonPath | None
    #: Group-by names and their paths, sorted by name.
    group_by: tuple[tuple[str, JsonPath], ...]

    @staticmethod
    def build(  # noqa: PLR0917 - the meters CLI's arguments, in its order
        slug: str,
        event_type: str,
        resource_type: str,
        unit: str,
        aggregation: Aggregation | str,
        value_property: str | None,
        group_by: Mapping[str, str],
    ) -> Meter:
        """A validated meter. Raises ``ValueError`` with a one-line message.

        ``slug`` is a project-slug-shaped name; ``event_type`` 1 to 255 characters, matched
        exactly; ``resource_type`` 1 to 50 and ``unit`` 1 to 20 (the seed's columns), none with
        surrounding blanks. SUM needs ``value_property``, COUNT must not have one. At most
        :data:`MAX_GROUP_BY` group-bys, named like identifiers.
        """
        if METER_SLUG.fullmatch(slug) is None:
            raise ValueError(f"invalid meter slug {slug!r}: lowercase letters, digits, _ and -, up to 64")
        _check_text("event type", event_type, 255)
        _check_text("resource type", resource_type, 50)
        _check_text("unit", unit, 20)
        try:
            kind = Aggregation(aggregation)
        except ValueError:
            raise ValueError(f"invalid aggregation {aggregation!r}: expected COUNT or SUM") from None
        if kind is Aggregation.SUM and value_property is None:
            raise ValueError("a SUM meter needs a value property (e.g. '$.tokens')")
        if kind is Aggregation.COUNT and value_property is not None:
            raise ValueError("a COUNT meter takes no value property: every event counts 1")
        if len(group_by) > MAX_GROUP_BY:
            raise ValueError(f"at most {MAX_GROUP_BY} group-bys, got {len(group_by)}")
        for name in group_by:
            if GROUP_NAME.fullmatch(name) is None:
                raise ValueError(f"invalid group-by name {name!r}: a letter or _, then letters, digits or _")
        return Meter(
            slug=slug,
            event_type=event_type,
            resource_type=resource_type,
            unit=unit,
            aggregation=kind,
            value_path=None if value_property is None else parse_json_path(value_property),
            group_by=tuple(sorted((name, parse_json_path(path)) for name, path in group_by.items())),
        )


def _check_text(what: str, value: str, longest: int) -> None:
    if not value or len(value) > longest or value != value.strip():
        raise ValueError(f"invalid {what} {value!r}: 1 to {longest} characters, no surrounding blanks")


def meter_amount(meter: Meter, data: Mapping[str, Any] | None) -> Decimal | None:
    """The amount one event adds: 1 for COUNT; for SUM the exact value at the meter's path, or
    ``None`` when the event is unmetered (the rules are in the module docstring)."""
    if meter.aggregation is Aggregation.COUNT:
        return Decimal(1)
    if data is None or meter.value_path is None:
        return None
    return _amount(json_path_value(data, meter.value_path))


def _amount(value: Any) -> Decimal | None:
    amount = _decimal(value)
    if amount is None or not amount.is_finite() or amount < 0 or amount >= AMOUNT_LIMIT:
        return None
    with localcontext(_EXACT):
        if amount.quantize(_AMOUNT_QUANTUM) != amount:
            return None  # more decimal places than AMOUNT_MAX_PLACES
    return amount.copy_abs() if amount.is_zero() else amount  # -0 is 0


def _decimal(value: Any) -> Decimal | None:
    """A JSON number, or a string in JSON's number syntax, as a Decimal; ``None`` for anything else."""
    if isinstance(value, bool):  # JSON true is not a number (and bool is an int in Python)
        return None
    if isinstance(value, int):
        # a huge int is refused before Decimal() copies its digits
        return Decimal(value) if abs(value) < AMOUNT_LIMIT else None
    if isinstance(value, float):
        # repr is the shortest text that reads back as this float: 0.1 -> Decimal("0.1")
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _JSON_NUMBER.fullmatch(value):
        return Decimal(value)
    return None


def meter_groups(meter: Meter, data: Mapping[str, Any] | None) -> dict[str, str]:
    """The group-by values of one event, as strings; a missing or ``null`` value is absent."""
    groups: dict[str, str] = {}
    if data is None:
        return groups
    for name, path in meter.group_by:
        value = json_path_value(data, path)
        if value is None:
            continue
        groups[name] = (
            value
            if isinstance(value, str)
            else json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        )
    return groups


# --- money ------------------------------------------------------------------------------------

CAD = "CAD"
#: Costs in CAD are rounded to this, half to even.
COST_QUANTUM = Decimal("0.000001")
#: A cost at or beyond this (in CAD) is an input error, refused before it is rounded.
COST_LIMIT = Decimal(10) ** 18

_CURRENCY = re.compile(r"[A-Z]{3}")
#: Multiplication, addition and quantize are exact in this context (they never round to a
#: precision); it is never used for division, whose results may need infinitely many digits.
_EXACT = Context(
    prec=MAX_PREC,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def validate_currency(code: str) -> str:
    """``code`` when it has the shape of an ISO 4217 code (three uppercase ASCII letters).

    Raises ``ValueError`` otherwise; whether the code is assigned is not checked.
    """
    if _CURRENCY.fullmatch(code) is None:
        raise ValueError(
            f"invalid currency {code!r}: expected an ISO 4217 code, three uppercase letters (CAD, USD)"
        )
    return code


def cost_cad(
    amount: Decimal,
    unit_cost: Decimal | None,
    currency: str,
    rate_to_cad: Decimal | None,
    given_cost_cad: Decimal | None,
) -> Decimal | None:
    """The record's cost in CAD, rounded to 6 places half to even; ``None`` when unknown.

    ``given_cost_cad`` wins. Else ``amount * unit_cost * rate``, exactly, then rounded once: the
    rate is 1 for CAD (``rate_to_cad`` is then ignored), else ``rate_to_cad`` (the rate in force on
    the usage's date); no ``unit_cost`` or no rate gives ``None``. Raises ``ValueError`` for a
    malformed currency, a non-finite input, a rate that is not positive, or a cost of
    :data:`COST_LIMIT` or more.
    """
    validate_currency(currency)
    for value in (amount, unit_cost, rate_to_cad, given_cost_cad):
        if value is not None and not value.is_finite():
            raise ValueError(f"cost inputs must be finite numbers, got {value}")
    if given_cost_cad is not None:
        cost = given_cost_cad
    else:
        rate = Decimal(1) if currency == CAD else rate_to_cad
        if unit_cost is None or rate is None:
            return None
        if rate <= 0:
            raise ValueError(f"a rate to CAD must be positive, got {rate} for {currency}")
        with localcontext(_EXACT):
            cost = amount * unit_cost * rate
    if abs(cost) >= COST_LIMIT:  # checked first: rounding 1E+999999 to 6 places would need a million digits
        raise ValueError(f"cost out of range: {cost}")
    with localcontext(_EXACT):
        rounded = cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
    return rounded.copy_abs() if rounded.is_zero() else rounded  # -0.000000 is 0.000000


# --- budget periods ---------------------------------------------------------------------------


class BudgetPeriod(StrEnum):
    """``resource_budgets.budget_period``."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    TOTAL = "total"


#: The start of a ``total`` period without an anchor: before any usage.
TOTAL_START = datetime.min.replace(tzinfo=UTC)
#: ``--thresholds`` when none is given (SPEC).
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLD = 1000

_THRESHOLD = re.compile(r"[0-9]{1,4}")


def period_bounds(
    period: BudgetPeriod, at: datetime, *, anchor: datetime | None = None
) -> tuple[datetime, datetime | None]:
    """``[start, end)`` of the ``period`` containing ``at``, both in UTC; ``end`` is ``None``
    (no end) for ``total``.

    ``daily``: the UTC day. ``weekly``: the ISO week, Monday 00:00 UTC to the next Monday.
    ``monthly``: the calendar month, first day 00:00 UTC to the next month's. ``total``:
    ``anchor`` (the budget's creation) or :data:`TOTAL_START`, with no end. ``anchor`` is ignored
    by the other periods. Raises ``ValueError`` when ``at`` or ``anchor`` has no time zone, or
    when ``at`` is before ``anchor`` (no ``total`` period contains it).
    """
    period = BudgetPeriod(period)
    at = _utc(at, "at")
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if period is BudgetPeriod.DAILY:
        return day, day + timedelta(days=1)
    if period is BudgetPeriod.WEEKLY:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if period is BudgetPeriod.MONTHLY:
        first = day.replace(day=1)
        following = (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
        return first, following
    start = TOTAL_START if anchor is None else _utc(anchor, "anchor")
    if at < start:
        raise ValueError(f"{at.isoformat()} is before the budget's anchor {start.isoformat()}")
    return start, None


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"50,80,100"`` -> ``(50, 80, 100)``: whole percentages from 1 to 1000, comma-separated,
    blanks around each allowed; returned sorted, repeats dropped. Raises ``ValueError`` with a
    one-line message otherwise (an empty list included)."""
    values: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        if _THRESHOLD.fullmatch(item) is None or not 1 <= int(item) <= MAX_THRESHOLD:
            raise ValueError(
                f"invalid thresholds {text!r}: expected whole percentages from 1 to {MAX_THRESHOLD}, "
                "separated by commas (50,80,100)"
            )
        values.add(int(item))
    return tuple(sorted(values))


def crossed_thresholds(
    thresholds: Sequence[int], allocated: Decimal, before: Decimal, after: Decimal
) -> list[int]:
    """The thresholds the increment from ``before`` to ``after`` crosses, ascending, each once.

    ``t`` is crossed when ``before < allocated * t / 100 <= after`` (compared exactly, without
    dividing). With ``allocated`` 0, every threshold is crossed when ``before <= 0 < after``.
    Raises ``ValueError`` for a negative or non-finite ``allocated``, or non-finite usage.
    """
    for value in (allocated, before, after):
        if not value.is_finite():
            raise ValueError(f"budget amounts must be finite numbers, got {value}")
    if allocated < 0:
        raise ValueError(f"an allocated amount cannot be negative, got {allocated}")
    levels = sorted(set(thresholds))
    if after <= before:
        return []
    if allocated == 0:
        return levels if before <= 0 < after else []
    with localcontext(_EXACT):
        low, high = before.scaleb(2), after.scaleb(2)  # * 100, exactly
        return [t for t in levels if low < allocated * t <= high]
