-- The dead-letter circuit breaker: one row per actor that has ever tripped.
--
-- A bad deploy that makes every message poison would otherwise dead-letter the whole stream.
-- When an actor's dead letters within a window reach the limit, a worker opens its breaker
-- here; every worker process of the fleet reads this row and stops taking that actor's
-- messages, which wait in RabbitMQ. `hookyard dlq breaker reset` closes it. The state lives in
-- PostgreSQL (not in one process) so it holds across the fleet and across restarts.
CREATE TABLE consumer_breakers (
    actor       text COLLATE "C" PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('open', 'closed')),
    opened_at   timestamptz,
    -- Dead letters in the window when it opened, and the window, for the operator.
    dead_letters integer    NOT NULL DEFAULT 0,
    window_seconds double precision NOT NULL DEFAULT 0,
    detail      text,
    -- Dead letters before the last reset no longer count towards the limit.
    reset_at    timestamptz,
    trips       integer     NOT NULL DEFAULT 0
);

-- The trip check counts an actor's recent dead letters.
CREATE INDEX dead_letters_actor_failed_at_idx ON dead_letters (actor, failed_at);
