package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// goldenRecord and goldenLine are the test vector of docs/audit.md.
var goldenRecord = Record{
	Seq:           2,
	TimeMS:        1700000000123,
	Kind:          KindDecision,
	RequestDigest: mustHex("9c22ff5f21f0b81b113e63f7db6da94fedef11b2119b4088b89664fb9a3cb658"),
	Client:        "ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
	Key:           "hot-0",
	Summary:       "chain: 1 (Ethereum)\nto: 0x000000000000000000000000000000000000dEaD \"treasury\"\nvalue: 1.5 ETH\n",
	Decision:      DecisionApproved,
	Rule:          "approval_threshold",
	PolicyVersion: 18446744073709551615,
	Approvers:     []string{"ed25519:aa", "ed25519:bb"},
	Prev:          [32]byte(mustHex("0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829")),
}

const goldenLine = `{"approvers":["ed25519:aa","ed25519:bb"],"client":"ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",` +
	`"decision":"approved","key":"hot-0","kind":"decision","policy_version":"18446744073709551615",` +
	`"prev":"0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",` +
	`"request_digest":"9c22ff5f21f0b81b113e63f7db6da94fedef11b2119b4088b89664fb9a3cb658","rule":"approval_threshold","seq":2,"sig":"",` +
	`"summary":"chain: 1 (Ethereum)\nto: 0x000000000000000000000000000000000000dEaD \"treasury\"\nvalue: 1.5 ETH\n","time_ms":1700000000123}`

// goldenCheckpointLine is goldenRecord with checkpoint 3 (docs/audit.md's
// second vector): the member sits between approvers and client.
const goldenCheckpointLine = `{"approvers":["ed25519:aa","ed25519:bb"],"checkpoint":3,"client":"ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",` +
	`"decision":"approved","key":"hot-0","kind":"decision","policy_version":"18446744073709551615",` +
	`"prev":"0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",` +
	`"request_digest":"9c22ff5f21f0b81b113e63f7db6da94fedef11b2119b4088b89664fb9a3cb658","rule":"approval_threshold","seq":2,"sig":"",` +
	`"summary":"chain: 1 (Ethereum)\nto: 0x000000000000000000000000000000000000dEaD \"treasury\"\nvalue: 1.5 ETH\n","time_ms":1700000000123}`

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestMarshalGolden(t *testing.T) {
	got, err := Marshal(goldenRecord)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenLine {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, goldenLine)
	}
	if h := goldenRecord.Hash(); h != sha256.Sum256([]byte(goldenLine)) || hex.EncodeToString(h[:]) != "623250e6907754fecbe2b1df3ce18e407d0348bad48e33688a97228c9356fdb4" {
		t.Errorf("Hash = %x", h)
	}
	back, err := Unmarshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Marshal(back)
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("round trip: %s, %v", again, err)
	}
}

// TestMarshalCheckpointGolden: the checkpoint member is written only when
// not 0, in its JCS place, and read back; the values are cross-checked
// with Python's hashlib (docs/audit.md).
func TestMarshalCheckpointGolden(t *testing.T) {
	r := goldenRecord
	r.Checkpoint = 3
	got, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenCheckpointLine {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, goldenCheckpointLine)
	}
	if h := r.Hash(); hex.EncodeToString(h[:]) != "effc0500e579e3ac07eb40293ad284fcc257bafabec68232ff80632308150848" {
		t.Errorf("Hash = %x", h)
	}
	back, err := Unmarshal(got)
	if err != nil || back.Checkpoint != 3 {
		t.Fatalf("Unmarshal: checkpoint %d, %v", back.Checkpoint, err)
	}
	var p parsed
	if err := parseLine(got, &p, false); err != nil || p.rec.Checkpoint != 3 {
		t.Fatalf("fast parse: checkpoint %d, %v", p.rec.Checkpoint, err)
	}
	if zero, _ := Marshal(goldenRecord); bytes.Contains(zero, []byte("checkpoint")) {
		t.Fatalf("checkpoint 0 was written: %s", zero)
	}
	r.Checkpoint = MaxSafeInteger
	if line, err := Marshal(r); err != nil || !bytes.Contains(line, []byte(`"checkpoint":9007199254740991,`)) {
		t.Fatalf("the largest checkpoint: %s, %v", line, err)
	}
}

