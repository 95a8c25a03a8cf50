"""Least privilege (migration 0008): the fleet's roles, organization roles and row-level security.

Roles belong to the server, not to a database, and the suite may run several times at once on one
server: every login and organization role made here carries the run's id, and is dropped after its
test (``DROP OWNED BY`` first, in each database it was granted rights in).
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from ops import samples
from schema.migrate import month_starts
from tests.conftest import (
    GITHUB_SECRETS,
    INGEST_TOKENS,
    LINEAR_SECRETS,
    RUN_ID,
    SLACK_SECRETS,
    as_url,
    free_port,
)
from tests.integration.helpers import github_event
from tests.support.processes import HOOKYARD, fleet_env, start_web, start_worker
from tests.support.waiting import wait_until
from workers.store import EventStore

PASSWORD = secrets.token_hex(12)  # pg_hba may trust 127.0.0.1; a password works either way

Conn = psycopg.Connection[tuple[Any, ...]]


def rows(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The first column of every row, sorted."""
    return sorted(row[0] for row in conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def this_month() -> str:
    return f"events_{datetime.now(UTC):%Y_%m}"


class ServerRoles:
    """Login and organization roles a test makes, dropped after it in every database it touched."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.roles: list[str] = []
        self.databases: list[str] = []

    def _touch(self, url: str) -> None:
        if url not in self.databases:
            self.databases.append(url)

    def login(self, name: str, *member_of: str, bypassrls: bool = False) -> str:
        """A LOGIN role (with a password) granted ``member_of``; its name is unique to this run."""
        role = f"lp_{RUN_ID}_{name}_{secrets.token_hex(2)}"
        statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {}").format(
            sql.Identifier(role), sql.Literal(PASSWORD), sql.SQL("BYPASSRLS" if bypassrls else "")
        )
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
            self.roles.insert(0, role)  # dropped before the roles it is granted
            for group in member_of:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)))
        return role

    def url(self, database_url: str, role: str) -> str:
        """``database_url``'s database, logged in as ``role`` over TCP."""
        self._touch(database_url)
        return as_url(make_conninfo(database_url, user=role, password=PASSWORD))

    def organization(self, database_url: str, name: str) -> tuple[int, str, str]:
        """(id, slug, role) of a new organization, made as `hookyard orgs create` does: one transaction."""
        slug = f"lp-{RUN_ID}-{name}-{secrets.token_hex(2)}".replace("_", "-")
        self._touch(database_url)
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "INSERT INTO organizations (slug, name) VALUES (%s, %s) RETURNING id", (slug, name)
            ).fetchone()
            role = self.org_role(conn, slug)
        assert row
        return int(row[0]), slug, role

    def org_role(self, conn: Conn, slug: str) -> str:
        row = conn.execute("SELECT hookyard_create_org_role(%s)", (slug,)).fetchone()
        assert row
        if row[0] not in self.roles:
            self.roles.append(str(row[0]))
        return str(row[0])

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            existing = rows(admin, "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (self.roles,))
        ours = [role for role in self.roles if role in existing]
        if not ours:
            return
        names = sql.SQL(", ").join(sql.Identifier(role) for role in ours)
        for url in self.databases:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(names))
            except psycopg.OperationalError:
                continue  # that database is gone, and the rights with it
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            for role in ours:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def server_roles(postgres_admin_url: str) -> Iterator[ServerRoles]:
    made = ServerRoles(postgres_admin_url)
    try:
        yield made
    finally:
        made.drop()


