"""Write event batches to PostgreSQL exactly once, isolating events that can never be stored.

:class:`EventStore` is the ``events`` domain of :class:`workers.ledger.LedgerStore`: the ledger
claim, the shared transaction and the poison fallback are the ledger's; what is the events'
own is the binary COPY into the partitioned ``events`` table, the one-statement path for a
message of one event, keeping the exact text of JSON that jsonb cannot hold, and resolving
the projects that reports name.

The contract of :meth:`EventStore.store`: when it returns, every event of the batch is either
committed in ``events`` (now or by an earlier delivery) or recorded in ``dead_letters`` with
its reason, in one transaction. When it raises :class:`TransientError`, nothing was committed
and the whole batch may be retried; redelivery can never store an event twice, because each
key is claimed in the ``event_keys`` ledger in the same transaction that writes its row, and
only the keys that claim returns as new are written.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
import structlog
from psycopg import pq
from psycopg.adapt import Dumper
from psycopg.postgres import types as postgres_types

from contracts import EventEnvelope, encode_batch
from contracts.topology import EVENTS
from hookyard import metrics
from schema import queries
from workers.ledger import (
    Batch,
    Connection,
    DeadLetter,
    Key,
    LedgerStore,
    Store,
    StoreResult,
    execute_opening,
    resolve_project_names,
)

__all__ = ["Batch", "DeadLetter", "EventStore", "Store", "StoreResult", "jsonb_safe"]

log = structlog.get_logger(__name__)

_FIELD_COLUMNS = (
    "repository",
    "actor",
    "team",
    "channel",
    "entity_type",
    "entity_id",
    "project",
    "service",
    "environment",
    "version",
    "status",
)
#: The per-source field values of an EventFields, in ``_FIELD_COLUMNS`` order.
_field_values = operator.attrgetter(*_FIELD_COLUMNS)
#: Column types of ``copy_events``, in its order.
_COPY_TYPES = [
    "text",
    "text",
    "timestamptz",
    "text",
    "text",
    *(["text"] * len(_FIELD_COLUMNS)),
    "jsonb",
    "int8",
]


class RawJsonb(str):
    """A JSON document that is already text: sent to a jsonb column as is, never re-encoded."""

    __slots__ = ()


class RawJsonbBinaryDumper(Dumper):
    """Binary jsonb is a version byte followed by the JSON text: no parse or dump in Python."""

    format = pq.Format.BINARY
    oid = postgres_types["jsonb"].oid

    def dump(self, obj: object) -> bytes:
        return b"\x01" + str(obj).encode()


#: Why an event's exact body is kept beside a jsonb-safe copy (``events.payload_issue``).
NUL_IN_JSON = "nul_character"


def jsonb_cannot_hold(exc: psycopg.Error) -> bool:
    """PostgreSQL refused a JSON document for a character jsonb cannot hold (``\\u0000``)."""
    return isinstance(exc, psycopg.errors.UntranslatableCharacter)


def without_nul(value: Any) -> Any:
    """``value`` (parsed JSON) with every NUL in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def jsonb_safe(payload: str) -> str:
    """``payload`` with every NUL in its strings and keys replaced by U+FFFD, as JSON text.

    The copy queries like the original: only the characters jsonb cannot hold differ. The
    original goes to ``events.payload_raw``; see migration 0005.
    """
    return orjson.dumps(without_nul(orjson.loads(payload))).decode()


