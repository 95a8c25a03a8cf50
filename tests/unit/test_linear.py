"""``POST /webhooks/linear``: HMAC of the raw body and a 60 s window on ``webhookTimestamp``."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from contracts import Source
from ops.samples import linear_headers, linear_issue
from producers import linear
from producers.errors import IngestError

SECRET = "linear-test-secret"
NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def body_of(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "action": "update",
        "type": "Issue",
        "webhookTimestamp": NOW_MS,
        "actor": {"id": "user-ana", "type": "user"},
        "data": {"id": "issue-42", "teamId": "team-ingest", "title": "Replay"},
    }
    document.update(changes)
    return orjson.dumps({key: value for key, value in document.items() if value is not None})


def headers_for(
    body: bytes,
    *,
    secret: str = SECRET,
    delivery: str | None = "linear-delivery-1",
    content_type: str = "application/json",
) -> dict[str, str]:
    headers = {
        "content-type": content_type,
        "linear-event": "Issue",
        "linear-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    if delivery is not None:
        headers["linear-delivery"] = delivery
    return headers


def refusal(headers: dict[str, str], body: bytes, secrets: tuple[str, ...] = (SECRET,)) -> IngestError:
    with pytest.raises(IngestError) as caught:
        linear.verify(headers, body, secrets, NOW)
    return caught.value


BODY = body_of()


# --- Happy paths and identification ---


def test_signed_webhook_becomes_one_linear_event():
    verified = linear.verify(headers_for(BODY), BODY, (SECRET,), NOW)

    assert verified.reply is None
    [event] = verified.events
    assert event.source is Source.LINEAR
    assert (event.event_type, event.action) == ("Issue", "update")
    assert event.payload == BODY.decode()


def test_delivery_id_comes_from_the_linear_delivery_header():
    [event] = linear.verify(headers_for(BODY, delivery="d-777"), BODY, (SECRET,), NOW).events
    assert event.delivery_id == "d-777"


def test_delivery_id_without_a_linear_delivery_header_is_the_sha256_of_the_body():
    [event] = linear.verify(headers_for(BODY, delivery=None), BODY, (SECRET,), NOW).events
    assert event.delivery_id == hashlib.sha256(BODY).hexdigest()


def test_entity_type_entity_id_team_and_actor_are_lifted_from_the_body():
    [event] = linear.verify(headers_for(BODY), BODY, (SECRET,), NOW).events
    fields = event.fields
    assert (fields.entity_type, fields.entity_id, fields.team, fields.actor) == (
        "Issue",
        "issue-42",
        "team-ingest",
        "user-ana",
    )


def test_team_falls_back_to_the_nested_team_object():
    body = body_of(data={"id": "comment-1", "team": {"id": "team-nested", "key": "ING"}}, type="Comment")
    [event] = linear.verify(headers_for(body), body, (SECRET,), NOW).events
    assert (event.fields.entity_type, event.fields.team) == ("Comment", "team-nested")


def test_sample_issue_is_identified():
    body = linear_issue("issue-sample", team="team-sample", now_ms=NOW_MS)
    headers = {name.lower(): value for name, value in linear_headers(SECRET, body, "delivery-sample").items()}

    [event] = linear.verify(headers, body, (SECRET,), NOW).events

    assert event.delivery_id == "delivery-sample"
    assert (event.event_type, event.action) == ("Issue", "create")
    assert (event.fields.entity_id, event.fields.team, event.fields.actor) == (
        "issue-sample",
        "team-sample",
        "user-ana",
    )


def test_webhook_signed_with_a_previous_secret_is_accepted_during_rotation():
    headers = headers_for(BODY, secret="linear-previous")
    assert len(linear.verify(headers, BODY, ("linear-current", "linear-previous"), NOW).events) == 1


def test_signature_in_uppercase_hex_is_accepted():
    headers = headers_for(BODY)
    headers["linear-signature"] = headers["linear-signature"].upper()
    assert len(linear.verify(headers, BODY, (SECRET,), NOW).events) == 1


# --- The 60 s window on webhookTimestamp (milliseconds), both ways ---


@pytest.mark.parametrize("offset_ms", [-60_000, 60_000, 0, -59_999])
def test_a_webhook_timestamp_up_to_60_seconds_away_either_way_is_accepted(offset_ms):
    body = body_of(webhookTimestamp=NOW_MS + offset_ms)
    assert len(linear.verify(headers_for(body), body, (SECRET,), NOW).events) == 1


@pytest.mark.parametrize("offset_ms", [-61_000, 61_000, -60_001, 60_001])
def test_a_webhook_timestamp_more_than_60_seconds_away_either_way_is_a_401_stale_timestamp(offset_ms):
    body = body_of(webhookTimestamp=NOW_MS + offset_ms)
    error = refusal(headers_for(body), body)
    assert (error.status, error.code) == (401, "stale_timestamp")


def test_a_webhook_timestamp_in_seconds_instead_of_milliseconds_is_stale():
    body = body_of(webhookTimestamp=NOW_MS // 1000)
    assert refusal(headers_for(body), body).code == "stale_timestamp"


def test_a_signed_webhook_without_webhook_timestamp_is_a_400():
    body = orjson.dumps({"action": "create", "type": "Issue", "data": {"id": "x"}})
    error = refusal(headers_for(body), body)
    assert error.status == 400
    assert "webhookTimestamp" in error.detail


@pytest.mark.parametrize("value", ["1732420800000", True, [NOW_MS]])
def test_a_webhook_timestamp_that_is_not_a_number_is_a_400(value):
    body = body_of(webhookTimestamp=value)
    assert refusal(headers_for(body), body).status == 400


# --- Refusals of SPEC.md ---


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_an_unsupported_content_type_is_a_415(content_type):
    error = refusal(headers_for(BODY, content_type=content_type), BODY)
    assert (error.status, error.code) == (415, "unsupported_media_type")


def test_a_source_without_a_secret_refuses_with_401_naming_the_variable():
    error = refusal(headers_for(BODY), BODY, secrets=())
    assert (error.status, error.code) == (401, "secret_not_configured")
    assert "LINEAR_WEBHOOK_SECRET" in error.detail


def test_a_webhook_without_a_signature_is_a_401_missing_signature():
    headers = headers_for(BODY)
    del headers["linear-signature"]
    error = refusal(headers, BODY)
    assert (error.status, error.code) == (401, "missing_signature")


def test_a_webhook_signed_with_another_secret_is_a_401_invalid_signature():
    error = refusal(headers_for(BODY, secret="attacker"), BODY)
    assert (error.status, error.code) == (401, "invalid_signature")


def test_a_body_changed_by_one_byte_after_signing_is_a_401_invalid_signature():
    headers = headers_for(BODY)
    tampered = BODY[:-1] + bytes([BODY[-1] ^ 0x01])
    assert refusal(headers, tampered).code == "invalid_signature"


def test_a_bad_signature_is_refused_before_the_timestamp_is_read():
    body = orjson.dumps({"type": "Issue"})
    error = refusal(headers_for(body, secret="attacker"), body)
    assert error.code == "invalid_signature"


@pytest.mark.parametrize("body", [b"not json", b"", b"[]", b"123"])
def test_a_signed_body_that_is_not_a_json_object_is_a_400_invalid_json(body):
    error = refusal(headers_for(body), body)
    assert (error.status, error.code) == (400, "invalid_json")


def test_a_signed_webhook_with_an_overlong_delivery_header_is_refused_with_a_json_error():
    error = refusal(headers_for(BODY, delivery="d" * 300), BODY)
    assert 400 <= error.status < 500