// TestMarshalUnacknowledged: the unacknowledged member is written only
// when not 0, last (its JCS place, after time_ms), covered by the
// signature, and read back by both parsers.
func TestMarshalUnacknowledged(t *testing.T) {
	r := goldenRecord
	r.Checkpoint, r.Unacknowledged = 3, 2
	got, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(goldenCheckpointLine, "}") + `,"unacknowledged":2}`
	if string(got) != want {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, want)
	}
	back, err := Unmarshal(got)
	if err != nil || back.Unacknowledged != 2 || back.Checkpoint != 3 {
		t.Fatalf("Unmarshal: unacknowledged %d, checkpoint %d, %v", back.Unacknowledged, back.Checkpoint, err)
	}
	var p parsed
	if err := parseLine(got, &p, false); err != nil || p.rec.Unacknowledged != 2 {
		t.Fatalf("fast parse: unacknowledged %d, %v", p.rec.Unacknowledged, err)
	}
	if zero, _ := Marshal(goldenRecord); bytes.Contains(zero, []byte("unacknowledged")) {
		t.Fatalf("unacknowledged 0 was written: %s", zero)
	}
	// The signature covers it: the same record signed with 2 does not
	// verify with 5.
	s := testSigner(t, 1)
	if err := signRecord(s, &r); err != nil {
		t.Fatal(err)
	}
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyRecord(line, s.PublicKey()); err != nil {
		t.Fatalf("signed record: %v", err)
	}
	forged := bytes.Replace(line, []byte(`"unacknowledged":2}`), []byte(`"unacknowledged":5}`), 1)
	if _, err := VerifyRecord(forged, s.PublicKey()); err == nil {
		t.Fatal("a record whose unacknowledged count was changed verifies")
	}
}

