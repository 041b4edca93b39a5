package postgres

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/syncer/changeevent"
)

// FeedPage is one page of the change feed as the store reads it.
type FeedPage struct {
	Changes []changeevent.Change
	// Next is the cursor to ask with next time.
	Next string
	// More says that more changes are ready now.
	More bool
}

// StatePage is one page of the state listing, or a lookup.
type StatePage struct {
	Changes []changeevent.Change
	// Cursor is the feed position as of this read: following the feed from it misses nothing
	// that this page did not show.
	Cursor string
	More   bool
}

// SourceID returns the identity of this database, made with its schema.
func (s *Store) SourceID(ctx context.Context) (string, error) {
	var id string
	if err := s.db.NewRaw("SELECT id::text FROM source_identity").Scan(ctx, &id); err != nil {
		return "", fmt.Errorf("read source identity: %w", translate(err))
	}
	return id, nil
}

// cursor is a position in the feed: everything up to (xid, id) in (xid, conference_id)
// order has been served.
type cursor struct {
	xid uint64
	id  int64
}

func (c cursor) String() string {
	return strconv.FormatUint(c.xid, 10) + "." + strconv.FormatInt(c.id, 10)
}

// cursorBelow returns the cursor just before the first transaction that may still be running:
// everything below xmin has ended and was read.
func cursorBelow(xmin uint64) cursor { return cursor{xid: xmin - 1, id: math.MaxInt64} }

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseCursor reads "<xid>.<conference_id>"; "" is the beginning of the log.
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	bad := conference.Invalid(changeevent.ParamAfter, `must be a cursor given by the feed ("<xid>.<id>", both decimal), or empty`)
	x, id, ok := strings.Cut(s, ".")
	if !ok || !digits(x) || !digits(id) {
		return cursor{}, bad
	}
	xid, err := strconv.ParseUint(x, 10, 64)
	if err != nil {
		return cursor{}, bad
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return cursor{}, bad
	}
	return cursor{xid: xid, id: n}, nil
}

// logRow is a conference_log row with what the feed serves of a live conference.
type logRow struct {
	ConferenceID *int64     `bun:"conference_id"`
	Version      int64      `bun:"version"`
	Deleted      bool       `bun:"deleted"`
	Xid          uint64     `bun:"xid"`
	ChangedAt    time.Time  `bun:"changed_at"`
	Live         bool       `bun:"live"`
	Name         string     `bun:"name"`
	Starts       *time.Time `bun:"starts"`
	Ends         *time.Time `bun:"ends"`
	MaxAttendees int        `bun:"max_attendees"`
	LocName      string     `bun:"loc_name"`
	LocCity      string     `bun:"loc_city"`
	LocState     string     `bun:"loc_state"`
	// Of the statement's snapshot, on every row (and on the one row of an empty page).
	Xmin   uint64 `bun:"snap_xmin"`
	Xmax   uint64 `bun:"snap_xmax"`
	Pruned uint64 `bun:"pruned_xid"`
}

// logColumns select a page's rows (p) with their conference (c) and location (loc).
const logColumns = `p.conference_id, coalesce(p.version, 0) AS version, coalesce(p.deleted, false) AS deleted,
	coalesce(p.xid::text, '0')::numeric AS xid, coalesce(p.changed_at, 'epoch') AS changed_at,
	c.id IS NOT NULL AS live, coalesce(c.name, '') AS name, c.starts, c.ends,
	coalesce(c.max_attendees, 0) AS max_attendees, coalesce(c.loc_name, '') AS loc_name,
	coalesce(c.loc_city, '') AS loc_city, coalesce(c.loc_state, '') AS loc_state,
	s.xmin::text::numeric AS snap_xmin, s.xmax::text::numeric AS snap_xmax, s.pruned::text::numeric AS pruned_xid`

// snapshotCTE is the statement's snapshot: xmin is the oldest transaction still running.
const snapshotCTE = `snap AS MATERIALIZED (
	SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, pg_snapshot_xmax(pg_current_snapshot()) AS xmax,
		(SELECT pruned_xid FROM log_horizon) AS pruned
)`

