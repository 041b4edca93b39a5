DELETE FROM states;
