"""Tenancy operations: organizations, projects, their keys and their webhook links.

Each operation opens its own connection, runs in one transaction and returns plain dataclasses;
every refusal is a :class:`TenancyError` whose message is one line for an operator. The parsers
(``parse_project``, ``parse_target``) and URL builders (``sentry_dsn``, ``ping_url``) are pure.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from contracts.keys import ALL_SCOPES, SLUG, Scope, key_hash, key_prefix, new_key
from hookyard.errors import HookyardError, ServiceUnavailable
from schema import queries

#: The organization `hookyard migrate` creates; a bare project slug lives there.
DEFAULT_ORG = "default"

_GITHUB_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_SLACK_TEAM = re.compile(r"^[A-Z0-9]{1,64}$")


class TenancyError(HookyardError):
    """A tenancy operation was refused; the message says why and, where it can, what to run."""


class InvalidValue(TenancyError):
    """A slug, scope, project reference or link target that does not have the required form."""


class NotFound(TenancyError):
    """The organization, project, key or link named does not exist."""


class Conflict(TenancyError):
    """The change would contradict the stored state: a duplicate, a second revoke, a taken target."""


# --- Pure parsing and URLs ---


@dataclass(frozen=True)
class ProjectRef:
    """A project as operators name it: ``SLUG`` (in the default organization) or ``ORG/SLUG``."""

    org: str
    slug: str

    def __str__(self) -> str:
        return f"{self.org}/{self.slug}"

    def create_command(self) -> str:
        """The command that would create this project."""
        org = "" if self.org == DEFAULT_ORG else f" --org {self.org}"
        return f"hookyard projects create {self.slug}{org}"


def check_slug(value: str, what: str = "slug") -> str:
    """``value`` when it matches SPEC's slug pattern, else an :class:`InvalidValue`."""
    if not SLUG.match(value):
        raise InvalidValue(
            f"{what} {value!r} is not a slug: lowercase letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return value


def parse_project(value: str) -> ProjectRef:
    """``SLUG`` → the default organization's project; ``ORG/SLUG`` → that organization's."""
    org, sep, slug = value.partition("/")
    if not sep:
        org, slug = DEFAULT_ORG, value
    if not SLUG.match(org) or not SLUG.match(slug):
        raise InvalidValue(
            f"project {value!r} is neither SLUG nor ORG/SLUG "
            "(slugs are lowercase letters, digits, '_' and '-', starting with a letter or digit)"
        )
    return ProjectRef(org, slug)


def parse_target(value: str) -> str:
    """A link target in its stored form: ``github:owner/repo`` (lowercased: GitHub ignores case),
    ``slack:TEAMID`` (uppercased, as Slack writes ids) or ``linear:<team uuid>`` (lowercased).
    """
    kind, sep, rest = value.partition(":")
    if sep and kind == "github":
        owner, slash, repo = rest.partition("/")
        if slash and _GITHUB_OWNER.match(owner) and _GITHUB_REPO.match(repo) and repo not in {".", ".."}:
            return f"github:{owner.lower()}/{repo.lower()}"
        raise InvalidValue(f"link target {value!r} is not github:OWNER/REPO (e.g. github:acme/api)")
    if sep and kind == "slack":
        if _SLACK_TEAM.match(rest.upper()):
            return f"slack:{rest.upper()}"
        raise InvalidValue(
            f"link target {value!r} is not slack:TEAM_ID (letters and digits, e.g. slack:T0123ABCD)"
        )
    if sep and kind == "linear":
        try:
            return f"linear:{uuid.UUID(rest)}"
        except ValueError:
            pass
        raise InvalidValue(
            f"link target {value!r} is not linear:TEAM_ID (the team's UUID, the webhook's data.teamId)"
        )
    raise InvalidValue(f"link target {value!r} is not github:OWNER/REPO, slack:TEAM_ID or linear:TEAM_ID")


def parse_scopes(values: Iterable[str]) -> tuple[Scope, ...]:
    """Scopes in the order given, each once; none given means every scope."""
    chosen: list[Scope] = []
    for value in values:
        try:
            scope = Scope(value)
        except ValueError:
            names = ", ".join(ALL_SCOPES)
            raise InvalidValue(f"scope {value!r} is not one of {names}") from None
        if scope not in chosen:
            chosen.append(scope)
    return tuple(chosen) or ALL_SCOPES


def public_base_url(configured: str | None, host: str, port: int) -> str:
    """The base URL senders use: HOOKYARD_PUBLIC_URL, else where `hookyard serve` listens.

    A wildcard bind address is reached through loopback on this machine; an IPv6 address is
    bracketed.
    """
    if configured:
        return configured.rstrip("/")
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - a bind address, not one we bind
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{port}"
    if not urlsplit(url).hostname:
        raise InvalidValue(f"HOOKYARD_HOST {host!r} gives no usable URL; set HOOKYARD_PUBLIC_URL")
    return url


def sentry_dsn(public_url: str, key: str, project_id: int) -> str:
    """``scheme://<key>@host[:port][/prefix]/<project id>``, the form Sentry SDKs parse."""
    parts = urlsplit(public_url)
    path = f"{parts.path.rstrip('/')}/{project_id}"
    return urlunsplit((parts.scheme, f"{key}@{parts.netloc}", path, "", ""))


def ping_url(public_url: str, key: str) -> str:
    """``<public url>/ping/<key>/``: append a check slug (Healthchecks.io's ping-key URLs)."""
    return f"{public_url.rstrip('/')}/ping/{key}/"


# --- What the operations return ---


@dataclass(frozen=True)
class Organization:
    id: int
    slug: str
    name: str
    projects: int
    created_at: datetime


@dataclass(frozen=True)
class CreatedOrganization:
    id: int
    slug: str
    name: str
    #: The role migration 0008's function made or reused; None when the database has no such function.
    role: str | None


@dataclass(frozen=True)
class CreatedProject:
    id: int
    org: str
    slug: str
    name: str
    #: False when a `discovered` project (seen first in a report) was adopted as active.
    created: bool


@dataclass(frozen=True)
class ProjectSummary:
    id: int
    org: str
    slug: str
    name: str
    status: str
    active_keys: int
    links: int
    created_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True)
