-- Every accepted event is stored, including bodies jsonb cannot hold.
--
-- JSON may carry "\u0000", which is valid JSON but has no place in jsonb (PostgreSQL text
-- cannot hold NUL). Such an event used to become a dead letter after its 202. Now `payload`
-- holds a jsonb-safe copy (each NUL replaced by U+FFFD, so the document stays queryable),
-- `payload_raw` the exact JSON text received, and `payload_issue` why the two differ. Both are
-- NULL for every other event, so they cost nothing there. Read the exact document with
-- `SELECT coalesce(payload_raw, payload::text) FROM events WHERE ...` and parse it in the
-- client (PostgreSQL's own JSON operators refuse "\u0000", even on the json type).
ALTER TABLE events
    ADD COLUMN payload_raw   text,
    ADD COLUMN payload_issue text,
    ADD CONSTRAINT events_payload_raw_has_issue CHECK ((payload_raw IS NULL) = (payload_issue IS NULL));
