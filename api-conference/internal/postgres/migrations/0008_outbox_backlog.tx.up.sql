-- How many outbox rows wait to be published, for the syncer's /status and the web page. The
-- relay's role holds no privilege on the outbox (0006), so it counts through this function,
-- which runs as its owner and reveals the count only. The count stops at cap, so a backlog of
-- millions (pull mode keeps OUTBOX_RETENTION of rows) costs at most cap index entries to read.
CREATE FUNCTION outbox_backlog(cap integer) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT cap) AS waiting
$$;

REVOKE ALL ON FUNCTION outbox_backlog(integer) FROM PUBLIC;

DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION outbox_backlog(integer) TO %I', relay);
    END IF;
END
$$;
