-- Named queries of the usage summary: `GET /v1/usage/summary` (producers/usage_summary.py) and the
-- scheduler's refresh of the materialized view it reads (workers/summary.py). Loaded once by
-- schema.queries with the fleet's; parameters are psycopg named placeholders. Migration 0012 holds
-- resource_usage, project_resource_summary and hookyard_refresh_resource_summary().

-- name: summary_refresh --
-- REFRESH MATERIALIZED VIEW CONCURRENTLY with the owner's rights: readers never wait for it.
SELECT hookyard_refresh_resource_summary();

-- name: summary_project --
-- The id of a project named by its organization and slug; no row when there is none.
SELECT p.id
FROM projects p
JOIN organizations o ON o.id = p.organization_id
WHERE o.slug = %(org)s AND p.slug = %(slug)s;

-- name: summary_statement_timeout --
-- For the transaction the summary runs in: a request never holds its connection longer.
SELECT set_config('statement_timeout', %(timeout)s, true);

-- name: summary_totals --
-- Totals per window (`hour`, `day` or `month`, in UTC), resource type, unit and, with a group-by, the
-- value of that metadata key (NULL: the record has none), over [from, to).
--
-- Whole UTC days in [summary_from, summary_to) are read from project_resource_summary, which holds
-- one row per project, day, resource type and unit; the rest of [from, to), [from, head_end) and
-- [tail_start, to) (the part-days at either end, and the days from summary_to on: today, which the
-- view is always behind on), is read from resource_usage through its (project_id, resource_type,
-- recorded_at) index. The caller gives from <= head_end = summary_from <= summary_to = tail_start
-- <= to (the days as midnights UTC), or, for hour windows and a group-by, which the view cannot
-- answer, an empty view range with head_end = tail_start = to: resource_usage answers [from, to).
-- Measured on 5 million rows (producers/usage_summary.py has the numbers): a year of month
-- totals takes 3 ms this way and 930 ms from resource_usage alone.
--
-- `group_by` NULL makes `metadata ->> NULL` NULL for every row: one query for both cases. An empty
-- unit is the view's spelling of NULL (it groups by coalesce(unit, '')), and NULL again on the way out.
WITH raw AS (
    SELECT date_trunc(%(window)s, u.recorded_at, 'UTC') AS window_start,
           u.resource_type,
           coalesce(u.unit, '') AS unit,
           u.metadata ->> %(group_by)s::text AS grp,
           count(*) AS records,
           sum(u.amount) AS amount,
           sum(u.cost_cad) AS cost_cad
    FROM resource_usage u
    WHERE u.project_id = %(project_id)s
      AND (%(resource_type)s::text IS NULL OR u.resource_type = %(resource_type)s::text)
      AND ((u.recorded_at >= %(from)s AND u.recorded_at < %(head_end)s)
           OR (u.recorded_at >= %(tail_start)s AND u.recorded_at < %(to)s))
    GROUP BY 1, 2, 3, 4
), summarized AS (
    SELECT date_trunc(%(window)s, s.usage_date::timestamp) AT TIME ZONE 'UTC' AS window_start,
           s.resource_type,
           s.unit,
           NULL::text AS grp,
           sum(s.records)::bigint AS records,
           sum(s.total_amount) AS amount,
           sum(s.total_cost_cad) AS cost_cad
    FROM project_resource_summary s
    WHERE s.project_id = %(project_id)s
      AND (%(resource_type)s::text IS NULL OR s.resource_type = %(resource_type)s::text)
      AND s.usage_date >= %(summary_from)s::date AND s.usage_date < %(summary_to)s::date
    GROUP BY 1, 2, 3
)
SELECT t.window_start,
       t.resource_type,
       nullif(t.unit, '') AS unit,
       t.grp AS group_value,
       sum(t.records)::bigint AS records,
       sum(t.amount) AS amount,
       sum(t.cost_cad) AS cost_cad
FROM (SELECT * FROM raw UNION ALL SELECT * FROM summarized) AS t
GROUP BY t.window_start, t.resource_type, t.unit, t.grp
-- Records without a unit, or without the group-by key, come first in their window and type.
ORDER BY 1, 2, 3 NULLS FIRST, 4 NULLS FIRST
LIMIT %(limit)s;
