-- jitform state schema, version 4: verified snapshots for plan reads. A row
-- holds, for the checkpoint event seq (with its hash), the canonical lines of
-- the events the planner's replay needs up to it (CompactForReplay), and
-- prefix_sha256: the SHA-256 of the concatenated SHA-256 digests of the
-- lines of every ledger row 1..seq, in seq order. A plan has the server
-- recompute that digest (no rows cross the network), so an edit of any row
-- before the checkpoint still sends the plan to the full read, which
-- refuses it; then it reads and verifies only the rows after seq.
CREATE TABLE {{schema}}.snapshots (
    seq           bigint      NOT NULL CHECK (seq > 0),
    format        integer     NOT NULL, -- what CompactForReplay keeps; rows of another format are ignored
    hash          text        NOT NULL,
    prefix_sha256 text        NOT NULL,
    events        text        NOT NULL, -- the kept canonical lines, newline-joined
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
