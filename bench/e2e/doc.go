// Package e2e holds the end-to-end tests of the whole system. They build the three real
// binaries (api-conference, api-attendee, syncer) once per test binary, start them through
// conferencego/bench/stack against a Postgres database and a redis-server of each test's own,
// with stream and group names of its own, write through api-conference's public HTTP API only,
// break things, and check what the system promises: api-attendee's copy of the conferences,
// the ConferenceVO table, converges to the projection of the conference table (below), however
// the processes, Redis or the database fail in between.
//
// In both modes (e2e_test.go): creates, updates and deletes propagate (the time taken is logged,
// never asserted); kill -9 of the syncer, and of api-attendee, at random moments of a burst of
// 500 writes; kill -9 of api-conference; every database connection terminated; deletes right
// after a change. Push only (push_test.go): Redis restarted empty with
// unread events in the stream; Redis down for ten seconds while writes go on; outbox rows
// committed in reverse id order; two relays and two consumers; poison entries dead-lettered;
// a consumer down while the stream trims entries it never read; the relay's LISTEN connection
// terminated; Redis back with only part of what it accepted (redisloss_test.go). Pull only
// (pull_test.go): api-conference down for ten seconds; a list of more than one page. What the
// syncer trusts (facts_test.go): api-conference restarted on a wrong database, spoilt state
// listings, a forged version, a conference deleted and made again under its id, commits out of
// order and rollbacks, and many conferences inserted by SQL (TestManyConferences; E2E_SCALE
// sets how many, for go tool task test:scale and bench:scale). Faults of a network
// (netfault_test.go, through toxiproxy embedded in the test binary): latency and a blackhole on
// the links to Redis, a pipeline cut short, the LISTEN connection reset, a slow and a cut
// api-conference, api-attendee's database away. A real Postgres (pgcluster_test.go, a cluster of
// the test's own): restarted under writes, a source transaction held open, a NOTIFY storm.
// docs/reliability.md lists every fault with its test.
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
// A conference that was created and deleted may be absent from the VO table only where the mode
// legitimately never showed it to api-attendee: in pull mode, when it lived between two polls,
// and in push mode after Redis lost events (a reconcile only sees live conferences). Those tests
// use the lenient check. Every other push test is strict: each deleted conference must have its
// tombstone, because every event went through the outbox and the stream. A conference that did
// reach api-attendee always ends tombstoned, in every mode, since a VO row of a conference that
// is not live must be deleted. In push mode the check also waits for an empty outbox and no
// pending entries in the group: nothing is left behind.
//
// The tests need Postgres at TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, a server where they may create
// databases) and the redis-server binary. Without them they skip with the reason, and fail
// when CI is set. E2E_SEED fixes the seed of the random workload and of the fault moments.
package e2e
