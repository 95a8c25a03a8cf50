"""The Dramatiq broker and actors of the fleet, built from settings (never at import time)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import orjson
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.encoder import Encoder, MessageData
from dramatiq.errors import DecodeError
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from pydantic import ValidationError

from contracts import SCHEMA_VERSION, EventBatch
from hookyard.config import Settings
from hookyard.errors import PoisonMessage, TransientError
from workers.breaker import Breaker, BreakerGate
from workers.group import GroupCommit
from workers.heartbeats import CheckStore
from workers.ledger import DeadLetter, LedgerStore, Pool, Store
from workers.patterns import PatternStore
from workers.registry import BATCH_CONSUMERS, CONSUMERS, Consumer
from workers.store import EventStore
from workers.usage import UsageStore

log = structlog.get_logger(__name__)

#: The ledger store of each batch consumer's domain, by consumer name.
STORES: dict[str, Callable[[Pool], LedgerStore[Any]]] = {
    "events": EventStore,
    "errors": PatternStore,
    "heartbeats": CheckStore,
    "usage": UsageStore,
}


class LogContext(Middleware):
    """Bind the message id and actor to every log line written while a message is processed."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id, actor=message.actor_name)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None:
            level = "warning" if isinstance(exception, TransientError) else "error"
            getattr(log, level)(
                "message_failed",
                error=f"{type(exception).__name__}: {exception}",
                retries=message.options.get("retries", 0),
            )
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()


def retry_policy(consumer: Consumer) -> Callable[[int, BaseException], bool]:
    """Dramatiq's ``retry_when`` for a consumer: transient failures always, others a few times."""

    def should_retry(retries: int, exc: BaseException) -> bool:
        if isinstance(exc, TransientError):
            return True
        return retries < consumer.retry.max_unexpected_retries

    return should_retry


class OrjsonEncoder(Encoder):
    """Dramatiq's message encoding with orjson: the stdlib decoder took a third of the worker's CPU."""

    def encode(self, data: MessageData) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> MessageData:
        try:
            decoded: MessageData = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError("failed to decode message", data, exc) from None  # type: ignore[no-untyped-call]
        return decoded


def build_broker(amqp_url: str) -> RabbitmqBroker:
    """A RabbitMQ broker that confirms its own publishes (retries, dead-letter notices)."""
    dramatiq.set_encoder(OrjsonEncoder())
    return RabbitmqBroker(
        url=amqp_url,
        confirm_delivery=True,
        middleware=[
            AgeLimit(),
            TimeLimit(),
            ShutdownNotifications(),
            Retries(),
            CurrentMessage(),
            LogContext(),
        ],
    )


