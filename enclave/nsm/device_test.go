package nsm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// fakeSession stands for /dev/nsm behind a github.com/hf/nsm Session: it
// answers each request with the next of its answers.
type fakeSession struct {
	mu       sync.Mutex
	answers  []response.Response
	err      error
	requests []request.Request
	closed   int
	closeErr error
}

func (f *fakeSession) Send(r request.Request) (response.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	if f.err != nil {
		return response.Response{}, f.err
	}
	if len(f.answers) == 0 {
		return response.Response{Error: response.ECInternalError}, nil
	}
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return a, nil
}

func (f *fakeSession) Close() error { f.closed++; return f.closeErr }

func randomAnswer(b ...byte) response.Response {
	return response.Response{GetRandom: &response.GetRandom{Random: b}}
}

func TestDeviceAttest(t *testing.T) {
	doc := []byte("cose-sign1")
	s := &fakeSession{answers: []response.Response{{Attestation: &response.Attestation{Document: doc}}}}
	d := newDevice(s)
	got, err := d.Attest(context.Background(), AttestRequest{Nonce: []byte("n"), UserData: []byte{}, PublicKey: nil})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, doc) {
		t.Errorf("document %q, want %q", got, doc)
	}
	doc[0] = 'X'
	if got[0] == 'X' {
		t.Error("the document shares memory with the session's answer")
	}
	req, ok := s.requests[0].(*request.Attestation)
	if !ok {
		t.Fatalf("sent %T, want *request.Attestation", s.requests[0])
	}
	if string(req.Nonce) != "n" {
		t.Errorf("nonce %q", req.Nonce)
	}
	// Empty fields are absent, so that the device writes null for them.
	if req.UserData != nil || req.PublicKey != nil {
		t.Errorf("empty fields sent as %#v, %#v; want nil", req.UserData, req.PublicKey)
	}
}

func TestDeviceAttestRefuses(t *testing.T) {
	big := make([]byte, MaxFieldSize+1)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		session *fakeSession
		ctx     context.Context
		req     AttestRequest
		want    string
		sent    bool
	}{
		{name: "nonce too large", session: &fakeSession{}, req: AttestRequest{Nonce: big}, want: "nonce is 1025 bytes"},
		{name: "user data too large", session: &fakeSession{}, req: AttestRequest{UserData: big}, want: "user_data is 1025 bytes"},
		{name: "public key too large", session: &fakeSession{}, req: AttestRequest{PublicKey: big}, want: "public_key is 1025 bytes"},
		{name: "context done", session: &fakeSession{}, ctx: cancelled, want: "context canceled"},
		{name: "ioctl fails", session: &fakeSession{err: errors.New("ioctl failed")}, want: "ioctl failed", sent: true},
		{name: "error code", session: &fakeSession{answers: []response.Response{{Error: response.ECInvalidArgument}}}, want: "device answered InvalidArgument", sent: true},
		{name: "no attestation", session: &fakeSession{answers: []response.Response{randomAnswer(1)}}, want: "without a document", sent: true},
		{name: "empty document", session: &fakeSession{answers: []response.Response{{Attestation: &response.Attestation{}}}}, want: "without a document", sent: true},
		{name: "huge document", session: &fakeSession{answers: []response.Response{{Attestation: &response.Attestation{Document: make([]byte, MaxDocumentSize+1)}}}}, want: "limit", sent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			doc, err := newDevice(tt.session).Attest(ctx, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: ") {
				t.Fatalf("Attest = %q, %v; want an error with %q", doc, err, tt.want)
			}
			if doc != nil {
				t.Error("a document with an error")
			}
			if sent := len(tt.session.requests) > 0; sent != tt.sent {
				t.Errorf("sent a request: %v, want %v", sent, tt.sent)
			}
		})
	}
}

func TestDeviceRead(t *testing.T) {
	s := &fakeSession{answers: []response.Response{randomAnswer(1, 2, 3), randomAnswer(4, 5, 6, 7), randomAnswer(8, 9, 10)}}
	d := newDevice(s)
	p := make([]byte, 9)
	n, err := d.Read(p)
	if err != nil || n != len(p) {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}; !bytes.Equal(p, want) {
		t.Errorf("read %v, want %v", p, want)
	}
	if len(s.requests) != 3 {
		t.Errorf("%d requests, want 3", len(s.requests))
	}
	for _, r := range s.requests {
		if _, ok := r.(*request.GetRandom); !ok {
			t.Errorf("sent %T, want *request.GetRandom", r)
		}
	}
	if n, err := d.Read(nil); n != 0 || err != nil || len(s.requests) != 3 {
		t.Errorf("Read(nil) = %d, %v after %d requests", n, err, len(s.requests))
	}
}

func TestDeviceReadRefuses(t *testing.T) {
	tests := []struct {
		name    string
		session *fakeSession
		n       int
		want    string
	}{
		{name: "ioctl fails", session: &fakeSession{err: errors.New("ioctl failed")}, want: "ioctl failed"},
		{name: "error code", session: &fakeSession{answers: []response.Response{{Error: response.ECInternalError}}}, want: "device answered InternalError"},
		{name: "empty answer", session: &fakeSession{answers: []response.Response{randomAnswer(1, 2), randomAnswer()}}, n: 2, want: "without random bytes"},
		{name: "no answer", session: &fakeSession{answers: []response.Response{{Attestation: &response.Attestation{Document: []byte{1}}}}}, want: "without random bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := newDevice(tt.session).Read(make([]byte, 8))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: random: ") {
				t.Fatalf("Read error %v, want one with %q", err, tt.want)
			}
			if n != tt.n {
				t.Errorf("Read = %d, want %d", n, tt.n)
			}
		})
	}
}

func TestDeviceClose(t *testing.T) {
	s := &fakeSession{answers: []response.Response{randomAnswer(1)}}
	d := newDevice(s)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil || s.closed != 1 {
		t.Errorf("second Close = %v, session closed %d times", err, s.closed)
	}
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := d.Attest(context.Background(), AttestRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Attest after Close: %v", err)
	}
	if len(s.requests) != 0 {
		t.Error("requests after Close")
	}
	bad := newDevice(&fakeSession{closeErr: errors.New("ebadf")})
	if err := bad.Close(); err == nil || !strings.Contains(err.Error(), "nsm: close: ebadf") {
		t.Errorf("Close = %v", err)
	}
}

// TestDeviceConcurrent runs requests alongside Close under -race.
func TestDeviceConcurrent(t *testing.T) {
	d := newDevice(&fakeSession{answers: []response.Response{randomAnswer(1, 2, 3, 4)}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				d.Read(make([]byte, 32))
			}
		})
	}
	wg.Go(func() { d.Close() })
	wg.Wait()
}
