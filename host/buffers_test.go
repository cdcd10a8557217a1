package host

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"testing/iotest"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
)

func randomSignResponse(tx bool) *proto.SignResponse {
	sr := &proto.SignResponse{AuditSeq: 1<<53 - 1}
	rand.Read(sr.From[:])
	rand.Read(sr.Signature[:])
	rand.Read(sr.Digest[:])
	if tx {
		sr.SignedTransaction = make([]byte, 117)
		rand.Read(sr.SignedTransaction)
		rand.Read(sr.TransactionHash[:])
	}
	return sr
}

// TestSignAnswerIsTheJSONOfSignJSON: the hand-written answer of a
// signature is, byte for byte, what encoding/json makes of the API's
// SignResponse, headers included.
func TestSignAnswerIsTheJSONOfSignJSON(t *testing.T) {
	for i := range 200 {
		sr := randomSignResponse(i%2 == 0)
		sr.AuditSeq = uint64(i) * 7919
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(want, 200, signJSON(sr))
		writeSignAnswer(got, sr)
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("answer\n%s\nwant\n%s", got.Body, want.Body)
		}
		if got.Code != want.Code || len(got.Header()) != len(want.Header()) {
			t.Fatalf("status %d headers %v, want %d %v", got.Code, got.Header(), want.Code, want.Header())
		}
		for k := range want.Header() {
			if got.Header().Get(k) != want.Header().Get(k) {
				t.Fatalf("header %s: %q, want %q", k, got.Header().Get(k), want.Header().Get(k))
			}
		}
	}
}

// BenchmarkSignAnswer is the host's work to encode a signature's answer:
// compare with BenchmarkSignAnswerJSON, encoding/json's.
func BenchmarkSignAnswer(b *testing.B) {
	sr := randomSignResponse(true)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		writeSignAnswer(w, sr)
	}
}

func BenchmarkSignAnswerJSON(b *testing.B) {
	sr := randomSignResponse(true)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		writeJSON(w, 200, signJSON(sr))
	}
}

// The cache of checksummed addresses answers what Hex does, for cached
// addresses, again, and past its cap.
func TestAddressHexIsHex(t *testing.T) {
	for i := range maxAddressHexes + 10 {
		var a ethtx.Address
		rand.Read(a[:])
		for range 2 {
			if got, want := addressHex(a), a.Hex(); got != want {
				t.Fatalf("address %d: addressHex = %s, Hex = %s", i, got, want)
			}
		}
	}
	if n := addressHexSize.Load(); n > maxAddressHexes {
		t.Fatalf("the cache holds %d addresses, above its cap %d", n, maxAddressHexes)
	}
}

// TestReadBody: a body of any length up to api.MaxBodySize is read whole,
// however its reads are cut and whether its length is declared or not; one
// byte more is errBodyTooLarge, without reading past that byte.
func TestReadBody(t *testing.T) {
	for _, n := range []int{0, 1, bytes.MinRead - 1, bytes.MinRead + 1, api.MaxBodySize - 1, api.MaxBodySize, api.MaxBodySize + 1, 3 * api.MaxBodySize} {
		for _, declared := range []bool{true, false} {
			body := make([]byte, n)
			rand.Read(body)
			src := &countingReader{r: iotest.HalfReader(bytes.NewReader(body))}
			r := httptest.NewRequest("POST", "/v1/sign", src)
			r.ContentLength = -1
			if declared {
				r.ContentLength = int64(n)
			}
			b, err := readBody(r)
			switch {
			case n > api.MaxBodySize:
				if !errors.Is(err, errBodyTooLarge) {
					t.Errorf("%d bytes, declared %v: %v, want errBodyTooLarge", n, declared, err)
				}
				if src.n > api.MaxBodySize+1 {
					t.Errorf("%d bytes, declared %v: read %d bytes, more than the cap and one", n, declared, src.n)
				}
			case err != nil:
				t.Errorf("%d bytes, declared %v: %v", n, declared, err)
			case !bytes.Equal(b.Bytes(), body):
				t.Errorf("%d bytes, declared %v: read %d bytes, not the body", n, declared, b.Len())
			}
			if b != nil {
				putBuffer(b)
			}
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