// TestMarshalIsJCS checks the encoding against encoding/json's sorted,
// compact output, which is RFC 8785 for strings without \b, \f, U+2028 or
// U+2029 (encoding/json escapes those differently).
func TestMarshalIsJCS(t *testing.T) {
	s := testSigner(t, 1)
	l := newTestLog(t, s, 12, func(seq uint64) bool { return seq%3 == 0 })
	for i, r := range l.recs {
		m := map[string]any{
			"seq": r.Seq, "time_ms": r.TimeMS, "kind": r.Kind, "request_digest": hex.EncodeToString(r.RequestDigest),
			"client": r.Client, "key": r.Key, "summary": r.Summary, "decision": r.Decision, "rule": r.Rule,
			"policy_version": "3", "approvers": append([]string{}, r.Approvers...),
			"prev": hex.EncodeToString(r.Prev[:]), "sig": hex.EncodeToString(r.Sig),
		}
		if r.Checkpoint != 0 {
			m["checkpoint"] = r.Checkpoint
		}
		if r.Unacknowledged != 0 {
			m["unacknowledged"] = r.Unacknowledged
		}
		if r.Kind == KindGenesis {
			m["policy_version"] = "0"
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(b.Bytes(), []byte("\n")); !bytes.Equal(l.lines[i], want) {
			t.Fatalf("record %d:\n got %s\nwant %s", i+1, l.lines[i], want)
		}
	}
}

func TestStringEscapes(t *testing.T) {
	in := "a\"b\\c\x00\x01\b\t\n\f\r\x1f\x7f€\u2028<>&/"
	want := `"a\"b\\c\u0000\u0001\b\t\n\f\r\u001f` + "\x7f€\u2028<>&/" + `"`
	if got := string(appendString(nil, in)); got != want {
		t.Fatalf("appendString = %s, want %s", got, want)
	}
	r := goldenRecord
	r.Summary = in
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(line)
	if err != nil {
		t.Fatal(err)
	}
	if back.Summary != in {
		t.Fatalf("summary %q, want %q", back.Summary, in)
	}
	for c := 0; c < 0x20; c++ {
		r.Rule = string(rune(c))
		line, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Unmarshal(line); err != nil || back.Rule != r.Rule {
			t.Fatalf("control %#x: %q, %v", c, back.Rule, err)
		}
	}
}

// TestRecordLen: recordLen is the exact length of the encoding, with and
// without the sig member, whatever the members hold (escapes, omitted
// members, numbers of every width), so that a record is encoded into one
// buffer with no growth. FuzzUnmarshal checks it on every line it accepts.
func TestRecordLen(t *testing.T) {
	signed := goldenRecord
	signed.Sig = bytes.Repeat([]byte{0xab}, sigSize)
	escapes := goldenRecord
	escapes.Summary = "a\"b\\c\x00\x01\b\t\n\f\r\x1f\x7f€"
	escapes.Approvers = []string{"\n", "", "\"\x02"}
	escapes.Rule = "\x1e"
	big := goldenRecord
	big.Seq, big.TimeMS, big.PolicyVersion = MaxSafeInteger, MaxSafeInteger, 0
	big.Checkpoint, big.Unacknowledged = 1<<64-1, 9
	negative := goldenRecord
	negative.TimeMS = -1 << 63
	for name, r := range map[string]Record{
		"golden": goldenRecord, "signed": signed, "escapes": escapes, "big": big,
		"negative time": negative, "zero": {}, "no digest": {Seq: 1, Kind: KindBoot},
	} {
		for _, withSig := range []bool{true, false} {
			want := len(appendRecord(nil, &r, withSig))
			if got := recordLen(&r, withSig); got != want {
				t.Errorf("%s (sig %v): recordLen %d, encoding %d bytes", name, withSig, got, want)
			}
			if b := encodeRecord(&r, withSig); cap(b) != len(b) || !bytes.Equal(b, appendRecord(nil, &r, withSig)) {
				t.Errorf("%s (sig %v): encodeRecord differs from appendRecord, or grew its buffer", name, withSig)
			}
		}
	}
	for u, n := range map[uint64]int{0: 1, 9: 1, 10: 2, 99: 2, 100: 3, 1<<64 - 1: 20} {
		if got := decimalLen(u); got != n {
			t.Errorf("decimalLen(%d) = %d, want %d", u, got, n)
		}
	}
}

func TestMarshalDeterministic(t *testing.T) {
	a, err1 := Marshal(goldenRecord)
	r := goldenRecord
	r.Approvers = append([]string(nil), r.Approvers...)
	b, err2 := Marshal(r)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Fatal("same record, different bytes")
	}
	empty := goldenRecord
	empty.Approvers = nil
	nilLine, _ := Marshal(empty)
	empty.Approvers = []string{}
	emptyLine, _ := Marshal(empty)
	if !bytes.Equal(nilLine, emptyLine) || !bytes.Contains(nilLine, []byte(`"approvers":[]`)) {
		t.Fatalf("nil and empty approvers differ: %s %s", nilLine, emptyLine)
	}
	back, err := Unmarshal(nilLine)
	if err != nil || back.Approvers != nil {
		t.Fatalf("Unmarshal approvers %#v, %v", back.Approvers, err)
	}
}

func TestMarshalRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Record)
		want string
	}{
		{"seq zero", func(r *Record) { r.Seq = 0 }, "seq must be at least 1"},
		{"seq too large", func(r *Record) { r.Seq = MaxSafeInteger + 1 }, "seq 9007199254740992 above"},
		{"checkpoint too large", func(r *Record) { r.Checkpoint = MaxSafeInteger + 1 }, "checkpoint 9007199254740992 above"},
		{"unacknowledged too large", func(r *Record) { r.Unacknowledged = MaxSafeInteger + 1 }, "unacknowledged 9007199254740992 above"},
		{"negative time", func(r *Record) { r.TimeMS = -1 }, "time_ms -1 outside"},
		{"time too large", func(r *Record) { r.TimeMS = MaxSafeInteger + 1 }, "time_ms"},
		{"empty kind", func(r *Record) { r.Kind = "" }, "kind"},
		{"upper-case kind", func(r *Record) { r.Kind = "Decision" }, "kind"},
		{"kind with space", func(r *Record) { r.Kind = "a b" }, "kind"},
		{"kind starting with digit", func(r *Record) { r.Kind = "1a" }, "kind"},
		{"kind too long", func(r *Record) { r.Kind = strings.Repeat("a", MaxKindLen+1) }, "kind"},
		{"short digest", func(r *Record) { r.RequestDigest = make([]byte, 31) }, "request digest of 31 bytes"},
		{"short signature", func(r *Record) { r.Sig = make([]byte, 63) }, "signature of 63 bytes"},
		{"invalid UTF-8 summary", func(r *Record) { r.Summary = "a\xffb" }, "summary is not valid UTF-8"},
		{"invalid UTF-8 client", func(r *Record) { r.Client = "\xc3" }, "client is not valid UTF-8"},
		{"invalid UTF-8 approver", func(r *Record) { r.Approvers = []string{"ok", "\xed\xa0\x80"} }, "approvers[1] is not valid UTF-8"},
		{"too large", func(r *Record) { r.Summary = strings.Repeat("x", MaxRecordSize) }, "limit 4194304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := goldenRecord
			tt.edit(&r)
			_, err := Marshal(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("Marshal error %v, want one containing %q", err, tt.want)
			}
		})
	}
	kind := goldenRecord
	kind.Kind = "a_" + strings.Repeat("z", MaxKindLen-3) + "9"
	if _, err := Marshal(kind); err != nil {
		t.Errorf("kind %q refused: %v", kind.Kind, err)
	}
}