// Each page row's conference is looked up by key in a LATERAL subquery that OFFSET 0 keeps
// from being flattened into a join: as a join, the planner, which cannot tell how few rows a
// cursor's range holds, hashes the whole conferences table for a page it expects to be full,
// and a poll after one change reads every conference of a small table.
const logJoins = `FROM snap s LEFT JOIN page p ON true
	LEFT JOIN LATERAL (
		SELECT c.id, c.name, c.starts, c.ends, c.max_attendees,
			loc.name AS loc_name, loc.city AS loc_city, loc.state AS loc_state
		FROM conferences c JOIN locations loc ON loc.id = c.location_id
		WHERE c.id = p.conference_id AND NOT p.deleted
		OFFSET 0) c ON true`

func (r logRow) change() (changeevent.Change, error) {
	id := *r.ConferenceID
	ch := changeevent.Change{
		EventID: changeevent.SourceEventID(id, r.Version), Type: changeevent.TypeFor(r.Version, r.Deleted),
		ConferenceID: id, Version: r.Version, OccurredAt: r.ChangedAt.UTC(),
	}
	if r.Deleted {
		ch.Data = []byte("null")
		return ch, nil
	}
	if !r.Live || r.Starts == nil || r.Ends == nil {
		return changeevent.Change{}, fmt.Errorf("conference %d is live in the log but not in the table", id)
	}
	data, err := changeevent.MarshalData(conference.Conference{
		ID: id, Name: r.Name, Starts: r.Starts.UTC(), Ends: r.Ends.UTC(), MaxAttendees: r.MaxAttendees,
		Location: conference.Location{Name: r.LocName, City: r.LocCity, State: r.LocState},
	}.Payload())
	if err != nil {
		return changeevent.Change{}, err
	}
	ch.Data = data
	return ch, nil
}

