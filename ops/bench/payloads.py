"""Requests of the domain scenarios (keys, errors, heartbeats, usage): pure, so the tests run them.

Each builder returns raw HTTP/1.1 requests (:func:`ops.bench.requests.raw_request`), every one with
its own identity (a deployment id, a Sentry ``event_id``, a heartbeat id, a CloudEvent id), so
nothing a run sends is deduplicated away unless wrk runs out of them and starts over.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ops.bench.requests import raw_request

#: wrk's template mode replaces every occurrence of this with a 16-digit counter (thread, index):
#: the same width, so a body's Content-Length holds. See ``ops/bench/wrk.lua``.
PLACEHOLDER = "@@SPLICE@@@@@@@@"
assert len(PLACEHOLDER) == 16


def bearer(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


# --- keys: /v1/deployments -------------------------------------------------------------------


def deployment_body(deployment_id: str) -> bytes:
    """A deployment as a pipeline reports it, ``project`` omitted (a key names its own)."""
    return orjson.dumps(
        {
            "id": deployment_id,
            "service": "checkout",
            "environment": "production",
            "version": "2026.11.30-4",
            "status": "succeeded",
            "commit_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
            "started_at": "2026-11-30T03:58:00Z",
            "finished_at": "2026-11-30T04:00:00Z",
        }
    )


def deployment_requests(tokens: Sequence[str], count: int, tag: str) -> Iterator[bytes]:
    """``count`` deployments, request ``n`` under ``tokens[n % len(tokens)]``: spread evenly."""
    headers = [bearer(token) for token in tokens]
    for index in range(count):
        body = deployment_body(f"{tag}-{index:09d}")
        yield raw_request("/v1/deployments", headers[index % len(headers)], body)


# --- errors: Sentry envelopes ----------------------------------------------------------------

_APP_FRAMES = (
    ("shop/api/views.py", "shop.api.views", "create_order", 88),
    ("shop/api/mixins.py", "shop.api.mixins", "dispatch_checked", 41),
    ("shop/orders/service.py", "shop.orders.service", "place", 132),
    ("shop/orders/service.py", "shop.orders.service", "_reserve_stock", 176),
    ("shop/inventory/client.py", "shop.inventory.client", "reserve", 59),
    ("shop/inventory/client.py", "shop.inventory.client", "_post", 97),
    ("shop/inventory/parse.py", "shop.inventory.parse", "quantity_of", 23),
)
_LIBRARY_FRAMES = (
    ("django/core/handlers/exception.py", "django.core.handlers.exception", "inner", 55),
    ("django/core/handlers/base.py", "django.core.handlers.base", "_get_response", 197),
    ("django/views/decorators/csrf.py", "django.views.decorators.csrf", "_view_wrapper", 65),
    ("django/views/generic/base.py", "django.views.generic.base", "view", 104),
    ("rest_framework/views.py", "rest_framework.views", "dispatch", 509),
    ("rest_framework/views.py", "rest_framework.views", "handle_exception", 469),
    ("rest_framework/views.py", "rest_framework.views", "raise_uncaught_exception", 480),
    ("rest_framework/views.py", "rest_framework.views", "dispatch", 506),
    ("django/db/transaction.py", "django.db.transaction", "inner", 79),
    ("contextlib.py", "contextlib", "inner", 81),
    ("requests/sessions.py", "requests.sessions", "post", 637),
    ("requests/sessions.py", "requests.sessions", "request", 589),
    ("requests/models.py", "requests.models", "json", 978),
)


def _frame(path: str, module: str, function: str, line: int, in_app: bool) -> dict[str, Any]:
    site = "/srv/shop/" if in_app else "/usr/local/lib/python3.12/site-packages/"
    frame: dict[str, Any] = {
        "filename": path,
        "abs_path": site + path,
        "function": function,
        "module": module,
        "lineno": line,
        "context_line": f"    return self._{function}(request)",
        "in_app": in_app,
    }
    if in_app:  # source context and locals on the app's frames; the library's keep their line only
        frame["pre_context"] = [f"def {function}(self, request):"]
        frame["post_context"] = [""]
        frame["vars"] = {"self": "<object at 0x7f3a2c1d9e10>", "request": "<Request: POST '/api/orders/'>"}
    return frame


#: Outermost first, as Sentry sends them: the library's request handling, then the app's code.
_FRAMES = [_frame(*spec, in_app=False) for spec in _LIBRARY_FRAMES[:7]] + [
    _frame(*spec, in_app=True) for spec in _APP_FRAMES[:3]
] + [_frame(*_LIBRARY_FRAMES[8], in_app=False)] + [
    _frame(*spec, in_app=True) for spec in _APP_FRAMES[3:6]
] + [_frame(*spec, in_app=False) for spec in _LIBRARY_FRAMES[10:13]] + [
    _frame(*_APP_FRAMES[6], in_app=True)
]  # fmt: skip

_MODULES = {
    "django": "5.1.4", "djangorestframework": "3.15.2", "psycopg": "3.2.3", "requests": "2.32.3",
    "gunicorn": "23.0.0", "sentry-sdk": "2.19.2",
}  # fmt: skip


def sentry_event(event_id: str, exception_type: str, message: str, now: datetime) -> dict[str, Any]:
    """A Python exception event shaped like sentry-sdk 2's (Django integration): about 7.5 KB of JSON.

    18 frames (7 in-app), trace/runtime/os contexts, request, user, tags, breadcrumbs, modules.
    """
    stamp = now.isoformat().replace("+00:00", "Z")
    breadcrumbs = [
        {"type": "default", "category": "query", "level": "info", "timestamp": stamp,
         "message": 'SELECT "orders_order"."id", "orders_order"."status" FROM "orders_order" WHERE '
                    '"orders_order"."id" = %s LIMIT 21', "data": {"db.system": "postgresql"}},
        {"type": "http", "category": "httplib", "level": "info", "timestamp": stamp,
         "data": {"url": "http://inventory.internal:8080/v2/reservations", "method": "POST",
                  "status_code": 200, "reason": "OK"}},
        {"type": "log", "category": "shop.orders", "level": "warning", "timestamp": stamp,
         "message": "stock below threshold for sku 100234", "data": {}},
    ]  # fmt: skip
    return {
        "event_id": event_id,
        "timestamp": stamp,
        "platform": "python",
        "level": "error",
        "server_name": "web-7f9c6d5b8-x2kqp",
        "release": "shop@2026.11.30-4",
        "environment": "production",
        "transaction": "/api/orders/",
        "transaction_info": {"source": "route"},
        "sdk": {
            "name": "sentry.python.django",
            "version": "2.19.2",
            "packages": [{"name": "pypi:sentry-sdk", "version": "2.19.2"}],
            "integrations": [
                "argv",
                "atexit",
                "dedupe",
                "django",
                "excepthook",
                "logging",
                "modules",
                "stdlib",
                "threading",
            ],
        },
        "exception": {
            "values": [
                {
                    "type": exception_type,
                    "value": message,
                    "module": None,
                    "mechanism": {"type": "django", "handled": False},
                    "stacktrace": {"frames": _FRAMES},
                }
            ]
        },
        "contexts": {
            "trace": {
                "trace_id": "5b8efff798038103d269b633813fc60c",
                "span_id": "eee19b7ec3c1b174",
                "parent_span_id": None,
                "op": "http.server",
                "status": "internal_error",
            },
            "runtime": {
                "name": "CPython",
                "version": "3.12.7",
                "build": "3.12.7 (main, Oct 19 2024, 04:02:57) [GCC 12.2.0]",
            },
            "os": {"name": "Linux", "version": "6.1.0-27-amd64"},
        },
        "request": {
            "url": "https://shop.example.com/api/orders/",
            "method": "POST",
            "query_string": "",
            "headers": {
                "Host": "shop.example.com",
                "User-Agent": "shop-ios/7.3.1",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Request-Id": event_id,
            },
        },
        "user": {"id": "48213", "ip_address": "203.0.113.7"},
        "tags": {"region": "ca-central-1", "pod": "web-7f9c6d5b8-x2kqp", "url": "/api/orders/"},
        "breadcrumbs": {"values": breadcrumbs},
        "extra": {"sys.argv": ["/usr/local/bin/gunicorn", "shop.wsgi", "--workers", "4"]},
        "modules": _MODULES,
    }


def sentry_envelope(event: dict[str, Any], dsn: str) -> bytes:
    """An envelope holding one event item, as sentry-sdk serializes it (before compression)."""
    payload = orjson.dumps(event)
    header = orjson.dumps({"event_id": event["event_id"], "dsn": dsn, "sent_at": event["timestamp"],
                           "sdk": {"name": "sentry.python.django", "version": "2.19.2"}})  # fmt: skip
    item = orjson.dumps({"type": "event", "length": len(payload), "content_type": "application/json"})
    return header + b"\n" + item + b"\n" + payload + b"\n"


#: sentry-sdk 2 compresses with gzip at level 9 when brotli is not installed (transport.py).
GZIP_LEVEL = 9


def error_kind(index: int, distinct: bool) -> tuple[str, str]:
    """(exception type, message) of report ``index``: each its own pattern, or all one pattern.

    The hot pattern's messages still differ by their numbers, which normalization folds.
    """
    if distinct:
        return f"InventoryError{index}", f"quantity for sku {index} is not a number: 'n/a'"
    return "ValueError", f"invalid literal for int() with base 10: 'n/a' (sku {index})"


def sentry_requests(
    *, project_id: int, key: str, count: int, distinct: bool, tag: str, now: datetime | None = None
) -> Iterator[bytes]:
    """``count`` gzip envelopes to ``/api/<project_id>/envelope/``, each a new ``event_id``."""
    now = now or datetime.now(UTC)
    dsn = f"http://{key}@127.0.0.1/{project_id}"
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "User-Agent": "sentry.python.django/2.19.2",
        "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.19.2",
    }
    prefix = uuid.uuid5(uuid.NAMESPACE_OID, tag).hex[:20]
    for index in range(count):
        exception_type, message = error_kind(index, distinct)
        event = sentry_event(f"{prefix}{index:012x}", exception_type, message, now)
        body = gzip.compress(sentry_envelope(event, dsn), compresslevel=GZIP_LEVEL, mtime=0)
        yield raw_request(f"/api/{project_id}/envelope/", headers, body)


# --- heartbeats: /v1/heartbeats and pings ----------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One instance of a service reporting heartbeats, under its project's key."""

    key: str
    host: str
    pid: int
    port: int


