"""One registry of consumers: the worker, the metrics, and the DLQ CLI all read it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from contracts import EventBatch
from contracts.heartbeats import CheckReportBatch
from contracts.metering import UsageBatch
from contracts.reports import ErrorReportBatch
from contracts.topology import ERRORS, EVENTS, HEARTBEATS, RETRIES_EXHAUSTED, USAGE, Route


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures retry without limit (an outage must not dead-letter everything);
    anything unexpected retries ``max_unexpected_retries`` times, then becomes a dead letter."""

    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    max_unexpected_retries: int = 5


@dataclass(frozen=True)
class Consumer:
    name: str
    route: Route
    description: str
    retry: RetryPolicy = RetryPolicy()
    #: Held by the dead-letter breaker when its dead letters flood (see workers/breaker.py).
    #: Off for the actor that records dead letters: it must keep draining.
    breaker: bool = True
    #: A batch consumer's message: the model of its one argument (schema-versioned), and the
    #: field holding its items, which go through the domain's store and group commit.
    message: type[BaseModel] | None = None
    items: str = "events"


CONSUMERS: dict[str, Consumer] = {
    consumer.name: consumer
    for consumer in (
        Consumer(
            "events",
            EVENTS,
            "stores verified deliveries in the partitioned events table",
            message=EventBatch,
            items="events",
        ),
        Consumer(
            "errors",
            ERRORS,
            "groups error reports into patterns and keeps every occurrence once",
            message=ErrorReportBatch,
            items="reports",
        ),
        Consumer(
            "heartbeats",
            HEARTBEATS,
            "applies pings, heartbeats and check-ins to their subjects' status, in order",
            message=CheckReportBatch,
            items="reports",
        ),
        Consumer(
            "usage",
            USAGE,
            "stores usage records once and counts them into their budgets",
            message=UsageBatch,
            items="records",
        ),
        Consumer(
            "dead_letters",
            RETRIES_EXHAUSTED,
            "records messages whose retries ran out in the dead_letters table",
            breaker=False,
        ),
    )
}

QUEUES: frozenset[str] = frozenset(consumer.route.queue for consumer in CONSUMERS.values())
#: The consumers whose messages carry items for a store: one queue and one actor per domain.
BATCH_CONSUMERS: tuple[Consumer, ...] = tuple(c for c in CONSUMERS.values() if c.message is not None)
