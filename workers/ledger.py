"""Store batches of items exactly once: the ledger, the transaction, the poison fallback.

Every domain actor (events, error reports, heartbeats, usage) stores the items of its messages
the same way, and this module is that way, written once:

- Each item has a key ``(namespace, id)``. The key is claimed in the ``event_keys`` ledger in
  the same transaction that writes the item, and only items whose claim is new are written, so
  a redelivery (of a message, or of a sender's retry) never writes twice. Keys are sorted before
  they are claimed, so two transactions with overlapping keys wait for each other instead of
  deadlocking.
- Several messages share one transaction (see :mod:`workers.group`); each gets its own
  :class:`StoreResult`. A key carried by two of them counts for the first.
- An item PostgreSQL refuses for its data (class 22 or 23) fails the shared transaction once;
  each message is then stored alone, and only the message holding it goes item by item under
  savepoints: the refused item is offered to :meth:`LedgerStore.rescue`, then dead-lettered in
  the transaction that stores its neighbours.
- A transient failure (the database went away, a deadlock) raises
  :class:`~hookyard.errors.TransientError` with nothing committed: the messages are retried.

The contract of :meth:`LedgerStore.store_many`: when it returns, every item is committed (now or
by an earlier delivery) or recorded in ``dead_letters`` with its reason, in one transaction.
A domain subclass says how to key, write, rescue and dead-letter its items.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import psycopg
import structlog
from psycopg import pq
from psycopg_pool import ConnectionPool

from contracts.topology import Route
from hookyard import metrics
from schema import queries
from workers.errors import is_unstorable, translate

log = structlog.get_logger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
#: ``(namespace, id)``: the ledger key of one item, e.g. ``("github", "<delivery id>")``.
Key = tuple[str, str]
Connection = psycopg.Connection[tuple[Any, ...]]
Pool = ConnectionPool[Connection]


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
    """What one message's items did: written now, redeliveries skipped, dead-lettered."""

    stored: list[Key] = field(default_factory=list)
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: Stored items that needed :meth:`LedgerStore.rescue` (events: the exact body kept raw).
    rescued: list[Key] = field(default_factory=list)


#: One message's items and its broker message id.
Batch = tuple[Sequence[T], str | None]


class Store(Protocol[T_contra]):
    """What an actor needs: a :class:`LedgerStore`, or :class:`~workers.group.GroupCommit` around one."""

    def store(self, items: Sequence[T_contra], *, message_id: str | None = None) -> StoreResult: ...

    def record_dead_letter(self, letter: DeadLetter) -> None: ...


