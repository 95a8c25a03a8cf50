"""The ingestion ASGI app: one route per source, each verify → identify → publish → 202."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import EventEnvelope
from hookyard import metrics
from hookyard.config import Settings
from hookyard.errors import PublishFailed
from producers import deployments, github, linear, slack
from producers.deliveries import Verified
from producers.errors import IngestError
from producers.openapi import openapi_document
from producers.publisher import Publisher

log = structlog.get_logger(__name__)

Verify = Callable[[Mapping[str, str], bytes, tuple[str, ...], datetime], Verified]


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: IngestError) -> JSON:
    return JSON(exc.body(), status_code=exc.status)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit`` (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise IngestError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        except ValueError:
            raise IngestError(400, "invalid_header", "Content-Length is not a number.") from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, publisher: Publisher | None = None) -> Starlette:  # noqa: PLR0915 - one table of route closures
    """Build the app. The publisher is started and stopped with the app's lifespan."""
    publisher = publisher or Publisher(
        settings.amqp_url,
        confirm_timeout=settings.hookyard_confirm_timeout,
        max_batch=settings.hookyard_publish_batch,
    )
    secrets = {
        "github": settings.github_webhook_secret,
        "slack": settings.slack_signing_secret,
        "linear": settings.linear_webhook_secret,
        "deployment": settings.hookyard_ingest_token,
    }

    async def accept(source: str, events: list[EventEnvelope], context: dict[str, Any]) -> Response:
        try:
            await publisher.publish(events)
        except PublishFailed as exc:
            log.warning("publish_failed", source=source, error=str(exc), **context)
            return JSON(
                {"error": "broker_unavailable", "detail": f"The event was not accepted: {exc}. Retry later."},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        metrics.EVENTS_ACCEPTED.labels(source).inc(len(events))
        log.debug("event_accepted", source=source, events=len(events), **context)
        if len(events) == 1:
            return JSON({"delivery_id": events[0].delivery_id}, status_code=202)
        return JSON({"delivery_ids": [event.delivery_id for event in events]}, status_code=202)

    def ingest(source: str, verify: Verify) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            received_at = datetime.now(UTC)
            context: dict[str, Any] = {}
            try:
                raw = await read_body(request, settings.hookyard_max_body_bytes)
                verified = verify(request.headers, raw, secrets[source], received_at)
            except IngestError as exc:
                metrics.EVENTS_REJECTED.labels(source, exc.code).inc()
                log.info(
                    "request_refused", source=source, status=exc.status, error=exc.code, detail=exc.detail
                )
                return error_response(exc)
            if verified.reply is not None:
                return JSON(verified.reply, status_code=200)
            context = dict(verified.log_context)
            if len(verified.events) == 1:
                context["delivery_id"] = verified.events[0].delivery_id
            return await accept(source, verified.events, context)

        return endpoint

    async def not_built(request: Request) -> Response:
        try:
            deployments.authenticate(request.headers, settings.hookyard_ingest_token)
        except IngestError as exc:
            return error_response(exc)
        return JSON(
            {
                "error": "not_implemented",
                "detail": f"{request.url.path} is in the contract but not built yet; nothing was stored.",
            },
            status_code=501,
        )

    async def healthz(_: Request) -> Response:
        return JSON({"status": "ok"})

    async def readyz(_: Request) -> Response:
        failing = []
        if not publisher.connected:
            failing.append("rabbitmq")
        try:
            async with await psycopg.AsyncConnection.connect(
                settings.database_url, connect_timeout=2
            ) as conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), 2)
        except (psycopg.Error, OSError, TimeoutError):
            failing.append("postgresql")
        if failing:
            return JSON(
                {"error": "not_ready", "detail": f"Not answering: {', '.join(failing)}.", "failing": failing},
                status_code=503,
            )
        return JSON({"status": "ready"})

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_: Request) -> Response:
        return JSON(openapi_document())

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSON({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for variable, values in (
            ("GITHUB_WEBHOOK_SECRET", settings.github_webhook_secret),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
            ("LINEAR_WEBHOOK_SECRET", settings.linear_webhook_secret),
            ("HOOKYARD_INGEST_TOKEN", settings.hookyard_ingest_token),
        ):
            if not values:
                log.warning(
                    "source_disabled", variable=variable, detail=f"{variable} is unset: 401 for its source"
                )
        await publisher.start(wait=5)
        try:
            yield
        finally:
            await publisher.stop()

    routes = [
        Route("/webhooks/github", ingest("github", github.verify), methods=["POST"]),
        Route("/webhooks/slack", ingest("slack", slack.verify), methods=["POST"]),
        Route("/webhooks/linear", ingest("linear", linear.verify), methods=["POST"]),
        Route("/v1/deployments", ingest("deployment", deployments.verify), methods=["POST"]),
        Route("/v1/heartbeats", not_built, methods=["POST"]),
        Route("/v1/usage", not_built, methods=["POST"]),
        Route("/v1/errors", not_built, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    return _Instrumented(app)  # type: ignore[return-value]


class _Instrumented:
    """Counts and times every response by route, without touching the handlers."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.router = app.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in _KNOWN_PATHS else "other"
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        structlog.contextvars.clear_contextvars()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.HTTP_REQUESTS.labels(endpoint, str(status)).inc()
            metrics.HTTP_DURATION.labels(endpoint).observe(time.perf_counter() - started)


_KNOWN_PATHS = frozenset(
    {
        "/webhooks/github",
        "/webhooks/slack",
        "/webhooks/linear",
        "/v1/deployments",
        "/v1/heartbeats",
        "/v1/usage",
        "/v1/errors",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
)
