"""The HTTP edge of ``hookyard serve``: the limits uvicorn's httptools protocol does not enforce.

uvicorn 0.54 on httptools parses whatever arrives. A 64 MiB header is accumulated (in quadratic
time: httptools grows each header value by concatenation) before the app sees the request; a
connection that never finishes its headers or its body is kept forever; framing errors get a
plain-text 400. :class:`EdgeProtocol` is uvicorn's protocol with, per connection:

- a byte budget for the request line and headers, checked *before* bytes reach the parser, so
  the parser never holds more than the budget of one request's head: past it, 431. The number
  of headers is capped too (431), and so are the bytes of a chunked body that are not body
  (chunk sizes, extensions, trailers: trailers are headers, accumulated the same way);
- deadlines: the request line and headers must arrive within ``header_timeout`` of their first
  byte (of the connection's opening, for its first request); a body must keep coming (no gap
  longer than ``body_idle_timeout``) and be complete within ``body_timeout`` of its headers.
  Either is a 408. A connection that sent nothing is closed without an answer: after
  ``header_timeout`` when new, after ``keepalive_timeout`` when idle after a response;
- ``keepalive_requests``: the answer to a connection's last allowed request says
  ``Connection: close``;
- ``max_connections`` open connections per process: past it a new connection is answered 503
  and closed at once, so the process keeps descriptors for the broker and the database;
- every answer of its own as SPEC's JSON error body, the parser's framing errors included.

Deadlines are plain numbers that one :class:`~producers.deadlines.DeadlineSweep` per process
looks at a few times a second, not a timer per request (uvicorn's keep-alive timer, armed and
cancelled on every request, is replaced by the same sweep).
"""

from __future__ import annotations

import functools
import http
import resource
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import httptools
import orjson
import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hookyard import metrics
from hookyard.config import Settings
from producers.deadlines import DeadlineSweep

log = structlog.get_logger(__name__)

Headers = Iterable[tuple[bytes, bytes]]

# What a connection waits for from its client.
_IDLE = 0  # the next request: nothing of it has arrived
_HEAD = 1  # the rest of a request line and headers
_BODY = 2  # the rest of a body
_CLOSING = 3  # nothing: it was answered for good, and what still arrives is dropped until it closes

#: After a refusal the connection stays half-closed this long, reading and dropping what the
#: client is still sending: closing a socket with unread data resets it, and a reset can destroy
#: the answer before the client reads it (Go's net/http waits 500 ms for the same reason).
LINGER_SECONDS = 0.5
#: ... reading at most this much, then closing anyway.
LINGER_BYTES = 1 << 20
#: Bytes of framing a chunk legitimately needs (its size line and CRLFs) beyond the header budget.
CHUNK_FRAMING_BYTES = 24
#: Descriptors kept for what is not a client connection: listening socket, broker, database, logs.
RESERVED_DESCRIPTORS = 64


@dataclass(frozen=True)
class EdgeLimits:
    """The limits of one web process; see the module docstring for what each one bounds."""

    max_header_bytes: int = 65_536
    max_headers: int = 100
    header_timeout: float = 10.0
    body_idle_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    keepalive_requests: int = 10_000  # 0: no limit
    max_connections: int = 2048

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.hookyard_max_header_bytes,
            max_headers=settings.hookyard_max_headers,
            header_timeout=settings.hookyard_header_timeout,
            body_idle_timeout=settings.hookyard_body_idle_timeout,
            body_timeout=settings.hookyard_body_timeout,
            keepalive_timeout=settings.hookyard_keepalive_timeout,
            keepalive_requests=settings.hookyard_keepalive_requests,
            max_connections=settings.hookyard_max_connections,
        )

    @property
    def sweep_interval(self) -> float:
        """How often deadlines are looked at: a quarter of the shortest timeout, 50 ms to 1 s."""
        shortest = min(self.header_timeout, self.body_idle_timeout, self.body_timeout, self.keepalive_timeout)
        return min(1.0, max(0.05, shortest / 4))


def fit_to_descriptors(
    limits: EdgeLimits,
    *,
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> EdgeLimits:
    """``limits`` with a ``max_connections`` this process can hold open without running out of descriptors.

    Raises the soft ``RLIMIT_NOFILE`` (up to the hard one) when the bound needs more; when even
    the hard limit is too low, lowers ``max_connections`` to fit and logs it.
    """
    needed = limits.max_connections + RESERVED_DESCRIPTORS
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return limits
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # not allowed: fit the bound to the soft limit below
    if soft >= needed:
        return limits
    fitted = max(1, soft - RESERVED_DESCRIPTORS)
    log.warning(
        "max_connections_lowered",
        configured=limits.max_connections,
        fitted=fitted,
        detail=f"RLIMIT_NOFILE allows {soft} descriptors; raise it (ulimit -n) to hold more connections",
    )
    return replace(limits, max_connections=fitted)


@functools.lru_cache(maxsize=64)
def _fixed_parts(status: int, code: str, detail: str) -> tuple[bytes, bytes]:
    """Status line, and the closing headers with the body: the same for every refusal of a kind."""
    body = orjson.dumps({"error": code, "detail": detail})
    status_line = b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())
    tail = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    return status_line, tail + body


