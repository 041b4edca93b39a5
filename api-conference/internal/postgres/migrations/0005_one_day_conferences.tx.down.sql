ALTER TABLE conferences DROP CONSTRAINT conferences_check;
ALTER TABLE conferences ADD CONSTRAINT conferences_check CHECK (ends > starts);
