package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestBrowser drives the page in a real, headless chromium against the real stack, in each
// mode: it creates a location and a conference, edits it, sees its copy arrive with its new
// version and lag, registers until the conference is full, deletes it and sees the
// tombstone (a location that still holds it cannot be deleted, and the page says why), edits
// and deletes the location, reads the live figures, and sees the "not reachable" state when
// the syncer stops.
// Any console error or failed request fails it. Screenshots go to the test's artifact
// directory (go test -artifacts keeps them, under -outputdir).
func TestBrowser(t *testing.T) {
	for _, mode := range []string{"push", "pull"} {
		t.Run(mode, func(t *testing.T) {
			p := newPage(t) // first: without chromium, skip before building anything
			s := startStack(t, mode)
			p.do("open the page", chromedpNavigate(s.web.url))
			p.until("the page has started", `document.body.dataset.ready === "true"`)
			for _, svc := range []string{"conference", "attendee", "syncer"} {
				p.until(svc+" is reachable", fmt.Sprintf(`document.getElementById("reach-%s").dataset.state === "up"`, svc))
			}
			p.until("the mode is shown", fmt.Sprintf(`document.getElementById("mode").dataset.mode === %q`, mode))

			id := createConference(p, mode)
			seeCopy(p, id)
			registerUntilFull(p, id)
			seeFigures(p, mode)
			p.screenshot("registered")
			deleteAndSeeTombstone(p, id)
			p.screenshot("tombstone")
			editAndDeleteLocation(p)
			p.checkClean()

			p.expectDown(s.syncer.url)
			s.syncer.Stop()
			p.until("the syncer shows as not reachable", `document.getElementById("reach-syncer").dataset.state === "down"`)
			if got := p.text("#reach-syncer"); got != "not reachable" {
				t.Errorf("the syncer's badge says %q", got)
			}
			p.screenshot("syncer-down")
			p.checkClean()
		})
	}
}

// createConference makes a location and a conference of two places through the forms,
// renames the conference through the edit form (version 2), and returns its id.
func createConference(p *page, mode string) string {
	p.t.Helper()
	p.until("the states are loaded", `!!document.querySelector('#location-form option[value="TX"]')`)
	p.fill("#location-form", [][2]string{{"name", "Convention Center"}, {"city", "Austin"}, {"room_count", "12"}, {"state", "TX"}})
	p.until("the location is created", `document.getElementById("location-answer").dataset.ok === "true"`)
	p.until("the location can be chosen", `document.querySelectorAll('#conference-form select[name="location"] option').length === 2`)
	loc := get(p, "read the location's id", evaluate[string](`document.querySelector('#conference-form select[name="location"] option:last-child').value`))

	name := "GopherCon " + mode
	p.fill("#conference-form", [][2]string{{"name", name}, {"starts", "2027-03-01"}, {"ends", "2027-03-03"},
		{"max_presentations", "5"}, {"max_attendees", "2"}, {"location", loc}})
	p.until("the conference is created", `document.getElementById("conference-answer").dataset.ok === "true"`)
	p.until("the conference is listed", `document.querySelectorAll("#conference-table tbody tr").length === 1`)
	id := get(p, "read the conference's id", evaluate[string](`document.querySelector("#conference-table tbody tr").dataset.id`))

	p.do("edit the conference", chromedpClick(fmt.Sprintf(`#conference-table tr[data-id="%s"] button.edit`, id)))
	p.until("the form holds the conference", fmt.Sprintf(`document.getElementById("conference-form").dataset.editing === %q && document.querySelector('#conference-form [name="name"]').value === %q`, id, name))
	p.fill("#conference-form", [][2]string{{"name", name + " EU"}})
	p.until("the rename is saved as version 2", fmt.Sprintf(`document.querySelector('#conference-table tr[data-id="%s"]')?.dataset.version === "2"`, id))
	if got := p.text("#conference-answer"); !strings.Contains(got, "saved conference "+id) {
		p.t.Errorf("the answer to the edit says %q", got)
	}
	return id
}

// seeCopy waits for the copy to hold the conference at version 2, with a lag.
func seeCopy(p *page, id string) {
	p.t.Helper()
	row := fmt.Sprintf(`#copy-table tr[data-id="%s"]`, id)
	p.until("the copy holds version 2", fmt.Sprintf(`document.querySelector('%s')?.dataset.version === "2"`, row))
	if lag := p.text(row + " td.lag"); !strings.HasSuffix(lag, "ms") && !strings.HasSuffix(lag, " s") {
		p.t.Errorf("the copy's lag reads %q; want a duration", lag)
	}
	if got := p.text(row + " td.state"); got != "live" {
		p.t.Errorf("the copy's state reads %q; want live", got)
	}
}

