"""The ``events`` queue message: a batch of verified deliveries, schema-versioned.

One broker message carries one or more events: a ``/v1`` array arrives as one batch, and the
producer may coalesce concurrent requests into one message. Workers store each event on its own
merits, so one unstorable event never costs its neighbours their place.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.topology import EVENTS, Route

#: Bumped whenever a change to these models could not be read by the previous worker.
SCHEMA_VERSION: Literal[1] = 1


class Source(StrEnum):
    GITHUB = "github"
    SLACK = "slack"
    LINEAR = "linear"
    DEPLOYMENT = "deployment"
    SENTRY = "sentry"  # kept for check-ins stored before checks were built
    CLOUDEVENTS = "cloudevents"  # CloudEvents that no meter takes


class EventFields(BaseModel):
    """The per-source fields people query, lifted out of the payload by the producer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str | None = None  # github: repository.full_name
    actor: str | None = None  # github sender.login, slack user, linear actor.id
    team: str | None = None  # slack team_id, linear team id
    channel: str | None = None  # slack channel
    entity_type: str | None = None  # linear: Issue, Comment, Project…
    entity_id: str | None = None  # linear: data.id
    project: str | None = None  # deployment project
    service: str | None = None  # deployment
    environment: str | None = None  # deployment
    version: str | None = None  # deployment
    status: str | None = None  # deployment


class EventEnvelope(BaseModel):
    """One verified delivery. ``payload`` is the JSON text of the body exactly as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    delivery_id: str = Field(min_length=1, max_length=255)
    event_type: str = Field(min_length=1, max_length=255)
    action: str | None = Field(default=None, max_length=255)
    received_at: AwareDatetime
    payload: str
    fields: EventFields = EventFields()
    #: The project the event belongs to, when the producer knows it (a project key, a linked
    #: webhook source, a known slug). A ``fields.project`` slug without an id is resolved, or
    #: created as ``discovered``, by the worker. Optional, so messages of older producers read
    #: the same; a worker older than this field refuses it (upgrade workers first).
    project_id: int | None = Field(default=None, ge=1)


class EventBatch(BaseModel):
    """The body of one ``events`` queue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    events: list[EventEnvelope] = Field(min_length=1)


def encode_message(route: Route, argument: dict[str, Any], message_id: str | None = None) -> bytes:
    """The Dramatiq message for ``route``'s actor whose one argument is ``argument``.

    Producers publish it without running Dramatiq's broker; it is encoded as Dramatiq would
    (and decoded by its worker). Without ``message_id`` a fresh one is made.
    """
    return orjson.dumps(
        {
            "queue_name": route.queue,
            "actor_name": route.actor,
            "args": [argument],
            "kwargs": {},
            "options": {},
            "message_id": message_id or str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000),
        }
    )


def encode_items(
    route: Route, field: str, items: Sequence[BaseModel], message_id: str | None = None
) -> bytes:
    """The message of a batch consumer: ``{"schema_version": 1, field: [item, ...]}``."""
    return encode_message(
        route,
        {
            "schema_version": SCHEMA_VERSION,
            field: [item.model_dump(mode="json", exclude_defaults=True) for item in items],
        },
        message_id,
    )


def encode_batch(events: Sequence[EventEnvelope], message_id: str | None = None) -> bytes:
    """The Dramatiq message for ``store_events`` carrying ``events``, as Dramatiq would encode it.

    Producers publish it, the worker writes it into a dead letter so one event can be replayed
    alone, and tools pre-fill queues with it. Without ``message_id`` a fresh one is made.
    """
    return encode_items(EVENTS, "events", events, message_id)
