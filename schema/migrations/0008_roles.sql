-- Least privilege: the fleet's two roles, one role per organization, and row-level security.
--
-- hookyard_writer  NOLOGIN. Exactly what the fleet does at run time, and no DDL:
--                  `hookyard serve` reads organizations, projects, project_keys (hashes included)
--                  and project_links, LISTENs, and writes project_keys.last_used_at;
--                  `hookyard worker` inserts into events, event_keys, dead_letters and
--                  consumer_breakers and creates `discovered` projects; `hookyard scheduler`
--                  creates and drops month partitions through the two SECURITY DEFINER functions
--                  below; `hookyard dlq` selects, updates and deletes dead letters and resets
--                  breakers; `hookyard preflight` reads schema_migrations. It may not DELETE from
--                  events or event_keys, TRUNCATE, or create, alter or drop anything.
-- hookyard_reader  NOLOGIN. SELECT on every table, view and partition, now and later (default
--                  privileges), and nothing else.
-- hookyard_org_<slug>  NOLOGIN, made by hookyard_create_org_role() when `hookyard orgs create`
--                  runs. SELECT on the project-scoped tables and views only, where row-level
--                  security leaves it its own organization's rows; never a key hash, never a
--                  partition, never event_keys, dead_letters or consumer_breakers.
--
-- Log in as a role granted one of these (docs/operations/least-privilege.md). `hookyard migrate`
-- keeps running as the owner: the migrations are DDL, and these functions are owned by it.
--
-- Partitions. The scheduler runs as the writer, which owns nothing, so it cannot CREATE or DROP a
-- table itself. hookyard_ensure_month_partition (migration 0001) becomes SECURITY DEFINER:
-- partitions are created, and owned, by the migration owner, so the writer never gains rights
-- on one and the owner's default privileges (SELECT for hookyard_reader) apply to each. Retention
-- goes through hookyard_drop_month_partition below, which deletes exactly the dropped month's
-- ledger keys and refuses a partition whose month has not ended: the writer has no DELETE on
-- event_keys or events, so nothing outside retention can be deleted by it. Granting the writer
-- CREATE on the schema instead would let it create, and as owner drop or truncate, anything.
--
-- Row-level security. Rows are an organization's through project_id (organizations through their
-- own slug, projects through organization_id). Two policies on each project-scoped table:
--   hookyard_fleet     FOR ALL TO hookyard_writer, hookyard_reader USING (true): the fleet's roles
--                      see every row; their GRANTs decide what they may do with it. Policies,
--                      not BYPASSRLS, because a role attribute is not inherited by the login roles
--                      granted these roles and only a superuser may give it.
--   hookyard_org_rows  FOR SELECT TO PUBLIC: rows of the organizations whose role the current user
--                      holds (pg_has_role ... 'USAGE'). Every other role sees no row: a NULL
--                      project_id matches no organization, so those events are the fleet's only.
-- The table owner and superusers bypass row security. The planner folds `true OR ...` for the
-- fleet's roles, so their queries carry no filter. For an organization role the membership is
-- one hashed subplan per query over organizations and projects (a few rows), never per event.
-- The seeds' views read events with the caller's rights (security_invoker), else they would
-- read them as their owner, past every policy.
--
-- Exception: `hookyard worker` writes batches with COPY, and PostgreSQL refuses COPY FROM into
-- a table with row security unless the role bypasses it ("COPY FROM not supported with
-- row-level security"). The worker's login role therefore needs BYPASSRLS itself (a superuser
-- creates it so); that adds no right to any table, only skips the USING (true) of hookyard_fleet.
--
-- Partitioned tables: row security applies to queries through the parent. A partition queried
-- directly has none, so organization roles are granted the parent only, never a partition.
--
-- Roles belong to the server, not the database: they are created when missing (a second
-- database on the same server reuses them; concurrent migrations of several databases race on
-- CREATE ROLE, and the loser reuses the winner's role). GRANTs and policies belong to each
-- database, so they always run.
--
-- Adding a later project-scoped table (error_patterns, checks, meters...) takes two lines in its
-- migration:
--   SELECT hookyard_scope_to_projects('error_patterns');                    -- RLS + org roles' SELECT
--   SELECT hookyard_grant_fleet('error_patterns', 'SELECT', 'INSERT', 'UPDATE');  -- writer; reader SELECT
-- and a view over project-scoped tables one: SELECT hookyard_scope_to_projects('project_dashboard');
-- A table that belongs to no project (currency_rates) takes only the second. A materialized view
-- cannot carry row security: give organizations a view over it that filters on project_id.

-- The fleet's roles, once per server.
DO $$
DECLARE
    wanted constant text[][] := ARRAY[
        ['hookyard_writer', 'Hookyard fleet at run time: reads tenancy, writes events and dead letters, no DDL'],
        ['hookyard_reader', 'Hookyard read-only: SELECT on every table and view']
    ];
    i integer;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted[i][1]);
            EXECUTE format('COMMENT ON ROLE %I IS %L', wanted[i][1], wanted[i][2]);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it since we looked
        END;
    END LOOP;
