package process

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"conferencego/service/logging"
)

type config struct{ logging.Config }

func load(getenv func(string) string, terminal bool) (config, error) {
	if getenv("BAD") != "" {
		return config{}, errors.New("configuration: BAD")
	}
	return config{logging.Config{LogLevel: slog.LevelInfo, LogFormat: logging.DefaultFormat(terminal)}}, nil
}

func TestRunRefusesArgumentsAndBadConfiguration(t *testing.T) {
	t.Parallel()
	serve := func(context.Context, config, *slog.Logger) error { t.Error("serve was called"); return nil }
	err := Run(context.Background(), []string{"cmd", "serve"}, func(string) string { return "" }, &bytes.Buffer{}, load, serve)
	if err == nil || !strings.Contains(err.Error(), "environment variables") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Run = %v, want one line saying the command is configured by environment variables", err)
	}
	err = Run(context.Background(), nil, func(string) string { return "x" }, &bytes.Buffer{}, load, serve)
	if err == nil || err.Error() != "configuration: BAD" {
		t.Errorf("Run = %v, want the loader's error", err)
	}
}

// TestRunCancelsOnSIGTERM sends the process itself SIGTERM: serve's context must end, and the
// test process must live on (Run took the signal over). It logs through the configured logger.
func TestRunCancelsOnSIGTERM(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"cmd"}, func(string) string { return "" }, &out, load,
		func(ctx context.Context, cfg config, log *slog.Logger) error {
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			log.Info("stopped")
			return nil
		})
	if err != nil || !strings.Contains(out.String(), `"msg":"stopped"`) {
		t.Errorf("Run = %v, logs %q; want nil and a JSON line", err, out.String())
	}
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	families, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	if !names["go_goroutines"] || !names["process_start_time_seconds"] {
		t.Errorf("metrics %v; want the Go and process collectors'", names)
	}
}
