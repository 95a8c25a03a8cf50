-- Named queries of `hookyard meters` and `hookyard rates` (how CloudEvents become usage, and the
-- exchange rates that price it in CAD), loaded once by schema.queries with the fleet's. Parameters
-- are psycopg named placeholders. The operator CLI (ops/meters.py) runs them; migration 0012 holds
-- the tables. A meter is validated by contracts.usage.Meter.build before it reaches these queries.

-- name: meters_insert --
-- A new meter; no row when the slug is taken. Migration 0012's statement-level trigger notifies
-- the web processes, which reload the meters they apply to CloudEvents.
INSERT INTO meters (slug, event_type, resource_type, unit, aggregation, value_property, group_by)
VALUES (%(slug)s, %(event_type)s, %(resource_type)s, %(unit)s, %(aggregation)s::meter_aggregation,
        %(value_property)s::text, %(group_by)s::jsonb)
ON CONFLICT (slug) DO NOTHING
RETURNING id, slug, event_type, resource_type, unit, aggregation::text AS aggregation, value_property,
          group_by, created_at;

-- name: meters_list --
-- Every meter, by slug.
SELECT m.id, m.slug, m.event_type, m.resource_type, m.unit, m.aggregation::text AS aggregation,
       m.value_property, m.group_by, m.created_at
FROM meters m
ORDER BY m.slug;

-- name: meters_delete --
-- Remove a meter; no row when there is none of that slug. Usage it made stays (a fact), with its
-- meter_id pointing nowhere.
DELETE FROM meters
WHERE slug = %(slug)s
RETURNING id, slug, event_type, resource_type, unit, aggregation::text AS aggregation, value_property,
          group_by, created_at;

-- name: rates_set --
-- The rate of a currency from a date, replacing the rate set for that same date if any. `previous`
-- is the rate it replaced (NULL for a new date), as the statement's snapshot saw it: two operators
-- setting the same date at once each replace a rate, the last one's stays. (No FOR UPDATE here: a
-- row the upsert itself updates is invisible to a locking read of the same statement.)
WITH before AS MATERIALIZED (
    SELECT rate_to_cad FROM currency_rates
    WHERE currency = %(currency)s AND valid_from = %(valid_from)s
)
INSERT INTO currency_rates (currency, valid_from, rate_to_cad)
VALUES (%(currency)s, %(valid_from)s, %(rate)s)
ON CONFLICT (currency, valid_from) DO UPDATE
SET rate_to_cad = excluded.rate_to_cad, created_at = now()
RETURNING currency::text AS currency, valid_from, rate_to_cad, created_at,
          (SELECT rate_to_cad FROM before) AS previous;

-- name: rates_list --
-- Every rate (or one currency's), each with the date its successor takes over (NULL: in force
-- from valid_from on) and whether it is the one in force on `today` (usage is priced by the rate
-- in force on its date: the latest valid_from on or before it).
SELECT currency::text AS currency, valid_from,
       lead(valid_from) OVER (PARTITION BY currency ORDER BY valid_from) AS valid_until,
       rate_to_cad, created_at,
       valid_from <= %(today)s::date
           AND coalesce(lead(valid_from) OVER (PARTITION BY currency ORDER BY valid_from) > %(today)s::date,
                        true) AS in_force
FROM currency_rates
WHERE %(currency)s::text IS NULL OR currency = %(currency)s::text
ORDER BY currency, valid_from;
