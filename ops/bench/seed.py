"""What the domain scenarios load into the bench database before a run, in plain SQL.

Projects and keys the way ``hookyard projects``/``keys`` make them (a key's SHA-256 and prefix,
:mod:`contracts.keys`), checks with the periods a scenario needs, and runtime subjects for the
sweep. Every function commits its own work and returns what the load generator needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from contracts.keys import key_hash, key_prefix, new_key


@dataclass(frozen=True)
class ProjectKey:
    project_id: int
    slug: str
    key: str


def make_keys(count: int) -> list[str]:
    """``count`` fresh project keys (random, as ``hookyard keys create`` makes them)."""
    return [new_key() for _ in range(count)]


def projects_with_keys(
    database_url: str, keys: Sequence[str], *, keys_per_project: int = 1, prefix: str = "bench"
) -> list[ProjectKey]:
    """One project per ``keys_per_project`` keys (``<prefix>-00001``, ...), every key holding every scope."""
    projects = -(-len(keys) // keys_per_project)
    slugs = [f"{prefix}-{number:05d}" for number in range(1, projects + 1)]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "INSERT INTO projects (organization_id, slug, name)"
            " SELECT o.id, s.slug, s.slug"
            " FROM organizations o, unnest(%s::text[]) WITH ORDINALITY AS s (slug, n)"
            " WHERE o.slug = 'default' ORDER BY s.n RETURNING id, slug",
            (slugs,),
        ).fetchall()
        ids = {str(slug): int(project_id) for project_id, slug in rows}
        owners = [slugs[index // keys_per_project] for index in range(len(keys))]
        conn.execute(
            "INSERT INTO project_keys (project_id, key_hash, key_prefix, label)"
            " SELECT p.id, k.hash, k.prefix, 'bench'"
            " FROM unnest(%s::text[], %s::text[], %s::text[]) AS k (slug, hash, prefix)"
            " JOIN projects p ON p.slug = k.slug",
            (owners, [key_hash(key) for key in keys], [key_prefix(key) for key in keys]),
        )
    return [ProjectKey(ids[owner], owner, key) for owner, key in zip(owners, keys, strict=True)]


def simple_checks(
    database_url: str,
    project_ids: Sequence[int],
    slugs: Sequence[str],
    *,
    period: timedelta,
    grace: timedelta,
) -> dict[tuple[int, str], str]:
    """A simple check of each slug in each project; (project id, slug) → the check's uuid."""
    pairs = [(project_id, slug) for project_id in project_ids for slug in slugs]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "INSERT INTO checks (project_id, slug, kind, period, grace)"
            " SELECT p, s, 'simple', %s, %s FROM unnest(%s::bigint[], %s::text[]) AS c (p, s)"
            " RETURNING project_id, slug, uuid::text",
            (period, grace, [p for p, _ in pairs], [s for _, s in pairs]),
        ).fetchall()
    return {(int(project_id), str(slug)): str(uuid) for project_id, slug, uuid in rows}


def sweep_subjects(
    database_url: str, *, subjects: int, due_fraction: float, now: datetime, checks: int = 100
) -> tuple[int, int]:
    """``subjects`` instances ``up`` on ``checks`` checks of one project: (subjects, due by ``now``).

    A due subject's alarm (its ``due_at``: ``up`` turns ``grace`` there) is in the 10 s before
    ``now``; the others' are spread over the next hour, so the sweep must not touch them.
    """
    due = round(subjects * due_fraction)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO projects (organization_id, slug, name) SELECT id, 'bench-sweep', 'bench-sweep'"
            " FROM organizations WHERE slug = 'default' RETURNING id"
        ).fetchone()
        assert row is not None
        project_id = int(row[0])
        conn.execute(
            "INSERT INTO checks (project_id, slug, kind, period, grace)"
            " SELECT %s, 'svc-' || g, 'simple', interval '10 seconds', interval '30 seconds'"
            " FROM generate_series(1, %s) AS g",
            (project_id, checks),
        )
        # Every subject's alarm is its due time; subject g is due g/subjects of the way through
        # the spread, and the first `due` of them are before `now`.
        conn.execute(
            "INSERT INTO runtime_status (project_id, check_id, subject, host, pid, port, status,"
            " last_heartbeat_at, due_at, alarm_at, cpu_usage, memory_usage)"
            " SELECT %(project)s, c.id, 'host-' || g || ':' || (1000 + g %% 30000) || ':8080',"
            "  'host-' || g, 1000 + g %% 30000, 8080, 'up', d - interval '10 seconds', d, d, 12.5, 268435456"
            " FROM generate_series(1, %(subjects)s) AS g"
            " JOIN LATERAL (SELECT CASE WHEN g <= %(due)s"
            "   THEN %(now)s - interval '10 seconds' * g / greatest(%(due)s, 1)"
            "   ELSE %(now)s + interval '1 hour' * (g - %(due)s) / (%(subjects)s - %(due)s + 1) END AS d)"
            "  AS t ON true"
            " JOIN checks c ON c.project_id = %(project)s AND c.slug = 'svc-' || (1 + g %% %(checks)s)",
            {"project": project_id, "subjects": subjects, "due": due, "now": now, "checks": checks},
        )
        conn.execute("ANALYZE runtime_status")
    return subjects, due
