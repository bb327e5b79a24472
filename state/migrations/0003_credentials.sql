-- jitform state schema, version 3: the account passwords jitform delivers to
-- grant principals (account rotate_password). One row per grant; the
-- ciphertext is age-encrypted to the principal's SSH key before it reaches
-- the database, so the table never holds a password in clear. The row is
-- deleted when the window ends (the account is disabled and its password
-- rotated again).
CREATE TABLE {{schema}}.credentials (
    grant_id   text PRIMARY KEY CHECK (grant_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$'),
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
