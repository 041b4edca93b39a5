// Package edgetest runs a fiber app for a test the way the services' main does: on a
// loopback port, behind httpedge.Lingering, so that requests cross a real connection.
// app.Test cannot show a 413 (it reports the oversized body as its own error) nor how a
// connection is closed.
package edgetest

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/httpedge"
)

// Serve runs app until the test ends and returns its base URL, http://127.0.0.1:port.
func Serve(tb testing.TB, app *fiber.App) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(httpedge.Lingering(ln)) }()
	tb.Cleanup(func() {
		// A connection the client dialled but never used counts as idle for the server only
		// after 5 s (as in net/http), so let the client close its spares first.
		http.DefaultClient.CloseIdleConnections()
		if err := app.ShutdownWithTimeout(10 * time.Second); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
