-- Tenancy: organizations own projects; projects own keys and webhook links; events may belong
-- to a project.
--
-- Seed 000 keys projects by UUID and seed 003 does too; SPEC needs a positive integer id,
-- because a Sentry DSN carries it in its path, so ids are identities. Slugs and key hashes are
-- compared byte-wise (COLLATE "C"): they are identifiers, never sorted for people, and a btree
-- on "C" is cheaper than one on a linguistic collation.

-- updated_at is maintained by the database, as seed 000 asks, so no writer can forget it.
CREATE FUNCTION hookyard_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE organizations (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text COLLATE "C" NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION hookyard_touch_updated_at();

INSERT INTO organizations (slug, name) VALUES ('default', 'Default organization');

-- Seed 000's status set; `discovered` is how a project first seen in a report is created.
CREATE TYPE project_status AS ENUM ('discovered', 'active', 'inactive', 'archived', 'error');

CREATE TABLE projects (
    id               bigint         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint         NOT NULL REFERENCES organizations (id),
    slug             text COLLATE "C" NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name             text           NOT NULL,
    status           project_status NOT NULL DEFAULT 'active',
    description      text,
    -- Seed 000's descriptive fields.
    git_url          text,
    last_commit_hash text CHECK (last_commit_hash ~ '^[0-9a-f]{7,64}$'),
    tech_stack       jsonb          NOT NULL DEFAULT '{}',
    dependencies     jsonb          NOT NULL DEFAULT '{}',
    language_stats   jsonb          NOT NULL DEFAULT '{}',
    -- Seed 003: how eagerly the project may consume resources, 0 to 1.
    greediness       numeric(3, 2)  NOT NULL DEFAULT 0.5 CHECK (greediness BETWEEN 0 AND 1),
    metadata         jsonb          NOT NULL DEFAULT '{}',
    created_at       timestamptz    NOT NULL DEFAULT now(),
    updated_at       timestamptz    NOT NULL DEFAULT now(),
    archived_at      timestamptz,
    UNIQUE (organization_id, slug)
);
CREATE INDEX projects_status_idx ON projects (status);
CREATE TRIGGER projects_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION hookyard_touch_updated_at();

-- A key is shown once; only its SHA-256 is kept. Keys are 32 random letters and digits
-- (190 bits), so a fast hash is enough: there is nothing to brute-force that a slow one
-- would protect.
CREATE TABLE project_keys (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint      NOT NULL REFERENCES projects (id),
    key_hash     text COLLATE "C" NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    -- The key's first characters, so an operator can tell keys apart without the secret.
    key_prefix   text COLLATE "C" NOT NULL,
    label        text,
    scopes       text[]      NOT NULL DEFAULT '{deployments,heartbeats,usage,errors,budgets}'
        CHECK (scopes <@ '{deployments,heartbeats,usage,errors,budgets}' AND cardinality(scopes) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    -- Written in batches by each web process, never once per request.
    last_used_at timestamptz
);
CREATE INDEX project_keys_project_idx ON project_keys (project_id);

-- `github:<owner>/<repo>`, `slack:<team id>`, `linear:<team id>` → the project its events join.
CREATE TABLE project_links (
    target     text COLLATE "C" PRIMARY KEY CHECK (target ~ '^(github:[^/\s]+/[^/\s]+|slack:\S+|linear:\S+)$'),
    project_id bigint      NOT NULL REFERENCES projects (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX project_links_project_idx ON project_links (project_id);

-- Webhooks of a linked source, and deployments, may belong to a project. Adding a nullable
-- column without a default touches no partition.
ALTER TABLE events ADD COLUMN project_id bigint;
CREATE INDEX events_project_idx ON events (project_id, received_at) WHERE project_id IS NOT NULL;

-- Every `hookyard serve` keeps keys, links and project slugs in memory and listens here, so a
-- revocation reaches every process at once; a periodic full reload is the safety net.
CREATE FUNCTION hookyard_notify_tenancy() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hookyard_tenancy', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
-- Not on last_used_at: the web processes' own bookkeeping must not make them all reload.
CREATE TRIGGER project_keys_notify
    AFTER INSERT OR DELETE OR UPDATE OF project_id, key_hash, scopes, revoked_at ON project_keys
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();
CREATE TRIGGER project_links_notify AFTER INSERT OR UPDATE OR DELETE ON project_links
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();
CREATE TRIGGER projects_notify AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();
