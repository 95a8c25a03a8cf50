"""The ingestion ASGI app: one route per source, each verify → identify → publish → 202.

A plain ASGI callable rather than a framework: profiles of the web process at 3,000 requests/s
showed a framework's middleware, routing and response layers taking more CPU than verifying,
identifying and publishing together. Routes go through :class:`producers.router.Router`: fixed
paths cost one dictionary lookup, and protocol routes carry parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from contracts.heartbeats import PING_BODY_LIMIT
from contracts.keys import Scope as KeyScope
from hookyard import metrics
from hookyard.config import Settings
from hookyard.errors import PublishFailed
from producers import (
    cloudevents,
    deployments,
    github,
    heartbeats,
    linear,
    pings,
    reports,
    sentry,
    slack,
    usage,
)
from producers.deliveries import Verified, guard_headers
from producers.errors import IngestError
from producers.http import (
    Handler,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    error_response,
    json_response,
    read_body,
    read_headers,
)
from producers.keys import KeyRegistry, authenticate
from producers.openapi import openapi_json
from producers.publisher import ERRORS_LANE, EVENTS_LANE, HEARTBEATS_LANE, USAGE_LANE, Lane, Publisher
from producers.reservations import POOL_WAIT, Pool, ReservationEndpoints
from producers.router import MethodNotAllowed, Router
from producers.usage_summary import summary_endpoint
from schema import queries

log = structlog.get_logger(__name__)

#: PostgreSQL connections of one web process: reservations and ``?create=1`` pings only, each one
#: short transaction (ingestion never waits for the database).
DATABASE_POOL_SIZE = 8

#: Checks a request's body: (headers, body, what ``Authorize`` returned, received at) → events.
Verify = Callable[[Mapping[str, str], bytes, Any, datetime], Verified]
#: Runs before the body is read: a webhook's secrets, or the principal of a bearer request.
Authorize = Callable[[Mapping[str, str]], Any]


def _constant(secrets: tuple[str, ...]) -> Authorize:
    """A webhook's authorization: its secrets, checked against the body by its verify."""
    return lambda _headers: secrets


