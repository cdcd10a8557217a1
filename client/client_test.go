package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/stamp"
)

// fakeHost is an httptest server that checks requests as nitrosign does:
// the stamp with stamp.Verify and the body with api.DecodeSignRequest.
type fakeHost struct {
	t      *testing.T
	srv    *httptest.Server
	client stamp.PublicKey // the registered client key

	mu   sync.Mutex
	reqs []*api.SignRequest
	seen map[string]bool
	// answer, when set, replaces the default answer to /v1/sign.
	answer func(w http.ResponseWriter, req *api.SignRequest)
}

func newFakeHost(t *testing.T, client stamp.PublicKey) *fakeHost {
	h := &fakeHost{t: t, client: client, seen: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sign", h.sign)
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.KeysResponse{Keys: []api.Key{{ID: "hot-1", Address: "0x00000000000000000000000000000000000000aa", Path: "m/44'/60'/0'/0/0"}}})
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.HealthResponse{Status: api.StatusOK, Enclave: &api.EnclaveHealth{Version: "test", Keys: 1}})
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code, rule, msg string) {
	writeJSON(w, refusal.Status(code), api.ErrorResponse{Error: api.Error{Code: code, Rule: rule, Message: msg}})
}

func (h *fakeHost) sign(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		fail(w, refusal.CodeBadRequest, "", "content type "+ct)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodySize))
	if err != nil {
		fail(w, refusal.CodeTooLarge, "", err.Error())
		return
	}
	key, err := stamp.Verify(r.Header.Get(stamp.Header), body)
	if err != nil {
		fail(w, refusal.CodeUnauthorized, "", err.Error())
		return
	}
	if !key.Equal(h.client) {
		fail(w, refusal.CodeUnauthorized, "", "unknown client "+key.String())
		return
	}
	req, err := api.DecodeSignRequest(body)
	if err != nil {
		var e *api.Error
		errors.As(err, &e)
		fail(w, e.Code, "", e.Message)
		return
	}
	h.mu.Lock()
	replay := h.seen[req.RequestID]
	h.seen[req.RequestID] = true
	h.reqs = append(h.reqs, req)
	seq := uint64(len(h.reqs))
	answer := h.answer
	h.mu.Unlock()
	if replay {
		fail(w, refusal.CodeReplayedRequest, "", "request_id seen")
		return
	}
	if answer != nil {
		answer(w, req)
		return
	}
	unsigned, _ := req.EthTransaction.Bytes()
	writeJSON(w, 200, api.SignResponse{
		From:              "0x00000000000000000000000000000000000000aa",
		Signature:         "0x" + strings.Repeat("11", 65),
		SignedTransaction: "0x" + hex.EncodeToString(unsigned) + "ff",
		TransactionHash:   "0x" + strings.Repeat("22", 32),
		AuditSeq:          seq,
	})
}

func (h *fakeHost) requests() []*api.SignRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*api.SignRequest(nil), h.reqs...)
}

func newSigner(t *testing.T, scheme stamp.Scheme) stamp.Signer {
	t.Helper()
	s, err := stamp.GenerateSigner(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var fixedNow = time.UnixMilli(1700000000123)

func TestSignTransaction(t *testing.T) {
	for _, scheme := range []stamp.Scheme{stamp.Ed25519, stamp.P256} {
		t.Run(string(scheme), func(t *testing.T) {
			s := newSigner(t, scheme)
			h := newFakeHost(t, s.PublicKey())
			c, err := New(h.srv.URL, s, &Options{
				Now:  func() time.Time { return fixedNow },
				Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 16)),
			})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.SignTransaction(context.Background(), "hot-1", []byte{0x02, 0xc0})
			if err != nil {
				t.Fatal(err)
			}
			want := api.SignResponse{
				From:              "0x00000000000000000000000000000000000000aa",
				Signature:         "0x" + strings.Repeat("11", 65),
				SignedTransaction: "0x02c0ff",
				TransactionHash:   "0x" + strings.Repeat("22", 32),
				AuditSeq:          1,
			}
			if *resp != want {
				t.Errorf("response %+v, want %+v", *resp, want)
			}
			reqs := h.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			got := reqs[0]
			if got.RequestID != strings.Repeat("ab", 16) || got.TimestampMS != 1700000000123 || got.Key != "hot-1" || got.EthTransaction.Unsigned != "0x02c0" {
				t.Errorf("server saw %+v", got)
			}
		})
	}
}

