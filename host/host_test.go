package host_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// fakeEnclave serves the protocol on the simulator and records what it got.
type fakeEnclave struct {
	mu     sync.Mutex
	got    []*proto.SignRequest
	answer func(m proto.Message) proto.Message
	cancel context.CancelFunc
	done   chan struct{}
}

func startFake(t *testing.T, sim *vsocksim.Sim, answer func(proto.Message) proto.Message) *fakeEnclave {
	t.Helper()
	l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeEnclave{answer: answer, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		proto.Serve(ctx, l, proto.HandlerFunc(func(_ context.Context, m proto.Message) proto.Message {
			if sr, ok := m.(*proto.SignRequest); ok {
				f.mu.Lock()
				f.got = append(f.got, sr)
				f.mu.Unlock()
			}
			return f.answer(m)
		}), nil)
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeEnclave) stop() {
	f.cancel()
	<-f.done
}

func newServer(t *testing.T, sim *vsocksim.Sim, timeout time.Duration) *httptest.Server {
	t.Helper()
	s, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), RequestTimeout: timeout, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func newSim(t *testing.T) *vsocksim.Sim {
	t.Helper()
	sim, err := vsocksim.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func do(t *testing.T, method, url string, body []byte, header map[string][]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, b
}

func TestSignForwardsBytesUnchanged(t *testing.T) {
	sim := newSim(t)
	f := startFake(t, sim, func(proto.Message) proto.Message {
		r := &proto.SignResponse{SignedTransaction: []byte{0x02, 0xab}, AuditSeq: 9}
		r.From[19] = 0x01
		return r
	})
	ts := newServer(t, sim, 0)
	// Odd but byte-exact input: the host must not normalise anything.
	body := []byte("{ \"request_id\" : \"x\",\n\"timestamp_ms\":1 }  ")
	code, out := do(t, http.MethodPost, ts.URL+"/v1/sign", body, map[string][]string{"X-Nitrosign-Stamp": {"stamp-value"}})
	// The fake's answer carries no audit record: no record, no signature.
	if code != 500 || !strings.Contains(string(out), "no audit record") || strings.Contains(string(out), "signature") {
		t.Fatalf("an answer without an audit record was released: %d %s", code, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) != 1 || !bytes.Equal(f.got[0].Body, body) || f.got[0].Stamp != "stamp-value" {
		t.Fatalf("enclave got %+v", f.got)
	}
}

func TestErrorsMapToStatuses(t *testing.T) {
	sim := newSim(t)
	var mu sync.Mutex
	var next *proto.Error
	startFake(t, sim, func(proto.Message) proto.Message {
		mu.Lock()
		defer mu.Unlock()
		return next
	})
	ts := newServer(t, sim, 0)
	for _, tc := range []struct {
		err    proto.Error
		status int
	}{
		{proto.Error{Code: refusal.CodePolicyDenied, Rule: "destinations", Message: "no"}, 403},
		{proto.Error{Code: refusal.CodeUnauthorized, Message: "bad stamp"}, 401},
		{proto.Error{Code: refusal.CodeBadRequest, Message: "bad"}, 400},
		{proto.Error{Code: refusal.CodeUnknownKey, Message: "no key"}, 404},
		{proto.Error{Code: "something_new", Message: "?"}, 500},
	} {
		mu.Lock()
		e := tc.err
		next = &e
		mu.Unlock()
		code, out := do(t, http.MethodPost, ts.URL+"/v1/sign", []byte("{}"), nil)
		var er api.ErrorResponse
		if err := json.Unmarshal(out, &er); err != nil {
			t.Fatal(err)
		}
		if code != tc.status || er.Error.Code != tc.err.Code || er.Error.Rule != tc.err.Rule || er.Error.Message != tc.err.Message {
			t.Errorf("%s: %d %+v, want %d and the enclave's error", tc.err.Code, code, er.Error, tc.status)
		}
	}
}

func TestHostRefusesBeforeForwarding(t *testing.T) {
	sim := newSim(t)
	f := startFake(t, sim, func(proto.Message) proto.Message {
		return &proto.Error{Code: "internal", Message: "should not be reached"}
	})
	ts := newServer(t, sim, 0)
	code, out := do(t, http.MethodPost, ts.URL+"/v1/sign", []byte("{}"), map[string][]string{"X-Nitrosign-Stamp": {"a", "b"}})
	if code != 401 || !strings.Contains(string(out), "more than one") {
		t.Errorf("two stamp headers: %d %s", code, out)
	}
	code, out = do(t, http.MethodPost, ts.URL+"/v1/sign", bytes.Repeat([]byte{'{'}, api.MaxBodySize+1), nil)
	if code != 413 || !strings.Contains(string(out), refusal.CodeTooLarge) {
		t.Errorf("oversized body: %d %s", code, out)
	}
	// The sign route's shortcut past the mux answers as the mux would.
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/v1/sign", 405},
		{http.MethodPost, "/v1/sign/", 404},
		{http.MethodGet, "/v1/sig%6e", 405}, // /v1/sign, unescaped
		{http.MethodPost, "/v1%2Fsign", 404},
	} {
		if code, out := do(t, tc.method, ts.URL+tc.path, nil, nil); code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, out, tc.code)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) != 0 {
		t.Errorf("the enclave received %d requests the host should have refused", len(f.got))
	}
}

// TestEnclaveDownAndBack: while no enclave process answers (not started
// yet, or died and not restarted yet), the host keeps serving and every
// endpoint that needs the enclave, ready included, answers 503
// enclave_unavailable (health, the liveness probe, answers 200 degraded);
// once an enclave listens again (a new run) the host redials it by itself
// and ready is 200 again. Nothing in the host
// has to be restarted.
func TestEnclaveDownAndBack(t *testing.T) {
	sim := newSim(t)
	// A data directory: a host without one keeps no audit log and is
	// never ready.
	srv, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), RequestTimeout: 2 * time.Second, Conns: 2, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	answer := func(m proto.Message) proto.Message {
		switch m.(type) {
		case *proto.HealthRequest:
			return &proto.HealthResponse{Version: "fake", State: "ready", Keys: 1}
		case *proto.KeysRequest:
			return &proto.KeysResponse{Keys: []proto.Key{{ID: "hot-0", Path: "m/0"}}}
		default:
			return &proto.Error{Code: refusal.CodeInternal, Message: "not in this test"}
		}
	}
	down := func(t *testing.T, when string) {
		t.Helper()
		for _, tc := range []struct {
			name, method, path string
			body               []byte
		}{
			{"ready", http.MethodGet, "/v1/ready", nil},
			{"keys", http.MethodGet, "/v1/keys", nil},
			{"sign", http.MethodPost, "/v1/sign", []byte(`{}`)},
			{"attestation", http.MethodGet, "/v1/attestation", nil},
		} {
			// Each pooled connection may still look alive until it is
			// used once: the first answers may come from a broken one,
			// which is the same outcome.
			for range 3 {
				code, out := do(t, tc.method, ts.URL+tc.path, tc.body, nil)
				var e struct {
					Status string     `json:"status"`
					Error  *api.Error `json:"error"`
				}
				if err := json.Unmarshal(out, &e); err != nil {
					t.Fatalf("%s, %s: %d %s: %v", when, tc.name, code, out, err)
				}
				if code != 503 || e.Error == nil || e.Error.Code != refusal.CodeEnclaveUnavailable {
					t.Fatalf("%s, %s: %d %s, want 503 %s", when, tc.name, code, out, refusal.CodeEnclaveUnavailable)
				}
				if tc.name == "ready" && e.Status != api.StatusDegraded {
					t.Fatalf("%s, ready status %q, want %q", when, e.Status, api.StatusDegraded)
				}
			}
		}
		// Liveness: the host serves, and says what is wrong.
		code, out := do(t, http.MethodGet, ts.URL+"/v1/health", nil, nil)
		var h api.HealthResponse
		if err := json.Unmarshal(out, &h); err != nil || code != 200 || h.Status != api.StatusDegraded || h.Error == nil || h.Error.Code != refusal.CodeEnclaveUnavailable {
			t.Fatalf("%s: health %d %s, want 200 degraded %s", when, code, out, refusal.CodeEnclaveUnavailable)
		}
	}
	up := func(t *testing.T, when string) {
		t.Helper()
		var code int
		var out []byte
		for range 4 { // each of the 2 pooled connections may fail once
			if code, out = do(t, http.MethodGet, ts.URL+"/v1/ready", nil, nil); code == 200 {
				break
			}
		}
		var h api.HealthResponse
		if err := json.Unmarshal(out, &h); err != nil || code != 200 || h.Status != api.StatusOK || h.Enclave == nil || h.Enclave.State != "ready" {
			t.Fatalf("%s: ready %d %s, want 200 ok", when, code, out)
		}
		if code, out := do(t, http.MethodGet, ts.URL+"/v1/keys", nil, nil); code != 200 || !strings.Contains(string(out), `"hot-0"`) {
			t.Fatalf("%s: keys %d %s", when, code, out)
		}
	}

	down(t, "before the enclave starts")
	f := startFake(t, sim, answer)
	up(t, "the enclave started")
	// The enclave process dies: the host's connections break.
	f.stop()
	down(t, "the enclave died")
	// Its new run listens again: the host redials and is healthy.
	f = startFake(t, sim, answer)
	up(t, "the enclave restarted")
	f.stop()
	down(t, "the enclave died again")
	startFake(t, sim, answer)
	up(t, "the enclave restarted again")
}

