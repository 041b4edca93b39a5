package httpedge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// A streamed list whose later page fails must not look whole: the body stops short of its
// closing brackets, so a client's JSON decoder refuses it instead of taking a cut list.
func TestStreamedListThatFailsLaterIsNotWholeJSON(t *testing.T) {
	t.Parallel()
	calls := 0
	fetch := func(_ context.Context, after int64, limit int) ([]int64, bool, error) {
		calls++
		if calls > 1 {
			return nil, false, errors.New("the database went away")
		}
		out := make([]int64, limit)
		for i := range out {
			out[i] = after + int64(i) + 1
		}
		return out, true, nil
	}
	l := List[int64, int64]{Name: "things", Path: "/things/", What: "thing", Fetch: fetch, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Key: func(v int64) int64 { return v }, Item: func(v int64) int64 { return v }}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/things", func(c *fiber.Ctx) error { return l.Send(c) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })

	resp, err := http.Get("http://" + ln.Addr().String() + "/things")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(string(body), `{"things":[1`) {
		t.Fatalf("body starts %.40q", body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err == nil {
		t.Fatalf("a list cut short by a failed page decodes as whole JSON (%d bytes)", len(body))
	}
	if calls != 2 {
		t.Errorf("%d fetches, want 2 (the first page, then the failing one)", calls)
	}
}