func TestFreshRequestIDs(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	c, err := New(h.srv.URL+"/", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.SignTransaction(context.Background(), "hot-1", []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := h.requests()
	ids := map[string]bool{}
	for _, r := range reqs {
		if len(r.RequestID) != 32 {
			t.Errorf("request_id %q is not 16 bytes of hex", r.RequestID)
		}
		ids[r.RequestID] = true
		if d := time.Since(time.UnixMilli(r.TimestampMS)); d < 0 || d > time.Minute {
			t.Errorf("timestamp_ms %d is not now", r.TimestampMS)
		}
	}
	if len(ids) != 3 {
		t.Errorf("request ids repeat: %v", ids)
	}
}

func TestAPIErrors(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		code    string
		rule    string
		msg     string
	}{
		{"policy denied", func(w http.ResponseWriter, r *http.Request) {
			fail(w, refusal.CodePolicyDenied, "destination_allowlist", "destination not allowlisted")
		}, 403, refusal.CodePolicyDenied, "destination_allowlist", "destination not allowlisted"},
		{"unavailable", func(w http.ResponseWriter, r *http.Request) {
			fail(w, refusal.CodeUnavailable, "", "enclave starting")
		}, 503, refusal.CodeUnavailable, "", "enclave starting"},
		{"proxy html", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		}, 502, "", "", "HTTP 502 Bad Gateway, not a nitrosign error answer"},
		{"json without code", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"error":{}}`)
		}, 500, "", "", "not a nitrosign error answer"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere.invalid/v1/sign", http.StatusTemporaryRedirect)
		}, 307, "", "", "HTTP 307"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := New(srv.URL, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.SignTransaction(context.Background(), "hot-1", []byte{1})
			if err == nil {
				t.Fatalf("got %+v, want an error", resp)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T %v is not an *APIError", err, err)
			}
			if ae.Status != tt.status || ae.Code != tt.code || ae.Rule != tt.rule || !strings.Contains(ae.Message, tt.msg) {
				t.Errorf("got %+v", ae)
			}
			if !strings.HasPrefix(err.Error(), "client: HTTP ") {
				t.Errorf("Error() = %q", err)
			}
			var we *api.Error
			if !errors.As(err, &we) || we.Code != tt.code || we.Rule != tt.rule {
				t.Errorf("errors.As *api.Error: %+v", we)
			}
		})
	}
}

func TestErrorFromFakeHost(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	other := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, other.PublicKey()) // s is not registered
	c, _ := New(h.srv.URL, s, nil)
	_, err := c.SignTransaction(context.Background(), "hot-1", []byte{1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != refusal.CodeUnauthorized {
		t.Fatalf("error = %v", err)
	}
	if want := "client: HTTP 401: unknown client " + s.PublicKey().String() + " (unauthorized)"; err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err, want)
	}
}

func TestReplayedRequestID(t *testing.T) {
	s := newSigner(t, stamp.P256)
	h := newFakeHost(t, s.PublicKey())
	fixed := bytes.Repeat([]byte{7}, 32) // two identical request ids
	c, _ := New(h.srv.URL, s, &Options{Rand: bytes.NewReader(fixed)})
	if _, err := c.SignTransaction(context.Background(), "hot-1", []byte{1}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SignTransaction(context.Background(), "hot-1", []byte{1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != refusal.CodeReplayedRequest || ae.Status != 401 {
		t.Fatalf("error = %v", err)
	}
	// The reader is now empty: generating a request id fails cleanly.
	if _, err := c.SignTransaction(context.Background(), "hot-1", []byte{1}); err == nil || !strings.Contains(err.Error(), "request_id") {
		t.Fatalf("error = %v", err)
	}
}

func TestUnexpectedAnswers(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"accepted", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 202, map[string]string{"approval_id": "a1"})
		}, "202 answer with status \"\" and approval_id \"a1\" is not a pending approval"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.Write(bytes.Repeat([]byte(" "), 2048))
		}, "answer larger than 1024 bytes"},
		{"not json", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}, "decoding answer"},
		{"empty signature", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, api.SignResponse{From: "0xaa"})
		}, "lacks from or signature"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body) // so that the server notices the client leaving
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := New(srv.URL, s, &Options{MaxResponseSize: 1024, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.SignTransaction(context.Background(), "hot-1", []byte{1})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "client: ") {
				t.Fatalf("got %+v, %v; want error containing %q", resp, err, tt.want)
			}
			var ae *APIError
			if errors.As(err, &ae) {
				t.Errorf("a 2xx or transport failure became an APIError: %v", err)
			}
		})
	}
}

func TestContextCanceled(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	c, _ := New(h.srv.URL, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.SignTransaction(ctx, "hot-1", []byte{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestLocalValidation(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	c, _ := New(h.srv.URL, s, nil)
	for _, tt := range []struct {
		name     string
		key      string
		unsigned []byte
		want     string
	}{
		{"empty key", "", []byte{1}, "key: must be 1 to 128"},
		{"key with space", "hot 1", []byte{1}, "key: character 3"},
		{"empty transaction", "hot-1", nil, "empty transaction"},
		{"too large", "hot-1", make([]byte, api.MaxBodySize/2), "limit 262144"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.SignTransaction(context.Background(), tt.key, tt.unsigned)
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("%d invalid requests reached the server", n)
	}
}

func TestKeysAndHealth(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	c, err := New(h.srv.URL, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 || keys.Keys[0].ID != "hot-1" || keys.Keys[0].Path != "m/44'/60'/0'/0/0" {
		t.Errorf("Keys() = %+v", keys)
	}
	health, err := c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != api.StatusOK || health.Enclave == nil || health.Enclave.Version != "test" {
		t.Errorf("Health() = %+v", health)
	}
}

func TestBasePath(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		writeJSON(w, 200, api.HealthResponse{Status: api.StatusOK})
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/nitrosign/", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got != "/nitrosign/v1/health" {
		t.Errorf("path %q", got)
	}
}

func TestNewRefuses(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	for _, u := range []string{"", "signer:8420", "ftp://signer", "http://", "https://u:p@signer", "http://signer?x=1", "http://signer#f", "http://[::1"} {
		if _, err := New(u, s, nil); err == nil || !strings.HasPrefix(err.Error(), "client: ") {
			t.Errorf("New(%q) error = %v", u, err)
		}
	}
}

func TestReadOnlyClientCannotSign(t *testing.T) {
	c, err := New("http://signer", nil, nil)
	if err != nil {
		t.Fatalf("a read-only client (nil signer) was refused: %v", err)
	}
	if _, err := c.SignTransaction(context.Background(), "hot-0", []byte{2, 0xc0}); err == nil || !strings.Contains(err.Error(), "no signer") {
		t.Errorf("SignTransaction without a signer: err = %v", err)
	}
	if _, _, err := c.StampRequest(&api.SignRequest{Key: "hot-0", EthTransaction: api.NewEthTransaction([]byte{2, 0xc0})}); err == nil {
		t.Error("StampRequest without a signer succeeded")
	}
}

func TestStampRequestEveryPayload(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	c, err := New("http://signer", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*api.SignRequest{
		{Key: "hot-0", EthTransaction: api.NewEthTransaction([]byte{2, 0xc0})},
		{Key: "hot-0", EthPersonalMessage: &api.EthPersonalMessage{Message: "0x6869"}},
		{Key: "hot-0", EthTypedData: &api.EthTypedData{JSON: []byte(`{"types":{},"primaryType":"X","domain":{},"message":{}}`)}},
	} {
		body, header, err := c.StampRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := stamp.Verify(header, body)
		if err != nil || !pub.Equal(s.PublicKey()) {
			t.Fatalf("stamp over %s: %v", body, err)
		}
		got, err := api.DecodeSignRequest(body)
		if err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if got.RequestID == "" || got.TimestampMS == 0 || got.Key != "hot-0" {
			t.Errorf("body %s lacks id, time or key", body)
		}
		if req.RequestID != "" || req.TimestampMS != 0 {
			t.Error("StampRequest changed the caller's request")
		}
	}
	// Two stamps of one request get two request ids.
	r := &api.SignRequest{Key: "hot-0", EthPersonalMessage: &api.EthPersonalMessage{Message: "0x00"}}
	a, _, _ := c.StampRequest(r)
	b, _, _ := c.StampRequest(r)
	if string(a) == string(b) {
		t.Error("two stamped requests are identical: request ids repeat")
	}
}
