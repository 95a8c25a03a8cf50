"""What the producer puts on the ``events`` queue: a Dramatiq message a worker can read."""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq
import orjson

from contracts import SCHEMA_VERSION, EventBatch, EventEnvelope, EventFields, Source, encode_batch

RECEIVED = datetime(2026, 11, 24, 4, 0, 0, 123456, tzinfo=UTC)

EVENTS = [
    EventEnvelope(
        source=Source.GITHUB,
        delivery_id="gh-1",
        event_type="issues",
        action="opened",
        received_at=RECEIVED,
        payload='{"action": "opened"}',
        fields=EventFields(repository="hookyard/fleet", actor="octocat"),
    ),
    EventEnvelope(
        source=Source.DEPLOYMENT,
        delivery_id="deploy-1",
        event_type="deployment",
        received_at=RECEIVED,
        payload="{}",
    ),
]


def test_an_encoded_batch_decodes_as_a_store_events_message():
    message = dramatiq.Message.decode(encode_batch(EVENTS, "message-1"))

    assert (message.queue_name, message.actor_name) == ("events", "store_events")
    assert message.message_id == "message-1"
    assert message.kwargs == {}
    assert len(message.args) == 1


def test_the_worker_reads_back_exactly_the_events_that_were_published():
    message = dramatiq.Message.decode(encode_batch(EVENTS, "message-1"))

    batch = EventBatch.model_validate(message.args[0])

    assert batch.schema_version == SCHEMA_VERSION
    assert batch.events == EVENTS


def test_the_raw_payload_survives_encoding_byte_for_byte():
    payload = '{"text": "caf\\u00e9 \\"quoted\\"\\n", "n": 1.50}'
    envelope = EVENTS[1].model_copy(update={"payload": payload})
    message = dramatiq.Message.decode(encode_batch([envelope], "m"))
    assert EventBatch.model_validate(message.args[0]).events[0].payload == payload


def test_the_message_carries_a_timestamp_in_milliseconds():
    message = dramatiq.Message.decode(encode_batch(EVENTS, "m"))
    assert message.message_timestamp > 1_600_000_000_000


def test_encoded_batches_are_plain_json():
    assert orjson.loads(encode_batch(EVENTS, "m"))["args"][0]["schema_version"] == SCHEMA_VERSION