class Tenancy:
    """Two organizations, A and B, each with a project, a link, a key and events; plus unowned events."""

    def __init__(self, database_url: str, roles: ServerRoles) -> None:
        self.a_id, self.a_slug, self.a_role = roles.organization(database_url, "a")
        self.b_id, self.b_slug, self.b_role = roles.organization(database_url, "b")
        tag = uuid.uuid4().hex[:8]
        with psycopg.connect(database_url, autocommit=True) as conn:
            self.a_project = self._project(conn, self.a_id, f"pa-{tag}")
            self.b_project = self._project(conn, self.b_id, f"pb-{tag}")
            self.a_link, self.b_link = f"github:a-{tag}/repo", f"github:b-{tag}/repo"
            for target, project in ((self.a_link, self.a_project), (self.b_link, self.b_project)):
                conn.execute(
                    "INSERT INTO project_links (target, project_id) VALUES (%s, %s)", (target, project)
                )
            self.a_key = self._key(conn, self.a_project)
            self.b_key = self._key(conn, self.b_project)
            self.a_github = self._event(conn, "github", f"a-gh-{tag}", self.a_project)
            self.a_deployment = self._event(conn, "deployment", f"a-dep-{tag}", self.a_project)
            self.b_github = self._event(conn, "github", f"b-gh-{tag}", self.b_project)
            self.b_deployment = self._event(conn, "deployment", f"b-dep-{tag}", self.b_project)
            self.unowned = self._event(conn, "github", f"none-gh-{tag}", None)

    @staticmethod
    def _project(conn: Conn, organization_id: int, slug: str) -> int:
        row = conn.execute(
            "INSERT INTO projects (organization_id, slug, name) VALUES (%s, %s, %s) RETURNING id",
            (organization_id, slug, slug),
        ).fetchone()
        assert row
        return int(row[0])

    @staticmethod
    def _key(conn: Conn, project_id: int) -> int:
        row = conn.execute(
            "INSERT INTO project_keys (project_id, key_hash, key_prefix) VALUES (%s, %s, 'lp') RETURNING id",
            (project_id, secrets.token_hex(32)),
        ).fetchone()
        assert row
        return int(row[0])

    @staticmethod
    def _event(
        conn: Conn, source: str, delivery_id: str, project_id: int | None, received_at: datetime | None = None
    ) -> str:
        """An event with its ledger key, as the owner writes them."""
        at = received_at or datetime.now(UTC)
        conn.execute(
            "INSERT INTO event_keys (source, delivery_id, received_at) VALUES (%s, %s, %s)",
            (source, delivery_id, at),
        )
        conn.execute(
            "INSERT INTO events (source, delivery_id, received_at, event_type, payload, project_id)"
            " VALUES (%s, %s, %s, 'push', '{}', %s)",
            (source, delivery_id, at, project_id),
        )
        return delivery_id

    @property
    def deliveries(self) -> list[str]:
        return sorted([self.a_github, self.a_deployment, self.b_github, self.b_deployment, self.unowned])


def refused(conn: Conn, statement: str) -> None:
    """``statement`` fails for want of a privilege (SQLSTATE 42501)."""
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


# ------------------------------------------------------------------------------------------------
# Organization roles


