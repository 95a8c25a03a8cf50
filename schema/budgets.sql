-- Named queries of budgets and reservations, loaded once by schema.queries with the fleet's.
-- Parameters are psycopg named placeholders. The rules live in migration 0013's functions, so
-- the web process (producers/reservations.py), `hookyard budgets` (ops/budgets.py) and the
-- scheduler (workers/reservations.py) run the same code: these queries only call them and read
-- the tables. Each call is one statement: under autocommit, one transaction.
--
-- `at` is the moment a change happens at: NULL is the database's now(); tests give explicit
-- times to cross period boundaries on a controlled clock.

-- name: budgets_reserve --
-- The project is `project_id`, or else the project named `org`/`slug` (NULL when it does not
-- exist: the outcome is then no_budget).
SELECT outcome, reservation_id, state::text AS state, reserved, overrun, expires_at,
       enforcement::text AS enforcement, remaining
FROM hookyard_reserve(
    project_id => coalesce(
        %(project_id)s::bigint,
        (SELECT p.id FROM projects p JOIN organizations o ON o.id = p.organization_id
         WHERE o.slug = %(org)s::text AND p.slug = %(slug)s::text)),
    client_id => %(client_id)s::text,
    resource_type => %(resource_type)s::text,
    amount => %(amount)s::numeric,
    ttl => make_interval(secs => %(ttl_seconds)s::integer),
    at => coalesce(%(at)s::timestamptz, now()));

-- name: budgets_commit --
-- `project_id` NULL: the operator, who may commit any project's reservation.
SELECT outcome, reservation_project_id AS project_id, state::text AS state, committed, overrun,
       enforcement::text AS enforcement, remaining, crossed
FROM hookyard_commit_reservation(
    reservation_id => %(reservation_id)s::uuid,
    amount => %(amount)s::numeric,
    project_id => %(project_id)s::bigint,
    at => coalesce(%(at)s::timestamptz, now()));

-- name: budgets_release --
SELECT outcome, reservation_project_id AS project_id, state::text AS state, reserved,
       enforcement::text AS enforcement, remaining
FROM hookyard_release_reservation(
    reservation_id => %(reservation_id)s::uuid,
    project_id => %(project_id)s::bigint,
    at => coalesce(%(at)s::timestamptz, now()));

-- name: budgets_expire --
-- One batch; the caller calls again while a batch comes back full.
SELECT enforcement::text AS enforcement, expired
FROM hookyard_expire_reservations(at => coalesce(%(at)s::timestamptz, now()), batch => %(batch)s::integer);

-- name: budgets_set --
-- A setting given as NULL keeps the stored one (migration 0013).
SELECT budget_id, created, period_start, period_end, used_amount, reserved_amount, crossed
FROM hookyard_set_budget(
    project_id => %(project_id)s::bigint,
    resource_type => %(resource_type)s::text,
    period => %(period)s::budget_period,
    allocated => %(allocated)s::numeric,
    unit => %(unit)s::text,
    enforcement => %(enforcement)s::budget_enforcement,
    thresholds => %(thresholds)s::integer[],
    auto_reset => %(auto_reset)s::boolean,
    at => coalesce(%(at)s::timestamptz, now()));

-- name: budgets_list --
-- Each budget's row of the period containing `at`, else its latest row before `at` (an ended
-- period whose next one opens with its first usage or reservation), with its held reservations.
-- `project_id` NULL lists every project's budgets.
SELECT DISTINCT ON (o.slug, p.slug, b.resource_type)
       b.id, o.slug AS org, p.slug AS project, b.resource_type, b.budget_period::text AS period,
       b.period_start, b.period_end, b.allocated_amount, b.used_amount, b.reserved_amount,
       b.allocated_amount - b.used_amount - b.reserved_amount AS remaining, b.unit,
       b.enforcement::text AS enforcement, b.thresholds, b.auto_reset,
       (b.period_end IS NULL OR coalesce(%(at)s::timestamptz, now()) < b.period_end) AS current,
       (SELECT count(*) FROM budget_reservations r WHERE r.budget_id = b.id AND r.state = 'held') AS held
FROM resource_budgets b
JOIN projects p ON p.id = b.project_id
JOIN organizations o ON o.id = p.organization_id
WHERE (%(project_id)s::bigint IS NULL OR b.project_id = %(project_id)s::bigint)
  AND (%(resource_type)s::text IS NULL OR b.resource_type = %(resource_type)s::text)
  AND b.period_start <= coalesce(%(at)s::timestamptz, now())
ORDER BY o.slug, p.slug, b.resource_type, b.period_start DESC;

-- name: budgets_periods --
-- A budget's latest periods, newest first, with the thresholds each crossed.
SELECT b.id, b.budget_period::text AS period, b.period_start, b.period_end, b.allocated_amount,
       b.used_amount, b.reserved_amount, b.allocated_amount - b.used_amount - b.reserved_amount AS remaining,
       b.unit, b.enforcement::text AS enforcement,
       coalesce((SELECT array_agg(a.threshold ORDER BY a.threshold) FROM budget_alerts a WHERE a.budget_id = b.id),
                '{}') AS alerts
FROM resource_budgets b
WHERE b.project_id = %(project_id)s AND b.resource_type = %(resource_type)s
ORDER BY b.period_start DESC
LIMIT %(limit)s;

-- name: budgets_alerts --
-- The thresholds one budget row (period) crossed, in the order they were.
SELECT threshold, used_amount, allocated_amount, crossed_at
FROM budget_alerts
WHERE budget_id = %(budget_id)s
ORDER BY crossed_at, threshold;

-- name: budgets_held --
-- The held reservations of one budget row, the next to expire first.
SELECT id, client_id, amount, overrun, created_at, expires_at
FROM budget_reservations
WHERE budget_id = %(budget_id)s AND state = 'held'
ORDER BY expires_at, id
LIMIT %(limit)s;
