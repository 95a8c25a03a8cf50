"""One clock for everything that compares a deadline with now.

The scheduler's sweep asks it for now; tests give the sweep a clock of their own to step
through every transition without waiting. Production uses :data:`SYSTEM`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The machine's time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM = SystemClock()
