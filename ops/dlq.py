"""Dead-letter operations: list, show, replay (each letter at most once), purge."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hookyard.errors import HookyardError, ServiceUnavailable
from ops.broker import ConfirmingPublisher
from schema import queries

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Letters claimed and published per transaction during a replay.
REPLAY_CHUNK = 100


def parse_age(value: str) -> timedelta:
    """``30m``, ``2h``, ``7d``... into a timedelta, or a one-line error."""
    match = _DURATION.match(value.strip())
    if not match:
        raise HookyardError(f"age {value!r} is not a number followed by s, m, h, d or w (e.g. 2h)")
    return timedelta(**{_UNITS[match["unit"]]: int(match["n"])})


@dataclass(frozen=True)
class Filters:
    queue: str | None = None
    actor: str | None = None
    reason: str | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    ids: tuple[int, ...] = ()
    include_replayed: bool = False
    limit: int = 1000

    def params(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "actor": self.actor,
            "reason": self.reason,
            "older_than": self.older_than,
            "newer_than": self.newer_than,
            "ids": list(self.ids) or None,
            "include_replayed": self.include_replayed,
            "limit": self.limit,
        }


@contextmanager
def _connect(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    try:
        conn = psycopg.connect(database_url, row_factory=dict_row, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostgreSQL", str(exc).strip().splitlines()[0]) from exc
    with conn:
        yield conn


def select(database_url: str, filters: Filters) -> list[dict[str, Any]]:
    with _connect(database_url) as conn:
        return conn.execute(queries()["dlq_select"], filters.params()).fetchall()


def show(database_url: str, letter_id: int) -> dict[str, Any] | None:
    with _connect(database_url) as conn:
        return conn.execute(queries()["dlq_show"], {"id": letter_id}).fetchone()


def replay(
    database_url: str, amqp_url: str, ids: list[int], progress: Callable[[int, int], None] | None = None
) -> int:
    """Put the letters back on their queues; return how many went.

    Each chunk is claimed (marked replayed) and published inside one transaction that commits
    only after RabbitMQ confirmed every publish, so a letter goes back at most once per replay;
    a crash between the confirms and the commit leaves it unmarked, and replaying it again is
    harmless because the store never writes an event twice.
    """
    done = 0
    with ConfirmingPublisher(amqp_url) as publisher, _connect(database_url) as conn:
        for start in range(0, len(ids), REPLAY_CHUNK):
            chunk = ids[start : start + REPLAY_CHUNK]
            with conn.transaction():
                claimed = conn.execute(queries()["dlq_claim"], {"ids": chunk}).fetchall()
                for row in claimed:
                    publisher.publish(row["queue"], bytes(row["body"]))
            done += len(claimed)
            if progress:
                progress(done, len(ids))
    return done


def purge(database_url: str, ids: list[int]) -> int:
    with _connect(database_url) as conn, conn.transaction():
        return len(conn.execute(queries()["dlq_purge"], {"ids": ids}).fetchall())


def breaker_status(database_url: str, actor: str | None = None) -> list[dict[str, Any]]:
    """Every actor's dead-letter breaker that ever tripped (or one actor's)."""
    with _connect(database_url) as conn:
        return conn.execute(queries()["breaker_status"], {"actor": actor}).fetchall()


def breaker_reset(database_url: str, actor: str | None = None) -> list[str]:
    """Close open breakers (one actor's, or all); the actors that were closed.

    Workers resume within seconds; dead letters from before the reset stop counting.
    """
    with _connect(database_url) as conn, conn.transaction():
        return [row["actor"] for row in conn.execute(queries()["breaker_reset"], {"actor": actor}).fetchall()]
