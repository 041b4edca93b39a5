DROP TABLE change_marker;
DROP TABLE outbox;
DROP TABLE presentations;
DROP TABLE conferences;
DROP TABLE locations;
DROP TABLE states;
