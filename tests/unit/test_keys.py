"""Project keys in a web process: shape, lookup, scopes, projects, links (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from contracts import EventEnvelope, EventFields, Source
from contracts.keys import KEY_LENGTH, Scope, key_hash, looks_like_key, new_key
from ops.samples import deployment
from producers import deployments
from producers.errors import IngestError
from producers.keys import OPERATOR, KeyRegistry, ProjectKey, authenticate, build_snapshot, project_of

NOW = datetime(2026, 11, 30, tzinfo=UTC)
TOKEN = "operator-token"
ALPHA, BETA, REVOKED, DEPLOY_ONLY = new_key(), new_key(), new_key(), new_key()


@pytest.fixture
def registry() -> KeyRegistry:
    keys = KeyRegistry("postgresql://unused@127.0.0.1:1/none")
    keys.snapshot = build_snapshot(
        keys=[
            (
                1,
                key_hash(ALPHA),
                ["deployments", "heartbeats", "usage", "errors", "budgets"],
                10,
                "alpha",
                "default",
                False,
            ),
            (2, key_hash(BETA), ["deployments", "errors"], 20, "beta", "acme", False),
            (3, key_hash(REVOKED), ["deployments"], 10, "alpha", "default", True),
            (4, key_hash(DEPLOY_ONLY), ["deployments"], 10, "alpha", "default", False),
        ],
        projects=[(10, "alpha", "default", "active"), (20, "beta", "acme", "active")],
        links=[("github:hookyard/fleet", 10), ("slack:T0HOOKYARD", 20)],
        organizations=["default", "acme"],
    )
    keys.loaded = True
    return keys


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def refused(headers: dict[str, str], registry: KeyRegistry, scope: Scope = Scope.DEPLOYMENTS) -> IngestError:
    with pytest.raises(IngestError) as caught:
        authenticate(headers, (TOKEN,), registry, scope)
    return caught.value


def test_a_new_key_is_letters_and_digits_only_and_never_repeats() -> None:
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(len(key) == KEY_LENGTH and key.isalnum() and key.isascii() for key in keys)
    assert all(looks_like_key(key) for key in keys)
    assert not looks_like_key("short")
    assert not looks_like_key("a" * (KEY_LENGTH - 1) + "-")


def test_the_operator_token_is_accepted_for_every_scope(registry: KeyRegistry) -> None:
    for scope in Scope:
        assert authenticate(bearer(TOKEN), (TOKEN,), registry, scope) is OPERATOR


def test_a_project_key_is_its_project_and_its_use_is_remembered_not_written(registry: KeyRegistry) -> None:
    principal = authenticate(bearer(ALPHA), (TOKEN,), registry, Scope.HEARTBEATS)
    assert isinstance(principal, ProjectKey)
    assert (principal.id, principal.project_id, principal.project_slug) == (1, 10, "alpha")
    assert list(registry._used) == [1]


@pytest.mark.parametrize(
    ("token", "scope", "status", "code"),
    [
        (REVOKED, Scope.DEPLOYMENTS, 401, "key_revoked"),
        (new_key(), Scope.DEPLOYMENTS, 401, "invalid_token"),
        ("not-a-key-and-not-the-token", Scope.DEPLOYMENTS, 401, "invalid_token"),
        (DEPLOY_ONLY, Scope.HEARTBEATS, 403, "missing_scope"),
        (BETA, Scope.USAGE, 403, "missing_scope"),
    ],
)
def test_unknown_revoked_and_unscoped_keys_are_refused(
    registry: KeyRegistry, token: str, scope: Scope, status: int, code: str
) -> None:
    error = refused(bearer(token), registry, scope)
    assert (error.status, error.code) == (status, code)


def test_a_missing_or_basic_authorization_is_a_401(registry: KeyRegistry) -> None:
    assert refused({}, registry).code == "missing_token"
    assert refused({"authorization": f"Basic {ALPHA}"}, registry).status == 401


def test_keys_cannot_be_checked_before_the_first_load_so_the_sender_is_told_to_retry() -> None:
    cold = KeyRegistry("postgresql://unused@127.0.0.1:1/none")
    error = refused(bearer(ALPHA), cold)
    assert (error.status, error.code) == (503, "keys_unavailable")
    assert authenticate(bearer(TOKEN), (TOKEN,), cold, Scope.DEPLOYMENTS) is OPERATOR


def test_without_an_operator_token_a_non_key_is_a_401_naming_the_variable(registry: KeyRegistry) -> None:
    with pytest.raises(IngestError) as caught:
        authenticate(bearer("whatever"), (), registry, Scope.DEPLOYMENTS)
    assert caught.value.code == "secret_not_configured"
    assert "HOOKYARD_INGEST_TOKEN" in caught.value.detail
    assert isinstance(authenticate(bearer(ALPHA), (), registry, Scope.DEPLOYMENTS), ProjectKey)


def test_a_key_may_omit_its_project_or_name_it_but_never_another(registry: KeyRegistry) -> None:
    alpha = registry.lookup(ALPHA)
    beta = registry.lookup(BETA)
    assert alpha is not None
    assert beta is not None
    assert project_of(alpha, None, registry) == (10, "alpha")
    assert project_of(alpha, "alpha", registry) == (10, "alpha")
    assert project_of(alpha, "default/alpha", registry) == (10, "default/alpha")
    assert project_of(beta, "acme/beta", registry) == (20, "acme/beta")
    for foreign in ("beta", "acme/alpha", "default/beta"):
        with pytest.raises(IngestError) as caught:
            project_of(alpha, foreign, registry)
        assert (caught.value.status, caught.value.code) == (403, "forbidden_project")
    with pytest.raises(IngestError):
        project_of(beta, "beta", registry)  # a bare slug means the default organization


def test_the_operator_may_name_any_project_and_an_unknown_one_is_left_to_the_worker(
    registry: KeyRegistry,
) -> None:
    assert project_of(OPERATOR, "alpha", registry) == (10, "alpha")
    assert project_of(OPERATOR, "acme/beta", registry) == (20, "acme/beta")
    assert project_of(OPERATOR, "brand-new", registry) == (None, "brand-new")
    assert project_of(OPERATOR, "acme/brand-new", registry) == (None, "acme/brand-new")
    assert project_of(OPERATOR, None, registry) == (None, None)


def test_a_project_of_an_organization_that_does_not_exist_is_refused_at_the_edge(
    registry: KeyRegistry,
) -> None:
    with pytest.raises(IngestError) as caught:
        project_of(OPERATOR, "nowhere/brand-new", registry)
    assert (caught.value.status, caught.value.code) == (422, "validation_failed")
    assert "nowhere" in caught.value.detail


def test_a_deployment_batch_with_one_foreign_project_is_refused_whole(registry: KeyRegistry) -> None:
    alpha = registry.lookup(ALPHA)
    assert alpha is not None
    body = orjson.dumps([deployment("d-1") | {"project": "alpha"}, deployment("d-2") | {"project": "beta"}])
    with pytest.raises(IngestError) as caught:
        deployments.verify(bearer(ALPHA), body, alpha, NOW, registry)
    assert caught.value.code == "forbidden_project"
    [event] = deployments.verify(
        bearer(ALPHA), orjson.dumps(deployment("d-3") | {"project": None}), alpha, NOW, registry
    ).events
    assert (event.project_id, event.fields.project) == (10, "alpha")


def _webhook(source: Source, **fields: str) -> EventEnvelope:
    return EventEnvelope(
        source=source,
        delivery_id="d",
        event_type="t",
        received_at=NOW,
        payload="{}",
        fields=EventFields(**fields),
    )


def test_webhooks_of_a_linked_source_join_its_project_and_others_keep_none(registry: KeyRegistry) -> None:
    linked = _webhook(Source.GITHUB, repository="hookyard/fleet")
    unlinked = _webhook(Source.GITHUB, repository="someone/else")
    slack = _webhook(Source.SLACK, team="T0HOOKYARD")
    linear = _webhook(Source.LINEAR, team="T0HOOKYARD")  # the same id under another source is not linked
    routed = registry.route([linked, unlinked, slack, linear])
    assert [event.project_id for event in routed] == [10, None, 20, None]
