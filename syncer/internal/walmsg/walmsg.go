// Package walmsg reads the messages a writer puts into Postgres's write-ahead log with
// pg_logical_emit_message(true, prefix, content), from a logical replication slot, in commit
// order: the transport of an outbox that needs no table, no deletes and no NOTIFY.
//
// The slot remembers what its reader confirmed, and Postgres keeps the WAL from there: a
// reader that stops (or is killed) before it confirms gets the same messages again from the
// next reader. So a caller confirms a batch's End only once the messages are safe elsewhere
// (for the relay: once Redis accepted them), and delivery is at least once, in commit order.
//
// The slot uses the pgoutput plugin, which needs a publication to name: it may publish no
// table at all, since only the messages are read. The server must run with wal_level=logical.
package walmsg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"conferencego/syncer/changeevent"
)

// Config says which slot to read and which messages are the caller's.
type Config struct {
	// ConnString is a Postgres URL or DSN of the database the messages are written in; the
	// connection is opened in replication mode.
	ConnString string
	// Slot is the replication slot, made on first use.
	Slot string
	// Publication is the publication pgoutput is started with; made on first use, for no table.
	Publication string
	// Prefix is the prefix of the caller's messages; others are skipped.
	Prefix string
	// StatusInterval is how often the confirmed position is sent when nothing else is (the
	// server ends a replication connection that is silent for wal_sender_timeout, 60 s by
	// default). Zero means 10 s.
	StatusInterval time.Duration
}

// Message is one message of a committed transaction.
type Message struct {
	LSN     pglogrepl.LSN
	Content []byte
	// Refused, if set, says why the message must not be taken as an event: it was written
	// outside any transaction (pg_logical_emit_message(false, …)), so it is in the log even
	// if its writer rolled back. It is handed out all the same, so that the caller can put it
	// aside and go on, rather than read it again and again.
	Refused error
}

// ErrNonTransactional is the Refused of a message written outside a transaction.
var ErrNonTransactional = errors.New("the message was written outside a transaction, and would stand even if its writer rolled back")

// Batch is the messages of one or more committed transactions, in commit order, and the end
// of the last of them: what to Confirm once the messages are safe.
type Batch struct {
	Messages []Message
	End      pglogrepl.LSN
}

// Reader reads one slot on one replication connection. It is not safe for concurrent use.
type Reader struct {
	cfg  Config
	conn *pgconn.PgConn
	// confirmed is what was last confirmed; returned the End of the last batch handed out;
	// skipped how far the stream is known to hold nothing more of the caller's (transactions
	// without its messages, keepalives between transactions), which may be confirmed on the
	// caller's behalf once it confirmed returned.
	confirmed, returned, skipped pglogrepl.LSN
	lastStatus                   time.Time
	// inTx holds the caller's messages of the transaction being read, until its commit.
	inTx []Message
	ours bool
	// open is true between a transaction's begin and its commit.
	open bool
	// gathering is how many messages Read holds for a batch it has not returned yet: until it
	// does, nothing past them may be confirmed for the caller.
	gathering int
}

// ErrSlotInUse is the error of a slot another reader streams from: a slot has one reader at a
// time, so a second relay waits for the first to go.
var ErrSlotInUse = errors.New("the replication slot is in use by another reader")

// ErrSlotLost is the error of a slot the server invalidated, because it kept more WAL than
// max_slot_wal_keep_size allows: what it held is gone, and Drop lets the next Open start anew.
var ErrSlotLost = errors.New("the replication slot was invalidated: the WAL it kept is gone")

// ErrWALLevel is the error of a server that cannot decode: wal_level is not logical.
var ErrWALLevel = errors.New("the server's wal_level is not logical")

// Open connects, makes the publication and the slot if they are missing, and starts
// streaming from what the slot last confirmed.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	if !changeevent.ValidSlot(cfg.Slot) || !changeevent.ValidSlot(cfg.Publication) {
		return nil, fmt.Errorf("walmsg: slot %q and publication %q must be 1 to 63 lower-case letters, digits or underscores", cfg.Slot, cfg.Publication)
	}
	if cfg.Prefix == "" {
		return nil, errors.New("walmsg: a message prefix is needed")
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	pc, err := pgconn.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("walmsg: %w", err)
	}
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("walmsg: connect for replication: %w", err)
	}
	r := &Reader{cfg: cfg, conn: conn}
	if err := r.start(ctx); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return r, nil
}

