package envconf

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) *Env {
	e, _ := New(func(k string) string { return m[k] })
	return e
}

func TestEveryProblemOnOneLine(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{
		"ADDR": "8000", "DB": "mysql://x", "ORIGINS": "localhost:3000, https://ok.example", "KEEP": "5s",
		"LEVEL": "loud", "FORMAT": "XML",
	})
	get := e.Get
	svc := e.HTTPService(get("ADDR", ":1"), get("DB", ""), get("ORIGINS", ""))
	if got := svc.CORSAllowedOrigins; len(got) != 1 || got[0] != "https://ok.example" {
		t.Errorf("Origins = %v, want the one good origin", got)
	}
	e.DurationOrOff(get("KEEP", "24h"), time.Minute, "24h")
	if got := e.Logging(get("LEVEL", "info"), get("FORMAT", "json")); got.LogFormat != "xml" {
		t.Errorf("LogFormat = %q, want the value in lower case", got.LogFormat)
	}
	err := e.Err()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Err = %v, want one line", err)
	}
	for _, name := range []string{"ADDR=", "DB:", "ORIGINS:", "KEEP=", "LEVEL=", "FORMAT=", "want text or json"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Err = %q, want it to name %s", err, name)
		}
	}
}

func TestDefaultsAndOff(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"BLANK": "  ", "OFF": "off", "ZERO": "0", "SPACED": " 2h "})
	get := e.Get
	if v := get("BLANK", "def"); v.Value != "def" {
		t.Errorf("a blank variable = %q, want the default", v.Value)
	}
	if d := e.DurationOrOff(get("OFF", "24h"), time.Minute, "24h"); d != 0 {
		t.Errorf("off = %v, want 0", d)
	}
	if d := e.DurationOrOff(get("ZERO", "24h"), time.Minute, "24h"); d != 0 {
		t.Errorf("0 = %v, want 0", d)
	}
	if d := e.DurationOrOff(get("SPACED", "24h"), time.Minute, "24h"); d != 2*time.Hour {
		t.Errorf("spaced = %v, want 2h", d)
	}
	if d := e.DurationOrOff(get("UNSET", "24h"), time.Minute, "24h"); d != 24*time.Hour {
		t.Errorf("unset = %v, want the default 24h", d)
	}
	svc := e.HTTPService(get("ADDR", ":8000"), get("DB", DefaultDatabaseURL), get("ORIGINS", DefaultCORSOrigins))
	if svc.HTTPAddr != ":8000" || len(svc.CORSAllowedOrigins) != 2 {
		t.Errorf("HTTPService = %+v, want the defaults", svc)
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err = %v, want none", err)
	}
}

func TestListenAddrPort(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"A": ":99999"})
	e.ListenAddr(e.Get("A", ""))
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "A=\":99999\": port") {
		t.Errorf("Err = %v, want the port named", err)
	}
}

func TestNumbersAndDurations(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"N": "0", "IDLE": "10ms", "GOOD": "250"})
	get := e.Get
	if n := e.Int(get("GOOD", "1"), 1, 1000); n != 250 {
		t.Errorf("Int = %d, want 250", n)
	}
	e.Int(get("N", "5"), 1, 1000)
	e.Duration(get("IDLE", "30s"), 100*time.Millisecond, "30s")
	if d := e.Duration(get("UNSET", "30s"), 100*time.Millisecond, "30s"); d != 30*time.Second {
		t.Errorf("Duration = %v, want the default", d)
	}
	want := `configuration: N="0": want a whole number from 1 to 1000; IDLE="10ms": want a duration of at least 100ms, like 30s`
	if err := e.Err(); err == nil || err.Error() != want {
		t.Errorf("Err = %v\nwant  %s", err, want)
	}
	if got := short(time.Minute); got != "1m" {
		t.Errorf("short(1m) = %q", got)
	}
	if got := short(2 * time.Hour); got != "2h" {
		t.Errorf("short(2h) = %q", got)
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"N": "x"})
	if cfg, err := Result(e, 7); cfg != 7 || err != nil {
		t.Errorf("Result = %v, %v; want the configuration", cfg, err)
	}
	e.Int(e.Get("N", "1"), 1, 2)
	if cfg, err := Result(e, 7); cfg != 0 || err == nil {
		t.Errorf("Result = %v, %v; want zero and the problem", cfg, err)
	}
}
