"""Building events and messages the way the producers do, for store and worker tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from contracts import EventEnvelope, EventFields, Source, encode_batch
from contracts.topology import EVENTS
from ops.broker import ConfirmingPublisher


def github_event(
    delivery_id: str | None = None, payload: str = '{"action": "opened"}', **fields: str
) -> EventEnvelope:
    return EventEnvelope(
        source=Source.GITHUB,
        delivery_id=delivery_id or f"it-{uuid.uuid4()}",
        event_type="issues",
        action="opened",
        received_at=datetime.now(UTC),
        payload=payload,
        fields=EventFields(**fields),
    )


#: A payload PostgreSQL refuses whatever the worker does: not JSON (a message no producer of
#: ours makes, but an old or foreign one could).
UNSTORABLE_PAYLOAD = '{"body": not json}'
#: Valid JSON that jsonb cannot hold (it has no NUL character): stored with its exact text kept.
NUL_PAYLOAD = '{"body": "nul \\u0000 inside", "k\\u0000y": ["\\u0000"]}'


def publish(amqp_url: str, body: bytes, queue: str = EVENTS.queue) -> None:
    """Publish one raw message with a broker confirm, the way the producers do."""
    with ConfirmingPublisher(amqp_url) as broker:
        broker.publish(queue, body)


def publish_events(amqp_url: str, events: list[EventEnvelope]) -> str:
    message_id = str(uuid.uuid4())
    publish(amqp_url, encode_batch(events, message_id))
    return message_id


def stored_count(conn: psycopg.Connection[Any], delivery_ids: list[str]) -> int:
    row = conn.execute("SELECT count(*) FROM events WHERE delivery_id = ANY(%s)", (delivery_ids,)).fetchone()
    return int(row[0]) if row else 0


def dead_letters_for(conn: psycopg.Connection[Any], **where: str) -> list[tuple[Any, ...]]:
    column, value = next(iter(where.items()))
    assert column in {"delivery_id", "message_id"}
    return conn.execute(
        f"SELECT reason, detail, attempts, body FROM dead_letters WHERE {column} = %s",  # noqa: S608 - column is whitelisted
        (value,),
    ).fetchall()
