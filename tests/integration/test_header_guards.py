"""Ambiguous authentication, identity and timestamp headers are refused before anything is published."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pika
import pytest

from ops import samples
from tests.conftest import (
    GITHUB_SECRETS,
    INGEST_TOKENS,
    LINEAR_SECRETS,
    SLACK_SECRETS,
    InProcessServer,
    queue_depth,
)

pytestmark = pytest.mark.usefixtures("empty_queues")


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def _github_headers(delivery: str | None = None) -> tuple[bytes, list[tuple[str, str]]]:
    event, body, default_delivery = samples.github_star()
    headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery or default_delivery)
    return body, list(headers.items())


def _post_with(
    client: httpx.Client, path: str, body: bytes, headers: list[tuple[str, str | bytes]]
) -> httpx.Response:
    return client.post(path, content=body, headers=headers)


def _assert_refused(response: httpx.Response, code: str, header: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == code
    assert header.lower() in response.json()["detail"]


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"])
def test_repeated_github_header_is_refused_even_when_one_copy_is_valid(
    client: httpx.Client, amqp_url: str, header: str
) -> None:
    body, headers = _github_headers()
    original = next(value for name, value in headers if name == header)
    # The valid copy last: a server where the last copy wins would accept this.
    response = _post_with(client, "/webhooks/github", body, [(header, "forged"), *headers])
    _assert_refused(response, "duplicate_header", header)
    response = _post_with(client, "/webhooks/github", body, [*headers, (header, original)])
    _assert_refused(response, "duplicate_header", header)
    assert queue_depth(amqp_url, "events") == 0


@pytest.mark.parametrize("header", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_repeated_slack_signature_or_timestamp_is_refused(
    client: httpx.Client, amqp_url: str, header: str
) -> None:
    body = samples.slack_message()
    headers = list(samples.slack_headers(SLACK_SECRETS[0], body).items())
    original = next(value for name, value in headers if name == header)
    _assert_refused(
        _post_with(client, "/webhooks/slack", body, [*headers, (header, original)]),
        "duplicate_header",
        header,
    )
    assert queue_depth(amqp_url, "events") == 0


def test_repeated_linear_delivery_is_refused(client: httpx.Client, amqp_url: str) -> None:
    body = samples.linear_issue()
    headers = list(samples.linear_headers(LINEAR_SECRETS[0], body, str(uuid.uuid4())).items())
    response = _post_with(client, "/webhooks/linear", body, [*headers, ("Linear-Delivery", "second")])
    _assert_refused(response, "duplicate_header", "Linear-Delivery")
    assert queue_depth(amqp_url, "events") == 0


def test_repeated_bearer_token_is_refused(client: httpx.Client, amqp_url: str) -> None:
    headers = [("Authorization", f"Bearer {token}") for token in INGEST_TOKENS] + [
        ("Content-Type", "application/json")
    ]
    response = _post_with(client, "/v1/deployments", orjson.dumps(samples.deployment()), headers)
    _assert_refused(response, "duplicate_header", "Authorization")
    assert queue_depth(amqp_url, "events") == 0


def test_repeated_header_that_identifies_nothing_is_still_accepted(client: httpx.Client) -> None:
    body, headers = _github_headers()
    response = _post_with(client, "/webhooks/github", body, [*headers, ("X-Trace", "a"), ("X-Trace", "b")])
    assert response.status_code == 202, response.text


def test_identity_header_that_is_not_utf8_is_refused(client: httpx.Client, amqp_url: str) -> None:
    body, headers = _github_headers()
    raw_headers: list[tuple[str, str | bytes]] = [
        (name, value) for name, value in headers if name != "X-GitHub-Delivery"
    ]
    raw_headers.append(("X-GitHub-Delivery", b"delivery-\xff\xfe"))  # not UTF-8 (valid Latin-1)
    _assert_refused(
        _post_with(client, "/webhooks/github", body, raw_headers), "invalid_header", "X-GitHub-Delivery"
    )
    assert queue_depth(amqp_url, "events") == 0


def test_utf8_delivery_id_is_published_as_utf8_not_latin1(client: httpx.Client, amqp_url: str) -> None:
    delivery = f"livraison-été-{uuid.uuid4()}"
    body, headers = _github_headers(delivery)
    raw_headers: list[tuple[str, str | bytes]] = [
        (name, value.encode() if name == "X-GitHub-Delivery" else value) for name, value in headers
    ]
    response = _post_with(client, "/webhooks/github", body, raw_headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"delivery_id": delivery}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        _, _, message = connection.channel().basic_get("events", auto_ack=True)
    finally:
        connection.close()
    assert message is not None
    assert orjson.loads(message)["args"][0]["events"][0]["delivery_id"] == delivery
