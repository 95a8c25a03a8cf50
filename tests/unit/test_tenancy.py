"""Tenancy's pure parts: naming projects and link targets, building DSNs, loading its queries."""

from __future__ import annotations

import pytest

from contracts.keys import ALL_SCOPES, Scope
from hookyard.config import load_settings
from hookyard.errors import ConfigurationError, HookyardError
from ops.cli import cli
from ops.tenancy import (
    InvalidValue,
    ProjectRef,
    parse_project,
    parse_scopes,
    parse_target,
    ping_url,
    public_base_url,
    sentry_dsn,
)
from schema import queries
from schema.queries import merge_queries

KEY = "AbCdEf0123456789AbCdEf0123456789"

# --- PROJECT ---


def test_a_bare_slug_names_a_project_of_the_default_organization():
    assert parse_project("shop") == ProjectRef("default", "shop")


def test_org_slash_slug_names_a_project_of_that_organization():
    assert parse_project("acme/shop") == ProjectRef("acme", "shop")
    assert str(parse_project("acme/shop")) == "acme/shop"


def test_the_create_command_of_a_missing_project_names_its_organization_when_not_the_default():
    assert ProjectRef("default", "shop").create_command() == "hookyard projects create shop"
    assert ProjectRef("acme", "shop").create_command() == "hookyard projects create shop --org acme"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Shop",
        "-shop",
        "_shop",
        "sh op",
        "a/",
        "/b",
        "a/b/c",
        "acme/Shop",
        "x" * 65,
        "acme/" + "x" * 65,
        "é",
    ],
)
def test_anything_but_slug_or_org_slash_slug_is_refused_with_the_value_quoted(value):
    with pytest.raises(InvalidValue) as refused:
        parse_project(value)
    assert repr(value) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_slug_of_64_characters_is_accepted():
    assert parse_project("a" * 64).slug == "a" * 64


def test_refusals_are_hookyard_errors_so_the_cli_prints_them_on_one_line():
    assert issubclass(InvalidValue, HookyardError)


# --- Link targets ---


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("github:acme/shop", "github:acme/shop"),
        ("github:Acme-Inc/My.Repo_2", "github:acme-inc/my.repo_2"),  # GitHub names ignore case
        ("slack:T0123ABCD", "slack:T0123ABCD"),
        ("slack:t0123abcd", "slack:T0123ABCD"),  # Slack writes its ids in capitals
        ("linear:2C3F6B0E-8D6A-4F3E-9B1C-0A2B3C4D5E6F", "linear:2c3f6b0e-8d6a-4f3e-9b1c-0a2b3c4d5e6f"),
    ],
)
def test_a_link_target_is_stored_in_the_form_its_webhooks_carry(value, stored):
    assert parse_target(value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "acme/shop",
        "github:acme",
        "github:acme/",
        "github:/shop",
        "github:acme/shop/extra",
        "github:-acme/shop",
        "github:acme/..",
        "github:ac me/shop",
        "slack:",
        "slack:T01-23",
        "linear:ENG",
        "linear:",
        "gitlab:acme/shop",
        "github",
        "",
    ],
)
def test_a_malformed_link_target_is_refused_with_the_value_quoted(value):
    with pytest.raises(InvalidValue) as refused:
        parse_target(value)
    assert repr(value) in str(refused.value)


# --- Scopes ---


def test_no_scope_given_means_every_scope():
    assert parse_scopes([]) == ALL_SCOPES


def test_scopes_keep_their_order_and_appear_once():
    assert parse_scopes(["usage", "errors", "usage"]) == (Scope.USAGE, Scope.ERRORS)


def test_an_unknown_scope_is_refused_with_the_known_ones_listed():
    with pytest.raises(InvalidValue, match="'admin' is not one of deployments, heartbeats"):
        parse_scopes(["admin"])


# --- DSN and ping URL ---


def test_the_dsn_puts_the_key_as_user_info_and_the_project_id_as_the_path():
    assert sentry_dsn("http://127.0.0.1:8000", KEY, 42) == f"http://{KEY}@127.0.0.1:8000/42"


def test_the_dsn_keeps_the_path_prefix_of_the_public_url():
    assert (
        sentry_dsn("https://hooks.example.com/hookyard", KEY, 7)
        == f"https://{KEY}@hooks.example.com/hookyard/7"
    )
    assert (
        sentry_dsn("https://hooks.example.com/hookyard/", KEY, 7)
        == f"https://{KEY}@hooks.example.com/hookyard/7"
    )


