"""The Sentry protocol: an unmodified Sentry SDK, given a project's DSN, reports to Hookyard.

``POST /api/<project id>/envelope/`` takes an envelope: a JSON header line, then items, each a
JSON header line (``type``, usually ``length``) and its payload. ``POST /api/<project id>/store/``
is the legacy form: one event as JSON. Both are authenticated by the DSN's public key, which is
a project key: ``X-Sentry-Auth: Sentry sentry_key=<key>, ...`` or the ``sentry_key`` query
parameter. Bodies may be gzip, deflate or brotli; ``HOOKYARD_MAX_BODY_BYTES`` bounds the decoded
size too, checked while decoding, so a decompression bomb costs at most that much memory.

What an envelope carries:

- ``event`` items are error reports, published to the ``errors`` queue as received; grouping
  happens in the worker.
- ``check_in`` items (Sentry crons) are reports to the check named by their ``monitor_slug``
  (``in_progress`` starts a run, ``ok`` and ``error`` end it), published to the ``heartbeats`` queue.
- Every other item type (sessions, client reports, transactions, attachments, ...) is
  acknowledged, counted in ``hookyard_sentry_items_dropped_total``, and not stored.

An envelope is taken or refused whole: a header or item that is not JSON, or an item shorter or
longer than its ``length``, is 400 and nothing of it is published. Success is 200
``{"id": "<event id>"}`` once RabbitMQ confirmed every message the envelope became; otherwise 503
with ``Retry-After``, which the SDK honours by backing off.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import brotli
import orjson

from contracts.heartbeats import CHECK_SLUG, CheckReport, Origin
from contracts.keys import Scope
from contracts.reports import ErrorReport, ReportOrigin
from producers.errors import IngestError
from producers.keys import KeyRegistry, ProjectKey

#: The header that carries the key: refused when repeated or not UTF-8.
GUARDED_HEADERS = ("x-sentry-auth",)

#: Item types Sentry SDKs send that Hookyard does not store: a bounded set of metric labels.
KNOWN_DROPPED = frozenset(
    {
        "session", "sessions", "client_report", "transaction", "attachment", "profile", "profile_chunk",
        "replay_event", "replay_recording", "replay_video", "statsd", "metric_meta", "span", "log",
        "otel_log", "user_report", "feedback", "raw_security",
    }
)  # fmt: skip


def sentry_key(headers: Mapping[str, str], query_string: bytes) -> str | None:
    """The DSN's public key: from ``X-Sentry-Auth`` (or ``Authorization: Sentry ...``), or the query."""
    for name in ("x-sentry-auth", "authorization"):
        value = headers.get(name, "")
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "sentry":
            continue
        for part in rest.split(","):
            key, _, found = part.strip().partition("=")
            if key.strip() == "sentry_key" and found.strip():
                return found.strip()
    values = parse_qs(query_string.decode("latin-1")).get("sentry_key")
    return values[0] if values else None


def project_key(registry: KeyRegistry, key: str | None, project_id: int) -> ProjectKey:
    """The key of the DSN, if it is a live key of project ``project_id``; the 401/403/503 otherwise."""
    if not key:
        raise IngestError(
            401, "missing_key", "The DSN's key is required (X-Sentry-Auth: Sentry sentry_key=...)."
        )
    found = registry.lookup(key)
    if found is None:
        if not registry.loaded:
            raise IngestError(
                503, "keys_unavailable", "Project keys cannot be checked yet (PostgreSQL has not answered)."
            )
        raise IngestError(401, "invalid_key", "The DSN's key is not a project key.")
    if found.revoked:
        raise IngestError(401, "key_revoked", "This project key was revoked (or its project archived).")
    if found.project_id != project_id:
        raise IngestError(
            403, "forbidden_project", f"This key belongs to project {found.project_id}, not {project_id}."
        )
    if Scope.ERRORS not in found.scopes:
        raise IngestError(403, "missing_scope", "This project key does not hold the errors scope.")
    registry.touch(found)
    return found


