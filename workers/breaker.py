"""The dead-letter circuit breaker: a bad deploy stops its actor instead of dead-lettering the stream.

Poison outcomes (messages or events that go to the dead letters) are normal one at a time. A
flood of them means something is wrong with the fleet, not with the messages: a migration that
refuses every row, a producer speaking a newer schema. arroyo's DLQ policy stops the consumer
past a limit; this does the same for a Dramatiq actor (CONVENTIONS habit 4):

- After a worker commits dead letters of an actor, it counts that actor's dead letters of the
  last ``window`` seconds in PostgreSQL (fleet-wide, and only on that rare path). At ``limit``
  or more it opens the actor's breaker in ``consumer_breakers``.
- :class:`BreakerGate`, the first middleware, holds every message of an actor whose breaker is
  open before it is processed. Held messages stay unacknowledged, the consumer's prefetch fills,
  and the rest of the queue waits in RabbitMQ. Every worker process of the fleet sees the state
  within ``poll`` seconds.
- ``hookyard dlq breaker reset`` closes it; dead letters from before the reset stop counting.

A held message is sent back for a retry after ``hold`` seconds, well before RabbitMQ's
``consumer_timeout`` (30 minutes by default) would close the channel, and at once when the
worker stops: either way it waits again in the broker, never in the dead letters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import dramatiq
import psycopg
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from psycopg_pool import ConnectionPool

from hookyard import metrics
from hookyard.errors import TransientError
from schema import queries

log = structlog.get_logger(__name__)


class BreakerOpen(TransientError):
    """The actor's breaker is open: the message goes back to the broker to wait, untouched."""


class Breaker:
    """The breaker state of every actor, read from and written to ``consumer_breakers``.

    ``limit`` 0 turns the breaker off: nothing is counted and nothing is ever held.
    """

    def __init__(
        self,
        pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]],
        *,
        limit: int,
        window: float,
        poll: float = 2.0,
        hold: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.limit = limit
        self.window = window
        self.poll = poll
        self.hold = hold
        self._clock = clock
        self._open: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def dead_lettered(self, actor: str) -> None:
        """Call after dead letters of ``actor`` were committed: opens the breaker past the limit."""
        if self.limit <= 0:
            return
        try:
            with self._pool.connection() as conn:
                row = conn.execute(
                    queries()["breaker_recent_dead_letters"], {"actor": actor, "window": self.window}
                ).fetchone()
                recent = int(row[0]) if row else 0
                if recent < self.limit:
                    return
                detail = f"{recent} dead letters within {self.window:g} s (limit {self.limit})"
                opened = conn.execute(
                    queries()["breaker_trip"],
                    {"actor": actor, "dead_letters": recent, "window": self.window, "detail": detail},
                ).fetchone()
                conn.commit()
        except psycopg.Error as exc:  # the dead letters are committed; the next one checks again
            log.warning("breaker_check_failed", actor=actor, error=str(exc).strip().splitlines()[0])
            return
        if opened is not None:
            metrics.BREAKER_TRIPS.labels(actor).inc()
            log.error(
                "breaker_opened",
                actor=actor,
                detail=detail,
                hint=f"the queue waits; fix the cause, then `hookyard dlq breaker reset {actor}`",
            )
        self._refresh(force=True)

    def is_open(self, actor: str) -> bool:
        """Whether ``actor``'s breaker is open, as last read (at most ``poll`` seconds ago)."""
        if self.limit <= 0:
            return False
        self._refresh()
        return actor in self._open

    def hold_while_open(self, actor: str) -> None:
        """Return once ``actor``'s breaker is closed.

        Raises :class:`BreakerOpen` (a transient failure: the message is retried later) after
        ``hold`` seconds, or at once when the worker is stopping.
        """
        if not self.is_open(actor):
            return
        started = self._clock()
        while self.is_open(actor):
            if self.stopping.is_set() or self._clock() - started >= self.hold:
                raise BreakerOpen(f"the dead-letter breaker of {actor} is open; the message waits")
            self.stopping.wait(self.poll)

    def _refresh(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._fetched_at < self.poll:
            return
        with self._lock:
            if not force and now - self._fetched_at < self.poll:
                return
            self._fetched_at = now  # also on failure: an outage must not cost a query per message
            try:
                with self._pool.connection() as conn:
                    rows = conn.execute(queries()["breaker_open_actors"]).fetchall()
            except Exception as exc:  # noqa: BLE001 - keep the last known state through an outage
                log.debug(
                    "breaker_refresh_failed", error=str(exc).strip().splitlines()[0] if str(exc) else ""
                )
                return
            was_open, self._open = self._open, frozenset(str(row[0]) for row in rows)
        for actor in self._open - was_open:
            metrics.BREAKER_OPEN.labels(actor).set(1)
            log.warning("breaker_holding", actor=actor, detail="messages of this actor wait in the queue")
        for actor in was_open - self._open:
            metrics.BREAKER_OPEN.labels(actor).set(0)
            log.info("breaker_closed", actor=actor, detail="consuming again")


class BreakerGate(Middleware):
    """Hold messages of the ``gated`` actors while their breaker is open (see the module docstring).

    Add it before every other middleware, so a held message has not started its time limit.
    """

    def __init__(self, breaker: Breaker, gated: Collection[str]) -> None:
        self.breaker = breaker
        self.gated = frozenset(gated)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.actor_name in self.gated:
            self.breaker.hold_while_open(message.actor_name)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.breaker.stopping.set()
