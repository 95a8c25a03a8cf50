"""Publish batches to RabbitMQ and wait for the broker's confirm.

Each domain has a :class:`Lane`: its queue and how its items become one message (events,
error reports, heartbeats, usage). Per lane, at most ``max_in_flight`` messages await their
confirm at once; requests that arrive meanwhile are coalesced into the lane's next message (up
to ``max_batch`` items), so batches grow with load and cost nothing when the producer is idle.
Each request's future resolves only when the broker has confirmed the message that carries its
items, so a 202 is never sent before the confirm. If the broker is unreachable, or the confirm
does not come in time, the request fails with :class:`PublishFailed` and the HTTP layer
answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiormq
import structlog
from aiormq.abc import AbstractChannel, AbstractConnection
from pamqp import commands as spec

from contracts import encode_batch
from contracts.heartbeats import encode_check_reports
from contracts.metering import encode_usage
from contracts.reports import encode_reports
from contracts.topology import ERRORS, EVENTS, HEARTBEATS, USAGE, Route, queue_declarations
from hookyard import metrics
from hookyard.errors import PublishFailed
from hookyard.outages import BrokerOutage, one_line

log = structlog.get_logger(__name__)


def report_id_of(identity: str) -> str:
    """The sender's own id in a namespaced identity (``heartbeat:<id>``, ``v1:<id>``): what the 202 names."""
    namespace, _, own = identity.partition(":")
    return own if namespace in {"heartbeat", "v1"} and own else identity


@dataclass(frozen=True)
class Lane:
    """A domain's queue, the encoder that makes one message of many items, and an item's id."""

    route: Route
    encode: Callable[[Sequence[Any], str], bytes]
    identify: Callable[[Any], str]


#: Verified webhook and deployment events, stored by ``store_events``.
EVENTS_LANE = Lane(EVENTS, encode_batch, lambda event: str(event.delivery_id))
#: Error reports, grouped by ``store_error_reports``.
ERRORS_LANE = Lane(ERRORS, encode_reports, lambda report: str(report.event_id))
#: Pings, heartbeats and check-ins, applied by ``apply_heartbeats``.
HEARTBEATS_LANE = Lane(HEARTBEATS, encode_check_reports, lambda report: report_id_of(report.report_id))
#: Usage records, stored and counted against budgets by ``store_usage``.
USAGE_LANE = Lane(USAGE, encode_usage, lambda record: report_id_of(record.usage_id))
#: Every lane the web process publishes on.
LANES = (EVENTS_LANE, ERRORS_LANE, HEARTBEATS_LANE, USAGE_LANE)


@dataclass
class _Pending:
    events: Sequence[Any]
    future: asyncio.Future[None]


@dataclass
class _Batch:
    pending: list[_Pending] = field(default_factory=list)
    size: int = 0


@dataclass
class _LaneState:
    """The batch forming for a lane, and its messages awaiting a confirm."""

    lane: Lane
    batch: _Batch = field(default_factory=_Batch)
    flush_scheduled: bool = False
    in_flight: int = 0


