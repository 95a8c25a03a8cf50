"""Project keys on the real server and worker: the 401/403 matrix, projects and links end to end."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from contracts.keys import ALL_SCOPES, Scope, key_hash, key_prefix, new_key
from hookyard.config import Settings
from ops import samples
from tests.conftest import GITHUB_SECRETS, INGEST_TOKENS, InProcessServer, InProcessWorker, make_settings
from tests.support.waiting import wait_until

V1 = {
    "/v1/deployments": Scope.DEPLOYMENTS,
    "/v1/heartbeats": Scope.HEARTBEATS,
    "/v1/usage": Scope.USAGE,
    "/v1/errors": Scope.ERRORS,
}


#: A valid body of each /v1 endpoint, fresh each time (ids are idempotency keys).
V1_BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "/v1/deployments": samples.deployment,
    "/v1/heartbeats": lambda: {
        "id": f"hb-{uuid.uuid4()}", "instance": {"host": "web-1"}, "sent_at": "2026-11-30T10:00:00Z",
    },
    "/v1/usage": lambda: {
        "id": f"u-{uuid.uuid4()}", "resource_type": "tokens", "quantity": 1,
        "occurred_at": "2026-11-30T10:00:00Z",
    },
    "/v1/errors": lambda: {"id": f"e-{uuid.uuid4()}", "message": "boom"},
}  # fmt: skip


def create_project(db: psycopg.Connection[Any], slug: str, org: str = "default") -> int:
    row = db.execute(
        "INSERT INTO projects (organization_id, slug, name)"
        " SELECT id, %s, %s FROM organizations WHERE slug = %s RETURNING id",
        (slug, slug, org),
    ).fetchone()
    assert row is not None
    return int(row[0])


def create_key(
    db: psycopg.Connection[Any], project_id: int, scopes: tuple[Scope, ...] = ALL_SCOPES
) -> tuple[int, str]:
    key = new_key()
    row = db.execute(
        "INSERT INTO project_keys (project_id, key_hash, key_prefix, scopes)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (project_id, key_hash(key), key_prefix(key), [str(scope) for scope in scopes]),
    ).fetchone()
    assert row is not None
    return int(row[0]), key


@pytest.fixture
def tenants(
    fresh_database_url: str, empty_queues: str
) -> Iterator[tuple[Settings, psycopg.Connection[Any], dict[str, Any]]]:
    """A database of this test's own with two projects and their keys, and a server over it."""
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        alpha, beta = create_project(db, "alpha"), create_project(db, "beta")
        keys = {
            "alpha": create_key(db, alpha)[1],
            "beta": create_key(db, beta)[1],
            "alpha_deployments": create_key(db, alpha, (Scope.DEPLOYMENTS,))[1],
            "alpha_revoked": create_key(db, alpha)[1],
            "alpha_id": alpha,
            "beta_id": beta,
        }
        db.execute(
            "UPDATE project_keys SET revoked_at = now() WHERE key_hash = %s",
            (key_hash(keys["alpha_revoked"]),),
        )
        yield make_settings(fresh_database_url, empty_queues), db, keys


