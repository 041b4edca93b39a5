package httpedge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/httpedge/edgetest"
)

// TestOverLimitBodyWrittenFirstStillSeesThe413 is a client in Python urllib's manner: it
// writes the whole 2 MiB body and only then reads. It must read the 413 problem, not a reset.
func TestOverLimitBodyWrittenFirstStillSeesThe413(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Post("/things", func(c *fiber.Ctx) error { return c.SendStatus(201) })
	addr := strings.TrimPrefix(edgetest.Serve(t, app), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	body := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	req := fmt.Sprintf("POST /things HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body))
	if _, err := io.WriteString(conn, req+body); err != nil {
		t.Fatalf("writing the body: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response after writing the whole body: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the problem: %v", err)
	}
	var p struct {
		Status int `json:"status"`
	}
	if resp.StatusCode != 413 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") ||
		json.Unmarshal(data, &p) != nil || p.Status != 413 {
		t.Errorf("got %d %q: %s, want a 413 problem", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
}
