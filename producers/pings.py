"""Healthchecks.io's ping URLs: a cron job that pings Healthchecks today points at Hookyard instead.

- ``/ping/<check uuid>`` and ``/ping/<project key>/<slug>``, each optionally followed by
  ``/start``, ``/fail``, ``/log`` or ``/<exit status 0-255>`` (0 is success), by GET, HEAD or POST.
- ``?rid=<uuid>`` pairs a start with its end; ``?create=1`` on a slug URL creates a missing check.
- A POST body (the job's output) is kept up to 10,000 bytes; every answer says
  ``Ping-Body-Limit: 10000``.
- Answers are plain text, as ping clients read them: 200 ``OK``, 201 ``Created``, 404
  ``not found``, 400 ``invalid url format``, 503 while RabbitMQ does not confirm.

Checks are looked up in the web process's memory (:class:`producers.keys.KeyRegistry`), so a ping
of a known check costs no database round trip and works through a PostgreSQL outage. Only
``?create=1`` for a check that does not exist yet writes to PostgreSQL, synchronously, so its
``201`` is true. An unknown or revoked key answers 404, as Healthchecks does for a wrong ping key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qs

from contracts.heartbeats import CHECK_SLUG, PING_BODY_LIMIT, CheckReport, Origin
from contracts.keys import Scope, looks_like_key
from producers.keys import KeyRegistry

Signal = Literal["start", "success", "fail", "log"]


class PingRefused(Exception):
    """A ping answered with a plain-text status: 400 ``invalid url format`` or 404 ``not found``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def invalid() -> PingRefused:
    return PingRefused(400, "invalid url format")


def not_found() -> PingRefused:
    return PingRefused(404, "not found")


@dataclass(frozen=True)
class PingTarget:
    """What a ping URL names: a check by uuid, or a project key and a slug; and what it says."""

    signal: Signal
    exit_status: int | None
    check_uuid: str | None = None
    key: str | None = None
    slug: str | None = None


def _suffix(part: str | None) -> tuple[Signal, int | None]:
    if part is None or part == "":
        return "success", None
    if part in ("start", "fail", "log"):
        return part, None  # type: ignore[return-value]
    if part.isdigit() and len(part) <= 3 and int(part) <= 255:
        status = int(part)
        return ("success" if status == 0 else "fail"), status
    raise invalid()


def _uuid(value: str) -> str | None:
    """The canonical form of a dashed UUID, or None (keys are letters and digits, never dashed)."""
    if "-" not in value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def parse_target(parts: list[str]) -> PingTarget:
    """The target of ``/ping/<parts...>``, or 400 ``invalid url format``."""
    if not parts or len(parts) > 3 or any(not part for part in parts[:-1]):
        raise invalid()
    check_uuid = _uuid(parts[0])
    if check_uuid is not None:
        if len(parts) > 2:
            raise invalid()
        signal, exit_status = _suffix(parts[1] if len(parts) == 2 else None)
        return PingTarget(signal, exit_status, check_uuid=check_uuid)
    if len(parts) < 2 or not looks_like_key(parts[0]):
        raise not_found() if len(parts) == 1 else invalid()
    if not CHECK_SLUG.match(parts[1]):
        raise invalid()
    signal, exit_status = _suffix(parts[2] if len(parts) == 3 else None)
    return PingTarget(signal, exit_status, key=parts[0], slug=parts[1])


@dataclass(frozen=True)
class Query:
    rid: str | None
    create: bool


def parse_query(query_string: bytes) -> Query:
    """``rid`` (a UUID, else 400) and ``create`` (``1`` creates a missing check)."""
    values = parse_qs(query_string.decode("latin-1"))
    rid = values.get("rid", [None])[0]
    if rid is not None:
        try:
            rid = str(uuid.UUID(rid))
        except ValueError:
            raise invalid() from None
    return Query(rid=rid, create=values.get("create", ["0"])[0] == "1")


@dataclass(frozen=True)
class Resolved:
    """The check a ping is for: known ids, or a slug to create (``?create=1``)."""

    project_id: int
    check_id: int | None
    slug: str


def resolve(target: PingTarget, registry: KeyRegistry, create: bool) -> Resolved:
    """The project and check of a ping, from memory; 404 ``not found`` when there is none.

    A slug URL with ``create`` and no such check resolves with ``check_id`` None: the caller
    creates it.
    """
    if not registry.loaded:  # nothing is known yet: "not found" would tell a cron job its check is gone
        raise PingRefused(503, "service unavailable: retry later")
    if target.check_uuid is not None:
        found = registry.check_by_uuid(target.check_uuid)
        if found is None:
            raise not_found()
        project_id, check_id, slug = found
        return Resolved(project_id, check_id, slug)
    assert target.key is not None
    assert target.slug is not None
    key = registry.lookup(target.key)
    if key is None or key.revoked or Scope.HEARTBEATS not in key.scopes:
        raise not_found()
    registry.touch(key)
    known = registry.check_by_slug(key.project_id, target.slug)
    if known is None and not create:
        raise not_found()
    return Resolved(key.project_id, known, target.slug)


def ping_report(
    resolved: Resolved, target: PingTarget, query: Query, body: bytes, received_at: datetime
) -> CheckReport:
    """One ping as a report: each ping is its own event (a fresh report id)."""
    return CheckReport(
        project_id=resolved.project_id,
        check_id=resolved.check_id,
        check=resolved.slug,
        report_id=f"ping:{uuid.uuid4()}",
        signal=target.signal,
        at=received_at,
        received_at=received_at,
        origin=Origin.PING,
        rid=query.rid,
        exit_status=target.exit_status,
        body=body[:PING_BODY_LIMIT].decode("utf-8", errors="replace")[:PING_BODY_LIMIT] or None,
    )
