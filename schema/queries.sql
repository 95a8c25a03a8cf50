-- Named queries, loaded once by schema.queries. Parameters are psycopg named placeholders.

-- name: claim_event_keys --
-- Claim each delivery in the ledger; returns the keys that were new. The caller copies exactly
-- those events into `events` in the same transaction, so a key is claimed exactly when its row
-- is written. Arrays go in binary: text-format arrays would escape every quote of the payloads.
INSERT INTO event_keys (source, delivery_id, received_at)
SELECT * FROM unnest(%(source)b::text[], %(delivery_id)b::text[], %(received_at)b::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING source, delivery_id;

-- name: insert_event --
-- One event in one statement (ledger claim and row together): cheaper than claim + COPY when a
-- message carries a single event. Returns a row when the event was new. `payload_raw` and
-- `payload_issue` are NULL but for a body jsonb cannot hold (see migration 0005).
WITH fresh AS (
    INSERT INTO event_keys (source, delivery_id, received_at)
    VALUES (%(source)s, %(delivery_id)s, %(received_at)s)
    ON CONFLICT DO NOTHING
    RETURNING source
)
INSERT INTO events (source, delivery_id, received_at, event_type, action, repository, actor, team,
                    channel, entity_type, entity_id, project, service, environment, version, status,
                    payload, payload_raw, payload_issue, project_id)
SELECT %(source)s, %(delivery_id)s, %(received_at)s, %(event_type)s, %(action)s, %(repository)s,
       %(actor)s, %(team)s, %(channel)s, %(entity_type)s, %(entity_id)s, %(project)s, %(service)s,
       %(environment)s, %(version)s, %(status)s, %(payload)s::jsonb, %(payload_raw)s::text,
       %(payload_issue)s::text, %(project_id)s::bigint
FROM fresh
RETURNING source;

-- name: copy_events --
-- Binary COPY of the claimed events: a quarter cheaper in PostgreSQL than INSERT ... SELECT
-- FROM unnest(...) of the same rows (measured with `hookyard bench drain`).
COPY events (source, delivery_id, received_at, event_type, action, repository, actor, team, channel,
             entity_type, entity_id, project, service, environment, version, status, payload, project_id)
FROM STDIN (FORMAT BINARY);

-- name: insert_dead_letter --
-- Record a dead letter once per dedup key; a letter that fails again after a replay is re-armed.
INSERT INTO dead_letters (dedup_key, queue, actor, message_id, source, delivery_id, reason, detail,
                          attempts, body)
VALUES (%(dedup_key)s, %(queue)s, %(actor)s, %(message_id)s, %(source)s, %(delivery_id)s, %(reason)s,
        %(detail)s, %(attempts)s, %(body)s)
ON CONFLICT (dedup_key) DO UPDATE
SET reason = excluded.reason,
    detail = excluded.detail,
    attempts = dead_letters.attempts + excluded.attempts,
    failed_at = now(),
    replayed_at = NULL
WHERE dead_letters.replayed_at IS NOT NULL;

-- name: ensure_month_partition --
SELECT hookyard_ensure_month_partition(%(parent)s::regclass, %(key_column)s, %(month)s::date) AS created;

-- name: partitions_before --
SELECT p::text AS partition FROM hookyard_month_partitions_before(%(parent)s::regclass, %(cutoff)s::date) AS p;

-- name: find_event --
SELECT e.source, e.delivery_id, e.event_type, e.action, e.received_at, e.stored_at,
       e.tableoid::regclass::text AS partition
FROM event_keys k
JOIN events e ON e.source = k.source AND e.delivery_id = k.delivery_id AND e.received_at = k.received_at
WHERE k.source = %(source)s AND k.delivery_id = %(delivery_id)s;

-- name: dlq_select --
-- Dead letters matching the operator's filters; a NULL filter matches everything.
SELECT id, queue, actor, reason, detail, attempts, source, delivery_id, message_id, failed_at,
       replayed_at, replay_count
FROM dead_letters
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(reason)s::text IS NULL OR reason = %(reason)s::text)
  AND (%(older_than)s::interval IS NULL OR failed_at <= now() - %(older_than)s::interval)
  AND (%(newer_than)s::interval IS NULL OR failed_at >= now() - %(newer_than)s::interval)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
  AND (%(include_replayed)s::boolean OR replayed_at IS NULL)
ORDER BY id
LIMIT %(limit)s;

-- name: dlq_show --
SELECT id, queue, actor, reason, detail, attempts, source, delivery_id, message_id, failed_at,
       replayed_at, replay_count, body
