-- Named queries of `hookyard checks` (heartbeat checks: set, list, show, pause, resume), loaded
-- once by schema.queries with the fleet's. Parameters are psycopg named placeholders. The operator
-- CLI (ops/checks.py) runs them; migration 0011 holds the tables.
--
-- A subject is one thing reporting for a check: '' for its pings, 'host:pid:port' for an instance
-- of a service. What a change does to a subject is decided by contracts/checks.py (the rules the
-- worker and the sweep follow); these queries read and write the rows, and every status changed
-- is written with its status_flips row in the same transaction.

-- name: checks_upsert --
-- Create the check, or give an existing one the schedule asked for. A grace or name not given
-- (NULL) keeps the stored one (a new check: grace 1 hour, no name); an empty name clears it.
-- `tz` NULL keeps the stored zone (a new check: UTC). project_id, slug and uuid never change, so
-- the ping URLs printed before stay valid. (Migration 0011's statement-level notify trigger fires
-- for every upsert, INSERT triggers firing even when the row is updated: the web processes reload
-- their check registry once, which is harmless.)
INSERT INTO checks (project_id, slug, name, kind, period, schedule, tz, grace)
VALUES (%(project_id)s, %(slug)s, nullif(%(name)s::text, ''), %(kind)s::check_kind,
        %(period)s::interval, %(schedule)s::text, coalesce(%(tz)s::text, 'UTC'),
        coalesce(%(grace)s::interval, interval '1 hour'))
ON CONFLICT (project_id, slug) DO UPDATE
SET name = CASE WHEN %(name)s::text IS NULL THEN checks.name ELSE nullif(%(name)s::text, '') END,
    kind = excluded.kind,
    period = excluded.period,
    schedule = excluded.schedule,
    tz = coalesce(%(tz)s::text, checks.tz),
    grace = coalesce(%(grace)s::interval, checks.grace)
RETURNING id, uuid, slug, name, kind::text AS kind, period, schedule, tz, grace, paused,
          (xmax = 0) AS created;

-- name: checks_find --
-- One check of a project; no row when the slug is unknown. Not locked: a change locks the check's
-- subjects first and the check's row after, the order the worker takes them in, so the two wait
-- for each other instead of deadlocking.
SELECT id, project_id, uuid, slug, name, kind::text AS kind, period, schedule, tz, grace, paused
FROM checks
WHERE project_id = %(project_id)s AND slug = %(slug)s;

-- name: checks_lock_subjects --
-- Every subject of a check, locked in the worker's order (by subject) for the change that follows:
-- a report applied meanwhile waits, then starts from what the change wrote. `now` is the time the
-- change happens at (the transaction's start, the clock the flips are dated by).
SELECT id, project_id, check_id, subject, status::text AS status, running, run_started_at, run_id,
       last_heartbeat_at, last_duration, due_at, alarm_at, now() AS now
FROM runtime_status
WHERE check_id = %(check_id)s
ORDER BY subject
FOR UPDATE;

-- name: checks_set_paused --
-- Paused or not; `previous` is what it was when this locked the row, for the operator's note.
WITH before AS (
    SELECT id, paused FROM checks WHERE id = %(id)s FOR UPDATE
)
UPDATE checks c
SET paused = %(paused)s
FROM before
WHERE c.id = before.id
RETURNING before.paused AS previous;

-- name: checks_write_subjects --
-- The subjects a change moved, in one statement: their status, run and deadlines (reports,
-- durations and resources are the worker's and stay as they are).
UPDATE runtime_status r
SET status = u.status::subject_status, running = u.running, run_started_at = u.run_started_at,
    run_id = u.run_id, due_at = u.due_at, alarm_at = u.alarm_at, updated_at = now()
FROM unnest(%(id)s::bigint[], %(status)s::text[], %(running)s::boolean[],
            %(run_started_at)s::timestamptz[], %(run_id)s::text[], %(due_at)s::timestamptz[],
            %(alarm_at)s::timestamptz[])
     AS u (id, status, running, run_started_at, run_id, due_at, alarm_at)
WHERE r.id = u.id;

-- name: checks_insert_flips --
-- The status changes of the subjects written, in the same transaction.
INSERT INTO status_flips (project_id, check_id, subject, from_status, to_status, at, cause)
SELECT project_id, check_id, subject, from_status::subject_status, to_status::subject_status, at, cause
FROM unnest(%(project_id)s::bigint[], %(check_id)s::bigint[], %(subject)s::text[],
            %(from_status)s::text[], %(to_status)s::text[], %(at)s::timestamptz[], %(cause)s::text[])
     AS f (project_id, check_id, subject, from_status, to_status, at, cause);

-- name: checks_list --
-- Every check (or one project's) with its subjects counted by status, its latest report and its
-- nearest deadline among the subjects the schedule times (`up` and `grace`).
SELECT c.id, o.slug || '/' || p.slug AS project, c.slug, c.uuid, c.name, c.kind::text AS kind,
       c.period, c.schedule, c.tz, c.grace, c.paused,
       count(r.id) AS subjects,
       count(r.id) FILTER (WHERE r.status = 'new') AS new,
       count(r.id) FILTER (WHERE r.status = 'up') AS up,
       count(r.id) FILTER (WHERE r.status = 'grace') AS grace_subjects,
       count(r.id) FILTER (WHERE r.status = 'down') AS down,
       count(r.id) FILTER (WHERE r.status = 'paused') AS paused_subjects,
       max(r.last_heartbeat_at) AS last_report_at,
       min(r.due_at) FILTER (WHERE r.status IN ('up', 'grace')) AS next_due_at
FROM checks c
JOIN projects p ON p.id = c.project_id
JOIN organizations o ON o.id = p.organization_id
LEFT JOIN runtime_status r ON r.check_id = c.id
WHERE %(project_id)s::bigint IS NULL OR c.project_id = %(project_id)s::bigint
GROUP BY c.id, o.slug, p.slug
ORDER BY o.slug, p.slug, c.slug;

-- name: checks_show --
SELECT c.id, o.slug || '/' || p.slug AS project, c.project_id, c.slug, c.uuid, c.name,
       c.kind::text AS kind, c.period, c.schedule, c.tz, c.grace, c.paused, c.created_at,
       c.updated_at
FROM checks c
JOIN projects p ON p.id = c.project_id
JOIN organizations o ON o.id = p.organization_id
WHERE c.project_id = %(project_id)s AND c.slug = %(slug)s;

-- name: checks_subjects --
-- A check's subjects, its pings ('') first, then instances by name.
SELECT subject, status::text AS status, running, run_started_at, last_heartbeat_at, last_duration,
       due_at, alarm_at, process_name, host, pid, port, cpu_usage, memory_usage, updated_at
FROM runtime_status
WHERE check_id = %(check_id)s
ORDER BY subject;

-- name: checks_flips --
-- A check's latest status changes, newest first (status_flips_check_idx).
SELECT subject, from_status::text AS from_status, to_status::text AS to_status, at, cause
FROM status_flips
WHERE check_id = %(check_id)s
ORDER BY at DESC, id DESC
LIMIT %(limit)s;
