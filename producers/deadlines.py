"""One periodic sweep per event loop that expires the deadlines of many objects.

A timer per request (``loop.call_later`` armed and cancelled for every request) costs the hot
path an allocation and a heap operation each time. The edge's deadlines (headers, body,
keep-alive) only need to be right to within a fraction of a second, so each connection keeps a
plain ``deadline`` number and one task per loop looks at all of them every ``interval`` seconds.
The task runs only while something is watched: an idle process does not wake up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Expiring(Protocol):
    """Something with a deadline on the loop's clock (0 means none) and what to do when it passes."""

    deadline: float

    def expire(self) -> None: ...


class DeadlineSweep:
    """Calls ``expire()`` on each watched object whose ``deadline`` has passed.

    Guarantee: an object watched with a deadline ``d`` (and still watched) has ``expire()``
    called once at a loop time between ``d`` and ``d + interval`` (later only if the loop itself
    is busy). The object must clear or move its own deadline in ``expire()``; an object that
    does not is expired again at the next pass. A pass expires at most ``batch`` objects between
    two turns of the loop, so a thousand deadlines falling due together do not stall the
    requests in flight. ``on_pass`` runs after each pass (for reports that should be aggregated
    rather than written once per object).
    """

    def __init__(self, interval: float, on_pass: Callable[[], None] | None = None, batch: int = 32) -> None:
        self.interval = interval
        self.batch = batch
        self._on_pass = on_pass
        self._watched: set[Expiring] = set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, item: Expiring, loop: asyncio.AbstractEventLoop) -> None:
        """Start looking at ``item``'s deadline (and start the sweep on ``loop`` if it is not running)."""
        self._watched.add(item)
        if self._task is None:
            self._task = loop.create_task(self._run(loop))

    def forget(self, item: Expiring) -> None:
        self._watched.discard(item)

    def due(self, now: float) -> list[Expiring]:
        """What is due at ``now`` (a snapshot: expiring may close connections, which forget themselves)."""
        return [item for item in self._watched if 0.0 < item.deadline <= now]

    def expire_each(self, items: list[Expiring], now: float) -> None:
        """Expire each of ``items`` still due at ``now`` (one may have moved its deadline meanwhile)."""
        for item in items:
            if not 0.0 < item.deadline <= now or item not in self._watched:
                continue
            try:
                item.expire()
            except Exception:  # one failing connection must not stop every other deadline
                log.exception("deadline_expiry_failed")
                self._watched.discard(item)

    def sweep(self, now: float) -> int:
        """One whole pass at once: expire what is due at ``now``; returns how many were due."""
        due = self.due(now)
        self.expire_each(due, now)
        if self._on_pass is not None:
            self._on_pass()
        return len(due)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._watched:
                await asyncio.sleep(self.interval)
                now = loop.time()
                due = self.due(now)
                for start in range(0, len(due), self.batch):
                    if start:
                        await asyncio.sleep(0)  # let the loop serve what is ready between batches
                    self.expire_each(due[start : start + self.batch], now)
                if self._on_pass is not None:
                    self._on_pass()
        finally:
            self._task = None
            if self._on_pass is not None:
                try:
                    self._on_pass()  # what the last pass left to report
                except Exception:  # a report must not mask how the task ended
                    log.exception("deadline_report_failed")
