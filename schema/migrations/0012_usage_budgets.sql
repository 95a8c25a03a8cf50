-- Usage and budgets: meter every unit once, and never let a hard budget be overspent.
--
-- Seed 003 meters `resource_usage` (monthly partitions, cost normalized to CAD) against
-- `resource_budgets` (allocated, used and reserved amounts) with a trigger that refuses usage
-- over budget. Hookyard keeps the intent and moves the guard to where it can hold: usage is a
-- fact and is always stored; what must never overspend is the *reservation* that work takes
-- before it spends, checked under the budget row's lock. Amounts are numeric, never floats.

CREATE TYPE meter_aggregation AS ENUM ('COUNT', 'SUM');
CREATE TYPE budget_period AS ENUM ('daily', 'weekly', 'monthly', 'total');
CREATE TYPE budget_enforcement AS ENUM ('hard', 'soft');
CREATE TYPE reservation_state AS ENUM ('held', 'committed', 'released', 'expired');

-- How CloudEvents of a type become usage of a project.
CREATE TABLE meters (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text COLLATE "C" NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    event_type     text        NOT NULL,
    resource_type  text        NOT NULL,
    unit           text        NOT NULL,
    aggregation    meter_aggregation NOT NULL,
    -- JSONPath of the summed value (SUM only), and group-by name -> JSONPath.
    value_property text,
    group_by       jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((aggregation = 'SUM') = (value_property IS NOT NULL))
);
CREATE INDEX meters_event_type_idx ON meters (event_type);
CREATE TRIGGER meters_notify AFTER INSERT OR DELETE OR UPDATE ON meters
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();

-- Exchange rates to CAD, each in force from its date until the next one of its currency.
CREATE TABLE currency_rates (
    currency    char(3)      NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    valid_from  date         NOT NULL,
    rate_to_cad numeric(20, 10) NOT NULL CHECK (rate_to_cad > 0),
    created_at  timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, valid_from)
);

CREATE TABLE resource_usage (
    project_id       bigint        NOT NULL,
    usage_id         text COLLATE "C" NOT NULL,
    resource_type    text          NOT NULL,
    resource_subtype text,
    amount           numeric(30, 10) NOT NULL,
    unit             text,
    unit_cost        numeric(30, 10),
    currency         char(3)       NOT NULL DEFAULT 'CAD',
    cost_cad         numeric(30, 6),
    machine          text,
    recorded_at      timestamptz   NOT NULL,
    received_at      timestamptz   NOT NULL,
    -- The budget period the usage falls in (the month of recorded_at, as seed 003's billing period).
    billing_period   date          NOT NULL,
    meter_id         bigint,
    origin           text          NOT NULL,
    metadata         jsonb         NOT NULL DEFAULT '{}',
    stored_at        timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, usage_id, recorded_at)
) PARTITION BY RANGE (recorded_at);
CREATE TABLE resource_usage_default PARTITION OF resource_usage DEFAULT;
CREATE INDEX resource_usage_series_idx ON resource_usage (project_id, resource_type, recorded_at);

CREATE TABLE resource_budgets (
    id               bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id       bigint        NOT NULL REFERENCES projects (id),
    resource_type    text          NOT NULL,
    budget_period    budget_period NOT NULL,
    period_start     timestamptz   NOT NULL,
    period_end       timestamptz,
    allocated_amount numeric(30, 10) NOT NULL CHECK (allocated_amount >= 0),
    used_amount      numeric(30, 10) NOT NULL DEFAULT 0,
    reserved_amount  numeric(30, 10) NOT NULL DEFAULT 0 CHECK (reserved_amount >= 0),
    unit             text          NOT NULL,
    auto_reset       boolean       NOT NULL DEFAULT true,
    enforcement      budget_enforcement NOT NULL DEFAULT 'hard',
    thresholds       integer[]     NOT NULL DEFAULT '{50,80,100}',
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    -- One row per budget and period: auto-reset opens the next period's row.
    UNIQUE (project_id, resource_type, period_start),
    CHECK (period_end IS NULL OR period_end > period_start),
    CHECK ((budget_period = 'total') = (period_end IS NULL)),
    -- Seed 003's guard, where it can hold: reservations never take a hard budget past its allocation.
    CHECK (enforcement = 'soft' OR reserved_amount <= allocated_amount)
);
CREATE INDEX resource_budgets_lookup_idx ON resource_budgets (project_id, resource_type, period_start DESC);
CREATE TRIGGER resource_budgets_updated_at BEFORE UPDATE ON resource_budgets
    FOR EACH ROW EXECUTE FUNCTION hookyard_touch_updated_at();