def heartbeat_body(beat_id: str, instance: Instance, sent_at: datetime, sequence: int) -> bytes:
    """A heartbeat as an instance sends it: CPU, memory and two metrics (four metric rows)."""
    return orjson.dumps(
        {
            "id": beat_id,
            "service": "api",
            "instance": {"host": instance.host, "pid": instance.pid, "port": instance.port},
            "sent_at": sent_at.isoformat(),
            "cpu_percent": 10 + sequence % 70,
            "memory_mb": 180 + sequence % 40,
            "metrics": {"requests_per_s": 40 + sequence % 25, "queue_depth": sequence % 7},
        }
    )


def heartbeat_request(beat_id: str, instance: Instance, sent_at: datetime, sequence: int) -> bytes:
    return raw_request(
        "/v1/heartbeats", bearer(instance.key), heartbeat_body(beat_id, instance, sent_at, sequence)
    )


def ping_request(path: str) -> bytes:
    """A Healthchecks-style ``GET /ping/...``, as curl sends one."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".encode()


def steady_schedule(instances: int, pings: int, period: float) -> tuple[float, list[int]]:
    """The rate of a steady fleet and one period's order of senders (instances, then ping checks).

    ``instances`` each report every ``period`` seconds and so do ``pings`` checks; one period
    sends each once, ping checks spread evenly among the instances. Returns (requests/s, order)
    where an entry ``i < instances`` is an instance and ``instances + j`` is ping check ``j``.
    """
    total = instances + pings
    order: list[int] = []
    every = total / pings if pings else 0.0
    next_ping, ping = every / 2, 0
    instance = 0
    for slot in range(total):
        if ping < pings and slot >= next_ping:
            order.append(instances + ping)
            ping += 1
            next_ping += every
        elif instance < instances:
            order.append(instance)
            instance += 1
        else:
            order.append(instances + ping)
            ping += 1
    return total / period, order


def steady_requests(
    fleet: Sequence[Instance], ping_paths: Sequence[str], *, period: float, duration: float, tag: str
) -> Iterator[bytes]:
    """Heartbeats of ``fleet`` and pings of ``ping_paths``, each once per ``period``, for ``duration``.

    Made as they are sent (the paced client pulls them at their due time), so each heartbeat's
    ``sent_at`` is the moment it goes out, as a real instance stamps it.
    """
    rate, order = steady_schedule(len(fleet), len(ping_paths), period)
    for number in range(int(rate * duration)):
        sender = order[number % len(order)]
        if sender < len(fleet):
            sequence = number // len(order)
            yield heartbeat_request(f"{tag}-{number:09d}", fleet[sender], datetime.now(UTC), sequence)
        else:
            yield ping_request(ping_paths[sender - len(fleet)])


def peak_heartbeats(
    fleet: Sequence[Instance], count: int, tag: str, now: datetime | None = None
) -> Iterator[bytes]:
    """``count`` heartbeats for wrk, round-robin over ``fleet``, ``sent_at`` a millisecond apart per
    instance so each is newer than its instance's previous one."""
    now = now or datetime.now(UTC)
    for number in range(count):
        sent_at = now + timedelta(milliseconds=number // len(fleet))
        yield heartbeat_request(f"{tag}-{number:09d}", fleet[number % len(fleet)], sent_at, number)


# --- usage: CloudEvents ----------------------------------------------------------------------

#: The CloudEvent type both bench meters take (SUM of ``data.tokens`` and COUNT).
USAGE_EVENT_TYPE = "llm.completion"


def cloudevent(event_id: str, subject: str, time: str) -> dict[str, Any]:
    """One usage CloudEvent as OpenMeter's clients send it."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "bench/gateway",
        "type": USAGE_EVENT_TYPE,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": {"tokens": 1234, "model": "gpt-4o-mini", "route": "/v1/chat/completions"},
    }


def cloudevents_template(*, token: str, subject: str, batch: int, time: str) -> bytes:
    """A request for wrk's template mode: ``batch`` events whose ids each hold :data:`PLACEHOLDER`.

    ``batch`` 1 is one structured event (``application/cloudevents+json``); more is a batch
    (``application/cloudevents-batch+json``). wrk puts a new counter in every request, so every
    event of every request has its own id.
    """
    events = [cloudevent(f"{PLACEHOLDER}-{n:03d}", subject, time) for n in range(batch)]
    body = orjson.dumps(events[0] if batch == 1 else events)
    media = "application/cloudevents+json" if batch == 1 else "application/cloudevents-batch+json"
    return raw_request("/api/v1/events", {"Content-Type": media, "Authorization": f"Bearer {token}"}, body)


def splice(template: bytes, counter: int) -> bytes:
    """What wrk's template mode sends for ``counter`` (the tests check the Lua's arithmetic here)."""
    return template.replace(PLACEHOLDER.encode(), b"%016d" % counter)


# --- reservations: reserve, then commit -------------------------------------------------------

#: The resource type of the reservations scenario's budgets.
RESERVED_RESOURCE = "gpu.seconds"


def reserve_request(key: str, reservation_id: str, amount: str = "10") -> bytes:
    body = orjson.dumps(
        {"id": reservation_id, "resource_type": RESERVED_RESOURCE, "amount": amount, "ttl_seconds": 300}
    )
    return raw_request("/v1/budgets/reservations", bearer(key), body)


def commit_request(key: str, reservation_id: str, amount: str = "8") -> bytes:
    path = f"/v1/budgets/reservations/{reservation_id}/commit"
    return raw_request(path, bearer(key), orjson.dumps({"amount": amount}))


def commit_after(key: str) -> Callable[[bytes], bytes | None]:
    """What commits the reservation a reserve answered (None when the answer holds none)."""

    def then(answer: bytes) -> bytes | None:
        try:
            reservation = orjson.loads(answer)["reservation_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return commit_request(key, str(reservation))

    return then


def reservation_pairs(
    keys: Sequence[str], count: int, tag: str
) -> Iterator[tuple[bytes, Callable[[bytes], bytes | None]]]:
    """``count`` reserve → commit pairs, pair ``n`` under ``keys[n % len(keys)]``, each a new id."""
    thens = [commit_after(key) for key in keys]
    for number in range(count):
        index = number % len(keys)
        yield reserve_request(keys[index], f"{tag}-{number:09d}"), thens[index]
