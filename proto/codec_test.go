package proto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes hex, ignoring spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// sampleMessages has one or more values of every message type.
func sampleMessages() []struct {
	name string
	m    Message
} {
	var resp SignResponse
	copy(resp.From[:], seq(20, 1))
	copy(resp.Signature[:], seq(65, 0x40))
	copy(resp.TransactionHash[:], seq(32, 0xa0))
	resp.SignedTransaction = seq(100, 0)
	resp.AuditSeq = 1 << 40

	var k1, k2 Key
	k1 = Key{ID: "hot-1", Path: "m/44'/60'/0'/0/0"}
	copy(k1.Address[:], seq(20, 0x10))
	k2 = Key{ID: "hot-2", Path: "m/44'/60'/0'/0/1"}
	copy(k2.Address[:], seq(20, 0x30))

	return []struct {
		name string
		m    Message
	}{
		{"error", &Error{Code: "policy_denied", Rule: "allowlist", Message: "destination not allowed"}},
		{"error_code_only", &Error{Code: "internal"}},
		{"health_request", &HealthRequest{}},
		{"health_response", &HealthResponse{Version: "v0.1.0", StartedUnixMS: 1763700000000, Keys: 2, PolicyVersion: 7, AuditSeq: 99, UptimeMS: 60000}},
		{"health_response_negative_time", &HealthResponse{StartedUnixMS: -1}},
		{"health_response_metrics", &HealthResponse{Version: "v", State: "ready", Keys: 3, FrozenKeys: 1, PendingApprovals: 2, PendingPolicies: 1, PolicyDueUnixMS: 1763700000000,
			KMS: []KMSStats{
				{Op: KMSOpDecrypt, Calls: 3, Errors: 1, AccessDenied: 1, SumMicros: 250000, Buckets: []uint64{0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0}},
				{Op: KMSOpGenerateDataKey, Calls: 1, SumMicros: 40000, Buckets: []uint64{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
			}}},
		{"keys_request", &KeysRequest{}},
		{"keys_response", &KeysResponse{Keys: []Key{k1, k2}}},
		{"keys_response_empty", &KeysResponse{Keys: []Key{}}},
		{"sign_request", &SignRequest{Body: []byte(`{"request_id":"r1","timestamp_ms":1}`), Stamp: "ed25519;key=abc;sig=def"}},
		{"sign_request_empty", &SignRequest{Body: []byte{}}},
		{"sign_response", &resp},
		{"sign_response_empty_tx", &SignResponse{SignedTransaction: []byte{}}},
		{"attest_request", &AttestRequest{Nonce: seq(32, 7)}},
		{"attest_request_no_nonce", &AttestRequest{Nonce: []byte{}}},
		{"attest_response", &AttestResponse{Document: seq(100, 9)}},
		{"audit_request", &AuditRequest{Ack: 7, From: 3}},
		{"audit_response", &AuditResponse{Key: seq(32, 1), HeadSeq: 9, Records: [][]byte{[]byte(`{"seq":1}`), []byte(`{"seq":2}`)}}},
		{"audit_response_empty", &AuditResponse{Key: []byte{}, Records: [][]byte{}}},
		{"audit_request_rotate", &AuditRequest{Ack: 7, Rotate: true}},
		{"audit_response_rotated", &AuditResponse{Key: seq(32, 1), HeadSeq: 10, Records: [][]byte{}, RotateRecord: []byte(`{"seq":10}`)}},
		{"error_with_audit_record", &Error{Code: "policy_denied", Rule: "chains", Message: "no", AuditRecord: []byte(`{"seq":3}`)}},
		{"sign_response_with_audit_record", &SignResponse{SignedTransaction: []byte{1}, AuditRecord: []byte(`{"seq":4}`)}},
		{"health_response_state", &HealthResponse{Version: "v", State: "locked"}},
		{"credentials_request", &CredentialsRequest{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "token", ExpiresUnixMS: 1763700000000}},
		{"credentials_response", &CredentialsResponse{}},
		{"unseal_request_create", &UnsealRequest{Create: true, Sealed: []byte{}, AuditHead: []byte{}, Checkpoint: []byte{}}},
		{"unseal_request", &UnsealRequest{Sealed: seq(200, 3), AuditHead: []byte(`{"seq":9}`), Checkpoint: seq(64, 5)}},
		{"unseal_response_created", &UnsealResponse{Sealed: seq(200, 3), AuditKey: []byte{}, AuditRecord: []byte{}}},
		{"unseal_response", &UnsealResponse{Sealed: []byte{}, AuditKey: seq(32, 1), Keys: 3, AuditRecord: []byte(`{"seq":10}`)}},
		{"checkpoint_request", &CheckpointRequest{Ack: 4}},
		{"checkpoint_response", &CheckpointResponse{Generation: 5, Sealed: seq(80, 2)}},
		{"checkpoint_response_none", &CheckpointResponse{Generation: 4, Sealed: []byte{}}},
		{"admin_request", &AdminRequest{Envelope: []byte(`{"command":"..."}`)}},
		{"admin_response", &AdminResponse{Result: []byte(`{"ok":true}`), Sealed: seq(100, 1), AuditRecord: []byte(`{"seq":11}`)}},
		{"admin_response_result_only", &AdminResponse{Result: []byte(`{}`)}},
		{"sign_response_pending", &SignResponse{SignedTransaction: []byte{}, Status: StatusPending, ApprovalID: "ap-1", SummaryLines: sampleSummary, Quorum: 2, Approvers: []string{"alice"}, ExpiresMS: 1763700000000}},
		{"approval_request", &ApprovalRequest{Body: []byte(`{"approval_id":"ap-1"}`)}},
		{"approval_info_request", &ApprovalInfoRequest{ID: "ap-1"}},
		{"policy_request", &PolicyRequest{}},
		{"policy_response", &PolicyResponse{Document: []byte(`{"version":1}`), Version: 1, TimeLockMS: 86400000, Pending: []PendingPolicy{{Document: []byte(`{"version":2}`), Version: 2, EffectiveMS: 5, Signers: []string{"a"}}}}},
		{"policy_response_none_pending", &PolicyResponse{Document: []byte(`{}`), Version: 1, Pending: []PendingPolicy{}}},
		{"approval_info_response", &ApprovalInfoResponse{ID: "ap-1", Status: StatusPending, Body: []byte(`{}`), SummaryLines: sampleSummary, Quorum: 2, Approvers: []string{"alice"}, ExpiresMS: 5, AuditSeq: 9}},
		{"approval_info_response_signed", &ApprovalInfoResponse{ID: "ap-1", Status: StatusSigned, Body: []byte(`{}`), Approvers: []string{}, Result: &SignResponse{SignedTransaction: []byte{1}, AuditSeq: 10}}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range sampleMessages() {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Marshal(42, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			// A value marshals like a pointer to it.
			pv, err := Marshal(42, reflect.ValueOf(tc.m).Elem().Interface().(Message))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, pv) {
				t.Errorf("value and pointer encode differently:\n%x\n%x", p, pv)
			}
			id, m, err := Unmarshal(p)
			if err != nil {
				t.Fatalf("Unmarshal(%x): %v", p, err)
			}
			if id != 42 {
				t.Errorf("id = %d, want 42", id)
			}
			if !reflect.DeepEqual(m, tc.m) {
				t.Errorf("got %#v, want %#v", m, tc.m)
			}
		})
	}
}

// TestNilSlicesEncodeAsEmpty: nil and empty have one encoding, and decode
// to empty.
func TestNilSlicesEncodeAsEmpty(t *testing.T) {
	for _, pair := range [][2]Message{
		{&SignRequest{}, &SignRequest{Body: []byte{}}},
		{&KeysResponse{}, &KeysResponse{Keys: []Key{}}},
		{&SignResponse{}, &SignResponse{SignedTransaction: []byte{}}},
	} {
		a, err := Marshal(1, pair[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(1, pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%T: nil encodes as %x, empty as %x", pair[0], a, b)
		}
	}
}

// TestGolden pins the wire format, as described in the package
// documentation.
func TestGolden(t *testing.T) {
	var resp SignResponse
	resp.From[0] = 0xaa
	resp.Signature[64] = 1
	resp.TransactionHash[31] = 0xbb
	resp.SignedTransaction = []byte{0x02, 0xf8}
	resp.AuditSeq = 500
	tests := []struct {
		name string
		id   uint64
		m    Message
		hex  string
	}{
		{"health_request", 1, HealthRequest{}, "a4 0101 0202 0301 04 41 a0"},
		{"health_response", 0x1234, HealthResponse{Version: "v1", StartedUnixMS: -2, Keys: 3, PolicyVersion: 24, AuditSeq: 1, UptimeMS: 1000},
			"a4 0101 0203 03 19 1234 04 52" + "a6 01 62 7631 02 21 03 03 04 18 18 05 01 06 19 03e8"},
		{"sign_request", 1 << 32, SignRequest{Body: []byte("{}"), Stamp: "s"},
			"a4 0101 0206 03 1b 0000000100000000 04 48" + "a2 01 42 7b7d 02 61 73"},
		{"audit_request", 5, AuditRequest{Ack: 1}, "a4 0101 020a 0305 04 45" + "a2 01 01 02 00"},
		{"audit_request_rotate", 5, AuditRequest{Ack: 1, Rotate: true}, "a4 0101 020a 0305 04 47" + "a3 01 01 02 00 03 f5"},
		{"error", 9, Error{Code: "c", Message: "m"},
			"a4 0101 0201 0309 04 49" + "a3 01 61 63 02 60 03 61 6d"},
		{"keys_response", 2, KeysResponse{Keys: []Key{{ID: "k", Address: [20]byte{19: 1}, Path: "m"}}},
			"a4 0101 0205 0302 04 58 20" + "a1 01 81 a3 01 61 6b 02 54 0000000000000000000000000000000000000001 03 61 6d"},
		{"sign_response", 3, resp,
			"a4 0101 0207 0303 04 58 a9" + "a6" +
				"01 54 aa00000000000000000000000000000000000000" +
				"02 58 41 " + strings.Repeat("00", 64) + "01" +
				"03 42 02f8" +
				"04 58 20 " + strings.Repeat("00", 31) + "bb" +
				"05 19 01f4" +
				"06 58 20 " + strings.Repeat("00", 32)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := Marshal(tc.id, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal:\n got %x\nwant %x", got, want)
			}
			id, m, err := Unmarshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.id || m.Type() != tc.m.Type() {
				t.Errorf("Unmarshal = %d, %v", id, m.Type())
			}
		})
	}
}

// envHex wraps a body (hex) in a valid envelope of the given type and id 7.
func envHex(t testing.TB, typ Type, bodyHex string) []byte {
	t.Helper()
	body := unhex(t, bodyHex)
	p, err := encMode.Marshal(&envelope{Version: Version, Type: uint64(typ), ID: 7, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// envBody is an envelope of type typ around body, encoded without the
// checks of Marshal (for bodies that break them).
func envBody(t testing.TB, typ Type, body any) []byte {
	t.Helper()
	b, err := encMode.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return envHex(t, typ, hex.EncodeToString(b))
}

// pendingWith is a pending SignResponse with the given summary lines.
func pendingWith(lines ...SummaryLine) *SignResponse {
	return &SignResponse{SignedTransaction: []byte{}, Status: StatusPending, ApprovalID: "ap-1", SummaryLines: lines}
}

// refuseCase is a near miss of a valid payload. Envelope errors return id 0
// (the connection must be closed); body errors return the id.
type refuseCase struct {
	name    string
	payload []byte
	wantID  uint64
	wantErr error // checked with errors.Is when set
	errText string
}

func refuseCases(t testing.TB) []refuseCase {
	addr19 := "53 " + strings.Repeat("11", 19)
	addr21 := "55 " + strings.Repeat("11", 21)
	addr20 := "54 " + strings.Repeat("11", 20)
	sig65 := "58 41 " + strings.Repeat("22", 65)
	hash32 := "58 20 " + strings.Repeat("33", 32)
	addrArray := "94 " + strings.Repeat("01", 20) // array of 20 small integers
	return []refuseCase{
		// Envelope.
		{name: "empty", payload: nil, wantErr: ErrEmptyFrame},
		{name: "too large", payload: make([]byte, MaxFrameSize+1), wantErr: ErrFrameTooLarge},
		{name: "not cbor", payload: []byte("hello"), errText: "proto: envelope"},
		{name: "array envelope", payload: unhex(t, "84 01 02 07 41 a0")},
		{name: "trailing byte", payload: unhex(t, "a4 0101 0202 0307 04 41 a0 00"), errText: "extraneous"},
		{name: "unsorted envelope", payload: unhex(t, "a4 0202 0101 0307 04 41 a0"), wantErr: errNonCanonical},
		{name: "missing body", payload: unhex(t, "a3 0101 0202 0307"), wantErr: errNonCanonical},
		{name: "extra envelope key", payload: unhex(t, "a5 0101 0202 0307 04 41 a0 05 00"), errText: "unknown field"},
		{name: "duplicate envelope key", payload: unhex(t, "a4 0101 0202 0307 0307"), errText: "duplicate"},
		{name: "non-shortest id", payload: unhex(t, "a4 0101 0202 03 18 07 04 41 a0"), wantErr: errNonCanonical},
		{name: "non-shortest key", payload: unhex(t, "a4 1801 01 0202 0307 04 41 a0"), wantErr: errNonCanonical},
		{name: "text keys", payload: unhex(t, "a4 6131 01 6132 02 6133 07 6134 41 a0")},
		{name: "indefinite envelope", payload: unhex(t, "bf 0101 0202 0307 04 41 a0 ff"), errText: "indefinite"},
		{name: "tagged envelope", payload: unhex(t, "d8 18 a4 0101 0202 0307 04 41 a0"), errText: "tag"},
		{name: "body not bytes", payload: unhex(t, "a4 0101 0202 0307 04 a0")},
		{name: "body indefinite bytes", payload: unhex(t, "a4 0101 0202 0307 04 5f 41 a0 ff"), errText: "indefinite"},
		{name: "id zero", payload: unhex(t, "a4 0101 0202 0300 04 41 a0"), errText: "reserved"},
		{name: "id negative", payload: unhex(t, "a4 0101 0202 0320 04 41 a0")},
		{name: "id null", payload: unhex(t, "a4 0101 0202 03f6 04 41 a0")},
		{name: "invalid utf-8 key", payload: unhex(t, "a1 61 ff 00")},

		// Version and type: the envelope is valid, so the id is returned.
		{name: "version 2", payload: unhex(t, "a4 0102 0202 0307 04 41 a0"), wantID: 7, wantErr: ErrUnsupportedVersion},
		{name: "version 0", payload: unhex(t, "a4 0100 0202 0307 04 41 a0"), wantID: 7, wantErr: ErrUnsupportedVersion},
		{name: "type 0", payload: unhex(t, "a4 0101 0200 0307 04 41 a0"), wantID: 7, wantErr: ErrUnknownType},
		{name: "type 99", payload: unhex(t, "a4 0101 02 18 63 0307 04 41 a0"), wantID: 7, wantErr: ErrUnknownType},
		{name: "type 2^16+2", payload: unhex(t, "a4 0101 02 1a 00010002 0307 04 41 a0"), wantID: 7, wantErr: ErrUnknownType},

		// Bodies.
		{name: "empty body", payload: envHex(t, TypeHealthRequest, ""), wantID: 7},
		{name: "health request field", payload: envHex(t, TypeHealthRequest, "a1 01 00"), wantID: 7, errText: "unknown field"},
		{name: "health request trailing", payload: envHex(t, TypeHealthRequest, "a0 00"), wantID: 7, errText: "extraneous"},
		{name: "health request array", payload: envHex(t, TypeHealthRequest, "80"), wantID: 7},
		{name: "health request null", payload: envHex(t, TypeHealthRequest, "f6"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request unsorted", payload: envHex(t, TypeSignRequest, "a2 02 60 01 40"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request missing stamp", payload: envHex(t, TypeSignRequest, "a1 01 40"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request null body", payload: envHex(t, TypeSignRequest, "a2 01 f6 02 60"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request undefined body", payload: envHex(t, TypeSignRequest, "a2 01 f7 02 60"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request text body", payload: envHex(t, TypeSignRequest, "a2 01 60 02 60"), wantID: 7},
		{name: "sign request bytes stamp", payload: envHex(t, TypeSignRequest, "a2 01 40 02 40"), wantID: 7},
		{name: "sign request indefinite body", payload: envHex(t, TypeSignRequest, "a2 01 5f 41 00 ff 02 60"), wantID: 7, errText: "indefinite"},
		{name: "sign request non-shortest length", payload: envHex(t, TypeSignRequest, "a2 01 58 01 00 02 60"), wantID: 7, wantErr: errNonCanonical},
		{name: "sign request duplicate key", payload: envHex(t, TypeSignRequest, "a2 01 40 01 40"), wantID: 7, errText: "duplicate"},
		{name: "sign request tagged body", payload: envHex(t, TypeSignRequest, "a2 01 d8 40 40 02 60"), wantID: 7, errText: "tag"},
		{name: "sign request invalid utf-8 stamp", payload: envHex(t, TypeSignRequest, "a2 01 40 02 61 ff"), wantID: 7, errText: "UTF-8"},
		{name: "sign request text key", payload: envHex(t, TypeSignRequest, "a2 6131 40 6132 60"), wantID: 7},
		{name: "sign request stamp over cap", payload: envHex(t, TypeSignRequest, "a2 01 40 02 79 0801 "+strings.Repeat("61", MaxStampLen+1)), wantID: 7, errText: "stamp is 2049 bytes"},
		{name: "health response keys over uint32", payload: envHex(t, TypeHealthResponse, "a6 01 60 02 00 03 1b 0000000100000000 04 00 05 00 06 00"), wantID: 7},
		{name: "health response float", payload: envHex(t, TypeHealthResponse, "a6 01 60 02 f9 3c00 03 00 04 00 05 00 06 00"), wantID: 7},
		{name: "health response non-shortest int", payload: envHex(t, TypeHealthResponse, "a6 01 60 02 00 03 18 05 04 00 05 00 06 00"), wantID: 7, wantErr: errNonCanonical},
		{name: "health response missing fields", payload: envHex(t, TypeHealthResponse, "a4 01 60 02 00 03 00 04 00"), wantID: 7, wantErr: errNonCanonical},
		{name: "health response bool", payload: envHex(t, TypeHealthResponse, "a6 01 60 02 00 03 f5 04 00 05 00 06 00"), wantID: 7},
		{name: "sign response from 19 bytes", payload: envHex(t, TypeSignResponse, "a6 01 "+addr19+" 02 "+sig65+" 03 40 04 "+hash32+" 05 00 06 "+hash32), wantID: 7, wantErr: errNonCanonical},
		{name: "sign response from 21 bytes", payload: envHex(t, TypeSignResponse, "a6 01 "+addr21+" 02 "+sig65+" 03 40 04 "+hash32+" 05 00 06 "+hash32), wantID: 7, wantErr: errNonCanonical},
		{name: "sign response from array", payload: envHex(t, TypeSignResponse, "a6 01 "+addrArray+" 02 "+sig65+" 03 40 04 "+hash32+" 05 00 06 "+hash32), wantID: 7, wantErr: errNonCanonical},
		{name: "sign response signature 64 bytes", payload: envHex(t, TypeSignResponse, "a6 01 "+addr20+" 02 58 40 "+strings.Repeat("22", 64)+" 03 40 04 "+hash32+" 05 00 06 "+hash32), wantID: 7, wantErr: errNonCanonical},
		{name: "sign response hash empty", payload: envHex(t, TypeSignResponse, "a6 01 "+addr20+" 02 "+sig65+" 03 40 04 40 05 00 06 "+hash32), wantID: 7, wantErr: errNonCanonical},
		{name: "sign response hash text", payload: envHex(t, TypeSignResponse, "a6 01 "+addr20+" 02 "+sig65+" 03 40 04 78 20 "+strings.Repeat("33", 32)+" 05 00 06 "+hash32), wantID: 7},
		{name: "key address 19 bytes", payload: envHex(t, TypeKeysResponse, "a1 01 81 a3 01 60 02 "+addr19+" 03 60"), wantID: 7, wantErr: errNonCanonical},
		{name: "key address 21 bytes", payload: envHex(t, TypeKeysResponse, "a1 01 81 a3 01 60 02 "+addr21+" 03 60"), wantID: 7, wantErr: errNonCanonical},
		{name: "keys not array", payload: envHex(t, TypeKeysResponse, "a1 01 a0"), wantID: 7},
		{name: "keys null", payload: envHex(t, TypeKeysResponse, "a1 01 f6"), wantID: 7, wantErr: errNonCanonical},
		{name: "keys over cap", payload: envHex(t, TypeKeysResponse, "a1 01 99 0401"+strings.Repeat("a3 01 60 02 "+addr20+" 03 60", MaxKeys+1)), wantID: 7, errText: "exceeded max number of elements"},
		{name: "key unknown field", payload: envHex(t, TypeKeysResponse, "a1 01 81 a4 01 60 02 "+addr20+" 03 60 04 00"), wantID: 7, errText: "unknown field"},
		{name: "nested too deep", payload: envHex(t, TypeKeysResponse, "a1 01 "+strings.Repeat("81", 20)+"80"), wantID: 7, errText: "exceeded max nested level"},
		{name: "audit request rotate false", payload: envHex(t, TypeAuditRequest, "a3 01 00 02 00 03 f4"), wantID: 7, wantErr: errNonCanonical},
		{name: "audit request rotate integer", payload: envHex(t, TypeAuditRequest, "a3 01 00 02 00 03 01"), wantID: 7},
		{name: "audit request rotate null", payload: envHex(t, TypeAuditRequest, "a3 01 00 02 00 03 f6"), wantID: 7, wantErr: errNonCanonical},
		{name: "audit response empty rotate record", payload: envHex(t, TypeAuditResponse, "a5 01 40 02 00 03 "+hash32+" 04 80 05 40"), wantID: 7, wantErr: errNonCanonical},
		{name: "audit response rotate record over cap", payload: envHex(t, TypeAuditResponse, "a5 01 40 02 00 03 "+hash32+" 04 80 05 5a 00010001 "+strings.Repeat("7b", MaxAuditRecordLen+1)), wantID: 7, errText: "rotate record is 65537 bytes"},
		{name: "error empty code", payload: envHex(t, TypeError, "a3 01 60 02 60 03 60"), wantID: 7, errText: "code is empty"},
		{name: "error invalid utf-8", payload: envHex(t, TypeError, "a3 01 61 63 02 60 03 62 c3 28"), wantID: 7, errText: "UTF-8"},
		{name: "summary label past the value", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "to", Value: "0x12", Labels: []SummaryLabel{{At: 4, End: 5, Text: "x"}}})), wantID: 7, errText: "past the value"},
		{name: "summary labels overlap", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "to", Value: "0x1234", Labels: []SummaryLabel{{At: 0, End: 4, Text: "a"}, {At: 3, End: 4, Text: "b"}}})), wantID: 7, errText: "out of order"},
		{name: "summary label end before at", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "to", Value: "0x1234", Labels: []SummaryLabel{{At: 3, End: 2, Text: "a"}}})), wantID: 7, errText: "out of order"},
		{name: "summary label splits a character", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "k", Value: "é", Labels: []SummaryLabel{{At: 1, End: 1, Text: "a"}}})), wantID: 7, errText: "within a character"},
		{name: "summary too many labels", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "k", Value: "v", Labels: make([]SummaryLabel, MaxSummaryLabels+1)})), wantID: 7, errText: "9 labels"},
		{name: "summary too many lines", payload: envBody(t, TypeSignResponse, pendingWith(make([]SummaryLine, MaxSummaryLines+1)...)), wantID: 7, errText: "201 lines"},
		{name: "summary rendered over cap", payload: envBody(t, TypeSignResponse, pendingWith(SummaryLine{Key: "k", Value: "v", Labels: []SummaryLabel{{At: 1, End: 1, Text: strings.Repeat("x", MaxSummaryLen)}}})), wantID: 7, errText: "summary of more than"},
		{name: "summary empty labels", payload: envHex(t, TypeSignResponse, "a8 01 "+addr20+" 02 "+sig65+" 03 40 04 "+hash32+" 05 00 06 "+hash32+" 08 60 10 81 a3 01 60 02 60 03 80"), wantID: 7, wantErr: errNonCanonical},
		{name: "summary text retired", payload: envHex(t, TypeSignResponse, "a8 01 "+addr20+" 02 "+sig65+" 03 40 04 "+hash32+" 05 00 06 "+hash32+" 08 60 0a 61 73"), wantID: 7, errText: "unknown field"},
		{name: "error message over cap", payload: envHex(t, TypeError, "a3 01 61 63 02 60 03 79 0401 "+strings.Repeat("61", MaxErrorMessageLen+1)), wantID: 7, errText: "message is 1025 bytes"},
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	tests := refuseCases(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, m, err := Unmarshal(tc.payload)
			t.Logf("%v", err)
			if err == nil {
				t.Fatalf("Unmarshal(%x) = %d, %#v, nil; want error", tc.payload, id, m)
			}
			if m != nil {
				t.Errorf("message %#v returned with error", m)
			}
			if id != tc.wantID {
				t.Errorf("id = %d, want %d (err %v)", id, tc.wantID, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("err = %v, want it to contain %q", err, tc.errText)
			}
			if !strings.HasPrefix(err.Error(), "proto: ") {
				t.Errorf("err = %v, want prefix %q", err, "proto: ")
			}
		})
	}
}

