"""The scheduler's refresh of ``project_resource_summary``, the daily usage totals per project.

Migration 0012 owns the materialized view and ``hookyard_refresh_resource_summary()``, which runs
``REFRESH MATERIALIZED VIEW CONCURRENTLY`` with the owner's rights: readers (``GET
/v1/usage/summary``, Grafana) keep reading the previous contents while it runs and never wait.
Each scheduler pass calls :func:`refresh_summary`; it refreshes when
``HOOKYARD_SUMMARY_REFRESH_INTERVAL`` seconds have gone by since the last refresh this process
started (at once in a new process, so ``hookyard scheduler --once`` always refreshes). The
passes come every ``HOOKYARD_SCHEDULER_INTERVAL`` seconds, so the view is refreshed at most that
often. A refresh that fails raises, like every step of the pass, and is tried again at the next.

The refresh recomputes the whole view from ``resource_usage``: its time grows with the usage
kept (about 6 s for 5 million rows on a 2-CPU machine), which ``hookyard_summary_refresh_seconds``
shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from hookyard import metrics
from hookyard.config import Settings
from schema import queries

log = structlog.get_logger(__name__)


class SummaryRefresher:
    """Refreshes the view when ``interval`` seconds have passed since the last refresh started."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = float("-inf")

    def __call__(self, conn: psycopg.Connection[Any], interval: float) -> bool:
        """Refresh if due; True when it did. A failure raises and leaves the refresh due."""
        started = self._clock()
        if started - self._last < interval:
            return False
        timer = time.perf_counter()
        conn.execute(queries()["summary_refresh"])
        seconds = time.perf_counter() - timer
        self._last = started
        metrics.SUMMARY_REFRESH_DURATION.observe(seconds)
        log.info("summary_refreshed", view="project_resource_summary", seconds=round(seconds, 3))
        return True


_REFRESHER = SummaryRefresher()


def refresh_summary(conn: psycopg.Connection[Any], settings: Settings) -> bool:
    """The scheduler pass's step: refresh ``project_resource_summary`` when it is due."""
    return _REFRESHER(conn, settings.hookyard_summary_refresh_interval)
