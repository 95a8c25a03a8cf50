"""Worker actors: which messages are poison, which failures retry, and what reaches the dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from contracts import EventEnvelope, Source
from hookyard.errors import PoisonMessage, TransientError
from workers.actors import parse_batch, register_actors, retry_policy
from workers.registry import CONSUMERS
from workers.store import DeadLetter, StoreResult

RECEIVED = "2026-11-24T04:00:00+00:00"


def event_json(delivery_id: str = "d-1", **changes: Any) -> dict[str, Any]:
    return {
        "source": "github",
        "delivery_id": delivery_id,
        "event_type": "push",
        "received_at": RECEIVED,
        "payload": "{}",
        **changes,
    }


def batch_json(*events: dict[str, Any], schema_version: Any = 1) -> dict[str, Any]:
    return {"schema_version": schema_version, "events": list(events) or [event_json()]}


def poison_reason(args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    with pytest.raises(PoisonMessage) as caught:
        parse_batch(args, kwargs or {})
    return caught.value.reason


# --- parse_batch ---


def test_a_well_formed_message_parses_into_its_events():
    batch = parse_batch((batch_json(event_json("d-1"), event_json("d-2", source="slack")),), {})
    assert [(e.source, e.delivery_id) for e in batch.events] == [
        (Source.GITHUB, "d-1"),
        (Source.SLACK, "d-2"),
    ]
    assert batch.events[0].received_at == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((batch_json(), batch_json()), {}),
        (("not a dict",), {}),
        (([batch_json()],), {}),
        ((batch_json(),), {"extra": 1}),
    ],
    ids=["no-arguments", "two-arguments", "a-string", "a-list", "keyword-arguments"],
)
def test_a_message_of_the_wrong_shape_is_poison_invalid_message(args, kwargs):
    assert poison_reason(args, kwargs) == "invalid_message"


@pytest.mark.parametrize(
    "bad_event",
    [
        event_json(source="gitlab"),
        event_json(delivery_id=""),
        event_json(received_at="yesterday"),
        event_json(received_at="2026-11-24T04:00:00"),  # no offset: ambiguous
        event_json(unexpected="field"),
        {"source": "github"},
    ],
    ids=["unknown-source", "empty-delivery-id", "bad-time", "naive-time", "extra-field", "missing-fields"],
)
def test_a_message_with_an_invalid_event_is_poison_invalid_message(bad_event):
    assert poison_reason((batch_json(bad_event),)) == "invalid_message"


def test_a_message_with_no_events_is_poison_invalid_message():
    assert poison_reason(({"schema_version": 1, "events": []},)) == "invalid_message"


def test_a_message_from_a_newer_producer_is_poison_unsupported_schema_version():
    assert poison_reason((batch_json(schema_version=2),)) == "unsupported_schema_version"


def test_poison_detail_is_one_line_for_the_operator():
    with pytest.raises(PoisonMessage) as caught:
        parse_batch((batch_json(event_json(source="gitlab")),), {})
    assert caught.value.detail
    assert "\n" not in caught.value.detail


# --- retry_policy ---


def test_a_transient_failure_is_retried_without_limit():
    should_retry = retry_policy(CONSUMERS["events"])
    assert all(
        should_retry(retries, TransientError("PostgreSQL: OperationalError")) for retries in (0, 5, 10_000)
    )


def test_an_unexpected_failure_is_retried_exactly_max_unexpected_retries_times():
    consumer = CONSUMERS["events"]
    should_retry = retry_policy(consumer)
    # Dramatiq asks with the number of retries already made: 0 on the first failure.
    decisions = [
        should_retry(retries, RuntimeError("boom"))
        for retries in range(consumer.retry.max_unexpected_retries + 3)
    ]
    assert decisions.count(True) == consumer.retry.max_unexpected_retries
    assert decisions == sorted(decisions, reverse=True)  # once it gives up, it stays given up


# --- The actors on Dramatiq's StubBroker ---


class RecordingStore:
    """Stands in for EventStore: remembers what the actors asked of it."""

    def __init__(self) -> None:
        self.stored: list[tuple[list[EventEnvelope], str | None]] = []
        self.dead_letters: list[DeadLetter] = []

    def store(self, events: Sequence[EventEnvelope], *, message_id: str | None = None) -> StoreResult:
        self.stored.append((list(events), message_id))
        return StoreResult(stored=[(e.source.value, e.delivery_id) for e in events])

    def record_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)


@pytest.fixture
def fleet():
    broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    store = RecordingStore()
    register_actors(broker, {"events": store})
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    yield broker, store
    worker.stop()
    broker.close()


def send(broker: StubBroker, *args: Any) -> dramatiq.Message[Any]:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="events", actor_name="store_events", args=args, kwargs={}, options={}
    )
    broker.enqueue(message)
    broker.join("events", timeout=5_000)
    return message


def test_a_valid_message_is_stored_with_its_message_id(fleet):
    broker, store = fleet
    message = send(broker, batch_json(event_json("d-1"), event_json("d-2")))

    [(events, message_id)] = store.stored
    assert [e.delivery_id for e in events] == ["d-1", "d-2"]
    assert message_id == message.message_id
    assert store.dead_letters == []


def test_a_poison_message_goes_straight_to_the_dead_letters_with_its_reason(fleet):
    broker, store = fleet
    message = send(broker, batch_json(schema_version=2))

    assert store.stored == []
    [letter] = store.dead_letters
    assert (letter.queue, letter.actor, letter.reason) == (
        "events",
        "store_events",
        "unsupported_schema_version",
    )
    assert letter.attempts == 1
    assert letter.message_id == message.message_id


def test_a_dead_lettered_poison_message_keeps_a_body_that_replays_the_original(fleet):
    broker, store = fleet
    original = batch_json(event_json("d-poison"), schema_version=2)
    send(broker, original)

    [letter] = store.dead_letters
    replay = dramatiq.Message.decode(letter.body)
    assert (replay.queue_name, replay.actor_name) == ("events", "store_events")
    assert replay.args == (original,)
    assert "retries" not in replay.options
