"""The event store against real PostgreSQL: once per delivery, poison isolated, outages transient."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import orjson
import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from contracts import EventEnvelope
from hookyard.errors import TransientError
from tests.integration.helpers import (
    NUL_PAYLOAD,
    UNSTORABLE_PAYLOAD,
    dead_letters_for,
    github_event,
    stored_count,
)
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until
from workers.group import GroupCommit
from workers.store import EventStore, StoreResult


def transient_failures() -> float:
    """hookyard_transient_failures_total summed over every kind."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "hookyard_transient_failures"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def stored_after_retries(group: GroupCommit, event: EventEnvelope) -> StoreResult | None:
    """One attempt: the result, or None after a TransientError (wait_until tries again)."""
    try:
        return group.store([event])
    except TransientError:
        return None


@contextlib.contextmanager
def proxied_pool(database_url: str) -> Iterator[tuple[TcpProxy, ConnectionPool[Any]]]:
    """A small pool whose connections go through a TCP proxy the test can cut."""
    parts = urlsplit(database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = parts._replace(netloc=f"{parts.username}@{proxy.address}").geturl()
    try:
        with ConnectionPool(
            proxied, min_size=1, max_size=2, timeout=2, kwargs={"connect_timeout": 2}
        ) as pool:
            yield proxy, pool
    finally:
        proxy.close()


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    with ConnectionPool(database_url, min_size=1, max_size=4, timeout=5) as pool:
        yield EventStore(pool)


def test_redelivered_event_is_stored_once(store: EventStore, db: psycopg.Connection[Any]) -> None:
    event = github_event(repository="hookyard/fleet", actor="octocat")
    first = store.store([event])
    again = store.store([event.model_copy()])
    assert len(first.stored) == 1
    assert again.stored == []
    assert again.duplicates == 1
    assert stored_count(db, [event.delivery_id]) == 1
    row = db.execute(
        "SELECT repository, sender, action FROM github_events WHERE delivery_id = %s", (event.delivery_id,)
    ).fetchone()
    assert row == ("hookyard/fleet", "octocat", "opened")


def test_same_delivery_twice_in_one_batch_is_stored_once(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    event = github_event()
    result = store.store([event, event])
    assert len(result.stored) == 1
    assert stored_count(db, [event.delivery_id]) == 1


def test_redelivery_with_a_later_received_at_is_still_a_duplicate(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    from datetime import timedelta  # noqa: PLC0415

    event = github_event()
    store.store([event])
    # A sender's retry arrives later, possibly in another month's partition.
    retried = event.model_copy(update={"received_at": event.received_at + timedelta(days=40)})
    assert store.store([retried]).stored == []
    assert stored_count(db, [event.delivery_id]) == 1


def test_concurrent_batches_with_overlapping_deliveries_store_each_once(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    events = [github_event() for _ in range(40)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(offset: int) -> None:
        barrier.wait()
        try:
            # Every thread stores the same 40 events in a different order.
            store.store(events[offset:] + events[:offset])
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(offset,)) for offset in (0, 10, 20, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stored_count(db, [event.delivery_id for event in events]) == 40


def test_unstorable_event_is_dead_lettered_alone_and_its_neighbours_are_stored(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    good = [github_event() for _ in range(3)]
    poison = github_event(payload=UNSTORABLE_PAYLOAD)
    result = store.store([good[0], poison, good[1], good[2]], message_id="msg-1")
    assert {delivery for _, delivery in result.stored} == {event.delivery_id for event in good}
    assert stored_count(db, [event.delivery_id for event in good]) == 3
    assert stored_count(db, [poison.delivery_id]) == 0
    letters = dead_letters_for(db, delivery_id=poison.delivery_id)
    assert len(letters) == 1
    reason, detail, attempts, body = letters[0]
    assert reason == "unstorable_event"
    assert "json" in detail
    assert attempts == 1
    replay = dramatiq.Message.decode(bytes(body))
    assert [event["delivery_id"] for event in replay.args[0]["events"]] == [poison.delivery_id]


def test_json_that_jsonb_cannot_hold_is_stored_with_its_exact_text_and_its_neighbours_too(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    good = [github_event() for _ in range(2)]
    nul = github_event(payload=NUL_PAYLOAD)
    result = store.store([good[0], nul, good[1]], message_id="msg-nul")
    assert {delivery for _, delivery in result.stored} == {event.delivery_id for event in [*good, nul]}
    assert result.rescued == [("github", nul.delivery_id)]
    assert result.dead_letters == []
    assert dead_letters_for(db, delivery_id=nul.delivery_id) == []
    row = db.execute(
        "SELECT payload, payload_raw, payload_issue, coalesce(payload_raw, payload::text)"
        " FROM events WHERE delivery_id = %s",
        (nul.delivery_id,),
    ).fetchone()
    assert row is not None
    payload, raw, issue, exact = row
    assert raw == NUL_PAYLOAD  # the exact text received, escapes intact
    assert issue == "nul_character"
    assert payload == {"body": "nul \ufffd inside", "k\ufffdy": ["\ufffd"]}  # queryable copy
    assert orjson.loads(exact) == orjson.loads(NUL_PAYLOAD)  # the documented way to read it back
    normal = db.execute(
        "SELECT payload_raw, payload_issue FROM events WHERE delivery_id = %s", (good[0].delivery_id,)
    ).fetchone()
    assert normal == (None, None)
    store.store([nul])  # a redelivery stores nothing new
    assert stored_count(db, [nul.delivery_id]) == 1


def test_unstorable_event_redelivered_is_dead_lettered_once(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    poison = github_event(payload=UNSTORABLE_PAYLOAD)
    store.store([poison])
    store.store([poison])
    assert len(dead_letters_for(db, delivery_id=poison.delivery_id)) == 1


def test_database_outage_is_a_transient_failure_and_storing_resumes(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    with proxied_pool(database_url) as (proxy, pool):
        store = EventStore(pool)
        before = github_event()
        store.store([before])
        proxy.cut()
        during = github_event()
        counted_before = transient_failures()
        with pytest.raises(TransientError):
            store.store([during])
        assert transient_failures() == counted_before + 1  # what the alert on sustained failures reads
        assert stored_count(db, [during.delivery_id]) == 0
        proxy.restore()
        pool.check()  # drop the connections the outage broke
        store.store([during])
        assert stored_count(db, [before.delivery_id, during.delivery_id]) == 2


def test_a_group_with_a_poison_event_stores_every_other_message_and_dead_letters_only_that_event(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    first, third = [github_event() for _ in range(3)], [github_event() for _ in range(2)]
    poison = github_event(payload=UNSTORABLE_PAYLOAD)
    neighbour = github_event()
    results = store.store_many([(first, "msg-a"), ([neighbour, poison], "msg-b"), (third, "msg-c")])
    assert [len(result.stored) for result in results] == [3, 1, 2]
    assert [len(result.dead_letters) for result in results] == [0, 1, 0]
    assert stored_count(db, [event.delivery_id for event in [*first, neighbour, *third]]) == 6
    assert stored_count(db, [poison.delivery_id]) == 0
    every = [event.delivery_id for event in [*first, neighbour, poison, *third]]
    letters = db.execute(
        "SELECT delivery_id, message_id, reason FROM dead_letters WHERE delivery_id = ANY(%s)", (every,)
    ).fetchall()
    assert letters == [(poison.delivery_id, "msg-b", "unstorable_event")]


def test_a_key_carried_by_two_messages_of_one_group_is_stored_once_for_the_first(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    shared, own = github_event(), github_event()
    results = store.store_many([([shared], "original"), ([shared.model_copy(), own], "redelivery")])
    assert results[0].stored == [("github", shared.delivery_id)]
    assert results[0].duplicates == 0
    assert results[1].stored == [("github", own.delivery_id)]
    assert results[1].duplicates == 1
    assert stored_count(db, [shared.delivery_id, own.delivery_id]) == 2


def test_group_commit_under_a_burst_of_redeliveries_stores_each_event_once(
    store: EventStore, db: psycopg.Connection[Any]
) -> None:
    """Twelve threads, each redelivering overlapping slices of 60 events, through one GroupCommit."""
    events = [github_event() for _ in range(60)]
    group = GroupCommit(store, max_events=50, flushers=2)
    barrier = threading.Barrier(12)
    stored: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def deliver(index: int) -> None:
        try:
            barrier.wait()
            for offset in range(0, 60, 10):
                chunk = events[(offset + index * 5) % 60 :][:10] or events[:10]
                stored.extend(group.store(chunk, message_id=f"m-{index}-{offset}").stored)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stored_count(db, [event.delivery_id for event in events]) == 60
    assert sorted(stored) == sorted(("github", event.delivery_id) for event in events)  # each once


def test_group_commit_turns_an_outage_into_a_transient_failure_for_every_waiting_message(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    with proxied_pool(database_url) as (proxy, pool):
        group = GroupCommit(EventStore(pool), flushers=1)
        group.store([github_event()])
        proxy.cut()
        failures: list[BaseException] = []
        lost = [github_event() for _ in range(4)]

        def deliver(event: EventEnvelope) -> None:
            try:
                group.store([event])
            except BaseException as exc:  # noqa: BLE001 - asserted below
                failures.append(exc)

        threads = [threading.Thread(target=deliver, args=(event,)) for event in lost]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(failures) == 4
        assert all(isinstance(failure, TransientError) for failure in failures)
        assert len({id(failure) for failure in failures}) == 4  # each thread raises its own
        proxy.restore()
        pool.check()  # drop the connections the outage broke
        for event in lost:  # the retries, again and again as Dramatiq would while the pool reconnects
            result = wait_until(lambda event=event: stored_after_retries(group, event), timeout=15)
            assert len(result.stored) == 1
    assert stored_count(db, [event.delivery_id for event in lost]) == 4
