-- Named queries of `hookyard errors` (error patterns: list, show, resolve, ignore, reopen), loaded
-- once by schema.queries with the fleet's. Parameters are psycopg named placeholders. The operator
-- CLI (ops/patterns.py) runs them; migration 0009 holds the tables.
--
-- Each state change is one UPDATE of one row: the new values are computed from the row as it is
-- when the UPDATE locks it, so nothing is read first and written back later. Its `before` CTE
-- locks the row too and returns the status it had, for the operator's "(was ...)".

-- name: errors_list --
-- Patterns, most recently seen first; NULL filters match everything. One row more than asked for
-- tells the caller that the list was cut.
SELECT p.id, o.slug || '/' || pr.slug AS project, p.status::text AS status, p.occurrence_count,
       p.first_seen_at, p.last_seen_at, p.exception_type, p.title, p.regression_count,
       p.level, p.severity
FROM error_patterns p
JOIN projects pr ON pr.id = p.project_id
JOIN organizations o ON o.id = pr.organization_id
WHERE (%(project_id)s::bigint IS NULL OR p.project_id = %(project_id)s::bigint)
  AND (%(status)s::text IS NULL OR p.status = %(status)s::text::error_pattern_status)
  AND (%(since)s::interval IS NULL OR p.last_seen_at >= now() - %(since)s::interval)
ORDER BY p.last_seen_at DESC, p.id DESC
LIMIT %(limit)s::bigint + 1;

-- name: errors_show --
-- One pattern with every field and its project's name; no row when the id is unknown.
SELECT p.id, o.slug || '/' || pr.slug AS project, p.project_id, p.status::text AS status,
       p.exception_type, p.title, p.sample_message, p.level, p.severity, p.occurrence_count,
       p.first_seen_at, p.last_seen_at, p.resolved_at, p.regressed_at, p.regression_count,
       p.resolution, p.auto_fixable, p.ignored_until, p.ignored_until_count,
       p.grouping, p.components, p.pattern_hash, p.created_at, p.updated_at
FROM error_patterns p
JOIN projects pr ON pr.id = p.project_id
JOIN organizations o ON o.id = pr.organization_id
WHERE p.id = %(id)s;

-- name: errors_latest_occurrence --
-- The pattern's most recently received occurrence still kept (error_occurrences_pattern_idx).
SELECT event_id, received_at, occurred_at, origin, level, exception_type, message, release,
       environment, payload
FROM error_occurrences
WHERE project_id = %(project_id)s AND pattern_hash = %(pattern_hash)s
ORDER BY received_at DESC
LIMIT 1;

-- name: errors_daily_counts --
-- Occurrences per UTC day of received_at for the last `days` days, today included, a day with
-- none as 0. Counted from the occurrences kept: retention drops whole months of them, so an old
-- day can read lower than the pattern's occurrence_count implies. received_at (not the sender's
-- occurred_at) is the partition key: the range scans only the partitions it needs.
SELECT d.day::date AS day, count(o.event_id) AS occurrences
FROM generate_series(
         (now() AT TIME ZONE 'UTC')::date - (%(days)s::integer - 1),
         (now() AT TIME ZONE 'UTC')::date,
         interval '1 day'
     ) AS d(day)
LEFT JOIN error_occurrences o
       ON o.project_id = %(project_id)s
      AND o.pattern_hash = %(pattern_hash)s
      AND o.received_at >= d.day AT TIME ZONE 'UTC'
      AND o.received_at < (d.day + interval '1 day') AT TIME ZONE 'UTC'
GROUP BY d.day
ORDER BY d.day;

-- name: errors_resolve --
-- Resolved, with the ignore limits cleared. Resolving a resolved pattern keeps its resolved_at
-- (a second resolve changes nothing but the notes given); resolution and auto_fixable change
-- only when given, and an empty resolution clears the stored one.
WITH before AS (
    SELECT id, status FROM error_patterns WHERE id = %(id)s FOR UPDATE
)
UPDATE error_patterns p
SET status = 'resolved',
    resolved_at = CASE WHEN p.status = 'resolved' THEN p.resolved_at ELSE now() END,
    resolution = CASE WHEN %(resolution)s::text IS NULL THEN p.resolution
                      ELSE nullif(%(resolution)s::text, '') END,
    auto_fixable = coalesce(%(auto_fixable)s::boolean, p.auto_fixable),
    ignored_until = NULL,
    ignored_until_count = NULL
FROM before
WHERE p.id = before.id
RETURNING p.id, before.status::text AS previous, p.status::text AS status, p.occurrence_count,
          p.resolved_at, p.resolution, p.auto_fixable, p.ignored_until, p.ignored_until_count;

-- name: errors_ignore --
-- Ignored, with the limits given (none: ignored for good), replacing any earlier ones.
-- `until_count` is how many MORE occurrences: the limit is computed from occurrence_count as this
-- UPDATE finds it, so a worker counting at the same moment cannot slip between a read and a write.
-- `until_in` (an interval) counts from the database's clock, the one the worker compares with.
WITH before AS (
    SELECT id, status FROM error_patterns WHERE id = %(id)s FOR UPDATE
)
UPDATE error_patterns p
SET status = 'ignored',
    resolved_at = NULL,
    ignored_until = coalesce(%(until_at)s::timestamptz, now() + %(until_in)s::interval),
    ignored_until_count = p.occurrence_count + %(until_count)s::bigint
FROM before
WHERE p.id = before.id
RETURNING p.id, before.status::text AS previous, p.status::text AS status, p.occurrence_count,
          p.resolved_at, p.resolution, p.auto_fixable, p.ignored_until, p.ignored_until_count;

-- name: errors_reopen --
-- Unresolved again by hand: resolved_at and the ignore limits cleared; regressed_at and
-- regression_count are the worker's (a reopen is no regression).
WITH before AS (
    SELECT id, status FROM error_patterns WHERE id = %(id)s FOR UPDATE
)
UPDATE error_patterns p
SET status = 'unresolved',
    resolved_at = NULL,
    ignored_until = NULL,
    ignored_until_count = NULL
FROM before
WHERE p.id = before.id
RETURNING p.id, before.status::text AS previous, p.status::text AS status, p.occurrence_count,
          p.resolved_at, p.resolution, p.auto_fixable, p.ignored_until, p.ignored_until_count;
