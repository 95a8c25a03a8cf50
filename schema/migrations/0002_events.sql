-- Events from GitHub, Slack, Linear and deployment pipelines, stored exactly once.
--
-- The seeds kept one generic `events` table plus `github_events`, `slack_events`,
-- `linear_events` and `deployment_events` beside it. Hookyard keeps one partitioned table with
-- the per-source fields as nullable columns and exposes the seeds' names as views: one write per
-- event instead of two, and no cross-table consistency to maintain.

-- The delivery ledger. A partitioned table can only enforce uniqueness on keys that include the
-- partition key, and a sender's retry arrives with a new received_at, so (source, delivery_id)
-- is made unique here, in a plain table written in the same statement as `events`.
CREATE TABLE event_keys (
    source      text        NOT NULL,
    delivery_id text        NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
-- Retention deletes the keys of dropped partitions by time.
CREATE INDEX event_keys_received_at_idx ON event_keys (received_at);

CREATE TABLE events (
    source      text        NOT NULL CHECK (source IN ('github', 'slack', 'linear', 'deployment')),
    delivery_id text        NOT NULL,
    received_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    event_type  text        NOT NULL,
    action      text,
    -- Per-source fields lifted out of the payload by the producer (see contracts/events.py).
    repository  text,  -- github: repository.full_name
    actor       text,  -- github sender.login, slack user, linear actor id
    team        text,  -- slack team_id, linear team id
    channel     text,  -- slack channel
    entity_type text,  -- linear: Issue, Comment, Project...
    entity_id   text,  -- linear: data.id
    project     text,  -- deployment
    service     text,  -- deployment
    environment text,  -- deployment
    version     text,  -- deployment
    status      text,  -- deployment
    payload     jsonb       NOT NULL,
    PRIMARY KEY (source, delivery_id, received_at)
) PARTITION BY RANGE (received_at);

-- pglz compression of TOASTed payloads costs several times lz4's CPU on every insert; use lz4
-- where the server was built with it (Debian's and the official images are).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
               AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END;
$$;

CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_type_idx ON events (source, event_type, received_at);
CREATE INDEX events_github_repository_idx ON events (repository, received_at) WHERE source = 'github';
CREATE INDEX events_slack_channel_idx ON events (team, channel, received_at) WHERE source = 'slack';
CREATE INDEX events_linear_entity_idx ON events (entity_type, entity_id) WHERE source = 'linear';
CREATE INDEX events_linear_team_idx ON events (team, received_at) WHERE source = 'linear';
CREATE INDEX events_deployment_service_idx ON events (service, environment, received_at)
    WHERE source = 'deployment';
CREATE INDEX events_actor_idx ON events (actor, received_at) WHERE actor IS NOT NULL;

CREATE VIEW github_events AS
    SELECT delivery_id, event_type, action, repository, actor AS sender, received_at, stored_at, payload
    FROM events WHERE source = 'github';

CREATE VIEW slack_events AS
    SELECT delivery_id, event_type, action, team AS team_id, channel AS channel_id, actor AS user_id,
           received_at, stored_at, payload
    FROM events WHERE source = 'slack';

CREATE VIEW linear_events AS
    SELECT delivery_id, event_type, action, entity_type, entity_id, team AS team_id, actor AS actor_id,
           received_at, stored_at, payload
    FROM events WHERE source = 'linear';

CREATE VIEW deployment_events AS
    SELECT delivery_id, project, service, environment, version, status, received_at, stored_at, payload
    FROM events WHERE source = 'deployment';
