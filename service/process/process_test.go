package process

import (
	"context"
	"strings"
	"syscall"
	"testing"
)

func TestStartRefusesArguments(t *testing.T) {
	t.Parallel()
	_, _, err := Start(context.Background(), []string{"cmd", "serve"})
	if err == nil || !strings.Contains(err.Error(), "environment variables") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start = %v, want one line saying the command is configured by environment variables", err)
	}
}

// TestStartCancelsOnSIGTERM sends the process itself SIGTERM: Start's context must end, and
// the test process must live on (NotifyContext took the signal over).
func TestStartCancelsOnSIGTERM(t *testing.T) {
	ctx, stop, err := Start(context.Background(), []string{"cmd"})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
}