class EventStore(LedgerStore[EventEnvelope]):
    """Stores ``events`` batches through a connection pool; see the module docstring."""

    route = EVENTS

    def key_of(self, item: EventEnvelope) -> Key:
        return (item.source.value, item.delivery_id)

    def received_at(self, item: EventEnvelope) -> datetime:
        return item.received_at

    def replay_body(self, item: EventEnvelope) -> bytes:
        return encode_batch([item])  # replays this event alone

    def prepare(self, items: list[EventEnvelope]) -> list[EventEnvelope]:
        """Events named by project (operator token) get its id, creating ``discovered`` projects.

        Runs before the store transaction, in its own. A name that is not a project and cannot
        become one (an organization that does not exist) keeps no id; the event is stored anyway.
        """
        names = sorted({str(e.fields.project) for e in items if e.project_id is None and e.fields.project})
        if not names:
            return items
        ids = resolve_project_names(self.pool, names)
        return [
            event.model_copy(update={"project_id": ids[event.fields.project]})
            if event.project_id is None and event.fields.project in ids
            else event
            for event in items
        ]

    def insert(self, conn: Connection, items: Sequence[EventEnvelope]) -> list[Key]:
        if len(items) == 1:
            return self._insert_one(conn, items[0])
        fresh = self.claim(conn, items)
        if not fresh:
            return []
        stored = []
        cursor = conn.cursor()
        cursor.adapters.register_dumper(RawJsonb, RawJsonbBinaryDumper)
        with cursor.copy(queries()["copy_events"]) as copy:
            copy.set_types(_COPY_TYPES)
            for event in items:
                source = event.source.value
                key = (source, event.delivery_id)
                if key in fresh:
                    stored.append(key)
                    copy.write_row(
                        (
                            source, event.delivery_id, event.received_at, event.event_type, event.action,
                            *_field_values(event.fields), RawJsonb(event.payload), event.project_id,
                        )
                    )  # fmt: skip
        return stored

    def rescue(
        self, conn: Connection, item: EventEnvelope, refusal: psycopg.Error, result: StoreResult
    ) -> psycopg.Error | None:
        """A body jsonb cannot hold is stored with its exact text beside a jsonb-safe copy.

        It was accepted with a 202, so it must be stored; only what PostgreSQL still refuses
        after that is dead-lettered.
        """
        if not jsonb_cannot_hold(refusal):
            return refusal
        return self.savepoint(
            conn, item, result, lambda c, event: self._insert_one(c, event, raw_issue=NUL_IN_JSON)
        )

    def _insert_one(
        self, conn: Connection, event: EventEnvelope, *, raw_issue: str | None = None
    ) -> list[Key]:
        """Claim and store one event in one statement.

        With ``raw_issue``, the payload is the jsonb-safe copy and the exact text goes beside it.
        """
        params: dict[str, Any] = {
            "source": event.source.value,
            "delivery_id": event.delivery_id,
            "received_at": event.received_at,
            "event_type": event.event_type,
            "action": event.action,
            "payload": event.payload if raw_issue is None else jsonb_safe(event.payload),
            "payload_raw": None if raw_issue is None else event.payload,
            "payload_issue": raw_issue,
            "project_id": event.project_id,
            **{name: getattr(event.fields, name) for name in _FIELD_COLUMNS},
        }
        if not execute_opening(conn, queries()["insert_event"], params):
            return []
        return [(event.source.value, event.delivery_id)]

    def observe(self, items: Sequence[EventEnvelope], result: StoreResult, committed: datetime) -> None:
        by_source = Counter(source for source, _ in result.stored)
        for source, count in by_source.items():
            metrics.EVENTS_STORED.labels(source).inc(count)
        stored_keys = set(result.stored)
        failed_keys = {(letter.source, letter.delivery_id) for letter in result.dead_letters}
        duplicates: Counter[str] = Counter()
        for event in items:  # as received: a repeat inside one message is a duplicate too
            key = (event.source.value, event.delivery_id)
            if key in stored_keys:
                stored_keys.discard(key)  # only its first copy was stored
                metrics.FRESHNESS.observe((committed - event.received_at).total_seconds())
            elif key not in failed_keys:
                duplicates[event.source.value] += 1
        for source, count in duplicates.items():
            metrics.EVENTS_DUPLICATE.labels(source).inc(count)
        for source, delivery_id in result.rescued:
            metrics.EVENTS_RAW_KEPT.labels(source).inc()
            log.warning("event_stored_raw", source=source, delivery_id=delivery_id, issue=NUL_IN_JSON)
