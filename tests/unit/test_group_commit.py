"""GroupCommit's coordination of worker threads, with a recording stand-in for the store.

Pure logic: which callers share a transaction, in what order, and who sees which result or
error. That the shared transaction keeps every storage guarantee is tested against PostgreSQL
in tests/integration/test_store.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest

from hookyard.errors import TransientError
from workers.group import GroupCommit
from workers.store import Batch, EventStore, StoreResult


class RecordingStore:
    """Records each ``store_many`` group; the first one can be held open until released."""

    def __init__(self, *, hold_first: bool = False, fail_group: int | None = None) -> None:
        self.groups: list[list[str | None]] = []
        self.open_now = 0
        self.most_open = 0
        self.first_started = threading.Event()
        self.release_first = threading.Event()
        if not hold_first:
            self.release_first.set()
        self.fail_group = fail_group
        self._lock = threading.Lock()

    def store_many(self, batches: Sequence[Batch]) -> list[StoreResult]:
        with self._lock:
            number = len(self.groups)
            self.groups.append([message_id for _, message_id in batches])
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            if number == 0:
                self.first_started.set()
                assert self.release_first.wait(5)
            else:
                time.sleep(0.01)
            if number == self.fail_group:
                raise TransientError("PostgreSQL is unreachable: connection lost")
            return [StoreResult(stored=[("github", str(message_id))]) for _, message_id in batches]
        finally:
            with self._lock:
                self.open_now -= 1


def group_commit(store: RecordingStore, **options: Any) -> GroupCommit:
    return GroupCommit(cast(EventStore, store), **options)


def run_threads(target: Any, count: int, *, after_start: Any = None) -> None:
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.005)  # arrive in order
    if after_start:
        after_start()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def events(count: int) -> list[Any]:
    return [object()] * count  # GroupCommit only counts them


def test_a_lone_message_is_stored_at_once_in_its_own_transaction() -> None:
    store = RecordingStore()
    result = group_commit(store).store(events(3), message_id="only")
    assert store.groups == [["only"]]
    assert result.stored == [("github", "only")]


def test_messages_arriving_while_a_transaction_is_open_share_the_next_one_in_arrival_order() -> None:
    store = RecordingStore(hold_first=True)
    group = group_commit(store, flushers=1)
    results: dict[int, StoreResult] = {}

    def deliver(index: int) -> None:
        if index > 0:
            assert store.first_started.wait(5)
        results[index] = group.store(events(10), message_id=f"m{index}")

    def release_when_all_wait() -> None:
        deadline = time.monotonic() + 5
        while len(group._waiting) < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        store.release_first.set()

    run_threads(deliver, 6, after_start=release_when_all_wait)
    assert store.groups == [["m0"], ["m1", "m2", "m3", "m4", "m5"]]
    assert {index: result.stored for index, result in results.items()} == {
        index: [("github", f"m{index}")] for index in range(6)
    }


def test_a_group_takes_at_most_max_events_and_the_rest_follow() -> None:
    store = RecordingStore(hold_first=True)
    group = group_commit(store, flushers=1, max_events=25)

    def deliver(index: int) -> None:
        if index > 0:
            assert store.first_started.wait(5)
        group.store(events(10), message_id=f"m{index}")

    def release_when_all_wait() -> None:
        while len(group._waiting) < 5:
            time.sleep(0.005)
        store.release_first.set()

    run_threads(deliver, 6, after_start=release_when_all_wait)
    assert store.groups == [["m0"], ["m1", "m2"], ["m3", "m4"], ["m5"]]


def test_a_message_larger_than_max_events_still_goes_alone() -> None:
    store = RecordingStore()
    group_commit(store, max_events=5).store(events(50), message_id="big")
    assert store.groups == [["big"]]


def test_no_more_transactions_are_open_than_flushers() -> None:
    store = RecordingStore()
    group = group_commit(store, flushers=2)
    run_threads(lambda index: group.store(events(1), message_id=f"m{index}"), 16)
    assert store.most_open <= 2
    assert sorted(m for g in store.groups for m in g) == sorted(f"m{index}" for index in range(16))


def test_a_failed_transaction_fails_each_of_its_messages_with_its_own_error_and_no_other() -> None:
    store = RecordingStore(hold_first=True, fail_group=1)
    group = group_commit(store, flushers=1)
    outcomes: dict[int, BaseException | StoreResult] = {}

    def deliver(index: int) -> None:
        if index > 0:
            assert store.first_started.wait(5)
        try:
            outcomes[index] = group.store(events(1), message_id=f"m{index}")
        except TransientError as exc:
            outcomes[index] = exc

    def release_when_all_wait() -> None:
        while len(group._waiting) < 3:
            time.sleep(0.005)
        store.release_first.set()

    run_threads(deliver, 4, after_start=release_when_all_wait)
    assert store.groups == [["m0"], ["m1", "m2", "m3"]]
    assert isinstance(outcomes[0], StoreResult)
    failures = [outcomes[index] for index in (1, 2, 3)]
    assert all(isinstance(failure, TransientError) for failure in failures)
    assert len({id(failure) for failure in failures}) == 3


@pytest.mark.parametrize("options", [{"max_events": 0}, {"flushers": 0}])
def test_options_must_be_positive(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        group_commit(RecordingStore(), **options)
