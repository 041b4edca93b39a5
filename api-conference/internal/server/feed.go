package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
	"conferencego/syncer/changeevent"
)

// sourceID reads the database's identity once and keeps it: it is constant for a database. A
// failed read is not kept, so a database that was down at start is asked again.
type sourceID struct {
	store *postgres.Store
	mu    sync.Mutex
	id    string
}

func (s *sourceID) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id != "" {
		return s.id, nil
	}
	id, err := s.store.SourceID(ctx)
	if err != nil {
		return "", err
	}
	s.id = id
	return id, nil
}

// feedLimit reads ?limit= of the feed and the state listing: 1 to MaxPage, default MaxPage.
func feedLimit(c *fiber.Ctx, v *conference.ValidationError) int {
	s := c.Query(changeevent.ParamLimit)
	if s == "" {
		return changeevent.MaxPage
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > changeevent.MaxPage {
		v.Add(changeevent.ParamLimit, fmt.Sprintf("must be a whole number from 1 to %d", changeevent.MaxPage))
	}
	return n
}

// handleFeed serves the changes after ?after= in commit order (see Store.Feed).
func handleFeed(store *postgres.Store, source *sourceID) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var v conference.ValidationError
		limit := feedLimit(c, &v)
		if err := v.Err(); err != nil {
			return err
		}
		// A copy: the store keeps it in an error message, which outlives fiber's buffer.
		after := strings.Clone(c.Query(changeevent.ParamAfter))
		src, err := source.get(c.UserContext())
		if err != nil {
			return err
		}
		page, err := store.Feed(c.UserContext(), after, limit)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(changeevent.FeedPage{Source: src, Changes: page.Changes, Next: page.Next, More: page.More})
	}
}

// parseIDs reads ?ids=1,2,3: positive ids, at most MaxPage, repeats counted once.
func parseIDs(s string) ([]int64, error) {
	bad := func(msg string) error { return conference.Invalid(changeevent.ParamIDs, msg) }
	parts := strings.Split(s, ",")
	if len(parts) > changeevent.MaxPage {
		return nil, bad(fmt.Sprintf("at most %d ids", changeevent.MaxPage))
	}
	seen := make(map[int64]bool, len(parts))
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, ok := httpedge.ParseID(p)
		if !ok || strings.HasPrefix(p, "+") {
			return nil, bad("must be conference ids (positive whole numbers) separated by commas")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// handleState lists every conference the source knows, live or tombstoned, by id, in keyset
// pages; with ?ids= it looks up those conferences only.
func handleState(store *postgres.Store, source *sourceID) fiber.Handler {
	return func(c *fiber.Ctx) error {
		args := c.Context().QueryArgs()
		var v conference.ValidationError
		var (
			ids    []int64
			lookup = args.Has(changeevent.ParamIDs)
			after  int64
			limit  int
		)
		if lookup {
			if args.Has(changeevent.ParamAfter) || args.Has(changeevent.ParamLimit) {
				v.Add(changeevent.ParamIDs, "a lookup takes no after or limit")
			}
			var err error
			if ids, err = parseIDs(string(args.Peek(changeevent.ParamIDs))); err != nil {
				return err
			}
		} else {
			limit = feedLimit(c, &v)
			if s := c.Query(changeevent.ParamAfter); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n < 0 || strings.HasPrefix(s, "+") {
					v.Add(changeevent.ParamAfter, "must be a conference id (a whole number, 0 or more)")
				}
				after = n
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		src, err := source.get(c.UserContext())
		if err != nil {
			return err
		}
		var page postgres.StatePage
		if lookup {
			page, err = store.Lookup(c.UserContext(), ids)
		} else {
			page, err = store.State(c.UserContext(), after, limit)
		}
		if err != nil {
			return err
		}
		out := changeevent.StatePage{Source: src, Cursor: page.Cursor, Conferences: page.Changes}
		if lookup {
			// Every id asked about is answered: a client must never read an id's absence
			// from the answer as "unknown".
			known := make(map[int64]bool, len(page.Changes))
			for _, ch := range page.Changes {
				known[ch.ConferenceID] = true
			}
			out.Unknown = []int64{}
			for _, id := range ids {
				if !known[id] {
					out.Unknown = append(out.Unknown, id)
				}
			}
		}
		if page.More {
			next := fmt.Sprintf("%s?%s=%d&%s=%d", changeevent.PathState, changeevent.ParamLimit, limit,
				changeevent.ParamAfter, page.Changes[len(page.Changes)-1].ConferenceID)
			out.Next = &next
			c.Set(fiber.HeaderLink, "<"+next+`>; rel="next"`)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(out)
	}
}
