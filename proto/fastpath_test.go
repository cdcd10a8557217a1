package proto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
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
			checkDecodeFast(t, fast.Body, &AuditRequest{Ack: 99})
			checkDecodeFast(t, fast.Body, &AuditResponse{Acked: 99})
		} else if !reflect.DeepEqual(fast, envelope{}) {
			t.Fatalf("declined envelope %x, but changed its target to %+v", data, fast)
		}
		checkSignResponseFast(t, data)
		checkSignRequestFast(t, data)
		checkDecodeFast(t, data, &AuditRequest{Ack: 99})
		checkDecodeFast(t, data, &AuditResponse{Acked: 99})
	})
}

// checkDecodeFast: the fast path decodes data into mark's type as
// decodeCanonical does, or declines and leaves mark as it was.
func checkDecodeFast[M any, PM interface {
	*M
	Message
}](t *testing.T, data []byte, mark PM) {
	t.Helper()
	fast := new(M)
	*fast = *mark
	if !decodeFast(data, PM(fast)) {
		if !reflect.DeepEqual(fast, (*M)(mark)) {
			t.Fatalf("declined %T %x, but changed its target to %+v", mark, data, fast)
		}
		return
	}
	slow := new(M)
	if err := decodeCanonical(data, slow); err != nil {
		t.Fatalf("the fast path accepts the %T %x, decodeCanonical refuses it: %v", mark, data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T %x: fast path %#v, decodeCanonical %#v", mark, data, fast, slow)
	}
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
	for name, m := range auditSamples() {
		seeds["body_"+name] = body(m)
	}
	hash32 := strings.Repeat("07", 32)
	for name, h := range map[string]string{
		"audit_request_rotate_false":        "a3 01 00 02 00 03 f4",
		"audit_request_keys_unsorted":       "a4 01 00 02 00 05 01 03 f5",
		"audit_request_key_twice":           "a4 01 00 02 00 05 01 05 02",
		"audit_request_empty_hash":          "a3 01 00 02 00 04 40",
		"audit_request_wait_zero":           "a3 01 00 02 00 05 00",
		"audit_request_wait_over_uint32":    "a3 01 00 02 00 05 1b 0000000100000000",
		"audit_request_failing_bad_utf8":    "a3 01 00 02 00 06 62 c328",
		"audit_request_unknown_key":         "a3 01 00 02 00 08 01",
		"audit_request_missing_from":        "a1 01 00",
		"audit_response_empty_rotate":       "a5 01 40 02 00 03 " + hash32 + " 04 80 05 40",
		"audit_response_acked_zero":         "a5 01 40 02 00 03 " + hash32 + " 04 80 07 00",
		"audit_response_short_hash":         "a4 01 40 02 00 03 5f" + hash32[2:] + " 04 80",
		"audit_response_records_not_bytes":  "a4 01 40 02 00 03 " + hash32 + " 04 81 61 78",
		"audit_response_records_truncated":  "a4 01 40 02 00 03 " + hash32 + " 04 82 41 78",
		"audit_response_records_indefinite": "a4 01 40 02 00 03 " + hash32 + " 04 9f 41 78 ff",
		"audit_response_huge_count":         "a4 01 40 02 00 03 " + hash32 + " 04 9b 00ffffffffffffff",
	} {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			t.Fatal(name, err)
		}
		seeds["body_bad_"+name] = b
	}
	return seeds
}

// auditSamples returns valid messages of the audit poll and signatures
// for the fast paths' seeds: every optional field absent and present.
func auditSamples() map[string]Message {
	var hash [32]byte
	hash[3] = 9
	run := bytes.Repeat([]byte{5}, RunIDLen)
	rec := func(i int) []byte { return fmt.Appendf(nil, `{"seq":%d,"kind":"decision"}`, i) }
	full := &SignResponse{SignedTransaction: []byte{2, 3}, AuditSeq: 300, AuditRecord: rec(300), Status: StatusSigned}
	full.From[0], full.Signature[64], full.TransactionHash[5], full.Digest[31] = 1, 1, 7, 9
	return map[string]Message{
		"audit_request_min":       &AuditRequest{},
		"audit_request_ack":       &AuditRequest{Ack: 1 << 33, From: 24, AckHash: hash[:], WaitMS: 1000, Run: run},
		"audit_request_full":      &AuditRequest{Ack: 7, From: 8, Rotate: true, AckHash: hash[:], WaitMS: MaxAuditWaitMS, Failing: "disk full: écrit", Run: run},
		"audit_request_failing":   &AuditRequest{Failing: "x"},
		"audit_response_empty":    &AuditResponse{Key: []byte{}, Records: [][]byte{}},
		"audit_response_records":  &AuditResponse{Key: bytes.Repeat([]byte{1}, 32), HeadSeq: 1 << 20, HeadHash: hash, Records: [][]byte{rec(1), rec(2), {}}, Run: run, Acked: 2},
		"audit_response_full":     &AuditResponse{Key: bytes.Repeat([]byte{1}, 32), HeadSeq: 9, HeadHash: hash, Records: [][]byte{rec(9)}, RotateRecord: rec(10), Run: run, Acked: 255},
		"audit_response_rotated":  &AuditResponse{Key: []byte{}, Records: [][]byte{}, RotateRecord: rec(10)},
		"sign_response_no_record": &SignResponse{SignedTransaction: []byte{}},
		"sign_response_status":    full,
		"sign_response_pending":   &SignResponse{SignedTransaction: []byte{}, Status: StatusPending, ApprovalID: "a1", Quorum: 2, Approvers: []string{"x"}},
	}
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

// FuzzMarshalMessagesFastAgrees: the fast paths of Marshal for a
// SignResponse, an AuditRequest and an AuditResponse give the bytes of
// the reflective encoder, or decline (a pending request's SignResponse).
// The input is the id (8 bytes, big-endian) and a CBOR body, decoded
// (leniently: any encoding) as each of the three; each value that
// decodes and is valid is marshalled both ways.
func FuzzMarshalMessagesFastAgrees(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 8 {
			return
		}
		id, body := binary.BigEndian.Uint64(data), data[8:]
		for _, m := range []Message{&SignResponse{}, &AuditRequest{}, &AuditResponse{}} {
			if decMode.Unmarshal(body, m) != nil {
				continue
			}
			checkMarshalMessageFast(t, id, m)
		}
	})
}

