package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") || !strings.Contains(out, "k=1") {
		t.Fatalf("output %q", out)
	}
	if _, err := New(&buf, "loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("bad level: err = %v", err)
	}
}

// TestFormats checks that both formats carry the same fields, and that a
// JSON line parses as one object with them.
func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		parse        func(t *testing.T, line string) map[string]string
	}{
		{"text", FormatText, func(t *testing.T, line string) map[string]string {
			m := map[string]string{}
			for _, kv := range strings.Fields(line) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("text line %q: field %q has no =", line, kv)
				}
				m[k] = strings.Trim(v, `"`)
			}
			return m
		}},
		{"json", FormatJSON, func(t *testing.T, line string) map[string]string {
			var raw map[string]any
			dec := json.NewDecoder(strings.NewReader(line))
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("json line %q: %v", line, err)
			}
			if dec.More() {
				t.Fatalf("json line %q: more than one value", line)
			}
			m := map[string]string{}
			for k, v := range raw {
				m[k] = strings.Trim(string(mustJSON(t, v)), `"`)
			}
			return m
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewFormat(&buf, "info", tc.format)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("hidden")
			log.Info("listening", "url", "https://127.0.0.1:8420", "conns", 4, "err", errors.New("boom"))
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1: %q", len(lines), buf.String())
			}
			got := tc.parse(t, lines[0])
			want := map[string]string{"level": "INFO", "msg": "listening", "url": "https://127.0.0.1:8420", "conns": "4", "err": "boom"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("field %s = %q, want %q (line %q)", k, got[k], v, lines[0])
				}
			}
			if got["time"] == "" {
				t.Errorf("no time field in %q", lines[0])
			}
			if len(got) != len(want)+1 {
				t.Errorf("fields %v, want those of %v and time", got, want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadFormat(t *testing.T) {
	for _, f := range []string{"", "JSON", "logfmt"} {
		if _, err := NewFormat(&bytes.Buffer{}, "info", f); err == nil || !strings.Contains(err.Error(), "want text or json") {
			t.Errorf("format %q: err = %v", f, err)
		}
	}
}
