-- The conference context. No schema prefix: the schema comes from search_path, so the same
-- migrations build the service's schema and every test's own.

CREATE TABLE states (
    abbreviation char(2) PRIMARY KEY,
    name         text    NOT NULL UNIQUE
);

CREATE TABLE locations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    city        text        NOT NULL,
    room_count  integer     NOT NULL CHECK (room_count >= 0),
    state       char(2)     NOT NULL REFERENCES states (abbreviation),
    picture_url text        NOT NULL DEFAULT '',
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conferences (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text        NOT NULL,
    starts            timestamptz NOT NULL,
    ends              timestamptz NOT NULL,
    description       text        NOT NULL DEFAULT '',
    max_presentations integer     NOT NULL CHECK (max_presentations >= 0),
    max_attendees     integer     NOT NULL CHECK (max_attendees >= 0),
    -- A location that still has conferences cannot be deleted (409), so no change to a
    -- conference ever happens behind the outbox's back.
    location_id       bigint      NOT NULL REFERENCES locations (id) ON DELETE RESTRICT,
    version           bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created           timestamptz NOT NULL DEFAULT now(),
    updated           timestamptz NOT NULL DEFAULT now(),
    CHECK (ends > starts)
);
CREATE INDEX conferences_location_id ON conferences (location_id);

CREATE TABLE presentations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conference_id   bigint      NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    presenter_name  text        NOT NULL,
    company_name    text        NOT NULL DEFAULT '',
    presenter_email text        NOT NULL,
    title           text        NOT NULL,
    synopsis        text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'SUBMITTED'
                                CHECK (status IN ('SUBMITTED', 'APPROVED', 'REJECTED')),
    created         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX presentations_conference_id ON presentations (conference_id);

-- The transactional outbox: one row per committed change of a conference, written in the same
-- transaction as the change. The relay claims rows with FOR UPDATE SKIP LOCKED and deletes them
-- once Redis has them, so the table holds only what is not yet published.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    conference_id bigint      NOT NULL,
    type          text        NOT NULL
                              CHECK (type IN ('conference.created', 'conference.updated', 'conference.deleted')),
    version       bigint      NOT NULL CHECK (version >= 1),
    -- NULL for deletes; otherwise the JSON of changeevent.Conference.
    payload       jsonb,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((type = 'conference.deleted') = (payload IS NULL))
);

-- The change marker behind the conference list's ETag. Every committed change of a conference
-- adds 1 to one of 16 slots (chosen by conference id, so writers of different conferences rarely
-- wait on the same row), in the change's own transaction. The sum of the slots only ever grows
-- and grows with every commit, so it names a state of the list in O(1) without reading the list.
CREATE TABLE change_marker (
    slot smallint PRIMARY KEY CHECK (slot >= 0 AND slot < 16),
    n    bigint   NOT NULL DEFAULT 0
);
INSERT INTO change_marker (slot) SELECT generate_series(0, 15);
