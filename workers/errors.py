"""The one boundary where psycopg's exceptions become Hookyard's two outcomes."""

from __future__ import annotations

import psycopg
import psycopg_pool

from hookyard import metrics
from hookyard.errors import TransientError


def is_unstorable(exc: BaseException) -> bool:
    """A database refusal caused by the data itself: retrying the same row can never succeed.

    Class 22 (data exception: bad Unicode escape, value out of range) and class 23 (integrity:
    check or not-null) errors. Unique violations never reach here: every insert says ON CONFLICT.
    """
    return isinstance(exc, psycopg.errors.DataError | psycopg.errors.IntegrityError)


def translate(exc: BaseException) -> BaseException:
    """Wrap a failure worth retrying in :class:`TransientError` and count it; return others unchanged.

    Transient: the server or the connection went away (class 08, 57), it ran out of resources
    (class 53), a deadlock or serialization failure (class 40), or no pooled connection could
    be had in time.
    """
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        kind = type(exc).__name__
        metrics.TRANSIENT_FAILURES.labels(kind).inc()
        error = TransientError(
            f"PostgreSQL: {kind}: {str(exc).strip().splitlines()[0] if str(exc) else kind}"
        )
        error.__cause__ = exc
        return error
    return exc
