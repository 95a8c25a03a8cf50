-- Monthly range partitions, created ahead of time and split out of a DEFAULT partition safely.
--
-- Every time-partitioned table in Hookyard keeps a DEFAULT partition as the safe home for rows
-- outside the partitions that exist (a clock far off, a scheduler that was down for months).
-- PostgreSQL refuses to create a partition whose range already has rows in the DEFAULT
-- partition, so creating one moves those rows first, under a lock that holds back only the
-- inserts that would land in the DEFAULT partition meanwhile.

CREATE FUNCTION hookyard_ensure_month_partition(parent regclass, key_column text, month date)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    start_at  date := date_trunc('month', month)::date;
    -- Bounds are UTC months whatever the session's TimeZone.
    lo        timestamptz := start_at::timestamp AT TIME ZONE 'UTC';
    hi        timestamptz := (start_at + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    base      text := (SELECT relname FROM pg_class WHERE oid = parent);
    nsp       text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.oid = parent);
    part      text := base || '_' || to_char(start_at, 'YYYY_MM');
    dflt      text := base || '_default';
    stray     bigint;
BEGIN
    IF to_regclass(format('%I.%I', nsp, part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF to_regclass(format('%I.%I', nsp, dflt)) IS NOT NULL THEN
        EXECUTE format('LOCK TABLE %I.%I IN EXCLUSIVE MODE', nsp, dflt);
        EXECUTE format('SELECT count(*) FROM %I.%I WHERE %I >= $1 AND %I < $2', nsp, dflt, key_column, key_column)
            INTO stray USING lo, hi;
    ELSE
        stray := 0;
    END IF;
    IF stray = 0 THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       nsp, part, parent, lo, hi);
    ELSE
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                       'INCLUDING STORAGE INCLUDING COMPRESSION)', nsp, part, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I.%I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %I.%I SELECT * FROM moved', nsp, dflt, key_column, key_column, nsp, part)
            USING lo, hi;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, nsp, part, lo, hi);
        RAISE NOTICE 'moved % rows of % from % into %', stray, parent, dflt, part;
    END IF;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION hookyard_ensure_month_partition(regclass, text, date) IS
    'Creates the monthly partition holding MONTH unless it exists, moving its rows out of the '
    'DEFAULT partition first. Returns true when it created one.';

-- Partitions of PARENT whose whole range ends on or before CUTOFF (never the DEFAULT partition).
CREATE FUNCTION hookyard_month_partitions_before(parent regclass, cutoff date)
RETURNS SETOF regclass
LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent
      AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
      AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
          <= (cutoff::timestamp AT TIME ZONE 'UTC')
    ORDER BY 1;
$$;
