// Package e2e holds the end-to-end tests of the whole system: they build the three real
// binaries (api-conference, api-attendee, syncer), start them against a Postgres database and a
// redis-server of each test's own, write through api-conference's public HTTP API only, break
// things (kill -9 of the syncer or of api-attendee, Redis restarted empty or stopped for a
// while, api-conference stopped, transactions committing out of outbox-id order, a poison
// stream entry, two relays and two consumers at once) and check DESIGN section 6: the
// ConferenceVO table converges to the projection of the conference table.
//
// # The projection
//
// The check reads conference.conferences and attendee.conference_vos straight from Postgres and
// polls until they agree, against a deadline:
//
//   - every live conference has a VO row that is not deleted, at the same version, with the same
//     name, starts, ends and max_attendees;
//   - every VO row of a conference that is no longer live is a tombstone (deleted = true);
//   - no VO row names a conference the test never created.
//
// A conference that was created and deleted may be absent from the VO table when the mode
// legitimately never showed it to api-attendee: in pull mode, when it lived between two polls,
// and in push mode after Redis lost events it held (the reconcile only sees live conferences).
// Those tests use the lenient check. Every other push test is strict: each deleted conference
// must be tombstoned, because every one of its events went through the outbox and the stream.
// A conference that did reach api-attendee always ends tombstoned, in every mode: a VO row of
// a conference that is not live must be deleted.
//
// The tests need Postgres at TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, a server where they may create
// databases) and the redis-server binary. Without them they skip with the reason, and fail
// when CI is set. E2E_SEED fixes the seed of the random workload and of the kill moments.
package e2e
