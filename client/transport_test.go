package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/stamp"
)

// seen is what a recordingRT saw of one request it carried.
type seen struct {
	req    *http.Request
	header http.Header
	body   []byte
}

// recordingRT is a base transport that records every request it carries,
// with its body, and sends it on with http.DefaultTransport.
type recordingRT struct {
	mu   sync.Mutex
	seen []seen
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	s := seen{req: req, header: req.Header.Clone()}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		s.body = b
		out := req.Clone(req.Context())
		out.Body = io.NopCloser(bytes.NewReader(b))
		req = out
	}
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recordingRT) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.seen...)
}

// closeTracker is a request body that remembers being closed.
type closeTracker struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeTracker) Close() error { c.closed.Add(1); return nil }

// signBody returns the JSON body of a sign request with the given
// request_id, as a caller of the transport builds it.
func signBody(t *testing.T, id string) []byte {
	t.Helper()
	body, err := json.Marshal(&api.SignRequest{RequestID: id, TimestampMS: fixedNow.UnixMilli(), Key: "hot-1", EthTransaction: api.NewEthTransaction([]byte{0x02, 0xc0})})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// snapshot is what the caller can see of a request, for checking that
// RoundTrip changed none of it.
type snapshot struct {
	method, url   string
	header        http.Header
	contentLength int64
	hasGetBody    bool
}

func snap(r *http.Request) snapshot {
	return snapshot{r.Method, r.URL.String(), r.Header.Clone(), r.ContentLength, r.GetBody != nil}
}

// TestStampingTransportSigns: a request sent through the transport arrives
// with a stamp that verifies over exactly its body (fakeHost checks it with
// stamp.Verify), the host signs, and the caller's request is as it was.
func TestStampingTransportSigns(t *testing.T) {
	for _, scheme := range []stamp.Scheme{stamp.Ed25519, stamp.P256} {
		t.Run(string(scheme), func(t *testing.T) {
			s := newSigner(t, scheme)
			h := newFakeHost(t, s.PublicKey())
			base := &recordingRT{}
			hc := &http.Client{Transport: NewStampingTransport(base, s)}

			body := signBody(t, "tx-1")
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/sign", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			before := snap(req)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d: %s", resp.StatusCode, data)
			}
			var sr api.SignResponse
			if err := json.Unmarshal(data, &sr); err != nil || sr.Signature == "" {
				t.Fatalf("answer %s: %v", data, err)
			}
			if got := h.requests(); len(got) != 1 || got[0].RequestID != "tx-1" {
				t.Fatalf("host saw %+v", got)
			}

			// What went to the base transport: a clone, with the body as
			// the caller wrote it and a stamp over exactly those bytes.
			got := base.requests()
			if len(got) != 1 {
				t.Fatalf("base transport carried %d requests", len(got))
			}
			sent := got[0]
			if sent.req == req {
				t.Error("the base transport got the caller's request, not a clone")
			}
			if !bytes.Equal(sent.body, body) || sent.req.ContentLength != int64(len(body)) {
				t.Errorf("sent body %q (Content-Length %d), want %q", sent.body, sent.req.ContentLength, body)
			}
			if key, err := stamp.Verify(sent.header.Get(stamp.Header), body); err != nil || !key.Equal(s.PublicKey()) {
				t.Errorf("stamp: key %v, %v", key, err)
			}
			if sent.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q lost", sent.header.Get("Content-Type"))
			}
			rb, err := sent.req.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := io.ReadAll(rb); !bytes.Equal(again, body) {
				t.Errorf("GetBody gives %q", again)
			}

			// The caller's request: nothing changed but its spent body, and
			// it can be sent again from GetBody (which replays it).
			if after := snap(req); !reflect.DeepEqual(before, after) {
				t.Errorf("the caller's request changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if req.Header.Get(stamp.Header) != "" {
				t.Error("the caller's request got the stamp header")
			}
			rb, _ = req.GetBody()
			if again, _ := io.ReadAll(rb); !bytes.Equal(again, body) {
				t.Errorf("the caller's GetBody gives %q", again)
			}
		})
	}
}

