"""An operator's tenancy session with the real ``hookyard orgs / projects / keys`` commands."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.cli import as_json, one_line_error
from tests.support.processes import HOOKYARD, fleet_env


def hookyard(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKYARD, *args],
        env=fleet_env(DATABASE_URL=database_url, COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def query(database_url: str, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def org_slug(fresh_database_url: str) -> Iterator[str]:
    """A slug no other run uses, since migration 0008 makes a cluster-wide role per organization.

    The role, when one was made, is dropped afterwards (with its grants in this test's database).
    """
    slug = f"acme_{secrets.token_hex(4)}"
    yield slug
    role = f"hookyard_org_{slug}"
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- Organizations and projects ---


def test_an_organization_is_created_and_listed_beside_the_default_one(
    fresh_database_url: str, org_slug: str
) -> None:
    created = ok(hookyard(fresh_database_url, "orgs", "create", org_slug, "--name", "Acme Inc"))
    assert created.startswith(f"created organization {org_slug} with id ")

    listed = {org["slug"]: org for org in as_json(hookyard(fresh_database_url, "orgs", "list", "--json"))}
    assert set(listed) == {"default", org_slug}
    assert listed[org_slug]["name"] == "Acme Inc"
    assert listed[org_slug]["projects"] == 0
    assert org_slug in ok(hookyard(fresh_database_url, "orgs", "list"))


def test_orgs_create_makes_the_organizations_nologin_role_where_migration_0008_provides_it(
    fresh_database_url: str, org_slug: str
) -> None:
    present = "SELECT to_regprocedure('hookyard_create_org_role(text)') IS NOT NULL"
    if query(fresh_database_url, present) != [(True,)]:
        pytest.skip("this checkout has no migration defining hookyard_create_org_role(text)")
    created = ok(hookyard(fresh_database_url, "orgs", "create", org_slug))
    assert created.strip().endswith(f"and role hookyard_org_{org_slug}")
    assert query(
        fresh_database_url,
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = %(role)s",
        {"role": f"hookyard_org_{org_slug}"},
    ) == [(False,)]


def test_orgs_create_calls_the_role_function_in_the_transaction_of_its_insert(
    fresh_database_url: str, org_slug: str
) -> None:
    # Migration 0008's function, stood in for: it records the call, or fails for one slug.
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE role_calls (slug text)")
        conn.execute("DROP FUNCTION IF EXISTS hookyard_create_org_role(text)")
        conn.execute(
            """CREATE FUNCTION hookyard_create_org_role(org_slug text) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN
                IF org_slug = 'refused' THEN RAISE EXCEPTION 'no role for %', org_slug; END IF;
                INSERT INTO role_calls VALUES (org_slug);
                RETURN 'stand_in_role_' || org_slug;
            END $$"""
        )

    created = ok(hookyard(fresh_database_url, "orgs", "create", org_slug))
    assert created.strip().endswith(f"and role stand_in_role_{org_slug}")
    assert query(fresh_database_url, "SELECT slug FROM role_calls") == [(org_slug,)]

    line = one_line_error(hookyard(fresh_database_url, "orgs", "create", "refused"))
    assert "no role for refused" in line
    assert query(fresh_database_url, "SELECT count(*) FROM organizations WHERE slug = 'refused'") == [(0,)]


def test_a_project_is_created_in_the_default_organization_and_its_id_printed(fresh_database_url: str) -> None:
    created = ok(hookyard(fresh_database_url, "projects", "create", "shop", "--name", "The shop"))
    ((project_id, org, name, status),) = query(
        fresh_database_url,
        "SELECT p.id, o.slug, p.name, p.status::text FROM projects p "
        "JOIN organizations o ON o.id = p.organization_id WHERE p.slug = 'shop'",
    )
    assert created.strip() == f"created project default/shop with id {project_id}"
    assert (org, name, status) == ("default", "The shop", "active")


def test_projects_are_addressed_as_a_slug_of_the_default_organization_or_as_org_slash_slug(
    fresh_database_url: str, org_slug: str
) -> None:
    ok(hookyard(fresh_database_url, "orgs", "create", org_slug))
    default_shop = as_json(hookyard(fresh_database_url, "projects", "create", "shop", "--json"))
    flag_shop = as_json(
        hookyard(fresh_database_url, "projects", "create", "shop", "--org", org_slug, "--json")
    )
    path_api = as_json(hookyard(fresh_database_url, "projects", "create", f"{org_slug}/api", "--json"))
    assert len({default_shop["id"], flag_shop["id"], path_api["id"]}) == 3

    assert (
        as_json(hookyard(fresh_database_url, "projects", "show", "shop", "--json"))["id"]
        == default_shop["id"]
    )
    assert (
        as_json(hookyard(fresh_database_url, "projects", "show", "default/shop", "--json"))["id"]
        == (default_shop["id"])
    )
    shown = as_json(hookyard(fresh_database_url, "projects", "show", f"{org_slug}/shop", "--json"))
    assert (shown["id"], shown["org"], shown["slug"]) == (flag_shop["id"], org_slug, "shop")

    listed = as_json(hookyard(fresh_database_url, "projects", "list", "--org", org_slug, "--json"))
    assert [(project["org"], project["slug"]) for project in listed] == [
        (org_slug, "api"),
        (org_slug, "shop"),
    ]
    everything = as_json(hookyard(fresh_database_url, "projects", "list", "--json"))
    assert {f"{project['org']}/{project['slug']}" for project in everything} == {
        "default/shop",
        f"{org_slug}/shop",
        f"{org_slug}/api",
    }
    assert f"{org_slug}/api" in ok(hookyard(fresh_database_url, "projects", "list"))

    key = as_json(hookyard(fresh_database_url, "keys", "create", f"{org_slug}/api", "--json"))
    assert key["project"] == f"{org_slug}/api"
    assert [
        k["id"] for k in as_json(hookyard(fresh_database_url, "keys", "list", f"{org_slug}/api", "--json"))
    ] == [key["id"]]
    assert as_json(hookyard(fresh_database_url, "keys", "list", "shop", "--json")) == []


def test_a_discovered_project_is_adopted_as_active_by_projects_create(fresh_database_url: str) -> None:
    query(
        fresh_database_url,
        "INSERT INTO projects (organization_id, slug, name, status) "
        "SELECT id, 'seen', 'seen', 'discovered' FROM organizations WHERE slug = 'default'",
    )
    adopted = as_json(hookyard(fresh_database_url, "projects", "create", "seen", "--name", "Seen", "--json"))
    assert adopted["created"] is False
    assert query(fresh_database_url, "SELECT name, status::text FROM projects WHERE slug = 'seen'") == [
        ("Seen", "active")
    ]


def test_projects_show_gives_the_seed_fields_the_keys_without_secrets_and_the_links(
    fresh_database_url: str,
) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    query(
        fresh_database_url,
        "UPDATE projects SET git_url = 'https://github.com/acme/shop', "
        "tech_stack = '{\"python\": \"3.12\"}', greediness = 0.25 WHERE slug = 'shop'",
    )
    key = as_json(hookyard(fresh_database_url, "keys", "create", "shop", "--label", "ci", "--json"))
    ok(hookyard(fresh_database_url, "projects", "link", "shop", "github:acme/shop"))

    shown = as_json(hookyard(fresh_database_url, "projects", "show", "shop", "--json"))
    for field in ("git_url", "last_commit_hash", "tech_stack", "dependencies", "language_stats", "metadata"):
        assert field in shown
    assert shown["git_url"] == "https://github.com/acme/shop"
    assert shown["tech_stack"] == {"python": "3.12"}
    assert shown["greediness"] == 0.25
    assert shown["status"] == "active"
    assert [(k["id"], k["prefix"], k["label"]) for k in shown["keys"]] == [(key["id"], key["key"][:6], "ci")]
    assert [link["target"] for link in shown["links"]] == ["github:acme/shop"]

    text = ok(hookyard(fresh_database_url, "projects", "show", "shop"))
    assert "default/shop" in text
    assert "github:acme/shop" in text
    assert key["key"] not in text


def test_archiving_a_project_sets_its_status_and_time_and_refuses_new_keys(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "old"))
    assert "archived project default/old" in ok(hookyard(fresh_database_url, "projects", "archive", "old"))
    ((status, archived_at),) = query(fresh_database_url, "SELECT status::text, archived_at FROM projects")
    assert status == "archived"
    assert archived_at is not None

    assert "archived" in one_line_error(hookyard(fresh_database_url, "projects", "archive", "old"))
    assert "archived" in one_line_error(hookyard(fresh_database_url, "keys", "create", "old"))


# --- Keys ---


def test_a_new_key_is_printed_once_and_only_its_hash_is_stored(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    created = as_json(
        hookyard(
            fresh_database_url, "keys", "create", "shop", "--scope", "errors", "--scope", "usage", "--json"
        )
    )
    key = created["key"]
    assert key.isalnum()
    assert created["scopes"] == ["errors", "usage"]

    ((key_hash, prefix, scopes),) = query(
        fresh_database_url, "SELECT key_hash, key_prefix, scopes FROM project_keys WHERE id = %(id)s", created
    )
    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(prefix)
    assert scopes == ["errors", "usage"]
    assert not _tables_holding(fresh_database_url, key), "the key itself reached the database"

    # After its creation nothing shows the key or its hash again.
    for args in (
        ("keys", "list", "shop"),
        ("keys", "list", "shop", "--json"),
        ("projects", "show", "shop", "--json"),
    ):
        output = ok(hookyard(fresh_database_url, *args))
        assert key not in output
        assert key_hash not in output


def test_a_key_gets_every_scope_unless_told_otherwise(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    created = as_json(hookyard(fresh_database_url, "keys", "create", "shop", "--json"))
    assert created["scopes"] == ["deployments", "heartbeats", "usage", "errors", "budgets"]


def test_the_dsn_and_ping_url_are_built_from_hookyard_public_url_with_its_path(
    fresh_database_url: str,
) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    created = as_json(
        hookyard(
            fresh_database_url,
            "keys",
            "create",
            "shop",
            "--json",
            HOOKYARD_PUBLIC_URL="https://hooks.example.com/hy/",
        )
    )
    key, project_id = created["key"], created["project_id"]
    assert created["dsn"] == f"https://{key}@hooks.example.com/hy/{project_id}"
    assert created["ping_url"] == f"https://hooks.example.com/hy/ping/{key}/"


def test_without_a_public_url_the_dsn_names_where_hookyard_serve_listens(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    default = as_json(hookyard(fresh_database_url, "keys", "create", "shop", "--json"))
    assert default["dsn"] == f"http://{default['key']}@127.0.0.1:8000/{default['project_id']}"
    assert default["ping_url"] == f"http://127.0.0.1:8000/ping/{default['key']}/"

    moved = as_json(
        hookyard(
            fresh_database_url,
            "keys",
            "create",
            "shop",
            "--json",
            HOOKYARD_HOST="10.1.2.3",
            HOOKYARD_PORT="9000",
        )
    )
    assert moved["dsn"] == f"http://{moved['key']}@10.1.2.3:9000/{moved['project_id']}"


def test_keys_create_prints_the_key_its_dsn_and_its_ping_url(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    result = hookyard(
        fresh_database_url, "keys", "create", "shop", HOOKYARD_PUBLIC_URL="http://hy.internal:8080"
    )
    lines = ok(result).splitlines()
    key = lines[1].split()[-1]
    (project_id,) = query(fresh_database_url, "SELECT id FROM projects")[0]
    assert lines[0].startswith("created key ")
    assert lines[2].split()[-1] == f"http://{key}@hy.internal:8080/{project_id}"
    assert lines[3].split()[-1] == f"http://hy.internal:8080/ping/{key}/"
    assert "cannot show it again" in result.stderr


def test_keys_list_gives_prefix_label_scopes_and_times_but_never_the_hash(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    created = as_json(
        hookyard(
            fresh_database_url, "keys", "create", "shop", "--label", "billing", "--scope", "usage", "--json"
        )
    )
    (listed,) = as_json(hookyard(fresh_database_url, "keys", "list", "shop", "--json"))
    assert set(listed) == {"id", "prefix", "label", "scopes", "created_at", "revoked_at", "last_used_at"}
    assert (listed["id"], listed["prefix"], listed["label"], listed["scopes"]) == (
        created["id"],
        created["key"][:6],
        "billing",
        ["usage"],
    )
    assert listed["revoked_at"] is None
    text = ok(hookyard(fresh_database_url, "keys", "list", "shop"))
    assert "billing" in text
    assert created["key"][:6] in text


def test_a_revoked_key_is_listed_as_revoked_and_revoking_it_again_fails(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    created = as_json(hookyard(fresh_database_url, "keys", "create", "shop", "--json"))
    revoked = ok(hookyard(fresh_database_url, "keys", "revoke", str(created["id"])))
    assert revoked.startswith(f"revoked key {created['id']} ")
    (listed,) = as_json(hookyard(fresh_database_url, "keys", "list", "shop", "--json"))
    assert listed["revoked_at"] is not None

    line = one_line_error(hookyard(fresh_database_url, "keys", "revoke", str(created["id"])))
    assert f"key {created['id']} was revoked already" in line


# --- Links ---


def test_a_target_is_linked_once_moved_only_when_asked_and_unlinked(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    ok(hookyard(fresh_database_url, "projects", "create", "blog"))

    linked = ok(hookyard(fresh_database_url, "projects", "link", "shop", "github:Acme/Shop"))
    assert linked.strip() == "linked github:acme/shop to default/shop"
    again = hookyard(fresh_database_url, "projects", "link", "shop", "github:acme/shop")
    assert "already" in ok(again)

    taken = one_line_error(hookyard(fresh_database_url, "projects", "link", "blog", "github:acme/shop"))
    assert "default/shop" in taken
    assert "--move" in taken
    assert _link_owner(fresh_database_url, "github:acme/shop") == "shop"

    moved = ok(hookyard(fresh_database_url, "projects", "link", "blog", "github:acme/shop", "--move"))
    assert moved.strip() == "moved github:acme/shop from default/shop to default/blog"
    assert _link_owner(fresh_database_url, "github:acme/shop") == "blog"

    ok(hookyard(fresh_database_url, "projects", "link", "blog", "slack:T0123ABCD"))
    ok(
        hookyard(
            fresh_database_url, "projects", "link", "blog", "linear:2C3F6B0E-8D6A-4F3E-9B1C-0A2B3C4D5E6F"
        )
    )
    shown = as_json(hookyard(fresh_database_url, "projects", "show", "blog", "--json"))
    assert [link["target"] for link in shown["links"]] == [
        "github:acme/shop",
        "linear:2c3f6b0e-8d6a-4f3e-9b1c-0a2b3c4d5e6f",
        "slack:T0123ABCD",
    ]

    unlinked = ok(hookyard(fresh_database_url, "projects", "unlink", "github:acme/shop"))
    assert unlinked.strip() == "unlinked github:acme/shop from default/blog"
    assert _link_owner(fresh_database_url, "github:acme/shop") is None
    assert "not linked" in one_line_error(
        hookyard(fresh_database_url, "projects", "unlink", "github:acme/shop")
    )


# --- Refusals: one line, non-zero, never a traceback ---


@pytest.mark.parametrize(
    ("args", "exit_code", "expected"),
    [
        (
            ("keys", "list", "nope"),
            1,
            "no project default/nope; create it with `hookyard projects create nope`",
        ),
        (
            ("projects", "show", "ghost/shop"),
            1,
            "no organization ghost; create it with `hookyard orgs create ghost`",
        ),
        (("projects", "show", "Shop"), 1, "'Shop'"),
        (("projects", "show", "a/b/c"), 1, "'a/b/c'"),
        (("projects", "create", "bad slug"), 1, "'bad slug'"),
        (("orgs", "create", "Acme"), 1, "'Acme'"),
        (("projects", "create", "new", "--org", "ghost"), 1, "no organization ghost"),
        (("projects", "create", "shop"), 1, "project default/shop exists already"),
        (("orgs", "create", "default"), 1, "organization default exists already"),
        (("keys", "create", "shop", "--scope", "admin"), 2, "'admin'"),
        (("keys", "revoke", "999999"), 1, "no key with id 999999"),
        (("keys", "revoke", "one"), 2, "'one'"),
        (("projects", "link", "shop", "github:acme"), 1, "github:OWNER/REPO"),
        (("projects", "link", "shop", "gitlab:acme/shop"), 1, "'gitlab:acme/shop'"),
        (("projects", "link", "shop", "slack:T 1"), 1, "slack:TEAM_ID"),
        (("projects", "link", "shop", "linear:ENG"), 1, "linear:TEAM_ID"),
        (("projects", "unlink", "github:acme/none"), 1, "github:acme/none is not linked"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_refused_command_is_one_line_on_stderr_with_a_non_zero_exit(
    fresh_database_url: str, args: tuple[str, ...], exit_code: int, expected: str
) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    line = one_line_error(hookyard(fresh_database_url, *args), exit_code)
    assert expected in line


def test_a_bad_public_url_is_refused_before_any_key_is_made(fresh_database_url: str) -> None:
    ok(hookyard(fresh_database_url, "projects", "create", "shop"))
    line = one_line_error(
        hookyard(fresh_database_url, "keys", "create", "shop", HOOKYARD_PUBLIC_URL="ftp://x")
    )
    assert line.startswith("hookyard: HOOKYARD_PUBLIC_URL")
    assert query(fresh_database_url, "SELECT count(*) FROM project_keys") == [(0,)]


def test_an_unreachable_postgresql_is_one_line(fresh_database_url: str) -> None:
    # Port 1 refuses at once: nothing listens there.
    line = one_line_error(hookyard("postgresql://postgres@127.0.0.1:1/hookyard", "projects", "list"))
    assert "PostgreSQL is unreachable" in line


def _link_owner(database_url: str, target: str) -> str | None:
    rows = query(
        database_url,
        "SELECT p.slug FROM project_links l JOIN projects p ON p.id = l.project_id "
        "WHERE l.target = %(target)s",
        {"target": target},
    )
    return rows[0][0] if rows else None


def _tables_holding(database_url: str, needle: str) -> list[str]:
    """Every table of the database whose rows, as text, contain ``needle``."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        return [
            f"{schema}.{name}"
            for schema, name in tables
            if conn.execute(
                sql.SQL("SELECT 1 FROM {} t WHERE strpos(t::text, %s) > 0 LIMIT 1").format(
                    sql.Identifier(schema, name)
                ),
                (needle,),
            ).fetchone()
        ]
