-- Deletes and versions as facts at the source, and the change feed that serves them in commit
-- order. Triggers on conferences keep the log, so that every way a conference changes (the API,
-- a location's cascade, an SQL import, a hand-made UPDATE) is captured, not just the app's.

-- Who this database is. A client that finds it changed is talking to another database and
-- must stop, not conclude that everything it held was deleted.
CREATE TABLE source_identity (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO source_identity DEFAULT VALUES;

-- The compacted change log: one row per conference ever known (within the tombstone
-- retention), at its newest version, stamped with the transaction that last changed it. A
-- deleted conference's row is its tombstone: id, final version, deleted_at = changed_at.
CREATE TABLE conference_log (
    conference_id bigint      PRIMARY KEY,
    version       bigint      NOT NULL,
    deleted       boolean     NOT NULL,
    xid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- The feed reads (xid, conference_id) ranges; the pruner looks for old tombstones.
CREATE INDEX conference_log_xid ON conference_log (xid, conference_id);
CREATE INDEX conference_log_tombstones ON conference_log (changed_at) WHERE deleted;

-- The newest xid of any tombstone pruned: a feed cursor at or behind it may have missed a
-- delete, so it is answered 410 Gone.
CREATE TABLE log_horizon (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    pruned_xid xid8        NOT NULL DEFAULT '0',
    pruned_at  timestamptz
);
INSERT INTO log_horizon DEFAULT VALUES;

-- What is there now, and the deletes the outbox still remembers.
INSERT INTO conference_log (conference_id, version, deleted, changed_at)
SELECT id, version, false, updated FROM conferences;
INSERT INTO conference_log (conference_id, version, deleted, changed_at)
SELECT DISTINCT ON (o.conference_id) o.conference_id, o.version, true, o.occurred_at
FROM outbox o
WHERE o.type = 'conference.deleted' AND NOT EXISTS (SELECT 1 FROM conferences c WHERE c.id = o.conference_id)
ORDER BY o.conference_id, o.version DESC
ON CONFLICT (conference_id) DO NOTHING;

-- A conference created again under an id that has a tombstone (INSERT … OVERRIDING SYSTEM
-- VALUE) continues from the tombstone's version, so the delete cannot outrank it downstream.
CREATE FUNCTION conference_log_before_insert() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
DECLARE
    tomb bigint;
BEGIN
    SELECT version INTO tomb FROM conference_log WHERE conference_id = NEW.id AND deleted;
    IF FOUND THEN
        NEW.version := greatest(NEW.version, tomb + 1);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER conference_log_before_insert BEFORE INSERT ON conferences
    FOR EACH ROW EXECUTE FUNCTION conference_log_before_insert();

-- An SQL UPDATE cannot change what a conference is without a new version, nor take its version
-- back. The app's own "version = version + 1" already moves it, so it is not bumped twice.
-- The id is how every other service knows a conference, so it cannot change.
CREATE FUNCTION conference_log_before_update() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'conference % cannot change its id', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.name, NEW.starts, NEW.ends, NEW.description, NEW.max_presentations, NEW.max_attendees, NEW.location_id)
       IS DISTINCT FROM
       (OLD.name, OLD.starts, OLD.ends, OLD.description, OLD.max_presentations, OLD.max_attendees, OLD.location_id)
       AND NEW.version <= OLD.version THEN
        NEW.version := OLD.version + 1;
    ELSIF NEW.version < OLD.version THEN
        NEW.version := OLD.version;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER conference_log_before_update BEFORE UPDATE ON conferences
    FOR EACH ROW EXECUTE FUNCTION conference_log_before_update();

-- The log itself: one INSERT … SELECT per statement, however many rows it changed.
CREATE FUNCTION conference_log_inserted() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO conference_log AS l (conference_id, version, deleted, xid, changed_at)
    SELECT n.id, n.version, false, pg_current_xact_id(), clock_timestamp() FROM new_rows n
    ON CONFLICT (conference_id) DO UPDATE
        SET version = EXCLUDED.version, deleted = false, xid = EXCLUDED.xid, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER conference_log_inserted AFTER INSERT ON conferences
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conference_log_inserted();

-- Only rows whose version moved: an UPDATE that changed nothing is not a change.
CREATE FUNCTION conference_log_updated() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO conference_log AS l (conference_id, version, deleted, xid, changed_at)
    SELECT n.id, n.version, false, pg_current_xact_id(), clock_timestamp()
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.version <> o.version
    ON CONFLICT (conference_id) DO UPDATE
        SET version = EXCLUDED.version, deleted = false, xid = EXCLUDED.xid, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER conference_log_updated AFTER UPDATE ON conferences
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conference_log_updated();

-- A delete carries the next version, as the app's delete event does.
CREATE FUNCTION conference_log_deleted() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO conference_log AS l (conference_id, version, deleted, xid, changed_at)
    SELECT o.id, o.version + 1, true, pg_current_xact_id(), clock_timestamp() FROM old_rows o
    ON CONFLICT (conference_id) DO UPDATE
        SET version = EXCLUDED.version, deleted = true, xid = EXCLUDED.xid, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER conference_log_deleted AFTER DELETE ON conferences
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION conference_log_deleted();

-- TRUNCATE fires no DELETE trigger; every live conference becomes a tombstone all the same.
CREATE FUNCTION conference_log_truncated() RETURNS trigger LANGUAGE plpgsql
    -- Bound to the schema it was made in, so that SQL from any session (an import, a fix by hand)
    -- that writes conferences finds the log.
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE conference_log
    SET version = version + 1, deleted = true, xid = pg_current_xact_id(), changed_at = clock_timestamp()
    WHERE NOT deleted;
    RETURN NULL;
END
$$;
CREATE TRIGGER conference_log_truncated AFTER TRUNCATE ON conferences
    FOR EACH STATEMENT EXECUTE FUNCTION conference_log_truncated();
