"""A 202 is a promise: every accepted event reaches ``events``, including JSON jsonb cannot hold."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import psycopg

from ops import samples
from tests.conftest import GITHUB_SECRETS, InProcessServer, InProcessWorker
from tests.support.waiting import wait_until


def test_delivery_with_a_nul_escape_is_answered_202_and_stored_with_its_exact_body(
    server: InProcessServer, worker: InProcessWorker, db: psycopg.Connection[Any]
) -> None:
    delivery = f"nul-{uuid.uuid4()}"
    body = b'{"action": "opened", "issue": {"title": "a \\u0000 in the title"}}'
    headers = samples.github_headers(GITHUB_SECRETS[0], body, "issues", delivery)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/webhooks/github", content=body, headers=headers).status_code == 202

    def stored() -> tuple[Any, ...] | None:
        return db.execute(
            "SELECT payload #>> '{issue,title}', payload_raw, payload_issue FROM events"
            " WHERE delivery_id = %s",
            (delivery,),
        ).fetchone()

    title, raw, issue = wait_until(stored, what="the event to be stored")
    assert raw.encode() == body
    assert issue == "nul_character"
    assert title == "a \ufffd in the title"
    assert orjson.loads(raw)["issue"]["title"] == "a \x00 in the title"
    assert db.execute("SELECT count(*) FROM dead_letters WHERE delivery_id = %s", (delivery,)).fetchone() == (
        0,
    )