FROM dead_letters WHERE id = %(id)s;

-- name: dlq_claim --
-- Mark letters replayed, skipping any another replay holds: the caller publishes them and
-- commits, so a letter goes back to its queue at most once per replay.
WITH claimed AS (
    SELECT id FROM dead_letters
    WHERE id = ANY (%(ids)s::bigint[]) AND replayed_at IS NULL
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
UPDATE dead_letters d
SET replayed_at = now(), replay_count = d.replay_count + 1
FROM claimed
WHERE d.id = claimed.id
RETURNING d.id, d.queue, d.body;

-- name: dlq_purge --
DELETE FROM dead_letters WHERE id = ANY (%(ids)s::bigint[]) RETURNING id;

-- name: breaker_recent_dead_letters --
-- An actor's dead letters within the window, not counting those before the breaker's last reset.
SELECT count(*) AS recent
FROM dead_letters
WHERE actor = %(actor)s
  AND failed_at > greatest(now() - make_interval(secs => %(window)s),
                           coalesce((SELECT reset_at FROM consumer_breakers WHERE actor = %(actor)s),
                                    '-infinity'));

-- name: breaker_trip --
-- Open an actor's breaker; returns a row only for the call that opened it.
INSERT INTO consumer_breakers AS b (actor, state, opened_at, dead_letters, window_seconds, detail, trips)
VALUES (%(actor)s, 'open', now(), %(dead_letters)s, %(window)s, %(detail)s, 1)
ON CONFLICT (actor) DO UPDATE
SET state = 'open', opened_at = now(), dead_letters = excluded.dead_letters,
    window_seconds = excluded.window_seconds, detail = excluded.detail, trips = b.trips + 1
WHERE b.state = 'closed'
RETURNING actor;

-- name: breaker_open_actors --
SELECT actor FROM consumer_breakers WHERE state = 'open';

-- name: breaker_status --
SELECT actor, state, opened_at, dead_letters, window_seconds, detail, reset_at, trips
FROM consumer_breakers
WHERE %(actor)s::text IS NULL OR actor = %(actor)s::text
ORDER BY actor;

-- name: breaker_reset --
-- Close breakers (one actor, or every open one); dead letters before now stop counting.
UPDATE consumer_breakers
SET state = 'closed', reset_at = now()
WHERE state = 'open' AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
RETURNING actor;

-- name: registry_keys --
-- Every key of every project, for a web process's in-memory registry (hashes only). Keys of
-- archived projects are loaded as revoked, so they are refused with the right reason.
SELECT k.id, k.key_hash, k.scopes, k.project_id, p.slug AS project_slug, o.slug AS organization_slug,
       k.revoked_at IS NOT NULL OR p.status = 'archived' AS revoked
FROM project_keys k
JOIN projects p ON p.id = k.project_id
JOIN organizations o ON o.id = p.organization_id;

-- name: registry_projects --
SELECT p.id, p.slug, o.slug AS organization_slug, p.status::text AS status
FROM projects p JOIN organizations o ON o.id = p.organization_id;

-- name: registry_organizations --
SELECT slug FROM organizations;

-- name: registry_links --
SELECT target, project_id FROM project_links;

-- name: registry_checks --
SELECT id, project_id, slug, uuid::text FROM checks;

-- name: registry_meters --
SELECT id, slug, event_type, resource_type, unit, aggregation::text, value_property, group_by FROM meters;

-- name: registry_touch_keys --
-- last_used_at for the keys a web process saw since its last flush: one statement per flush,
-- never one per request. It never moves backwards (two processes flush independently).
UPDATE project_keys k
SET last_used_at = greatest(k.last_used_at, u.used_at)
FROM unnest(%(ids)s::bigint[], %(used_at)s::timestamptz[]) AS u (id, used_at)
WHERE k.id = u.id;

-- name: resolve_project_names --
-- Projects named by reports under the operator token (`slug` in the default organization, or
-- `org/slug`): created as `discovered` on first sight in an organization that exists. Run in its
-- own short transaction before the store, so a project row lock is never held for a whole
-- batch; a project another worker is creating at this moment may be missing from the result
-- (this statement's snapshot predates it), and the caller asks once more.
WITH wanted AS (
    SELECT DISTINCT name,
           CASE WHEN strpos(name, '/') > 0 THEN split_part(name, '/', 1) ELSE 'default' END AS org,
           CASE WHEN strpos(name, '/') > 0 THEN split_part(name, '/', 2) ELSE name END AS slug
    FROM unnest(%(names)s::text[]) AS name
),
targets AS (
    SELECT w.name, o.id AS organization_id, w.slug COLLATE "C" AS slug
    FROM wanted w JOIN organizations o ON o.slug = w.org
    WHERE w.slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'
),
created AS (
    INSERT INTO projects (organization_id, slug, name, status)
    SELECT organization_id, slug, slug, 'discovered' FROM targets
    ON CONFLICT (organization_id, slug) DO NOTHING
    RETURNING id, organization_id, slug
)
SELECT t.name, coalesce(c.id, p.id) AS id
FROM targets t
LEFT JOIN created c ON c.organization_id = t.organization_id AND c.slug = t.slug
LEFT JOIN projects p ON p.organization_id = t.organization_id AND p.slug = t.slug
WHERE coalesce(c.id, p.id) IS NOT NULL;

-- name: copy_error_occurrences --
-- Binary COPY of the error reports whose ledger claim was new (see workers/patterns.py).
COPY error_occurrences (project_id, event_id, received_at, occurred_at, pattern_hash, level, exception_type,
                        message, release, environment, origin, payload)
FROM STDIN (FORMAT BINARY);

-- name: upsert_error_patterns --
-- One row per pattern of a transaction, its reports already added up, in key order. A resolved
-- pattern that occurs again regresses; an ignored one reopens once its limit has passed.
-- Returns, per pattern, whether this statement created it and whether it regressed it
-- (regressed_at is set to the transaction's time).
INSERT INTO error_patterns AS p (project_id, pattern_hash, grouping, components, exception_type, title,
                                 sample_message, level, severity, occurrence_count, first_seen_at,
                                 last_seen_at)
SELECT * FROM unnest(%(project_id)s::bigint[], %(pattern_hash)s::text[], %(grouping)s::text[],
                     %(components)s::text[]::jsonb[], %(exception_type)s::text[], %(title)s::text[],
                     %(sample_message)s::text[], %(level)s::text[], %(severity)s::text[],
                     %(occurrences)s::bigint[], %(first_seen)s::timestamptz[], %(last_seen)s::timestamptz[])
ON CONFLICT (project_id, pattern_hash) DO UPDATE
SET occurrence_count = p.occurrence_count + excluded.occurrence_count,
    first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
    last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at),
    level = coalesce(excluded.level, p.level),
    status = CASE
        WHEN p.status = 'resolved' THEN 'unresolved'::error_pattern_status
        WHEN p.status = 'ignored'
             AND (p.ignored_until <= excluded.last_seen_at
                  OR p.ignored_until_count <= p.occurrence_count + excluded.occurrence_count)
            THEN 'unresolved'::error_pattern_status
        ELSE p.status
    END,
    resolved_at = CASE WHEN p.status = 'resolved' THEN NULL ELSE p.resolved_at END,
    regressed_at = CASE WHEN p.status = 'resolved' THEN now() ELSE p.regressed_at END,
    regression_count = p.regression_count + CASE WHEN p.status = 'resolved' THEN 1 ELSE 0 END,
    ignored_until = CASE
        WHEN p.status = 'ignored'
             AND (p.ignored_until <= excluded.last_seen_at
                  OR p.ignored_until_count <= p.occurrence_count + excluded.occurrence_count)
            THEN NULL
        ELSE p.ignored_until
    END,
    ignored_until_count = CASE
        WHEN p.status = 'ignored'
             AND (p.ignored_until <= excluded.last_seen_at
                  OR p.ignored_until_count <= p.occurrence_count + excluded.occurrence_count)
            THEN NULL
        ELSE p.ignored_until_count
    END
RETURNING project_id, pattern_hash, xmax = 0 AS created, xmax <> 0 AND regressed_at = now() AS regressed;

-- name: create_check --
-- A check created by a ping with ?create=1 (Healthchecks' auto-provisioning), with SPEC's
-- defaults. Returns a row only when this statement created it.
INSERT INTO checks (project_id, slug, kind, period, grace)
VALUES (%(project_id)s, %(slug)s, 'simple', interval '1 day', interval '1 hour')
ON CONFLICT (project_id, slug) DO NOTHING
RETURNING id, uuid::text;

-- name: find_check --
SELECT id, uuid::text FROM checks WHERE project_id = %(project_id)s AND slug = %(slug)s;

-- name: heartbeats_resolve_checks --
-- Checks named by heartbeats and check-ins, created on first sight with SPEC's defaults (period
-- 1 day, grace 1 hour). Run in its own transaction before the store; a check another worker
-- creates at this moment may be missing from the answer, and the caller asks once more.
WITH wanted AS (
    SELECT DISTINCT project_id, slug COLLATE "C" AS slug
    FROM unnest(%(project_id)s::bigint[], %(slug)s::text[]) AS w (project_id, slug)
),
created AS (
    INSERT INTO checks (project_id, slug, kind, period, grace)
    SELECT project_id, slug, 'simple', interval '1 day', interval '1 hour' FROM wanted
    ON CONFLICT (project_id, slug) DO NOTHING
    RETURNING project_id, slug, id
)
SELECT project_id, slug, id FROM created
UNION ALL
SELECT c.project_id, c.slug, c.id FROM checks c JOIN wanted w ON w.project_id = c.project_id AND w.slug = c.slug;

-- name: heartbeats_ensure_subjects --
-- A row for every subject of the batch, in key order, so the next statement can lock them all.
INSERT INTO runtime_status (project_id, check_id, subject, host, pid, port, process_name)
SELECT * FROM unnest(%(project_id)s::bigint[], %(check_id)s::bigint[], %(subject)s::text[], %(host)s::text[],
                     %(pid)s::int[], %(port)s::int[], %(process_name)s::text[])
ORDER BY 2, 3
ON CONFLICT (check_id, subject) DO NOTHING;

-- name: heartbeats_lock_subjects --
SELECT r.id, r.project_id, r.check_id, r.subject, r.status::text AS status, r.running, r.run_started_at,
       r.run_id, r.last_heartbeat_at, r.last_duration, r.due_at, r.alarm_at
FROM runtime_status r
JOIN unnest(%(check_id)s::bigint[], %(subject)s::text[]) AS k (check_id, subject)
  ON r.check_id = k.check_id AND r.subject = k.subject COLLATE "C"
ORDER BY r.check_id, r.subject
FOR UPDATE OF r;

-- name: heartbeats_checks --
SELECT id, slug, kind::text AS kind, period, schedule, tz, grace, paused FROM checks WHERE id = ANY(%(ids)s::bigint[]);

-- name: heartbeats_update_subjects --
-- Each subject's state after its reports, in one statement; CPU and memory only when a heartbeat
-- of the batch carried them.
UPDATE runtime_status r
SET status = u.status::subject_status, running = u.running, run_started_at = u.run_started_at,
    run_id = u.run_id, last_heartbeat_at = u.last_heartbeat_at, last_duration = u.last_duration,
    due_at = u.due_at, alarm_at = u.alarm_at, cpu_usage = coalesce(u.cpu_usage, r.cpu_usage),
    memory_usage = coalesce(u.memory_usage, r.memory_usage), updated_at = now()
FROM unnest(%(id)s::bigint[], %(status)s::text[], %(running)s::boolean[], %(run_started_at)s::timestamptz[],
            %(run_id)s::text[], %(last_heartbeat_at)s::timestamptz[], %(last_duration)s::interval[],
            %(due_at)s::timestamptz[], %(alarm_at)s::timestamptz[], %(cpu_usage)s::float8[],
            %(memory_usage)s::bigint[])
     AS u (id, status, running, run_started_at, run_id, last_heartbeat_at, last_duration, due_at, alarm_at,
           cpu_usage, memory_usage)
WHERE r.id = u.id;

-- name: heartbeats_resume_checks --
-- A ping resumes a paused check, as in Healthchecks.io.
UPDATE checks SET paused = false WHERE id = ANY(%(ids)s::bigint[]) AND paused;

-- name: insert_status_flips --
INSERT INTO status_flips (project_id, check_id, subject, from_status, to_status, at, cause)
SELECT project_id, check_id, subject, from_status::subject_status, to_status::subject_status, at, cause
FROM unnest(%(project_id)s::bigint[], %(check_id)s::bigint[], %(subject)s::text[], %(from_status)s::text[],
            %(to_status)s::text[], %(at)s::timestamptz[], %(cause)s::text[])
     AS f (project_id, check_id, subject, from_status, to_status, at, cause);

-- name: copy_check_pings --
COPY check_pings (project_id, check_id, subject, report_id, received_at, at, signal, exit_status, rid, body,
                  origin)
FROM STDIN (FORMAT BINARY);

-- name: copy_project_metrics --
COPY project_metrics (project_id, metric_type, name, value, unit, recorded_at, check_id, subject)
FROM STDIN (FORMAT BINARY);

-- name: sweep_due_subjects --
-- Subjects whose alarm has passed (the partial index on alarm_at finds them), with their check,
-- locked so that a worker applying a report to one waits, and skipped when a worker holds it:
-- that worker is about to set its state from a report anyway.
SELECT r.id, r.project_id, r.check_id, r.subject, r.status::text AS status, r.running, r.run_started_at,
       r.run_id, r.last_heartbeat_at, r.last_duration, r.due_at, r.alarm_at,
       c.kind::text AS kind, c.period, c.schedule, c.tz, c.grace, c.paused
FROM runtime_status r JOIN checks c ON c.id = r.check_id
WHERE r.alarm_at <= %(now)s
ORDER BY r.alarm_at
LIMIT %(limit)s
FOR UPDATE OF r SKIP LOCKED;

-- name: sweep_update_subjects --
UPDATE runtime_status r
SET status = u.status::subject_status, running = u.running, alarm_at = u.alarm_at, updated_at = now()
FROM unnest(%(id)s::bigint[], %(status)s::text[], %(running)s::boolean[], %(alarm_at)s::timestamptz[])
     AS u (id, status, running, alarm_at)
WHERE r.id = u.id;

-- name: sweep_status_counts --
SELECT status::text, count(*) FROM runtime_status GROUP BY status;

-- name: sweep_next_alarm --
SELECT min(alarm_at) FROM runtime_status WHERE alarm_at IS NOT NULL;

-- name: copy_resource_usage --
COPY resource_usage (project_id, usage_id, resource_type, resource_subtype, amount, unit, unit_cost, currency,
                     cost_cad, machine, recorded_at, received_at, billing_period, meter_id, origin, metadata)
FROM STDIN (FORMAT BINARY);

-- name: usage_rates_on --
-- The rate in force on each (currency, day): the latest valid_from on or before the day.
SELECT w.currency, w.day,
       (SELECT r.rate_to_cad FROM currency_rates r
        WHERE r.currency = w.currency AND r.valid_from <= w.day
        ORDER BY r.valid_from DESC LIMIT 1) AS rate
FROM unnest(%(currency)s::text[], %(day)s::date[]) AS w (currency, day);

-- name: usage_budget_locks --
-- Shared advisory locks, in key order, of every (project, resource type) of the batch: a budget
-- being created takes its lock exclusively to sum the usage already stored (migration 0013).
SELECT pg_advisory_xact_lock_shared(hookyard_budget_lock_key(k.project_id, k.resource_type))
FROM unnest(%(project_id)s::bigint[], %(resource_type)s::text[]) WITH ORDINALITY AS k (project_id, resource_type, n)
ORDER BY k.n;

-- name: usage_budgets_for_days --
-- The budget row of each (project, resource type, UTC day), in the order given (NULL: no budget).
SELECT hookyard_budget_for(k.project_id, k.resource_type, (k.day::timestamp AT TIME ZONE 'UTC'))
FROM unnest(%(project_id)s::bigint[], %(resource_type)s::text[], %(day)s::date[]) WITH ORDINALITY
     AS k (project_id, resource_type, day, n)
ORDER BY k.n;

-- name: usage_add_to_budgets --
-- Each budget's share of the batch (hookyard_usage_share: the amount in the budget's unit, or the
-- cost when the budget counts CAD), budget rows locked in id order first as migration 0013's lock
-- order says. Returns what each was and what it is now.
WITH shares AS (
    SELECT d.budget_id, sum(hookyard_usage_share(b.unit, d.unit, d.amount, d.cost_cad)) AS delta
    FROM unnest(%(budget_id)s::bigint[], %(unit)s::text[], %(amount)s::numeric[], %(cost_cad)s::numeric[])
         AS d (budget_id, unit, amount, cost_cad)
    JOIN resource_budgets b ON b.id = d.budget_id
    GROUP BY d.budget_id
),
locked AS (
    SELECT b.id FROM resource_budgets b WHERE b.id IN (SELECT budget_id FROM shares) ORDER BY b.id FOR UPDATE
)
UPDATE resource_budgets b
SET used_amount = b.used_amount + s.delta
FROM shares s
WHERE b.id = s.budget_id AND b.id IN (SELECT id FROM locked) AND s.delta <> 0
RETURNING b.id, b.project_id, b.used_amount - s.delta, b.used_amount;

-- name: usage_record_budget_alerts --
-- The thresholds each budget crossed (recorded once per budget period by migration 0013's function).
SELECT m.budget_id, hookyard_record_budget_alerts(m.budget_id, m.before, m.after)
FROM unnest(%(budget_id)s::bigint[], %(before)s::numeric[], %(after)s::numeric[]) AS m (budget_id, before, after);
