"""Write event batches to PostgreSQL exactly once, isolating events that can never be stored.

The contract of :meth:`EventStore.store`: when it returns, every event of the batch is either
committed in ``events`` (now or by an earlier delivery) or recorded in ``dead_letters`` with
its reason, in one transaction. When it raises :class:`TransientError`, nothing was committed
and the whole batch may be retried; redelivery can never store an event twice, because each
key is claimed in the ``event_keys`` ledger in the same transaction that writes its row, and
only the keys that claim returns as new are written.
"""

from __future__ import annotations

import operator
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import psycopg
import structlog
from psycopg import pq
from psycopg.adapt import Dumper
from psycopg.postgres import types as postgres_types
from psycopg_pool import ConnectionPool

from contracts import EventEnvelope, encode_batch
from contracts.topology import EVENTS
from hookyard import metrics
from schema import queries
from workers.errors import is_unstorable, translate

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


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def jsonb_safe(payload: str) -> str:
    """``payload`` with every NUL in its strings and keys replaced by U+FFFD, as JSON text.

    The copy queries like the original: only the characters jsonb cannot hold differ. The
    original goes to ``events.payload_raw``; see migration 0005.
    """
    return orjson.dumps(_without_nul(orjson.loads(payload))).decode()


@dataclass(frozen=True)
class DeadLetter:
    """One row of ``dead_letters``: what failed, why, and the message that would replay it."""

    dedup_key: str
    queue: str
    actor: str
    reason: str
    detail: str
    attempts: int
    body: bytes
    message_id: str | None = None
    source: str | None = None
    delivery_id: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "dedup_key": self.dedup_key,
            "queue": self.queue,
            "actor": self.actor,
            "reason": self.reason,
            "detail": self.detail,
            "attempts": self.attempts,
            "body": self.body,
            "message_id": self.message_id,
            "source": self.source,
            "delivery_id": self.delivery_id,
        }


