-- Messages (or single events out of a batch message) that can never be stored as they are.
--
-- Kept in PostgreSQL rather than only in a RabbitMQ queue so operators can filter them by
-- queue, actor, reason and age, and so a poison event is recorded in the same transaction that
-- stores its good neighbours: either both happen or neither does.
CREATE TABLE dead_letters (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- One row per failed thing: a message id, or source:delivery_id for one event of a batch.
    dedup_key    text        NOT NULL UNIQUE,
    queue        text        NOT NULL,
    actor        text        NOT NULL,
    message_id   text,
    source       text,
    delivery_id  text,
    reason       text        NOT NULL,  -- stable code: invalid_message, unstorable_event, retries_exhausted...
    detail       text        NOT NULL,  -- one human sentence
    attempts     integer     NOT NULL CHECK (attempts >= 1),
    body         bytea       NOT NULL,  -- the queue message to replay, byte for byte
    failed_at    timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    replay_count integer     NOT NULL DEFAULT 0
);

CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at);
CREATE INDEX dead_letters_queue_reason_idx ON dead_letters (queue, reason, failed_at);
