// Package process is the start of every command here: main hands its run function to Main,
// and run begins with Start. Configuration comes from the environment only, so arguments are
// refused, and SIGINT or SIGTERM cancels the context that run shuts down on.
package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a command's body: run(ctx, args, getenv, stdout), which tests call with a fake
// environment and a buffer.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// Main calls run with the process's arguments, environment and standard output. An error goes
// to standard error on one line, after the command's name, and the process exits 1.
func Main(name string, run Run) {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Start refuses any argument and returns ctx cancelled on SIGINT or SIGTERM; stop releases
// the signals.
func Start(ctx context.Context, args []string) (_ context.Context, stop context.CancelFunc, _ error) {
	if len(args) > 1 {
		return nil, nil, fmt.Errorf("takes no arguments (got %q); it is configured by environment variables", args[1:])
	}
	ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return ctx, stop, nil
}
