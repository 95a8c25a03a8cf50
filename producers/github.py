"""``POST /webhooks/github``: HMAC-SHA256 of the raw body, JSON or form-encoded deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs

from contracts import EventFields, Source
from producers.deliveries import (
    Verified,
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
    missing_header,
)
from producers.signatures import github_signature_valid

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Headers that authenticate, identify or date a delivery: refused when repeated or not UTF-8.
GUARDED_HEADERS = ("x-hub-signature-256", "x-github-event", "x-github-delivery")


def verify(
    headers: Mapping[str, str], raw: bytes, secrets: tuple[str, ...], received_at: datetime
) -> Verified:
    """Authenticate and identify one GitHub delivery."""
    content_type = require_media_type(headers, "application/json", "application/x-www-form-urlencoded")
    signature = require_signature(headers, SIGNATURE_HEADER, secrets, "GITHUB_WEBHOOK_SECRET")
    if not github_signature_valid(secrets, raw, signature):
        raise invalid_signature(SIGNATURE_HEADER)

    event_type = headers.get("x-github-event")
    if not event_type:
        raise missing_header("X-GitHub-Event")
    delivery_id = headers.get("x-github-delivery")
    if not delivery_id:
        raise missing_header("X-GitHub-Delivery")

    payload_raw = _form_payload(raw) if content_type == "application/x-www-form-urlencoded" else raw
    body = parse_json_object(payload_raw)
    action = body.get("action")
    return Verified(
        events=[
            envelope(
                source=Source.GITHUB,
                delivery_id=delivery_id,
                event_type=event_type,
                action=action if isinstance(action, str) else None,
                received_at=received_at,
                payload=payload_raw.decode(),
                fields=EventFields(
                    repository=dig(body, "repository", "full_name"),
                    actor=dig(body, "sender", "login"),
                ),
            )
        ]
    )


def _form_payload(raw: bytes) -> bytes:
    """GitHub's form content type: the JSON document is the ``payload`` field."""
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise IngestError(400, "invalid_form", "The form body is not valid UTF-8.") from None
    values = fields.get("payload")
    if not values:
        raise missing_field("payload")
    return values[0].encode()
