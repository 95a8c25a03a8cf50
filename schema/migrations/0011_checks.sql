-- Heartbeats and checks, the way Healthchecks.io tracks cron jobs, plus service instances.
--
-- Seed 000 keeps `runtime_status` (process, pid, port, CPU, memory, last heartbeat) and a time
-- series in `project_metrics`. A check is something expected to report on time; a subject is
-- one thing reporting for it: the check itself for pings (subject ''), or one instance
-- (`host:pid:port`) of a service sending /v1/heartbeats. Status lives per subject.
--
-- The worker applies reports in order (contracts/checks.py) and sets `alarm_at`: the next moment
-- the status could change with nothing arriving. The scheduler's sweep reads only the subjects
-- whose alarm has passed, through a partial index on alarm_at, so sweeping 100,000 quiet
-- subjects touches none of them.

CREATE TYPE check_kind AS ENUM ('simple', 'cron');
CREATE TYPE subject_status AS ENUM ('new', 'up', 'grace', 'down', 'paused');

CREATE TABLE checks (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint      NOT NULL REFERENCES projects (id),
    slug        text COLLATE "C" NOT NULL CHECK (slug ~ '^[a-z0-9_-]{1,100}$'),
    uuid        uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    name        text,
    kind        check_kind  NOT NULL DEFAULT 'simple',
    -- simple: a report is due `period` after the last one; cron: at the schedule's next time.
    period      interval    CHECK (period >= interval '1 second'),
    schedule    text,
    tz          text        NOT NULL DEFAULT 'UTC',
    grace       interval    NOT NULL DEFAULT interval '1 hour' CHECK (grace >= interval '1 second'),
    paused      boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, slug),
    CHECK ((kind = 'simple' AND period IS NOT NULL AND schedule IS NULL)
        OR (kind = 'cron' AND schedule IS NOT NULL AND period IS NULL))
);
CREATE TRIGGER checks_updated_at BEFORE UPDATE ON checks
    FOR EACH ROW EXECUTE FUNCTION hookyard_touch_updated_at();
-- The web processes keep check uuids and slugs in memory, like keys (migration 0007).
CREATE TRIGGER checks_notify AFTER INSERT OR DELETE OR UPDATE OF project_id, slug, uuid ON checks
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();

CREATE TABLE runtime_status (
    id                bigint         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id        bigint         NOT NULL REFERENCES projects (id),
    check_id          bigint         NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    -- '' for a check's pings; 'host:pid:port' for an instance of a service.
    subject           text COLLATE "C" NOT NULL DEFAULT '',
    process_name      text,
    host              text,
    pid               integer,
    port              integer,
    status            subject_status NOT NULL DEFAULT 'new',
    running           boolean        NOT NULL DEFAULT false,
    run_started_at    timestamptz,
    run_id            text,
    cpu_usage         double precision,
    -- Bytes, as seed 000 has it (heartbeats send memory_mb).
    memory_usage      bigint,
    last_heartbeat_at timestamptz,
    last_duration     interval,
    due_at            timestamptz,
    alarm_at          timestamptz,
    updated_at        timestamptz    NOT NULL DEFAULT now(),
    UNIQUE (check_id, subject)
);
CREATE INDEX runtime_status_alarm_idx ON runtime_status (alarm_at) WHERE alarm_at IS NOT NULL;
CREATE INDEX runtime_status_project_idx ON runtime_status (project_id, status);

