package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/stamp"
)

// TestSignCurlRunsOnce: `sign --curl` prints a command that posts the
// stamped request once. Run again, the host refuses it as a replay, and
// curl (--fail-with-body) exits non-zero and still prints the refusal; the
// note on stderr says the command is single-use. The fake host checks the
// stamp and remembers request ids as the enclave does.
func TestSignCurlRunsOnce(t *testing.T) {
	_, keyFile := approverKey(t, stamp.Ed25519) // any key: the fake host registers none
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/sign" || r.Header.Get("Content-Type") != "application/json" {
			reply(w, 400, api.ErrorResponse{Error: api.Error{Code: refusal.CodeBadRequest, Message: "path or content type"}})
			return
		}
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), b); err != nil {
			reply(w, 401, api.ErrorResponse{Error: api.Error{Code: refusal.CodeUnauthorized, Message: err.Error()}})
			return
		}
		var req api.SignRequest
		if err := json.Unmarshal(b, &req); err != nil || req.RequestID == "" || req.Key != "hot-0" {
			reply(w, 400, api.ErrorResponse{Error: api.Error{Code: refusal.CodeBadRequest, Message: "body"}})
			return
		}
		mu.Lock()
		replayed := seen[req.RequestID]
		seen[req.RequestID] = true
		mu.Unlock()
		if replayed {
			reply(w, 401, api.ErrorResponse{Error: api.Error{Code: refusal.CodeReplayedRequest, Message: "request_id already used"}})
			return
		}
		reply(w, 200, api.SignResponse{From: approveKeyHex, Signature: "0x" + strings.Repeat("11", 65), Digest: "0x" + strings.Repeat("22", 32), AuditSeq: 1})
	}))
	defer srv.Close()

	code, out, errOut := runCLI(t, "", "sign", "--host", srv.URL+"/", "--client-key", keyFile, "--key", "hot-0", "--message", "it's single-use", "--curl")
	if code != 0 {
		t.Fatalf("sign --curl: exit %d %s", code, errOut)
	}
	if !strings.HasPrefix(out, "curl -sS --fail-with-body -X POST '"+srv.URL+"/v1/sign' ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("sign --curl printed %q", out)
	}
	for _, want := range []string{"runs once", "replayed_request", "5 minutes", "stale_request", "exits 22"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the note lacks %q: %q", want, errOut)
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl to run the printed command")
	}
	first, err := exec.Command("bash", "-c", out).Output()
	if err != nil || !strings.Contains(string(first), `"signature"`) {
		t.Fatalf("first run: %v: %s", err, first)
	}
	second, err := exec.Command("bash", "-c", out).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 22 || !strings.Contains(string(second), refusal.CodeReplayedRequest) {
		t.Fatalf("second run: %v, want exit 22 with the refusal printed: %s", err, second)
	}
}
