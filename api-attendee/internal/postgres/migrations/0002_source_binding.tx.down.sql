ALTER TABLE conference_vos DROP CONSTRAINT conference_vos_version_check;
UPDATE conference_vos SET version = 1 WHERE version = 0;
ALTER TABLE conference_vos ADD CONSTRAINT conference_vos_version_check CHECK (version > 0);
ALTER TABLE conference_vos ADD COLUMN inferred_delete boolean NOT NULL DEFAULT false;
DROP TABLE source_binding;
