"""The HTTP primitives of the ingestion app: requests, responses, bodies, headers.

Plain ASGI, no framework (see :mod:`producers.app` for why). Every protocol module builds its
handlers from these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from producers.errors import IngestError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_response(content: Any, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    return Response(status, orjson.dumps(content), headers=headers)


def error_response(exc: IngestError) -> Response:
    """SPEC's error body; a 503 says when to come back."""
    return json_response(exc.body(), exc.status, headers=_RETRY_LATER if exc.status == 503 else ())


_RETRY_LATER = ((b"retry-after", b"5"),)


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit`` (before reading it all)."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise IngestError(400, "invalid_header", "Content-Length is not a number.") from None
        if size > limit:
            raise IngestError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IngestError(
                400, "client_disconnected", "The client went away before sending the whole body."
            )
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise IngestError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_NO_REPEATS: frozenset[str] = frozenset()


def read_headers(raw: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], frozenset[str]]:
    """The request's headers by lowercase name, and the names sent more than once.

    Values are Latin-1 as HTTP/1.1 carries them; :func:`producers.deliveries.guard_headers`
    refuses repeats and non-UTF-8 values of the headers a source authenticates or identifies by.
    """
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in raw}
    if len(headers) == len(raw):
        return headers, _NO_REPEATS
    seen: set[str] = set()
    repeated = set()
    for key, _ in raw:
        name = key.decode("latin-1")
        if name in seen:
            repeated.add(name)
        seen.add(name)
    return headers, frozenset(repeated)


@dataclass(slots=True)
class Request:
    """What a handler sees of one HTTP request."""

    scope: Scope
    headers: dict[str, str]
    receive: Receive
    #: Header names sent more than once.
    repeated: frozenset[str]
    #: The route's path parameters, converted.
    params: dict[str, object]


Handler = Callable[[Request], Awaitable[Response]]
