"""What the domain scenarios load into the bench database before a run, in plain SQL.

Projects and keys the way ``hookyard projects``/``keys`` make them (a key's SHA-256 and prefix,
:mod:`contracts.keys`), checks with the periods a scenario needs, and runtime subjects for the
sweep. Every function commits its own work and returns what the load generator needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import psycopg
from psycopg.types.json import Jsonb

from contracts.keys import key_hash, key_prefix, new_key
from schema.migrate import month_starts


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


#: The two meters of the usage scenario: tokens summed, completions counted, both per model.
USAGE_METERS = (
    ("llm-tokens", "llm.tokens", "tokens", "SUM", "$.tokens"),
    ("llm-completions", "llm.completions", "completions", "COUNT", None),
)


def usage_meters(database_url: str, event_type: str) -> int:
    """The usage scenario's meters (SUM and COUNT of ``event_type``); returns how many."""
    with psycopg.connect(database_url) as conn:
        for slug, resource_type, unit, aggregation, value_property in USAGE_METERS:
            conn.execute(
                "INSERT INTO meters (slug, event_type, resource_type, unit, aggregation, value_property,"
                " group_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (slug, event_type, resource_type, unit, aggregation, value_property,
                 Jsonb({"model": "$.model"})),
            )  # fmt: skip
    return len(USAGE_METERS)


def usage_budgets(database_url: str, project_id: int) -> bool:
    """A monthly soft budget per meter's resource type, when ``hookyard_set_budget`` exists.

    Returns whether it did: the worker then moves each budget's ``used_amount`` as it stores.
    """
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT to_regproc('hookyard_set_budget') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return False
        for _, resource_type, unit, _, _ in USAGE_METERS:
            conn.execute(
                "SELECT * FROM hookyard_set_budget(%s, %s, 'monthly', 1e15, %s, 'soft', '{50,80,100}', true)",
                (project_id, resource_type, unit),
            )
    return True


#: Resource types and models of the generated usage history.
HISTORY_TYPES = (("llm.tokens", "tokens"), ("llm.completions", "completions"), ("compute.seconds", "s"),
                 ("storage.gb", "GB"))  # fmt: skip
HISTORY_MODELS = ("gpt-4o-mini", "claude-haiku", "llama-3-70b")


def usage_history(
    database_url: str, *, rows: int, project_ids: Sequence[int], months: int, now: datetime
) -> None:
    """``rows`` usage records over the ``months`` months before ``now``, in one INSERT ... SELECT.

    Half belong to ``project_ids[0]`` (the project the summaries read), the rest spread over the
    others; four resource types, three models in ``metadata``, a cost on each. Monthly partitions
    are created first, so nothing lands in the DEFAULT partition. Then the summary view is
    refreshed and the table analyzed, as the scheduler would have by then.
    """
    big, others = project_ids[0], list(project_ids[1:]) or [project_ids[0]]
    with psycopg.connect(database_url, autocommit=True) as conn:
        starts = month_starts(now.date(), months, 0)
        for month in starts:
            conn.execute(
                "SELECT hookyard_ensure_month_partition('resource_usage', 'recorded_at', %s)", (month,)
            )
        conn.execute(
            "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, cost_cad,"
            " recorded_at, received_at, billing_period, origin, metadata)"
            " SELECT CASE WHEN g %% 2 = 0 THEN %(big)s"
            "   ELSE (%(others)s::bigint[])[1 + (g / 2) %% %(n_others)s] END,"
            "  'bench:' || g, (%(types)s::text[])[1 + (g / 2) %% 4], 1 + g %% 5000,"
            "  (%(units)s::text[])[1 + (g / 2) %% 4],"
            "  round((1 + g %% 5000) * 0.0000025, 6), t.at, t.at, date_trunc('month', t.at, 'UTC')::date,"
            "  'v1', jsonb_build_object('model', (%(models)s::text[])[1 + g %% 3])"
            " FROM generate_series(1, %(rows)s) AS g,"
            "  LATERAL (SELECT %(now)s - %(span)s * (g::float8 / %(rows)s) AS at) AS t",
            {
                "big": big, "others": others, "n_others": len(others), "types": [t for t, _ in HISTORY_TYPES],
                "units": [u for _, u in HISTORY_TYPES],
                "models": list(HISTORY_MODELS), "rows": rows, "now": now,
                "span": now - datetime.combine(starts[0], time.min, now.tzinfo),
            },
        )  # fmt: skip
        conn.execute("SELECT hookyard_refresh_resource_summary()")
        conn.execute("ANALYZE resource_usage")


def hard_budgets(database_url: str, project_ids: Sequence[int], resource_type: str, unit: str) -> None:
    """A monthly hard budget of ``resource_type`` per project, large enough never to refuse."""
    with psycopg.connect(database_url) as conn:
        for project_id in project_ids:
            conn.execute(
                "SELECT * FROM hookyard_set_budget(%s, %s, 'monthly', 1e15, %s, 'hard', '{50,80,100}', true)",
                (project_id, resource_type, unit),
            )
