"""The JSON bodies the HTTP endpoints answer with, as the OpenAPI document publishes them.

The app writes these bodies as plain dicts (a model per answer costs CPU on the ingest path); the
contract test (``tests/integration/test_openapi_contract.py``) checks every answer against these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Accepted(BaseModel):
    """202: RabbitMQ confirmed the persistent message carrying this delivery."""

    delivery_id: str = Field(description="The delivery's identity, as SPEC.md defines it per source")


class AcceptedBatch(BaseModel):
    """202: RabbitMQ confirmed the message carrying every object of a ``/v1`` array, in order."""

    delivery_ids: list[str] = Field(min_length=2, max_length=1000)


class ErrorBody(BaseModel):
    """Every refusal: a stable code and one human sentence. Some codes add fields of their own."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Stable code, for programs")
    detail: str = Field(description="One sentence, for people")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, prefixed with [index] for an array")
    message: str


class ValidationFailed(ErrorBody):
    """422: the ``/v1`` body failed its schema; the batch is refused whole."""

    error: Literal["validation_failed"]
    errors: list[FieldError] = Field(description="Each failing field; empty for an empty or too long array")


class NotReady(ErrorBody):
    """503 from ``/readyz``: the dependencies that did not answer."""

    error: Literal["not_ready"]
    failing: list[Literal["rabbitmq", "postgresql"]] = Field(min_length=1)


class SlackChallenge(BaseModel):
    """200: Slack's ``url_verification`` answered with its ``challenge``, published nowhere."""

    challenge: Any = Field(description="The request's challenge, echoed")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]


#: A decimal amount as answers write it (contracts.ingest.decimal_text): exact, no exponent.
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
ReservationState = Literal["held", "committed", "released", "expired"]


class Reservation(BaseModel):
    """201: the reservation held now, or, for an ``id`` reserved before, that first reservation."""

    reservation_id: UUID = Field(description="The path parameter of commit and release")
    state: ReservationState = Field(description="`held` unless the id was reserved and settled before")
    amount: str = Field(pattern=_DECIMAL, description="The amount reserved")
    remaining: str = Field(
        pattern=_DECIMAL,
        description="allocated - used - reserved of the budget's period now; negative once usage or a "
        "soft budget's overrun passed the allocation",
    )
    overrun: str = Field(pattern=_DECIMAL, description="The part a soft budget granted past its allocation")
    expires_at: datetime = Field(description="When an unsettled reservation expires and frees its amount")


class SettledReservation(BaseModel):
    """200: a reservation committed or released (by this request or an earlier one), or expired."""

    reservation_id: UUID
    state: ReservationState
    committed: str | None = Field(
        default=None, pattern=_DECIMAL, description="The amount committed: usage of the budget's period"
    )
    remaining: str = Field(pattern=_DECIMAL, description="allocated - used - reserved of its period now")
