package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	New(&buf, slog.LevelWarn, FormatJSON).Info("dropped")
	New(&buf, slog.LevelWarn, FormatJSON).Warn("kept", "n", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "kept" {
		t.Fatalf("JSON log %q (%v); want the one warning as one JSON object", buf.String(), err)
	}
	buf.Reset()
	New(&buf, slog.LevelInfo, FormatText).Info("hello")
	if !strings.Contains(buf.String(), "msg=hello") {
		t.Errorf("text log %q; want msg=hello", buf.String())
	}
}

func TestDefaultFormat(t *testing.T) {
	t.Parallel()
	if DefaultFormat(true) != FormatText || DefaultFormat(false) != FormatJSON {
		t.Errorf("DefaultFormat: want text at a terminal, JSON elsewhere")
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Errorf("IsTerminal(buffer) = true")
	}
}

func TestConfigLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	Config{LogLevel: slog.LevelDebug, LogFormat: FormatText}.Logger(&buf).Debug("seen")
	if !strings.Contains(buf.String(), "msg=seen") {
		t.Errorf("log %q; want the debug line in text", buf.String())
	}
}
