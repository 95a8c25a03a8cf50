-- CloudEvents that no meter takes are kept as events of source `cloudevents` (SPEC "Usage and
-- budgets"), so nothing a sender was answered 204 for is dropped.
ALTER TABLE events DROP CONSTRAINT events_source_check;
ALTER TABLE events ADD CONSTRAINT events_source_check
    CHECK (source IN ('github', 'slack', 'linear', 'deployment', 'sentry', 'cloudevents'));

-- The web processes refuse reports naming an organization that does not exist (the worker could
-- not store them), so they keep organization slugs in memory too, fed like keys (0007).
CREATE TRIGGER organizations_notify AFTER INSERT OR DELETE OR UPDATE OF slug ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION hookyard_notify_tenancy();