// unmarshalRefuseCases are lines Unmarshal must refuse, each a small change
// of goldenLine; they seed FuzzUnmarshal.
func unmarshalRefuseCases() []struct{ name, line, want string } {
	g := goldenLine
	rep := func(old, new string) string {
		if !strings.Contains(g, old) {
			panic("no " + old)
		}
		return strings.Replace(g, old, new, 1)
	}
	tail := func(end string) string { return strings.TrimSuffix(g, "}") + end }
	return []struct{ name, line, want string }{
		{"empty", "", "truncated"},
		{"not an object", "[]", "want"},
		{"space after colon", rep(`"seq":2`, `"seq": 2`), "want seq as a decimal"},
		{"space before brace", " " + g, "byte 0"},
		{"trailing space", g + " ", "trailing data"},
		{"trailing newline", g + "\n", "trailing data"},
		{"crlf", g + "\r", "trailing data"},
		{"pretty printed", strings.ReplaceAll(g, `,"`, ",\n  \""), "want"},
		{"members reordered", rep(`"approvers":["ed25519:aa","ed25519:bb"],"client"`, `"client"`) + "", "want"},
		{"unknown member", rep(`"rule":`, `"extra":"","rule":`), "want"},
		{"duplicate member", rep(`"rule":"approval_threshold"`, `"rule":"approval_threshold","rule":"x"`), "want"},
		{"missing member", rep(`"rule":"approval_threshold",`, ``), "want"},
		{"upper-case hex prev", rep(`"prev":"0a`, `"prev":"0A`), "lower-case hex"},
		{"short prev", rep(`"prev":"0a`, `"prev":"`), "lower-case hex"},
		{"0x prefix digest", rep(`"request_digest":"9c`, `"request_digest":"0x9c`), "lower-case hex"},
		{"short digest", rep(`"request_digest":"9c`, `"request_digest":"`), "want"},
		{"short sig", rep(`"sig":""`, `"sig":"00"`), "lower-case hex"},
		{"leading zero seq", rep(`"seq":2`, `"seq":02`), "leading zero"},
		{"seq zero", rep(`"seq":2`, `"seq":0`), "seq 0"},
		{"negative seq", rep(`"seq":2`, `"seq":-2`), "want seq as a decimal integer"},
		{"seq as string", rep(`"seq":2`, `"seq":"2"`), "decimal integer"},
		{"seq fraction", rep(`"seq":2`, `"seq":2.0`), "want"},
		{"seq exponent", rep(`"seq":2`, `"seq":2e0`), "want"},
		{"seq above 2^53-1", rep(`"seq":2`, `"seq":9007199254740992`), "out of range"},
		{"time negative", rep(`"time_ms":1700000000123`, `"time_ms":-1`), "decimal integer"},
		{"policy version as number", rep(`"policy_version":"18446744073709551615"`, `"policy_version":7`), "want"},
		{"policy version overflow", rep(`"policy_version":"18446744073709551615"`, `"policy_version":"18446744073709551616"`), "out of range"},
		{"policy version leading zero", rep(`"policy_version":"18446744073709551615"`, `"policy_version":"07"`), "leading zero"},
		{"null approvers", rep(`"approvers":["ed25519:aa","ed25519:bb"]`, `"approvers":null`), "want"},
		{"approver not a string", rep(`"approvers":["ed25519:aa"`, `"approvers":[1`), "want a string"},
		{"trailing comma approvers", rep(`"ed25519:bb"]`, `"ed25519:bb",]`), "want a string"},
		{"null rule", rep(`"rule":"approval_threshold"`, `"rule":null`), "want a string"},
		{"escaped slash", rep(`"key":"hot-0"`, `"key":"hot\/0"`), "non-canonical escape"},
		{"unicode escape of letter", rep(`"key":"hot-0"`, `"key":"\u0068ot-0"`), "non-canonical \\u escape"},
		{"unicode escape of newline", rep(`(Ethereum)\n`, `(Ethereum)\u000a`), "non-canonical \\u escape"},
		{"upper-case unicode escape", rep(`"key":"hot-0"`, `"key":"\u001Fhot-0"`), "non-canonical \\u escape"},
		{"surrogate escape", rep(`"key":"hot-0"`, `"key":"\ud800"`), "non-canonical \\u escape"},
		{"raw newline", rep(`(Ethereum)\n`, "(Ethereum)\n"), "control character"},
		{"raw tab", rep(`"key":"hot-0"`, "\"key\":\"hot\t0\""), "control character"},
		{"invalid UTF-8", rep(`"key":"hot-0"`, "\"key\":\"hot\xff0\""), "invalid UTF-8"},
		{"encoded surrogate", rep(`"key":"hot-0"`, "\"key\":\"hot\xed\xa0\x800\""), "invalid UTF-8"},
		{"overlong UTF-8", rep(`"key":"hot-0"`, "\"key\":\"hot\xc0\xaf0\""), "invalid UTF-8"},
		{"unterminated string", `{"approvers":["abc`, "unterminated"},
		{"kind upper-case", rep(`"kind":"decision"`, `"kind":"Decision"`), "kind is not"},
		{"kind escaped", rep(`"kind":"decision"`, `"kind":"deci\nsion"`), "kind is not"},
		{"truncated", g[:len(g)-1], "truncated"},
		{"two objects", g + g, "trailing data"},
		{"checkpoint zero", rep(`],"client"`, `],"checkpoint":0,"client"`), "checkpoint 0"},
		{"checkpoint leading zero", rep(`],"client"`, `],"checkpoint":03,"client"`), "checkpoint has a leading zero"},
		{"checkpoint above 2^53-1", rep(`],"client"`, `],"checkpoint":9007199254740992,"client"`), "checkpoint out of range"},
		{"checkpoint as string", rep(`],"client"`, `],"checkpoint":"3","client"`), "want checkpoint as a decimal integer"},
		{"checkpoint negative", rep(`],"client"`, `],"checkpoint":-3,"client"`), "want checkpoint as a decimal integer"},
		{"checkpoint null", rep(`],"client"`, `],"checkpoint":null,"client"`), "want checkpoint as a decimal integer"},
		{"checkpoint after client", rep(`,"decision"`, `,"checkpoint":3,"decision"`), "want"},
		{"checkpoint twice", rep(`],"client"`, `],"checkpoint":3,"checkpoint":3,"client"`), "want"},
		{"unacknowledged zero", tail(`,"unacknowledged":0}`), "unacknowledged 0"},
		{"unacknowledged leading zero", tail(`,"unacknowledged":02}`), "unacknowledged has a leading zero"},
		{"unacknowledged above 2^53-1", tail(`,"unacknowledged":9007199254740992}`), "unacknowledged out of range"},
		{"unacknowledged as string", tail(`,"unacknowledged":"2"}`), "want unacknowledged as a decimal integer"},
		{"unacknowledged before time_ms", rep(`,"time_ms"`, `,"unacknowledged":2,"time_ms"`), "want"},
		{"unacknowledged twice", tail(`,"unacknowledged":2,"unacknowledged":2}`), "want"},
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, tt := range unmarshalRefuseCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Unmarshal([]byte(tt.line))
			if err == nil {
				t.Fatalf("accepted %q as %+v", tt.line, r)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("error %q, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "re-encodes") {
				t.Fatalf("only the re-encode check caught %q: %v", tt.line, err)
			}
		})
	}
	big := []byte(strings.Replace(goldenLine, `"rule":"`, `"rule":"`+strings.Repeat("x", MaxRecordSize), 1))
	if _, err := Unmarshal(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized record: %v", err)
	}
}