CREATE TABLE budget_reservations (
    id             uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     bigint        NOT NULL,
    budget_id      bigint        NOT NULL REFERENCES resource_budgets (id),
    -- The client's idempotency key: reserving twice with it returns the first reservation.
    client_id      text COLLATE "C" NOT NULL,
    resource_type  text          NOT NULL,
    amount         numeric(30, 10) NOT NULL CHECK (amount > 0),
    committed_amount numeric(30, 10),
    state          reservation_state NOT NULL DEFAULT 'held',
    -- A soft budget grants past its allocation and records by how much.
    overrun        numeric(30, 10) NOT NULL DEFAULT 0,
    expires_at     timestamptz   NOT NULL,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    UNIQUE (project_id, client_id)
);
CREATE INDEX budget_reservations_expiry_idx ON budget_reservations (expires_at) WHERE state = 'held';

CREATE TABLE budget_alerts (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    budget_id    bigint      NOT NULL REFERENCES resource_budgets (id),
    project_id   bigint      NOT NULL,
    threshold    integer     NOT NULL,
    used_amount  numeric(30, 10) NOT NULL,
    allocated_amount numeric(30, 10) NOT NULL,
    crossed_at   timestamptz NOT NULL DEFAULT now(),
    -- Each threshold once per budget period (a budget row is one period).
    UNIQUE (budget_id, threshold)
);

-- Seed 003's summary, per project, day, resource type and unit; refreshed CONCURRENTLY by the
-- scheduler (the unique index allows it), so readers never wait for a refresh.
CREATE MATERIALIZED VIEW project_resource_summary AS
SELECT u.project_id,
       p.slug AS project,
       p.greediness,
       date_trunc('day', u.recorded_at AT TIME ZONE 'UTC')::date AS usage_date,
       u.resource_type,
       coalesce(u.unit, '') AS unit,
       count(*) AS records,
       sum(u.amount) AS total_amount,
       sum(u.cost_cad) AS total_cost_cad
FROM resource_usage u
JOIN projects p ON p.id = u.project_id
GROUP BY u.project_id, p.slug, p.greediness, 4, u.resource_type, coalesce(u.unit, '');
CREATE UNIQUE INDEX project_resource_summary_key
    ON project_resource_summary (project_id, usage_date, resource_type, unit);

SELECT hookyard_grant_fleet('meters', 'SELECT');
SELECT hookyard_grant_fleet('currency_rates', 'SELECT');
SELECT hookyard_scope_to_projects('resource_usage');
SELECT hookyard_grant_fleet('resource_usage', 'SELECT', 'INSERT');
SELECT hookyard_scope_to_projects('resource_budgets');
SELECT hookyard_grant_fleet('resource_budgets', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_scope_to_projects('budget_reservations');
SELECT hookyard_grant_fleet('budget_reservations', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_scope_to_projects('budget_alerts');
SELECT hookyard_grant_fleet('budget_alerts', 'SELECT', 'INSERT');

-- The materialized view is the owner's; the scheduler, running as the writer, refreshes it with
-- the owner's rights. Row-level security cannot apply to a materialized view, so organization
-- roles do not get it (they read resource_usage itself); the fleet's roles do.
CREATE FUNCTION hookyard_refresh_resource_summary() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog, pg_temp AS $$
    REFRESH MATERIALIZED VIEW CONCURRENTLY project_resource_summary;
$$;
REVOKE EXECUTE ON FUNCTION hookyard_refresh_resource_summary() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hookyard_refresh_resource_summary() TO hookyard_writer;
GRANT SELECT ON project_resource_summary TO hookyard_writer, hookyard_reader;
