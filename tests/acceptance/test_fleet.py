"""Acceptance: signed deliveries of every source through the real processes, stored exactly once."""

from __future__ import annotations

import itertools
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
import psycopg
import pytest

from contracts import EventEnvelope, Source, encode_batch
from contracts.topology import EVENTS
from ops import samples
from ops.broker import ConfirmingPublisher
from tests.acceptance.conftest import Fleet
from tests.conftest import GITHUB_SECRETS, INGEST_TOKENS, LINEAR_SECRETS, SLACK_SECRETS, free_port
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until

Request = tuple[str, str, str, dict[str, str], bytes]  # (source, delivery id, path, headers, body)


def github_request(tag: str, form: bool = False) -> Request:
    event, body, delivery = samples.github_issue_opened(f"{tag}-gh-{uuid.uuid4()}")
    if form:
        body = urlencode({"payload": body.decode()}).encode()
    headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
    if form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return "github", delivery, "/webhooks/github", headers, body


def slack_request(tag: str) -> Request:
    event_id = f"Ev{tag}{uuid.uuid4().hex[:10]}"
    body = samples.slack_message(event_id)
    return (
        "slack",
        f"A0HOOKYARD:{event_id}",
        "/webhooks/slack",
        samples.slack_headers(SLACK_SECRETS[0], body),
        body,
    )


def linear_request(tag: str) -> Request:
    delivery = f"{tag}-li-{uuid.uuid4()}"
    body = samples.linear_issue()
    return (
        "linear",
        delivery,
        "/webhooks/linear",
        samples.linear_headers(LINEAR_SECRETS[0], body, delivery),
        body,
    )


def deployment_request(tag: str) -> Request:
    item = samples.deployment(f"{tag}-dep-{uuid.uuid4()}")
    headers = {"Authorization": f"Bearer {INGEST_TOKENS[0]}", "Content-Type": "application/json"}
    return "deployment", str(item["id"]), "/v1/deployments", headers, orjson.dumps(item)


def post_all(url: str, requests: list[Request], concurrency: int = 16) -> list[tuple[Request, int]]:
    """POST every request concurrently; (request, status) for each."""
    with httpx.Client(base_url=url, timeout=15) as client, ThreadPoolExecutor(concurrency) as pool:

        def post(request: Request) -> tuple[Request, int]:
            _, _, path, headers, body = request
            try:
                return request, client.post(path, headers=headers, content=body).status_code
            except httpx.HTTPError:
                return request, 0

        return list(pool.map(post, requests))


def stored(conn: psycopg.Connection[Any], keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT source, delivery_id, count(*) FROM events"
        " WHERE (source, delivery_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " GROUP BY 1, 2",
        ([source for source, _ in keys], [delivery for _, delivery in keys]),
    ).fetchall()
    return {(source, delivery): count for source, delivery, count in rows}


