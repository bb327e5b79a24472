-- jitform state schema, version 1: the append-only ledger and the lock holders.
-- {{schema}} is replaced by the (quoted) schema name before this runs.

-- One row per ledger event. line is the event's canonical JSON, exactly the
-- line the local backend writes to .jitform/ledger.jsonl: a ledger pulled
-- from here verifies byte for byte with the local verifier. seq, prev and
-- hash repeat the line's fields so the database can enforce the chain shape.
CREATE TABLE {{schema}}.ledger (
    seq         bigint      PRIMARY KEY CHECK (seq > 0),
    prev        text        NOT NULL,
    hash        text        NOT NULL UNIQUE,
    line        text        NOT NULL,
    batch       text        NOT NULL, -- client-generated id of the Append that wrote the row
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_line_matches CHECK (
        (line::jsonb ->> 'seq')::bigint = seq
        AND line::jsonb ->> 'prev' = prev
        AND line::jsonb ->> 'hash' = hash)
);
CREATE INDEX ledger_batch ON {{schema}}.ledger (batch);

-- Every insert must extend the chain at its head: seq one past the last,
-- prev the last hash. With the primary key on seq, two writers that raced
-- past the append lock cannot fork the chain: one of them fails.
CREATE FUNCTION {{schema}}.ledger_extend_head() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
BEGIN
    SELECT l.seq, l.hash INTO last_seq, last_hash
      FROM {{schema}}.ledger l ORDER BY l.seq DESC LIMIT 1;
    IF last_seq IS NULL THEN
        IF NEW.seq <> 1 OR NEW.prev <> '' THEN
            RAISE EXCEPTION 'jitform ledger: the first event must have seq 1 and an empty prev (got seq %)', NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.seq <> last_seq + 1 OR NEW.prev <> last_hash THEN
        RAISE EXCEPTION 'jitform ledger: event % does not extend the head (seq %): the chain cannot fork', NEW.seq, last_seq
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ledger_extend_head BEFORE INSERT ON {{schema}}.ledger
    FOR EACH ROW EXECUTE FUNCTION {{schema}}.ledger_extend_head();

-- Append-only for real: UPDATE, DELETE and TRUNCATE are refused for every
-- role that is not a superuser, whatever privileges it was granted.
CREATE FUNCTION {{schema}}.ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) THEN
        RAISE EXCEPTION 'jitform ledger is append-only: % refused for role %', TG_OP, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {{schema}}.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.ledger_append_only();

-- Who holds locks. The locks themselves are session-level advisory locks
-- (one per name: the state, a target), freed by PostgreSQL when the
-- holder's session ends (exit, kill -9, lost network); this row, one per
-- holding session, only lets a waiter name the holder. backend_pid ties it
-- to that session; a row left by a dead session is ignored and replaced.
CREATE TABLE {{schema}}.locks (
    backend_pid integer     PRIMARY KEY,
    names       text        NOT NULL,
    operation   text        NOT NULL,
    who         text        NOT NULL,
    pid         integer     NOT NULL,
    since       timestamptz NOT NULL
);
