"""The ``usage`` queue message: usage records, each stored once and counted against budgets.

A record is one amount of one resource used by one project at one time: a ``/v1/usage`` object,
or what one meter makes of one CloudEvent (the web process applies the meters it holds in
memory, so the worker stores facts and never re-derives them). ``(project, usage_id)`` is a
record's identity in the ledger: a CloudEvent's is its meter, ``source`` and ``id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.events import SCHEMA_VERSION, encode_items
from contracts.topology import USAGE


class UsageOrigin(StrEnum):
    CLOUDEVENTS = "cloudevents"  # POST /api/v1/events, through a meter
    V1 = "v1"  # POST /v1/usage


class UsageRecord(BaseModel):
    """One usage fact. Amounts and costs are decimals (strings on the wire), never floats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_id: int | None = Field(default=None, ge=1)
    project: str | None = Field(default=None, max_length=129)
    usage_id: str = Field(min_length=1, max_length=255)
    resource_type: str = Field(min_length=1, max_length=255)
    resource_subtype: str | None = Field(default=None, max_length=255)
    amount: Decimal
    unit: str | None = Field(default=None, max_length=64)
    unit_cost: Decimal | None = None
    currency: str = Field(default="CAD", pattern=r"^[A-Z]{3}$")
    cost_cad: Decimal | None = None
    machine: str | None = Field(default=None, max_length=255)
    recorded_at: AwareDatetime
    received_at: AwareDatetime
    origin: UsageOrigin
    meter_id: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class UsageBatch(BaseModel):
    """The body of one ``usage`` queue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    records: list[UsageRecord] = Field(min_length=1)


def encode_usage(records: Sequence[UsageRecord], message_id: str | None = None) -> bytes:
    """The Dramatiq message for ``store_usage`` carrying ``records``."""
    return encode_items(USAGE, "records", records, message_id)


def cloudevent_identity(source: str, event_id: str) -> str:
    """(``source``, ``id``), the CloudEvent's identity, as one unambiguous string of at most 200.

    ``source`` is length-prefixed, so no two pairs meet in one string whatever colons they hold;
    too long, it is a SHA-256 of both.
    """
    identity = f"{len(source)}:{source}:{event_id}"
    if len(identity) <= 200:
        return identity
    return "sha256:" + hashlib.sha256(f"{len(source)}:{source}:{event_id}".encode()).hexdigest()


def cloudevent_usage_id(meter_id: int, source: str, event_id: str) -> str:
    """The identity of what meter ``meter_id`` made of the CloudEvent (``source``, ``id``)."""
    return f"ce:{meter_id}:{cloudevent_identity(source, event_id)}"