// TestStampingTransportReplay: the transport stamps the body as it is, so
// sending the same body twice is a replay, which the host refuses.
func TestStampingTransportReplay(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	hc := &http.Client{Transport: NewStampingTransport(nil, s)}
	body := signBody(t, "same")
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		resp, err := hc.Post(h.srv.URL+"/v1/sign", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var er api.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != want || i == 1 && er.Error.Code != refusal.CodeReplayedRequest {
			t.Fatalf("send %d: HTTP %d %+v, want %d", i+1, resp.StatusCode, er.Error, want)
		}
	}
}

// TestStampingTransportSizeCap: a body of api.MaxBodySize bytes is stamped,
// one byte more is refused without sending anything, whether its length is
// declared or found by reading; the body is closed either way.
func TestStampingTransportSizeCap(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	base := &recordingRT{}
	rt := NewStampingTransport(base, s)

	// At the cap: stamped and sent. (The fake host then refuses the body as
	// not a sign request, after its stamp verified.)
	atCap := bytes.Repeat([]byte{'x'}, api.MaxBodySize)
	resp, err := rt.RoundTrip(mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", bytes.NewReader(atCap)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body at the cap: HTTP %d, want 400 (stamp verified, body refused)", resp.StatusCode)
	}

	over := bytes.Repeat([]byte{'x'}, api.MaxBodySize+1)
	for _, tc := range []struct {
		name     string
		body     io.Reader
		declared int64 // the Content-Length, 0 for unknown
	}{
		{"declared", bytes.NewReader(over), int64(len(over))},
		{"read", bytes.NewReader(over), 0},
		{"endless", iotest.OneByteReader(zeros{}), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := &closeTracker{Reader: tc.body}
			req := mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", ct)
			req.ContentLength = tc.declared
			_, err := rt.RoundTrip(req)
			if !errors.Is(err, ErrNotStamped) || !strings.Contains(err.Error(), "262144") {
				t.Fatalf("error = %v, want ErrNotStamped naming the limit", err)
			}
			if ct.closed.Load() == 0 {
				t.Error("the body was not closed")
			}
		})
	}
	if n := len(base.requests()); n != 1 {
		t.Errorf("base transport carried %d requests, want only the one at the cap", n)
	}
}

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct, ok := body.(*closeTracker); ok {
		req.Body = ct // NewRequest wraps other readers in a NopCloser
	}
	return req
}

// failingSigner is a stamp.Signer whose signing fails.
type failingSigner struct{ stamp.Signer }

func (failingSigner) SignBody([]byte) ([]byte, error) { return nil, errors.New("hsm unavailable") }

