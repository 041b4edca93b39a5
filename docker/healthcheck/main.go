// Command healthcheck is the container health check of the three services' images. The final
// image holds nothing but the service's static binary and this one, so there is no shell, curl or
// wget to ask the service's HTTP endpoint; the services themselves get no health-check flag, so
// that the tested binary is exactly the shipped one. It exits 0 when a GET of the URL answers
// 2xx within two seconds, and 1 otherwise, saying why on one line.
//
//	healthcheck [URL]
//
// Without a URL it asks http://127.0.0.1:<port>/readyz, the port taken from HTTP_ADDR as the
// service reads it, so the image's own HEALTHCHECK fits every service.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	var target string
	switch len(args) {
	case 0:
		_, port, err := net.SplitHostPort(getenv("HTTP_ADDR"))
		if err != nil || port == "" {
			return fmt.Errorf("no URL given and HTTP_ADDR=%q names no port", getenv("HTTP_ADDR"))
		}
		target = "http://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
	case 1:
		target = args[0]
	default:
		return fmt.Errorf("want at most one argument, a URL; got %d", len(args))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	// No proxy from the environment: the check is about this container's own port.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", target, resp.Status, body)
	}
	return nil
}
