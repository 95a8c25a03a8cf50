"""``POST /webhooks/slack``: Slack's v0 signing, the 300 s window, url_verification and retries."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import orjson
import pytest

from contracts import Source
from ops.samples import slack_headers, slack_message
from producers import slack
from producers.errors import IngestError

SECRET = "slack-test-secret"
NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())


def headers_for(
    body: bytes, *, secret: str = SECRET, timestamp: int = NOW_TS, content_type: str = "application/json"
) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": str(timestamp),
        "x-slack-signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }


def refusal(headers: dict[str, str], body: bytes, secrets: tuple[str, ...] = (SECRET,)) -> IngestError:
    with pytest.raises(IngestError) as caught:
        slack.verify(headers, body, secrets, NOW)
    return caught.value


EVENT_BODY = orjson.dumps(
    {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "event_id": "Ev0EVENT",
        "event": {"type": "message", "channel": "C0CHAN", "user": "U0USER", "text": "hi"},
    }
)


# --- Happy paths and identification ---


def test_signed_event_callback_becomes_one_slack_event():
    verified = slack.verify(headers_for(EVENT_BODY), EVENT_BODY, (SECRET,), NOW)

    assert verified.reply is None
    [event] = verified.events
    assert event.source is Source.SLACK
    assert event.event_type == "message"
    assert event.payload == EVENT_BODY.decode()


def test_delivery_id_is_the_event_id_scoped_by_the_app_id():
    [event] = slack.verify(headers_for(EVENT_BODY), EVENT_BODY, (SECRET,), NOW).events
    assert event.delivery_id == "A0APP:Ev0EVENT"


def test_delivery_id_without_an_event_id_is_the_sha256_of_the_body():
    body = orjson.dumps({"type": "event_callback", "team_id": "T0TEAM", "event": {"type": "app_mention"}})
    [event] = slack.verify(headers_for(body), body, (SECRET,), NOW).events
    assert event.delivery_id == hashlib.sha256(body).hexdigest()


def test_the_same_event_redelivered_gets_the_same_delivery_id():
    first = slack.verify(headers_for(EVENT_BODY), EVENT_BODY, (SECRET,), NOW).events[0]
    retry_headers = {
        **headers_for(EVENT_BODY),
        "x-slack-retry-num": "1",
        "x-slack-retry-reason": "http_timeout",
    }
    second = slack.verify(retry_headers, EVENT_BODY, (SECRET,), NOW).events[0]
    assert first.delivery_id == second.delivery_id


def test_team_channel_and_actor_are_lifted_from_the_body():
    [event] = slack.verify(headers_for(EVENT_BODY), EVENT_BODY, (SECRET,), NOW).events
    assert (event.fields.team, event.fields.channel, event.fields.actor) == ("T0TEAM", "C0CHAN", "U0USER")


def test_event_subtype_becomes_the_action():
    body = orjson.dumps(
        {"event_id": "Ev1", "api_app_id": "A1", "event": {"type": "message", "subtype": "bot_message"}}
    )
    [event] = slack.verify(headers_for(body), body, (SECRET,), NOW).events
    assert (event.event_type, event.action) == ("message", "bot_message")


def test_retry_number_lands_in_the_log_context():
    headers = {**headers_for(EVENT_BODY), "x-slack-retry-num": "2", "x-slack-retry-reason": "http_timeout"}
    verified = slack.verify(headers, EVENT_BODY, (SECRET,), NOW)
    assert verified.log_context["slack_retry_num"] == "2"
    assert verified.log_context["slack_retry_reason"] == "http_timeout"


def test_a_first_delivery_has_no_retry_in_the_log_context():
    verified = slack.verify(headers_for(EVENT_BODY), EVENT_BODY, (SECRET,), NOW)
    assert "slack_retry_num" not in verified.log_context


def test_sample_message_is_identified():
    body = slack_message("Ev0SAMPLE", team="T0SAMPLE", channel="C0SAMPLE")
    headers = {name.lower(): value for name, value in slack_headers(SECRET, body, NOW_TS).items()}

    [event] = slack.verify(headers, body, (SECRET,), NOW).events

    assert event.delivery_id == "A0HOOKYARD:Ev0SAMPLE"
    assert (event.fields.team, event.fields.channel, event.fields.actor) == (
        "T0SAMPLE",
        "C0SAMPLE",
        "U0ALICE",
    )


def test_request_signed_with_a_previous_secret_is_accepted_during_rotation():
    headers = headers_for(EVENT_BODY, secret="slack-previous")
    assert len(slack.verify(headers, EVENT_BODY, ("slack-current", "slack-previous"), NOW).events) == 1


# --- url_verification ---


def test_url_verification_is_answered_with_its_challenge_and_publishes_nothing():
    body = orjson.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    verified = slack.verify(headers_for(body), body, (SECRET,), NOW)
    assert verified.reply == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert verified.events == []


def test_url_verification_with_a_bad_signature_is_refused():
    body = orjson.dumps({"challenge": "c", "type": "url_verification"})
    error = refusal(headers_for(body, secret="attacker"), body)
    assert (error.status, error.code) == (401, "invalid_signature")


def test_url_verification_without_a_signature_is_refused():
    body = orjson.dumps({"challenge": "c", "type": "url_verification"})
    headers = headers_for(body)
    del headers["x-slack-signature"]
    assert refusal(headers, body).status == 401


# --- The 300 s window, both ways ---


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_a_timestamp_up_to_300_seconds_away_either_way_is_accepted(offset):
    headers = headers_for(EVENT_BODY, timestamp=NOW_TS + offset)
    assert len(slack.verify(headers, EVENT_BODY, (SECRET,), NOW).events) == 1


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_a_timestamp_more_than_300_seconds_away_either_way_is_a_401_stale_timestamp(offset):
    error = refusal(headers_for(EVENT_BODY, timestamp=NOW_TS + offset), EVENT_BODY)
    assert (error.status, error.code) == (401, "stale_timestamp")


def test_a_replayed_request_with_a_valid_old_signature_is_refused():
    old = NOW_TS - 3600
    assert refusal(headers_for(EVENT_BODY, timestamp=old), EVENT_BODY).code == "stale_timestamp"


def test_a_signature_moved_onto_a_fresh_timestamp_is_refused():
    headers = headers_for(EVENT_BODY, timestamp=NOW_TS - 3600)
    headers["x-slack-request-timestamp"] = str(NOW_TS)
    assert refusal(headers, EVENT_BODY).code == "invalid_signature"


def test_a_request_without_a_timestamp_is_a_401():
    headers = headers_for(EVENT_BODY)
    del headers["x-slack-request-timestamp"]
    error = refusal(headers, EVENT_BODY)
    assert (error.status, error.code) == (401, "missing_signature")


def test_a_non_numeric_timestamp_is_a_401():
    headers = headers_for(EVENT_BODY)
    headers["x-slack-request-timestamp"] = "yesterday"
    assert refusal(headers, EVENT_BODY).status == 401


# --- Refusals of SPEC.md ---


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_an_unsupported_content_type_is_a_415(content_type):
    error = refusal(headers_for(EVENT_BODY, content_type=content_type), EVENT_BODY)
    assert (error.status, error.code) == (415, "unsupported_media_type")


def test_a_source_without_a_secret_refuses_with_401_naming_the_variable():
    error = refusal(headers_for(EVENT_BODY), EVENT_BODY, secrets=())
    assert (error.status, error.code) == (401, "secret_not_configured")
    assert "SLACK_SIGNING_SECRET" in error.detail


def test_a_request_without_a_signature_is_a_401_missing_signature():
    headers = headers_for(EVENT_BODY)
    del headers["x-slack-signature"]
    error = refusal(headers, EVENT_BODY)
    assert (error.status, error.code) == (401, "missing_signature")


def test_a_request_signed_with_another_secret_is_a_401_invalid_signature():
    error = refusal(headers_for(EVENT_BODY, secret="attacker"), EVENT_BODY)
    assert (error.status, error.code) == (401, "invalid_signature")


def test_a_body_changed_after_signing_is_a_401_invalid_signature():
    headers = headers_for(EVENT_BODY)
    assert refusal(headers, EVENT_BODY.replace(b"hi", b"ho")).code == "invalid_signature"


@pytest.mark.parametrize("body", [b"not json", b"", b"[]", b"null", b'"event"'])
def test_a_signed_body_that_is_not_a_json_object_is_a_400_invalid_json(body):
    error = refusal(headers_for(body), body)
    assert (error.status, error.code) == (400, "invalid_json")


def test_a_signed_event_with_an_overlong_type_is_refused_with_a_json_error():
    body = orjson.dumps({"event_id": "Ev1", "api_app_id": "A1", "event": {"type": "m" * 300}})
    error = refusal(headers_for(body), body)
    assert 400 <= error.status < 500
