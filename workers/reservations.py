"""The scheduler's expiry of budget reservations whose TTL has ended.

A reservation neither committed nor released expires at its ``expires_at``: its amount goes back
to its budget. The rule is migration 0013's ``hookyard_expire_reservations`` (budget rows locked
in id order, then the reservations re-checked under those locks), called in batches, each its own
transaction, on every sweep round of the scheduler. A commit or release that meets a reservation
past its TTL expires it itself, so the TTL holds to the instant whatever this job's interval.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog

from hookyard import metrics
from hookyard.clock import Clock
from schema import queries

log = structlog.get_logger(__name__)

#: Reservations one transaction expires; a larger backlog is taken by the next batch at once.
EXPIRY_BATCH = 1000


def expire_reservations(
    conn: psycopg.Connection[tuple[Any, ...]], clock: Clock, *, batch: int = EXPIRY_BATCH
) -> int:
    """Expire every held reservation whose ``expires_at`` is at or before ``clock.now()``.

    ``conn`` is in autocommit: each batch commits on its own. Returns how many expired (counted in
    ``hookyard_reservations_expired_total`` by enforcement).
    """
    now = clock.now()
    total = 0
    while True:
        rows = conn.execute(queries()["budgets_expire"], {"at": now, "batch": batch}).fetchall()
        expired = 0
        for enforcement, count in rows:
            metrics.RESERVATIONS_EXPIRED.labels(str(enforcement)).inc(int(count))
            expired += int(count)
        total += expired
        if expired < batch:
            break
    if total:
        log.info("reservations_expired", reservations=total)
    return total
