package proto

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
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
			checkSignRequestFast(t, fast.Body)
		} else if !reflect.DeepEqual(fast, envelope{}) {
			t.Fatalf("declined envelope %x, but changed its target to %+v", data, fast)
		}
		checkSignResponseFast(t, data)
		checkSignRequestFast(t, data)
	})
}

func checkSignRequestFast(t *testing.T, data []byte) {
	t.Helper()
	mark := &SignRequest{Stamp: "mark"} // the fast path must not touch it when it declines
	fast := &SignRequest{Stamp: "mark"}
	if !decodeFast(data, fast) {
		if !reflect.DeepEqual(fast, mark) {
			t.Fatalf("declined SignRequest %x, but changed its target to %+v", data, fast)
		}
		return
	}
	var slow SignRequest
	if err := decodeCanonical(data, &slow); err != nil {
		t.Fatalf("the fast path accepts the SignRequest %x, decodeCanonical refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, &slow) {
		t.Fatalf("SignRequest %x: fast path %#v, decodeCanonical %#v", data, fast, &slow)
	}
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
	req := body(&SignRequest{Body: []byte(`{"a":1}`), Stamp: "ed25519;key=k;sig=s"})
	seeds["body_sign_request"] = req
	seeds["body_sign_request_empty"] = body(&SignRequest{})
	seeds["body_bad_sign_request_stamp_utf8"] = append(bytes.Clone(req[:len(req)-1]), 0xff)
	seeds["body_bad_sign_request_trailing"] = append(bytes.Clone(req), 0x00)
	return seeds
}

func init() { corpora["FuzzFastPathAgrees"] = seedFastPath }

// FuzzMarshalFastAgrees: the fast path of Marshal gives the bytes of the
// reflective encoder, for every valid SignRequest and id. The input is the
// id (8 bytes, big-endian), the stamp's length (2 bytes), the stamp, and
// the body.
func FuzzMarshalFastAgrees(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 10 {
			return
		}
		id := binary.BigEndian.Uint64(data)
		n := int(binary.BigEndian.Uint16(data[8:]))
		if len(data) < 10+n {
			return
		}
		checkMarshalFast(t, id, data[10+n:], string(data[10:10+n]))
	})
}

func checkMarshalFast(t *testing.T, id uint64, body []byte, stamp string) {
	t.Helper()
	for _, m := range []Message{&SignRequest{Body: body, Stamp: stamp}, SignRequest{Body: body, Stamp: stamp}} {
		k, err := kindOf(m)
		if err != nil {
			t.Fatal(err)
		}
		if id == 0 || m.(validator).validate() != nil {
			return
		}
		want, err := marshalReflect(k, id, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalFast(id, m); !bytes.Equal(got, want) {
			t.Fatalf("%#v as %d:\n fast %x\n want %x", m, id, got, want)
		}
	}
}

// The fast path of Marshal with heads too long for the seed corpus.
func TestMarshalFastLargeBody(t *testing.T) {
	checkMarshalFast(t, 1<<40, bytes.Repeat([]byte{1}, MaxSignBodyLen), strings.Repeat("s", MaxStampLen))
	checkMarshalFast(t, 7, bytes.Repeat([]byte{1}, 1<<16), "")
}

// seedMarshalFast returns named seeds for FuzzMarshalFastAgrees: every
// length class of the id, and the short ones of the body and the stamp.
func seedMarshalFast(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, tc := range []struct {
		name  string
		id    uint64
		body  int
		stamp int
	}{
		{"small", 1, 0, 0},
		{"one_byte_heads", 24, 23, 24},
		{"two_byte_heads", 0xff + 1, 0xff, 0x100},
		{"four_byte_id", 1 << 16, 300, 30},
		{"eight_byte_id", 1 << 32, 100, 50},
		{"max_id", ^uint64(0), 1, 1},
		{"zero_id", 0, 1, 1},
		{"bad_utf8_stamp", 5, 1, -1},
	} {
		seed := binary.BigEndian.AppendUint64(nil, tc.id)
		stamp := []byte(strings.Repeat("s", max(tc.stamp, 0)))
		if tc.stamp < 0 {
			stamp = []byte{0xff, 0xfe}
		}
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(stamp)))
		seed = append(seed, stamp...)
		seeds[tc.name] = append(seed, bytes.Repeat([]byte{0xab}, tc.body)...)
	}
	return seeds
}

func init() { corpora["FuzzMarshalFastAgrees"] = seedMarshalFast }
