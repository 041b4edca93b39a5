DROP FUNCTION location_now(bigint);
