"""Group commit: the messages that Dramatiq's worker threads hold at once go into one transaction.

Dramatiq has no batch actor: each worker thread runs one message and acks it when the actor
returns. Other stacks batch where the consumer loop is theirs (arroyo's batching steps, a
Kafka consumer's poll); in Dramatiq the threads are the batch. Each ``store_events`` call hands
its events to :class:`GroupCommit` and waits. A thread whose events nobody has taken yet becomes
a leader while fewer than ``flushers`` transactions are open: it takes every message waiting
(up to ``max_events``), stores them in one transaction with :meth:`LedgerStore.store_many`, and
wakes their threads, which return, so Dramatiq acks each message after the commit.

Nothing waits on a timer. A lone message is stored at once; messages group only when they
arrive while earlier transactions are open, so groups grow exactly when the database is the
bottleneck (as in PostgreSQL's own commit grouping).

One flusher per process is the default. With one worker process per CPU, the processes give
Python and PostgreSQL their overlap, and fewer, larger transactions beat more, smaller ones:
draining 1 KB events on two cores, two processes with one flusher each stored about 45,000 a
second, with two flushers each about 42,000, and storing every message in its own transaction
about 36,000 (``hookyard bench drain``, two or three runs each).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from hookyard.errors import TransientError
from workers.ledger import DeadLetter, LedgerStore, StoreResult

T = TypeVar("T")


@dataclass(eq=False)
class _Waiting(Generic[T]):
    events: Sequence[T]
    message_id: str | None
    taken: bool = False
    done: bool = False
    result: StoreResult | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Stores each caller's items, in a transaction shared with the other callers waiting.

    Any :class:`~workers.ledger.LedgerStore` domain works the same way: events, error reports,
    heartbeats, usage.
    """

    def __init__(self, store: LedgerStore[T], *, max_events: int = 1000, flushers: int = 1) -> None:
        if max_events < 1 or flushers < 1:
            raise ValueError("max_events and flushers must be at least 1")
        self._store = store
        self.max_events = max_events
        self.flushers = flushers
        self._waiting: deque[_Waiting[T]] = deque()
        self._open = 0  # transactions being written now
        self._changed = threading.Condition()

    def store(self, events: Sequence[T], *, message_id: str | None = None) -> StoreResult:
        """Store ``events`` with :meth:`LedgerStore.store`'s guarantee; returns after the commit."""
        mine: _Waiting[T] = _Waiting(events, message_id)
        with self._changed:
            self._waiting.append(mine)
            while not mine.done:
                if mine.taken or self._open >= self.flushers:
                    self._changed.wait()
                    continue
                group = self._take()
                self._open += 1
                self._changed.release()
                try:
                    self._flush(group)
                finally:
                    self._changed.acquire()
                    self._open -= 1
                    self._changed.notify_all()
        if mine.error is not None:
            raise _own_copy(mine.error)
        assert mine.result is not None
        return mine.result

    def record_dead_letter(self, letter: DeadLetter) -> None:
        self._store.record_dead_letter(letter)

    def _take(self) -> list[_Waiting[T]]:
        """The oldest waiting messages, up to ``max_events`` events (always at least one message)."""
        group = [self._waiting.popleft()]
        count = len(group[0].events)
        while self._waiting and count + len(self._waiting[0].events) <= self.max_events:
            count += len(self._waiting[0].events)
            group.append(self._waiting.popleft())
        for waiting in group:
            waiting.taken = True
        return group

    def _flush(self, group: list[_Waiting[T]]) -> None:
        try:
            results = self._store.store_many([(waiting.events, waiting.message_id) for waiting in group])
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
        except BaseException as exc:  # noqa: BLE001  # handed to every waiting thread, each raises it
            for waiting in group:
                waiting.error = exc
        finally:
            for waiting in group:
                waiting.done = True


def _own_copy(error: BaseException) -> BaseException:
    """Each waiting thread raises its own exception object: one shared instance would collect
    every thread's traceback."""
    if type(error) is TransientError:
        copy = TransientError(*error.args)
        copy.__cause__ = error.__cause__
        return copy
    return error
