-- A conference held on one day has starts = ends (the original's pages send both as one date).
ALTER TABLE conferences DROP CONSTRAINT conferences_check;
ALTER TABLE conferences ADD CONSTRAINT conferences_check CHECK (ends >= starts);
