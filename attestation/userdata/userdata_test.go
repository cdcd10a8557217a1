package userdata

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	keys := []Key{{ID: "hot-0", Address: [20]byte{0xab, 19: 1}, Path: "m/44'/60'/0'/0/0"}, {ID: "cold-1", Path: "m/1"}}
	u := UserData{Version: "0.1.0", KeysHash: KeysHash(keys), KeyCount: 2, PolicyHash: [32]byte{1}, PolicyVersion: 3, AuditSeq: 9, AuditHead: [32]byte{2}, AuditKey: bytes.Repeat([]byte{3}, 32)}
	b, err := Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	u.Format = Format
	if got.KeysHash != u.KeysHash || got.PolicyVersion != 3 || got.AuditSeq != 9 || !bytes.Equal(got.AuditKey, u.AuditKey) || got.Format != Format {
		t.Fatalf("round trip: %+v", got)
	}
	// KeysHash is the documented text hash.
	want := sha256.Sum256([]byte("nitrosign keys v1\nhot-0\n0xab00000000000000000000000000000000000001\nm/44'/60'/0'/0/0\ncold-1\n0x0000000000000000000000000000000000000000\nm/1\n"))
	if KeysHash(keys) != want {
		t.Error("KeysHash differs from its documented definition")
	}
	if KeysHash(keys[:1]) == KeysHash(keys) {
		t.Error("KeysHash ignores a key")
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := Marshal(UserData{Version: "v"})
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "empty"},
		{"too large", make([]byte, MaxSize+1), "limit"},
		{"not cbor", []byte("hello"), "userdata"},
		{"trailing byte", append(append([]byte{}, good...), 0), "userdata"},
		{"missing field", good[:len(good)-2], "userdata"},
		{"other format", bytes.Replace(good, []byte("nitrosign-attestation-v1"), []byte("nitrosign-attestation-v2"), 1), "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Marshal(UserData{Version: "0.1.0", KeyCount: 1, AuditKey: []byte{1, 2}})
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := Parse(b)
		if err != nil {
			return
		}
		re, err := Marshal(*u)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("accepted input does not re-encode to itself: %v", err)
		}
	})
}