// register submits the registration form and returns the newest answer in the log.
func register(p *page, id, email string, n int) (status, text string) {
	p.t.Helper()
	p.until("the conference can be chosen", fmt.Sprintf(`!!document.querySelector('#register-form option[value="%s"]')`, id))
	p.fill("#register-form", [][2]string{{"conference", id}, {"email", email}, {"name", "Person " + email}})
	p.until(fmt.Sprintf("answer %d is shown", n), fmt.Sprintf(`document.querySelectorAll("#register-log li").length === %d`, n))
	status = get(p, "read the answer's status", evaluate[string](`document.querySelector("#register-log li").dataset.status`))
	return status, p.text("#register-log li")
}

func registerUntilFull(p *page, id string) {
	p.t.Helper()
	for i, want := range []struct{ email, status, says string }{
		{"ada@example.com", "201", "registered Person ada@example.com"},
		{"ADA@example.com", "409", "already registered"},
		{"grace@example.com", "201", "registered Person grace@example.com"},
		{"linus@example.com", "409", "is full (2 of 2 places taken)"},
	} {
		status, text := register(p, id, want.email, i+1)
		if status != want.status || !strings.Contains(text, want.says) {
			p.t.Errorf("registering %s: %s %q; want %s saying %q", want.email, status, text, want.status, want.says)
		}
	}
	row := fmt.Sprintf(`#copy-table tr[data-id="%s"]`, id)
	p.until("the copy shows the conference full", fmt.Sprintf(`document.querySelector('%s td.state')?.textContent === "full"`, row))
}

// seeFigures waits for the figures of the mode: the lag of the changes just applied, and the
// stream's or the poller's counts.
func seeFigures(p *page, mode string) {
	p.t.Helper()
	figure := func(id string) string { return fmt.Sprintf(`document.getElementById("figure-%s").dataset.value`, id) }
	p.until("the lag p50 is shown", figure("lag_p50")+` !== ""`)
	p.until("the lag p99 is shown", figure("lag_p99")+` !== ""`)
	if mode == "push" {
		p.until("the stream holds the events", `Number(`+figure("stream_length")+`) >= 2`)
		p.until("the outbox is empty", figure("outbox_backlog")+` === "0"`)
		p.until("nothing is pending", figure("pending")+` === "0"`)
		p.until("no dead letters", figure("dead_letters")+` === "0"`)
	} else {
		p.until("polls are counted", `Number(`+figure("polls")+`) > 0`)
		p.until("empty polls are counted", `Number(`+figure("not_modified")+`) > 0`)
		p.until("the changes are handed over", `Number(`+figure("handed_over")+`) >= 1`)
	}
	p.until("the chart is drawn", `!!document.querySelector("#lag-chart canvas")`)
}

func deleteAndSeeTombstone(p *page, id string) {
	p.t.Helper()
	// The location still holds the conference: api-conference refuses, and the page says why.
	p.do("delete the location too early", chromedpClick(`#location-table tbody tr button.delete`))
	p.until("the refusal is shown", `document.getElementById("location-answer").dataset.status === "409"`)
	if got := p.text("#location-answer"); !strings.Contains(got, "it still has conferences") {
		p.t.Errorf("the refusal to delete the location reads %q", got)
	}
	p.do("delete the conference", chromedpClick(fmt.Sprintf(`#conference-table tr[data-id="%s"] button.delete`, id)))
	p.until("the delete is answered", fmt.Sprintf(`document.getElementById("conference-answer").textContent === "deleted conference %s"`, id))
	row := fmt.Sprintf(`#copy-table tr[data-id="%s"]`, id)
	p.until("the copy holds the tombstone", fmt.Sprintf(`document.querySelector('%s')?.dataset.deleted === "true"`, row))
	if got := p.text(row + " td.state"); got != "tombstone" {
		p.t.Errorf("the copy's row reads %q; want tombstone", got)
	}
	if got := p.text(row + " td.version"); got != "3" {
		p.t.Errorf("the tombstone's version is %q; want 3 (the delete's, after the rename's 2)", got)
	}
	status, text := register(p, id, "late@example.com", 5)
	if status != "409" || !strings.Contains(text, "has been deleted") {
		p.t.Errorf("registering for the deleted conference: %s %q; want 409 saying it has been deleted", status, text)
	}
}

// editAndDeleteLocation renames the location through the edit form, then deletes it, now that
// it holds no conference.
func editAndDeleteLocation(p *page) {
	p.t.Helper()
	p.do("edit the location", chromedpClick(`#location-table tbody tr button.edit`))
	p.until("the form holds the location", `document.querySelector('#location-form [name="city"]').value === "Austin"`)
	p.fill("#location-form", [][2]string{{"city", "Houston"}})
	p.until("the location is saved", `document.querySelector("#location-table tbody tr td:nth-child(3)")?.textContent === "Houston"`)
	p.do("delete the location", chromedpClick(`#location-table tbody tr button.delete`))
	p.until("the location is gone", `document.querySelectorAll("#location-table tbody tr").length === 0 && document.getElementById("location-answer").dataset.ok === "true"`)
}
