package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOverLimitBodyWrittenFirstStillSeesThe413 is a client in Python urllib's manner: it
// writes the whole 2 MiB body and only then reads. It must read the 413 problem, not a reset.
func TestOverLimitBodyWrittenFirstStillSeesThe413(t *testing.T) {
	t.Parallel()
	f := setup(t)
	u, err := url.Parse(f.base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	body := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	req := fmt.Sprintf("POST /api/conferences/1/attendees/ HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.Host, len(body))
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
