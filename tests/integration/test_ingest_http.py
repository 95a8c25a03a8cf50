"""The ingestion endpoints on a real server with a real broker: every answer of SPEC.md."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from hookyard.config import Settings
from ops import samples
from tests.conftest import (
    GITHUB_SECRETS,
    INGEST_TOKENS,
    LINEAR_SECRETS,
    SLACK_SECRETS,
    InProcessServer,
    make_settings,
    queue_depth,
)

pytestmark = pytest.mark.usefixtures("empty_queues")


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def github(client: httpx.Client, secret: str = GITHUB_SECRETS[0], **header_overrides: str) -> httpx.Response:
    event, body, delivery = samples.github_star()
    headers = {**samples.github_headers(secret, body, event, delivery), **header_overrides}
    return client.post("/webhooks/github", content=body, headers={k: v for k, v in headers.items() if v})


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def test_signed_github_delivery_is_accepted_with_its_delivery_id(client: httpx.Client, amqp_url: str) -> None:
    event, body, delivery = samples.github_issue_opened()
    response = client.post(
        "/webhooks/github",
        content=body,
        headers=samples.github_headers(GITHUB_SECRETS[0], body, event, delivery),
    )
    assert response.status_code == 202
    assert response.json() == {"delivery_id": delivery}
    assert queue_depth(amqp_url, "events") == 1


def test_previous_secret_is_still_accepted_during_rotation(client: httpx.Client) -> None:
    assert github(client, secret=GITHUB_SECRETS[1]).status_code == 202


def test_github_form_encoded_delivery_is_accepted(client: httpx.Client) -> None:
    from urllib.parse import urlencode  # noqa: PLC0415

    event, payload, delivery = samples.github_star()
    body = urlencode({"payload": payload.decode()}).encode()
    headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"X-Hub-Signature-256": ""}, 401, "missing_signature"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "invalid_signature"),
        ({"X-GitHub-Event": ""}, 400, "missing_header"),
        ({"X-GitHub-Delivery": ""}, 400, "missing_header"),
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ],
)
def test_bad_github_requests_are_refused_and_leave_no_trace(
    client: httpx.Client, amqp_url: str, overrides: dict[str, str], status: int, code: str
) -> None:
    assert_error(github(client, **overrides), status, code)
    assert queue_depth(amqp_url, "events") == 0


def test_wrong_secret_is_refused(client: httpx.Client) -> None:
    assert_error(github(client, secret="not-the-secret"), 401, "invalid_signature")


def test_github_body_that_is_not_json_is_refused_after_the_signature_check(client: httpx.Client) -> None:
    body = b"{not json"
    headers = samples.github_headers(GITHUB_SECRETS[0], body, "push", str(uuid.uuid4()))
    assert_error(client.post("/webhooks/github", content=body, headers=headers), 400, "invalid_json")


def test_source_without_a_secret_answers_401_naming_the_variable(
    database_url: str, empty_queues: str
) -> None:
    settings = make_settings(database_url, empty_queues, linear_webhook_secret=())
    with InProcessServer(settings) as server, httpx.Client(base_url=server.url) as http:
        body = samples.linear_issue()
        response = http.post(
            "/webhooks/linear", content=body, headers=samples.linear_headers("x", body, "d1")
        )
    assert_error(response, 401, "secret_not_configured")
    assert "LINEAR_WEBHOOK_SECRET" in response.json()["detail"]


def test_body_over_the_limit_is_refused_with_413_before_it_is_read(
    database_url: str, empty_queues: str
) -> None:
    settings = make_settings(database_url, empty_queues, hookyard_max_body_bytes=1024)
    with InProcessServer(settings) as server, httpx.Client(base_url=server.url) as http:
        event, body, delivery = samples.github_star()
        headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
        assert_error(http.post("/webhooks/github", content=body, headers=headers), 413, "payload_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
            for start in range(0, len(body), 512):
                yield body[start : start + 512]

        assert_error(
            http.post("/webhooks/github", content=chunks(), headers=headers), 413, "payload_too_large"
        )
    assert queue_depth(empty_queues, "events") == 0


def test_slack_url_verification_is_answered_with_its_challenge(client: httpx.Client, amqp_url: str) -> None:
    body = orjson.dumps(
        {
            "token": "t",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    response = client.post(
        "/webhooks/slack", content=body, headers=samples.slack_headers(SLACK_SECRETS[0], body)
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert queue_depth(amqp_url, "events") == 0


def test_slack_request_outside_its_window_is_refused(client: httpx.Client) -> None:
    body = samples.slack_message()
    headers = samples.slack_headers(SLACK_SECRETS[0], body, timestamp=int(time.time()) - 301)
    assert_error(client.post("/webhooks/slack", content=body, headers=headers), 401, "stale_timestamp")


def test_slack_retry_is_accepted(client: httpx.Client) -> None:
    body = samples.slack_message()
    headers = {
        **samples.slack_headers(SLACK_SECRETS[1], body),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    assert client.post("/webhooks/slack", content=body, headers=headers).status_code == 202


def test_linear_webhook_older_than_a_minute_is_refused(client: httpx.Client) -> None:
    body = samples.linear_issue(now_ms=int((time.time() - 61) * 1000))
    headers = samples.linear_headers(LINEAR_SECRETS[0], body, str(uuid.uuid4()))
    assert_error(client.post("/webhooks/linear", content=body, headers=headers), 401, "stale_timestamp")


def test_linear_webhook_is_accepted(client: httpx.Client) -> None:
    body = samples.linear_issue()
    delivery = str(uuid.uuid4())
    response = client.post(
        "/webhooks/linear", content=body, headers=samples.linear_headers(LINEAR_SECRETS[1], body, delivery)
    )
    assert response.status_code == 202
    assert response.json() == {"delivery_id": delivery}


def bearer(token: str = INGEST_TOKENS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_deployment_batch_is_accepted_whole(client: httpx.Client, amqp_url: str) -> None:
    batch = [samples.deployment(status=status) for status in ("started", "succeeded", "rolled_back")]
    response = client.post("/v1/deployments", content=orjson.dumps(batch), headers=bearer(INGEST_TOKENS[1]))
    assert response.status_code == 202
    assert response.json() == {"delivery_ids": [item["id"] for item in batch]}
    assert queue_depth(amqp_url, "events") == 1  # one broker message for the whole batch


def test_deployment_batch_with_one_invalid_object_is_refused_whole_listing_each_field(
    client: httpx.Client, amqp_url: str
) -> None:
    bad = {**samples.deployment(), "status": "exploded"}
    del bad["service"]
    response = client.post(
        "/v1/deployments", content=orjson.dumps([samples.deployment(), bad]), headers=bearer()
    )
    assert_error(response, 422, "validation_failed")
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"[1].status", "[1].service"}
    assert queue_depth(amqp_url, "events") == 0


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Type": "application/json"}, b"{}", 401, "missing_token"),
        (bearer("wrong"), b"{}", 401, "invalid_token"),
        ({**bearer(), "Content-Type": "text/csv"}, b"a,b", 415, "unsupported_media_type"),
        (bearer(), b"[{]", 400, "invalid_json"),
    ],
)
def test_bad_deployment_requests_are_refused(
    client: httpx.Client, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    assert_error(client.post("/v1/deployments", content=body, headers=headers), status, code)


@pytest.mark.parametrize("path", ["/v1/heartbeats", "/v1/usage", "/v1/errors"])
def test_a_v1_body_that_fails_its_schema_is_422_and_nothing_is_published(
    client: httpx.Client, amqp_url: str, path: str
) -> None:
    assert_error(client.post(path, content=b"{}", headers=bearer()), 422, "validation_failed")
    for queue in ("events", "errors", "heartbeats", "usage"):
        assert queue_depth(amqp_url, queue) == 0


def test_health_readiness_metrics_and_openapi_answer(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ready"}
    github(client)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'hookyard_events_accepted_total{source="github"}' in metrics.text
    spec = client.get("/openapi.json").json()
    assert {"/webhooks/github", "/webhooks/slack", "/webhooks/linear", "/v1/deployments"} <= set(
        spec["paths"]
    )


def test_unknown_route_answers_json(client: httpx.Client) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/webhooks/github"), 405, "method_not_allowed")


def test_a_burst_of_the_same_delivery_is_accepted_every_time_and_stored_once(
    settings: Settings, server: InProcessServer, db: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from tests.conftest import InProcessWorker  # noqa: PLC0415
    from tests.integration.test_worker import duplicates_skipped  # noqa: PLC0415
    from tests.support.waiting import wait_until  # noqa: PLC0415

    skipped_before = duplicates_skipped()
    event, body, delivery = samples.github_star()
    headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
    with httpx.Client(base_url=server.url, timeout=10) as http, ThreadPoolExecutor(20) as pool:

        def post(_: int) -> int:
            return http.post("/webhooks/github", content=body, headers=headers).status_code

        statuses = list(pool.map(post, range(40)))
    assert statuses == [202] * 40
    with InProcessWorker(settings):
        # One stored, 39 recognised as repeats: only then has every copy been handled.
        wait_until(lambda: duplicates_skipped() - skipped_before == 39, what="every repeat to be skipped")
    assert db.execute("SELECT count(*) FROM events WHERE delivery_id = %s", (delivery,)).fetchone() == (1,)