// foreign claims to be a SignRequest but is not one.
type foreign struct{ Body []byte }

func (foreign) Type() Type { return TypeSignRequest }

func TestMarshalRefuses(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name    string
		id      uint64
		m       Message
		errText string
	}{
		{"nil", 1, nil, "nil message"},
		{"nil pointer", 1, (*SignRequest)(nil), "nil message"},
		{"foreign type", 1, foreign{}, "unknown message type"},
		{"id zero", 0, HealthRequest{}, "reserved"},
		{"error without code", 1, &Error{Message: "x"}, "code is empty"},
		{"error code too long", 1, &Error{Code: long(MaxErrorCodeLen + 1)}, "code is 65 bytes"},
		{"error rule too long", 1, &Error{Code: "c", Rule: long(MaxErrorRuleLen + 1)}, "rule is"},
		{"error message too long", 1, &Error{Code: "c", Message: long(MaxErrorMessageLen + 1)}, "message is"},
		{"error invalid utf-8", 1, &Error{Code: "c", Message: "\xff"}, "UTF-8"},
		{"version too long", 1, &HealthResponse{Version: long(MaxVersionLen + 1)}, "version is"},
		{"frozen keys over the keys cap", 1, &HealthResponse{FrozenKeys: MaxKeys + 1}, "1025 frozen keys"},
		{"pending policies over the cap", 1, &HealthResponse{PendingPolicies: MaxPendingPolicies + 1, PolicyDueUnixMS: 1}, "17 pending policies"},
		{"pending policies without due time", 1, &HealthResponse{PendingPolicies: 1}, "both or neither"},
		{"due time without pending policy", 1, &HealthResponse{PolicyDueUnixMS: 5}, "both or neither"},
		{"kms unknown op", 1, &HealthResponse{KMS: []KMSStats{{Op: "encrypt", Buckets: make([]uint64, len(KMSLatencyBoundsMS)+1)}}}, "unknown operation"},
		{"kms short buckets", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Buckets: make([]uint64, len(KMSLatencyBoundsMS))}}}, "11 buckets, want 12"},
		{"kms calls not the buckets' sum", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Calls: 2, Buckets: make([]uint64, len(KMSLatencyBoundsMS)+1)}}}, "inconsistent"},
		{"kms more errors than calls", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Errors: 1, Buckets: make([]uint64, len(KMSLatencyBoundsMS)+1)}}}, "inconsistent"},
		{"kms more denied than errors", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Calls: 1, AccessDenied: 1, Buckets: append(make([]uint64, len(KMSLatencyBoundsMS)), 1)}}}, "inconsistent"},
		{"kms buckets overflow", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Buckets: append(make([]uint64, len(KMSLatencyBoundsMS)-1), ^uint64(0), 1)}}}, "overflow"},
		{"kms ops repeated", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpDecrypt, Buckets: make([]uint64, 12)}, {Op: KMSOpDecrypt, Buckets: make([]uint64, 12)}}}, "out of order"},
		{"kms ops out of order", 1, &HealthResponse{KMS: []KMSStats{{Op: KMSOpGenerateDataKey, Buckets: make([]uint64, 12)}, {Op: KMSOpDecrypt, Buckets: make([]uint64, 12)}}}, "out of order"},
		{"kms too many entries", 1, &HealthResponse{KMS: make([]KMSStats, 3)}, "3 kms entries"},
		{"too many keys", 1, &KeysResponse{Keys: make([]Key, MaxKeys+1)}, "1025 keys"},
		{"key id too long", 1, &KeysResponse{Keys: []Key{{ID: long(MaxKeyIDLen + 1)}}}, "key 0: id is"},
		{"key path too long", 1, &KeysResponse{Keys: []Key{{}, {Path: long(MaxKeyPathLen + 1)}}}, "key 1: path is"},
		{"sign body too long", 1, &SignRequest{Body: make([]byte, MaxSignBodyLen+1)}, "body is"},
		{"stamp too long", 1, &SignRequest{Stamp: long(MaxStampLen + 1)}, "stamp is"},
		{"stamp invalid utf-8", 1, &SignRequest{Stamp: "a\x80"}, "stamp is not valid UTF-8"},
		{"signed tx too long", 1, &SignResponse{SignedTransaction: make([]byte, MaxSignedTransactionLen+1)}, "signed transaction is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Marshal(tc.id, tc.m)
			if err == nil {
				t.Fatalf("Marshal = %x, nil; want error", p)
			}
			if !strings.Contains(err.Error(), tc.errText) || !strings.HasPrefix(err.Error(), "proto: ") {
				t.Errorf("err = %v, want it to contain %q", err, tc.errText)
			}
		})
	}
}

