-- Error reports grouped into patterns, the way Sentry groups issues.
--
-- Seed 000 keeps `error_patterns` keyed by a SHA-256 of the normalized error with occurrence
-- counts, severity, resolution and auto_fixable. Every report is also kept, once, in
-- `error_occurrences` (monthly partitions on received_at, like `events`): its ledger key
-- `("error", "<project id>:<event id>")` in event_keys makes it unique across partitions, so a
-- redelivered report is never counted twice.
--
-- An occurrence names its pattern by (project_id, pattern_hash), not by the pattern's id: the
-- worker writes occurrences first and upserts the patterns last, so a hot pattern's row is
-- locked only from its upsert to the commit, never while the occurrences are copied.

CREATE TYPE error_pattern_status AS ENUM ('unresolved', 'resolved', 'ignored');

CREATE TABLE error_patterns (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id         bigint      NOT NULL REFERENCES projects (id),
    pattern_hash       text COLLATE "C" NOT NULL CHECK (pattern_hash ~ '^[0-9a-f]{64}$'),
    -- fingerprint, exception_frames, exception_message or message: which rule grouped it.
    grouping           text        NOT NULL,
    components         jsonb       NOT NULL,
    exception_type     text,
    title              text        NOT NULL,
    sample_message     text,
    level              text,
    severity           text        NOT NULL,
    occurrence_count   bigint      NOT NULL CHECK (occurrence_count >= 0),
    first_seen_at      timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    status             error_pattern_status NOT NULL DEFAULT 'unresolved',
    resolved_at        timestamptz,
    regressed_at       timestamptz,
    regression_count   integer     NOT NULL DEFAULT 0,
    resolution         text,
    auto_fixable       boolean     NOT NULL DEFAULT false,
    -- An ignore with a limit: ignored until this time, or until occurrence_count reaches this.
    ignored_until      timestamptz,
    ignored_until_count bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, pattern_hash)
);
CREATE INDEX error_patterns_status_idx ON error_patterns (project_id, status, last_seen_at DESC);
CREATE TRIGGER error_patterns_updated_at BEFORE UPDATE ON error_patterns
    FOR EACH ROW EXECUTE FUNCTION hookyard_touch_updated_at();

CREATE TABLE error_occurrences (
    project_id     bigint      NOT NULL,
    event_id       text COLLATE "C" NOT NULL,
    received_at    timestamptz NOT NULL,
    occurred_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    pattern_hash   text COLLATE "C" NOT NULL,
    level          text,
    exception_type text,
    message        text,
    release        text,
    environment    text,
    -- sentry (an envelope or /store/) or v1 (/v1/errors).
    origin         text        NOT NULL,
    payload        jsonb       NOT NULL,
    PRIMARY KEY (project_id, event_id, received_at)
) PARTITION BY RANGE (received_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
               AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE error_occurrences ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END;
$$;

CREATE TABLE error_occurrences_default PARTITION OF error_occurrences DEFAULT;
CREATE INDEX error_occurrences_pattern_idx ON error_occurrences (project_id, pattern_hash, received_at DESC);

-- Seed 000's summary: patterns by project and exception type.
CREATE VIEW error_patterns_summary AS
SELECT p.project_id,
       pr.slug AS project,
       coalesce(p.exception_type, '(message)') AS exception_type,
       count(*) AS patterns,
       count(*) FILTER (WHERE p.status = 'unresolved') AS unresolved,
       sum(p.occurrence_count) AS occurrences,
       max(p.last_seen_at) AS last_seen_at,
       max(CASE p.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)
           AS worst_severity_rank,
       count(*) FILTER (WHERE p.auto_fixable) AS auto_fixable
FROM error_patterns p
JOIN projects pr ON pr.id = p.project_id
GROUP BY p.project_id, pr.slug, coalesce(p.exception_type, '(message)');

-- Sentry check-ins are kept as events (source `sentry`) until checks are built.
ALTER TABLE events DROP CONSTRAINT events_source_check;
ALTER TABLE events ADD CONSTRAINT events_source_check
    CHECK (source IN ('github', 'slack', 'linear', 'deployment', 'sentry'));