def test_the_ping_url_is_the_key_under_ping_with_a_trailing_slash():
    assert ping_url("http://127.0.0.1:8000", KEY) == f"http://127.0.0.1:8000/ping/{KEY}/"
    assert ping_url("https://hooks.example.com/hy/", KEY) == f"https://hooks.example.com/hy/ping/{KEY}/"


def test_the_public_url_wins_over_where_serve_listens():
    assert public_base_url("https://hooks.example.com/", "10.0.0.1", 9000) == "https://hooks.example.com"


def test_without_a_public_url_the_base_is_where_serve_listens():
    assert public_base_url(None, "127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert public_base_url(None, "hookyard.internal", 9000) == "http://hookyard.internal:9000"


def test_a_wildcard_bind_address_is_reached_through_loopback():
    assert public_base_url(None, "0.0.0.0", 8000) == "http://127.0.0.1:8000"  # noqa: S104 - an address, not a bind
    assert public_base_url(None, "::", 8000) == "http://127.0.0.1:8000"


def test_an_ipv6_serve_address_is_bracketed():
    assert public_base_url(None, "::1", 8000) == "http://[::1]:8000"
    assert sentry_dsn("http://[::1]:8000", KEY, 3) == f"http://{KEY}@[::1]:8000/3"


# --- HOOKYARD_PUBLIC_URL ---


def test_hookyard_public_url_is_unset_by_default(monkeypatch):
    monkeypatch.delenv("HOOKYARD_PUBLIC_URL", raising=False)
    assert load_settings().hookyard_public_url is None


def test_hookyard_public_url_is_read_from_the_environment_without_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("HOOKYARD_PUBLIC_URL", "https://hooks.example.com/hy/")
    assert load_settings().hookyard_public_url == "https://hooks.example.com/hy"


def test_an_empty_hookyard_public_url_counts_as_unset(monkeypatch):
    monkeypatch.setenv("HOOKYARD_PUBLIC_URL", "")
    assert load_settings().hookyard_public_url is None


@pytest.mark.parametrize(
    "value",
    [
        "hooks.example.com",
        "ftp://hooks.example.com",
        "http://",
        "http://:8000",
        "http://hooks.example.com:99999",
        "http://user@hooks.example.com",
        "http://hooks.example.com/?x=1",
        "http://hooks.example.com/#top",
    ],
)
def test_a_public_url_that_is_not_plain_http_or_https_with_a_host_is_refused(monkeypatch, value):
    monkeypatch.setenv("HOOKYARD_PUBLIC_URL", value)
    with pytest.raises(ConfigurationError, match=r"^HOOKYARD_PUBLIC_URL: "):
        load_settings()


# --- Commands and queries ---


@pytest.mark.parametrize(
    "path",
    [
        ("orgs", "create"),
        ("orgs", "list"),
        ("projects", "create"),
        ("projects", "list"),
        ("projects", "show"),
        ("projects", "archive"),
        ("projects", "link"),
        ("projects", "unlink"),
        ("keys", "create"),
        ("keys", "list"),
        ("keys", "revoke"),
    ],
    ids=" ".join,
)
def test_every_tenancy_command_of_the_spec_is_on_the_hookyard_command(path):
    group = cli.commands[path[0]]
    assert path[1] in group.commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("group", "command"), [("orgs", "list"), ("projects", "list"), ("projects", "show"), ("keys", "list")]
)
def test_listing_and_showing_commands_take_json(group, command):
    params = cli.commands[group].commands[command].params  # type: ignore[attr-defined]
    assert "--json" in [opt for param in params for opt in param.opts]


def test_the_tenancy_queries_are_loaded_with_the_fleet_queries():
    assert "key_insert" in queries()
    assert "claim_event_keys" in queries()


def test_a_query_name_defined_in_two_files_is_rejected_naming_both():
    with pytest.raises(ValueError, match=r"'same' is defined in both a\.sql and b\.sql"):
        merge_queries(
            [("a.sql", "-- name: same --\nSELECT 1;\n"), ("b.sql", "-- name: same --\nSELECT 2;\n")]
        )


def test_a_sql_file_without_named_queries_adds_nothing():
    assert merge_queries([("a.sql", "-- name: one --\nSELECT 1;\n"), ("notes.sql", "-- a comment\n")]) == {
        "one": "SELECT 1;"
    }
