package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// waitFor bounds every wait for the page: generous, as the machine may be busy; the waits
// end as soon as their condition holds.
const waitFor = 45 * time.Second

// page is one headless chromium tab on the web program, recording every console error,
// uncaught exception and failed request, which fail the test.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string // the test's artifact directory: screenshots

	mu       sync.Mutex
	problems []string
	requests map[network.RequestID]*network.Request
	// down are the services (base URLs) the test stopped: requests to them are expected to fail.
	down []string
	shot int
}

// newPage starts chromium with the flags this kind of machine needs (root, closed network)
// and an empty profile; on failure and on success a screenshot is saved.
func newPage(t *testing.T) *page {
	t.Helper()
	bin, err := chromium()
	if err != nil {
		unavailable(t, "chromium is not installed (apt-get install chromium, or set CHROMIUM): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1440, 1100),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	}
	p := &page{t: t, dir: t.ArtifactDir(), requests: map[network.RequestID]*network.Request{}}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// A listener given to the context sees every event of the tab from its start; chromedp
	// enables the runtime, log and network domains of a tab itself.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(p.listen))
	p.ctx = ctx
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v", bin, err)
	}
	// Registered after the cancels, so it runs first, while the browser is still up.
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot("failure")
		}
	})
	return p
}

func (p *page) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, a.Description+string(a.Value))
			}
			p.problems = append(p.problems, "console error: "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		p.problems = append(p.problems, "uncaught exception: "+desc)
	case *cdplog.EventEntryAdded:
		// Network entries repeat what the request events below report more precisely.
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			p.problems = append(p.problems, fmt.Sprintf("console error (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		p.requests[ev.RequestID] = ev.Request
	case *network.EventResponseReceived:
		req := p.requests[ev.RequestID]
		if ev.Response.Status >= 400 && !expectedRefusal(req, ev.Response.Status) {
			p.problems = append(p.problems, fmt.Sprintf("failed request: %s %s answered %d", method(req), ev.Response.URL, ev.Response.Status))
		}
	case *network.EventLoadingFailed:
		req := p.requests[ev.RequestID]
		if req == nil || !p.isDown(req.URL) {
			p.problems = append(p.problems, fmt.Sprintf("failed request: %s %s: %s %s", method(req), requestURL(req), ev.ErrorText, ev.BlockedReason))
		}
	}
}

// expectedRefusal are the error answers the test provokes, which the page must show:
// registrations refused with 409 (duplicate, full, deleted), and the 409 for deleting a
// location that still has a conference.
func expectedRefusal(req *network.Request, status int64) bool {
	if req == nil || status != 409 {
		return false
	}
	return (req.Method == "POST" && strings.HasSuffix(req.URL, "/api/attendees/")) ||
		(req.Method == "DELETE" && strings.Contains(req.URL, "/api/locations/"))
}

func method(r *network.Request) string {
	if r == nil {
		return "?"
	}
	return r.Method
}

func requestURL(r *network.Request) string {
	if r == nil {
		return "?"
	}
	return r.URL
}

func (p *page) isDown(u string) bool {
	for _, d := range p.down {
		if strings.HasPrefix(u, d) {
			return true
		}
	}
	return false
}

// expectDown says that requests to base fail from now on, because the test stopped it.
func (p *page) expectDown(base string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = append(p.down, base)
}

// checkClean fails the test with every problem recorded since the last check.
func (p *page) checkClean() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.problems {
		p.t.Error(pr)
	}
	p.problems = nil // reported once
}

// do runs actions within waitFor; on failure it names what was being done.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.checkClean()
		p.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, within waitFor.
func get[T any](p *page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.checkClean()
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// until waits for a JavaScript condition to hold (a DOM condition, never a sleep).
func (p *page) until(what, cond string) {
	p.t.Helper()
	get(p, "wait until "+what, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(waitFor), chromedp.WithPollingInterval(50*time.Millisecond)))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return get(p, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// fill sets form fields by name and submits the form with its submit button.
func (p *page) fill(form string, fields [][2]string) {
	p.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for _, f := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`%s [name="%s"]`, form, f[0])), f[1]))
	}
	actions = append(actions, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
	p.do("fill in and submit "+form, actions...)
}

// screenshot saves the whole page as <n>-<name>.png in the artifact directory.
func (p *page) screenshot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.shot++
	path := filepath.Join(p.dir, fmt.Sprintf("%02d-%s.png", p.shot, name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Logf("save screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot: %s", path)
}

// Short names for the actions the flow uses.
func chromedpNavigate(u string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(u) }
func chromedpClick(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel))
}
func evaluate[T any](js string) chromedp.Action[T] { return chromedp.Evaluate[T](js) }
func fullScreenshot() chromedp.Action[[]byte]      { return chromedp.FullScreenshot(100) }
