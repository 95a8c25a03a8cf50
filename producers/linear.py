"""``POST /webhooks/linear``: HMAC of the raw body plus a 60 s window on ``webhookTimestamp``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts import EventFields, Source
from producers.deliveries import (
    Verified,
    body_digest,
    dig,
    envelope,
    parse_json_object,
    require_media_type,
    require_signature,
)
from producers.errors import (
    IngestError,
    invalid_signature,
    missing_field,
    stale_timestamp,
)
from producers.signatures import linear_signature_valid, within_window

SIGNATURE_HEADER = "Linear-Signature"
#: Headers that authenticate, identify or date a delivery: refused when repeated or not UTF-8.
GUARDED_HEADERS = ("linear-signature", "linear-delivery")
#: Linear's documented replay window.
WINDOW_SECONDS = 60


def verify(
    headers: Mapping[str, str], raw: bytes, secrets: tuple[str, ...], received_at: datetime
) -> Verified:
    """Authenticate and identify one Linear webhook."""
    require_media_type(headers, "application/json")
    signature = require_signature(headers, SIGNATURE_HEADER, secrets, "LINEAR_WEBHOOK_SECRET")
    if not linear_signature_valid(secrets, raw, signature):
        raise invalid_signature(SIGNATURE_HEADER)

    body = parse_json_object(raw)
    sent_at_ms = body.get("webhookTimestamp")
    if sent_at_ms is None:
        raise missing_field("webhookTimestamp")
    if not isinstance(sent_at_ms, int | float) or isinstance(sent_at_ms, bool):
        raise IngestError(400, "invalid_field", "webhookTimestamp must be a number of milliseconds.")
    if not within_window(sent_at_ms / 1000, received_at.timestamp(), WINDOW_SECONDS):
        raise stale_timestamp("webhookTimestamp", WINDOW_SECONDS)

    entity_type = dig(body, "type")
    action = dig(body, "action")
    return Verified(
        events=[
            envelope(
                source=Source.LINEAR,
                delivery_id=headers.get("linear-delivery") or body_digest(raw),
                event_type=entity_type or headers.get("linear-event") or "unknown",
                action=action,
                received_at=received_at,
                payload=raw.decode(),
                fields=EventFields(
                    entity_type=entity_type,
                    entity_id=dig(body, "data", "id"),
                    team=dig(body, "data", "teamId") or dig(body, "data", "team", "id"),
                    actor=dig(body, "actor", "id") or dig(body, "data", "userId"),
                ),
            )
        ]
    )
