"""``POST /webhooks/slack``: Slack's v0 signing scheme, url_verification, and retries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
    invalid_signature,
    missing_signature,
    stale_timestamp,
)
from producers.signatures import slack_signature_valid, within_window

SIGNATURE_HEADER = "X-Slack-Signature"
#: Headers that authenticate, identify or date a delivery: refused when repeated or not UTF-8.
GUARDED_HEADERS = ("x-slack-signature", "x-slack-request-timestamp")
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
#: Slack's own recommendation: refuse requests more than five minutes away from now.
WINDOW_SECONDS = 300


def verify(
    headers: Mapping[str, str], raw: bytes, secrets: tuple[str, ...], received_at: datetime
) -> Verified:
    """Authenticate and identify one Slack Events API request."""
    require_media_type(headers, "application/json")
    signature = require_signature(headers, SIGNATURE_HEADER, secrets, "SLACK_SIGNING_SECRET")
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not timestamp:
        raise missing_signature(TIMESTAMP_HEADER)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise invalid_signature(TIMESTAMP_HEADER) from None
    if not within_window(sent_at, received_at.timestamp(), WINDOW_SECONDS):
        raise stale_timestamp(TIMESTAMP_HEADER, WINDOW_SECONDS)
    if not slack_signature_valid(secrets, raw, timestamp, signature):
        raise invalid_signature(SIGNATURE_HEADER)

    body = parse_json_object(raw)
    if body.get("type") == "url_verification":
        return Verified(reply={"challenge": body.get("challenge")})

    log_context: dict[str, Any] = {}
    if retry := headers.get("x-slack-retry-num"):
        # Slack re-sends when it saw no 2xx within 3 s; the event_id makes the retry a duplicate.
        log_context = {"slack_retry_num": retry, "slack_retry_reason": headers.get("x-slack-retry-reason")}

    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        app = body.get("api_app_id")
        delivery_id = f"{app}:{event_id}" if isinstance(app, str) and app else event_id
    else:
        delivery_id = body_digest(raw)
    event_type = dig(event, "type") or dig(body, "type") or "unknown"
    return Verified(
        events=[
            envelope(
                source=Source.SLACK,
                delivery_id=delivery_id,
                event_type=event_type,
                action=dig(event, "subtype"),
                received_at=received_at,
                payload=raw.decode(),
                fields=EventFields(
                    team=dig(body, "team_id") or dig(event, "team"),
                    channel=dig(event, "channel")
                    or dig(event, "channel", "id")
                    or dig(event, "item", "channel"),
                    actor=dig(event, "user") or dig(event, "user", "id"),
                ),
            )
        ],
        log_context=log_context,
    )
