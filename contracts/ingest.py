"""Bodies of the ``/v1/*`` endpoints. Each endpoint takes one object or an array of them."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)

#: A project named in a body: its slug in the default organization, or ``org/slug``.
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}(/[a-z0-9][a-z0-9_-]{0,63})?$"


class DeploymentStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class DeploymentIn(BaseModel):
    """A deployment event from a pipeline. ``id`` is the client's idempotency key."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    service: str = Field(min_length=1, max_length=255)
    environment: str = Field(min_length=1, max_length=255)
    version: str = Field(min_length=1, max_length=255)
    status: DeploymentStatus
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); defaults to the project key's own project",
    )
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    commit_sha: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=2048)


class ErrorLevel(StrEnum):
    """Sentry's levels."""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"


class FrameIn(BaseModel):
    """One stack frame of a ``/v1/errors`` report; line numbers never take part in grouping."""

    model_config = ConfigDict(extra="allow")

    filename: str | None = Field(default=None, max_length=1024)
    function: str | None = Field(default=None, max_length=1024)
    lineno: int | None = Field(default=None, ge=0, le=2**31 - 1)
    in_app: bool | None = None


class ErrorIn(BaseModel):
    """An error report from a service. ``id`` is the client's idempotency key within its project."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    message: str = Field(min_length=1, max_length=65_536)
    service: str | None = Field(default=None, max_length=255)
    environment: str | None = Field(default=None, max_length=255)
    release: str | None = Field(default=None, max_length=255)
    level: ErrorLevel = ErrorLevel.ERROR
    exception_type: str | None = Field(default=None, max_length=1024)
    frames: list[FrameIn] = Field(default_factory=list, max_length=500)
    tags: dict[str, str] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None
    fingerprint: list[str] | None = Field(
        default=None, min_length=1, max_length=50, description="Replaces the computed grouping"
    )


class InstanceIn(BaseModel):
    """The process a heartbeat comes from."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    port: int | None = Field(default=None, ge=0, le=65535)


class HeartbeatSignal(StrEnum):
    OK = "ok"
    START = "start"
    FAIL = "fail"


class HeartbeatIn(BaseModel):
    """A heartbeat from one instance of a service. ``id`` is the client's idempotency key."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    instance: InstanceIn
    sent_at: AwareDatetime
    service: str = Field(
        default="default", pattern=r"^[a-z0-9_-]{1,100}$", description="The check this instance reports for"
    )
    signal: HeartbeatSignal = HeartbeatSignal.OK
    cpu_percent: float | None = Field(default=None, ge=0)
    memory_mb: float | None = Field(default=None, ge=0)
    metrics: dict[str, float] = Field(default_factory=dict, max_length=100)


#: A decimal as /v1/usage takes it: a JSON number, or a string of digits (exact, never a float).
#: The document says what the model enforces: at most 20 integer digits and 10 decimal places.
_DECIMAL_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": -1e20, "exclusiveMaximum": 1e20, "multipleOf": 1e-10},
        {"type": "string", "pattern": r"^-?[0-9]{1,20}(\.[0-9]{1,10})?$"},
    ]
}
DecimalAmount = Annotated[Decimal, WithJsonSchema(_DECIMAL_SCHEMA)]
#: The same, never negative (a unit cost).
NonNegativeAmount = Annotated[
    Decimal,
    Field(ge=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 1e20, "multipleOf": 1e-10},
                {"type": "string", "pattern": r"^[0-9]{1,20}(\.[0-9]{1,10})?$"},
            ]
        }
    ),
]


class UsageIn(BaseModel):
    """A usage record from a service. ``id`` is the client's idempotency key within its project."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200, description="Client-chosen idempotency key")
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    resource_type: str = Field(min_length=1, max_length=255)
    quantity: DecimalAmount = Field(allow_inf_nan=False, max_digits=30, decimal_places=10)
    occurred_at: AwareDatetime
    resource_subtype: str | None = Field(default=None, max_length=255)
    unit: str | None = Field(default=None, max_length=64)
    unit_cost: NonNegativeAmount | None = Field(
        default=None, allow_inf_nan=False, max_digits=30, decimal_places=10
    )
    currency: str = Field(default="CAD", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    cost_cad: DecimalAmount | None = Field(
        default=None, allow_inf_nan=False, max_digits=30, decimal_places=10
    )
    machine: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)


# --- budget reservations (answered from PostgreSQL, see producers/reservations.py) --------------