func TestSlowEnclaveTimesOut(t *testing.T) {
	sim := newSim(t)
	release := make(chan struct{})
	startFake(t, sim, func(proto.Message) proto.Message {
		<-release
		return &proto.KeysResponse{}
	})
	defer close(release)
	ts := newServer(t, sim, 200*time.Millisecond)
	code, out := do(t, http.MethodGet, ts.URL+"/v1/keys", nil, nil)
	if code != 503 || !strings.Contains(string(out), "in time") {
		t.Fatalf("slow enclave: %d %s", code, out)
	}
}

func TestUnexpectedAnswerIsInternal(t *testing.T) {
	sim := newSim(t)
	startFake(t, sim, func(proto.Message) proto.Message { return &proto.HealthResponse{Version: "x"} })
	ts := newServer(t, sim, 0)
	code, out := do(t, http.MethodGet, ts.URL+"/v1/keys", nil, nil)
	if code != 500 || !strings.Contains(string(out), refusal.CodeInternal) {
		t.Fatalf("wrong answer type: %d %s", code, out)
	}
}

func TestNewNeedsTransport(t *testing.T) {
	if _, err := host.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := host.New(&host.Config{}); err == nil {
		t.Error("New without a transport succeeded")
	}
}

// TestNewBoundsConns: the pool stays within the connections the enclave
// accepts.
func TestNewBoundsConns(t *testing.T) {
	sim := newSim(t)
	if _, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), Conns: host.MaxConns + 1}); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("New with %d connections: %v", host.MaxConns+1, err)
	}
	if _, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), Conns: host.MaxConns}); err != nil {
		t.Fatalf("New with %d connections: %v", host.MaxConns, err)
	}
}

