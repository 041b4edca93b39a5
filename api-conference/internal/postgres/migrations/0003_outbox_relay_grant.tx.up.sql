-- Lets the outbox relay (the syncer) claim and remove outbox rows, and nothing more, when the
-- database names the relay's role in the setting conferencego.outbox_relay_role. The Docker
-- stack's Postgres init sets it (docker/postgres/conferencego.psql), before this table exists,
-- which is why the grant is made here. Where it is unset (a developer's database, the tests)
-- every service connects as one role and this does nothing.
--
-- Claiming is SELECT … FOR UPDATE SKIP LOCKED, and FOR UPDATE needs the UPDATE privilege on at
-- least one column: id is an identity column GENERATED ALWAYS, which cannot be set to a value.
DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('GRANT SELECT, DELETE, UPDATE (id) ON outbox TO %I', relay);
    END IF;
END
$$;
