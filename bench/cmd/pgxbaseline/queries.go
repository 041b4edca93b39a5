package main

import (
	"conferencego/syncer/changeevent"
)

// The columns bun selects for a conference with its belongs-to location (every column of
// both tables), in the order scanRow reads them.
const (
	conferenceCols = `c.id, c.name, c.starts, c.ends, c.description, c.max_presentations, c.max_attendees, c.location_id, c.version, c.created, c.updated`
	locationCols   = `l.id, l.name, l.city, l.room_count, l.state, l.picture_url, l.created, l.updated`

	selectOne  = `SELECT ` + conferenceCols + `, ` + locationCols + ` FROM conferences c LEFT JOIN locations l ON l.id = c.location_id WHERE c.id = $1`
	selectPage = `SELECT ` + conferenceCols + `, ` + locationCols + ` FROM conferences c LEFT JOIN locations l ON l.id = c.location_id WHERE c.id > $1 ORDER BY c.id LIMIT $2`
	// The list's ETag, as api-conference reads it.
	selectMarker = `SELECT coalesce(sum(n), 0)::bigint FROM change_marker`
)

// payloadSQL builds the outbox payload (changeevent.Conference) of the conference c at
// location l in SQL, so that the write needs no second round trip for the new id. Times are
// written as Go's RFC 3339 with nanoseconds writes them in UTC: trailing zero fractions
// dropped.
const payloadSQL = `jsonb_build_object(
    'id', c.id, 'href', '/api/conferences/' || c.id || '/', 'name', c.name,
    'starts', rtrim(rtrim(to_char(c.starts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
    'ends', rtrim(rtrim(to_char(c.ends AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
    'max_attendees', c.max_attendees,
    'location', jsonb_build_object('name', l.name, 'city', l.city, 'state', l.state))`

// insertOne is a create in one statement: the location's KEY SHARE lock (it cannot be deleted
// before this commits), the insert, the outbox row, the change marker's slot and the NOTIFY,
// returning the row the answer needs. No row back means no such location.
const insertOne = `WITH l AS (
    SELECT id, name, city, room_count, state, picture_url, created, updated FROM locations WHERE id = $7 FOR KEY SHARE
), c AS (
    INSERT INTO conferences (name, starts, ends, description, max_presentations, max_attendees, location_id)
    SELECT $1::text, $2::timestamptz, $3::timestamptz, $4::text, $5::int, $6::int, l.id FROM l
    RETURNING id, name, starts, ends, description, max_presentations, max_attendees, location_id, version, created, updated
), o AS (
    INSERT INTO outbox (conference_id, type, version, payload)
    SELECT c.id, 'conference.created', c.version, ` + payloadSQL + ` FROM c, l
), m AS (
    UPDATE change_marker SET n = n + 1 WHERE slot = (SELECT id % 16 FROM c)
)
SELECT ` + conferenceCols + `, ` + locationCols + `, pg_notify('` + changeevent.NotifyChannel + `', '') IS NULL FROM c, l`

// updateOne is an update in one statement: the fields not given keep their value, the version
// moves by one, and the outbox row, marker and NOTIFY go with it. The foreign key takes the new
// location's KEY SHARE lock; the check constraint holds ends >= starts against the stored
// values. No row back means no such conference.
const updateOne = `WITH c AS (
    UPDATE conferences SET
        name = coalesce($2::text, name), starts = coalesce($3::timestamptz, starts), ends = coalesce($4::timestamptz, ends),
        description = coalesce($5::text, description), max_presentations = coalesce($6::int, max_presentations),
        max_attendees = coalesce($7::int, max_attendees), location_id = coalesce($8::bigint, location_id),
        version = version + 1, updated = now()
    WHERE id = $1
    RETURNING id, name, starts, ends, description, max_presentations, max_attendees, location_id, version, created, updated
), l AS (
    SELECT l.id, l.name, l.city, l.room_count, l.state, l.picture_url, l.created, l.updated FROM locations l JOIN c ON l.id = c.location_id
), o AS (
    INSERT INTO outbox (conference_id, type, version, payload)
    SELECT c.id, 'conference.updated', c.version, ` + payloadSQL + ` FROM c, l
), m AS (
    UPDATE change_marker SET n = n + 1 WHERE slot = (SELECT id % 16 FROM c)
)
SELECT ` + conferenceCols + `, ` + locationCols + `, pg_notify('` + changeevent.NotifyChannel + `', '') IS NULL FROM c, l`
