"""``POST /v1/deployments``: operator token or project key; one object or an array, taken or refused whole."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from contracts import Source
from contracts.keys import Scope
from ops.samples import deployment
from producers import deployments
from producers.errors import IngestError
from producers.keys import OPERATOR, authenticate

TOKEN = "ingest-test-token"
NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def headers_for(token: str | None = TOKEN, content_type: str = "application/json") -> dict[str, str]:
    headers = {"content-type": content_type}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


def refusal(headers: dict[str, str], body: bytes, tokens: tuple[str, ...] = (TOKEN,)) -> IngestError:
    """What the app answers: authorization first (before the body is read), then the body."""
    def answer() -> None:
        deployments.verify(headers, body, authenticate(headers, tokens, None, Scope.DEPLOYMENTS), NOW)

    with pytest.raises(IngestError) as caught:
        answer()
    return caught.value


def failing_fields(error: IngestError) -> list[str]:
    return [entry["field"] for entry in error.extra["errors"]]


# --- Happy paths ---


def test_one_deployment_object_becomes_one_event_keyed_by_its_id():
    body = orjson.dumps(deployment("deploy-1", status="succeeded"))

    [event] = deployments.verify(headers_for(), body, OPERATOR, NOW).events

    assert event.source is Source.DEPLOYMENT
    assert event.delivery_id == "deploy-1"
    assert event.event_type == "deployment"
    assert event.action == "succeeded"
    assert event.received_at == NOW
    assert orjson.loads(event.payload) == orjson.loads(body)


def test_deployment_fields_are_lifted_from_the_body():
    body = orjson.dumps(deployment("deploy-1", status="rolled_back", service="billing"))
    [event] = deployments.verify(headers_for(), body, OPERATOR, NOW).events
    fields = event.fields
    assert (fields.project, fields.service, fields.environment, fields.version, fields.status) == (
        "hookyard",
        "billing",
        "production",
        "1.4.2",
        "rolled_back",
    )


def test_a_deployment_with_only_the_required_fields_is_accepted():
    body = orjson.dumps(
        {"id": "d-min", "service": "s", "environment": "e", "version": "v", "status": "started"}
    )
    [event] = deployments.verify(headers_for(), body, OPERATOR, NOW).events
    assert (event.delivery_id, event.action) == ("d-min", "started")


@pytest.mark.parametrize("status", ["started", "succeeded", "failed", "rolled_back"])
def test_every_documented_status_is_accepted_as_the_action(status):
    body = orjson.dumps(deployment("d", status=status))
    [event] = deployments.verify(headers_for(), body, OPERATOR, NOW).events
    assert event.action == status


def test_an_array_becomes_one_event_per_item_in_order():
    items = [deployment("d-1", status="started"), deployment("d-2", status="succeeded"), deployment("d-3")]
    body = orjson.dumps(items)

    events = deployments.verify(headers_for(), body, OPERATOR, NOW).events

    assert [event.delivery_id for event in events] == ["d-1", "d-2", "d-3"]
    assert [event.action for event in events] == ["started", "succeeded", "succeeded"]
    assert [orjson.loads(event.payload) for event in events] == items


def test_a_request_with_a_previous_token_is_accepted_during_rotation():
    body = orjson.dumps(deployment("d-rot"))
    principal = authenticate(headers_for("old-token"), ("new-token", "old-token"), None, Scope.DEPLOYMENTS)
    assert principal is OPERATOR
    assert len(deployments.verify(headers_for("old-token"), body, principal, NOW).events) == 1


# --- Authentication ---


def test_without_a_configured_token_every_request_is_a_401_naming_the_variable():
    error = refusal(headers_for(), orjson.dumps(deployment()), tokens=())
    assert (error.status, error.code) == (401, "secret_not_configured")
    assert "HOOKYARD_INGEST_TOKEN" in error.detail


def test_a_request_without_authorization_is_a_401_missing_token():
    error = refusal(headers_for(token=None), orjson.dumps(deployment()))
    assert (error.status, error.code) == (401, "missing_token")


def test_a_request_with_a_wrong_token_is_a_401_invalid_token():
    error = refusal(headers_for(token="guess"), orjson.dumps(deployment()))
    assert (error.status, error.code) == (401, "invalid_token")


def test_a_token_under_the_basic_scheme_is_a_401():
    headers = {"content-type": "application/json", "authorization": f"Basic {TOKEN}"}
    assert refusal(headers, orjson.dumps(deployment())).status == 401


def test_an_unauthenticated_request_is_refused_before_its_body_is_read():
    error = refusal(headers_for(token="guess"), b"not json")
    assert error.status == 401


# --- Body refusals ---


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_an_unsupported_content_type_is_a_415(content_type):
    error = refusal(headers_for(content_type=content_type), orjson.dumps(deployment()))
    assert (error.status, error.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"not json", b"", b'{"id": '])
def test_a_body_that_is_not_json_is_a_400_invalid_json(body):
    error = refusal(headers_for(), body)
    assert (error.status, error.code) == (400, "invalid_json")


@pytest.mark.parametrize("body", [b'"deploy"', b"42", b"null"])
def test_a_json_body_that_is_neither_an_object_nor_an_array_is_a_400(body):
    assert refusal(headers_for(), body).status == 400


def test_a_deployment_missing_required_fields_is_a_422_naming_each_field():
    body = orjson.dumps({"id": "d-1", "service": "ingest"})
    error = refusal(headers_for(), body)
    assert (error.status, error.code) == (422, "validation_failed")
    assert sorted(failing_fields(error)) == ["environment", "status", "version"]
    assert error.body()["errors"] == error.extra["errors"]


def test_a_deployment_with_an_unknown_status_is_a_422_naming_status():
    error = refusal(headers_for(), orjson.dumps(deployment("d-1", status="exploded")))
    assert error.status == 422
    assert failing_fields(error) == ["status"]


def test_a_deployment_with_an_empty_id_is_a_422_naming_id():
    error = refusal(headers_for(), orjson.dumps(deployment("d-1") | {"id": ""}))
    assert failing_fields(error) == ["id"]


def test_each_error_has_a_field_and_a_message():
    error = refusal(headers_for(), orjson.dumps({"id": "d-1"}))
    for entry in error.extra["errors"]:
        assert set(entry) == {"field", "message"}
        assert entry["message"]


def test_an_empty_array_is_a_422():
    error = refusal(headers_for(), b"[]")
    assert (error.status, error.code) == (422, "validation_failed")


def test_a_bad_item_in_an_array_is_named_with_its_index():
    items = [deployment("d-0"), deployment("d-1", status="exploded"), deployment("d-2") | {"version": ""}]
    error = refusal(headers_for(), orjson.dumps(items))
    assert error.status == 422
    assert failing_fields(error) == ["[1].status", "[2].version"]


def test_a_batch_with_one_bad_item_is_refused_whole():
    items = [deployment("d-0"), deployment("d-1"), {"id": "d-2", "status": "succeeded"}]
    # Refused means no Verified at all: none of the good items can be published.
    error = refusal(headers_for(), orjson.dumps(items))
    assert error.status == 422
    assert sorted(failing_fields(error)) == ["[2].environment", "[2].service", "[2].version"]


def test_an_array_item_that_is_not_an_object_is_a_422_naming_its_index():
    error = refusal(headers_for(), orjson.dumps([deployment("d-0"), "d-1"]))
    assert error.status == 422
    assert [field for field in failing_fields(error) if field.startswith("[1]")]


def test_an_array_larger_than_the_batch_limit_is_a_422():
    items = [deployment(f"d-{n}") for n in range(deployments.MAX_BATCH + 1)]
    assert refusal(headers_for(), orjson.dumps(items)).status == 422