def decode_content(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone, never more than ``limit`` bytes of it.

    413 as soon as the decoded body would pass ``limit`` (a bomb never inflates past it), 400 for
    a stream that is corrupt or cut short, 415 for an encoding other than gzip, deflate or br.
    """
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return raw
    too_large = IngestError(413, "payload_too_large", f"The decoded body is larger than {limit} bytes.")
    corrupt = IngestError(400, "invalid_encoding", f"The body is not valid {name} data.")
    if name == "br":
        decompressor = brotli.Decompressor()
        try:
            out = decompressor.process(raw, output_buffer_limit=limit + 1)
        except brotli.error:
            raise corrupt from None
        if len(out) > limit:
            raise too_large
        if not decompressor.is_finished():
            raise corrupt
        return bytes(out)
    if name in {"gzip", "x-gzip"}:
        wbits = [16 + zlib.MAX_WBITS]
    elif name == "deflate":
        wbits = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped as HTTP says, or raw as some clients send
    else:
        raise IngestError(415, "unsupported_encoding", "Content-Encoding may be gzip, deflate or br.")
    for bits in wbits:
        inflater = zlib.decompressobj(bits)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large
        if not inflater.eof:
            raise corrupt
        return out
    raise corrupt


@dataclass(frozen=True)
class Item:
    """One envelope item: its header and its payload bytes."""

    type: str
    header: dict[str, Any]
    payload: bytes


@dataclass(frozen=True)
class Envelope:
    header: dict[str, Any]
    items: list[Item] = field(default_factory=list)


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise IngestError(400, "invalid_envelope", f"{what} is not JSON.") from None
    if not isinstance(value, dict):
        raise IngestError(400, "invalid_envelope", f"{what} is not a JSON object.")
    return value


def parse_envelope(body: bytes) -> Envelope:
    """Split an envelope into its header and items, or refuse it whole (400 ``invalid_envelope``).

    An item with a ``length`` takes exactly that many bytes, followed by a newline or the end;
    an item without one runs to the next newline. Blank lines between items are skipped.
    """
    end = body.find(b"\n")
    header = _json_object(body if end < 0 else body[:end], "The envelope header")
    envelope = Envelope(header)
    position = len(body) if end < 0 else end + 1
    while position < len(body):
        end = body.find(b"\n", position)
        line = body[position : len(body) if end < 0 else end]
        if not line.strip():
            position = len(body) if end < 0 else end + 1
            continue
        item_header = _json_object(line, f"Item header {len(envelope.items) + 1}")
        start = len(body) if end < 0 else end + 1
        length = item_header.get("length")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise IngestError(400, "invalid_envelope", "An item's length is not a non-negative integer.")
            payload = body[start : start + length]
            if len(payload) < length:
                raise IngestError(400, "invalid_envelope", "An item is shorter than its length.")
            position = start + length
            if position < len(body) and body[position : position + 1] != b"\n":
                raise IngestError(400, "invalid_envelope", "An item is longer than its length.")
            position += 1
        else:
            stop = body.find(b"\n", start)
            payload = body[start : len(body) if stop < 0 else stop]
            position = len(body) if stop < 0 else stop + 1
        item_type = item_header.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise IngestError(400, "invalid_envelope", "An item header has no type.")
        envelope.items.append(Item(item_type, item_header, payload))
    return envelope


def event_report(
    payload: bytes, key: ProjectKey, received_at: datetime, fallback_id: str | None
) -> ErrorReport:
    """An ``event`` item (or a /store/ body) as an error report; 400 when it is not a JSON object."""
    event = _json_object(payload, "The event")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else fallback_id
    if not event_id:  # no identity given: the same bytes sent again are the same report
        event_id = hashlib.sha256(payload).hexdigest()
    if len(event_id) > 255:
        raise IngestError(400, "invalid_field", "The event_id is longer than 255 characters.")
    return ErrorReport(
        project_id=key.project_id,
        event_id=event_id,
        received_at=received_at,
        origin=ReportOrigin.SENTRY,
        payload=event,
    )


#: Sentry check-in statuses as check signals.
_CHECK_IN_SIGNALS = {"in_progress": "start", "ok": "success", "error": "fail"}


def check_in_report(payload: bytes, key: ProjectKey, received_at: datetime) -> CheckReport:
    """A ``check_in`` item as a report to the check named by its ``monitor_slug``.

    ``in_progress`` starts a run, ``ok`` ends it well, ``error`` badly; the ``check_in_id`` pairs
    them as a ping's ``rid`` does. A check first seen this way is created with SPEC's defaults.
    """
    check_in = _json_object(payload, "The check-in")
    check_in_id = check_in.get("check_in_id")
    status = check_in.get("status")
    monitor = check_in.get("monitor_slug")
    if (
        not isinstance(check_in_id, str)
        or not isinstance(monitor, str)
        or not CHECK_SLUG.match(monitor)
        or status not in _CHECK_IN_SIGNALS
    ):
        raise IngestError(
            400,
            "invalid_check_in",
            "A check-in needs a check_in_id, a monitor_slug like [a-z0-9_-]{1,100}, and a status of "
            "in_progress, ok or error.",
        )
    return CheckReport(
        project_id=key.project_id,
        check=monitor,
        report_id=f"check_in:{check_in_id}:{status}"[:255],
        signal=_CHECK_IN_SIGNALS[status],
        at=received_at,
        received_at=received_at,
        origin=Origin.CHECK_IN,
        rid=check_in_id[:255],
    )


@dataclass
class Accepted:
    """What one Sentry request becomes: reports, check-in events, and the item types dropped."""

    event_id: str | None = None
    reports: list[ErrorReport] = field(default_factory=list)
    check_ins: list[CheckReport] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def accept_envelope(body: bytes, key: ProjectKey, received_at: datetime) -> Accepted:
    """Everything an envelope carries, or a 400 for the whole of it."""
    envelope = parse_envelope(body)
    header_id = envelope.header.get("event_id")
    accepted = Accepted(event_id=header_id if isinstance(header_id, str) else None)
    for item in envelope.items:
        if item.type == "event":
            report = event_report(item.payload, key, received_at, accepted.event_id)
            accepted.reports.append(report)
            accepted.event_id = accepted.event_id or report.event_id
        elif item.type == "check_in":
            accepted.check_ins.append(check_in_report(item.payload, key, received_at))
        else:
            accepted.dropped.append(item.type if item.type in KNOWN_DROPPED else "other")
    return accepted