// checkMarshalMessageFast: marshalFast gives m the bytes of marshalReflect,
// or declines (only a pending request's SignResponse may).
func checkMarshalMessageFast(t *testing.T, id uint64, m Message) {
	t.Helper()
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
	got := marshalFast(id, m)
	if got == nil {
		if sr, ok := m.(*SignResponse); ok && (sr.ApprovalID != "" || sr.Quorum != 0 || len(sr.Approvers) != 0 ||
			sr.ExpiresMS != 0 || sr.AlreadyCounted || len(sr.ApprovalDigest) != 0 || len(sr.SummaryLines) != 0) {
			return
		}
		t.Fatalf("%#v: the fast path declines it", m)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v as %d:\n fast %x\n want %x", m, id, got, want)
	}
	if cap(got) != len(got) {
		t.Errorf("%#v: the fast path's buffer has room for %d bytes, used %d", m, cap(got), len(got))
	}
}

// The fast paths of Marshal and Unmarshal for the audit poll with heads
// too long for the seed corpus: a full poll of the largest records, and
// every length class of the integers.
func TestAuditFastPathsLarge(t *testing.T) {
	records := make([][]byte, MaxAuditRecords)
	for i := range records {
		records[i] = bytes.Repeat([]byte{byte(i)}, MaxAuditRecordLen/64+i)
	}
	big := &AuditResponse{Key: bytes.Repeat([]byte{1}, MaxAuditKeyLen), HeadSeq: ^uint64(0), Records: records, RotateRecord: bytes.Repeat([]byte{2}, MaxAuditRecordLen), Acked: 1 << 32}
	msgs := []Message{big}
	for _, v := range []uint64{0, 23, 24, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 1 << 32, ^uint64(0)} {
		msgs = append(msgs,
			&AuditRequest{Ack: v, From: v, WaitMS: uint32(min(v, MaxAuditWaitMS)), Failing: strings.Repeat("f", int(min(v, MaxFailingLen)))},
			&AuditResponse{Key: []byte{}, HeadSeq: v, Records: [][]byte{}, Acked: v},
			&SignResponse{SignedTransaction: bytes.Repeat([]byte{3}, int(min(v, MaxSignedTransactionLen))), AuditSeq: v, AuditRecord: bytes.Repeat([]byte{4}, int(min(v, MaxAuditRecordLen)))})
	}
	for _, m := range msgs {
		for _, id := range []uint64{1, 1 << 40} {
			checkMarshalMessageFast(t, id, m)
			p, err := Marshal(id, m)
			if err != nil {
				t.Fatal(err)
			}
			var env envelope
			if !decodeEnvelopeFast(p, &env) {
				t.Fatalf("%T: the envelope's fast path declines it", m)
			}
			switch m.(type) {
			case *AuditRequest:
				checkDecodeFast(t, env.Body, &AuditRequest{Ack: 99})
			case *AuditResponse:
				checkDecodeFast(t, env.Body, &AuditResponse{Acked: 99})
			case *SignResponse:
				checkSignResponseFast(t, env.Body)
			}
			if _, sign := m.(*SignResponse); !sign && !decodeFast(env.Body, newOfType(m)) { // (a SignResponse without a record has none)
				t.Errorf("%T: the decoding fast path declines it", m)
			}
		}
	}
}

// newOfType returns a new, empty message of m's type.
func newOfType(m Message) Message { return lookup(m.Type()).new() }

// seedMarshalMessagesFast returns named seeds for
// FuzzMarshalMessagesFastAgrees: the id 1 and the body of every sample of
// auditSamples, and a few ids of other lengths.
func seedMarshalMessagesFast(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for name, m := range auditSamples() {
		b, err := encMode.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = append(binary.BigEndian.AppendUint64(nil, 1), b...)
		seeds[name+"_id_max"] = append(binary.BigEndian.AppendUint64(nil, ^uint64(0)), b...)
	}
	return seeds
}

func init() { corpora["FuzzMarshalMessagesFastAgrees"] = seedMarshalMessagesFast }
