DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('GRANT SELECT, DELETE, UPDATE (id) ON outbox TO %I', relay);
    END IF;
END
$$;
DROP FUNCTION claim_outbox(integer);
