-- Budgets at run time: which row a moment falls in, setting a budget, and reservations.
--
-- Migration 0012 holds the tables; these functions are the only code that moves
-- resource_budgets.reserved_amount, and, with the usage worker's increment, used_amount. The web
-- process (POST /v1/budgets/reservations...), `hookyard budgets` and the scheduler all call them,
-- so there is one implementation of each rule. Every function runs in its caller's transaction
-- with its caller's rights (SECURITY INVOKER): hookyard_writer holds every right they use.
--
-- Periods. A budget is one row per period: UNIQUE (project_id, resource_type, period_start).
-- Bounds are half-open [period_start, period_end) in UTC (contracts/usage.py period_bounds):
-- daily the UTC day, weekly the ISO week from Monday 00:00, monthly the calendar month, total
-- from period_start with no end. A total budget counts all usage: its row starts at the Unix
-- epoch (not at year 1, which a client whose session time zone is west of UTC cannot read back,
-- nor at its creation, which would leave the usage of its first day out of the worker's per-day
-- lookup). Rows of one budget never overlap, and every bound is a UTC midnight: a new row is
-- clipped to the end of the row before it and the start of the row after it, and those are
-- midnights too. Usage falls in the row whose period contains recorded_at, and adds to it by
-- hookyard_usage_share (the rule of contracts/usage.py: its amount when the units are equal, its
-- cost_cad when the budget counts CAD, else nothing).
--
-- The advisory lock of a budget (hookyard_budget_lock_key). Creating a row sums the usage already
-- stored in its period; a worker storing usage adds to the row of the period. Were the two to
-- overlap unserialized, each could miss the other: the sum does not see the worker's
-- uncommitted rows, the worker does not see the uncommitted budget row, and the usage would be
-- counted nowhere. So, per (project_id, resource_type), in transaction-level advisory locks:
--   * a usage writer takes the lock SHARED (pg_advisory_xact_lock_shared) before it calls
--     hookyard_budget_for, and keeps it to its commit; writers never wait for one another;
--   * `hookyard budgets set` (hookyard_set_budget), the one creation that can start counting usage
--     that was stored without a budget row, takes it EXCLUSIVE before it sums, so it waits for
--     every writer in flight and each writer after it sees its row;
--   * hookyard_budget_for opening the next period of an auto_reset budget takes it SHARED. It
--     needs no more: a usage row is stored without a budget row only when hookyard_budget_for
--     found no row and nothing to open one from (no earlier auto_reset row), and such a row
--     appears only through hookyard_set_budget, which waited for those writers to commit; so the
--     opening's sum sees all of them. Every other writer of that period either opened the row
--     itself, or found it: it waits on the row's unique key until the opener commits and then adds
--     its own share. Taking it EXCLUSIVE there would upgrade the SHARED lock its caller holds, and
--     two workers crossing midnight together would deadlock. SHARED still waits for a
--     hookyard_set_budget in flight, so an opening copies the settings it commits.
-- All of it needs READ COMMITTED (PostgreSQL's default): each statement then takes its snapshot
-- after the locks before it were granted. Under REPEATABLE READ the snapshot of the first
-- statement would predate the lock.
--
-- Lock order, the same everywhere so that nothing deadlocks: the advisory lock, then budget rows
-- (FOR UPDATE, in id order when several), then reservation rows.
--
-- Reservations. Work about to spend reserves first; the budget row's lock serializes every change
-- of its reserved_amount, so on a hard budget used_amount + reserved_amount never exceeds
-- allocated_amount through reservations, whatever their concurrency (usage itself is a fact and
-- is always counted, so used_amount alone may pass it). A soft budget grants past its allocation
-- and records by how much in the reservation's overrun. remaining = allocated_amount -
-- used_amount - reserved_amount: negative once usage or a soft overrun passed the allocation.
-- Each change is one call, so one transaction under autocommit:
--   hookyard_reserve               idempotent on (project_id, client id): the first reservation is
--                                  returned again, with the remaining of now;
--   hookyard_commit_reservation    once: the reserved amount is freed, the committed amount becomes
--                                  a resource_usage row (usage_id 'reservation:<uuid>', origin
--                                  'reservation') whose ledger key ('usage', '<project_id>:
--                                  reservation:<uuid>') is claimed in event_keys, so that the usage
--                                  worker can never count it again, and thresholds crossed are
--                                  recorded in budget_alerts; a second commit returns the first;
--   hookyard_release_reservation   once: frees the reserved amount;
--   hookyard_expire_reservations   the scheduler: every held reservation whose TTL ended.
-- A held reservation past its expires_at is expired by whichever call meets it first, so a TTL
-- holds to the instant whatever the scheduler's interval.
--
-- No budget, no reservation: a project without a budget row for the resource type at that moment
-- (none set, or the last period ended without auto_reset) gets outcome 'no_budget'. Reserving is
-- asking a budget; answering yes where none is set would hide a misspelt resource type.

-- The key of a budget's advisory lock: 'Budg' in the high 32 bits keeps these keys apart from
-- every other advisory lock of Hookyard (all constants), the hash of "<project_id>:<resource
-- type>" in the low 32. Two budgets whose hashes collide only share a lock, which is harmless.
CREATE FUNCTION hookyard_budget_lock_key(project_id bigint, resource_type text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (1114989671::bigint << 32) | (hashtext(project_id::text || ':' || resource_type)::bigint & 4294967295);

-- [period_start, period_end) of the period of that kind containing AT (a total period: from the
-- epoch, no end), before any clipping against the budget's other rows.
CREATE FUNCTION hookyard_budget_period_bounds(
    period budget_period, at timestamptz, OUT period_start timestamptz, OUT period_end timestamptz
)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    utc timestamp := at AT TIME ZONE 'UTC';
BEGIN
    CASE period
        WHEN 'daily' THEN
            period_start := date_trunc('day', utc) AT TIME ZONE 'UTC';
            period_end := (date_trunc('day', utc) + interval '1 day') AT TIME ZONE 'UTC';
        WHEN 'weekly' THEN  -- date_trunc's weeks are ISO weeks: they begin on Monday
            period_start := date_trunc('week', utc) AT TIME ZONE 'UTC';
            period_end := (date_trunc('week', utc) + interval '7 days') AT TIME ZONE 'UTC';
        WHEN 'monthly' THEN
            period_start := date_trunc('month', utc) AT TIME ZONE 'UTC';
            period_end := (date_trunc('month', utc) + interval '1 month') AT TIME ZONE 'UTC';
        ELSE
            period_start := timestamptz '1970-01-01 00:00:00+00';
            period_end := NULL;
    END CASE;
END;
$$;

-- What one usage record adds to a budget counted in BUDGET_UNIT (contracts/usage.py): its amount
-- when the units are equal; its cost in CAD (nothing when unknown) when the budget counts CAD;
-- else nothing.
CREATE FUNCTION hookyard_usage_share(budget_unit text, usage_unit text, amount numeric, cost_cad numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN usage_unit = budget_unit THEN amount
            WHEN budget_unit = 'CAD' THEN coalesce(cost_cad, 0)
            ELSE 0 END;

-- The usage already stored in [period_start, period_end) (no end: from period_start on), as a
-- budget counted in UNIT adds it. Through resource_usage_series_idx.
CREATE FUNCTION hookyard_budget_usage(
    project_id bigint, resource_type text, unit text, period_start timestamptz, period_end timestamptz
) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(sum(hookyard_usage_share(hookyard_budget_usage.unit, u.unit, u.amount, u.cost_cad)), 0)
    FROM resource_usage u
    WHERE u.project_id = hookyard_budget_usage.project_id
      AND u.resource_type = hookyard_budget_usage.resource_type
      AND u.recorded_at >= hookyard_budget_usage.period_start
      AND (hookyard_budget_usage.period_end IS NULL OR u.recorded_at < hookyard_budget_usage.period_end);
END;

-- Record in budget_alerts each threshold of the budget row that used_amount going from BEFORE to
-- AFTER crosses (contracts/usage.py crossed_thresholds): t is crossed when before < allocated * t
-- / 100 <= after; on an allocation of 0, every threshold when before <= 0 < after. A threshold
-- already recorded for the row (its period) is not recorded again. Returns the thresholds
-- recorded now, for the caller's metric.
CREATE FUNCTION hookyard_record_budget_alerts(
    budget_id bigint, before numeric, after numeric, at timestamptz DEFAULT now()
) RETURNS SETOF integer
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO budget_alerts (budget_id, project_id, threshold, used_amount, allocated_amount, crossed_at)
    SELECT DISTINCT b.id, b.project_id, t.threshold, hookyard_record_budget_alerts.after,
           b.allocated_amount, hookyard_record_budget_alerts.at
    FROM resource_budgets b
    CROSS JOIN LATERAL unnest(b.thresholds) AS t (threshold)
    WHERE b.id = hookyard_record_budget_alerts.budget_id
      AND hookyard_record_budget_alerts.after > hookyard_record_budget_alerts.before
      AND CASE WHEN b.allocated_amount = 0
               THEN hookyard_record_budget_alerts.before <= 0 AND hookyard_record_budget_alerts.after > 0
               ELSE hookyard_record_budget_alerts.before * 100 < b.allocated_amount * t.threshold
                    AND b.allocated_amount * t.threshold <= hookyard_record_budget_alerts.after * 100
          END
    ON CONFLICT (budget_id, threshold) DO NOTHING
    RETURNING threshold;
END;

-- The id of the budget row of (PROJECT_ID, RESOURCE_TYPE) whose period contains AT; NULL when the
-- project has no budget for that resource then.
--
-- When no row contains AT but the latest row before it has auto_reset (and is not a total budget),
-- the row of AT's period is opened from that row's settings (allocated_amount, unit, enforcement,
-- thresholds, auto_reset), clipped to the rows around it, with used_amount the usage already
-- stored in it and reserved_amount 0, under the budget's advisory lock taken SHARED (see the top of
-- this file); the thresholds that usage reaches are recorded. Two transactions opening the same
-- period make one row (INSERT ... ON CONFLICT DO NOTHING; the second waits for the first and
-- returns its row).
--
-- Usage writers call it holding the SHARED advisory lock already, and add their share to the row
-- returned in the same transaction.
CREATE FUNCTION hookyard_budget_for(project_id bigint, resource_type text, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
    basis resource_budgets;
    bounds record;
    prior_end timestamptz;
    next_start timestamptz;
    opened_start timestamptz;
    opened_end timestamptz;
    summed numeric;
BEGIN
    SELECT b.id INTO found_id FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type
      AND b.period_start <= at AND (b.period_end IS NULL OR at < b.period_end)
    ORDER BY b.period_start DESC LIMIT 1;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;

    SELECT * INTO basis FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start <= at
    ORDER BY b.period_start DESC LIMIT 1;
    IF basis.id IS NULL OR NOT basis.auto_reset OR basis.budget_period = 'total' THEN
        RETURN NULL;
    END IF;

    PERFORM pg_advisory_xact_lock_shared(hookyard_budget_lock_key(project_id, resource_type));
    -- Read again after the lock: a `budgets set` may have committed while it was awaited.
    SELECT b.id INTO found_id FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type
      AND b.period_start <= at AND (b.period_end IS NULL OR at < b.period_end)
    ORDER BY b.period_start DESC LIMIT 1;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    SELECT * INTO basis FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start <= at
    ORDER BY b.period_start DESC LIMIT 1;
    IF basis.id IS NULL OR NOT basis.auto_reset OR basis.budget_period = 'total' THEN
        RETURN NULL;
    END IF;

    SELECT * INTO bounds FROM hookyard_budget_period_bounds(basis.budget_period, at);
    -- No row contains AT, so every row that starts before it also ends by it.
    SELECT max(b.period_end) INTO prior_end FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start <= at;
    SELECT min(b.period_start) INTO next_start FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start > at;
    opened_start := greatest(bounds.period_start, prior_end);
    opened_end := least(bounds.period_end, next_start);
    summed := hookyard_budget_usage(project_id, resource_type, basis.unit, opened_start, opened_end);

    INSERT INTO resource_budgets AS b (project_id, resource_type, budget_period, period_start, period_end,
                                       allocated_amount, used_amount, reserved_amount, unit, auto_reset,
                                       enforcement, thresholds)
    VALUES (project_id, resource_type, basis.budget_period, opened_start, opened_end,
            basis.allocated_amount, summed, 0, basis.unit, basis.auto_reset,
            basis.enforcement, basis.thresholds)
    ON CONFLICT ON CONSTRAINT resource_budgets_project_id_resource_type_period_start_key DO NOTHING
    RETURNING b.id INTO found_id;
    IF found_id IS NOT NULL THEN
        PERFORM hookyard_record_budget_alerts(found_id, 0, summed, at);
        RETURN found_id;
    END IF;
    -- Another transaction opened it first (this one waited for its commit): a new statement sees it.
    SELECT b.id INTO found_id FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type
      AND b.period_start <= at AND (b.period_end IS NULL OR at < b.period_end)
    ORDER BY b.period_start DESC LIMIT 1;
    RETURN found_id;
END;
$$;

-- `hookyard budgets set`: create or change the budget of (PROJECT_ID, RESOURCE_TYPE) from the
-- period containing AT on. A setting given as NULL keeps the stored one; a new budget needs its
-- PERIOD, ALLOCATED and UNIT, and defaults to hard enforcement, thresholds 50, 80, 100 and
-- auto_reset. Under the budget's advisory lock taken EXCLUSIVE:
--   * the row containing AT (the current period) is created, or updated with the settings given;
--     its bounds are the period's of PERIOD, clipped to the rows before and after it. So a change
--     of period applies from the current period on: rows before keep their history, and usage of
--     the current row that falls outside its new bounds (the start of a month turned into a day)
--     stays stored but is no longer in any budget row. Its held reservations stay with it;
--   * its used_amount is the usage stored in those bounds, summed again (exact: every usage
--     writer in flight has committed, see the top of this file); reserved_amount is kept;
--   * rows of later periods (usage dated ahead) take the same settings and their sums too;
--   * the thresholds the period's usage has reached are recorded, each once per row.
-- Later periods are opened from the current row by hookyard_budget_for when auto_reset is on.
-- Raises invalid_parameter_value for a new budget without period, amount or unit, or a negative
-- amount; check_violation when a hard budget would be allocated less than its held reservations
-- hold, or when a total budget would begin before rows of later periods.
CREATE FUNCTION hookyard_set_budget(
    project_id bigint, resource_type text, period budget_period, allocated numeric, unit text,
    enforcement budget_enforcement, thresholds integer[], auto_reset boolean, at timestamptz DEFAULT now()
) RETURNS TABLE (budget_id bigint, created boolean, period_start timestamptz, period_end timestamptz,
                 used_amount numeric, reserved_amount numeric, crossed integer[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    current resource_budgets;
    latest resource_budgets;
    bounds record;
    prior_end timestamptz;
    next_start timestamptz;
    new_start timestamptz;
    new_end timestamptz;
    summed numeric;
    later record;
BEGIN
    IF allocated < 0 THEN
        RAISE EXCEPTION 'a budget''s amount cannot be negative, got %', allocated
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hookyard_budget_lock_key(project_id, resource_type));

    SELECT * INTO current FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type
      AND b.period_start <= at AND (b.period_end IS NULL OR at < b.period_end)
    ORDER BY b.period_start DESC LIMIT 1
    FOR UPDATE;
    -- Settings not given come from the current row, else from the latest one (an ended period).
    latest := current;
    IF current.id IS NULL THEN
        SELECT * INTO latest FROM resource_budgets b
        WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start <= at
        ORDER BY b.period_start DESC LIMIT 1;
    END IF;
    period := coalesce(period, latest.budget_period);
    allocated := coalesce(allocated, latest.allocated_amount);
    unit := coalesce(unit, latest.unit);
    IF period IS NULL OR allocated IS NULL OR unit IS NULL THEN
        RAISE EXCEPTION 'there is no budget of % yet: give its period, amount and unit', resource_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    enforcement := coalesce(enforcement, latest.enforcement, 'hard');
    thresholds := coalesce(thresholds, latest.thresholds, '{50,80,100}');
    auto_reset := coalesce(auto_reset, latest.auto_reset, true);

    SELECT * INTO bounds FROM hookyard_budget_period_bounds(period, at);
    SELECT max(b.period_end) INTO prior_end FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start <= at
      AND b.id IS DISTINCT FROM current.id;
    SELECT min(b.period_start) INTO next_start FROM resource_budgets b
    WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start > at;
    IF bounds.period_end IS NULL AND next_start IS NOT NULL THEN
        RAISE EXCEPTION 'a total budget cannot begin: % has rows of later periods (from %)',
            resource_type, next_start USING ERRCODE = 'check_violation';
    END IF;
    new_start := greatest(bounds.period_start, prior_end);
    new_end := least(bounds.period_end, next_start);
    summed := hookyard_budget_usage(project_id, resource_type, unit, new_start, new_end);

    IF current.id IS NULL THEN
        INSERT INTO resource_budgets AS b (project_id, resource_type, budget_period, period_start, period_end,
                                           allocated_amount, used_amount, unit, auto_reset, enforcement,
                                           thresholds)
        VALUES (project_id, resource_type, period, new_start, new_end, allocated, summed, unit, auto_reset,
                enforcement, thresholds)
        RETURNING b.id INTO budget_id;
        created := true;
        reserved_amount := 0;
    ELSE
        IF enforcement = 'hard' AND current.reserved_amount > allocated THEN
            RAISE EXCEPTION 'held reservations hold % of %; a hard budget cannot be allocated less (release them or let them expire)',
                current.reserved_amount, resource_type USING ERRCODE = 'check_violation';
        END IF;
        UPDATE resource_budgets b
        SET budget_period = period, period_start = new_start, period_end = new_end,
            allocated_amount = allocated, used_amount = summed, unit = unit, auto_reset = auto_reset,
            enforcement = enforcement, thresholds = thresholds
        WHERE b.id = current.id;
        budget_id := current.id;
        created := false;
        reserved_amount := current.reserved_amount;
    END IF;

    FOR later IN
        SELECT b.id, b.period_start AS s, b.period_end AS e FROM resource_budgets b
        WHERE b.project_id = project_id AND b.resource_type = resource_type AND b.period_start > at
        ORDER BY b.id
        FOR UPDATE
    LOOP
        UPDATE resource_budgets b
        SET allocated_amount = allocated, unit = unit, auto_reset = auto_reset, enforcement = enforcement,
            thresholds = thresholds,
            used_amount = hookyard_budget_usage(project_id, resource_type, unit, later.s, later.e)
        WHERE b.id = later.id;
    END LOOP;

    period_start := new_start;
    period_end := new_end;
    used_amount := summed;
    crossed := ARRAY(SELECT hookyard_record_budget_alerts(budget_id, 0, summed, at) ORDER BY 1);
    RETURN NEXT;
END;
$$;

-- Reserve AMOUNT (in the budget's unit) of RESOURCE_TYPE for PROJECT_ID, for TTL from AT. Outcomes:
--   granted          a new held reservation; remaining is what the budget has left after it;
--   existing         the project already reserved with CLIENT_ID: that reservation, whatever its
--                    state, and the remaining of its budget row now; nothing changes;
--   budget_exceeded  a hard budget cannot cover AMOUNT; remaining is what it has left; no row;
--   no_budget        no budget row for the resource at AT (or no project): nothing to reserve from.
-- On a soft budget the part of AMOUNT beyond what remained is the reservation's overrun.
CREATE FUNCTION hookyard_reserve(
    project_id bigint, client_id text, resource_type text, amount numeric,
    ttl interval DEFAULT interval '15 minutes', at timestamptz DEFAULT now()
) RETURNS TABLE (outcome text, reservation_id uuid, state reservation_state, reserved numeric, overrun numeric,
                 expires_at timestamptz, budget_id bigint, enforcement budget_enforcement, remaining numeric)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    earlier budget_reservations;
    budget resource_budgets;
    left_over numeric;
    made uuid;
BEGIN
    IF amount IS NULL OR amount <= 0 THEN
        RAISE EXCEPTION 'a reservation''s amount must be positive, got %', amount USING ERRCODE = 'check_violation';
    END IF;
    IF ttl IS NULL OR ttl <= interval '0' THEN
        RAISE EXCEPTION 'a reservation''s ttl must be positive, got %', ttl USING ERRCODE = 'check_violation';
    END IF;
    IF project_id IS NULL THEN
        outcome := 'no_budget';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT * INTO earlier FROM budget_reservations r
    WHERE r.project_id = project_id AND r.client_id = client_id;
    IF earlier.id IS NULL THEN
        budget_id := hookyard_budget_for(project_id, resource_type, at);
        IF budget_id IS NULL THEN
            outcome := 'no_budget';
            RETURN NEXT;
            RETURN;
        END IF;
        SELECT * INTO budget FROM resource_budgets b WHERE b.id = budget_id FOR UPDATE;
        left_over := budget.allocated_amount - budget.used_amount - budget.reserved_amount;
        enforcement := budget.enforcement;
        IF budget.enforcement = 'hard'
           AND (amount > left_over OR budget.reserved_amount + amount > budget.allocated_amount) THEN
            outcome := 'budget_exceeded';
            remaining := left_over;
            RETURN NEXT;
            RETURN;
        END IF;
        overrun := least(amount, greatest(amount - greatest(left_over, 0), 0));
        INSERT INTO budget_reservations AS r (project_id, budget_id, client_id, resource_type, amount, overrun,
                                              expires_at, created_at)
        VALUES (project_id, budget_id, client_id, resource_type, amount, overrun, at + ttl, at)
        ON CONFLICT ON CONSTRAINT budget_reservations_project_id_client_id_key DO NOTHING
        RETURNING r.id INTO made;
        IF made IS NOT NULL THEN
            UPDATE resource_budgets b SET reserved_amount = b.reserved_amount + amount WHERE b.id = budget_id
            RETURNING b.allocated_amount - b.used_amount - b.reserved_amount INTO remaining;
            outcome := 'granted';
            reservation_id := made;
            state := 'held';
            reserved := amount;
            expires_at := at + ttl;
            RETURN NEXT;
            RETURN;
        END IF;
        -- The same CLIENT_ID was reserved meanwhile, by a transaction this one waited for.
        SELECT * INTO earlier FROM budget_reservations r
        WHERE r.project_id = project_id AND r.client_id = client_id;
    END IF;
    SELECT 'existing', earlier.id, earlier.state, earlier.amount, earlier.overrun, earlier.expires_at,
           b.id, b.enforcement, b.allocated_amount - b.used_amount - b.reserved_amount
    INTO outcome, reservation_id, state, reserved, overrun, expires_at, budget_id, enforcement, remaining
    FROM resource_budgets b WHERE b.id = earlier.budget_id;
    RETURN NEXT;
END;
$$;

-- Expire RESERVATION (locked, with its budget row locked before it) at AT: it frees its amount.
CREATE FUNCTION hookyard_expire_reservation(reservation budget_reservations, at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE budget_reservations r SET state = 'expired', settled_at = at WHERE r.id = reservation.id;
    UPDATE resource_budgets b SET reserved_amount = b.reserved_amount - reservation.amount
    WHERE b.id = reservation.budget_id;
END;
$$;

-- Commit RESERVATION_ID with AMOUNT spent (in the budget's unit), at AT. PROJECT_ID, when given,
-- must be the reservation's (a project key's project); NULL is the operator. Outcomes:
--   committed          the reserved amount is freed and AMOUNT is usage: a resource_usage row
--                      recorded at AT (at the last instant of the reservation's period if that has
--                      ended since: the budget that granted it is the one it counts in), its
--                      ledger key claimed, used_amount moved, crossed thresholds recorded;
--   already_committed  committed before: the first commit's amount; nothing changes;
--   budget_exceeded    AMOUNT is more than was reserved and a hard budget cannot cover the rest;
--                      the reservation stays held;
--   closed             released or expired before: nothing changes;
--   expired            held past its expires_at: expired now (its amount freed), not committed;
--   not_found / forbidden  no such reservation / another project's; nothing changes.
-- A ledger key claimed already (a /v1/usage record sent with the id 'reservation:<uuid>') keeps
-- that record as the usage: the commit then only frees the reservation.
CREATE FUNCTION hookyard_commit_reservation(
    reservation_id uuid, amount numeric, project_id bigint DEFAULT NULL, at timestamptz DEFAULT now()
) RETURNS TABLE (outcome text, reservation_project_id bigint, state reservation_state, committed numeric,
                 overrun numeric, enforcement budget_enforcement, remaining numeric, crossed integer[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    held budget_reservations;
    budget resource_budgets;
    extra numeric;
    left_over numeric;
    added numeric;
    recorded timestamptz;
    claimed boolean;
    before_used numeric;
    after_used numeric;
BEGIN
    IF amount IS NULL OR amount <= 0 THEN
        RAISE EXCEPTION 'a committed amount must be positive, got %', amount USING ERRCODE = 'check_violation';
    END IF;
    SELECT * INTO held FROM budget_reservations r WHERE r.id = reservation_id;
    IF held.id IS NULL THEN
        outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    reservation_project_id := held.project_id;
    IF project_id IS NOT NULL AND held.project_id <> project_id THEN
        outcome := 'forbidden';
        RETURN NEXT;
        RETURN;
    END IF;

    -- A usage writer: the budget's lock SHARED, then its row, then the reservation's.
    PERFORM pg_advisory_xact_lock_shared(hookyard_budget_lock_key(held.project_id, held.resource_type));
    SELECT * INTO budget FROM resource_budgets b WHERE b.id = held.budget_id FOR UPDATE;
    SELECT * INTO held FROM budget_reservations r WHERE r.id = reservation_id FOR UPDATE;
    enforcement := budget.enforcement;
    state := held.state;
    overrun := held.overrun;
    remaining := budget.allocated_amount - budget.used_amount - budget.reserved_amount;

    IF held.state = 'committed' THEN
        outcome := 'already_committed';
        committed := held.committed_amount;
        RETURN NEXT;
        RETURN;
    ELSIF held.state <> 'held' THEN
        outcome := 'closed';
        RETURN NEXT;
        RETURN;
    ELSIF held.expires_at <= at THEN
        PERFORM hookyard_expire_reservation(held, at);
        outcome := 'expired';
        state := 'expired';
        remaining := remaining + held.amount;
        RETURN NEXT;
        RETURN;
    END IF;

    extra := amount - held.amount;
    IF extra > 0 AND budget.enforcement = 'hard' AND extra > remaining THEN
        outcome := 'budget_exceeded';
        RETURN NEXT;
        RETURN;
    END IF;
    IF extra > 0 THEN
        overrun := held.overrun + least(extra, greatest(extra - greatest(remaining, 0), 0));
    END IF;

    recorded := least(greatest(at, budget.period_start),
                      coalesce(budget.period_end - interval '1 microsecond', 'infinity'));
    INSERT INTO event_keys (source, delivery_id, received_at)
    VALUES ('usage', held.project_id::text || ':reservation:' || held.id::text, recorded)
    ON CONFLICT DO NOTHING
    RETURNING true INTO claimed;
    added := 0;
    IF claimed THEN
        INSERT INTO resource_usage AS u (project_id, usage_id, resource_type, amount, unit, currency, cost_cad,
                                         recorded_at, received_at, billing_period, origin, metadata)
        VALUES (held.project_id, 'reservation:' || held.id::text, held.resource_type, amount, budget.unit,
                'CAD', CASE WHEN budget.unit = 'CAD' THEN round(amount, 6) END, recorded, at,
                date_trunc('month', recorded AT TIME ZONE 'UTC')::date, 'reservation',
                jsonb_build_object('reservation_id', held.id, 'client_id', held.client_id))
        RETURNING u.amount INTO added;  -- as stored, after the column's rounding
    END IF;
    UPDATE resource_budgets b
    SET used_amount = b.used_amount + added, reserved_amount = b.reserved_amount - held.amount
    WHERE b.id = budget.id
    RETURNING b.used_amount - added, b.used_amount, b.allocated_amount - b.used_amount - b.reserved_amount
    INTO before_used, after_used, remaining;
    UPDATE budget_reservations r
    SET state = 'committed', committed_amount = amount, overrun = overrun, settled_at = at
    WHERE r.id = held.id;
    crossed := ARRAY(SELECT hookyard_record_budget_alerts(budget.id, before_used, after_used, at) ORDER BY 1);
    outcome := 'committed';
    state := 'committed';
    committed := amount;
    RETURN NEXT;
END;
$$;

-- Release RESERVATION_ID at AT: its amount is freed. PROJECT_ID as for commit. Outcomes:
--   released / already_released   released now / before (nothing changes);
--   expired / already_expired     held past its expires_at, so expired now / expired before: its
--                                 amount is freed either way;
--   closed                        committed before: nothing to free;
--   not_found / forbidden.
CREATE FUNCTION hookyard_release_reservation(
    reservation_id uuid, project_id bigint DEFAULT NULL, at timestamptz DEFAULT now()
) RETURNS TABLE (outcome text, reservation_project_id bigint, state reservation_state, reserved numeric,
                 enforcement budget_enforcement, remaining numeric)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    held budget_reservations;
    budget resource_budgets;
BEGIN
    SELECT * INTO held FROM budget_reservations r WHERE r.id = reservation_id;
    IF held.id IS NULL THEN
        outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    reservation_project_id := held.project_id;
    IF project_id IS NOT NULL AND held.project_id <> project_id THEN
        outcome := 'forbidden';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO budget FROM resource_budgets b WHERE b.id = held.budget_id FOR UPDATE;
    SELECT * INTO held FROM budget_reservations r WHERE r.id = reservation_id FOR UPDATE;
    enforcement := budget.enforcement;
    state := held.state;
    reserved := held.amount;
    remaining := budget.allocated_amount - budget.used_amount - budget.reserved_amount;
    IF held.state = 'held' THEN
        IF held.expires_at <= at THEN
            PERFORM hookyard_expire_reservation(held, at);
            outcome := 'expired';
            state := 'expired';
        ELSE
            UPDATE budget_reservations r SET state = 'released', settled_at = at WHERE r.id = held.id;
            UPDATE resource_budgets b SET reserved_amount = b.reserved_amount - held.amount WHERE b.id = budget.id;
            outcome := 'released';
            state := 'released';
        END IF;
        remaining := remaining + held.amount;
    ELSIF held.state = 'committed' THEN
        outcome := 'closed';
    ELSE
        outcome := 'already_' || held.state::text;
    END IF;
    RETURN NEXT;
END;
$$;

-- The scheduler: expire up to BATCH held reservations whose expires_at is at or before AT, freeing
-- their amounts; returns how many per enforcement. Budget rows are locked first, in id order, then
-- the reservations are re-checked under those locks (a commit or release may have settled one
-- meanwhile). Call again while it returns BATCH in all.
CREATE FUNCTION hookyard_expire_reservations(at timestamptz DEFAULT now(), batch integer DEFAULT 1000)
RETURNS TABLE (enforcement budget_enforcement, expired bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    due uuid[];
BEGIN
    SELECT array_agg(r.id) INTO due
    FROM (SELECT r.id FROM budget_reservations r
          WHERE r.state = 'held' AND r.expires_at <= at
          ORDER BY r.expires_at LIMIT batch) r;
    IF due IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM resource_budgets b
    WHERE b.id IN (SELECT r.budget_id FROM budget_reservations r WHERE r.id = ANY (due))
    ORDER BY b.id
    FOR UPDATE;
    RETURN QUERY
    WITH gone AS (
        UPDATE budget_reservations r SET state = 'expired', settled_at = at
        WHERE r.id = ANY (due) AND r.state = 'held' AND r.expires_at <= at
        RETURNING r.budget_id, r.amount
    ), per_budget AS (
        SELECT g.budget_id, sum(g.amount) AS amount, count(*) AS n FROM gone g GROUP BY g.budget_id
    ), freed AS (
        UPDATE resource_budgets b SET reserved_amount = b.reserved_amount - p.amount
        FROM per_budget p
        WHERE b.id = p.budget_id
        RETURNING b.enforcement, p.n
    )
    SELECT f.enforcement, sum(f.n)::bigint FROM freed f GROUP BY f.enforcement;
END;
$$;

-- Only the fleet's writer (and the owner) call them; the pure ones are harmless to read.
DO $$
DECLARE
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'hookyard_budget_for(bigint, text, timestamptz)',
        'hookyard_set_budget(bigint, text, budget_period, numeric, text, budget_enforcement, integer[], boolean, timestamptz)',
        'hookyard_record_budget_alerts(bigint, numeric, numeric, timestamptz)',
        'hookyard_reserve(bigint, text, text, numeric, interval, timestamptz)',
        'hookyard_expire_reservation(budget_reservations, timestamptz)',
        'hookyard_commit_reservation(uuid, numeric, bigint, timestamptz)',
        'hookyard_release_reservation(uuid, bigint, timestamptz)',
        'hookyard_expire_reservations(timestamptz, integer)'
    ] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO hookyard_writer', fn);
    END LOOP;
    FOREACH fn IN ARRAY ARRAY[
        'hookyard_budget_lock_key(bigint, text)',
        'hookyard_budget_period_bounds(budget_period, timestamptz)',
        'hookyard_usage_share(text, text, numeric, numeric)',
        'hookyard_budget_usage(bigint, text, text, timestamptz, timestamptz)'
    ] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO hookyard_writer, hookyard_reader', fn);
    END LOOP;
END;
$$;