// TestLargestFitsInFrame: the largest messages the caps allow still fit in
// a frame.
func TestLargestFitsInFrame(t *testing.T) {
	keys := make([]Key, MaxKeys)
	for i := range keys {
		keys[i] = Key{ID: strings.Repeat("i", MaxKeyIDLen), Path: strings.Repeat("p", MaxKeyPathLen)}
	}
	for _, m := range []Message{
		&SignRequest{Body: make([]byte, MaxSignBodyLen), Stamp: strings.Repeat("s", MaxStampLen)},
		&SignResponse{SignedTransaction: make([]byte, MaxSignedTransactionLen)},
		&KeysResponse{Keys: keys},
	} {
		p, err := Marshal(^uint64(0), m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if _, _, err := Unmarshal(p); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
	}
}

func TestUnmarshalDoesNotAlias(t *testing.T) {
	p, err := Marshal(1, &SignRequest{Body: []byte("body"), Stamp: "stamp"})
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := Unmarshal(p)
	if err != nil {
		t.Fatal(err)
	}
	clear(p)
	if got := string(m.(*SignRequest).Body); got != "body" {
		t.Errorf("body changed with payload: %q", got)
	}
}

func TestTypeString(t *testing.T) {
	if got := TypeSignRequest.String(); got != "sign_request" {
		t.Errorf("got %q", got)
	}
	if got := Type(999).String(); got != "Type(999)" {
		t.Errorf("got %q", got)
	}
	if ResponseType(TypeSignRequest) != TypeSignResponse || ResponseType(TypeSignResponse) != 0 || ResponseType(0) != 0 {
		t.Error("ResponseType")
	}
	if !IsRequest(TypeHealthRequest) || IsRequest(TypeError) || IsRequest(100) {
		t.Error("IsRequest")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Code: "policy_denied", Message: "too much"}
	if got, want := e.Error(), "proto: remote error: policy_denied: too much"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.Rule = "limit.daily"
	if got, want := e.Error(), "proto: remote error: policy_denied: too much (rule limit.daily)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTruncateText(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"a\xffb", 10, "a?b"},
		{"ab\u00e9", 3, "ab"}, // é is 2 bytes: not cut in half
		{"\u20ac\u20ac", 4, "\u20ac"},
	} {
		if got := truncateText(tc.in, tc.limit); got != tc.want {
			t.Errorf("truncateText(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

// TestFxamackerPadsFixedArrays records why Unmarshal needs its
// re-encoding check for fixed-size fields: fxamacker/cbor on its own
// zero-pads a short byte string into a [N]byte, and truncates a long one.
// If this test fails, the library changed; the canonical check still holds.
func TestFxamackerPadsFixedArrays(t *testing.T) {
	var a [4]byte
	if err := decMode.Unmarshal(unhex(t, "42 0102"), &a); err != nil || a != [4]byte{1, 2, 0, 0} {
		t.Errorf("short: %v %x", err, a)
	}
	if err := decMode.Unmarshal(unhex(t, "46 010203040506"), &a); err != nil || a != [4]byte{1, 2, 3, 4} {
		t.Errorf("long: %v %x", err, a)
	}
}

// sampleSummary is a summary of two lines, one with a label inserted after
// an address and one with a value shown in the units of a token.
var sampleSummary = []SummaryLine{
	{Key: "to", Value: "0x2222222222222222222222222222222222222222", Labels: []SummaryLabel{{At: 42, End: 42, Text: ` ("treasury")`}}},
	{Key: "call.amount", Value: "1500000 (raw units of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)", Labels: []SummaryLabel{{At: 0, End: 65, Text: "1.5 USDC"}}},
	{Key: "digest", Value: "0x00"},
}
