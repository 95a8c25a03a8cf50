"""``POST /webhooks/github``: verification and identification of one delivery."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
import pytest

from contracts import Source
from ops.samples import github_headers, github_issue_opened, github_star
from producers import github
from producers.errors import IngestError

SECRET = "gh-test-secret"
NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(
    body: bytes,
    *,
    secret: str = SECRET,
    event: str = "issues",
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    content_type: str = "application/json",
) -> dict[str, str]:
    return {
        "content-type": content_type,
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(secret, body),
    }


def lowercase(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def refusal(headers: dict[str, str], body: bytes, secrets: tuple[str, ...] = (SECRET,)) -> IngestError:
    with pytest.raises(IngestError) as caught:
        github.verify(headers, body, secrets, NOW)
    return caught.value


BODY = orjson.dumps(
    {"action": "opened", "repository": {"full_name": "hookyard/fleet"}, "sender": {"login": "octocat"}}
)


# --- Happy paths and identification ---


def test_signed_json_delivery_becomes_one_github_event():
    verified = github.verify(headers_for(BODY), BODY, (SECRET,), NOW)

    assert verified.reply is None
    [event] = verified.events
    assert event.source is Source.GITHUB
    assert event.received_at == NOW


def test_delivery_id_comes_from_the_x_github_delivery_header():
    [event] = github.verify(headers_for(BODY, delivery="abc-123"), BODY, (SECRET,), NOW).events
    assert event.delivery_id == "abc-123"


def test_event_type_comes_from_x_github_event_and_action_from_the_body():
    [event] = github.verify(headers_for(BODY, event="issues"), BODY, (SECRET,), NOW).events
    assert event.event_type == "issues"
    assert event.action == "opened"


def test_repository_and_actor_are_lifted_from_the_body():
    [event] = github.verify(headers_for(BODY), BODY, (SECRET,), NOW).events
    assert event.fields.repository == "hookyard/fleet"
    assert event.fields.actor == "octocat"


def test_stored_payload_is_the_body_exactly_as_received():
    body = b'{ "action" : "opened",\n  "zen": "Keep it logically awesome." }'
    [event] = github.verify(headers_for(body), body, (SECRET,), NOW).events
    assert event.payload == body.decode()


def test_delivery_without_an_action_has_no_action():
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    [event] = github.verify(headers_for(body, event="ping"), body, (SECRET,), NOW).events
    assert event.event_type == "ping"
    assert event.action is None


def test_sample_issue_opened_delivery_is_identified():
    event_name, body, delivery_id = github_issue_opened("delivery-issue-1", repository="acme/api")
    headers = lowercase(github_headers(SECRET, body, event_name, delivery_id))

    [event] = github.verify(headers, body, (SECRET,), NOW).events

    assert (event.event_type, event.action, event.delivery_id) == ("issues", "opened", "delivery-issue-1")
    assert event.fields.repository == "acme/api"
    assert event.fields.actor == "octocat"


def test_sample_star_delivery_is_identified():
    event_name, body, delivery_id = github_star("delivery-star-1")
    headers = lowercase(github_headers(SECRET, body, event_name, delivery_id))

    [event] = github.verify(headers, body, (SECRET,), NOW).events

    assert (event.event_type, event.action) == ("star", "created")


def test_delivery_signed_with_a_previous_secret_is_accepted_during_rotation():
    headers = headers_for(BODY, secret="gh-previous")
    [event] = github.verify(headers, BODY, ("gh-current", "gh-previous"), NOW).events
    assert event.delivery_id == headers["x-github-delivery"]


def test_json_content_type_with_a_charset_is_accepted():
    headers = headers_for(BODY, content_type="application/json; charset=utf-8")
    assert len(github.verify(headers, BODY, (SECRET,), NOW).events) == 1


def test_form_encoded_delivery_is_accepted_and_stores_the_json_payload():
    document = orjson.dumps({"action": "created", "sender": {"login": "hubot"}, "note": "a+b & c=d"})
    raw = urlencode({"payload": document.decode()}).encode()
    headers = headers_for(raw, event="star", content_type="application/x-www-form-urlencoded")

    [event] = github.verify(headers, raw, (SECRET,), NOW).events

    assert orjson.loads(event.payload) == orjson.loads(document)
    assert event.action == "created"
    assert event.fields.actor == "hubot"


def test_form_encoded_delivery_is_signed_over_the_raw_form_bytes_not_the_json():
    document = orjson.dumps({"action": "created"})
    raw = urlencode({"payload": document.decode()}).encode()
    headers = headers_for(raw, content_type="application/x-www-form-urlencoded")
    headers["x-hub-signature-256"] = sign(SECRET, document)

    assert refusal(headers, raw).code == "invalid_signature"


def test_form_encoded_delivery_without_a_payload_field_is_a_400():
    raw = b"other=1"
    headers = headers_for(raw, content_type="application/x-www-form-urlencoded")
    error = refusal(headers, raw)
    assert error.status == 400


def test_form_encoded_delivery_whose_payload_is_not_json_is_a_400_invalid_json():
    raw = urlencode({"payload": "{not json"}).encode()
    headers = headers_for(raw, content_type="application/x-www-form-urlencoded")
    error = refusal(headers, raw)
    assert (error.status, error.code) == (400, "invalid_json")


# --- Refusals of SPEC.md ---


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_an_unsupported_content_type_is_a_415(content_type):
    error = refusal(headers_for(BODY, content_type=content_type), BODY)
    assert (error.status, error.code) == (415, "unsupported_media_type")


def test_a_source_without_a_secret_refuses_with_401_naming_the_variable():
    error = refusal(headers_for(BODY), BODY, secrets=())
    assert (error.status, error.code) == (401, "secret_not_configured")
    assert "GITHUB_WEBHOOK_SECRET" in error.detail


def test_a_delivery_without_a_signature_is_a_401_missing_signature():
    headers = headers_for(BODY)
    del headers["x-hub-signature-256"]
    error = refusal(headers, BODY)
    assert (error.status, error.code) == (401, "missing_signature")


def test_a_delivery_signed_with_another_secret_is_a_401_invalid_signature():
    error = refusal(headers_for(BODY, secret="attacker"), BODY)
    assert (error.status, error.code) == (401, "invalid_signature")


def test_a_body_changed_after_signing_is_a_401_invalid_signature():
    headers = headers_for(BODY)
    tampered = BODY.replace(b"opened", b"closed")
    assert refusal(headers, tampered).code == "invalid_signature"


def test_a_bad_signature_is_refused_before_missing_headers_are_reported():
    headers = headers_for(BODY, secret="attacker")
    del headers["x-github-event"]
    assert refusal(headers, BODY).status == 401


@pytest.mark.parametrize("header", ["x-github-event", "x-github-delivery"])
def test_a_signed_delivery_without_a_github_header_is_a_400_naming_it(header):
    headers = headers_for(BODY)
    del headers[header]
    error = refusal(headers, BODY)
    assert (error.status, error.code) == (400, "missing_header")
    assert header.lower() in error.detail.lower()


@pytest.mark.parametrize("body", [b"not json", b'{"action": ', b"", b"[1, 2]", b'"opened"', b"42"])
def test_a_signed_body_that_is_not_a_json_object_is_a_400_invalid_json(body):
    error = refusal(headers_for(body), body)
    assert (error.status, error.code) == (400, "invalid_json")


def test_error_bodies_carry_the_stable_code_and_a_detail():
    error = refusal(headers_for(BODY, secret="attacker"), BODY)
    assert error.body() == {"error": "invalid_signature", "detail": error.detail}
    assert error.detail


def test_a_signed_delivery_with_an_overlong_delivery_id_is_refused_with_a_json_error():
    headers = headers_for(BODY, delivery="d" * 300)
    error = refusal(headers, BODY)
    assert 400 <= error.status < 500
