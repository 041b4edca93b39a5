DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('REVOKE ALL ON outbox FROM %I', relay);
    END IF;
END
$$;