def test_signed_deliveries_of_every_source_are_stored_once_with_their_fields(
    fleet: Fleet, db: psycopg.Connection[Any]
) -> None:
    fleet.web()
    fleet.worker()
    tag = uuid.uuid4().hex[:6]
    builders = [github_request, slack_request, linear_request, deployment_request]
    requests = [builder(tag) for builder in builders for _ in range(5)]
    requests.append(github_request(tag, form=True))
    # Senders retry: every fourth delivery arrives twice more (new request, same identity).
    redeliveries = requests[::4] * 2
    results = post_all(fleet.url, requests + redeliveries)
    assert {status for _, status in results} == {202}

    keys = {(source, delivery) for source, delivery, *_ in requests}
    counts = wait_until(
        lambda: (c := stored(db, keys)) and len(c) == len(keys) and c, what="every delivery stored"
    )
    assert set(counts.values()) == {1}

    github_row = db.execute(
        "SELECT event_type, action, repository, sender FROM github_events WHERE delivery_id = %s",
        (requests[0][1],),
    ).fetchone()
    assert github_row == ("issues", "opened", "hookyard/fleet", "octocat")
    slack_row = db.execute(
        "SELECT event_type, team_id, channel_id, user_id FROM slack_events WHERE delivery_id = %s",
        (requests[5][1],),
    ).fetchone()
    assert slack_row == ("message", "T0HOOKYARD", "C0INGEST", "U0ALICE")
    linear_row = db.execute(
        "SELECT event_type, action, entity_type, team_id, actor_id FROM linear_events WHERE delivery_id = %s",
        (requests[10][1],),
    ).fetchone()
    assert linear_row == ("Issue", "create", "Issue", "team-ingest", "user-ana")
    deployment_row = db.execute(
        "SELECT service, environment, version, status, project FROM deployment_events WHERE delivery_id = %s",
        (requests[15][1],),
    ).fetchone()
    assert deployment_row == ("ingest", "production", "1.4.2", "succeeded", "hookyard")
    form_payload = db.execute(
        "SELECT payload->'issue'->>'number' FROM events WHERE delivery_id = %s", (requests[-1][1],)
    ).fetchone()
    assert form_payload == ("1347",)


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(
    fleet: Fleet, db: psycopg.Connection[Any]
) -> None:
    fleet.web()
    first_worker = fleet.worker()
    tag = uuid.uuid4().hex[:6]
    builders = itertools.cycle([github_request, slack_request, linear_request, deployment_request])
    requests = [next(builders)(tag) for _ in range(900)]
    keys_of = [(source, delivery) for source, delivery, *_ in requests]

    with ThreadPoolExecutor(1) as background:
        # The stream keeps flowing while the worker dies and comes back; some deliveries repeat.
        stream = background.submit(post_all, fleet.url, requests + requests[::7])
        wait_until(lambda: len(stored(db, set(keys_of))) >= 150, timeout=60, what="the stream to be flowing")
        first_worker.kill()
        dead_at = len(stored(db, set(keys_of)))
        results = stream.result(timeout=120)
        fleet.worker()

    accepted = {(source, delivery) for (source, delivery, *_), status in results if status == 202}
    assert len(accepted) == len(requests), "the web tier kept accepting while the worker was dead"
    assert dead_at < len(accepted), "the worker was killed before the stream ended"
    counts = wait_until(
        lambda: (c := stored(db, accepted)) and len(c) == len(accepted) and c,
        timeout=90,
        what="every event stored",
    )
    assert set(counts.values()) == {1}
    assert stored(db, set(keys_of)).keys() == accepted


def store_messages(metrics_url: str) -> tuple[float, float]:
    """(transactions, messages) the worker's group commit has committed, from its /metrics."""
    values = {"count": 0.0, "sum": 0.0}
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        for kind in values:
            if line.startswith(f"hookyard_store_messages_{kind} "):
                values[kind] = float(line.split()[1])
    return values["count"], values["sum"]


