package host_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// probe is one answer of /v1/health or /v1/ready.
type probe struct {
	code int
	body api.HealthResponse
	raw  string
}

func getProbe(t *testing.T, url string) probe {
	t.Helper()
	code, out := do(t, http.MethodGet, url, nil, nil)
	var p probe
	p.code, p.raw = code, string(out)
	dec := json.NewDecoder(strings.NewReader(p.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.body); err != nil {
		t.Fatalf("%s: %d %s: %v", url, code, out, err)
	}
	return p
}

// TestHealthAndReady: /v1/health is the liveness probe (200 whenever the
// host serves) and /v1/ready the readiness probe (503 with the reason and
// the enclave's state unless the enclave runs, is unsealed and the audit
// log persists). Both carry the same body.
func TestHealthAndReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   string // the enclave's state; "" for no enclave at all
		dataDir bool
		// want, for /v1/ready: its status, error code and rule, and a
		// part of the message.
		code      int
		errCode   string
		rule      string
		msg       string
		wantState string
		noEnclave bool
	}{
		{name: "ready", state: "ready", dataDir: true, code: 200, wantState: "ready"},
		{name: "ephemeral seed", state: "ephemeral", dataDir: true, code: 200, wantState: "ephemeral"},
		{name: "locked", state: "locked", dataDir: true, code: 503, errCode: refusal.CodeEnclaveUnavailable, msg: "the enclave is locked", wantState: "locked"},
		{name: "enclave not running (restarting)", dataDir: true, code: 503, errCode: refusal.CodeEnclaveUnavailable, msg: "not reachable", noEnclave: true},
		{name: "no audit log", state: "ready", code: 503, errCode: refusal.CodeUnavailable, rule: refusal.RuleAudit, msg: "keeps no audit log", wantState: "ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := newSim(t)
			if tc.state != "" {
				startFake(t, sim, func(m proto.Message) proto.Message {
					if _, ok := m.(*proto.HealthRequest); ok {
						return &proto.HealthResponse{Version: "fake", State: tc.state, Keys: 2, PolicyVersion: 7, AuditSeq: 9}
					}
					return &proto.Error{Code: refusal.CodeInternal, Message: "not in this test"}
				})
			}
			cfg := &host.Config{Transport: sim.Endpoint(transport.ParentCID), RequestTimeout: 2 * time.Second}
			if tc.dataDir {
				cfg.DataDir = t.TempDir()
			}
			srv, err := host.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()

			ready := getProbe(t, ts.URL+"/v1/ready")
			health := getProbe(t, ts.URL+"/v1/health")
			if health.code != 200 {
				t.Errorf("health: %d %s, want 200 whatever the enclave's state", health.code, health.raw)
			}
			if ready.code != tc.code {
				t.Fatalf("ready: %d %s, want %d", ready.code, ready.raw, tc.code)
			}
			for name, p := range map[string]probe{"ready": ready, "health": health} {
				b := p.body
				if tc.code == 200 {
					if b.Status != api.StatusOK || b.Error != nil {
						t.Errorf("%s: %s, want status ok", name, p.raw)
					}
				} else if b.Status != api.StatusDegraded || b.Error == nil || b.Error.Code != tc.errCode || b.Error.Rule != tc.rule || !strings.Contains(b.Error.Message, tc.msg) {
					t.Errorf("%s: %s, want degraded, %s, rule %q, saying %q", name, p.raw, tc.errCode, tc.rule, tc.msg)
				}
				switch {
				case tc.noEnclave && b.Enclave != nil:
					t.Errorf("%s: %s, want no enclave part (the enclave did not answer)", name, p.raw)
				case !tc.noEnclave && (b.Enclave == nil || b.Enclave.State != tc.wantState || b.Enclave.Keys != 2 || b.Enclave.PolicyVersion != 7 || b.Enclave.AuditSeq != 9):
					t.Errorf("%s: %s, want the enclave's state %q and figures", name, p.raw, tc.wantState)
				}
			}
		})
	}
}

// TestReadyAuditFailing: a disk that cannot take the audit log stops
// every decision; /v1/ready says so (503, rule audit, the disk's error)
// while /v1/health stays 200.
func TestReadyAuditFailing(t *testing.T) {
	sim := newSim(t)
	_, signer := realEnclave(t, sim, 4)
	srv, url, _ := runHost(t, sim, t.TempDir())
	if p := getProbe(t, url+"/v1/ready"); p.code != 200 {
		t.Fatalf("ready before the disk fails: %d %s", p.code, p.raw)
	}
	c, _ := client.New(url, signer, nil)
	host.SetAuditWriteFailure(srv, func() error { return syscall.ENOSPC })
	if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(1)); err == nil {
		t.Fatal("signed with a full disk")
	}
	ready := getProbe(t, url+"/v1/ready")
	if b := ready.body; ready.code != 503 || b.Status != api.StatusDegraded || b.Error == nil || b.Error.Code != refusal.CodeUnavailable ||
		b.Error.Rule != refusal.RuleAudit || !strings.Contains(b.Error.Message, "no space left") || b.Enclave == nil {
		t.Fatalf("ready with a full disk: %d %s, want 503 unavailable, rule audit, naming the error, with the enclave's state", ready.code, ready.raw)
	}
	if health := getProbe(t, url+"/v1/health"); health.code != 200 || health.body.Status != api.StatusDegraded {
		t.Fatalf("health with a full disk: %d %s, want 200 degraded", health.code, health.raw)
	}
}