def post(url: str, path: str, token: str, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(f"{url}{path}", content=orjson.dumps(body), headers=headers, timeout=10)


def test_the_401_403_matrix_of_every_v1_endpoint(
    tenants: tuple[Settings, psycopg.Connection[Any], dict[str, Any]],
) -> None:
    settings, _, keys = tenants
    with InProcessServer(settings) as server:
        for path, scope in V1.items():
            body = V1_BODIES[path]()
            own = {**body, "project": "alpha"}
            foreign = {**body, "project": "beta"}
            cases = [
                (keys["alpha"], own, 202),
                (keys["alpha"], foreign, 403),
                (keys["beta"], own, 403),
                (keys["alpha_revoked"], own, 401),
                (new_key(), own, 401),
                (keys["alpha_deployments"], own, 202 if scope is Scope.DEPLOYMENTS else 403),
                (INGEST_TOKENS[0], foreign, 202),
            ]
            for token, sent, expected in cases:
                response = post(server.url, path, token, sent)
                assert response.status_code == expected, (path, sent.get("project"), response.text)
            assert post(server.url, path, keys["alpha"], foreign).json()["error"] == "forbidden_project"
            assert post(server.url, path, keys["alpha_revoked"], own).json()["error"] == "key_revoked"
            assert post(server.url, path, new_key(), own).json()["error"] == "invalid_token"
            if scope is not Scope.DEPLOYMENTS:
                assert (
                    post(server.url, path, keys["alpha_deployments"], own).json()["error"] == "missing_scope"
                )


def test_a_key_accepted_is_remembered_as_used_without_a_write_per_request(
    tenants: tuple[Settings, psycopg.Connection[Any], dict[str, Any]],
) -> None:
    settings, db, keys = tenants
    with InProcessServer(settings) as server:
        for _ in range(5):
            own = {**samples.deployment(), "project": "alpha"}
            assert post(server.url, "/v1/deployments", keys["alpha"], own).status_code == 202

        def used() -> Any:
            row = db.execute(
                "SELECT last_used_at FROM project_keys WHERE key_hash = %s", (key_hash(keys["alpha"]),)
            ).fetchone()
            return row[0] if row else None

        wait_until(used, timeout=15, what="last_used_at to be flushed")
        unused = db.execute(
            "SELECT last_used_at FROM project_keys WHERE key_hash = %s", (key_hash(keys["beta"]),)
        ).fetchone()
        assert unused == (None,)


def test_deployments_carry_their_keys_project_and_unknown_slugs_become_discovered_projects(
    tenants: tuple[Settings, psycopg.Connection[Any], dict[str, Any]],
) -> None:
    settings, db, keys = tenants
    by_key = {**samples.deployment(), "project": None}
    del by_key["project"]
    discovered = {**samples.deployment(), "project": f"new-{uuid.uuid4().hex[:8]}"}
    known = {**samples.deployment(), "project": "beta"}
    with InProcessServer(settings) as server, InProcessWorker(settings):
        assert post(server.url, "/v1/deployments", keys["alpha"], by_key).status_code == 202
        assert post(server.url, "/v1/deployments", INGEST_TOKENS[0], [discovered, known]).status_code == 202

        def stored() -> dict[str, Any] | None:
            rows = db.execute(
                "SELECT e.delivery_id, e.project_id, p.slug, p.status::text FROM events e"
                " LEFT JOIN projects p ON p.id = e.project_id WHERE e.delivery_id = ANY(%s)",
                ([by_key["id"], discovered["id"], known["id"]],),
            ).fetchall()
            return {row[0]: row[1:] for row in rows} if len(rows) == 3 else None

        rows = wait_until(stored, timeout=20, what="the three deployments")
    assert rows[by_key["id"]] == (keys["alpha_id"], "alpha", "active")
    assert rows[known["id"]] == (keys["beta_id"], "beta", "active")
    assert rows[discovered["id"]][1:] == (discovered["project"], "discovered")


def test_a_linked_webhook_source_routes_its_events_to_the_project_and_others_keep_none(
    tenants: tuple[Settings, psycopg.Connection[Any], dict[str, Any]],
) -> None:
    settings, db, keys = tenants
    db.execute(
        "INSERT INTO project_links (target, project_id) VALUES ('github:hookyard/linked', %s)",
        (keys["alpha_id"],),
    )
    # The link exists before the server starts, and the server loads its registry before it answers.
    with InProcessServer(settings) as server, InProcessWorker(settings):
        deliveries = {}
        for repository in ("hookyard/linked", "hookyard/unlinked"):
            event, body, delivery = samples.github_star(repository=repository)
            headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
            response = httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers, timeout=10)
            assert response.status_code == 202
            deliveries[repository] = delivery

        def stored() -> dict[str, Any] | None:
            rows = dict(
                db.execute(
                    "SELECT delivery_id, project_id FROM events WHERE delivery_id = ANY(%s)",
                    (list(deliveries.values()),),
                ).fetchall()
            )
            return rows if len(rows) == 2 else None

        rows = wait_until(stored, timeout=20, what="both deliveries")
    assert rows[deliveries["hookyard/linked"]] == keys["alpha_id"]
    assert rows[deliveries["hookyard/unlinked"]] is None