func TestHashIsOfTheLine(t *testing.T) {
	s := testSigner(t, 1)
	l := newTestLog(t, s, 5, allSigned)
	for i := 1; i < len(l.recs); i++ {
		if l.recs[i].Prev != l.recs[i-1].Hash() {
			t.Fatalf("record %d: prev is not the hash of record %d", i+1, i)
		}
	}
	if l.recs[0].Prev != ([32]byte{}) {
		t.Fatal("the first record's prev is not zero")
	}
	// A record Marshal refuses hashes to something, without panicking.
	bad := goldenRecord
	bad.Summary = "\xff"
	if bad.Hash() == goldenRecord.Hash() {
		t.Fatal("different records, same hash")
	}
}

// TestStringEscapingWordwise: appendString and EscapedLen, which test eight
// bytes at a time, agree with a byte-by-byte reference for every byte value
// at every position of a word and across word boundaries, among plain
// bytes and bytes above 0x7f (which the word tests must not mistake for
// control characters through a borrow).
func TestStringEscapingWordwise(t *testing.T) {
	ref := func(s string) string {
		var b []byte
		b = append(b, '"')
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, `\b`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\f':
				b = append(b, `\f`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c < 0x20:
				b = append(b, fmt.Sprintf(`\u%04x`, c)...)
			default:
				b = append(b, c)
			}
		}
		return string(append(b, '"'))
	}
	check := func(s string) {
		t.Helper()
		want := ref(s)
		if got := string(appendString(nil, s)); got != want {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
		if got := EscapedLen(s) + 2; got != len(want) {
			t.Fatalf("EscapedLen(%q) = %d, want %d", s, got-2, len(want)-2)
		}
	}
	for _, fill := range []byte{'a', 0x80, 0xff, 0x21, 0x5d, 0x23, 0x1f} {
		for n := 0; n <= 24; n++ {
			base := bytes.Repeat([]byte{fill}, n)
			check(string(base))
			for pos := 0; pos < n; pos++ {
				for c := range 256 {
					s := bytes.Clone(base)
					s[pos] = byte(c)
					check(string(s))
				}
			}
		}
	}
	check("first line\nsecond \"line\"\\\x00€\x7f" + strings.Repeat("plain text ", 20) + "\t")
}