def parse_message(consumer: Consumer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The items of a batch consumer's message, or :class:`PoisonMessage` when it can never have any."""
    model = consumer.message
    assert model is not None
    if len(args) != 1 or kwargs or not isinstance(args[0], dict):
        raise PoisonMessage(
            "invalid_message", f"{consumer.route.actor} takes exactly one {model.__name__} object"
        )
    if "schema_version" not in args[0]:
        raise PoisonMessage("invalid_message", "the message has no schema_version")
    version = args[0]["schema_version"]
    if version != SCHEMA_VERSION:
        raise PoisonMessage(
            "unsupported_schema_version",
            f"schema_version {version!r} is not {SCHEMA_VERSION}; this worker is older than its producer?",
        )
    try:
        items: list[Any] = getattr(model.model_validate(args[0]), consumer.items)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PoisonMessage(
            "invalid_message", f"{exc.error_count()} invalid field(s), first {where}: {first['msg']}"
        ) from None
    return items


def parse_batch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> EventBatch:
    """The ``events`` message's EventBatch, or :class:`PoisonMessage` (kept for tools and tests)."""
    return EventBatch(events=parse_message(CONSUMERS["events"], args, kwargs))


def build_stores(pool: Pool, settings: Settings) -> dict[str, Store[Any]]:
    """Each batch consumer's domain store, behind its own group commit (one per process and domain)."""
    return {
        consumer.name: GroupCommit(
            STORES[consumer.name](pool),
            max_events=settings.hookyard_store_group_events,
            flushers=settings.hookyard_store_flushers,
        )
        for consumer in BATCH_CONSUMERS
    }


def register_actors(
    broker: RabbitmqBroker, stores: Mapping[str, Store[Any]], breaker: Breaker | None = None
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every consumer of the registry on ``broker``: each batch consumer bound to its store.

    ``stores`` maps a batch consumer's name to its store (a group commit around its domain's
    ledger store). With a ``breaker``, a flood of dead letters holds an actor's messages in the
    queue.
    """
    dead = CONSUMERS["dead_letters"]
    recorder = next(iter(stores.values()))  # every store records dead letters in the same table
    if breaker is not None:
        gated = [consumer.route.actor for consumer in CONSUMERS.values() if consumer.breaker]
        broker.add_middleware(BreakerGate(breaker, gated), before=AgeLimit)

    def dead_lettered(actor: str) -> None:
        if breaker is not None:
            breaker.dead_lettered(actor)

    def record_dead_letter(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
        options = message_data.get("options") or {}
        attempts = int(retry_info.get("retries", 0)) + 1
        recorder.record_dead_letter(
            DeadLetter(
                dedup_key=str(message_data.get("message_id")),
                queue=str(message_data.get("queue_name")),
                actor=str(message_data.get("actor_name")),
                reason="retries_exhausted",
                detail=f"Failed {attempts} times; last error: {last_error(options.get('traceback'))}",
                attempts=attempts,
                body=_replayable(message_data),
                message_id=str(message_data.get("message_id")),
            )
        )
        dead_lettered(str(message_data.get("actor_name")))

    actors = {
        consumer.name: dramatiq.Actor(
            _batch_actor(consumer, stores[consumer.name], dead_lettered),
            broker=broker,
            actor_name=consumer.route.actor,
            queue_name=consumer.route.queue,
            priority=0,
            options={
                "retry_when": retry_policy(consumer),
                "min_backoff": consumer.retry.min_backoff_ms,
                "max_backoff": consumer.retry.max_backoff_ms,
                "on_retry_exhausted": dead.route.actor,
            },
        )
        for consumer in BATCH_CONSUMERS
        if consumer.name in stores  # a test may run one domain; the fleet runs them all (build_stores)
    }
    actors[dead.name] = dramatiq.Actor(
        record_dead_letter,
        broker=broker,
        actor_name=dead.route.actor,
        queue_name=dead.route.queue,
        priority=0,
        options={
            # Recording a dead letter only fails while PostgreSQL is down: wait it out.
            "retry_when": lambda retries, exc: True,
            "min_backoff": dead.retry.min_backoff_ms,
            "max_backoff": dead.retry.max_backoff_ms,
        },
    )
    return actors


def _batch_actor(
    consumer: Consumer, store: Store[Any], dead_lettered: Callable[[str], None]
) -> Callable[..., None]:
    """The actor of a batch consumer: decode, validate, store (group commit), then return to be acked."""

    def store_items(*args: Any, **kwargs: Any) -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None
        try:
            items = parse_message(consumer, args, kwargs)
        except PoisonMessage as poison:
            store.record_dead_letter(
                DeadLetter(
                    dedup_key=message.message_id,
                    queue=message.queue_name,
                    actor=message.actor_name,
                    reason=poison.reason,
                    detail=poison.detail,
                    attempts=message.options.get("retries", 0) + 1,
                    body=_replayable(message.asdict()),
                    message_id=message.message_id,
                )
            )
            dead_lettered(message.actor_name)
            return
        if len(items) == 1 and hasattr(items[0], "delivery_id"):
            source = getattr(items[0], "source", None)
            structlog.contextvars.bind_contextvars(
                source=getattr(source, "value", source), delivery_id=items[0].delivery_id
            )
        result = store.store(items, message_id=message.message_id)
        log.info(
            "batch_stored",
            items=len(items),
            stored=len(result.stored),
            duplicates=result.duplicates,
            dead_lettered=len(result.dead_letters),
        )
        if result.dead_letters:
            dead_lettered(message.actor_name)
        if log.is_enabled_for(logging.DEBUG):  # a hundred no-op calls per message add up
            for namespace, identity in result.stored:
                log.debug("item_stored", source=namespace, delivery_id=identity)

    store_items.__name__ = consumer.route.actor
    return store_items


def _replayable(message_data: dict[str, Any]) -> bytes:
    """The message as it was first sent: retry bookkeeping stripped, so a replay starts afresh."""
    options = {
        key: value
        for key, value in (message_data.get("options") or {}).items()
        if key not in {"retries", "traceback", "requeue_timestamp", "eta", "redelivered", "dead_letter"}
    }
    try:
        return orjson.dumps({**message_data, "options": options})
    except TypeError:
        return repr(message_data).encode()


def last_error(formatted_traceback: str | None) -> str:
    """The ``Type: message`` line of a formatted traceback (its first line, for multi-line messages)."""
    lines = (formatted_traceback or "").rstrip().splitlines()
    frames = [index for index, line in enumerate(lines) if line.startswith('  File "')]
    if frames:
        index = frames[-1] + 1
        while index < len(lines) and lines[index].startswith("    "):  # the frame's source lines
            index += 1
        if index < len(lines):
            return lines[index]
    return lines[-1] if lines else "unknown error"
