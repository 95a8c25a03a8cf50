-- Migration 0009's tables join the roles and row-level security of 0008 (it was written before
-- 0008's functions existed): organization roles read their own projects' patterns and
-- occurrences, and the fleet's writer gets what the error worker and `hookyard errors` do.
--
-- The worker copies occurrences in and upserts their patterns (INSERT ... ON CONFLICT DO
-- UPDATE); `hookyard errors resolve / ignore / reopen` update a pattern. Nothing deletes either:
-- retention drops occurrence partitions through hookyard_drop_month_partition, and the scheduler
-- counts error_occurrences_default's stray rows (granted with the partitioned table).
SELECT hookyard_scope_to_projects('error_patterns');
SELECT hookyard_grant_fleet('error_patterns', 'SELECT', 'INSERT', 'UPDATE');
SELECT hookyard_scope_to_projects('error_occurrences');
SELECT hookyard_grant_fleet('error_occurrences', 'SELECT', 'INSERT');
SELECT hookyard_scope_to_projects('error_patterns_summary');
SELECT hookyard_grant_fleet('error_patterns_summary');