def test_an_organization_role_reads_its_own_rows_in_every_project_scoped_table_and_view(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    grafana = server_roles.login("grafana_a", world.a_role)
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        assert rows(conn, "SELECT slug FROM organizations") == [world.a_slug]
        assert rows(conn, "SELECT id FROM projects") == [world.a_project]
        assert rows(conn, "SELECT target FROM project_links") == [world.a_link]
        assert rows(conn, "SELECT id FROM project_keys") == [world.a_key]
        assert rows(conn, "SELECT delivery_id FROM events") == sorted([world.a_github, world.a_deployment])
        assert rows(conn, "SELECT delivery_id FROM github_events") == [world.a_github]
        assert rows(conn, "SELECT delivery_id FROM deployment_events") == [world.a_deployment]
        assert rows(conn, "SELECT delivery_id FROM slack_events") == []
        assert rows(conn, "SELECT delivery_id FROM linear_events") == []
        # Asking for the others by name changes nothing.
        assert rows(conn, "SELECT id FROM projects WHERE id = %s", (world.b_project,)) == []
        assert rows(conn, "SELECT 1 FROM events WHERE project_id IS NULL") == []
        assert rows(conn, "SELECT 1 FROM events WHERE delivery_id = %s", (world.b_github,)) == []


def test_an_organization_role_never_reads_key_hashes_partitions_or_the_fleet_tables(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    grafana = server_roles.login("grafana_a", world.a_role)
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        visible = "id, project_id, key_prefix, label, scopes, created_at, revoked_at, last_used_at"
        assert len(conn.execute(f"SELECT {visible} FROM project_keys").fetchall()) == 1  # noqa: S608 - constant
        refused(conn, "SELECT key_hash FROM project_keys")
        refused(conn, "SELECT * FROM project_keys")
        # A partition read directly has no row security: organization roles have no rights on one.
        refused(conn, "SELECT count(*) FROM events_default")
        refused(conn, f"SELECT count(*) FROM {this_month()}")  # noqa: S608 - a partition's name
        for table in ("event_keys", "dead_letters", "consumer_breakers", "schema_migrations"):
            refused(conn, f"SELECT count(*) FROM {table}")  # noqa: S608 - constant names


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO organizations (slug, name) VALUES ('lp-intruder', 'x')",
        "UPDATE organizations SET name = 'x'",
        "INSERT INTO projects (organization_id, slug, name) VALUES (1, 'lp-intruder', 'x')",
        "UPDATE projects SET name = 'x'",
        "DELETE FROM projects",
        "UPDATE project_keys SET last_used_at = now()",
        "DELETE FROM project_links",
        "INSERT INTO events (source, delivery_id, received_at, event_type, payload)"
        " VALUES ('github', 'lp-intruder', now(), 'push', '{}')",
        "UPDATE events SET action = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
        "INSERT INTO event_keys VALUES ('github', 'lp-intruder', now())",
        "DELETE FROM dead_letters",
        "CREATE TABLE lp_intruder (id int)",
        "SELECT hookyard_create_org_role('lp-intruder')",
        "SELECT hookyard_ensure_month_partition('events', 'received_at', '2040-01-01')",
        "SELECT hookyard_drop_month_partition('events_default')",
    ],
)
def test_an_organization_role_writes_nothing(
    fresh_database_url: str, server_roles: ServerRoles, statement: str
) -> None:
    _, _, role = server_roles.organization(fresh_database_url, "w")
    grafana = server_roles.login("grafana_w", role)
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        refused(conn, statement)


#: Tables with a project_id but no row security, and views that would read as their owner, that
#: hookyard_scope_to_projects() has not registered.
UNSCOPED = """
WITH relations AS (
    SELECT c.relname, c.relkind, c.relrowsecurity,
           coalesce('security_invoker=true' = ANY (c.reloptions), false) AS invoker,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'project_id'
                   AND NOT a.attisdropped) AS has_project,
           c.oid IN (SELECT relation FROM project_scoped_relations) AS registered
    FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition
      AND c.relkind IN ('r', 'p', 'v')
)
SELECT relname FROM relations
WHERE (relkind = 'v' AND NOT (invoker AND registered))
   OR (relkind IN ('r', 'p') AND has_project AND NOT (relrowsecurity AND registered))
"""

