package relay

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
)

// listen keeps a LISTEN connection open and wakes the publisher on every notification. Each
// (re)connect wakes it too, to catch up on whatever was committed while nobody listened.
func (r *Relay) listen(ctx context.Context) {
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, r.listenCfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{changeevent.NotifyChannel}.Sanitize())
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.WithoutCancel(ctx))
			}
			if ctx.Err() != nil {
				return
			}
			r.m.listenerReconnects.Inc()
			r.log.Warn("cannot listen for outbox notifications; the sweep covers meanwhile", "err", err)
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		signal(r.wake)
		for {
			if _, err = conn.WaitForNotification(ctx); err != nil {
				break
			}
			signal(r.wake)
		}
		conn.Close(context.WithoutCancel(ctx))
		if ctx.Err() == nil {
			r.m.listenerReconnects.Inc()
			r.log.Warn("outbox listener lost its connection; reconnecting", "err", err)
			bo.Wait(ctx)
		}
	}
}
