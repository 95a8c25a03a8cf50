"""The web process's in-memory registry of project keys, webhook links and projects.

Checking a key never costs a PostgreSQL round trip: each ``hookyard serve`` loads every key hash,
link and project at start, then keeps them fresh from one connection that ``LISTEN``s on
``hookyard_tenancy`` (migration 0007's triggers notify on every change to keys, links and
projects), so a revocation is refused everywhere within moments. A full reload every
``reload_interval`` seconds is the safety net for a missed notification.

When PostgreSQL goes away the last snapshot keeps serving: requests with known keys are still
accepted, and the registry reconnects with backoff, logging one warning when the outage starts
and one when it ends. A process that has never loaded (PostgreSQL down at its start) cannot know
any key and answers project-key requests 503 until it has; the operator token needs no database.

``last_used_at`` is not written per request: each use is remembered in memory and flushed in one
``UPDATE`` every ``flush_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from contracts import EventEnvelope, Source
from contracts.keys import Scope, key_hash, looks_like_key
from contracts.usage import Meter
from producers.errors import IngestError
from producers.signatures import bearer_token_valid
from schema import queries

log = structlog.get_logger(__name__)

DEFAULT_ORGANIZATION = "default"


@dataclass(frozen=True, slots=True)
class ProjectKey:
    """A key as the registry knows it: never the key itself, only what it grants."""

    id: int
    key_hash: str
    project_id: int
    project_slug: str
    organization_slug: str
    scopes: frozenset[str]
    revoked: bool

    def names(self, project: str) -> bool:
        """Whether a body's ``project`` (``slug`` or ``org/slug``) is this key's own project."""
        if "/" in project:
            return project == f"{self.organization_slug}/{self.project_slug}"
        return project == self.project_slug and self.organization_slug == DEFAULT_ORGANIZATION


@dataclass(frozen=True)
class Snapshot:
    """One consistent reading of the tenancy tables; replaced whole, never mutated."""

    keys: Mapping[str, ProjectKey] = field(default_factory=dict)
    #: ``slug`` (default organization) and ``org/slug`` → project id.
    projects: Mapping[str, int] = field(default_factory=dict)
    #: ``github:owner/repo``, ``slack:T123``, ``linear:team`` → project id.
    links: Mapping[str, int] = field(default_factory=dict)
    #: A check's uuid → (project id, check id, slug), and (project id, slug) → check id.
    checks_by_uuid: Mapping[str, tuple[int, int, str]] = field(default_factory=dict)
    checks_by_slug: Mapping[tuple[int, str], int] = field(default_factory=dict)
    #: Organization slugs: a report naming another organization could never be stored.
    organizations: frozenset[str] = frozenset()
    #: A CloudEvent type → the meters (id, meter) that turn it into usage.
    meters_by_type: Mapping[str, tuple[tuple[int, Meter], ...]] = field(default_factory=dict)


def build_snapshot(
    keys: Iterable[tuple[Any, ...]],
    projects: Iterable[tuple[Any, ...]],
    links: Iterable[tuple[Any, ...]],
    *,
    checks: Iterable[tuple[Any, ...]] = (),
    meters: Iterable[tuple[Any, ...]] = (),
    organizations: Iterable[str] = (DEFAULT_ORGANIZATION,),
) -> Snapshot:
    """A snapshot from the rows of the ``registry_*`` queries."""
    by_hash = {
        str(hash_): ProjectKey(
            id=int(key_id),
            key_hash=str(hash_),
            project_id=int(project_id),
            project_slug=str(project_slug),
            organization_slug=str(organization_slug),
            scopes=frozenset(scopes),
            revoked=bool(revoked),
        )
        for key_id, hash_, scopes, project_id, project_slug, organization_slug, revoked in keys
    }
    by_name: dict[str, int] = {}
    for project_id, slug, organization_slug, _status in projects:
        by_name[f"{organization_slug}/{slug}"] = int(project_id)
        if organization_slug == DEFAULT_ORGANIZATION:
            by_name[str(slug)] = int(project_id)
    by_uuid: dict[str, tuple[int, int, str]] = {}
    by_slug: dict[tuple[int, str], int] = {}
    for check_id, project_id, slug, uuid in checks:
        by_uuid[str(uuid)] = (int(project_id), int(check_id), str(slug))
        by_slug[(int(project_id), str(slug))] = int(check_id)
    by_type: dict[str, list[tuple[int, Meter]]] = {}
    for meter_id, slug, event_type, resource_type, unit, aggregation, value_property, group_by in meters:
        try:
            built = Meter.build(
                slug, event_type, resource_type, unit, aggregation, value_property, group_by or {}
            )
        except ValueError as exc:  # a row the CLI would refuse: skip it, loudly, rather than stop loading
            log.warning("meter_skipped", meter=slug, error=str(exc))
            continue
        by_type.setdefault(str(event_type), []).append((int(meter_id), built))
    return Snapshot(
        keys=by_hash,
        projects=by_name,
        links={str(target): int(project) for target, project in links},
        checks_by_uuid=by_uuid,
        checks_by_slug=by_slug,
        meters_by_type={event_type: tuple(found) for event_type, found in by_type.items()},
        organizations=frozenset(organizations),
    )


@dataclass(frozen=True, slots=True)
class Operator:
    """The bearer of ``HOOKYARD_INGEST_TOKEN``: may name any project, and must name one."""


#: Who sent a request: the operator, or the holder of one project's key.
Principal = Operator | ProjectKey

OPERATOR = Operator()


def link_target(event: EventEnvelope) -> str | None:
    """The ``project_links`` target an event of a webhook source is routed by, if it has one."""
    fields = event.fields  # cased as `hookyard projects link` stores targets (ops/tenancy.py)
    if event.source is Source.GITHUB and fields.repository:
        return f"github:{fields.repository.lower()}"
    if event.source is Source.SLACK and fields.team:
        return f"slack:{fields.team.upper()}"
    if event.source is Source.LINEAR and fields.team:
        return f"linear:{fields.team.lower()}"
    return None


class KeyRegistry:
    """See the module docstring. Start it with the app's lifespan; read it from any request."""

    def __init__(
        self,
        database_url: str,
        *,
        reload_interval: float = 30.0,
        flush_interval: float = 2.0,
        max_backoff: float = 10.0,
    ) -> None:
        self._url = database_url
        self.reload_interval = reload_interval
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.snapshot = Snapshot()
        #: True once a snapshot was loaded: before that no project key can be checked.
        self.loaded = False
        self._used: dict[int, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._first_load = asyncio.Event()
        self._loaded_at = float("-inf")
        #: Checks this process created (?create=1) since its last load: known before the
        #: notification of their creation comes back, so the very next ping finds them.
        self._recent_checks: dict[tuple[int, str], tuple[int, str]] = {}

    async def start(self, *, wait: float = 0) -> None:
        """Start the background loader; wait up to ``wait`` seconds for the first snapshot."""
        self._task = asyncio.create_task(self._run(), name="key-registry")
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_load.wait(), wait)

    async def stop(self) -> None:
        """Flush the last uses (when PostgreSQL answers) and stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._used:
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with await psycopg.AsyncConnection.connect(self._url, connect_timeout=2) as conn:
                    await asyncio.wait_for(self._flush(conn), 2)

    def lookup(self, key: str) -> ProjectKey | None:
        """The key's entry (revoked ones included), compared in constant time after the lookup."""
        digest = key_hash(key)
        found = self.snapshot.keys.get(digest)
        if found is None or not hmac.compare_digest(found.key_hash, digest):
            return None
        return found

    def touch(self, key: ProjectKey) -> None:
        """Remember that ``key`` was used now; written with the next flush."""
        self._used[key.id] = datetime.now(UTC)

    def check_by_slug(self, project_id: int, slug: str) -> int | None:
        """The id of the project's check named ``slug``, if this process knows it."""
        found = self.snapshot.checks_by_slug.get((project_id, slug))
        if found is None and (recent := self._recent_checks.get((project_id, slug))) is not None:
            return recent[0]
        return found

    def check_by_uuid(self, check_uuid: str) -> tuple[int, int, str] | None:
        """(project id, check id, slug) of the check with this uuid, if this process knows it."""
        found = self.snapshot.checks_by_uuid.get(check_uuid)
        if found is None:
            for (project_id, slug), (check_id, known_uuid) in self._recent_checks.items():
                if known_uuid == check_uuid:
                    return project_id, check_id, slug
        return found

    def remember_check(self, project_id: int, slug: str, check_id: int, check_uuid: str) -> None:
        """A check this process just created or found in PostgreSQL, until the next load has it."""
        self._recent_checks[(project_id, slug)] = (check_id, check_uuid)

    def project_id(self, project: str) -> int | None:
        """The id of a project named ``slug`` (default organization) or ``org/slug``, if known."""
        return self.snapshot.projects.get(project)

    def route(self, events: list[EventEnvelope]) -> list[EventEnvelope]:
        """Webhook events with the project of their source's link, when one is linked."""
        links = self.snapshot.links
        if not links:
            return events
        routed = []
        for event in events:
            target = link_target(event)
            project_id = links.get(target) if target is not None else None
            routed.append(
                event if project_id is None else event.model_copy(update={"project_id": project_id})
            )
        return routed

    async def _run(self) -> None:
        backoff = 0.5
        outage_since: float | None = None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute("LISTEN hookyard_tenancy")
                    await self._load(conn)
                    if outage_since is not None:
                        log.warning(
                            "key_registry_restored", outage_seconds=round(time.monotonic() - outage_since, 1)
                        )
                        outage_since = None
                    backoff = 0.5
                    await self._follow(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning(
                        "key_registry_unavailable",
                        error=str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__,
                        keys=len(self.snapshot.keys),
                        detail="serving the keys last loaded" if self.loaded else "no key loaded yet",
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _follow(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        """Reload on every notification (coalesced) and every ``reload_interval``; flush uses."""
        while True:
            notified = False
            async for _ in conn.notifies(timeout=self.flush_interval, stop_after=1):
                notified = True
            if notified:  # a burst of changes (a script creating keys) is one reload
                async for _ in conn.notifies(timeout=0.05):
                    pass
            if notified or time.monotonic() - self._loaded_at >= self.reload_interval:
                await self._load(conn)
            await self._flush(conn)  # also proves the connection alive every flush_interval

    async def _load(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        keys = await (await conn.execute(queries()["registry_keys"])).fetchall()
        projects = await (await conn.execute(queries()["registry_projects"])).fetchall()
        links = await (await conn.execute(queries()["registry_links"])).fetchall()
        checks = await (await conn.execute(queries()["registry_checks"])).fetchall()
        meters = await (await conn.execute(queries()["registry_meters"])).fetchall()
        organizations = [
            str(row[0]) for row in await (await conn.execute(queries()["registry_organizations"])).fetchall()
        ]
        self.snapshot = build_snapshot(
            keys, projects, links, checks=checks, meters=meters, organizations=organizations
        )
        self._recent_checks = {}
        self._loaded_at = time.monotonic()
        if not self.loaded:
            log.info(
                "key_registry_loaded",
                keys=len(self.snapshot.keys),
                links=len(self.snapshot.links),
                checks=len(self.snapshot.checks_by_uuid),
            )
        self.loaded = True
        self._first_load.set()

    async def _flush(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        if not self._used:
            await conn.execute("SELECT 1")
            return
        used, self._used = self._used, {}
        try:
            await conn.execute(
                queries()["registry_touch_keys"], {"ids": list(used), "used_at": list(used.values())}
            )
        except BaseException:
            for key_id, at in used.items():  # keep them for the next flush
                self._used.setdefault(key_id, at)
            raise


def authenticate(
    headers: Mapping[str, str], operator_tokens: tuple[str, ...], registry: KeyRegistry | None, scope: Scope
) -> Principal:
    """Who sent a bearer request, or the 401/403/503 of SPEC.

    The operator token is accepted for every scope. A project key must exist, be unrevoked, and
    hold ``scope``. A key this process cannot check yet (PostgreSQL down since it started) is a
    503, so the sender retries rather than drops its report.
    """
    header = headers.get("authorization", "")
    if not header:
        raise IngestError(401, "missing_token", "The Authorization: Bearer header is required.")
    if operator_tokens and bearer_token_valid(operator_tokens, header):
        return OPERATOR
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or registry is None or not looks_like_key(token):
        if not operator_tokens:
            raise IngestError(
                401,
                "secret_not_configured",
                "HOOKYARD_INGEST_TOKEN is not set, so only project keys are accepted.",
            )
        raise IngestError(401, "invalid_token", "The bearer token is not accepted.")
    key = registry.lookup(token)
    if key is None:
        if not registry.loaded:
            raise IngestError(
                503,
                "keys_unavailable",
                "Project keys cannot be checked yet (PostgreSQL has not answered since start). Retry later.",
            )
        raise IngestError(401, "invalid_token", "The bearer token is not accepted.")
    if key.revoked:
        raise IngestError(401, "key_revoked", "This project key was revoked (or its project archived).")
    if scope not in key.scopes:
        raise IngestError(403, "missing_scope", f"This project key does not hold the {scope} scope.")
    registry.touch(key)
    return key


def project_of(
    principal: Principal, project: str | None, registry: KeyRegistry | None
) -> tuple[int | None, str | None]:
    """The (id, name) of the project a report belongs to, or 403 ``forbidden_project``.

    With a key, ``project`` may be omitted or name the key's own project. With the operator token
    it may name any project; one this process does not know yet keeps no id here, and the worker
    creates it as ``discovered`` (or finds it) when storing.
    """
    if isinstance(principal, ProjectKey):
        if project is not None and not principal.names(project):
            raise IngestError(
                403,
                "forbidden_project",
                f"This key belongs to project {principal.project_slug}, not {project}.",
            )
        return principal.project_id, project or principal.project_slug
    if project is None:
        return None, None
    if registry is not None and registry.loaded and "/" in project:
        organization = project.partition("/")[0]
        if organization not in registry.snapshot.organizations:
            raise IngestError(
                422,
                "validation_failed",
                f"There is no organization {organization}: create it with `hookyard orgs create`.",
                errors=[{"field": "project", "message": f"unknown organization {organization}"}],
            )
    return (registry.project_id(project) if registry is not None else None), project
