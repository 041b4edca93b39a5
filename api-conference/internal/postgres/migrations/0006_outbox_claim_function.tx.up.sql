-- The relay claims outbox rows through claim_outbox, and holds no privilege on the table itself.
--
-- Claiming is DELETE … (SELECT … FOR UPDATE SKIP LOCKED), and FOR UPDATE needs the UPDATE
-- privilege on a column of the table. Migration 0003 granted UPDATE (id), thinking an identity
-- column GENERATED ALWAYS cannot be changed; but UPDATE outbox SET id = DEFAULT can, and
-- renumbering rows reorders the events the relay publishes. The function runs as its owner,
-- api-conference's role, and does exactly one thing: it claims and removes the oldest rows.
-- It runs in the caller's transaction, so the delete still commits only after the relay has
-- written the batch to Redis.
CREATE FUNCTION claim_outbox(batch integer)
RETURNS TABLE (id bigint, event_id text, conference_id bigint, type text, version bigint,
               payload jsonb, occurred_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    DELETE FROM outbox
    WHERE outbox.id IN (SELECT o.id FROM outbox o ORDER BY o.id LIMIT batch FOR UPDATE SKIP LOCKED)
    RETURNING outbox.id, outbox.event_id::text, outbox.conference_id, outbox.type, outbox.version,
              outbox.payload, outbox.occurred_at
$$;
REVOKE ALL ON FUNCTION claim_outbox(integer) FROM PUBLIC;

DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('REVOKE ALL ON outbox FROM %I', relay);
        EXECUTE format('GRANT EXECUTE ON FUNCTION claim_outbox(integer) TO %I', relay);
    END IF;
END
$$;