// TestStampingTransportRefuses: every request the transport cannot stamp
// gets an error wrapping ErrNotStamped, says why, and sends nothing.
func TestStampingTransportRefuses(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	body := signBody(t, "r-1")
	stamped := func() *http.Request {
		r := mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", bytes.NewReader(body))
		r.Header.Set(stamp.Header, "already")
		return r
	}
	tests := []struct {
		name   string
		signer stamp.Signer
		req    func() *http.Request
		want   string
	}{
		{"post without body", s, func() *http.Request { return mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", nil) }, "no body to stamp"},
		{"post with empty body", s, func() *http.Request {
			return mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", &closeTracker{Reader: strings.NewReader("")})
		}, "no body to stamp"},
		{"put without body", s, func() *http.Request { return mustRequest(t, http.MethodPut, h.srv.URL+"/v1/sign", http.NoBody) }, "no body to stamp"},
		{"already stamped", s, stamped, "already carries a X-Nitrosign-Stamp header"},
		{"no signer", nil, func() *http.Request {
			return mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", bytes.NewReader(body))
		}, "no signer"},
		{"signer fails", failingSigner{s}, func() *http.Request {
			return mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", bytes.NewReader(body))
		}, "hsm unavailable"},
		{"unreadable body", s, func() *http.Request {
			return mustRequest(t, http.MethodPost, h.srv.URL+"/v1/sign", &closeTracker{Reader: iotest.ErrReader(errors.New("disk gone"))})
		}, "reading the body: disk gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := &recordingRT{}
			req := tc.req()
			before := snap(req)
			_, err := NewStampingTransport(base, tc.signer).RoundTrip(req)
			if !errors.Is(err, ErrNotStamped) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrNotStamped with %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "client: request not stamped: "+req.Method+" /v1/sign: ") {
				t.Errorf("error %q does not say which request", err)
			}
			if n := len(base.requests()); n != 0 {
				t.Errorf("base transport carried %d requests", n)
			}
			if ct, ok := req.Body.(*closeTracker); ok && ct.closed.Load() == 0 {
				t.Error("the body was not closed")
			}
			if after := snap(req); !reflect.DeepEqual(before, after) {
				t.Errorf("the caller's request changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	if got := h.requests(); len(got) != 0 {
		t.Errorf("the host saw %d requests", len(got))
	}
}

// TestStampingTransportRedirect: a host that redirects a stamped request
// elsewhere gets nothing stamped sent there: http.Client's second request
// is refused. Through a url.Error, errors.Is still finds ErrNotStamped.
func TestStampingTransportRedirect(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, other.URL+"/v1/sign", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	hc := &http.Client{Transport: NewStampingTransport(nil, s)}
	_, err := hc.Post(redirector.URL+"/v1/sign", "application/json", bytes.NewReader(signBody(t, "redir")))
	var ue *url.Error
	if !errors.As(err, &ue) || !errors.Is(err, ErrNotStamped) || !strings.Contains(err.Error(), "redirected by a 307 answer") {
		t.Fatalf("error = %v, want ErrNotStamped for the redirect", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

// TestStampingTransportNoBody: requests without a body go out unstamped
// (the host authenticates bodies only), so one http.Client serves the
// whole API; an empty GET body is replaced by none.
func TestStampingTransportNoBody(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	h := newFakeHost(t, s.PublicKey())
	base := &recordingRT{}
	hc := &http.Client{Transport: NewStampingTransport(base, s)}
	c, err := New(h.srv.URL, nil, &Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Keys(context.Background()); err != nil {
		t.Fatal(err)
	}
	emptyGet := mustRequest(t, http.MethodGet, h.srv.URL+"/v1/health", &closeTracker{Reader: strings.NewReader("")})
	resp, err := hc.Do(emptyGet)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := base.requests()
	if len(got) != 2 {
		t.Fatalf("base transport carried %d requests", len(got))
	}
	for _, r := range got {
		if r.header.Get(stamp.Header) != "" || len(r.body) != 0 {
			t.Errorf("%s %s went out with stamp %q and body %q", r.req.Method, r.req.URL.Path, r.header.Get(stamp.Header), r.body)
		}
	}
	if got[1].req == emptyGet || got[1].req.Body != http.NoBody {
		t.Error("the spent empty body was sent instead of none")
	}
}

// TestStampingTransportConcurrent: one transport stamps many requests at
// once (run with -race), each with its own body's stamp.
func TestStampingTransportConcurrent(t *testing.T) {
	s := newSigner(t, stamp.P256)
	h := newFakeHost(t, s.PublicKey())
	hc := &http.Client{Transport: NewStampingTransport(nil, s)}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := signBody(t, "c-"+string(rune('a'+i)))
			resp, err := hc.Post(h.srv.URL+"/v1/sign", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- errors.New(resp.Status)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(h.requests()); got != n {
		t.Errorf("host signed %d, want %d", got, n)
	}
}

// answerRT is a base transport that answers 200 at once, without a
// network, so that a benchmark measures the stamping alone.
type answerRT struct{}

func (answerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// BenchmarkStampingTransport measures RoundTrip of a typical sign request
// over a base transport that answers at once: reading the body, the
// Ed25519 stamp and the clone.
func BenchmarkStampingTransport(b *testing.B) {
	s, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	rt := NewStampingTransport(answerRT{}, s)
	body, err := json.Marshal(&api.SignRequest{RequestID: "0123456789abcdef0123456789abcdef", TimestampMS: fixedNow.UnixMilli(), Key: "hot-1", EthTransaction: api.NewEthTransaction(bytes.Repeat([]byte{0xab}, 120))})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8420/v1/sign", bytes.NewReader(body))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
