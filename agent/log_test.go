package agent

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer for a logger used from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRequestLog: one line per request, with the method, account,
// outcome, rule and audit sequence number, and nothing of the request's
// payload.
func TestRequestLog(t *testing.T) {
	h := newFakeHost(t)
	var buf lockedBuffer
	a := newFakeAgent(t, h, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	secret := []byte("a message that must not be logged")
	msg := "0x" + hex.EncodeToString(secret)
	requestLines := func() []string {
		var out []string
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "msg=request") {
				out = append(out, l)
			}
		}
		return out
	}

	if _, jerr := call(t, a, "personal_sign", msg, h.Addr.Hex()); jerr != nil {
		t.Fatal(jerr)
	}
	h.setAnswer(func([]byte) (int, []byte) {
		return http.StatusForbidden, []byte(`{"error":{"code":"policy_denied","rule":"destinations","message":"not on the allowlist"}}`)
	})
	if _, jerr := call(t, a, "personal_sign", msg, h.Addr.Hex()); jerr == nil {
		t.Fatal("refusal not answered")
	}
	lines := requestLines()
	if len(lines) != 2 {
		t.Fatalf("%d request lines:\n%s", len(lines), buf.String())
	}
	for i, want := range [][]string{
		{"method=personal_sign", "outcome=ok", "account=" + h.Addr.Hex(), "audit_seq=1", "duration="},
		{"method=personal_sign", "outcome=refused", "code=-32000", "refusal=policy_denied", "rule=destinations"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %s", i, w, lines[i])
			}
		}
	}
	if strings.Contains(buf.String(), hex.EncodeToString(secret)) || strings.Contains(buf.String(), string(secret)) {
		t.Errorf("the payload was logged:\n%s", buf.String())
	}
}