CREATE TABLE status_flips (
    id          bigint         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint         NOT NULL,
    check_id    bigint         NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    subject     text COLLATE "C" NOT NULL,
    from_status subject_status NOT NULL,
    to_status   subject_status NOT NULL,
    at          timestamptz    NOT NULL,
    cause       text           NOT NULL,
    recorded_at timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX status_flips_check_idx ON status_flips (check_id, at DESC);

-- Every ping, with the job's output (up to 10,000 bytes), by month.
CREATE TABLE check_pings (
    project_id  bigint      NOT NULL,
    check_id    bigint      NOT NULL,
    subject     text COLLATE "C" NOT NULL,
    report_id   text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    at          timestamptz NOT NULL,
    signal      text        NOT NULL,
    exit_status smallint,
    rid         text,
    body        text,
    origin      text        NOT NULL,
    PRIMARY KEY (project_id, report_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE check_pings_default PARTITION OF check_pings DEFAULT;
CREATE INDEX check_pings_check_idx ON check_pings (check_id, received_at DESC);

-- Seed 000's time series: CPU and memory of heartbeats, their `metrics`, and run durations.
CREATE TABLE project_metrics (
    project_id  bigint           NOT NULL,
    metric_type text             NOT NULL,
    name        text             NOT NULL,
    value       double precision NOT NULL,
    unit        text,
    recorded_at timestamptz      NOT NULL,
    check_id    bigint,
    subject     text COLLATE "C",
    metadata    jsonb            NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (recorded_at);
CREATE TABLE project_metrics_default PARTITION OF project_metrics DEFAULT;
CREATE INDEX project_metrics_series_idx ON project_metrics (project_id, metric_type, name, recorded_at DESC);

-- Seed 000's dashboard: per project its subjects by status, latest CPU and memory, last
-- deployment, open error patterns.
CREATE VIEW project_dashboard WITH (security_invoker = true) AS
SELECT p.id AS project_id,
       p.slug AS project,
       p.status::text AS project_status,
       coalesce(s.subjects, 0) AS subjects,
       coalesce(s.up, 0) AS up,
       coalesce(s.grace, 0) AS grace,
       coalesce(s.down, 0) AS down,
       coalesce(s.paused, 0) AS paused,
       coalesce(s.new, 0) AS new,
       s.last_heartbeat_at,
       s.cpu_usage AS latest_cpu_usage,
       s.memory_usage AS latest_memory_usage,
       d.version AS last_deployment_version,
       d.status AS last_deployment_status,
       d.received_at AS last_deployment_at,
       coalesce(e.open_patterns, 0) AS open_error_patterns
FROM projects p
LEFT JOIN LATERAL (
    SELECT count(*) AS subjects,
           count(*) FILTER (WHERE r.status = 'up') AS up,
           count(*) FILTER (WHERE r.status = 'grace') AS grace,
           count(*) FILTER (WHERE r.status = 'down') AS down,
           count(*) FILTER (WHERE r.status = 'paused') AS paused,
           count(*) FILTER (WHERE r.status = 'new') AS new,
           max(r.last_heartbeat_at) AS last_heartbeat_at,
           (array_agg(r.cpu_usage ORDER BY r.last_heartbeat_at DESC NULLS LAST))[1] AS cpu_usage,
           (array_agg(r.memory_usage ORDER BY r.last_heartbeat_at DESC NULLS LAST))[1] AS memory_usage
    FROM runtime_status r WHERE r.project_id = p.id
) s ON true
LEFT JOIN LATERAL (
    SELECT e.version, e.status, e.received_at FROM events e
    WHERE e.source = 'deployment' AND e.project_id = p.id
    ORDER BY e.received_at DESC LIMIT 1
) d ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS open_patterns FROM error_patterns ep
    WHERE ep.project_id = p.id AND ep.status = 'unresolved'
) e ON true;

SELECT hookyard_scope_to_projects('checks');
SELECT hookyard_grant_fleet('checks', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_scope_to_projects('runtime_status');
SELECT hookyard_grant_fleet('runtime_status', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_scope_to_projects('status_flips');
SELECT hookyard_grant_fleet('status_flips', 'SELECT', 'INSERT');
SELECT hookyard_scope_to_projects('check_pings');
SELECT hookyard_grant_fleet('check_pings', 'SELECT', 'INSERT');
SELECT hookyard_scope_to_projects('project_metrics');
SELECT hookyard_grant_fleet('project_metrics', 'SELECT', 'INSERT');
SELECT hookyard_scope_to_projects('project_dashboard');
SELECT hookyard_grant_fleet('project_dashboard');
