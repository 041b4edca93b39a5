DROP FUNCTION outbox_backlog(integer);
