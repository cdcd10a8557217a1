package proto

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzFastPathAgrees: the fast path of Unmarshal accepts only what
// decodeCanonical accepts, and decodes it to the same value; it leaves its
// target unchanged when it declines. Each input is tried as an envelope,
// as a SignResponse body, and (when it is an envelope) its body as a
// SignResponse.
func FuzzFastPathAgrees(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow envelope
		if decodeEnvelopeFast(data, &fast) {
			if err := decodeCanonical(data, &slow); err != nil {
				t.Fatalf("the fast path accepts the envelope %x, decodeCanonical refuses it: %v", data, err)
			}
			if fast.Version != slow.Version || fast.Type != slow.Type || fast.ID != slow.ID || !bytes.Equal(fast.Body, slow.Body) {
				t.Fatalf("envelope %x: fast path %+v, decodeCanonical %+v", data, fast, slow)
			}
			checkSignResponseFast(t, fast.Body)
		} else if !reflect.DeepEqual(fast, envelope{}) {
			t.Fatalf("declined envelope %x, but changed its target to %+v", data, fast)
		}
		checkSignResponseFast(t, data)
	})
}

func checkSignResponseFast(t *testing.T, data []byte) {
	t.Helper()
	fast := &SignResponse{AuditSeq: 99} // a mark: the fast path must not touch it when it declines
	if !decodeFast(data, fast) {
		if !reflect.DeepEqual(fast, &SignResponse{AuditSeq: 99}) {
			t.Fatalf("declined SignResponse %x, but changed its target to %+v", data, fast)
		}
		return
	}
	var slow SignResponse
	if err := decodeCanonical(data, &slow); err != nil {
		t.Fatalf("the fast path accepts the SignResponse %x, decodeCanonical refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, &slow) {
		t.Fatalf("SignResponse %x: fast path %#v, decodeCanonical %#v", data, fast, &slow)
	}
}

// seedFastPath returns named seeds for FuzzFastPathAgrees: FuzzUnmarshal's,
// the bodies of signatures with and without a transaction, and near misses
// of the fast path's layout.
func seedFastPath(t testing.TB) map[string][]byte {
	seeds := seedUnmarshal(t)
	body := func(m Message) []byte {
		b, err := encMode.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signed := &SignResponse{SignedTransaction: []byte{2, 3}, AuditSeq: 1 << 40, AuditRecord: []byte(`{"seq":1099511627776}`)}
	signed.From[0], signed.Signature[64], signed.TransactionHash[5], signed.Digest[31] = 1, 1, 7, 9
	b := body(signed)
	seeds["body_signed_tx"] = b
	seeds["body_signed_message"] = body(&SignResponse{SignedTransaction: []byte{}, AuditSeq: 23, AuditRecord: []byte("x")})
	seeds["body_signed_status"] = body(&SignResponse{SignedTransaction: []byte{}, AuditSeq: 24, AuditRecord: []byte("x"), Status: StatusSigned})
	seeds["body_bad_trailing_byte"] = append(bytes.Clone(b), 0)
	seeds["body_bad_truncated"] = b[:len(b)-1]
	// AuditSeq 23 (0x17) in a one-byte head (0x18 0x17): not the shortest.
	long := body(&SignResponse{SignedTransaction: []byte{}, AuditSeq: 23, AuditRecord: []byte("x")})
	i := bytes.Index(long, []byte{0x05, 0x17})
	seeds["body_bad_long_uint"] = append(append(bytes.Clone(long[:i+1]), 0x18), long[i+1:]...)
	// An empty audit record: present, but omitempty leaves it out.
	seeds["body_bad_empty_record"] = append(bytes.Clone(long[:len(long)-2]), 0x40)
	return seeds
}

func init() { corpora["FuzzFastPathAgrees"] = seedFastPath }
