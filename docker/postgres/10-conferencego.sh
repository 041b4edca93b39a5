#!/bin/sh
# Creates one role per service and the service schemas in $POSTGRES_DB, from conferencego.psql.
#
# The official postgres image runs this once, as the superuser, when it initialises an empty data
# directory (files in /docker-entrypoint-initdb.d; it runs *.sh and *.sql there and ignores the
# .psql file, which is why the SQL has that name). The tests in ../ run it against a database of
# their own. Passwords come from the environment (compose passes them from .env), so none is in
# this repository or in an image. Written to work both executed and sourced, as the image does
# either depending on the file's mode: no exit, no exec, no set -u.
psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
	--username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:?is not set}" \
	-v conference_role="${CONFERENCE_DB_USER:-conference}" \
	-v attendee_role="${ATTENDEE_DB_USER:-attendee}" \
	-v syncer_role="${SYNCER_DB_USER:-syncer}" \
	-v conference_password="${CONFERENCE_DB_PASSWORD:?is not set: copy .env.example to .env}" \
	-v attendee_password="${ATTENDEE_DB_PASSWORD:?is not set: copy .env.example to .env}" \
	-v syncer_password="${SYNCER_DB_PASSWORD:?is not set: copy .env.example to .env}" \
	-v outbox_transport="${OUTBOX_TRANSPORT:-table}" \
	-v outbox_slot="${OUTBOX_SLOT:-conferencego_outbox}" \
	-f "${CONFERENCEGO_INIT_SQL:-/docker-entrypoint-initdb.d/conferencego.psql}"
