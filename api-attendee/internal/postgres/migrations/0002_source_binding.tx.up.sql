-- The copy is made from one source: api-conference's database, named by its identity. The
-- first hand-over binds the copy to it; a hand-over from another source is refused until an
-- operator removes the binding (DELETE /internal/source). Zero rows: bound to nothing yet.
CREATE TABLE source_binding (
    one      boolean     PRIMARY KEY DEFAULT true CHECK (one),
    source   text        NOT NULL,
    bound_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Deletes are facts from the source now, never inferred from a list's absences.
ALTER TABLE conference_vos DROP COLUMN inferred_delete;

-- A tombstone of version 0 is a conference the source says it does not know at all: anything
-- the source sends later outranks it.
ALTER TABLE conference_vos DROP CONSTRAINT conference_vos_version_check;
ALTER TABLE conference_vos ADD CONSTRAINT conference_vos_version_check CHECK (version > 0 OR (deleted AND version = 0));