class Publisher:
    """One confirming channel to RabbitMQ, kept open by a background task."""

    def __init__(
        self,
        amqp_url: str,
        *,
        confirm_timeout: float,
        max_batch: int,
        max_in_flight: int = 1,
        lanes: Sequence[Lane] = LANES,
    ) -> None:
        self._url = amqp_url
        self._confirm_timeout = confirm_timeout
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lanes = {lane.route.queue: _LaneState(lane) for lane in lanes}
        self._tasks: set[asyncio.Task[None]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._outage = BrokerOutage()
        metrics.export_broker_connected()

    @property
    def connected(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    async def start(self, *, wait: float = 0) -> None:
        """Start connecting in the background; wait up to ``wait`` seconds for the first connection."""
        self._keeper = asyncio.create_task(self._keep_connected())
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        """Let in-flight publishes finish (up to the confirm timeout), then close."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._confirm_timeout)
        if self._keeper:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def publish(self, items: Sequence[Any], lane: Lane = EVENTS_LANE) -> None:
        """Return once RabbitMQ confirmed a persistent message holding ``items`` on ``lane``'s queue.

        Raises PublishFailed when the broker is unreachable, refuses the message, or does not
        confirm within the timeout (the message may still arrive later: senders retry safely).
        """
        if not self.connected:
            metrics.PUBLISH_FAILURES.labels("disconnected").inc()
            raise PublishFailed("RabbitMQ is not connected")
        state = self._lanes[lane.route.queue]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if state.batch.size and state.batch.size + len(items) > self._max_batch:
            self._flush(state)
        state.batch.pending.append(_Pending(items, future))
        state.batch.size += len(items)
        if state.batch.size >= self._max_batch:
            self._flush(state)
        elif not state.flush_scheduled:
            # Flush after every request that is ready in this turn of the loop has joined the batch.
            state.flush_scheduled = True
            loop.call_soon(self._flush_if_idle, state)
        # A timer rather than asyncio.wait_for: one handle per request instead of a task and a shield.
        timer = loop.call_later(self._confirm_timeout, self._expire, future)
        try:
            await future
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future[None]) -> None:
        if not future.done():
            metrics.PUBLISH_FAILURES.labels("timeout").inc()
            future.set_exception(
                PublishFailed(f"RabbitMQ did not confirm within {self._confirm_timeout:g} s")
            )

    def _flush_if_idle(self, state: _LaneState) -> None:
        state.flush_scheduled = False
        if state.in_flight < self._max_in_flight:
            self._flush(state)
        # Otherwise the batch keeps growing until a confirm frees a slot (see _publish).

    def _flush(self, state: _LaneState) -> None:
        batch, state.batch = state.batch, _Batch()
        if not batch.pending:
            return
        state.in_flight += 1
        task = asyncio.create_task(self._publish(state, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, state: _LaneState, batch: _Batch) -> None:
        try:
            failure = await self._send(
                state.lane, [item for pending in batch.pending for item in pending.events]
            )
        finally:
            state.in_flight -= 1
            if state.batch.pending and not state.flush_scheduled:
                self._flush(state)
        for pending in batch.pending:
            if pending.future.done():
                continue
            if failure is None:
                pending.future.set_result(None)
            else:
                pending.future.set_exception(failure)

    async def _send(self, lane: Lane, events: list[Any]) -> PublishFailed | None:
        """Publish one message and wait for its confirm; the failure to report, if any."""
        channel = self._channel
        if channel is None or channel.is_closed:
            metrics.PUBLISH_FAILURES.labels("disconnected").inc()
            return PublishFailed("RabbitMQ is not connected")
        started = time.perf_counter()
        message_id = str(uuid.uuid4())
        try:
            confirmation = await channel.basic_publish(
                lane.encode(events, message_id),
                routing_key=lane.route.queue,
                properties=spec.Basic.Properties(delivery_mode=2, message_id=message_id),
                mandatory=True,
            )
        except aiormq.exceptions.PublishError:
            metrics.PUBLISH_FAILURES.labels("returned").inc()
            return PublishFailed(f"RabbitMQ could not route the message to queue {lane.route.queue!r}")
        except (aiormq.exceptions.AMQPError, ConnectionError, OSError) as exc:
            metrics.PUBLISH_FAILURES.labels("disconnected").inc()
            return PublishFailed(f"RabbitMQ connection lost: {exc!r}")
        if not isinstance(confirmation, spec.Basic.Ack):
            metrics.PUBLISH_FAILURES.labels("nack").inc()
            return PublishFailed("RabbitMQ refused the message")
        metrics.PUBLISH_CONFIRM.observe(time.perf_counter() - started)
        metrics.PUBLISH_BATCH_EVENTS.observe(len(events))
        return None

    async def _keep_connected(self) -> None:
        """Connect, and reconnect with backoff until stopped.

        An outage logs ``broker_connection_lost`` once when it starts (or when the first
        connection fails) and ``broker_connection_restored`` once when a channel is open again;
        the attempts in between log nothing.
        """
        delay = 0.2
        while not self._stopping:
            try:
                self._connection = await aiormq.connect(self._url)
                channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                for queue in self._lanes:
                    for name, arguments in queue_declarations(queue):
                        await channel.queue_declare(name, durable=True, arguments=arguments)
                self._channel = channel
                metrics.BROKER_CONNECTED.set(1)
                if not self._ready.is_set() and not self._outage.ongoing:
                    log.info("broker_connected")
                self._ready.set()
                self._outage.back(self)
                delay = 0.2
                await self._connection.closing
                if not self._stopping:
                    self._outage.lost(self, "the connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to connect means: wait and try again
                if not self._stopping:
                    self._outage.lost(self, one_line(exc))
            finally:
                self._channel = None
                metrics.BROKER_CONNECTED.set(0)
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
