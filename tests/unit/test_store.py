"""The pure parts of the event store: in-batch deduplication, lock order, and replayable messages."""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq

from contracts import EventBatch, EventEnvelope, EventFields, Source, encode_batch
from workers.store import EventStore

#: The ledger's dedup-and-sort, as the events domain keys it (no pool needed for a pure method).
unique_in_lock_order = EventStore(pool=None).unique_in_lock_order  # type: ignore[arg-type]

RECEIVED = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def event(source: Source, delivery_id: str, payload: str = "{}") -> EventEnvelope:
    return EventEnvelope(
        source=source, delivery_id=delivery_id, event_type="push", received_at=RECEIVED, payload=payload
    )


def keys(events: list[EventEnvelope]) -> list[tuple[str, str]]:
    return [(e.source.value, e.delivery_id) for e in events]


def test_a_delivery_repeated_within_a_batch_is_kept_once_as_first_seen():
    first = event(Source.GITHUB, "d-1", payload='{"n": 1}')
    repeat = event(Source.GITHUB, "d-1", payload='{"n": 2}')

    [kept] = unique_in_lock_order([first, repeat])

    assert kept.payload == '{"n": 1}'


def test_the_same_delivery_id_from_two_sources_is_two_events():
    batch = [event(Source.GITHUB, "same"), event(Source.SLACK, "same")]
    assert keys(unique_in_lock_order(batch)) == [("github", "same"), ("slack", "same")]


def test_events_come_back_sorted_by_source_then_delivery_id():
    batch = [
        event(Source.SLACK, "b"),
        event(Source.GITHUB, "z"),
        event(Source.DEPLOYMENT, "m"),
        event(Source.GITHUB, "a"),
        event(Source.SLACK, "b"),
    ]
    assert keys(unique_in_lock_order(batch)) == [
        ("deployment", "m"),
        ("github", "a"),
        ("github", "z"),
        ("slack", "b"),
    ]


def test_two_overlapping_batches_claim_their_shared_keys_in_the_same_order():
    one = [event(Source.LINEAR, "x"), event(Source.GITHUB, "y"), event(Source.SLACK, "z")]
    other = [event(Source.SLACK, "z"), event(Source.LINEAR, "x"), event(Source.GITHUB, "y")]
    assert keys(unique_in_lock_order(one)) == keys(unique_in_lock_order(other))


def test_an_empty_batch_stays_empty():
    assert unique_in_lock_order([]) == []


def test_a_dead_lettered_event_replays_as_a_store_events_message_with_only_that_event():
    lost = EventEnvelope(
        source=Source.LINEAR,
        delivery_id="linear-9",
        event_type="Issue",
        action="create",
        received_at=RECEIVED,
        payload='{"type": "Issue"}',
        fields=EventFields(team="team-ingest", entity_id="issue-9"),
    )

    message = dramatiq.Message.decode(encode_batch([lost]))  # the body a dead-lettered event keeps

    assert (message.queue_name, message.actor_name) == ("events", "store_events")
    assert message.kwargs == {}
    [argument] = message.args
    assert EventBatch.model_validate(argument).events == [lost]


def test_each_replay_message_gets_its_own_message_id():
    lost = event(Source.GITHUB, "d-1")
    first = dramatiq.Message.decode(encode_batch([lost]))
    second = dramatiq.Message.decode(encode_batch([lost]))
    assert first.message_id != second.message_id
