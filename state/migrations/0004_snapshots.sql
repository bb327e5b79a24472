-- jitform state schema, version 4: verified snapshots for plan reads. A row
-- holds, for the checkpoint event seq (with its hash), the canonical lines of
-- the events the planner's replay needs up to it (CompactForReplay);
-- prefix_sha256: a running SHA-256 over the lines of every ledger row 1..seq
-- (checked by every full read); and ledger_state: the ledger table's file
-- node and its count of updated and deleted rows (PostgreSQL's statistics)
-- taken before those rows were read and verified. A plan uses the snapshot
-- only while ledger_state is unchanged, so a row edited or deleted since
-- (even by a superuser with the triggers disabled) sends the plan to the
-- full read, which refuses it; then it reads and verifies only the rows
-- after seq. See docs/state-postgres.md, "Plan reads", for what holds.
CREATE TABLE {{schema}}.snapshots (
    seq           bigint      NOT NULL CHECK (seq > 0),
    format        integer     NOT NULL, -- what CompactForReplay keeps; rows of another format are ignored
    hash          text        NOT NULL,
    prefix_sha256 text        NOT NULL,
    events        text        NOT NULL, -- the kept canonical lines, newline-joined
    ledger_state  text        NOT NULL, -- the ledger table's file and its UPDATE+DELETE count when the rows were verified
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Not unique: a damaged row never blocks writing a good one at the same seq.
CREATE INDEX snapshots_seq ON {{schema}}.snapshots (seq DESC, created_at DESC);

-- INSERT-only, as the ledger: UPDATE, DELETE and TRUNCATE are refused for
-- every role that is not a superuser, whatever privileges it was granted.
CREATE FUNCTION {{schema}}.snapshots_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) THEN
        RAISE EXCEPTION 'jitform snapshots are insert-only: % refused for role %', TG_OP, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER snapshots_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {{schema}}.snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.snapshots_append_only();