@dataclass
class StoreResult:
    """What one batch did: rows written now, redeliveries skipped, events dead-lettered."""

    stored: list[tuple[str, str]] = field(default_factory=list)  # (source, delivery_id)
    duplicates: int = 0
    #: Stored events whose exact body went to ``payload_raw`` (jsonb could not hold it).
    raw_kept: list[tuple[str, str]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def claim_params(events: Sequence[EventEnvelope]) -> dict[str, list[Any]]:
    """The ``claim_event_keys`` arrays of a batch."""
    return {
        "source": [event.source.value for event in events],
        "delivery_id": [event.delivery_id for event in events],
        "received_at": [event.received_at for event in events],
    }


#: One message's events and its broker message id.
Batch = tuple[Sequence[EventEnvelope], str | None]


def _attribute(batches: Sequence[Batch], stored: Sequence[tuple[str, str]]) -> list[StoreResult]:
    """Split the keys one transaction stored among the messages that carried them.

    A key carried by two messages of the group (a redelivery meeting its original) is stored
    once and counts for the first message; for the other it is a duplicate.
    """
    unclaimed = set(stored)
    results = []
    for events, _ in batches:
        result = StoreResult()
        for event in events:
            key = (event.source.value, event.delivery_id)
            if key in unclaimed:
                unclaimed.discard(key)
                result.stored.append(key)
        results.append(result)
    return results


def unique_in_lock_order(events: Sequence[EventEnvelope]) -> list[EventEnvelope]:
    """Drop repeats of a key within the batch and sort by key.

    Sorting makes every transaction claim ledger keys in the same order, so two workers storing
    overlapping batches wait for each other instead of deadlocking.
    """
    seen: dict[tuple[str, str], EventEnvelope] = {}
    for event in events:
        seen.setdefault((event.source.value, event.delivery_id), event)
    return [seen[key] for key in sorted(seen)]


def _execute_opening(
    conn: psycopg.Connection[tuple[Any, ...]], query: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """Run ``query`` and return its rows, opening the transaction in the same round trip.

    Outside a transaction, psycopg sends ``BEGIN`` and waits for its answer before the first
    statement: a whole round trip per transaction (a sixth of a worker thread's wall time in one
    profile, though no throughput change was measurable on loopback; against a remote database
    it is a network round trip). In pipeline mode the two go together. Inside a transaction (the
    one-by-one fallback's savepoints) it is a plain execute.
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return conn.execute(query, params).fetchall()
    with conn.pipeline():
        cursor = conn.execute(query, params)
    return cursor.fetchall()


def _rollback_quietly(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """End a failed transaction; a connection too broken to answer is discarded by the pool."""
    try:
        conn.rollback()
    except psycopg.Error as exc:
        log.debug("rollback_failed", error=str(exc))


class Store(Protocol):
    """What the actors need: :class:`EventStore`, or :class:`~workers.group.GroupCommit` around it."""

    def store(self, events: Sequence[EventEnvelope], *, message_id: str | None = None) -> StoreResult: ...

    def record_dead_letter(self, letter: DeadLetter) -> None: ...


class EventStore:
    """Stores ``events`` batches through a connection pool."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]]) -> None:
        self.pool = pool

    def store(self, events: Sequence[EventEnvelope], *, message_id: str | None = None) -> StoreResult:
        """Store ``events`` once each; see the module docstring for the guarantee."""
        return self.store_many([(events, message_id)])[0]

    def store_many(self, batches: Sequence[Batch]) -> list[StoreResult]:
        """Store the events of several messages in one transaction: one result per message, in order.

        A transaction has a fixed cost (BEGIN, the COPY's partition routing, the commit's WAL
        flush) that 100 events do not amortize. When one message holds an event that can never
        be stored, the shared transaction fails once and each message is then stored on its own,
        so only that message falls back to one event at a time.
        """
        combined = unique_in_lock_order([event for events, _ in batches for event in events])
        started = time.perf_counter()
        if any(event.project_id is None and event.fields.project for event in combined):
            combined = self._with_projects(combined)
        results: list[StoreResult] | None = None
        try:
            with self.pool.connection() as conn:
                try:
                    stored = self._insert(conn, combined)
                    conn.commit()
                    results = _attribute(batches, stored)
                except psycopg.Error as exc:
                    _rollback_quietly(conn)
                    if not is_unstorable(exc):
                        raise
                    if len(batches) == 1:
                        # Something in the message can never be stored: find it, keep its neighbours.
                        results = [self._store_one_by_one(conn, combined, batches[0][1])]
                except BaseException:
                    _rollback_quietly(conn)
                    raise
        except Exception as exc:
            raise translate(exc) from exc
        if results is None:  # the shared transaction failed on one message's event: split the group
            return [self.store_many([batch])[0] for batch in batches]
        committed = datetime.now(UTC)
        metrics.STORE_DURATION.observe(time.perf_counter() - started)
        metrics.STORE_MESSAGES.observe(len(batches))
        for (events, _), result in zip(batches, results, strict=True):
            result.duplicates = len(events) - len(result.stored) - len(result.dead_letters)
            self._observe(events, result, committed)
        return results

    def _with_projects(self, events: list[EventEnvelope]) -> list[EventEnvelope]:
        """Events named by project (operator token) with its id, creating ``discovered`` projects.

        Runs before the store transaction, in its own. A name that is not a project and cannot
        become one (an organization that does not exist) keeps no id; the event is stored anyway.
        """
        names = sorted(
            {
                str(event.fields.project)
                for event in events
                if event.project_id is None and event.fields.project
            }
        )
        try:
            with self.pool.connection() as conn:
                ids = dict(conn.execute(queries()["resolve_project_names"], {"names": names}).fetchall())
                conn.commit()
                if missing := [
                    name for name in names if name not in ids
                ]:  # created meanwhile by another worker
                    ids.update(
                        conn.execute(queries()["resolve_project_names"], {"names": missing}).fetchall()
                    )
                    conn.commit()
        except Exception as exc:
            raise translate(exc) from exc
        return [
            event.model_copy(update={"project_id": ids[event.fields.project]})
            if event.project_id is None and event.fields.project in ids
            else event
            for event in events
        ]

    def record_dead_letter(self, letter: DeadLetter) -> None:
        """Insert one dead letter in its own transaction (for messages that failed as a whole)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute(queries()["insert_dead_letter"], letter.params())
        except Exception as exc:
            raise translate(exc) from exc
        metrics.DEAD_LETTERS.labels(letter.queue, letter.reason).inc()
        log.warning("dead_lettered", reason=letter.reason, detail=letter.detail, message_id=letter.message_id)

    def _insert(
        self, conn: psycopg.Connection[tuple[Any, ...]], batch: Sequence[EventEnvelope]
    ) -> list[tuple[str, str]]:
        if len(batch) == 1:
            return self._insert_one(conn, batch[0])
        claimed = _execute_opening(conn, queries()["claim_event_keys"], claim_params(batch))
        fresh = {(str(source), str(delivery_id)) for source, delivery_id in claimed}
        if not fresh:
            return []
        stored = []
        cursor = conn.cursor()
        cursor.adapters.register_dumper(RawJsonb, RawJsonbBinaryDumper)
        with cursor.copy(queries()["copy_events"]) as copy:
            copy.set_types(_COPY_TYPES)
            for event in batch:
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

    def _insert_one(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        event: EventEnvelope,
        *,
        raw_issue: str | None = None,
    ) -> list[tuple[str, str]]:
        """Store one event; with ``raw_issue``, a jsonb-safe payload beside the exact one."""
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
        if not _execute_opening(conn, queries()["insert_event"], params):
            return []
        return [(event.source.value, event.delivery_id)]

    def _store_one_by_one(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        batch: Sequence[EventEnvelope],
        message_id: str | None,
    ) -> StoreResult:
        """Store each event under its own savepoint, so a refused one costs no neighbour its place.

        A body jsonb cannot hold is stored with its exact text beside a jsonb-safe copy (it was
        accepted with a 202, so it must be stored); only what PostgreSQL still refuses after
        that is dead-lettered.
        """
        result = StoreResult()
        with conn.transaction():
            for event in batch:
                refusal = self._try_insert(conn, event, result)
                if refusal is not None and jsonb_cannot_hold(refusal):
                    refusal = self._try_insert(conn, event, result, raw_issue=NUL_IN_JSON)
                if refusal is None:
                    continue
                letter = DeadLetter(
                    dedup_key=f"event:{event.source.value}:{event.delivery_id}",
                    queue=EVENTS.queue,
                    actor=EVENTS.actor,
                    reason="unstorable_event",
                    detail=f"PostgreSQL refused the event: {refusal.diag.message_primary or refusal}",
                    attempts=1,
                    body=encode_batch([event]),  # replays this event alone
                    message_id=message_id,
                    source=event.source.value,
                    delivery_id=event.delivery_id,
                )
                conn.execute(queries()["insert_dead_letter"], letter.params())
                result.dead_letters.append(letter)
        return result

    def _try_insert(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        event: EventEnvelope,
        result: StoreResult,
        *,
        raw_issue: str | None = None,
    ) -> psycopg.Error | None:
        """Insert ``event`` under a savepoint; PostgreSQL's refusal of its data, if any."""
        try:
            with conn.transaction():
                stored = self._insert_one(conn, event, raw_issue=raw_issue)
        except psycopg.Error as exc:
            if not is_unstorable(exc):
                raise
            return exc
        result.stored.extend(stored)
        if raw_issue is not None:
            result.raw_kept.extend(stored)
        return None

    def _observe(self, events: Sequence[EventEnvelope], result: StoreResult, committed: datetime) -> None:
        by_source = Counter(source for source, _ in result.stored)
        for source, count in by_source.items():
            metrics.EVENTS_STORED.labels(source).inc(count)
        stored_keys = set(result.stored)
        failed_keys = {(letter.source, letter.delivery_id) for letter in result.dead_letters}
        duplicates: Counter[str] = Counter()
        for event in events:  # as received: a repeat inside one message is a duplicate too
            key = (event.source.value, event.delivery_id)
            if key in stored_keys:
                stored_keys.discard(key)  # only its first copy was stored
                metrics.FRESHNESS.observe((committed - event.received_at).total_seconds())
            elif key not in failed_keys:
                duplicates[event.source.value] += 1
        for source, count in duplicates.items():
            metrics.EVENTS_DUPLICATE.labels(source).inc(count)
        for source, delivery_id in result.raw_kept:
            metrics.EVENTS_RAW_KEPT.labels(source).inc()
            log.warning("event_stored_raw", source=source, delivery_id=delivery_id, issue=NUL_IN_JSON)
        for letter in result.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.queue, letter.reason).inc()
            log.warning(
                "event_dead_lettered",
                source=letter.source,
                delivery_id=letter.delivery_id,
                reason=letter.reason,
                detail=letter.detail,
            )