END;
$$;

-- Nobody creates objects in Hookyard's schema but its owner (PostgreSQL 15's default already;
-- a cluster upgraded from 14 still lets PUBLIC create there).
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO hookyard_writer, hookyard_reader', current_schema());
END;
$$;

-- The reader reads everything, including tables, views and partitions created later by the
-- owner (the migrations and the partition function).
DO $$
BEGIN
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO hookyard_reader', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO hookyard_reader',
                   current_schema());
END;
$$;

-- Which tables and views organization roles may read, and the columns they may not.
CREATE TABLE project_scoped_relations (
    relation       regclass PRIMARY KEY,
    hidden_columns text[]   NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE project_scoped_relations IS
    'Tables and views hookyard_org_* roles may SELECT (row-level security leaves them their own '
    'organization''s rows). Filled by hookyard_scope_to_projects(); read by hookyard_create_org_role().';

-- ---------------------------------------------------------------------------------------------
-- Organization membership. SQL-standard bodies are bound to their tables when created, so a
-- caller's search_path (a temporary table named `projects`, say) cannot change what they read.

-- The role of an organization: hookyard_org_<slug>, within PostgreSQL's 63-byte names. Slugs may
-- have 64 characters; one longer than 50 keeps its first 41 and gains `_` and 8 hex digits of
-- its md5 (63 characters, so it never equals the name of a slug of 50 or fewer).
CREATE FUNCTION hookyard_org_role_name(org_slug text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN length(org_slug) <= 50 THEN 'hookyard_org_' || org_slug
            ELSE 'hookyard_org_' || left(org_slug, 41) || '_' || left(md5(org_slug), 8) END;

-- Whether the current user holds the organization's role, with its rights (USAGE: granted,
-- directly or through other roles, and inherited or SET). False when the role does not exist.
CREATE FUNCTION hookyard_org_member(org_slug text) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_roles r
        WHERE r.rolname = hookyard_org_role_name(org_slug)
          AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
    );
END;

-- The organizations, and the projects, whose rows the current user may read as an organization.
CREATE FUNCTION hookyard_org_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT o.id FROM organizations o WHERE hookyard_org_member(o.slug);
END;

CREATE FUNCTION hookyard_org_project_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT p.id FROM projects p JOIN organizations o ON o.id = p.organization_id
    WHERE hookyard_org_member(o.slug);
END;

-- ---------------------------------------------------------------------------------------------
-- Grants for organization roles and the fleet; the recipe's two functions.

-- The advisory lock under which grants to organization roles are made (one at a time per database).
CREATE FUNCTION hookyard_org_grants_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 5219512999830775666;  -- 'HookOrgr' as 8 bytes; any constant no other Hookyard lock uses

-- SELECT on RELATION for ROLE_NAME: the whole relation, or every column but HIDDEN ones (then
-- column by column: run it again after adding a column).
CREATE FUNCTION hookyard_grant_org_select(role_name text, relation regclass, hidden text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    visible text;
BEGIN
    IF cardinality(hidden) = 0 THEN
        EXECUTE format('GRANT SELECT ON %s TO %I', relation, role_name);
        RETURN;
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO visible
    FROM pg_attribute
    WHERE attrelid = relation AND attnum > 0 AND NOT attisdropped AND attname <> ALL (hidden);
    EXECUTE format('REVOKE SELECT ON %s FROM %I', relation, role_name);
    EXECUTE format('GRANT SELECT (%s) ON %s TO %I', visible, relation, role_name);
END;
$$;

-- Make RELATION readable by organization roles, each its own organization's rows only.
-- A table (plain or partitioned) needs a project_id column: row-level security is enabled with
-- the hookyard_fleet and hookyard_org_rows policies. A view is switched to security_invoker so
-- the policies of the tables under it apply to its caller. Existing organization roles get
-- SELECT at once; later ones get it from hookyard_create_org_role. Idempotent.
CREATE FUNCTION hookyard_scope_to_projects(relation regclass, hidden_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    kind "char" := (SELECT relkind FROM pg_class WHERE oid = relation);
    nsp  text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = relation);
    role_name text;
BEGIN
    IF kind IN ('r', 'p') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = relation AND attname = 'project_id'
                       AND NOT attisdropped) THEN
            RAISE EXCEPTION '% has no project_id column', relation
                USING HINT = 'Scope it by hand, as migration 0008 does for organizations and projects.';
        END IF;
        PERFORM hookyard_enable_org_rls(relation,
            format('project_id IN (SELECT %I.hookyard_org_project_ids())', nsp));
    ELSIF kind = 'v' THEN
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', relation);
    ELSIF kind = 'm' THEN
        RAISE EXCEPTION '% is a materialized view, which cannot carry row-level security', relation
            USING HINT = 'Give organizations a view over it that filters on project_id.';
    ELSE
        RAISE EXCEPTION '% is neither a table nor a view', relation;
    END IF;
    PERFORM pg_advisory_xact_lock(hookyard_org_grants_lock());
    INSERT INTO project_scoped_relations (relation, hidden_columns)
    VALUES (relation, hidden_columns)
    ON CONFLICT ON CONSTRAINT project_scoped_relations_pkey DO UPDATE
    SET hidden_columns = excluded.hidden_columns;
    FOR role_name IN
        SELECT r.rolname FROM organizations o
        JOIN pg_roles r ON r.rolname = hookyard_org_role_name(o.slug)
    LOOP
        PERFORM hookyard_grant_org_select(role_name, relation, hidden_columns);
    END LOOP;