func TestServeTLS(t *testing.T) {
	sim := newSim(t)
	startFake(t, sim, func(proto.Message) proto.Message {
		return &proto.KeysResponse{Keys: []proto.Key{{ID: "hot-0", Path: "m/0"}}}
	})
	certPEM, keyPEM, pool := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)

	if _, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), TLSCertFile: certFile}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	s, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	// HTTP/2 where the client offers it (ALPN), HTTP/1.1 otherwise.
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		hc := &http.Client{Transport: tr}
		resp, err := hc.Get("https://" + l.Addr().String() + "/v1/keys")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hot-0") || resp.TLS == nil {
			t.Fatalf("HTTPS keys: %d %s", resp.StatusCode, b)
		}
		if want := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != want {
			t.Errorf("HTTPS with HTTP/2 offered %v: answered over %s, want HTTP/%d", h2, resp.Proto, want)
		}
	}
	// Plain HTTP to the TLS port gets nothing useful.
	if resp, err := http.Get("http://" + l.Addr().String() + "/v1/keys"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "nitrosign-host test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), pool
}

func TestMetrics(t *testing.T) {
	sim := newSim(t)
	startFake(t, sim, func(m proto.Message) proto.Message {
		switch m.(type) {
		case *proto.KeysRequest:
			return &proto.KeysResponse{}
		default:
			return &proto.Error{Code: refusal.CodePolicyDenied, Rule: "Destinations; DROP", Message: "no"}
		}
	})
	ts := newServer(t, sim, 0)
	do(t, http.MethodGet, ts.URL+"/v1/keys", nil, nil)
	do(t, http.MethodPost, ts.URL+"/v1/sign", []byte("{}"), nil)
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := string(b)
	for _, want := range []string{
		`nitrosign_http_requests_total{endpoint="/v1/keys",outcome="ok"} 1`,
		`nitrosign_http_requests_total{endpoint="/v1/sign",outcome="policy_denied"} 1`,
		// A rule that is not a plain identifier is not used as a label.
		`nitrosign_sign_decisions_total{outcome="policy_denied",rule="other"} 1`,
		`nitrosign_http_request_duration_seconds_count{endpoint="/v1/sign"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
