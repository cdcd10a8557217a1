package logging

import (
	"bytes"
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