class IngestApp:
    """The ASGI application. The publisher is started and stopped with the lifespan."""

    def __init__(
        self, settings: Settings, publisher: Publisher | None = None, registry: KeyRegistry | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or KeyRegistry(settings.database_url)
        self.publisher = publisher or Publisher(
            settings.amqp_url,
            confirm_timeout=settings.hookyard_confirm_timeout,
            max_batch=settings.hookyard_publish_batch,
            max_in_flight=settings.hookyard_publish_in_flight,
        )
        #: Opened and closed with the lifespan. A connection is checked as it is taken, so a
        #: restarted PostgreSQL costs one reconnection, not a burst of 503s.
        self.pool: Pool = AsyncConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=DATABASE_POOL_SIZE,
            open=False,
            check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": 3},
            name="web",
        )
        webhooks: dict[str, tuple[str, Verify, tuple[str, ...], tuple[str, ...]]] = {
            "/webhooks/github": (
                "github",
                github.verify,
                github.GUARDED_HEADERS,
                settings.github_webhook_secret,
            ),
            "/webhooks/slack": ("slack", slack.verify, slack.GUARDED_HEADERS, settings.slack_signing_secret),
            "/webhooks/linear": (
                "linear",
                linear.verify,
                linear.GUARDED_HEADERS,
                settings.linear_webhook_secret,
            ),
        }
        self.router: Router[Handler] = Router()
        for path, (source, verify, guarded, secrets) in webhooks.items():
            self.router.add(
                "POST", path, self._ingest(source, verify, guarded, _constant(secrets), routed=True)
            )
        self.router.add(
            "POST",
            "/v1/deployments",
            self._ingest(
                "deployment",
                self._deployments,
                deployments.GUARDED_HEADERS,
                self._bearer(KeyScope.DEPLOYMENTS),
            ),
        )
        self.router.add(
            "POST",
            "/v1/errors",
            self._ingest(
                "error",
                self._errors,
                deployments.GUARDED_HEADERS,
                self._bearer(KeyScope.ERRORS),
                lane=ERRORS_LANE,
            ),
        )
        self.router.add(
            "POST",
            "/v1/heartbeats",
            self._ingest(
                "heartbeat",
                self._heartbeats,
                deployments.GUARDED_HEADERS,
                self._bearer(KeyScope.HEARTBEATS),
                lane=HEARTBEATS_LANE,
            ),
        )
        self.router.add(
            "POST",
            "/v1/usage",
            self._ingest(
                "usage",
                self._usage,
                deployments.GUARDED_HEADERS,
                self._bearer(KeyScope.USAGE),
                lane=USAGE_LANE,
            ),
        )
        ping = self._ping()
        for pattern in ("/ping/{a}", "/ping/{a}/{b}", "/ping/{a}/{b}/{c}"):
            for method in ("GET", "HEAD", "POST"):
                self.router.add(method, pattern, ping)
        reservations = ReservationEndpoints(
            self.pool, self.registry, self._bearer(KeyScope.BUDGETS), settings.hookyard_max_body_bytes
        )
        for method, path, handler in (
            ("POST", "/v1/budgets/reservations", reservations.reserve),
            ("POST", "/v1/budgets/reservations/{reservation_id}/commit", reservations.commit),
            ("POST", "/v1/budgets/reservations/{reservation_id}/release", reservations.release),
            ("POST", "/api/{project_id:int}/envelope/", self._sentry(envelope=True)),
            ("POST", "/api/{project_id:int}/store/", self._sentry(envelope=False)),
            ("POST", "/api/v1/events", self._cloudevents()),
            ("GET", "/healthz", self._healthz),
            ("GET", "/readyz", self._readyz),
            ("GET", "/metrics", self._metrics),
            ("GET", "/openapi.json", self._openapi),
            ("GET", "/v1/usage/summary", summary_endpoint(self.settings, self.registry, self.pool)),
        ):
            self.router.add(method, path, handler)
        #: Methods served under each route pattern (the OpenAPI document and 405s read it).
        self.methods: dict[str, list[str]] = {}
        for method, pattern in self.router.routes():
            self.methods.setdefault(pattern, []).append(method)
        # Resolved once: a labels() lookup per request shows up in profiles.
        self._duration = {pattern: metrics.HTTP_DURATION.labels(pattern) for pattern in self.methods}
        self._duration_other = metrics.HTTP_DURATION.labels("other")
        self._requests: dict[tuple[str, int], Any] = {}  # (endpoint, status) -> counter child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        endpoint = "other"
        try:
            match = self.router.resolve(method, path)
        except MethodNotAllowed as exc:
            endpoint = exc.pattern
            allowed = ", ".join(exc.allowed)
            response = json_response(
                {"error": "method_not_allowed", "detail": f"{path} takes {allowed}."},
                405,
                headers=((b"allow", allowed.encode()),),
            )
        else:
            if match is None:
                response = json_response(
                    {"error": "not_found", "detail": f"Nothing is served at {path}."}, 404
                )
            else:
                endpoint = match.pattern
                headers, repeated = read_headers(scope["headers"])
                response = await match.handler(Request(scope, headers, receive, repeated, match.params))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"content-length", str(len(response.body)).encode()),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        counter = self._requests.get((endpoint, response.status))
        if counter is None:
            counter = self._requests[(endpoint, response.status)] = metrics.HTTP_REQUESTS.labels(
                endpoint, str(response.status)
            )
        counter.inc()
        self._duration.get(endpoint, self._duration_other).observe(time.perf_counter() - started)

    def _deployments(
        self, headers: Mapping[str, str], raw: bytes, principal: Any, received_at: datetime
    ) -> Verified:
        return deployments.verify(headers, raw, principal, received_at, self.registry)

    def _usage(
        self, headers: Mapping[str, str], raw: bytes, principal: Any, received_at: datetime
    ) -> Verified:
        return usage.verify(headers, raw, principal, received_at, self.registry)

    def _heartbeats(
        self, headers: Mapping[str, str], raw: bytes, principal: Any, received_at: datetime
    ) -> Verified:
        return heartbeats.verify(headers, raw, principal, received_at, self.registry)

    def _errors(
        self, headers: Mapping[str, str], raw: bytes, principal: Any, received_at: datetime
    ) -> Verified:
        return reports.verify(headers, raw, principal, received_at, self.registry)

    def _bearer(self, scope: KeyScope) -> Authorize:
        """Authorize a ``/v1`` request by the operator token or a project key holding ``scope``."""
        tokens = self.settings.hookyard_ingest_token
        return lambda headers: authenticate(headers, tokens, self.registry, scope)

    def _ingest(
        self,
        source: str,
        verify: Verify,
        guarded: tuple[str, ...],
        authorize: Authorize,
        *,
        routed: bool = False,
        lane: Lane = EVENTS_LANE,
    ) -> Handler:
        """verify → identify → publish → 202. ``routed`` events join the project their source is linked to."""
        accepted = metrics.EVENTS_ACCEPTED.labels(source)

        async def endpoint(request: Request) -> Response:
            received_at = datetime.now(UTC)
            headers = request.headers
            try:
                guard_headers(headers, request.repeated, guarded)
                credential = authorize(headers)
                raw = await read_body(headers, request.receive, self.settings.hookyard_max_body_bytes)
                verified = verify(headers, raw, credential, received_at)
            except IngestError as exc:
                metrics.EVENTS_REJECTED.labels(source, exc.code).inc()
                log.info(
                    "request_refused", source=source, status=exc.status, error=exc.code, detail=exc.detail
                )
                return error_response(exc)
            if verified.reply is not None:
                return json_response(verified.reply)
            events = self.registry.route(verified.events) if routed else verified.events
            try:
                await self.publisher.publish(events, lane)
            except PublishFailed as exc:
                log.warning(
                    "publish_failed",
                    source=source,
                    delivery_id=lane.identify(events[0]) if len(events) == 1 else None,
                    events=len(events),
                    error=str(exc),
                    **verified.log_context,
                )
                return json_response(
                    {
                        "error": "broker_unavailable",
                        "detail": f"The event was not accepted: {exc}. Retry later.",
                    },
                    503,
                    headers=((b"retry-after", b"5"),),
                )
            accepted.inc(len(events))
            if len(events) == 1:
                delivery_id = lane.identify(events[0])
                log.debug("event_accepted", source=source, delivery_id=delivery_id, **verified.log_context)
                return json_response({"delivery_id": delivery_id}, 202)
            log.debug("events_accepted", source=source, events=len(events))
            return json_response({"delivery_ids": [lane.identify(event) for event in events]}, 202)

        return endpoint

    def _sentry(self, *, envelope: bool) -> Handler:
        """``/api/<project id>/envelope/`` (or ``/store/``): see :mod:`producers.sentry`."""
        accepted_reports = metrics.EVENTS_ACCEPTED.labels("sentry")
        limit = self.settings.hookyard_max_body_bytes

        async def endpoint(request: Request) -> Response:
            received_at = datetime.now(UTC)
            headers = request.headers
            try:
                guard_headers(headers, request.repeated, sentry.GUARDED_HEADERS)
                key = sentry.project_key(
                    self.registry,
                    sentry.sentry_key(headers, request.scope.get("query_string", b"")),
                    int(str(request.params["project_id"])),
                )
                raw = await read_body(headers, request.receive, limit)
                body = sentry.decode_content(raw, headers.get("content-encoding"), limit)
                if envelope:
                    accepted = sentry.accept_envelope(body, key, received_at)
                else:
                    report = sentry.event_report(body, key, received_at, None)
                    accepted = sentry.Accepted(event_id=report.event_id, reports=[report])
            except IngestError as exc:
                metrics.EVENTS_REJECTED.labels("sentry", exc.code).inc()
                log.info(
                    "request_refused", source="sentry", status=exc.status, error=exc.code, detail=exc.detail
                )
                return error_response(exc)
            publishes = []
            if accepted.reports:
                publishes.append(self.publisher.publish(accepted.reports, ERRORS_LANE))
            if accepted.check_ins:
                publishes.append(self.publisher.publish(accepted.check_ins, HEARTBEATS_LANE))
            try:
                await asyncio.gather(*publishes)
            except PublishFailed as exc:
                log.warning("publish_failed", source="sentry", delivery_id=accepted.event_id, error=str(exc))
                return json_response(
                    {
                        "error": "broker_unavailable",
                        "detail": f"The envelope was not accepted: {exc}. Retry later.",
                    },
                    503,
                    headers=((b"retry-after", b"5"),),
                )
            accepted_reports.inc(len(accepted.reports) + len(accepted.check_ins))
            for item_type in accepted.dropped:
                metrics.SENTRY_ITEMS_DROPPED.labels(item_type).inc()
            log.debug("sentry_accepted", delivery_id=accepted.event_id, reports=len(accepted.reports))
            return json_response({"id": accepted.event_id} if accepted.event_id else {}, 200)

        return endpoint

    def _cloudevents(self) -> Handler:
        """``POST /api/v1/events``: see :mod:`producers.cloudevents`."""
        accepted = metrics.EVENTS_ACCEPTED.labels("cloudevents")
        authorize = self._bearer(KeyScope.USAGE)

        async def endpoint(request: Request) -> Response:
            received_at = datetime.now(UTC)
            headers = request.headers
            try:
                guard_headers(headers, request.repeated, deployments.GUARDED_HEADERS)
                principal = authorize(headers)
                raw = await read_body(headers, request.receive, self.settings.hookyard_max_body_bytes)
                metered = cloudevents.meter(headers, raw, principal, received_at, self.registry)
            except IngestError as exc:
                metrics.EVENTS_REJECTED.labels("cloudevents", exc.code).inc()
                log.info(
                    "request_refused",
                    source="cloudevents",
                    status=exc.status,
                    error=exc.code,
                    detail=exc.detail,
                )
                return error_response(exc)
            publishes = []
            if metered.records:
                publishes.append(self.publisher.publish(metered.records, USAGE_LANE))
            if metered.unmetered:
                publishes.append(self.publisher.publish(metered.unmetered, EVENTS_LANE))
            try:
                await asyncio.gather(*publishes)
            except PublishFailed as exc:
                log.warning("publish_failed", source="cloudevents", error=str(exc))
                return json_response(
                    {
                        "error": "broker_unavailable",
                        "detail": f"The events were not accepted: {exc}. Retry later.",
                    },
                    503,
                    headers=((b"retry-after", b"5"),),
                )
            accepted.inc(len(metered.records) + len(metered.unmetered))
            if metered.unmetered:
                metrics.CLOUDEVENTS_UNMETERED.inc(len(metered.unmetered))
            return Response(204, b"", content_type=b"application/json")

        return endpoint

    def _ping(self) -> Handler:
        """Healthchecks' ping URLs: see :mod:`producers.pings`."""
        accepted = metrics.EVENTS_ACCEPTED.labels("ping")
        limit_header = (b"ping-body-limit", str(PING_BODY_LIMIT).encode())

        def text(status: int, body: str) -> Response:
            retry = ((b"retry-after", b"5"),) if status == 503 else ()
            return Response(
                status,
                body.encode(),
                content_type=b"text/plain; charset=utf-8",
                headers=(limit_header, *retry),
            )

        async def endpoint(request: Request) -> Response:
            received_at = datetime.now(UTC)
            try:
                target = pings.parse_target([str(part) for part in request.params.values()])
                query = pings.parse_query(request.scope.get("query_string", b""))
                resolved = pings.resolve(target, self.registry, query.create)
                created = False
                if resolved.check_id is None:  # ?create=1 for a check that does not exist yet
                    check_id, created = await self._create_check(resolved.project_id, resolved.slug)
                    resolved = pings.Resolved(resolved.project_id, check_id, resolved.slug)
                raw = b""
                if request.scope["method"] == "POST":
                    raw = await read_body(
                        request.headers, request.receive, self.settings.hookyard_max_body_bytes
                    )
            except pings.PingRefused as refused:
                code = {404: "not_found", 400: "invalid_url"}.get(refused.status, "unavailable")
                metrics.EVENTS_REJECTED.labels("ping", code).inc()
                return text(refused.status, refused.text)
            except IngestError as exc:
                metrics.EVENTS_REJECTED.labels("ping", exc.code).inc()
                return text(exc.status, exc.detail)
            report = pings.ping_report(resolved, target, query, raw, received_at)
            try:
                await self.publisher.publish([report], HEARTBEATS_LANE)
            except PublishFailed as exc:
                log.warning("publish_failed", source="ping", delivery_id=report.report_id, error=str(exc))
                return text(503, "service unavailable: retry later")
            accepted.inc()
            log.debug("ping_accepted", delivery_id=report.report_id, signal=report.signal, check=report.check)
            status, answer = (201, "Created") if created else (200, "OK")
            return text(status, "" if request.scope["method"] == "HEAD" else answer)

        return endpoint

    async def _create_check(self, project_id: int, slug: str) -> tuple[int, bool]:
        """Create a check for ``?create=1`` (SPEC's defaults): its id, and whether this call made it.

        The one write a ping can cause, answered from PostgreSQL so that ``201 Created`` is true;
        while PostgreSQL is down it is a 503, and pings of known checks go on from memory.
        """
        try:
            async with self.pool.connection(timeout=POOL_WAIT) as conn:
                row = await (
                    await conn.execute(queries()["create_check"], {"project_id": project_id, "slug": slug})
                ).fetchone()
                created = row is not None
                if row is None:
                    row = await (
                        await conn.execute(queries()["find_check"], {"project_id": project_id, "slug": slug})
                    ).fetchone()
        except (PoolTimeout, PoolClosed, psycopg.Error, OSError) as exc:
            raise IngestError(503, "database_unavailable", "service unavailable: retry later") from exc
        if row is None:
            raise IngestError(503, "database_unavailable", "service unavailable: retry later")
        self.registry.remember_check(project_id, slug, int(row[0]), str(row[1]))
        return int(row[0]), created

    async def _healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        failing = []
        if not self.publisher.connected:
            failing.append("rabbitmq")
        try:
            async with await psycopg.AsyncConnection.connect(
                self.settings.database_url, connect_timeout=2
            ) as conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), 2)
        except (psycopg.Error, OSError, TimeoutError):
            failing.append("postgresql")
        if failing:
            return json_response(
                {"error": "not_ready", "detail": f"Not answering: {', '.join(failing)}.", "failing": failing},
                503,
            )
        return json_response({"status": "ready"})

    async def _metrics(self, request: Request) -> Response:
        return Response(200, generate_latest(), content_type=CONTENT_TYPE_LATEST.encode())

    async def _openapi(self, request: Request) -> Response:
        return Response(200, openapi_json())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with contextlib.suppress(Exception):
                    await self.publisher.stop()
                with contextlib.suppress(Exception):
                    await self.registry.stop()
                with contextlib.suppress(Exception):
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        for variable, values in (
            ("GITHUB_WEBHOOK_SECRET", self.settings.github_webhook_secret),
            ("SLACK_SIGNING_SECRET", self.settings.slack_signing_secret),
            ("LINEAR_WEBHOOK_SECRET", self.settings.linear_webhook_secret),
            ("HOOKYARD_INGEST_TOKEN", self.settings.hookyard_ingest_token),
        ):
            if not values:
                consequence = (
                    "only project keys are accepted on /v1"
                    if variable == "HOOKYARD_INGEST_TOKEN"
                    else "401 for its source"
                )
                log.warning(
                    "source_disabled", variable=variable, detail=f"{variable} is unset: {consequence}"
                )
        # Connects in the background: a database down at start makes reservations 503, nothing else.
        await self.pool.open(wait=False)
        # Keys load in the background; a database that is down at start delays project keys only.
        await asyncio.gather(self.registry.start(wait=5), self.publisher.start(wait=5))


def create_app(settings: Settings, publisher: Publisher | None = None) -> IngestApp:
    """Build the app; the publisher connects when the server starts it."""
    return IngestApp(settings, publisher)
