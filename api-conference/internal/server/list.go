package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
)

// streamPage is how many rows a list without ?limit= reads at a time: the whole list is sent,
// as the original's clients expect, but memory holds one page of it.
const streamPage = 500

// streamTimeout bounds the whole of a streamed list, which outlives the handler and its
// request deadline: a client reading slowly still cannot hold a database query forever.
const streamTimeout = 5 * time.Minute

// fetchPage reads up to limit items whose keys are above after, by key, and whether more follow.
type fetchPage[T any] func(ctx context.Context, after int64, limit int) ([]T, bool, error)

// list answers one of the collection routes in the original's shape, {"<name>": [...], "next": …}.
//
// With ?limit= (and ?after=) it is one keyset page whose next names the following page. Without
// it, every item is sent, as the original did and as its pages expect (they never follow next):
// the first page is read before anything is sent, so a database that is down still gets a
// problem+json answer; when more follow, the rest is streamed page by page. If a later page
// fails, the body stops short of its closing brackets, so no client can take a cut list for a
// whole one.
type list[T, J any] struct {
	name  string // the JSON member holding the items, and the path's last segment
	path  string // the collection's path, for next links
	fetch fetchPage[T]
	key   func(T) int64
	item  func(T) J
	log   *slog.Logger
}

func (l list[T, J]) send(c *fiber.Ctx, limit int, after int64) error {
	paged := limit > 0
	if !paged {
		limit = streamPage
	}
	items, more, err := l.fetch(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	first := make([]J, len(items))
	for i, it := range items {
		first[i] = l.item(it)
	}
	var next *string
	if paged && more {
		n := fmt.Sprintf("%s?limit=%d&after=%d", l.path, limit, l.key(items[len(items)-1]))
		next = &n
		c.Set(fiber.HeaderLink, "<"+n+`>; rel="next"`)
	}
	if paged || !more {
		return c.JSON(map[string]any{l.name: first, "next": next})
	}
	// More than one page and no limit: stream. The writer runs after this handler has
	// returned, so it must not touch c; it takes what it needs now.
	after = l.key(items[len(items)-1])
	count := streamMeter(c)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
		defer cancel()
		cw := &countingWriter{w: w}
		defer func() { count(cw.n) }()
		fmt.Fprintf(cw, "{%q:[", l.name)
		enc := json.NewEncoder(cw)
		for i, it := range first {
			if i > 0 {
				cw.WriteString(",")
			}
			if err := enc.Encode(it); err != nil {
				l.log.Error("streamed list stopped short", "list", l.name, "err", err)
				return
			}
		}
		for {
			if err := w.Flush(); err != nil {
				return // the client went away
			}
			items, more, err := l.fetch(ctx, after, streamPage)
			if err != nil {
				l.log.Error("streamed list stopped short", "list", l.name, "after", after, "err", err)
				return
			}
			for _, it := range items {
				cw.WriteString(",")
				if err := enc.Encode(l.item(it)); err != nil {
					l.log.Error("streamed list stopped short", "list", l.name, "err", err)
					return
				}
			}
			if !more || len(items) == 0 {
				break
			}
			after = l.key(items[len(items)-1])
		}
		cw.WriteString(`],"next":null}`)
	})
	return nil
}

// countingWriter counts what a streamed body wrote, for the HTTP metrics.
type countingWriter struct {
	w *bufio.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

func (c *countingWriter) WriteString(s string) {
	n, _ := c.w.WriteString(s)
	c.n += n
}

// listParams reads ?limit= and ?after=; limit is 0 when the client asked for every item.
// what names the items in the error, as in "must be a conference id".
func listParams(c *fiber.Ctx, what string) (limit int, after int64, err error) {
	var v conference.ValidationError
	if s := c.Query("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > MaxPageSize {
			v.Add("limit", fmt.Sprintf("must be a whole number from 1 to %d", MaxPageSize))
		}
		limit = n
	}
	if s := c.Query("after"); s != "" {
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n < 0 {
			v.Add("after", "must be a "+what+" id (a whole number, 0 or more)")
		}
		after = n
	}
	return limit, after, v.Err()
}