func (r *Reader) start(ctx context.Context) error {
	// The publication first: pgoutput looks it up as of each change it decodes, and a change
	// older than the publication fails the stream. A server that cannot decode is told apart
	// before anything is made on it.
	if r.walLevelNotLogical(ctx) {
		return ErrWALLevel
	}
	// A replication connection may run plain SQL.
	if err := r.exec(ctx, changeevent.EnsurePublicationSQL(r.cfg.Publication)); err != nil {
		return fmt.Errorf("walmsg: publication %s: %w", r.cfg.Publication, err)
	}
	_, err := pglogrepl.CreateReplicationSlot(ctx, r.conn, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42710": // duplicate_object: made before
	case err != nil:
		return fmt.Errorf("walmsg: create slot %s: %w", r.cfg.Slot, err)
	}
	// Start at 0: the server resumes from the slot's confirmed position.
	if err := pglogrepl.StartReplication(ctx, r.conn, r.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + r.cfg.Publication + "'", "messages 'true'"},
	}); err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use
			return fmt.Errorf("walmsg: slot %s: %w (%s)", r.cfg.Slot, ErrSlotInUse, pgErr.Message)
		}
		// Postgres 15 says "cannot read from logical replication slot" and, in the detail, that
		// it was invalidated; later versions "can no longer get changes from replication slot".
		if errors.As(err, &pgErr) && pgErr.Code == "55000" &&
			(strings.Contains(pgErr.Detail, "invalidated") || strings.Contains(pgErr.Message, "can no longer get changes")) {
			return fmt.Errorf("walmsg: slot %s: %w (%s %s)", r.cfg.Slot, ErrSlotLost, pgErr.Message, pgErr.Detail)
		}
		return fmt.Errorf("walmsg: start replication on slot %s: %w", r.cfg.Slot, err)
	}
	r.lastStatus = time.Now()
	return nil
}

func (r *Reader) exec(ctx context.Context, sql string) error {
	_, err := r.conn.Exec(ctx, sql).ReadAll()
	return err
}

func (r *Reader) walLevelNotLogical(ctx context.Context) bool {
	res, err := r.conn.Exec(ctx, "SHOW wal_level").ReadAll()
	return err == nil && len(res) == 1 && len(res[0].Rows) == 1 && string(res[0].Rows[0][0]) != "logical"
}

// drainGap is how long Read waits for the next message once it has one to return: what is
// already on its way comes in the same batch (a busy stream is read in batches without a linger),
// and an idle one costs this once per batch.
const drainGap = 50 * time.Microsecond

// Read returns the caller's messages of at least one committed transaction, waiting for one
// until ctx ends. Once it has one it goes on reading for up to linger, and after that while the
// next message follows within drainGap, up to max messages: a busy stream comes in fewer,
// larger batches.
func (r *Reader) Read(ctx context.Context, max int, linger time.Duration) (Batch, error) {
	var b Batch
	var lingerUntil time.Time
	for {
		deadline := r.lastStatus.Add(r.cfg.StatusInterval)
		if len(b.Messages) > 0 {
			if len(b.Messages) >= max {
				r.returned, r.gathering = b.End, 0
				return b, nil
			}
			deadline = time.Now().Add(drainGap)
			if lingerUntil.After(deadline) {
				deadline = lingerUntil
			}
		}
		msg, err := r.receive(ctx, deadline)
		if err != nil {
			return Batch{}, err
		}
		if msg == nil { // the deadline passed
			if len(b.Messages) > 0 {
				r.returned, r.gathering = b.End, 0
				return b, nil
			}
			if err := r.idle(ctx); err != nil {
				return Batch{}, err
			}
			continue
		}
		end, committed, err := r.handle(ctx, msg)
		if err != nil {
			return Batch{}, err
		}
		if !committed {
			continue
		}
		if len(r.inTx) == 0 && !r.ours {
			if len(b.Messages) > 0 {
				b.End = end // nothing of ours, but inside this batch: confirmed with it
			} else {
				r.skipped = end
			}
			continue
		}
		if len(b.Messages) == 0 {
			lingerUntil = time.Now().Add(linger)
		}
		b.Messages = append(b.Messages, r.inTx...)
		b.End, r.gathering = end, len(b.Messages)
		r.inTx, r.ours = nil, false
	}
}

// Confirm tells the server that everything up to end is safe: the slot moves there, and the
// WAL before it may go.
func (r *Reader) Confirm(ctx context.Context, end pglogrepl.LSN) error {
	if end > r.confirmed {
		r.confirmed = end
	}
	return r.status(ctx, false)
}

