"""``/v1/budgets/reservations``: reserve, commit and release budget amounts before spending.

Unlike ingestion, which answers once RabbitMQ holds the message and stores it later, a
reservation is a decision only PostgreSQL can take: each request is one call of a migration 0013
function (through ``schema/budgets.sql``), in one transaction, on a connection of the web
process's small pool. So reservations need the database: while it does not answer, they are 503
with ``Retry-After``, and ingestion goes on. The rules (idempotency, hard and soft budgets,
expiry, the ledger of committed usage) are the functions', shared with ``hookyard budgets reserve``
and the scheduler; this module authenticates, validates, calls and answers:

- ``POST /v1/budgets/reservations`` ``{"id", "project", "resource_type", "amount", "ttl_seconds"}``:
  201 :class:`contracts.responses.Reservation` (the first reservation again for an ``id`` reserved
  before); 409 ``budget_exceeded`` with ``remaining`` when a hard budget cannot cover it; 409
  ``no_budget`` when the project has no budget for the resource now.
- ``POST /v1/budgets/reservations/<id>/commit`` ``{"amount"}``: 200
  :class:`contracts.responses.SettledReservation`, the first commit's again when repeated; 409
  ``reservation_closed`` for a released or expired one; 409 ``budget_exceeded`` when more than
  was reserved is committed and a hard budget cannot cover the difference.
- ``POST /v1/budgets/reservations/<id>/release``: 200 (released now or before, or expired: its
  amount is free either way); 409 ``reservation_closed`` for a committed one.
- 404 ``not_found`` for an id that is no reservation; 403 ``forbidden_project`` for another
  project's reservation under a project key (the operator's token reaches every project).

Bearer authentication is /v1's: the operator's token, or a project key holding the ``budgets``
scope, with ``project`` rules of :func:`producers.keys.project_of`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, LiteralString, TypeVar

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
from pydantic import ValidationError

from contracts.ingest import CommitIn, ReservationIn, decimal_text
from hookyard import metrics
from producers.deliveries import guard_headers, parse_json_object, require_media_type
from producers.deployments import validation_error
from producers.errors import IngestError
from producers.http import Request, Response, error_response, json_response, read_body
from producers.keys import DEFAULT_ORGANIZATION, KeyRegistry, Principal, ProjectKey, project_of
from schema import queries

log = structlog.get_logger(__name__)

#: The token header: refused when repeated or not UTF-8 (producers.deliveries.guard_headers).
GUARDED_HEADERS = ("authorization",)
#: Seconds a request waits for a pooled connection before its 503.
POOL_WAIT = 3.0
#: How many times a transaction PostgreSQL rolled back (a deadlock, a serialization failure) is
#: run again before the 503: each call is one whole transaction, so running it again is safe.
ROLLBACK_RETRIES = 2

Authorize = Callable[[Mapping[str, str]], Principal]
#: The web process's pool of autocommit connections (producers.app opens and closes it).
Pool = AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]
Body = TypeVar("Body", ReservationIn, CommitIn)


def database_unavailable() -> IngestError:
    return IngestError(
        503,
        "database_unavailable",
        "PostgreSQL did not answer: reservations are decided by the database, unlike ingestion. Retry later.",
    )


def _not_found(reservation: object) -> IngestError:
    return IngestError(404, "not_found", f"There is no reservation {reservation}.")


def _closed(reservation: uuid.UUID, state: str, doing: str) -> IngestError:
    return IngestError(
        409,
        "reservation_closed",
        f"Reservation {reservation} was {state} before; there is nothing to {doing}.",
        state=state,
    )


def _exceeded(row: Mapping[str, Any], what: str) -> IngestError:
    remaining = decimal_text(row["remaining"])
    return IngestError(
        409,
        "budget_exceeded",
        f"The budget cannot cover {what}: {remaining} remains of its period.",
        remaining=remaining,
    )


def _split(project: str) -> tuple[str, str]:
    """``slug`` (default organization) or ``org/slug`` → (org, slug)."""
    org, sep, slug = project.partition("/")
    return (org, slug) if sep else (DEFAULT_ORGANIZATION, project)


def _enforcement(row: Mapping[str, Any]) -> str:
    return str(row["enforcement"] or "none")


class ReservationEndpoints:
    """The three handlers, over the app's connection pool and key registry."""

    def __init__(
        self,
        pool: Pool,
        registry: KeyRegistry,
        authorize: Authorize,
        max_body_bytes: int,
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.authorize = authorize
        self.max_body_bytes = max_body_bytes

    async def call(self, name: LiteralString, params: dict[str, Any]) -> dict[str, Any]:
        """The one row of a ``budgets_*`` function call, or the 503 of an unreachable database."""
        attempt = 0
        while True:
            try:
                async with self.pool.connection(timeout=POOL_WAIT) as conn:
                    cursor = conn.cursor(row_factory=dict_row)
                    await cursor.execute(queries()[name], params)
                    row = await cursor.fetchone()
            except psycopg.errors.TransactionRollback as exc:
                attempt += 1
                if attempt > ROLLBACK_RETRIES:
                    raise database_unavailable() from exc
                continue
            except (PoolTimeout, PoolClosed, psycopg.OperationalError, psycopg.InterfaceError) as exc:
                log.warning("reservations_database_unavailable", query=name, error=_first_line(exc))
                raise database_unavailable() from exc
            if row is None:  # each function returns one row
                raise database_unavailable()
            return row

    async def reserve(self, request: Request) -> Response:
        return await self._answer("reserve", self._reserve, request)

    async def commit(self, request: Request) -> Response:
        return await self._answer("commit", self._commit, request)

    async def release(self, request: Request) -> Response:
        return await self._answer("release", self._release, request)

    async def _answer(
        self, operation: str, handle: Callable[[Request], Awaitable[Response]], request: Request
    ) -> Response:
        """The handler's answer, or the JSON error of the refusal it raised."""
        try:
            return await handle(request)
        except IngestError as exc:
            metrics.EVENTS_REJECTED.labels("reservations", exc.code).inc()
            log.info(
                "request_refused",
                source="reservations",
                operation=operation,
                status=exc.status,
                error=exc.code,
            )
            return error_response(exc)

    async def _reserve(self, request: Request) -> Response:
        principal = self._authorize(request)
        raw = await read_body(request.headers, request.receive, self.max_body_bytes)
        body = _validated(ReservationIn, request.headers, raw)
        project_id, project = project_of(principal, body.project, self.registry)
        if project is None:
            raise IngestError(
                422,
                "validation_failed",
                "project is required with the operator token.",
                errors=[{"field": "project", "message": "Field required"}],
            )
        org, slug = _split(project)
        row = await self.call(
            "budgets_reserve",
            {
                "project_id": project_id,
                "org": org,
                "slug": slug,
                "client_id": body.id,
                "resource_type": body.resource_type,
                "amount": body.amount,
                "ttl_seconds": body.ttl_seconds,
                "at": None,
            },
        )
        outcome = row["outcome"]
        if outcome == "no_budget":
            metrics.RESERVATIONS_REFUSED.labels("none").inc()
            raise IngestError(
                409,
                "no_budget",
                f"Project {project} has no budget for {body.resource_type} now: nothing to reserve from "
                "(`hookyard budgets set` creates one).",
            )
        if outcome == "budget_exceeded":
            metrics.RESERVATIONS_REFUSED.labels(_enforcement(row)).inc()
            raise _exceeded(row, f"{decimal_text(body.amount)} of {body.resource_type}")
        if outcome == "granted":
            metrics.RESERVATIONS_GRANTED.labels(_enforcement(row)).inc()
            log.debug(
                "reservation_granted",
                project=project,
                reservation_id=str(row["reservation_id"]),
                overrun=decimal_text(row["overrun"]),
            )
        return json_response(
            {
                "reservation_id": str(row["reservation_id"]),
                "state": row["state"],
                "amount": decimal_text(row["reserved"]),
                "remaining": decimal_text(row["remaining"]),
                "overrun": decimal_text(row["overrun"]),
                "expires_at": row["expires_at"],
            },
            201,
        )

    async def _commit(self, request: Request) -> Response:
        principal = self._authorize(request)
        reservation = _reservation_id(request)
        raw = await read_body(request.headers, request.receive, self.max_body_bytes)
        body = _validated(CommitIn, request.headers, raw)
        row = await self.call(
            "budgets_commit",
            {
                "reservation_id": reservation,
                "amount": body.amount,
                "project_id": _own_project(principal),
                "at": None,
            },
        )
        _refuse_unsettled(principal, reservation, row, "commit")
        if row["outcome"] == "budget_exceeded":
            metrics.RESERVATIONS_REFUSED.labels(_enforcement(row)).inc()
            raise _exceeded(row, f"committing {decimal_text(body.amount)}, more than was reserved")
        if row["outcome"] == "committed":
            metrics.RESERVATIONS_COMMITTED.labels(_enforcement(row)).inc()
            for threshold in row["crossed"] or ():
                metrics.BUDGET_ALERTS.labels(metrics.project_label(row["project_id"]), str(threshold)).inc()
                log.info(
                    "budget_threshold_crossed",
                    project_id=row["project_id"],
                    threshold=threshold,
                    reservation_id=str(reservation),
                )
        return json_response(
            {
                "reservation_id": str(reservation),
                "state": row["state"],
                "committed": decimal_text(row["committed"]),
                "remaining": decimal_text(row["remaining"]),
            }
        )

    async def _release(self, request: Request) -> Response:
        principal = self._authorize(request)
        reservation = _reservation_id(request)
        row = await self.call(
            "budgets_release",
            {"reservation_id": reservation, "project_id": _own_project(principal), "at": None},
        )
        _refuse_unsettled(principal, reservation, row, "release")
        if row["outcome"] == "released":
            metrics.RESERVATIONS_RELEASED.labels(_enforcement(row)).inc()
        return json_response(
            {
                "reservation_id": str(reservation),
                "state": row["state"],
                "remaining": decimal_text(row["remaining"]),
            }
        )

    def _authorize(self, request: Request) -> Principal:
        guard_headers(request.headers, request.repeated, GUARDED_HEADERS)
        return self.authorize(request.headers)


def _refuse_unsettled(
    principal: Principal, reservation: uuid.UUID, row: Mapping[str, Any], doing: str
) -> None:
    """The 403/404/409 of a commit or release the function did not carry out."""
    outcome = row["outcome"]
    if outcome == "not_found":
        raise _not_found(reservation)
    if outcome == "forbidden":
        owner = principal.project_slug if isinstance(principal, ProjectKey) else "?"
        raise IngestError(
            403,
            "forbidden_project",
            f"Reservation {reservation} belongs to another project than this key's ({owner}).",
        )
    if outcome == "expired":  # held past its TTL: expired by this request
        metrics.RESERVATIONS_EXPIRED.labels(_enforcement(row)).inc()
        if doing == "commit":
            raise _closed(reservation, "expired", doing)
    elif outcome == "closed":
        raise _closed(reservation, str(row["state"]), doing)


def _validated(model: type[Body], headers: Mapping[str, str], raw: bytes) -> Body:
    require_media_type(headers, "application/json")
    try:
        return model.model_validate(parse_json_object(raw))
    except ValidationError as exc:
        raise validation_error([(None, exc)]) from None


def _reservation_id(request: Request) -> uuid.UUID:
    text = str(request.params["reservation_id"])
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _not_found(text[:64]) from None


def _own_project(principal: Principal) -> int | None:
    """The project a key may act on; None for the operator, who may act on any."""
    return principal.project_id if isinstance(principal, ProjectKey) else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
