"""What every source module returns: verified events, or an immediate answer (Slack's challenge)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from contracts import EventEnvelope
from producers.errors import (
    IngestError,
    invalid_json,
    missing_signature,
    secret_not_configured,
    unsupported_media_type,
)


@dataclass(frozen=True)
class Verified:
    """The outcome of verifying and identifying one request."""

    #: What to publish: events, or the items of another lane (error reports, ...).
    events: list[Any] = field(default_factory=list)
    # Set when the request is answered directly instead of published (Slack url_verification).
    reply: dict[str, Any] | None = None
    # Context to bind to the request's log lines (retry numbers and the like).
    log_context: dict[str, Any] = field(default_factory=dict)


def guard_headers(headers: dict[str, str], repeated: frozenset[str], guarded: tuple[str, ...]) -> None:
    """Refuse a request whose authentication, identity or timestamp headers are ambiguous.

    ``guarded`` names (lowercase) the headers a source authenticates or identifies a delivery
    by. Sent twice, which one counts is a guess a signature check must never make: 400
    ``duplicate_header``. Their values must be UTF-8 (HTTP carries bytes; a delivery id stored as
    Latin-1 mojibake would never match its retry): valid UTF-8 replaces the Latin-1 reading in
    ``headers``; anything else is 400 ``invalid_header``.
    """
    if repeated:
        for name in guarded:
            if name in repeated:
                raise IngestError(
                    400, "duplicate_header", f"The {name} header was sent more than once; send it once."
                )
    for name in guarded:
        value = headers.get(name)
        if value is None or value.isascii():
            continue
        try:
            headers[name] = value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            raise IngestError(400, "invalid_header", f"The {name} header is not UTF-8.") from None


def require_media_type(headers: Mapping[str, str], *allowed: str) -> str:
    """The request's media type (JSON when unsaid), or 415 when the endpoint does not take it."""
    media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type not in allowed:
        raise unsupported_media_type(" or ".join(allowed))
    return media_type


def require_signature(
    headers: Mapping[str, str], header: str, secrets: tuple[str, ...], variable: str
) -> str:
    """The signature header's value; 401 when the source has no secret or the header is absent."""
    if not secrets:
        raise secret_not_configured(variable)
    signature = headers.get(header.lower())
    if not signature:
        raise missing_signature(header)
    return signature


def parse_json_object(raw: bytes, what: str = "The body") -> dict[str, Any]:
    """Parse a JSON object or raise the 400 of SPEC.md."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_json(what) from None
    if not isinstance(value, dict):
        raise invalid_json(f"{what} is JSON but not an object, so it")
    return value


def body_digest(raw: bytes) -> str:
    """The delivery id of a body that carries none: SHA-256 of the exact bytes."""
    return hashlib.sha256(raw).hexdigest()


def dig(value: Any, *path: str) -> str | None:
    """``value[path[0]][path[1]]...`` as a string, or None when any step is missing."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def envelope(**fields: Any) -> EventEnvelope:
    """Build an EventEnvelope, or refuse the request (400) when a header or field breaks its limits.

    A correctly signed request can still carry a delivery id or an event type longer than the
    contract allows; that is the sender's error, never a 500.
    """
    try:
        return EventEnvelope(**fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise IngestError(
            400, "invalid_field", f"The delivery's {where} is not acceptable: {first['msg']}."
        ) from None