def test_worker_killed_mid_group_commit_loses_and_duplicates_nothing(
    fleet: Fleet, env: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """A backlog makes the worker commit several messages per transaction; SIGKILL it in the middle."""
    # The run's database is shared: other tests may have left dead letters in it before this one.
    letters_before = db.execute("SELECT count(*) FROM dead_letters").fetchone()
    tag = uuid.uuid4().hex[:6]
    events = [
        EventEnvelope(
            source=Source.SLACK, delivery_id=f"group-{tag}-{index}", event_type="message",
            received_at=datetime.now(UTC), payload='{"text": "hello"}',
        )
        for index in range(8000)
    ]  # fmt: skip
    messages = [events[start : start + 20] for start in range(0, len(events), 20)]
    # Every tenth message also carries five events of the message before it: redeliveries that
    # may meet their originals inside one group.
    messages = [m + messages[i - 1][:5] if i % 10 == 0 and i else m for i, m in enumerate(messages)]
    with ConfirmingPublisher(env["AMQP_URL"]) as broker:
        for batch in messages:
            broker.publish(EVENTS.queue, encode_batch(batch))

    port = free_port()
    first_worker = fleet.worker(HOOKYARD_WORKER_METRICS_PORT=str(port))
    keys = {(event.source.value, event.delivery_id) for event in events}
    wait_until(lambda: len(stored(db, keys)) >= 2000, timeout=60, what="the backlog to be draining")
    transactions, grouped = store_messages(f"http://127.0.0.1:{port}/metrics")
    first_worker.kill()
    dead_at = len(stored(db, keys))
    assert grouped > transactions, "transactions held one message each: no group commit was exercised"
    assert dead_at < len(keys), "the worker was killed after the backlog was drained"

    fleet.worker()
    counts = wait_until(
        lambda: (c := stored(db, keys)) and len(c) == len(keys) and c, timeout=90, what="every event stored"
    )
    assert set(counts.values()) == {1}
    assert db.execute("SELECT count(*) FROM dead_letters").fetchone() == letters_before


def test_broker_outage_answers_503_stores_nothing_refused_and_recovers(
    fleet: Fleet, env: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    broker = urlsplit(env["AMQP_URL"])
    proxy = TcpProxy((broker.hostname or "127.0.0.1", broker.port or 5672))
    try:
        fleet.web(AMQP_URL=broker._replace(netloc=f"guest:guest@{proxy.address}").geturl())
        fleet.worker()
        tag = uuid.uuid4().hex[:6]
        before = [github_request(tag) for _ in range(5)]
        assert {status for _, status in post_all(fleet.url, before)} == {202}

        proxy.cut()
        wait_until(
            lambda: httpx.get(f"{fleet.url}/readyz").status_code == 503, what="/readyz to report the broker"
        )
        readiness = httpx.get(f"{fleet.url}/readyz").json()
        assert readiness["failing"] == ["rabbitmq"]
        during = [github_request(tag) for _ in range(5)]
        with httpx.Client(base_url=fleet.url, timeout=15) as client:
            for _, _, path, headers, body in during:
                response = client.post(path, headers=headers, content=body)
                assert response.status_code == 503
                assert response.json()["error"] == "broker_unavailable"
                assert int(response.headers["Retry-After"]) > 0

        proxy.restore()
        wait_until(
            lambda: httpx.get(f"{fleet.url}/readyz").status_code == 200, timeout=30, what="reconnection"
        )
        after = [github_request(tag) for _ in range(5)]
        assert {status for _, status in post_all(fleet.url, after)} == {202}

        accepted = {(source, delivery) for source, delivery, *_ in before + after}
        wait_until(lambda: len(stored(db, accepted)) == len(accepted), what="accepted events stored")
        refused = {(source, delivery) for source, delivery, *_ in during}
        assert stored(db, refused) == {}
    finally:
        proxy.close()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(
    subprocess.call(["which", "rabbitmqctl"], stdout=subprocess.DEVNULL) != 0, reason="no rabbitmqctl"
)
def test_broker_restart_keeps_every_accepted_event(fleet: Fleet, db: psycopg.Connection[Any]) -> None:
    fleet.web()
    tag = uuid.uuid4().hex[:6]
    before = [github_request(tag) for _ in range(30)] + [slack_request(tag) for _ in range(30)]
    assert {status for _, status in post_all(fleet.url, before)} == {202}

    # Nothing has consumed them yet: they survive the restart only if durable and persistent.
    rabbitmqctl("stop_app")
    try:
        wait_until(lambda: httpx.get(f"{fleet.url}/readyz").status_code == 503, what="the web tier to notice")
    finally:
        rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    wait_until(lambda: httpx.get(f"{fleet.url}/readyz").status_code == 200, timeout=60, what="reconnection")
    after = [github_request(tag) for _ in range(10)]
    assert {status for _, status in post_all(fleet.url, after)} == {202}

    fleet.worker()
    accepted = {(source, delivery) for source, delivery, *_ in before + after}
    counts = wait_until(
        lambda: (c := stored(db, accepted)) and len(c) == len(accepted) and c,
        timeout=60,
        what="every event stored",
    )
    assert set(counts.values()) == {1}