// Drop removes the slot of cfg, which must have no reader, so that the next Open makes it anew:
// for a slot that was lost (ErrSlotLost). What was written before the new slot exists is not
// read by anyone.
func Drop(ctx context.Context, cfg Config) error {
	pc, err := pgconn.ParseConfig(cfg.ConnString)
	if err != nil {
		return fmt.Errorf("walmsg: %w", err)
	}
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("walmsg: connect for replication: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := pglogrepl.DropReplicationSlot(ctx, conn, cfg.Slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
		return fmt.Errorf("walmsg: drop slot %s: %w", cfg.Slot, err)
	}
	return nil
}

// Close ends the connection. What was not confirmed is read again by the next reader.
func (r *Reader) Close(ctx context.Context) error { return r.conn.Close(ctx) }

// idle runs when nothing came for a status interval. The server sends no transaction that
// carried nothing for the publication (pgoutput skips them), so its WAL would stay held until
// the caller's next message: when the caller has confirmed all it was given, the reader
// confirms up to what the server has decoded (its keepalives say how far), and asks for a
// keepalive to learn the next such point.
func (r *Reader) idle(ctx context.Context) error {
	r.advance()
	return r.status(ctx, true)
}

// advance confirms, on the caller's behalf, the stream up to where it is known to hold nothing
// more of the caller's: only once the caller confirmed all it was given, outside a transaction,
// and while no batch is being gathered.
func (r *Reader) advance() {
	// At or past: once advanced, confirmed stays ahead of what was last handed out until the
	// next batch (with ==, one advance blocked every later one, and a server shutting down
	// waited forever for the position it asked for).
	if r.confirmed >= r.returned && !r.open && r.gathering == 0 {
		r.confirmed = max(r.confirmed, r.skipped)
	}
}

func (r *Reader) status(ctx context.Context, replyRequested bool) error {
	r.lastStatus = time.Now()
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, r.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: r.confirmed, ReplyRequested: replyRequested}); err != nil {
		return fmt.Errorf("walmsg: confirm %s: %w", r.confirmed, err)
	}
	return nil
}

// receive returns the next message, or nil when deadline passes first.
func (r *Reader) receive(ctx context.Context, deadline time.Time) (pgproto3.BackendMessage, error) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	msg, err := r.conn.ReceiveMessage(rctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && pgconn.Timeout(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("walmsg: receive: %w", err)
	}
	return msg, nil
}

// handle reads one message of the stream. committed says that a transaction ended with it, at
// end.
func (r *Reader) handle(ctx context.Context, msg pgproto3.BackendMessage) (end pglogrepl.LSN, committed bool, err error) {
	switch msg := msg.(type) {
	case *pgproto3.ErrorResponse:
		return 0, false, fmt.Errorf("walmsg: %w", pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return 0, false, nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return 0, false, fmt.Errorf("walmsg: %w", err)
			}
			// Everything before a keepalive was sent before it: outside a transaction, the
			// server has nothing more of ours up to its end. (A transaction still running
			// there commits later, past that end, and comes then.)
			if !r.open && ka.ServerWALEnd > r.skipped {
				r.skipped = ka.ServerWALEnd
			}
			if ka.ReplyRequested {
				// The answer carries the skipped position too: a server shutting down asks
				// again and again, and waits until its reader has confirmed all it sent.
				r.advance()
				return 0, false, r.status(ctx, false)
			}
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return 0, false, fmt.Errorf("walmsg: %w", err)
			}
			return r.decode(x.WALData)
		}
	}
	return 0, false, nil
}

func (r *Reader) decode(data []byte) (pglogrepl.LSN, bool, error) {
	m, err := pglogrepl.Parse(data)
	if err != nil {
		return 0, false, fmt.Errorf("walmsg: decode: %w", err)
	}
	switch m := m.(type) {
	case *pglogrepl.BeginMessage:
		r.inTx, r.ours, r.open = nil, false, true
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == r.cfg.Prefix {
			// Transactional messages come inside their transaction, at its commit; a
			// non-transactional one (pg_logical_emit_message(false, …)) is on its own and
			// would be read even if its writer rolled back, so it is handed out refused.
			if !m.Transactional {
				refused := Message{LSN: m.LSN, Content: append([]byte(nil), m.Content...), Refused: ErrNonTransactional}
				if r.open { // sent amid a transaction: handed out with it
					r.inTx, r.ours = append(r.inTx, refused), true
					return 0, false, nil
				}
				// Decoded on its own, outside the transactions, which come whole at their
				// commits: a unit of its own, ending at its position.
				r.inTx, r.ours = []Message{refused}, true
				return m.LSN, true, nil
			}
			r.inTx = append(r.inTx, Message{LSN: m.LSN, Content: append([]byte(nil), m.Content...)})
			r.ours = true
		}
	case *pglogrepl.CommitMessage:
		r.open = false
		return m.TransactionEndLSN, true, nil
	}
	return 0, false, nil
}
