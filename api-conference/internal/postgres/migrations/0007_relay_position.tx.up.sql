-- The newest stream entry the relay has published, per stream: Redis may come back holding
-- less than it acknowledged (a restore from an older snapshot, appendfsync everysec after a
-- crash, a failover to a replica that lagged). The relay records the position in the
-- transaction that deletes the outbox rows it published, so the record is never ahead of what
-- Redis accepted; a stream found behind it has lost entries, and the copy is reconciled.
CREATE TABLE relay_position (
    stream  text        PRIMARY KEY,
    -- A stream entry ID "ms-seq", as its two numbers, so that positions compare in order.
    ms      bigint      NOT NULL,
    seq     bigint      NOT NULL,
    updated timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The relay's role holds no privilege on any table; it records and reads its position
-- through these functions, which run as their owner and can only move a position forward.
CREATE FUNCTION record_published(stream text, ms bigint, seq bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    INSERT INTO relay_position AS p (stream, ms, seq) VALUES (stream, ms, seq)
    ON CONFLICT (stream) DO UPDATE SET ms = excluded.ms, seq = excluded.seq, updated = clock_timestamp()
    WHERE (excluded.ms, excluded.seq) > (p.ms, p.seq)
$$;

CREATE FUNCTION published_position(stream text) RETURNS TABLE (ms bigint, seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT p.ms, p.seq FROM relay_position p WHERE p.stream = published_position.stream
$$;

REVOKE ALL ON FUNCTION record_published(text, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION published_position(text) FROM PUBLIC;

DO $$
DECLARE
    relay text := current_setting('conferencego.outbox_relay_role', true);
BEGIN
    IF coalesce(relay, '') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION record_published(text, bigint, bigint), published_position(text) TO %I', relay);
    END IF;
END
$$;
