// Package process is the start of every command here. main hands run to Main; run hands its
// configuration loader and its body to Run, which refuses arguments (configuration comes from
// the environment only), cancels the context on SIGINT or SIGTERM, loads the configuration and
// sets up the logger it asks for. Tests call run with a fake environment and a buffer.
package process

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"conferencego/service/logging"
)

// Main calls run with the process's arguments, environment and standard output. An error goes
// to standard error on one line, after the command's name, and the process exits 1.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error) {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Config is what Run needs of a command's configuration: the logger it asks for
// (logging.Config, embedded, provides it).
type Config interface {
	Logger(w io.Writer) *slog.Logger
}

// Run refuses any argument, loads the configuration (load is told whether stdout is a
// terminal, for the default log format) and calls serve with a context that SIGINT or
// SIGTERM cancels and the configured logger. It returns serve's error, or the first problem.
func Run[C Config](ctx context.Context, args []string, getenv func(string) string, stdout io.Writer,
	load func(getenv func(string) string, terminal bool) (C, error),
	serve func(ctx context.Context, cfg C, log *slog.Logger) error,
) error {
	if len(args) > 1 {
		return fmt.Errorf("takes no arguments (got %q); it is configured by environment variables", args[1:])
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := load(getenv, logging.IsTerminal(stdout))
	if err != nil {
		return err
	}
	return serve(ctx, cfg, cfg.Logger(stdout))
}
