-- Named queries of tenancy (organizations, projects, keys, links), loaded once by schema.queries
-- with the fleet's. Parameters are psycopg named placeholders. The operator CLI (ops/tenancy.py)
-- runs them; migration 0007 holds the tables.

-- name: org_insert --
-- A new organization; no row when the slug is taken.
INSERT INTO organizations (slug, name)
VALUES (%(slug)s, %(name)s)
ON CONFLICT (slug) DO NOTHING
RETURNING id, slug, name, created_at;

-- name: org_role_function_present --
-- Migration 0008 defines hookyard_create_org_role(text); a database migrated before it has none.
SELECT to_regprocedure('hookyard_create_org_role(text)') IS NOT NULL AS present;

-- name: org_create_role --
-- The organization's NOLOGIN role `hookyard_org_<slug>` (reused when it exists), in the
-- transaction that inserts the organization; the function returns the role's name.
SELECT hookyard_create_org_role(%(slug)s::text)::text AS role;

-- name: org_list --
SELECT o.id, o.slug, o.name, count(p.id) AS projects, o.created_at
FROM organizations o
LEFT JOIN projects p ON p.organization_id = o.id
GROUP BY o.id
ORDER BY o.slug;

-- name: org_find --
SELECT id, slug, name FROM organizations WHERE slug = %(org)s;

-- name: project_find --
-- The organization, and its project of that slug if any: `id` is NULL when only the organization
-- exists, and there is no row when the organization does not.
SELECT o.id AS organization_id, o.slug AS org, p.id, p.slug, p.name, p.status::text AS status,
       p.description, p.git_url, p.last_commit_hash, p.tech_stack, p.dependencies, p.language_stats,
       p.greediness, p.metadata, p.created_at, p.updated_at, p.archived_at
FROM organizations o
LEFT JOIN projects p ON p.organization_id = o.id AND p.slug = %(slug)s
WHERE o.slug = %(org)s;

-- name: project_insert --
-- A new active project, or a `discovered` one (created by an ingest-token report) adopted as
-- active. No row when an adopted-or-not project of that slug exists in any other status.
INSERT INTO projects (organization_id, slug, name)
VALUES (%(organization_id)s, %(slug)s, coalesce(%(name)s::text, %(slug)s::text))
ON CONFLICT (organization_id, slug) DO UPDATE
SET status = 'active', name = coalesce(%(name)s::text, projects.name)
WHERE projects.status = 'discovered'
RETURNING id, slug, name, status::text AS status, (xmax = 0) AS created;

-- name: project_list --
-- Every project (or one organization's), with its live keys and its links counted.
SELECT p.id, o.slug AS org, p.slug, p.name, p.status::text AS status,
       (SELECT count(*) FROM project_keys k WHERE k.project_id = p.id AND k.revoked_at IS NULL)
           AS active_keys,
       (SELECT count(*) FROM project_links l WHERE l.project_id = p.id) AS links,
       p.created_at, p.archived_at
FROM projects p
JOIN organizations o ON o.id = p.organization_id
WHERE %(org)s::text IS NULL OR o.slug = %(org)s::text
ORDER BY o.slug, p.slug;

-- name: project_archive --
-- Archive once; the web processes drop an archived project's keys from their registry.
UPDATE projects
SET status = 'archived', archived_at = now()
WHERE id = %(id)s AND status <> 'archived'
RETURNING archived_at;

-- name: key_insert --
-- Only the key's hash and its first characters are stored; the key itself never reaches the database.
INSERT INTO project_keys (project_id, key_hash, key_prefix, label, scopes)
VALUES (%(project_id)s, %(key_hash)s, %(key_prefix)s, %(label)s, %(scopes)s::text[])
RETURNING id, key_prefix AS prefix, label, scopes, created_at, revoked_at, last_used_at;

-- name: key_list --
-- A project's keys, revoked ones included, never their hashes.
SELECT id, key_prefix AS prefix, label, scopes, created_at, revoked_at, last_used_at
FROM project_keys
WHERE project_id = %(project_id)s
ORDER BY id;

-- name: key_find --
SELECT k.id, k.key_prefix AS prefix, k.revoked_at, o.slug AS org, p.slug AS project
FROM project_keys k
JOIN projects p ON p.id = k.project_id
JOIN organizations o ON o.id = p.organization_id
WHERE k.id = %(id)s;

-- name: key_revoke --
-- Revoke once: no row when the key is unknown or revoked already.
UPDATE project_keys
SET revoked_at = now()
WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id, revoked_at;

-- name: link_insert --
-- Claim a target for a project; no row when the target is linked already (to any project).
INSERT INTO project_links (target, project_id)
VALUES (%(target)s, %(project_id)s)
ON CONFLICT (target) DO NOTHING
RETURNING target;

-- name: link_owner --
-- The project a target is linked to, locked until the transaction decides whether to move it.
SELECT l.project_id, o.slug AS org, p.slug AS project
FROM project_links l
JOIN projects p ON p.id = l.project_id
JOIN organizations o ON o.id = p.organization_id
WHERE l.target = %(target)s
FOR UPDATE OF l;

-- name: link_move --
UPDATE project_links
SET project_id = %(project_id)s, created_at = now()
WHERE target = %(target)s;

-- name: link_delete --
-- Remove a link; returns the project it pointed to, or no row when the target was not linked.
DELETE FROM project_links l
USING projects p, organizations o
WHERE l.target = %(target)s AND p.id = l.project_id AND o.id = p.organization_id
RETURNING o.slug AS org, p.slug AS project;

-- name: link_list --
SELECT target, created_at FROM project_links WHERE project_id = %(project_id)s ORDER BY target;
