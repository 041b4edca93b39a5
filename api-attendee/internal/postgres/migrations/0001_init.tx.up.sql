-- The attendee context. No schema prefix: the schema comes from search_path, so the same
-- migrations build the service's schema and every test's own.

-- The local copy of api-conference's conferences. Only Store.ApplyChanges writes it.
CREATE TABLE conference_vos (
    -- The conference's id in api-conference, not one of ours.
    conference_id   bigint      PRIMARY KEY CHECK (conference_id > 0),
    import_href     text        NOT NULL,
    name            text        NOT NULL DEFAULT '',
    -- NULL only on a tombstone of a conference this copy never saw alive.
    starts          timestamptz,
    ends            timestamptz,
    max_attendees   integer     NOT NULL DEFAULT 0 CHECK (max_attendees >= 0),
    version         bigint      NOT NULL CHECK (version > 0),
    deleted         boolean     NOT NULL DEFAULT false,
    -- A tombstone inferred from a conference's absence in a complete snapshot, rather than
    -- from a delete event. It keeps the version it had, and a change of that same version
    -- may lift it: the absence may have been a race with the conference's creation.
    inferred_delete boolean     NOT NULL DEFAULT false,
    event_id        text        NOT NULL DEFAULT '',
    -- When the change happened at the source, and when it was applied here.
    occurred_at     timestamptz NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX conference_vos_live ON conference_vos (conference_id) WHERE NOT deleted;

CREATE TABLE attendees (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- RESTRICT: a conference is never removed from conference_vos, only tombstoned, so
    -- attendees of a deleted conference keep it.
    conference_id bigint      NOT NULL REFERENCES conference_vos (conference_id) ON DELETE RESTRICT,
    email         text        NOT NULL,
    name          text        NOT NULL,
    company_name  text        NOT NULL DEFAULT '',
    created       timestamptz NOT NULL DEFAULT now()
);
-- One registration per e-mail address and conference, whatever its case.
CREATE UNIQUE INDEX attendees_conference_email ON attendees (conference_id, lower(email));

CREATE TABLE badges (
    attendee_id bigint      PRIMARY KEY REFERENCES attendees (id) ON DELETE CASCADE,
    created     timestamptz NOT NULL DEFAULT now()
);
