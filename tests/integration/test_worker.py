"""The Dramatiq worker on the real broker and database: ack after commit, poison to dead letters."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
from prometheus_client import REGISTRY

from hookyard.config import Settings
from ops.broker import purge
from tests.conftest import InProcessWorker, make_settings, queue_depth
from tests.integration.helpers import (
    UNSTORABLE_PAYLOAD,
    dead_letters_for,
    github_event,
    publish,
    publish_events,
    stored_count,
)
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until


def duplicates_skipped() -> float:
    """Redeliveries the in-process worker recognised and skipped so far."""
    return REGISTRY.get_sample_value("hookyard_events_duplicate_total", {"source": "github"}) or 0.0


def drained(amqp_url: str) -> bool:
    return queue_depth(amqp_url, "events") == 0


def raw_message(args: list[Any], options: dict[str, Any] | None = None) -> tuple[str, bytes]:
    message_id = str(uuid.uuid4())
    return message_id, orjson.dumps(
        {
            "queue_name": "events",
            "actor_name": "store_events",
            "args": args,
            "kwargs": {},
            "options": options or {},
            "message_id": message_id,
            "message_timestamp": 0,
        }
    )


def test_published_events_are_stored_and_acknowledged(
    worker: InProcessWorker, settings: Settings, db: psycopg.Connection[Any]
) -> None:
    events = [github_event() for _ in range(5)]
    publish_events(settings.amqp_url, events[:2])
    publish_events(settings.amqp_url, events[2:])
    ids = [event.delivery_id for event in events]
    wait_until(lambda: stored_count(db, ids) == 5, what="five events stored")
    wait_until(lambda: drained(settings.amqp_url), what="the events queue to drain")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([{"schema_version": 2, "events": []}], "unsupported_schema_version"),
        ([{"schema_version": 1, "events": [{"source": "myspace"}]}], "invalid_message"),
        (["not an object"], "invalid_message"),
        ([], "invalid_message"),
    ],
)
def test_message_that_can_never_be_stored_goes_to_dead_letters_unretried(
    worker: InProcessWorker, settings: Settings, db: psycopg.Connection[Any], args: list[Any], reason: str
) -> None:
    message_id, body = raw_message(args)
    publish(settings.amqp_url, body)
    letters = wait_until(lambda: dead_letters_for(db, message_id=message_id), what="the dead letter")
    assert letters[0][0] == reason
    assert letters[0][2] == 1  # attempts: never retried
    wait_until(lambda: drained(settings.amqp_url), what="the events queue to drain")
    assert queue_depth(settings.amqp_url, "events.DQ") == 0


def test_poison_event_in_a_batch_goes_to_dead_letters_alone(
    worker: InProcessWorker, settings: Settings, db: psycopg.Connection[Any]
) -> None:
    good = [github_event() for _ in range(4)]
    poison = github_event(payload=UNSTORABLE_PAYLOAD)
    publish_events(settings.amqp_url, [good[0], good[1], poison, good[2], good[3]])
    wait_until(lambda: stored_count(db, [event.delivery_id for event in good]) == 4, what="the good events")
    letters = wait_until(lambda: dead_letters_for(db, delivery_id=poison.delivery_id), what="the dead letter")
    assert [letter[0] for letter in letters] == ["unstorable_event"]
    wait_until(lambda: drained(settings.amqp_url), what="the events queue to drain")


def test_database_outage_retries_with_backoff_and_stores_after_recovery(
    database_url: str, empty_queues: str, db: psycopg.Connection[Any]
) -> None:
    parts = urlsplit(database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    settings = make_settings(
        parts._replace(netloc=f"{parts.username}@{proxy.address}").geturl(), empty_queues
    )
    try:
        with InProcessWorker(settings, threads=2):
            proxy.cut()
            event = github_event()
            publish_events(empty_queues, [event])
            # The message goes round the delay queue while PostgreSQL is unreachable.
            wait_until(
                lambda: queue_depth(empty_queues, "events") == 0, what="the worker to take the message"
            )
            assert stored_count(db, [event.delivery_id]) == 0
            proxy.restore()
            wait_until(
                lambda: stored_count(db, [event.delivery_id]) == 1, timeout=30, what="the stored event"
            )
        assert dead_letters_for(db, delivery_id=event.delivery_id) == []
    finally:
        proxy.close()


def test_unexpected_failure_becomes_a_dead_letter_once_its_retries_run_out(
    fresh_database_url: str, empty_queues: str
) -> None:
    settings = make_settings(fresh_database_url, empty_queues)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE event_keys RENAME TO event_keys_gone")  # every insert now fails
        message_id, body = raw_message(
            [{"schema_version": 1, "events": [github_event().model_dump(mode="json")]}],
            # As if this were the last retry: the next failure exhausts the policy.
            options={"retries": 5},
        )
        with InProcessWorker(settings, threads=2):
            publish(empty_queues, body)
            letters = wait_until(
                lambda: dead_letters_for(conn, message_id=message_id), what="the dead letter"
            )
        reason, detail, attempts, _ = letters[0]
        assert reason == "retries_exhausted"
        assert detail.startswith("Failed 6 times; last error:")
        assert 'UndefinedTable: relation "event_keys" does not exist' in detail
        assert attempts == 6  # the first try and five retries
    purge(empty_queues)


def test_a_burst_of_redeliveries_in_overlapping_batches_stores_each_event_once(
    worker: InProcessWorker, settings: Settings, db: psycopg.Connection[Any]
) -> None:
    skipped_before = duplicates_skipped()
    shared = [github_event() for _ in range(60)]
    messages = []
    for round_ in range(12):
        # Every message repeats most of the shared events, rotated, next to a few of its own.
        rotated = shared[round_ * 5 :] + shared[: round_ * 5]
        messages.append(rotated[:45] + [github_event() for _ in range(5)])
    for events in messages:
        publish_events(settings.amqp_url, events)
    every = {event.delivery_id for events in messages for event in events}
    repeats = sum(len(events) for events in messages) - len(every)
    # Every copy has been handled once each repeat has been counted as skipped.
    wait_until(lambda: duplicates_skipped() - skipped_before == repeats, what="every repeat to be skipped")
    rows = db.execute(
        "SELECT delivery_id, count(*) FROM events WHERE delivery_id = ANY(%s) GROUP BY 1", (sorted(every),)
    ).fetchall()
    assert len(rows) == len(every)
    assert {count for _, count in rows} == {1}
