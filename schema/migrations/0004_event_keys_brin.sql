-- The ledger's received_at index exists only for retention, which deletes whole months at once.
-- Keys arrive in time order, so a BRIN index serves those range deletes while costing almost
-- nothing per insert, where the btree cost one more index insertion for every event stored.
DROP INDEX event_keys_received_at_idx;
CREATE INDEX event_keys_received_at_brin ON event_keys USING brin (received_at);