def error_response(
    status: int, code: str, detail: str, *, default_headers: Headers = (), headers: Headers = ()
) -> bytes:
    """A whole HTTP/1.1 response with SPEC's JSON error body, announcing that the connection closes."""
    status_line, tail = _fixed_parts(status, code, detail)
    parts = [status_line]
    parts += [name + b": " + value + b"\r\n" for name, value in (*default_headers, *headers)]
    parts.append(tail)
    return b"".join(parts)


def framing_detail(exc: httptools.HttpParserError) -> str:
    """One sentence for a parser error: llhttp's own reason, when it has one worth reading."""
    reason = str(exc).strip().rstrip(".")
    if isinstance(exc, httptools.HttpParserCallbackError) or not reason:
        # Raised by a callback (a path that is not ASCII, a URL uvicorn cannot split): no llhttp reason.
        return "The request line or headers could not be read as HTTP/1.1."
    return f"The request is not valid HTTP/1.1: {reason}."


@functools.cache
def _answered(status: int) -> Any:
    """The request counter of the edge's own answers with ``status`` (a labels() lookup is not free)."""
    return metrics.HTTP_REQUESTS.labels("edge", str(status))


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that has just been answered."""


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the edge's limits. Build the class with :func:`edge_protocol`.

    Only the request line, headers and framing are handled here; a request that passes is given
    to the app exactly as uvicorn would. When the protocol refuses a request whose app is already
    running (a 408 for a body that stopped coming, a framing error in the body), the app's
    ``receive()`` returns ``http.disconnect`` and whatever it sends afterwards is dropped.
    """

    # Set per server by edge_protocol(): one sweep and one tally of refusals per process.
    limits: ClassVar[EdgeLimits] = EdgeLimits()
    sweep: ClassVar[DeadlineSweep]
    refusals: ClassVar[Counter[tuple[int, str]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits
        # Read on the hot path: plain attributes rather than the dataclass's properties.
        self._max_head = limits.max_header_bytes
        self._header_timeout = limits.header_timeout
        self._body_idle = limits.body_idle_timeout
        self._body_first = min(limits.body_idle_timeout, limits.body_timeout)
        self._body_timeout = limits.body_timeout
        self._keepalive = limits.keepalive_timeout
        self._max_requests = limits.keepalive_requests
        self.deadline = 0.0  # on the loop's clock; 0: nothing is due from the client
        self._state = _IDLE
        self._head_budget = self._max_head
        self._served = 0
        self._body_ends_by = 0.0
        self._body_fed = 0  # bytes read while in the body (from the read after the headers)
        self._body_seen = 0  # body bytes the parser delivered
        self._chunks = 0
        self._dropped = 0

    # --- connection ---

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.limits.max_connections:
            # Past the bound: answer and close at once, so the process never runs out of
            # descriptors. Never counted among the connections, never watched.
            self.transport = transport
            self._state = _CLOSING
            transport.write(
                error_response(
                    503,
                    "too_many_connections",
                    f"The server holds its limit of {self.limits.max_connections} connections; retry soon.",
                    default_headers=self.server_state.default_headers,
                    headers=((b"retry-after", b"1"),),
                )
            )
            transport.close()
            self._tally(503, "too_many_connections")
            return
        super().connection_made(transport)
        self.deadline = self.loop.time() + self._header_timeout
        self.sweep.watch(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sweep.forget(self)
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override] # asyncio's own signature
        """The client closed its sending side: a request cut short is a framing error."""
        state, cycle = self._state, self.cycle
        if state == _HEAD:
            self._refuse(
                400,
                "invalid_request",
                "The connection was closed before the request line and headers were complete.",
                linger=False,
            )
        elif state == _BODY and cycle is not None and not cycle.response_started:
            self._refuse(
                400,
                "invalid_request",
                "The connection was closed before the whole body arrived.",
                linger=False,
            )
        elif state == _IDLE and cycle is not None and not cycle.response_complete:
            # A whole request, then a half-close: answer it, then close (uvicorn alone closes at once).
            cycle.keep_alive = False
            return True
        return None  # the transport closes itself

    # --- reading ---

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _BODY:
            self.deadline = min(self.loop.time() + self._body_idle, self._body_ends_by)
            self._body_fed += len(data)
            self._feed(data)
            if (
                self._state == _BODY
                and self._body_fed - self._body_seen > self._max_head + CHUNK_FRAMING_BYTES * self._chunks
            ):
                self._refuse(
                    431,
                    "headers_too_large",
                    f"The body's chunk framing and trailers are larger than {self._max_head} bytes.",
                )
            return
        if state == _CLOSING:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        if state == _IDLE:
            self._state = _HEAD
            if self._served:  # a first request's head is due within header_timeout of the opening
                self.deadline = self.loop.time() + self._header_timeout
        budget = self._head_budget
        if len(data) <= budget:
            self._head_budget = budget - len(data)
            self._feed(data)
            return
        # More than the head may still take: parse only what fits, then see whether the head ended
        # in it. The rest is never parsed as head (a message that ends in it resets the budget).
        self._head_budget = 0
        self._feed(data[:budget])
        if self._state == _HEAD and self._head_budget == 0:
            self._refuse(
                431,
                "headers_too_large",
                f"The request line and headers are larger than {self._max_head} bytes.",
            )
        elif self._state != _CLOSING:
            self.data_received(data[budget:])

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received`` with SPEC's JSON body for its parser errors."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.sweep.forget(self)  # the connection is the WebSocket protocol's from here on
                self.deadline = 0.0
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if self._state != _CLOSING:  # otherwise a callback refused the request and said why
                self._refuse(400, "invalid_request", framing_detail(exc))

    # --- parser callbacks (only those the limits need; the others are uvicorn's) ---

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            self._refuse(
                431, "headers_too_large", f"The request has more than {self.limits.max_headers} headers."
            )
            raise _Refused
        super().on_headers_complete()
        self._state = _BODY
        now = self.loop.time()
        self._body_ends_by = now + self._body_timeout
        self.deadline = now + self._body_first
        self._body_fed = self._body_seen = self._chunks = 0
        self._served += 1
        if self._served == self._max_requests and self.cycle is not None:
            self.cycle.keep_alive = False  # uvicorn answers with Connection: close, then closes

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._state = _IDLE
        self._head_budget = self._max_head
        # Nothing is due from the client while the app answers; an answer already sent (before the
        # body was read) starts the keep-alive wait now.
        cycle = self.cycle
        answered = cycle is not None and cycle.response_complete
        self.deadline = self.loop.time() + self._keepalive if answered else 0.0

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive wait as a deadline instead of a timer armed per request.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._state == _IDLE:
            self.deadline = self.loop.time() + self._keepalive

    # --- deadlines and refusals ---

    def expire(self) -> None:
        """Called by the sweep when ``deadline`` has passed."""
        self.deadline = 0.0
        if self.transport.is_closing():
            return
        state = self._state
        if state == _HEAD:
            self._refuse(
                408,
                "request_timeout",
                f"The request line and headers did not arrive within {self._header_timeout:g} s.",
                linger=False,
            )
        elif state == _BODY:
            if self.flow.read_paused:
                # uvicorn stopped reading (the app has not taken what arrived): not the client's delay.
                self.deadline = self.loop.time() + self._body_idle
                return
            if self.loop.time() >= self._body_ends_by:
                detail = f"The body was not complete within {self._body_timeout:g} s of the headers."
            else:
                detail = f"The body stopped arriving for {self._body_idle:g} s before it was complete."
            self._refuse(408, "request_timeout", detail, linger=False)
        else:  # idle (keep-alive, or a new connection that sent nothing), or done lingering
            self.transport.close()

    def _refuse(self, status: int, code: str, detail: str, *, linger: bool = True) -> None:
        """Answer ``status`` with SPEC's JSON body and end the connection; the current request is abandoned.

        With ``linger``, the connection is half-closed and what the client still sends is dropped
        for :data:`LINGER_SECONDS` (at most :data:`LINGER_BYTES`) before it closes.
        """
        owns_cycle = self._state == _BODY  # otherwise self.cycle is an earlier request's
        self._state = _CLOSING
        self._tally(status, code)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started or not owns_cycle:
                # Another answer is on the wire or due first: nothing can follow it on this connection.
                self.transport.close()
                return
            # The app's receive() returns http.disconnect, and its send() writes nothing.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(
            error_response(status, code, detail, default_headers=self.server_state.default_headers)
        )
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self.flow.resume_reading()
            self.deadline = self.loop.time() + LINGER_SECONDS
        else:
            self.transport.close()

    def _tally(self, status: int, code: str) -> None:
        self.refusals[(status, code)] += 1
        _answered(status).inc()


def edge_protocol(limits: EdgeLimits) -> type[EdgeProtocol]:
    """A protocol class for one server (``uvicorn.Config(http=...)``): its limits, its sweep, its tally.

    Refusals are logged once per sweep, counted by status and code, rather than once per
    connection: a thousand slow clients timing out together make one line, not a thousand.
    """
    refusals: Counter[tuple[int, str]] = Counter()

    def report() -> None:
        for (status, code), count in refusals.items():
            log.info("edge_refused", status=status, error=code, requests=count)
        refusals.clear()

    class ServerEdgeProtocol(EdgeProtocol):
        pass

    ServerEdgeProtocol.limits = limits
    ServerEdgeProtocol.sweep = DeadlineSweep(limits.sweep_interval, on_pass=report)
    ServerEdgeProtocol.refusals = refusals
    return ServerEdgeProtocol