#: Decimal places of reservation amounts: PostgreSQL's numeric(30, 10).
AMOUNT_PLACES = 10
#: Reservation amounts are below this (a quadrillion units of anything).
AMOUNT_LIMIT = Decimal(10) ** 15
_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
#: 1 to 10 decimal places, not all zeros, written without look-ahead (JSON Schema's regular
#: expressions and Hypothesis both take this): the first non-zero digit at place k + 1.
_NON_ZERO_FRACTION = "|".join(
    f"{'0{' + str(k) + '}' if k else ''}[1-9][0-9]{{0,{AMOUNT_PLACES - 1 - k}}}" for k in range(AMOUNT_PLACES)
)
#: An amount written as a string: a positive decimal below 10^15 with at most 10 decimal places,
#: digits only (no sign, no exponent); leading zeros are allowed.
AMOUNT_PATTERN = rf"^(0*[1-9][0-9]{{0,14}}(\.[0-9]{{1,{AMOUNT_PLACES}}})?|0+\.({_NON_ZERO_FRACTION}))$"
_AMOUNT_TEXT = re.compile(AMOUNT_PATTERN)
#: Text PostgreSQL can hold (no control character, so no NUL) that is not blank once stripped of
#: the whitespace pydantic strips (Unicode White_Space).
TEXT_PATTERN = (
    r"^[^\x00-\x1f\x7f]*"
    r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    r"[^\x00-\x1f\x7f]*$"
)


def parse_amount(value: Any) -> Decimal:
    """A reservation amount: at least ``0.0000000001``, below ``10^15``, exact to 10 places.

    A string must match :data:`AMOUNT_PATTERN` (searched as JSON Schema does) and is taken
    exactly. A JSON number is read through its shortest text (``0.1`` is ``Decimal("0.1")``) and
    rounded half to even to 10 places, as PostgreSQL's column would store it. Booleans, other
    types, non-finite numbers and values out of range raise ``ValueError``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        # pydantic reports a ValueError as a validation error; a TypeError would escape it
        raise ValueError("an amount is a number, or a decimal number written as a string")  # noqa: TRY004
    if isinstance(value, str):
        if _AMOUNT_TEXT.search(value) is None:
            raise ValueError(
                "an amount written as a string is a positive decimal below 10^15 with at most "
                f'{AMOUNT_PLACES} decimal places, digits only ("12.5")'
            )
        return Decimal(value.strip())
    if isinstance(value, int):
        amount = Decimal(value) if abs(value) < AMOUNT_LIMIT else AMOUNT_LIMIT
    elif isinstance(value, float):
        amount = Decimal(repr(value)) if math.isfinite(value) else AMOUNT_LIMIT
    else:
        amount = value
    if not amount.is_finite() or not _QUANTUM <= amount < AMOUNT_LIMIT:
        raise ValueError(f"an amount is at least {_QUANTUM:f} and below 10^15")
    return amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def decimal_text(value: Decimal) -> str:
    """An amount as answers write it: exact, without exponent or trailing zeros (``"90"``, ``"-2.5"``)."""
    return "0" if value.is_zero() else format(value.normalize(), "f")


#: A positive amount, as a JSON number or a decimal string (see :func:`parse_amount`).
Amount = Annotated[
    Decimal,
    PlainValidator(parse_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": float(_QUANTUM), "exclusiveMaximum": float(AMOUNT_LIMIT)},
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ],
            "description": "In the budget's unit: a JSON number (rounded to 10 decimal places) or a "
            'decimal string (exact, at most 10 places), e.g. 12.5 or "12.5"',
        },
        mode="validation",
    ),
]


def _whole(value: Any) -> Any:
    # JSON Schema's integers include 2761.0; strings and booleans stay refused (strict below)
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: An integer as JSON Schema means it: a number without a fractional part, never a string.
WholeNumber = Annotated[int, BeforeValidator(_whole)]


class ReservationIn(BaseModel):
    """``POST /v1/budgets/reservations``: hold ``amount`` of a budget before spending it.

    ``id`` is the client's idempotency key within its project: reserving again with it returns the
    first reservation, whatever the body says now.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(
        min_length=1, max_length=255, pattern=TEXT_PATTERN, description="Client-chosen idempotency key"
    )
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    resource_type: str = Field(
        min_length=1, max_length=255, pattern=TEXT_PATTERN, description="The budget's resource type"
    )
    amount: Amount
    ttl_seconds: WholeNumber = Field(
        default=900,
        ge=1,
        le=86_400,
        strict=True,
        description="Seconds until an unreleased, uncommitted reservation expires and frees its amount",
    )


class CommitIn(BaseModel):
    """``POST /v1/budgets/reservations/<id>/commit``: what was spent, in the budget's unit.

    More than was reserved is accepted while the budget can cover the difference (a soft budget
    always can, recording the overrun); less frees the rest.
    """

    model_config = ConfigDict(extra="forbid")

    amount: Amount