#: Relations outside project_scoped_relations on which role %s holds any right.
GRANTED_UNSCOPED = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND c.oid NOT IN (SELECT relation FROM project_scoped_relations)
  AND (has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
       OR has_any_column_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE'))
"""


def test_every_table_with_a_project_id_and_every_view_is_scoped_and_nothing_else_is_granted(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    """A later migration that forgets its two lines fails here rather than in a tenant's Grafana."""
    _, _, role = server_roles.organization(fresh_database_url, "scan")
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        unscoped = rows(conn, UNSCOPED)
        assert unscoped == []
        granted = rows(conn, GRANTED_UNSCOPED, (role, role))
        assert granted == []


def test_organization_membership_is_one_hashed_subplan_per_query_not_one_per_event(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    grafana = server_roles.login("grafana_a", world.a_role)
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        plan = "\n".join(
            str(row[0])
            for row in conn.execute("EXPLAIN SELECT count(*) FROM events WHERE received_at > now()")
        )
    assert "hashed SubPlan" in plan, plan


def test_a_slug_too_long_for_a_role_name_gets_a_hashed_suffix_within_63_bytes(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    slug = f"lp-{RUN_ID}-".replace("_", "-").ljust(64, "x")
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO organizations (slug, name) VALUES (%s, 'long')", (slug,))
        role = server_roles.org_role(conn, slug)
        again = conn.execute("SELECT hookyard_create_org_role(%s)", (slug,)).fetchone()
    server_roles._touch(fresh_database_url)
    assert len(role) == 63
    assert role.startswith("hookyard_org_" + slug[:41])
    assert again == (role,)  # the same name every time: the role is reused
    grafana = server_roles.login("grafana_long", role)
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        assert rows(conn, "SELECT slug FROM organizations") == [slug]


def test_an_invalid_slug_makes_no_role(fresh_database_url: str) -> None:
    with (
        psycopg.connect(fresh_database_url) as conn,
        pytest.raises(errors.RaiseException, match="not an organization slug"),
    ):
        conn.execute("SELECT hookyard_create_org_role('Bad Slug')")


def test_two_databases_creating_the_same_organization_role_at_once_share_it(
    fresh_database_url: str, database_url: str, postgres_admin_url: str, server_roles: ServerRoles
) -> None:
    slug = f"lp-{RUN_ID}-race-{secrets.token_hex(2)}".replace("_", "-")
    server_roles._touch(fresh_database_url)
    server_roles._touch(database_url)
    second_db = str(conninfo_to_dict(database_url)["dbname"])

    def create_in_second() -> str:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT hookyard_create_org_role(%s)", (slug,)).fetchone()
            assert row
            return str(row[0])

    with psycopg.connect(fresh_database_url) as first, ThreadPoolExecutor(1) as pool:
        role = server_roles.org_role(first, slug)  # created, not committed: the second must wait
        second = pool.submit(create_in_second)
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            wait_until(
                lambda: admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
                    " AND query LIKE '%%hookyard_create_org_role%%'",
                    (second_db,),
                ).fetchone(),
                timeout=15,
                what="the second database's CREATE ROLE to wait for the first",
            )
        first.commit()
        assert second.result(timeout=30) == role
    for url in (fresh_database_url, database_url):
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT has_table_privilege(%s, 'events', 'SELECT')", (role,)).fetchone() == (
                True,
            )


def test_the_two_line_recipe_scopes_a_later_table_for_existing_organizations(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        # A later migration's table, and its two lines.
        conn.execute("CREATE TABLE lp_checks (id bigint PRIMARY KEY, project_id bigint NOT NULL, name text)")
        conn.execute("SELECT hookyard_scope_to_projects('lp_checks')")
        conn.execute("SELECT hookyard_grant_fleet('lp_checks', 'SELECT', 'INSERT', 'UPDATE')")
    grafana = server_roles.login("grafana_a", world.a_role)
    writer = server_roles.login("writer", "hookyard_writer")
    reader = server_roles.login("reader", "hookyard_reader")
    with psycopg.connect(server_roles.url(fresh_database_url, writer), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO lp_checks VALUES (1, %s, 'a'), (2, %s, 'b')", (world.a_project, world.b_project)
        )
        conn.execute("UPDATE lp_checks SET name = name || '!'")
        refused(conn, "DELETE FROM lp_checks")
    with psycopg.connect(server_roles.url(fresh_database_url, grafana), autocommit=True) as conn:
        assert rows(conn, "SELECT name FROM lp_checks") == ["a!"]
        refused(conn, "UPDATE lp_checks SET name = 'x'")
    with psycopg.connect(server_roles.url(fresh_database_url, reader), autocommit=True) as conn:
        assert rows(conn, "SELECT name FROM lp_checks") == ["a!", "b!"]
        refused(conn, "INSERT INTO lp_checks VALUES (3, 1, 'c')")


# ------------------------------------------------------------------------------------------------
# hookyard_reader


def test_the_reader_sees_every_row_of_every_table_view_and_partition_and_writes_nothing(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:  # a partition made after migrating
        conn.execute("SELECT hookyard_ensure_month_partition('events', 'received_at', '2039-06-01')")
    reader = server_roles.login("reader", "hookyard_reader")
    with psycopg.connect(server_roles.url(fresh_database_url, reader), autocommit=True) as conn:
        assert {world.a_slug, world.b_slug, "default"} <= set(rows(conn, "SELECT slug FROM organizations"))
        assert rows(
            conn, "SELECT delivery_id FROM events WHERE delivery_id = ANY(%s)", (world.deliveries,)
        ) == (world.deliveries)
        assert len(rows(conn, "SELECT key_hash FROM project_keys")) == 2
        assert rows(conn, "SELECT target FROM project_links") == sorted([world.a_link, world.b_link])
        assert rows(
            conn, "SELECT delivery_id FROM github_events WHERE delivery_id = ANY(%s)", (world.deliveries,)
        ) == (sorted([world.a_github, world.b_github, world.unowned]))
        assert (
            len(
                rows(
                    conn,
                    "SELECT delivery_id FROM event_keys WHERE delivery_id = ANY(%s)",
                    (world.deliveries,),
                )
            )
            == 5
        )
        for table in (
            "dead_letters",
            "consumer_breakers",
            "schema_migrations",
            "events_default",
            "events_2039_06",
        ):
            conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant names
        refused(conn, "INSERT INTO events (source, delivery_id, received_at, event_type, payload)"
                      " VALUES ('github', 'lp-reader', now(), 'push', '{}')")  # fmt: skip
        refused(conn, "UPDATE dead_letters SET detail = 'x'")
        refused(conn, "DELETE FROM event_keys")
        refused(conn, "UPDATE project_keys SET last_used_at = now()")
        refused(conn, "CREATE TABLE lp_reader (id int)")
        refused(conn, "SELECT hookyard_drop_month_partition('events_2039_06')")


# ------------------------------------------------------------------------------------------------
# hookyard_writer


def test_the_writer_may_do_what_the_fleet_does_at_run_time(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    world = Tenancy(fresh_database_url, server_roles)
    writer = server_roles.login("writer", "hookyard_writer")
    with psycopg.connect(server_roles.url(fresh_database_url, writer), autocommit=True) as conn:
        # hookyard serve: the key registry (hashes included), its LISTEN, and last_used_at.
        assert (
            len(
                rows(
                    conn,
                    "SELECT key_hash FROM project_keys WHERE id = ANY(%s)",
                    ([world.a_key, world.b_key],),
                )
            )
            == 2
        )
        conn.execute("LISTEN hookyard_tenancy")
        conn.execute("UPDATE project_keys SET last_used_at = now() WHERE id = %s", (world.a_key,))
        refused(conn, "UPDATE project_keys SET revoked_at = now()")
        # hookyard worker: a project first seen in a report, dead letters, the breaker.
        conn.execute(
            "INSERT INTO projects (organization_id, slug, name, status) VALUES (%s, %s, %s, 'discovered')",
            (world.a_id, "lp-discovered", "lp-discovered"),
        )
        conn.execute(
            "INSERT INTO dead_letters (dedup_key, queue, actor, reason, detail, attempts, body)"
            " VALUES ('lp-letter', 'events', 'store_events', 'unstorable_event', 'x', 1, '')"
        )
        conn.execute(
            "INSERT INTO consumer_breakers (actor, state) VALUES ('lp_actor', 'open')"
            " ON CONFLICT (actor) DO UPDATE SET state = 'closed'"
        )
        # hookyard dlq: replay marks, purge deletes.
        conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE dedup_key = 'lp-letter'")
        conn.execute("DELETE FROM dead_letters WHERE dedup_key = 'lp-letter'")
        conn.execute("SELECT version FROM schema_migrations")  # hookyard preflight
        conn.execute("SELECT count(*) FROM events_default")  # the scheduler's stray-row count
    # One event goes in with INSERT, which the policies allow.
    event = github_event()
    with ConnectionPool(server_roles.url(fresh_database_url, writer), min_size=1, max_size=1) as pool:
        assert EventStore(pool).store([event]).stored == [("github", event.delivery_id)]


def test_the_writer_runs_no_ddl_and_deletes_no_event(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    writer = server_roles.login("writer", "hookyard_writer")
    with psycopg.connect(server_roles.url(fresh_database_url, writer), autocommit=True) as conn:
        refused(conn, "CREATE TABLE lp_writer (id int)")
        refused(conn, "CREATE VIEW lp_writer AS SELECT 1")
        refused(conn, "DROP TABLE events")
        refused(conn, "DROP TABLE events_default")
        refused(conn, f"DROP TABLE {this_month()}")
        refused(conn, "ALTER TABLE events ADD COLUMN lp int")
        refused(conn, "ALTER TABLE events DISABLE ROW LEVEL SECURITY")
        refused(conn, "DROP POLICY hookyard_org_rows ON events")
        refused(conn, "DELETE FROM events")
        refused(conn, "UPDATE events SET action = 'x'")
        refused(conn, "TRUNCATE events")
        refused(conn, "DELETE FROM event_keys")
        refused(conn, "DELETE FROM projects")
        refused(conn, "INSERT INTO organizations (slug, name) VALUES ('lp-writer', 'x')")
        refused(conn, "CREATE ROLE lp_writer_made")
        refused(conn, "SELECT hookyard_create_org_role('lp-writer')")
        refused(conn, "SELECT hookyard_scope_to_projects('events')")
        # Retention through the owner's function, and only for months that have ended.
        for partition in (this_month(), "events_default"):
            with pytest.raises(errors.RaiseException):
                conn.execute("SELECT hookyard_drop_month_partition(%s::regclass)", (partition,))
        with pytest.raises(errors.RaiseException, match="not a partition"):
            conn.execute("SELECT hookyard_drop_month_partition('events')")


def test_the_workers_batch_copy_needs_a_login_that_bypasses_row_security(
    fresh_database_url: str, server_roles: ServerRoles
) -> None:
    plain = server_roles.login("writer", "hookyard_writer")
    worker = server_roles.login("worker", "hookyard_writer", bypassrls=True)
    batch = [github_event(), github_event()]  # more than one event: the store COPYs them
    with (
        ConnectionPool(server_roles.url(fresh_database_url, plain), min_size=1, max_size=1) as pool,
        pytest.raises(psycopg.errors.FeatureNotSupported, match="row-level security"),
    ):
        EventStore(pool).store(batch)
    with ConnectionPool(server_roles.url(fresh_database_url, worker), min_size=1, max_size=1) as pool:
        assert len(EventStore(pool).store(batch).stored) == 2


# ------------------------------------------------------------------------------------------------
# The real processes, logged in as the writer


@pytest.mark.slow
def test_the_fleet_runs_end_to_end_as_a_login_holding_only_the_writer_role(
    empty_database_url: str, empty_queues: str, server_roles: ServerRoles, tmp_path: Path
) -> None:
    # The owner (here the superuser) migrates; the fleet never does.
    owner_env = fleet_env(DATABASE_URL=empty_database_url)
    migrated = subprocess.run(
        [HOOKYARD, "migrate"], env=owner_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    fleet = server_roles.login("fleet", "hookyard_writer", bypassrls=True)
    env = fleet_env(
        DATABASE_URL=server_roles.url(empty_database_url, fleet),
        AMQP_URL=empty_queues,
        GITHUB_WEBHOOK_SECRET=",".join(GITHUB_SECRETS),
        SLACK_SIGNING_SECRET=",".join(SLACK_SECRETS),
        LINEAR_WEBHOOK_SECRET=",".join(LINEAR_SECRETS),
        HOOKYARD_INGEST_TOKEN=",".join(INGEST_TOKENS),
        HOOKYARD_WORKER_METRICS_PORT="0",
        HOOKYARD_LOG_FORMAT="json",
    )

    # hookyard serve + hookyard worker: a signed GitHub delivery, and a batch of deployments (COPY).
    event, body, delivery = samples.github_issue_opened(f"lp-{uuid.uuid4()}")
    deployments = [samples.deployment(f"lp-dep-{uuid.uuid4()}") for _ in range(3)]
    expected = sorted([delivery, *(str(item["id"]) for item in deployments)])
    port = free_port()
    web = start_web(env, port, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            github = client.post(
                "/webhooks/github",
                headers=samples.github_headers(GITHUB_SECRETS[0], body, event, delivery),
                content=body,
            )
            assert github.status_code == 202, github.text
            deployed = client.post(
                "/v1/deployments",
                headers={"Authorization": f"Bearer {INGEST_TOKENS[0]}", "Content-Type": "application/json"},
                content=orjson.dumps(deployments),
            )
            assert deployed.status_code == 202, deployed.text
        with psycopg.connect(empty_database_url, autocommit=True) as owner:
            stored = wait_until(
                lambda: (
                    found
                    if len(
                        found := rows(
                            owner, "SELECT delivery_id FROM events WHERE delivery_id = ANY(%s)", (expected,)
                        )
                    )
                    == len(expected)
                    else None
                ),
                timeout=30,
                what="the writer's worker to store the events",
            )
        assert stored == expected
    finally:
        web.stop()
        worker.stop()
    assert "permission denied" not in web.log() + worker.log()

    # hookyard scheduler --once: a partition further ahead than migrate made, and retention.
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        owner.execute("SELECT hookyard_ensure_month_partition('events', 'received_at', '2020-01-01')")
        Tenancy._event(owner, "github", "lp-old", None, datetime(2020, 1, 15, tzinfo=UTC))
        assert owner.execute(
            "SELECT tableoid::regclass::text FROM events WHERE delivery_id = 'lp-old'"
        ).fetchone() == ("events_2020_01",)
    ahead = month_starts(date.today(), 0, 4)[-1]  # one month further than migrate made
    scheduler = subprocess.run(
        [HOOKYARD, "scheduler", "--once"],
        env={**env, "HOOKYARD_RETENTION_MONTHS": "12", "HOOKYARD_PARTITIONS_AHEAD": "4"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert scheduler.returncode == 0, scheduler.stdout + scheduler.stderr
    assert "scheduler pass done" in scheduler.stdout
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        tables = set(rows(owner, "SELECT relname FROM pg_class WHERE relname LIKE 'events_20%%'"))
        assert "events_2020_01" not in tables
        assert f"events_{ahead:%Y_%m}" in tables
        # Made with the owner's rights: the writer owns nothing, the reader may read it.
        assert owner.execute(
            "SELECT pg_get_userbyid(relowner) <> %s, has_table_privilege('hookyard_reader', oid, 'SELECT')"
            " FROM pg_class WHERE relname = %s",
            (fleet, f"events_{ahead:%Y_%m}"),
        ).fetchone() == (True, True)
        assert rows(
            owner, "SELECT delivery_id FROM event_keys WHERE delivery_id = ANY(%s)", ([delivery, "lp-old"],)
        ) == [delivery]

    # hookyard dlq list and purge.
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        row = owner.execute(
            "INSERT INTO dead_letters (dedup_key, queue, actor, reason, detail, attempts, body)"
            " VALUES ('lp-letter', 'events', 'store_events', 'unstorable_event', 'lp detail', 1, '')"
            " RETURNING id"
        ).fetchone()
    assert row
    listed = subprocess.run(
        [HOOKYARD, "dlq", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert "unstorable_event" in listed.stdout
    purged = subprocess.run(
        [HOOKYARD, "dlq", "purge", "--yes", "--id", str(row[0])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert purged.returncode == 0, purged.stderr
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        assert owner.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