END;
$$;

-- Row-level security on RELATION: the fleet's roles see every row, organization roles the rows
-- ORG_ROWS (an SQL condition) lets through. Idempotent.
CREATE FUNCTION hookyard_enable_org_rls(relation regclass, org_rows text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', relation);
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = relation AND polname = 'hookyard_fleet') THEN
        EXECUTE format('CREATE POLICY hookyard_fleet ON %s FOR ALL TO hookyard_writer, hookyard_reader '
                       'USING (true) WITH CHECK (true)', relation);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = relation AND polname = 'hookyard_org_rows') THEN
        EXECUTE format('CREATE POLICY hookyard_org_rows ON %s FOR SELECT TO PUBLIC USING (%s)',
                       relation, org_rows);
    END IF;
END;
$$;

-- The writer's rights on RELATION (each of SELECT, INSERT, UPDATE, DELETE, optionally with a
-- column list: 'UPDATE (last_used_at)'), and SELECT for the reader. On a partitioned table the
-- writer may also read its DEFAULT partition, where the scheduler counts stray rows.
CREATE FUNCTION hookyard_grant_fleet(relation regclass, VARIADIC writer_privileges text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    privilege text;
    default_partition regclass := (SELECT nullif(partdefid, 0)::regclass FROM pg_partitioned_table
                                   WHERE partrelid = relation);
BEGIN
    FOREACH privilege IN ARRAY writer_privileges LOOP
        IF privilege !~ '^(SELECT|INSERT|UPDATE|DELETE)( \([a-z_][a-z0-9_]*(, [a-z_][a-z0-9_]*)*\))?$' THEN
            RAISE EXCEPTION 'not a privilege the writer may hold: %', privilege;
        END IF;
        EXECUTE format('GRANT %s ON %s TO hookyard_writer', privilege, relation);
    END LOOP;
    EXECUTE format('GRANT SELECT ON %s TO hookyard_reader', relation);
    IF default_partition IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON %s TO hookyard_writer, hookyard_reader', default_partition);
    END IF;
END;
$$;

-- The organization's NOLOGIN role (created when missing, reused when it exists: roles belong to
-- the server), with USAGE on the schema and SELECT on every project-scoped table and view of
-- this database. Returns the role's name. `hookyard orgs create` calls it in the transaction
-- that inserts the organization, as the owner: creating a role takes CREATEROLE.
CREATE FUNCTION hookyard_create_org_role(org_slug text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    role_name text;
    scoped record;
BEGIN
    IF org_slug IS NULL OR org_slug !~ '^[a-z0-9][a-z0-9_-]{0,63}$' THEN
        RAISE EXCEPTION 'not an organization slug: %', org_slug
            USING HINT = 'A slug is [a-z0-9][a-z0-9_-]{0,63}.';
    END IF;
    role_name := hookyard_org_role_name(org_slug);
    -- Two transactions granting on the same table at once make the second fail ("tuple
    -- concurrently updated"), so grants to organization roles take turns within a database.
    PERFORM pg_advisory_xact_lock(hookyard_org_grants_lock());
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXECUTE format('COMMENT ON ROLE %I IS %L', role_name,
                           format('Hookyard organization %s: reads its own rows, writes nothing', org_slug));
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another transaction created it since we looked
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), role_name);
    FOR scoped IN
        SELECT s.relation, s.hidden_columns FROM project_scoped_relations s
        JOIN pg_class c ON c.oid = s.relation  -- a relation dropped since is skipped
        ORDER BY s.relation::text
    LOOP
        PERFORM hookyard_grant_org_select(role_name, scoped.relation, scoped.hidden_columns);
    END LOOP;
    RETURN role_name;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Partitions, created and dropped with the owner's rights on behalf of the scheduler.