class Key:
    """A key as it may be shown after its creation: never the secret, never its hash."""

    id: int
    prefix: str
    label: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Link:
    target: str
    created_at: datetime


@dataclass(frozen=True)
class Project:
    id: int
    org: str
    slug: str
    name: str
    status: str
    description: str | None
    git_url: str | None
    last_commit_hash: str | None
    tech_stack: Any
    dependencies: Any
    language_stats: Any
    greediness: float
    metadata: Any
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    keys: list[Key] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class CreatedKey:
    """A new key with the secret: the only time it exists outside the sender's hands."""

    id: int
    project: str
    project_id: int
    key: str
    dsn: str
    ping_url: str
    scopes: list[str]
    label: str | None


@dataclass(frozen=True)
class RevokedKey:
    id: int
    prefix: str
    project: str
    revoked_at: datetime


@dataclass(frozen=True)
class LinkChange:
    target: str
    project: str
    #: ``linked``, ``unchanged`` (it was linked to this project already) or ``moved``.
    outcome: str
    previous: str | None = None


# --- Operations ---


@contextmanager
def _connect(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection whose PostgreSQL failures all leave as one-line Hookyard errors."""
    try:
        conn = psycopg.connect(database_url, row_factory=dict_row, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostgreSQL", _first_line(exc)) from exc
    try:
        with conn:
            yield conn
    except psycopg.errors.UndefinedTable as exc:
        raise HookyardError(
            f"{_first_line(exc)}: the database is not migrated; run `hookyard migrate`"
        ) from exc
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostgreSQL", _first_line(exc)) from exc
    except psycopg.Error as exc:
        raise HookyardError(f"PostgreSQL refused: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _find_org(conn: psycopg.Connection[dict[str, Any]], org: str) -> dict[str, Any]:
    row = conn.execute(queries()["org_find"], {"org": org}).fetchone()
    if row is None:
        raise NotFound(f"no organization {org}; create it with `hookyard orgs create {org}`")
    return row


def _find_project(conn: psycopg.Connection[dict[str, Any]], ref: ProjectRef) -> dict[str, Any]:
    row = conn.execute(queries()["project_find"], {"org": ref.org, "slug": ref.slug}).fetchone()
    if row is None:
        raise NotFound(f"no organization {ref.org}; create it with `hookyard orgs create {ref.org}`")
    if row["id"] is None:
        raise NotFound(f"no project {ref}; create it with `{ref.create_command()}`")
    return row


def _live_project(conn: psycopg.Connection[dict[str, Any]], ref: ProjectRef) -> dict[str, Any]:
    row = _find_project(conn, ref)
    if row["status"] == "archived":
        since = f"{row['archived_at']:%Y-%m-%d %H:%M:%S%z}"
        raise Conflict(f"project {ref} is archived (since {since}): it takes no new keys or links")
    return row


def create_org(database_url: str, slug: str, name: str | None = None) -> CreatedOrganization:
    """Create an organization and, where migration 0008 provides it, its ``hookyard_org_<slug>`` role.

    Both happen in one transaction: an organization never exists without its role on a database
    that can make roles.
    """
    check_slug(slug, "organization")
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(queries()["org_insert"], {"slug": slug, "name": name or slug}).fetchone()
        if row is None:
            raise Conflict(f"organization {slug} exists already")
        role = None
        present = conn.execute(queries()["org_role_function_present"]).fetchone()
        if present and present["present"]:
            made = conn.execute(queries()["org_create_role"], {"slug": slug}).fetchone()
            # Migration 0008's function returns the role's name (long slugs are shortened there).
            role = made["role"] if made and made["role"] else f"hookyard_org_{slug}"
    return CreatedOrganization(id=row["id"], slug=row["slug"], name=row["name"], role=role)


def list_orgs(database_url: str) -> list[Organization]:
    with _connect(database_url) as conn:
        return [Organization(**row) for row in conn.execute(queries()["org_list"]).fetchall()]


def create_project(database_url: str, ref: ProjectRef, name: str | None = None) -> CreatedProject:
    """Create an active project; a `discovered` one of that slug is adopted (made active) instead."""
    with _connect(database_url) as conn, conn.transaction():
        found = conn.execute(queries()["project_find"], {"org": ref.org, "slug": ref.slug}).fetchone()
        if found is None:
            raise NotFound(f"no organization {ref.org}; create it with `hookyard orgs create {ref.org}`")
        row = conn.execute(
            queries()["project_insert"],
            {"organization_id": found["organization_id"], "slug": ref.slug, "name": name},
        ).fetchone()
        if row is None:
            # The row that blocked the insert; read again, since it may have been created meanwhile.
            existing = _find_project(conn, ref)
            raise Conflict(f"project {ref} exists already (id {existing['id']}, {existing['status']})")
    return CreatedProject(
        id=row["id"], org=ref.org, slug=row["slug"], name=row["name"], created=row["created"]
    )


def list_projects(database_url: str, org: str | None = None) -> list[ProjectSummary]:
    """Every project, or one organization's (which must exist), by organization then slug."""
    with _connect(database_url) as conn:
        if org is not None:
            _find_org(conn, check_slug(org, "organization"))
        rows = conn.execute(queries()["project_list"], {"org": org}).fetchall()
    return [ProjectSummary(**row) for row in rows]


def show_project(database_url: str, ref: ProjectRef) -> Project:
    """The project's fields, its keys (without secrets or hashes) and its links."""
    with _connect(database_url) as conn:
        row = _find_project(conn, ref)
        keys = conn.execute(queries()["key_list"], {"project_id": row["id"]}).fetchall()
        links = conn.execute(queries()["link_list"], {"project_id": row["id"]}).fetchall()
    del row["organization_id"]
    greediness: Decimal = row.pop("greediness")
    return Project(
        **row,
        greediness=float(greediness),
        keys=[Key(**key) for key in keys],
        links=[Link(**link) for link in links],
    )


def archive_project(database_url: str, ref: ProjectRef) -> datetime:
    """Mark the project archived; every web process stops accepting its keys on its next reload."""
    with _connect(database_url) as conn, conn.transaction():
        row = _find_project(conn, ref)
        archived = conn.execute(queries()["project_archive"], {"id": row["id"]}).fetchone()
        if archived is None:
            since = _find_project(conn, ref)["archived_at"]
            raise Conflict(f"project {ref} is archived already (since {since:%Y-%m-%d %H:%M:%S%z})")
    at: datetime = archived["archived_at"]
    return at


def link(database_url: str, ref: ProjectRef, target: str, *, move: bool = False) -> LinkChange:
    """Route webhooks of ``target`` (already parsed) to the project.

    Linking a target to the project it already routes to changes nothing; a target routed to
    another project is a :class:`Conflict` unless ``move``.
    """
    with _connect(database_url) as conn, conn.transaction():
        project = _live_project(conn, ref)
        params = {"target": target, "project_id": project["id"]}
        if conn.execute(queries()["link_insert"], params).fetchone():
            return LinkChange(target, str(ref), "linked")
        owner = conn.execute(queries()["link_owner"], {"target": target}).fetchone()
        if owner is None:  # unlinked between the two statements: claim it again
            conn.execute(queries()["link_insert"], params)
            return LinkChange(target, str(ref), "linked")
        if owner["project_id"] == project["id"]:
            return LinkChange(target, str(ref), "unchanged")
        previous = f"{owner['org']}/{owner['project']}"
        if not move:
            raise Conflict(
                f"{target} is linked to project {previous}; pass --move to link it to {ref} instead"
            )
        conn.execute(queries()["link_move"], params)
        return LinkChange(target, str(ref), "moved", previous)


def unlink(database_url: str, target: str) -> str:
    """Remove the link of ``target`` (already parsed); returns the project it pointed to."""
    with _connect(database_url) as conn, conn.transaction():
        row = conn.execute(queries()["link_delete"], {"target": target}).fetchone()
    if row is None:
        raise NotFound(f"{target} is not linked to any project; nothing to unlink")
    return f"{row['org']}/{row['project']}"


def create_key(
    database_url: str,
    ref: ProjectRef,
    *,
    public_url: str,
    scopes: Iterable[Scope] = ALL_SCOPES,
    label: str | None = None,
) -> CreatedKey:
    """A new key for the project: only its hash and prefix are stored, the key is returned once."""
    key = new_key()
    with _connect(database_url) as conn, conn.transaction():
        project = _live_project(conn, ref)
        row = conn.execute(
            queries()["key_insert"],
            {
                "project_id": project["id"],
                "key_hash": key_hash(key),
                "key_prefix": key_prefix(key),
                "label": label,
                "scopes": [str(scope) for scope in scopes],
            },
        ).fetchone()
    assert row is not None  # an INSERT ... RETURNING without ON CONFLICT returns its row
    return CreatedKey(
        id=row["id"],
        project=str(ref),
        project_id=project["id"],
        key=key,
        dsn=sentry_dsn(public_url, key, project["id"]),
        ping_url=ping_url(public_url, key),
        scopes=row["scopes"],
        label=row["label"],
    )


def list_keys(database_url: str, ref: ProjectRef) -> list[Key]:
    """The project's keys, revoked ones included, oldest first."""
    with _connect(database_url) as conn:
        project = _find_project(conn, ref)
        rows = conn.execute(queries()["key_list"], {"project_id": project["id"]}).fetchall()
    return [Key(**row) for row in rows]


def revoke_key(database_url: str, key_id: int) -> RevokedKey:
    """Revoke a key once; revoking an unknown or revoked key is refused."""
    with _connect(database_url) as conn, conn.transaction():
        found = conn.execute(queries()["key_find"], {"id": key_id}).fetchone()
        if found is None:
            raise NotFound(f"no key with id {key_id}")
        row = conn.execute(queries()["key_revoke"], {"id": key_id}).fetchone()
        if row is None:
            # Re-read: a revoke racing this one may have set it after key_find.
            found = conn.execute(queries()["key_find"], {"id": key_id}).fetchone() or found
            revoked = found["revoked_at"]
            raise Conflict(f"key {key_id} was revoked already, at {revoked:%Y-%m-%d %H:%M:%S%z}")
    return RevokedKey(
        id=key_id,
        prefix=found["prefix"],
        project=f"{found['org']}/{found['project']}",
        revoked_at=row["revoked_at"],
    )
