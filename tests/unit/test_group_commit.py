"""GroupCommit's coordination of worker threads, with a recording stand-in for the store.

Pure logic: which callers share a transaction, in what order, and who sees which result or
error. That the shared transaction keeps every storage guarantee is tested against PostgreSQL
in tests/integration/test_store.py.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

import pytest

from hookyard.errors import TransientError
from tests.support.waiting import wait_until
from workers.group import GroupCommit
from workers.store import Batch, EventStore, StoreResult


class RecordingStore:
    """Records each ``store_many`` group; with ``hold``, every transaction waits for ``release``."""

    def __init__(self, *, hold: bool = False, fail_group: int | None = None) -> None:
        self.groups: list[list[str | None]] = []
        self.open_now = 0
        self.most_open = 0
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self.fail_group = fail_group
        self._lock = threading.Lock()

    def store_many(self, batches: Sequence[Batch]) -> list[StoreResult]:
        with self._lock:
            number = len(self.groups)
            self.groups.append([message_id for _, message_id in batches])
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            assert self.released.wait(5)
            if number == self.fail_group:
                raise TransientError("PostgreSQL is unreachable: connection lost")
            return [StoreResult(stored=[("github", str(message_id))]) for _, message_id in batches]
        finally:
            with self._lock:
                self.open_now -= 1


def group_commit(store: RecordingStore, **options: Any) -> GroupCommit:
    return GroupCommit(cast(EventStore, store), **options)


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def arrive_in_order(store: RecordingStore, group: GroupCommit, deliver: Any, count: int) -> None:
    """Thread 0's message opens a held transaction; threads 1.. then queue behind it in index
    order; then the store is released."""
    threads = [threading.Thread(target=deliver, args=(index,)) for index in range(count)]
    threads[0].start()
    wait_until(lambda: store.open_now == 1, timeout=5, what="the first transaction to open")
    for index in range(1, count):
        threads[index].start()
        wait_until(lambda index=index: len(group._waiting) == index, timeout=5, what=f"message {index}")
    store.released.set()
    join(threads)


def events(count: int) -> list[Any]:
    return [object()] * count  # GroupCommit only counts them


def test_a_lone_message_is_stored_at_once_in_its_own_transaction() -> None:
    store = RecordingStore()
    result = group_commit(store).store(events(3), message_id="only")
    assert store.groups == [["only"]]
    assert result.stored == [("github", "only")]


def test_messages_arriving_while_a_transaction_is_open_share_the_next_one_in_arrival_order() -> None:
    store = RecordingStore(hold=True)
    group = group_commit(store, flushers=1)
    results: dict[int, StoreResult] = {}

    def deliver(index: int) -> None:
        results[index] = group.store(events(10), message_id=f"m{index}")

    arrive_in_order(store, group, deliver, 6)
    assert store.groups == [["m0"], ["m1", "m2", "m3", "m4", "m5"]]
    assert {index: result.stored for index, result in results.items()} == {
        index: [("github", f"m{index}")] for index in range(6)
    }


def test_a_group_takes_at_most_max_events_and_the_rest_follow() -> None:
    store = RecordingStore(hold=True)
    group = group_commit(store, flushers=1, max_events=25)
    arrive_in_order(store, group, lambda index: group.store(events(10), message_id=f"m{index}"), 6)
    assert store.groups == [["m0"], ["m1", "m2"], ["m3", "m4"], ["m5"]]


def test_a_message_larger_than_max_events_still_goes_alone() -> None:
    store = RecordingStore()
    group_commit(store, max_events=5).store(events(50), message_id="big")
    assert store.groups == [["big"]]


def test_no_more_transactions_are_open_than_flushers() -> None:
    store = RecordingStore(hold=True)
    group = group_commit(store, flushers=2)
    threads = [
        threading.Thread(target=group.store, args=(events(1),), kwargs={"message_id": f"m{index}"})
        for index in range(16)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: store.open_now == 2 and len(group._waiting) == 14, timeout=5, what="16 arrivals")
    assert store.most_open == 2
    store.released.set()
    join(threads)
    assert store.most_open == 2
    assert sorted(m for g in store.groups for m in g) == sorted(f"m{index}" for index in range(16))


def test_a_failed_transaction_fails_each_of_its_messages_with_its_own_error_and_no_other() -> None:
    store = RecordingStore(hold=True, fail_group=1)
    group = group_commit(store, flushers=1)
    outcomes: dict[int, BaseException | StoreResult] = {}

    def deliver(index: int) -> None:
        try:
            outcomes[index] = group.store(events(1), message_id=f"m{index}")
        except TransientError as exc:
            outcomes[index] = exc

    arrive_in_order(store, group, deliver, 4)
    assert store.groups == [["m0"], ["m1", "m2", "m3"]]
    assert isinstance(outcomes[0], StoreResult)
    failures = [outcomes[index] for index in (1, 2, 3)]
    assert all(isinstance(failure, TransientError) for failure in failures)
    assert len({id(failure) for failure in failures}) == 3


@pytest.mark.parametrize("options", [{"max_events": 0}, {"flushers": 0}])
def test_options_must_be_positive(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        group_commit(RecordingStore(), **options)