ALTER FUNCTION hookyard_ensure_month_partition(regclass, text, date)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Drop PARTITION, a month partition whose month has ended, with the event_keys rows of its
-- range: every month-partitioned table keeps its ledger keys there (schema/migrate.py), and
-- retention trims them by the same months, as the scheduler did before. Returns true. Refuses
-- the DEFAULT partition, a table that is no partition, and a partition of the current month or
-- later, whoever calls. Keys older than the range (rows kept in a DEFAULT partition) stay.
CREATE FUNCTION hookyard_drop_month_partition(partition regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent    regclass;
    bound     text;
    nsp       text;
    lo        timestamptz;
    hi        timestamptz;
    month_now timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    SELECT i.inhparent::regclass, pg_get_expr(c.relpartbound, c.oid), n.nspname
    INTO parent, bound, nsp
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.inhrelid = partition AND c.relispartition;
    IF parent IS NULL THEN
        RAISE EXCEPTION '% is not a partition', partition;
    END IF;
    lo := (regexp_match(bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz;
    hi := (regexp_match(bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz;
    IF lo IS NULL OR hi IS NULL THEN
        RAISE EXCEPTION '% is not a range partition (%)', partition, bound;
    END IF;
    IF hi > month_now THEN
        RAISE EXCEPTION 'refusing to drop %: its range ends on %, after this month began', partition, hi
            USING HINT = 'Retention drops only partitions of months that have ended.';
    END IF;
    EXECUTE format('DELETE FROM %I.event_keys WHERE received_at >= $1 AND received_at < $2', nsp)
        USING lo, hi;
    EXECUTE format('DROP TABLE %s', partition);
    RETURN true;
END;
$$;

-- Only the owner and the writer (the scheduler) may call the two; the recipe's functions are
-- the owner's, for migrations.
REVOKE EXECUTE ON FUNCTION hookyard_ensure_month_partition(regclass, text, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hookyard_drop_month_partition(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hookyard_ensure_month_partition(regclass, text, date) TO hookyard_writer;
GRANT EXECUTE ON FUNCTION hookyard_drop_month_partition(regclass) TO hookyard_writer;
REVOKE EXECUTE ON FUNCTION hookyard_grant_org_select(text, regclass, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hookyard_scope_to_projects(regclass, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hookyard_enable_org_rls(regclass, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hookyard_grant_fleet(regclass, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hookyard_create_org_role(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- The fleet's rights, table by table.

SELECT hookyard_grant_fleet('organizations', 'SELECT');
SELECT hookyard_grant_fleet('projects', 'SELECT', 'INSERT');           -- `discovered` projects
SELECT hookyard_grant_fleet('project_keys', 'SELECT', 'UPDATE (last_used_at)');
SELECT hookyard_grant_fleet('project_links', 'SELECT');
SELECT hookyard_grant_fleet('events', 'SELECT', 'INSERT');             -- never DELETE: retention drops
SELECT hookyard_grant_fleet('event_keys', 'SELECT', 'INSERT');         -- never DELETE: see above
SELECT hookyard_grant_fleet('dead_letters', 'SELECT', 'INSERT', 'UPDATE', 'DELETE');  -- dlq purge
SELECT hookyard_grant_fleet('consumer_breakers', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_grant_fleet('schema_migrations', 'SELECT');            -- preflight
SELECT hookyard_grant_fleet('github_events');
SELECT hookyard_grant_fleet('slack_events');
SELECT hookyard_grant_fleet('linear_events');
SELECT hookyard_grant_fleet('deployment_events');
SELECT hookyard_grant_fleet('project_scoped_relations');

-- ---------------------------------------------------------------------------------------------
-- Row-level security on every project-scoped table and view.

-- An organization sees its own row, by slug; projects by organization_id.
SELECT hookyard_enable_org_rls('organizations', 'hookyard_org_member(slug)');
SELECT hookyard_enable_org_rls('projects', 'organization_id IN (SELECT hookyard_org_ids())');
INSERT INTO project_scoped_relations (relation) VALUES ('organizations'), ('projects');

SELECT hookyard_scope_to_projects('project_keys', '{key_hash}');  -- the hashes are the fleet's only
SELECT hookyard_scope_to_projects('project_links');
SELECT hookyard_scope_to_projects('events');
SELECT hookyard_scope_to_projects('github_events');
SELECT hookyard_scope_to_projects('slack_events');
SELECT hookyard_scope_to_projects('linear_events');
SELECT hookyard_scope_to_projects('deployment_events');
