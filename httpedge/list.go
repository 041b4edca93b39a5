package httpedge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// MaxPageSize is the largest ?limit= of a list.
const MaxPageSize = 1000

// streamPage is how many rows a list without ?limit= reads at a time: the whole list is sent,
// as the original's clients expect, but memory holds one page of it.
const streamPage = 500

// streamTimeout bounds the whole of a streamed list, which outlives the handler and its
// request deadline: a client reading slowly still cannot hold a database query forever.
const streamTimeout = 5 * time.Minute

// FetchPage reads up to limit items whose keys are above after, by key, and whether more follow.
type FetchPage[T any] func(ctx context.Context, after int64, limit int) ([]T, bool, error)

// List answers one of the collection routes in the original's shape, {"<name>": [...], "next": …}.
//
// With ?limit= (and ?after=) it is one keyset page whose next names the following page. Without
// it, every item is sent, as the original did and as its pages expect (they never follow next):
// the first page is read before anything is sent, so a database that is down still gets a
// problem+json answer; when more follow, the rest is streamed page by page. If a later page
// fails, the body stops short of its closing brackets, so no client can take a cut list for a
// whole one.
type List[T, J any] struct {
	// Name is the JSON member holding the items, as "conferences".
	Name string
	// Path is the collection's path, for next links, as "/api/conferences/".
	Path string
	// What names one item in errors, as "conference" in "must be a conference id".
	What  string
	Fetch FetchPage[T]
	// Key is an item's id, the keyset pages' order; Item is its JSON.
	Key  func(T) int64
	Item func(T) J
	Log  *slog.Logger
}

// Send answers c: the whole list, or the page its ?limit= and ?after= ask for. A bad parameter
// is a FieldErrors naming it.
func (l List[T, J]) Send(c *fiber.Ctx) error {
	limit, after, err := ListParams(c, l.What)
	if err != nil {
		return err
	}
	return l.SendPage(c, limit, after)
}

// SendPage answers c with the page of limit items after after, or with every item after it
// when limit is 0: for a handler that reads the parameters itself (to build an ETag, say).
func (l List[T, J]) SendPage(c *fiber.Ctx, limit int, after int64) error {
	paged := limit > 0
	if !paged {
		limit = streamPage
	}
	items, more, err := l.Fetch(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	first := make([]J, len(items))
	for i, it := range items {
		first[i] = l.Item(it)
	}
	var next *string
	if paged && more {
		n := fmt.Sprintf("%s?limit=%d&after=%d", l.Path, limit, l.Key(items[len(items)-1]))
		next = &n
		c.Set(fiber.HeaderLink, "<"+n+`>; rel="next"`)
	}
	if paged || !more {
		return c.JSON(map[string]any{l.Name: first, "next": next})
	}
	// More than one page and no limit: stream. The writer runs after this handler has
	// returned, so it must not touch c; it takes what it needs now.
	after = l.Key(items[len(items)-1])
	count := streamMeter(c)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
		defer cancel()
		cw := &countingWriter{w: w}
		defer func() { count(cw.n) }()
		fmt.Fprintf(cw, "{%q:[", l.Name)
		enc := json.NewEncoder(cw)
		for i, it := range first {
			if i > 0 {
				cw.WriteString(",")
			}
			if err := enc.Encode(it); err != nil {
				l.Log.Error("streamed list stopped short", "list", l.Name, "err", err)
				return
			}
		}
		for {
			if err := w.Flush(); err != nil {
				return // the client went away
			}
			items, more, err := l.Fetch(ctx, after, streamPage)
			if err != nil {
				l.Log.Error("streamed list stopped short", "list", l.Name, "after", after, "err", err)
				return
			}
			for _, it := range items {
				cw.WriteString(",")
				if err := enc.Encode(l.Item(it)); err != nil {
					l.Log.Error("streamed list stopped short", "list", l.Name, "err", err)
					return
				}
			}
			if !more || len(items) == 0 {
				break
			}
			after = l.Key(items[len(items)-1])
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

// ListParams reads ?limit= and ?after=; limit is 0 when the client asked for every item.
// what names the items in the error, as in "must be a conference id".
func ListParams(c *fiber.Ctx, what string) (limit int, after int64, err error) {
	var v FieldErrors
	if s := c.Query("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > MaxPageSize {
			v = append(v, FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", MaxPageSize)})
		}
		limit = n
	}
	if s := c.Query("after"); s != "" {
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n < 0 {
			v = append(v, FieldError{Field: "after", Message: "must be the id of the last " + what + " seen (a whole number, 0 or more)"})
		}
		after = n
	}
	if len(v) > 0 {
		return 0, 0, v
	}
	return limit, after, nil
}
