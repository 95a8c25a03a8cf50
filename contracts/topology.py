"""Where each message goes, declared the way Dramatiq's RabbitMQ broker declares it.

Producers publish Dramatiq messages without running Dramatiq's broker, so they must declare the
same durable queues with the same arguments (RabbitMQ refuses a redeclaration that differs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import dq_name, xq_name


@dataclass(frozen=True)
class Route:
    """A queue and the actor that consumes its messages."""

    queue: str
    actor: str


#: Verified deliveries, stored by workers.store.store_events.
EVENTS = Route(queue="events", actor="store_events")
#: Error reports (Sentry events and /v1/errors), grouped into patterns by workers.patterns.
ERRORS = Route(queue="errors", actor="store_error_reports")
#: Pings, instance heartbeats and Sentry check-ins, applied to checks by workers.heartbeats.
HEARTBEATS = Route(queue="heartbeats", actor="apply_heartbeats")
#: Usage records (metered CloudEvents and /v1/usage), stored and counted against budgets.
USAGE = Route(queue="usage", actor="store_usage")
#: Messages whose retries ran out, recorded by workers.store.record_dead_letter.
RETRIES_EXHAUSTED = Route(queue="dead_letters", actor="record_dead_letter")


def queue_declarations(queue: str) -> list[tuple[str, dict[str, Any]]]:
    """The queues Dramatiq declares for ``queue``: itself, its delay queue and its dead-letter queue."""
    main_args = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(queue)}
    return [
        (queue, main_args),
        (dq_name(queue), main_args),
        (xq_name(queue), {"x-message-ttl": DEAD_MESSAGE_TTL}),
    ]


#: Every queue the fleet declares, each with its delay and dead-letter queues.
ALL_ROUTES: tuple[Route, ...] = (EVENTS, ERRORS, HEARTBEATS, USAGE, RETRIES_EXHAUSTED)
