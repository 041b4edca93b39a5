package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestScreenshotForTheREADME makes docs/web.png: the page in push mode with a few conferences,
// registrations and a minute of changes in the chart. It runs only when asked:
//
//	WEB_SCREENSHOT=$PWD/../docs/web.png go test -run TestScreenshotForTheREADME ./
func TestScreenshotForTheREADME(t *testing.T) {
	out := os.Getenv("WEB_SCREENSHOT")
	if out == "" {
		t.Skip("set WEB_SCREENSHOT to the file to write (docs/web.png)")
	}
	p := newPage(t)
	s := startStack(t, "push")
	p.do("open the page", chromedpNavigate(s.web.url))
	p.until("the page has started", `document.body.dataset.ready === "true"`)
	api := func(method, path string, body any) map[string]any {
		t.Helper()
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.conference.url+path, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, v)
		}
		return v
	}
	id := createConference(p, "push")
	api("POST", "/api/locations/", map[string]any{"name": "Moscone Center", "city": "San Francisco", "room_count": 40, "state": "CA"})
	var ids []string
	for i, name := range []string{"RustConf", "PyCon US", "KubeCon", "DjangoCon"} {
		c := api("POST", "/api/conferences/", map[string]any{"name": name, "starts": "2027-0" + fmt.Sprint(i+4) + "-10",
			"ends": "2027-0" + fmt.Sprint(i+4) + "-12", "max_presentations": 20, "max_attendees": 300, "location": 2})
		ids = append(ids, fmt.Sprint(c["id"]))
	}
	seeCopy(p, id)
	registerUntilFull(p, id)
	// A minute of changes, paced (not waited on) by a ticker, so that the chart has a history.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := range 240 {
		<-tick.C
		api("PUT", "/api/conferences/"+ids[n%len(ids)]+"/", map[string]any{"description": fmt.Sprintf("edition %d", n)})
	}
	p.until("the chart has drawn", `!!document.querySelector("#lag-chart canvas")`)
	buf := get(p, "take the screenshot", fullScreenshot())
	if err := os.WriteFile(filepath.Clean(out), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
	p.checkClean()
}
