DROP FUNCTION published_position(text);
DROP FUNCTION record_published(text, bigint, bigint);
DROP TABLE relay_position;
