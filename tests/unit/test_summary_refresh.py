"""The scheduler refreshes the usage summary once per HOOKYARD_SUMMARY_REFRESH_INTERVAL, at its passes."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from schema import queries
from workers.summary import SummaryRefresher


def test_the_summary_is_refreshed_once_per_interval() -> None:
    now = [1000.0]
    refresher = SummaryRefresher(clock=lambda: now[0])
    executed: list[str] = []

    class Connection:
        def execute(self, statement: str) -> None:
            executed.append(statement)

    conn: Any = Connection()
    assert refresher(conn, 60)  # a new process refreshes at once
    now[0] += 59.9
    assert not refresher(conn, 60)
    now[0] += 0.1
    assert refresher(conn, 60)
    assert executed == [queries()["summary_refresh"]] * 2


def test_a_refresh_that_fails_is_due_again_at_the_next_pass() -> None:
    refresher = SummaryRefresher(clock=lambda: 5.0)

    class Broken:
        def execute(self, statement: str) -> None:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(psycopg.OperationalError):
        refresher(Broken(), 60)

    class Working:
        def execute(self, statement: str) -> None:
            pass

    assert refresher(Working(), 60)