// changes turns the rows of a page into changes; an empty page is one row without a log row.
func changes(rows []logRow) ([]changeevent.Change, error) {
	out := make([]changeevent.Change, 0, len(rows))
	for _, r := range rows {
		if r.ConferenceID == nil {
			continue
		}
		ch, err := r.change()
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// Feed returns up to limit changes after the cursor after, in the order of the transactions
// that made them, and only those of transactions older than every one still running: a
// transaction that commits later can only have a later position, so a cursor never skips a
// change that commits out of order. Each conference appears once, at its newest version.
//
// A malformed cursor is ErrInvalid naming "after"; a cursor at or behind a pruned tombstone,
// or one this database cannot have given, is ErrGone.
func (s *Store) Feed(ctx context.Context, after string, limit int) (FeedPage, error) {
	cur, err := parseCursor(after)
	if err != nil {
		return FeedPage{}, err
	}
	var rows []logRow
	q := `WITH ` + snapshotCTE + `, page AS (
	SELECT l.* FROM conference_log l
	WHERE (l.xid, l.conference_id) > (?::text::xid8, ?::bigint) AND l.xid < (SELECT xmin FROM snap)
	ORDER BY l.xid, l.conference_id
	LIMIT ?
)
SELECT ` + logColumns + ` ` + logJoins + `
ORDER BY p.xid, p.conference_id`
	if err := s.db.NewRaw(q, strconv.FormatUint(cur.xid, 10), cur.id, limit+1).Scan(ctx, &rows); err != nil {
		return FeedPage{}, fmt.Errorf("read change feed after %q: %w", after, translate(err))
	}
	if len(rows) == 0 {
		return FeedPage{}, fmt.Errorf("read change feed after %q: no snapshot row", after)
	}
	snap := rows[0]
	// Behind the horizon: a pruned tombstone may lie after the cursor. A cursor that ends
	// a whole transaction (id MaxInt64) at the horizon has read all of it, tombstones too.
	behind := snap.Pruned > 0 && (cur.xid < snap.Pruned || (cur.xid == snap.Pruned && cur.id != math.MaxInt64))
	if behind || cur.xid >= snap.Xmax {
		return FeedPage{}, fmt.Errorf("feed cursor %q is older than the retained history: %w", after, conference.ErrGone)
	}
	page := FeedPage{}
	if len(rows) > limit && rows[limit].ConferenceID != nil {
		page.More = true
		rows = rows[:limit]
	}
	if page.Changes, err = changes(rows); err != nil {
		return FeedPage{}, fmt.Errorf("read change feed after %q: %w", after, err)
	}
	switch {
	case page.More:
		last := rows[len(rows)-1]
		page.Next = cursor{xid: last.Xid, id: *last.ConferenceID}.String()
	case snap.Xmin > 0 && cursorBelow(snap.Xmin).xid >= cur.xid:
		// Everything below xmin has ended and this page read all of it.
		page.Next = cursorBelow(snap.Xmin).String()
	default:
		page.Next = cur.String()
	}
	return page, nil
}

// State returns up to limit conferences the log knows, live and tombstoned, with ids above
// afterID, by id, and the feed cursor as of the same statement.
func (s *Store) State(ctx context.Context, afterID int64, limit int) (StatePage, error) {
	q := `WITH ` + snapshotCTE + `, page AS (
	SELECT l.* FROM conference_log l WHERE l.conference_id > ? ORDER BY l.conference_id LIMIT ?
)
SELECT ` + logColumns + ` ` + logJoins + `
ORDER BY p.conference_id`
	page, err := s.statePage(ctx, q, afterID, limit+1)
	if err != nil {
		return StatePage{}, fmt.Errorf("list state after %d: %w", afterID, err)
	}
	if len(page.Changes) > limit {
		page.Changes, page.More = page.Changes[:limit], true
	}
	return page, nil
}

// Lookup returns the state of exactly the conferences ids (at most changeevent.MaxPage), by
// id; ids the log does not know are absent.
func (s *Store) Lookup(ctx context.Context, ids []int64) (StatePage, error) {
	if len(ids) > changeevent.MaxPage {
		return StatePage{}, conference.Invalid(changeevent.ParamIDs, fmt.Sprintf("at most %d ids", changeevent.MaxPage))
	}
	if ids == nil {
		ids = []int64{}
	}
	q := `WITH ` + snapshotCTE + `, page AS (
	SELECT l.* FROM conference_log l WHERE l.conference_id IN (?)
)
SELECT ` + logColumns + ` ` + logJoins + `
ORDER BY p.conference_id`
	arg := any(bun.List(ids))
	if len(ids) == 0 {
		arg = bun.Safe("NULL")
	}
	page, err := s.statePage(ctx, q, arg)
	if err != nil {
		return StatePage{}, fmt.Errorf("look up %d conferences: %w", len(ids), err)
	}
	return page, nil
}

func (s *Store) statePage(ctx context.Context, q string, args ...any) (StatePage, error) {
	var rows []logRow
	if err := s.db.NewRaw(q, args...).Scan(ctx, &rows); err != nil {
		return StatePage{}, translate(err)
	}
	if len(rows) == 0 {
		return StatePage{}, fmt.Errorf("no snapshot row")
	}
	chs, err := changes(rows)
	if err != nil {
		return StatePage{}, err
	}
	return StatePage{Changes: chs, Cursor: cursorBelow(rows[0].Xmin).String()}, nil
}

// PruneTombstones deletes up to limit tombstones older than retention and, in the same
// statement, raises the log horizon to the newest xid deleted, so that a cursor that could
// have missed one of them is told so (ErrGone) instead of silently missing a delete.
func (s *Store) PruneTombstones(ctx context.Context, retention time.Duration, limit int) (int64, error) {
	var n int64
	err := s.db.NewRaw(`WITH gone AS (
	DELETE FROM conference_log WHERE conference_id IN (
		SELECT conference_id FROM conference_log
		WHERE deleted AND changed_at < clock_timestamp() - ?::interval
		ORDER BY changed_at LIMIT ? FOR UPDATE SKIP LOCKED)
	AND deleted
	RETURNING xid
), raised AS (
	UPDATE log_horizon SET pruned_xid = greatest(pruned_xid, (SELECT max(xid) FROM gone)), pruned_at = clock_timestamp()
	WHERE EXISTS (SELECT 1 FROM gone)
)
SELECT count(*) FROM gone`,
		fmt.Sprintf("%d microseconds", retention.Microseconds()), limit).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("prune tombstones: %w", translate(err))
	}
	return n, nil
}
