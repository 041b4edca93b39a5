-- A conference's update reads its location through location_now, in the same statement that
-- writes the conference and its outbox row (writes.go). A statement reads every table as of
-- its start; when the update had to wait for the conference's row (a location rename's
-- cascade held it, then committed), the location as of the start would be the name before the
-- rename, and the newest event would carry it. A VOLATILE function's query takes a snapshot of
-- its own when it runs, after the row is the update's, and so reads what committed before.
CREATE FUNCTION location_now(location_id bigint) RETURNS SETOF locations
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN QUERY SELECT * FROM locations WHERE id = location_id;
END
$$;
