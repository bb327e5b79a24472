-- jitform state schema, version 2: every append notifies the channel
-- {{channel}} (the new head's seq as payload), so `jitform run` wakes as soon
-- as a grant is approved instead of at its next scheduled cycle.
CREATE FUNCTION {{schema}}.ledger_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{{channel}}', (SELECT coalesce(max(l.seq), 0)::text FROM {{schema}}.ledger l));
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_notify AFTER INSERT ON {{schema}}.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.ledger_notify();
