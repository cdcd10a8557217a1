package host

import (
	"bytes"
	"crypto/rand"
	"net/http/httptest"
	"testing"

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