def execute_opening(conn: Connection, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
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


def rollback_quietly(conn: Connection) -> None:
    """End a failed transaction; a connection too broken to answer is discarded by the pool."""
    try:
        conn.rollback()
    except psycopg.Error as exc:
        log.debug("rollback_failed", error=str(exc))


class LedgerStore(ABC, Generic[T]):
    """Stores batches of ``T`` through a connection pool; see the module docstring."""

    #: The queue and actor whose messages this store writes (dead letters name them).
    route: Route

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    # -- what a domain says ------------------------------------------------------------------

    @abstractmethod
    def key_of(self, item: T) -> Key:
        """The item's ledger key."""

    @abstractmethod
    def received_at(self, item: T) -> datetime:
        """When the item was received: the ledger's retention clock."""

    @abstractmethod
    def insert(self, conn: Connection, items: Sequence[T]) -> list[Key]:
        """Claim and write ``items`` (unique, in key order) in the open transaction.

        Returns the keys written now. Implementations claim with :meth:`claim` (or one statement
        that claims and writes a single item) and write exactly the items it returns.
        """

    @abstractmethod
    def replay_body(self, item: T) -> bytes:
        """The queue message that replays ``item`` alone, for its dead letter."""

    def prepare(self, items: list[T]) -> list[T]:
        """Before the transaction: complete items from the database (in transactions of their own).

        Returns the items in the same order, one for one: keys may depend on what it completes
        (a report's project id), and results are attributed to messages by key.
        """
        return items

    def rescue(
        self, conn: Connection, item: T, refusal: psycopg.Error, result: StoreResult
    ) -> psycopg.Error | None:
        """Another way to store an item PostgreSQL refused; the refusal that stands, if any.

        Called under a fresh savepoint of the item-by-item fallback. The default rescues nothing.
        """
        return refusal

    def observe(self, items: Sequence[T], result: StoreResult, committed: datetime) -> None:
        """Count what one message's items did (the domain's metrics)."""

    def begin(self) -> None:
        """Called before each transaction attempt, in the thread that runs it."""

    def committed(self) -> None:
        """Called after a transaction committed, in the thread that ran it (per-transaction metrics)."""

    # -- provided ------------------------------------------------------------------------------

    def claim_params(self, items: Sequence[T]) -> dict[str, list[Any]]:
        """The ``claim_event_keys`` arrays of ``items``."""
        keys = [self.key_of(item) for item in items]
        return {
            "source": [key[0] for key in keys],
            "delivery_id": [key[1] for key in keys],
            "received_at": [self.received_at(item) for item in items],
        }

    def claim(self, conn: Connection, items: Sequence[T]) -> set[Key]:
        """Claim the items' keys in the ledger (opening the transaction); the keys that were new."""
        claimed = execute_opening(conn, queries()["claim_event_keys"], self.claim_params(items))
        return {(str(namespace), str(identity)) for namespace, identity in claimed}

    def store(self, items: Sequence[T], *, message_id: str | None = None) -> StoreResult:
        """Store one message's ``items`` once each; see the module docstring for the guarantee."""
        return self.store_many([(items, message_id)])[0]

    def store_many(self, batches: Sequence[Batch[T]]) -> list[StoreResult]:
        """Store the items of several messages in one transaction: one result per message, in order.

        A transaction has a fixed cost (BEGIN, partition routing, the commit's WAL flush) that a
        hundred items do not amortize. When one message holds an item that can never be stored,
        the shared transaction fails once and each message is then stored on its own, so only
        that message falls back to one item at a time.
        """
        started = time.perf_counter()
        prepared = iter(self.prepare([item for items, _ in batches for item in items]))
        batches = [([next(prepared) for _ in items], message_id) for items, message_id in batches]
        combined = self.unique_in_lock_order([item for items, _ in batches for item in items])
        results: list[StoreResult] | None = None
        try:
            with self.pool.connection() as conn:
                try:
                    self.begin()
                    stored = self.insert(conn, combined)
                    conn.commit()
                    self.committed()
                    results = self._attribute(batches, stored)
                except psycopg.Error as exc:
                    rollback_quietly(conn)
                    if not is_unstorable(exc):
                        raise
                    if len(batches) == 1:
                        # Something in the message can never be stored: find it, keep its neighbours.
                        self.begin()
                        results = [self._store_one_by_one(conn, combined, batches[0][1])]
                        self.committed()
                except BaseException:
                    rollback_quietly(conn)
                    raise
        except Exception as exc:
            raise translate(exc) from exc
        if results is None:  # the shared transaction failed on one message's item: split the group
            return [self.store_many([batch])[0] for batch in batches]
        committed = datetime.now(UTC)
        metrics.STORE_DURATION.observe(time.perf_counter() - started)
        metrics.STORE_MESSAGES.observe(len(batches))
        for (items, _), result in zip(batches, results, strict=True):
            result.duplicates = len(items) - len(result.stored) - len(result.dead_letters)
            self.observe(items, result, committed)
            for letter in result.dead_letters:
                metrics.DEAD_LETTERS.labels(letter.queue, letter.reason).inc()
                log.warning(
                    "item_dead_lettered",
                    source=letter.source,
                    delivery_id=letter.delivery_id,
                    reason=letter.reason,
                    detail=letter.detail,
                )
        return results

    def record_dead_letter(self, letter: DeadLetter) -> None:
        """Insert one dead letter in its own transaction (for messages that failed as a whole)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute(queries()["insert_dead_letter"], letter.params())
        except Exception as exc:
            raise translate(exc) from exc
        metrics.DEAD_LETTERS.labels(letter.queue, letter.reason).inc()
        log.warning("dead_lettered", reason=letter.reason, detail=letter.detail, message_id=letter.message_id)

    def unique_in_lock_order(self, items: Sequence[T]) -> list[T]:
        """Drop repeats of a key (the first copy wins) and sort by key, so claims never deadlock."""
        seen: dict[Key, T] = {}
        for item in items:
            seen.setdefault(self.key_of(item), item)
        return [seen[key] for key in sorted(seen)]

    def _attribute(self, batches: Sequence[Batch[T]], stored: Sequence[Key]) -> list[StoreResult]:
        """Split the keys one transaction stored among the messages that carried them."""
        unclaimed = set(stored)
        results = []
        for items, _ in batches:
            result = StoreResult()
            for item in items:
                key = self.key_of(item)
                if key in unclaimed:
                    unclaimed.discard(key)
                    result.stored.append(key)
            results.append(result)
        return results

    def _store_one_by_one(self, conn: Connection, items: Sequence[T], message_id: str | None) -> StoreResult:
        """Each item under its own savepoint, so a refused one costs no neighbour its place."""
        result = StoreResult()
        with conn.transaction():
            for item in items:
                refusal = self._try_insert(conn, item, result)
                if refusal is not None:
                    refusal = self.rescue(conn, item, refusal, result)
                if refusal is None:
                    continue
                namespace, identity = self.key_of(item)
                letter = DeadLetter(
                    dedup_key=f"event:{namespace}:{identity}",
                    queue=self.route.queue,
                    actor=self.route.actor,
                    reason="unstorable_event",
                    detail=f"PostgreSQL refused the item: {refusal.diag.message_primary or refusal}",
                    attempts=1,
                    body=self.replay_body(item),
                    message_id=message_id,
                    source=namespace,
                    delivery_id=identity,
                )
                conn.execute(queries()["insert_dead_letter"], letter.params())
                result.dead_letters.append(letter)
        return result

    def _try_insert(self, conn: Connection, item: T, result: StoreResult) -> psycopg.Error | None:
        try:
            with conn.transaction():
                result.stored.extend(self.insert(conn, [item]))
        except psycopg.Error as exc:
            if not is_unstorable(exc):
                raise
            return exc
        return None

    def savepoint(self, conn: Connection, item: T, result: StoreResult, insert: Any) -> psycopg.Error | None:
        """Run ``insert(conn, item)`` under a savepoint for :meth:`rescue`; its refusal, if any."""
        try:
            with conn.transaction():
                stored = insert(conn, item)
        except psycopg.Error as exc:
            if not is_unstorable(exc):
                raise
            return exc
        result.stored.extend(stored)
        result.rescued.extend(stored)
        return None


def resolve_project_names(pool: Pool, names: Sequence[str]) -> dict[str, int]:
    """The ids of projects named ``slug`` (default organization) or ``org/slug``, creating missing ones.

    Reports under the operator token may name a project no web process knew: it is created as
    ``discovered`` in its organization, if that exists. Runs in transactions of its own, before
    a store, so a project row lock is never held for a whole batch; a project another worker
    creates at the same moment is missing from the first answer, and is asked for once more.
    """
    try:
        with pool.connection() as conn:
            rows = conn.execute(queries()["resolve_project_names"], {"names": list(names)}).fetchall()
            conn.commit()
            ids = {str(name): int(project_id) for name, project_id in rows}
            if missing := [name for name in names if name not in ids]:
                rows = conn.execute(queries()["resolve_project_names"], {"names": missing}).fetchall()
                conn.commit()
                ids.update({str(name): int(project_id) for name, project_id in rows})
    except Exception as exc:
        raise translate(exc) from exc
    return ids
