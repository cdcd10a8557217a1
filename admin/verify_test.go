package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/keypath"
)

func TestVerifyAcceptsEveryKind(t *testing.T) {
	set := testSet(t)
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			cmd := validCommand(kind)
			names := []string{"carol", "alice"}
			if kind == KindPolicyChange {
				names = []string{"bob", "carol", "alice"}
			}
			got, signers, err := set.Verify(signedBy(t, cmd, names...), testNow, testGenesis)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(slices.Values(names))
			if !slices.Equal(signers, want) {
				t.Errorf("signers %v, want %v", signers, want)
			}
			if got.Kind != kind || got.GenesisHash != testGenesis ||
				got.NotBefore.UnixMilli() != testNB || got.NotAfter.UnixMilli() != testNA ||
				!bytes.Equal(got.Raw, cmd) || got.Digest != sha256.Sum256(cmd) ||
				string(got.Body) != validBodies[kind] {
				t.Errorf("command %+v does not match %s", got, cmd)
			}
		})
	}
}

func TestVerifyBodies(t *testing.T) {
	set := testSet(t)
	verify := func(kind Kind) *Command {
		t.Helper()
		names := []string{"alice", "bob", "carol"}
		c, _, err := set.Verify(signedBy(t, validCommand(kind), names...), testNow, testGenesis)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	kc, err := verify(KindKeyCreate).KeyCreate()
	if err != nil {
		t.Fatal(err)
	}
	wantPath, _ := keypath.ParsePath("m/44'/60'/0'/0/1")
	if kc.KeyID != "hot-1" || !slices.Equal(kc.Parsed, wantPath) {
		t.Errorf("key_create body %+v", kc)
	}
	ki, err := verify(KindKeyImport).KeyImport()
	if err != nil {
		t.Fatal(err)
	}
	if ki.KeyID != "legacy-1" || !bytes.Equal(ki.Blob, []byte{0, 0xff, 0x10}) {
		t.Errorf("key_import body %+v", ki)
	}
	sr, err := verify(KindSealRotate).SealRotate()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sr.KMSKeyID, "arn:aws:kms:") {
		t.Errorf("seal_rotate body %+v", sr)
	}
	pc, err := verify(KindPolicyChange).PolicyChange()
	if err != nil {
		t.Fatal(err)
	}
	if pc.Version != 2 || pc.Hash != [32]byte{} || string(pc.Document) != `{"version":2,"clients":[]}` {
		t.Errorf("policy_change body %+v", pc)
	}
	cc, err := verify(KindPolicyCancel).PolicyCancel()
	if err != nil {
		t.Fatal(err)
	}
	if cc.Version != 2 {
		t.Errorf("policy_cancel body %+v", cc)
	}
	uf := verify(KindUnfreeze)
	ub, err := uf.Unfreeze()
	if err != nil {
		t.Fatal(err)
	}
	if ub.FreezeSeq != 1234 {
		t.Errorf("unfreeze body %+v", ub)
	}
	fb, err := verify(KindFreeze).Freeze()
	if err != nil {
		t.Fatal(err)
	}
	if *fb != (FreezeBody{KeyID: "hot-0", Reason: "suspected client compromise"}) {
		t.Errorf("freeze body %+v", fb)
	}
	// A decoder for another kind refuses.
	if _, err := uf.KeyCreate(); err == nil || !strings.Contains(err.Error(), `"unfreeze", not key_create`) {
		t.Errorf("KeyCreate of an unfreeze command: %v", err)
	}
}

// refusal is an envelope that Verify must refuse with err, saying msg.
type refusal struct {
	name     string
	envelope []byte
	now      time.Time
	genesis  [32]byte
	err      error
	msg      string
}

// refusals returns every refusal case; each differs from an accepted
// envelope in one respect (TestRefusalsAreNearMisses checks the base
// ones).
func refusals(t testing.TB) []refusal {
	signers := testSigners(t)
	kc := validCommand(KindKeyCreate)
	good := signedBy(t, kc, "alice", "bob")
	aliceSig := sigHex(t, signers, "alice", kc)
	bobSig := sigHex(t, signers, "bob", kc)

	// withCmd signs a (possibly malformed) command by alice and bob.
	withCmd := func(cmd string) []byte { return signedBy(t, []byte(cmd), "alice", "bob") }
	withBody := func(kind Kind, body string) []byte {
		return withCmd(string(rawCommand(kind, testGenesis, testNB, testNA, body)))
	}
	flip := func(h string, i int) string {
		b, _ := hex.DecodeString(h)
		b[i] ^= 0x01
		return hex.EncodeToString(b)
	}
	zeroHash := hex.EncodeToString(make([]byte, 32))
	approvalSig := func(name string) string {
		sig, err := SignDigest(signers[name], DomainApproval, sha256.Sum256(kc))
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(sig)
	}
	otherCmd := rawCommand(KindKeyCreate, testGenesis, testNB, testNA, `{"key_id":"hot-2","path":"m/44'/60'/0'/0/2"}`)
	bobRaw := func() string {
		r, s := parseDER(t, mustDecode(t, bobSig))
		raw := make([]byte, 64)
		r.FillBytes(raw[:32])
		s.FillBytes(raw[32:])
		return hex.EncodeToString(raw)
	}()
	many := make([]rawSig, MaxMembers+1)
	for i := range many {
		many[i] = rawSig{"admin" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), aliceSig}
	}

	R := []refusal{
		// Envelope structure.
		{name: "empty", envelope: nil, err: ErrMalformed, msg: "empty input"},
		{name: "not json", envelope: []byte("command"), err: ErrMalformed, msg: "invalid JSON"},
		{name: "array", envelope: []byte(`[]`), err: ErrMalformed, msg: "want an object"},
		{name: "trailing data", envelope: append(bytes.Clone(good), "{}"...), err: ErrMalformed, msg: "trailing data"},
		{name: "too large", envelope: append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxEnvelopeSize)...), err: ErrMalformed, msg: "limit"},
		{name: "unknown field", envelope: []byte(`{"command":"x","signatures":[],"extra":1}`), err: ErrMalformed, msg: `unknown field "extra"`},
		{name: "duplicate key", envelope: []byte(`{"command":"x","command":"y","signatures":[]}`), err: ErrMalformed, msg: "duplicate key"},
		{name: "case folded key", envelope: []byte(`{"Command":"x","signatures":[]}`), err: ErrMalformed, msg: `unknown field "Command"`},
		{name: "command missing", envelope: []byte(`{"signatures":[]}`), err: ErrMalformed, msg: "command is missing"},
		{name: "command null", envelope: []byte(`{"command":null,"signatures":[]}`), err: ErrMalformed, msg: "command is missing"},
		{name: "command empty", envelope: []byte(`{"command":"","signatures":[]}`), err: ErrMalformed, msg: "command is empty"},
		{name: "command not a string", envelope: []byte(`{"command":{"kind":"unfreeze"},"signatures":[]}`), err: ErrMalformed, msg: "cannot decode"},
		{name: "signatures missing", envelope: []byte(`{"command":"x"}`), err: ErrMalformed, msg: "signatures is missing"},
		{name: "signatures null", envelope: []byte(`{"command":"x","signatures":null}`), err: ErrMalformed, msg: "signatures is missing"},
		{name: "lone surrogate", envelope: []byte(`{"command":"\ud800","signatures":[]}`), err: ErrMalformed, msg: "surrogate"},
		{name: "invalid utf8", envelope: []byte("{\"command\":\"\xff\",\"signatures\":[]}"), err: ErrMalformed, msg: "UTF-8"},
		{name: "too many signatures", envelope: rawEnvelope(t, kc, many...), err: ErrMalformed, msg: "33 signatures, at most 32"},
		{name: "signature uppercase hex", envelope: rawEnvelope(t, kc, rawSig{"alice", strings.ToUpper(aliceSig)}, rawSig{"bob", bobSig}), err: ErrMalformed, msg: "not lowercase hex"},
		{name: "signature odd hex", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig[1:]}, rawSig{"bob", bobSig}), err: ErrMalformed, msg: "odd number"},
		{name: "signature empty", envelope: rawEnvelope(t, kc, rawSig{"alice", ""}, rawSig{"bob", bobSig}), err: ErrMalformed, msg: "signature is 0 hex digits"},
		{name: "signature too long", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig + aliceSig}, rawSig{"bob", bobSig}), err: ErrMalformed, msg: "signature is 256 hex digits"},
		{name: "admin name invalid", envelope: rawEnvelope(t, kc, rawSig{"al ice", aliceSig}, rawSig{"bob", bobSig}), err: ErrMalformed, msg: "admin name"},
		{name: "signature unknown field", envelope: []byte(`{"command":"x","signatures":[{"admin":"alice","signature":"00","scheme":"ed25519"}]}`), err: ErrMalformed, msg: `unknown field "scheme"`},

		// Command structure.
		{name: "command not json", envelope: withCmd("not json"), err: ErrMalformed, msg: "command: strictjson"},
		{name: "command trailing data", envelope: withCmd(string(kc) + " {}"), err: ErrMalformed, msg: "trailing data"},
		{name: "command unknown field", envelope: withCmd(strings.Replace(string(kc), `"kind"`, `"nonce":1,"kind"`, 1)), err: ErrMalformed, msg: `unknown field "nonce"`},
		{name: "command duplicate kind", envelope: withCmd(strings.Replace(string(kc), `"kind":"key_create"`, `"kind":"unfreeze","kind":"key_create"`, 1)), err: ErrMalformed, msg: "duplicate key"},
		{name: "kind missing", envelope: withCmd(strings.Replace(string(kc), `"kind":"key_create",`, ``, 1)), err: ErrMalformed, msg: "kind is missing"},
		{name: "kind unknown", envelope: withCmd(strings.Replace(string(kc), `key_create`, `key_delete`, 1)), err: ErrMalformed, msg: `unknown kind "key_delete"`},
		{name: "kind wrong case", envelope: withCmd(strings.Replace(string(kc), `key_create`, `KEY_CREATE`, 1)), err: ErrMalformed, msg: `unknown kind "KEY_CREATE"`},
		{name: "genesis missing", envelope: withCmd(`{"kind":"unfreeze","not_before_ms":1,"not_after_ms":2,"body":{"freeze_seq":1}}`), err: ErrMalformed, msg: "genesis_hash is missing"},
		{name: "genesis uppercase", envelope: withCmd(strings.Replace(string(kc), hex.EncodeToString(testGenesis[:]), strings.ToUpper(hex.EncodeToString(testGenesis[:])), 1)), err: ErrMalformed, msg: "not lowercase hex"},
		{name: "genesis short", envelope: withCmd(strings.Replace(string(kc), hex.EncodeToString(testGenesis[:]), hex.EncodeToString(testGenesis[:31]), 1)), err: ErrMalformed, msg: "want 64 lowercase hex digits, got 62"},
		{name: "genesis 0x", envelope: withCmd(strings.Replace(string(kc), hex.EncodeToString(testGenesis[:]), "0x"+hex.EncodeToString(testGenesis[:31]), 1)), err: ErrMalformed, msg: "not lowercase hex"},
		{name: "not_before missing", envelope: withCmd(`{"kind":"unfreeze","genesis_hash":"` + zeroHash + `","not_after_ms":2,"body":{"freeze_seq":1}}`), err: ErrMalformed, msg: "not_before_ms is missing"},
		{name: "not_after missing", envelope: withCmd(`{"kind":"unfreeze","genesis_hash":"` + zeroHash + `","not_before_ms":1,"body":{"freeze_seq":1}}`), err: ErrMalformed, msg: "not_after_ms is missing"},
		{name: "body missing", envelope: withCmd(`{"kind":"unfreeze","genesis_hash":"` + zeroHash + `","not_before_ms":1,"not_after_ms":2}`), err: ErrMalformed, msg: "body is missing"},
		{name: "body null", envelope: withCmd(string(rawCommand(KindUnfreeze, testGenesis, testNB, testNA, "null"))), err: ErrMalformed, msg: "want an object"},
		{name: "body string", envelope: withCmd(string(rawCommand(KindUnfreeze, testGenesis, testNB, testNA, `"{}"`))), err: ErrMalformed, msg: "want an object"},
		{name: "time fraction", envelope: withCmd(strings.Replace(string(kc), fmt.Sprint(testNB), fmt.Sprint(testNB)+".5", 1)), err: ErrMalformed, msg: "cannot decode number"},
		{name: "time string", envelope: withCmd(`{"kind":"unfreeze","genesis_hash":"` + hex.EncodeToString(testGenesis[:]) + `","not_before_ms":"1","not_after_ms":2,"body":{"freeze_seq":1}}`), err: ErrMalformed, msg: "cannot decode"},
		{name: "time negative", envelope: withCmd(string(rawCommand(KindKeyCreate, testGenesis, -1, testNA, validBodies[KindKeyCreate]))), err: ErrMalformed, msg: "0 to 2^53-1"},
		{name: "time beyond 2^53", envelope: withCmd(string(rawCommand(KindKeyCreate, testGenesis, testNB, 1<<53, validBodies[KindKeyCreate]))), err: ErrMalformed, msg: "0 to 2^53-1"},
		{name: "window empty", envelope: withCmd(string(rawCommand(KindKeyCreate, testGenesis, testNB, testNB, validBodies[KindKeyCreate]))), err: ErrMalformed, msg: "must be after not_before_ms"},
		{name: "window reversed", envelope: withCmd(string(rawCommand(KindKeyCreate, testGenesis, testNA, testNB, validBodies[KindKeyCreate]))), err: ErrMalformed, msg: "must be after not_before_ms"},
		{name: "window over 7 days", envelope: withCmd(string(rawCommand(KindKeyCreate, testGenesis, testNB, testNB+MaxValidity.Milliseconds()+1, validBodies[KindKeyCreate]))), err: ErrMalformed, msg: "at most 168h0m0s"},

		// Bodies.
		{name: "body unknown field", envelope: withBody(KindUnfreeze, `{"freeze_seq":1,"key_id":"hot-0"}`), err: ErrMalformed, msg: `unknown field "key_id"`},
		{name: "body derived field", envelope: withBody(KindPolicyCancel, `{"version":1,"policy_hash":"`+zeroHash+`","Hash":[]}`), err: ErrMalformed, msg: `unknown field "Hash"`},
		{name: "key_create key_id missing", envelope: withBody(KindKeyCreate, `{"path":"m/0"}`), err: ErrMalformed, msg: `key_id ""`},
		{name: "key_create key_id 0x", envelope: withBody(KindKeyCreate, `{"key_id":"0xabc","path":"m/0"}`), err: ErrMalformed, msg: "must not start with 0x"},
		{name: "key_create key_id space", envelope: withBody(KindKeyCreate, `{"key_id":"hot 1","path":"m/0"}`), err: ErrMalformed, msg: "want 1 to 64"},
		{name: "key_create path missing", envelope: withBody(KindKeyCreate, `{"key_id":"hot-1"}`), err: ErrMalformed, msg: "path"},
		{name: "key_create path leading zero", envelope: withBody(KindKeyCreate, `{"key_id":"hot-1","path":"m/01"}`), err: ErrMalformed, msg: "leading zero"},
		{name: "key_create path index too big", envelope: withBody(KindKeyCreate, `{"key_id":"hot-1","path":"m/2147483648"}`), err: ErrMalformed, msg: "2^31"},
		{name: "key_import blob missing", envelope: withBody(KindKeyImport, `{"key_id":"k"}`), err: ErrMalformed, msg: "encrypted_key"},
		{name: "key_import blob uppercase", envelope: withBody(KindKeyImport, `{"key_id":"k","encrypted_key":"AB"}`), err: ErrMalformed, msg: "not lowercase hex"},
		{name: "key_import blob odd", envelope: withBody(KindKeyImport, `{"key_id":"k","encrypted_key":"abc"}`), err: ErrMalformed, msg: "odd number"},
		{name: "key_import blob too large", envelope: withBody(KindKeyImport, `{"key_id":"k","encrypted_key":"`+strings.Repeat("00", MaxEncryptedKeySize+1)+`"}`), err: ErrMalformed, msg: "want 1 to 65536 bytes"},
		{name: "seal_rotate bad kms key", envelope: withBody(KindSealRotate, `{"kms_key_id":"alias/a b"}`), err: ErrMalformed, msg: "kms_key_id"},
		{name: "policy_change version 0", envelope: withBody(KindPolicyChange, `{"version":0,"policy_hash":"`+zeroHash+`","document":{}}`), err: ErrMalformed, msg: "version: missing or 0"},
		{name: "policy_change version negative", envelope: withBody(KindPolicyChange, `{"version":-1,"policy_hash":"`+zeroHash+`","document":{}}`), err: ErrMalformed, msg: "cannot decode"},
		{name: "policy_change hash missing", envelope: withBody(KindPolicyChange, `{"version":1,"document":{}}`), err: ErrMalformed, msg: "policy_hash"},
		{name: "policy_change document missing", envelope: withBody(KindPolicyChange, `{"version":1,"policy_hash":"`+zeroHash+`"}`), err: ErrMalformed, msg: "document: missing"},
		{name: "policy_change document array", envelope: withBody(KindPolicyChange, `{"version":1,"policy_hash":"`+zeroHash+`","document":[]}`), err: ErrMalformed, msg: "not a JSON object"},
		{name: "policy_change document duplicate key", envelope: withBody(KindPolicyChange, `{"version":1,"policy_hash":"`+zeroHash+`","document":{"a":1,"a":2}}`), err: ErrMalformed, msg: "duplicate key"},
		{name: "policy_cancel version missing", envelope: withBody(KindPolicyCancel, `{"policy_hash":"`+zeroHash+`"}`), err: ErrMalformed, msg: "version: missing or 0"},
		{name: "unfreeze seq 0", envelope: withBody(KindUnfreeze, `{"freeze_seq":0}`), err: ErrMalformed, msg: "freeze_seq"},
		{name: "unfreeze seq beyond 2^53", envelope: withBody(KindUnfreeze, `{"freeze_seq":9007199254740992}`), err: ErrMalformed, msg: "freeze_seq"},
		{name: "unfreeze seq exponent", envelope: withBody(KindUnfreeze, `{"freeze_seq":1e3}`), err: ErrMalformed, msg: "cannot decode"},

		// Deployment and time.
		{name: "other deployment", envelope: signedBy(t, rawCommand(KindKeyCreate, otherGenesis, testNB, testNA, validBodies[KindKeyCreate]), "alice", "bob"), err: ErrWrongDeployment, msg: "bound to genesis hash " + hex.EncodeToString(otherGenesis[:])},
		{name: "verified for other deployment", envelope: good, genesis: otherGenesis, err: ErrWrongDeployment, msg: "this deployment's is " + hex.EncodeToString(otherGenesis[:])},
		{name: "not yet valid", envelope: good, now: time.UnixMilli(testNB - 1), err: ErrNotValidNow, msg: "not valid before 2025-12-31T23:00:00.000Z"},
		{name: "expired", envelope: good, now: time.UnixMilli(testNA), err: ErrNotValidNow, msg: "expired at 2026-01-01T01:00:00.000Z"},
		{name: "expired long ago", envelope: good, now: testNow.Add(365 * 24 * time.Hour), err: ErrNotValidNow, msg: "expired"},

		// Signatures.
		{name: "unknown admin", envelope: signedBy(t, kc, "alice", "bob", "mallory"), err: ErrSignature, msg: `signature by "mallory", who is not an admin`},
		{name: "duplicate signer", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"alice", aliceSig}), err: ErrSignature, msg: `admin "alice" signed twice`},
		{name: "duplicate signer different signatures", envelope: rawEnvelope(t, kc, rawSig{"bob", bobSig}, rawSig{"bob", highS(t, bobSig)}), err: ErrSignature, msg: `admin "bob" signed twice`},
		{name: "forged ed25519 signature", envelope: rawEnvelope(t, kc, rawSig{"alice", flip(aliceSig, 5)}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "forged ed25519 S", envelope: rawEnvelope(t, kc, rawSig{"alice", flip(aliceSig, 40)}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "forged p256 signature", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"bob", flip(bobSig, len(bobSig)/2-1)}), err: ErrSignature, msg: "admin bob: p256 signature does not verify"},
		{name: "signature by another admin's key", envelope: rawEnvelope(t, kc, rawSig{"alice", sigHex(t, signers, "carol", kc)}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "signature by an outsider's key", envelope: rawEnvelope(t, kc, rawSig{"alice", sigHex(t, signers, "mallory", kc)}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "signature of another command", envelope: rawEnvelope(t, kc, rawSig{"alice", sigHex(t, signers, "alice", otherCmd)}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "approval-domain signature", envelope: rawEnvelope(t, kc, rawSig{"alice", approvalSig("alice")}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature does not verify"},
		{name: "approval-domain p256 signature", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"bob", approvalSig("bob")}), err: ErrSignature, msg: "admin bob: p256 signature does not verify"},
		{name: "ed25519 signature short", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig[:126]}, rawSig{"bob", bobSig}), err: ErrSignature, msg: "admin alice: ed25519 signature is 63 bytes, want 64"},
		{name: "p256 raw r||s", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"bob", bobRaw}), err: ErrSignature, msg: "raw r||s is not accepted"},
		{name: "p256 DER with trailing byte", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"bob", bobSig + "00"}), err: ErrSignature, msg: "admin bob: p256 signature does not verify"},
		{name: "one bad signature among enough good ones", envelope: rawEnvelope(t, kc, rawSig{"alice", aliceSig}, rawSig{"bob", bobSig}, rawSig{"carol", flip(sigHex(t, signers, "carol", kc), 0)}), err: ErrSignature, msg: "admin carol: ed25519 signature does not verify"},

		// Quorum.
		{name: "no signatures", envelope: rawEnvelope(t, kc), err: ErrQuorum, msg: "0 valid signatures, key_create requires 2 of the 3 admins"},
		{name: "short quorum", envelope: signedBy(t, kc, "alice"), err: ErrQuorum, msg: "1 valid signature (alice), key_create requires 2 of the 3 admins"},
		{name: "policy change below its threshold", envelope: signedBy(t, validCommand(KindPolicyChange), "alice", "bob"), err: ErrQuorum, msg: "2 valid signatures (alice, bob), policy_change requires 3 of the 3 admins"},
	}
	return R
}

func TestVerifyRefuses(t *testing.T) {
	set := testSet(t)
	seen := map[string]bool{}
	for _, tc := range refusals(t) {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			now, genesis := tc.now, tc.genesis
			if now.IsZero() {
				now = testNow
			}
			if genesis == ([32]byte{}) {
				genesis = testGenesis
			}
			cmd, names, err := set.Verify(tc.envelope, now, genesis)
			if err == nil {
				t.Fatalf("accepted: %s by %v", cmd.Raw, names)
			}
			if cmd != nil || names != nil {
				t.Errorf("returned %v, %v with the error", cmd, names)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %q does not wrap %q", err, tc.err)
			}
			for _, other := range sentinels {
				if other != tc.err && errors.Is(err, other) {
					t.Errorf("error %q also wraps %q", err, other)
				}
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			t.Log(err)
			if len(err.Error()) > 600 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

var sentinels = []error{ErrMalformed, ErrWrongDeployment, ErrNotValidNow, ErrSignature, ErrQuorum}

// TestValidityBoundaries: valid from not_before_ms inclusive to
// not_after_ms exclusive, and a window of exactly MaxValidity is allowed.
func TestValidityBoundaries(t *testing.T) {
	set := testSet(t)
	cmd := rawCommand(KindUnfreeze, testGenesis, testNB, testNB+MaxValidity.Milliseconds(), validBodies[KindUnfreeze])
	env := signedBy(t, cmd, "alice", "carol")
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{
		{time.UnixMilli(testNB - 1), false},
		{time.UnixMilli(testNB), true},
		{time.UnixMilli(testNB + MaxValidity.Milliseconds() - 1), true},
		{time.UnixMilli(testNB + MaxValidity.Milliseconds()), false},
	} {
		_, _, err := set.Verify(env, tc.now, testGenesis)
		if (err == nil) != tc.ok {
			t.Errorf("at %d ms: %v, want ok=%v", tc.now.UnixMilli()-testNB, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotValidNow) {
			t.Errorf("at %d ms: %v", tc.now.UnixMilli()-testNB, err)
		}
	}
}

// TestCrossDeploymentReplay: the same admins run two deployments; a command
// they signed for one is refused by the other, and a command re-bound to
// the other deployment does not carry over the signatures.
func TestCrossDeploymentReplay(t *testing.T) {
	set := testSet(t)
	env := signedBy(t, validCommand(KindUnfreeze), "alice", "bob")
	if _, _, err := set.Verify(env, testNow, testGenesis); err != nil {
		t.Fatalf("deployment A refuses its own command: %v", err)
	}
	if _, _, err := set.Verify(env, testNow, otherGenesis); !errors.Is(err, ErrWrongDeployment) {
		t.Fatalf("deployment B: %v, want ErrWrongDeployment", err)
	}
	// Rewriting the binding invalidates the signatures.
	e, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	e.Command = bytes.Replace(e.Command, []byte(hex.EncodeToString(testGenesis[:])), []byte(hex.EncodeToString(otherGenesis[:])), 1)
	rebound, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := set.Verify(rebound, testNow, otherGenesis); !errors.Is(err, ErrSignature) {
		t.Fatalf("re-bound command: %v, want ErrSignature", err)
	}
}

// TestDuplicateSignerCountedOnce: merging one admin's signature twice keeps
// one, which does not meet a quorum of 2; and an envelope naming the admin
// twice is refused outright.
func TestDuplicateSignerCountedOnce(t *testing.T) {
	set := testSet(t)
	env, err := ParseEnvelope(signedBy(t, validCommand(KindKeyCreate), "alice"))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge(env, env, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Signatures) != 1 {
		t.Fatalf("merged %d signatures, want 1", len(merged.Signatures))
	}
	b, err := merged.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = set.Verify(b, testNow, testGenesis)
	if !errors.Is(err, ErrQuorum) || !strings.Contains(err.Error(), "1 valid signature (alice)") {
		t.Fatalf("Verify: %v, want a quorum error counting alice once", err)
	}
	twice := rawEnvelope(t, validCommand(KindKeyCreate),
		rawSig{"alice", hex.EncodeToString(env.Signatures[0].Sig)},
		rawSig{"alice", hex.EncodeToString(env.Signatures[0].Sig)})
	if _, _, err := set.Verify(twice, testNow, testGenesis); !errors.Is(err, ErrSignature) {
		t.Fatalf("alice twice: %v, want ErrSignature", err)
	}
}

// TestCancelNeedsOneAdmin: any single admin may cancel a pending policy
// change, whatever the quorum.
func TestCancelNeedsOneAdmin(t *testing.T) {
	set := testSet(t)
	for _, name := range []string{"alice", "bob", "carol"} {
		_, names, err := set.Verify(signedBy(t, validCommand(KindPolicyCancel), name), testNow, testGenesis)
		if err != nil || !slices.Equal(names, []string{name}) {
			t.Errorf("cancel by %s: %v %v", name, names, err)
		}
	}
	if _, _, err := set.Verify(signedBy(t, validCommand(KindPolicyCancel)), testNow, testGenesis); !errors.Is(err, ErrQuorum) {
		t.Errorf("unsigned cancel: %v", err)
	}
	if _, _, err := set.Verify(signedBy(t, validCommand(KindPolicyCancel), "mallory"), testNow, testGenesis); !errors.Is(err, ErrSignature) {
		t.Errorf("cancel by mallory: %v", err)
	}
}

func TestThreshold(t *testing.T) {
	set := testSet(t)
	want := map[Kind]int{
		KindKeyCreate: 2, KindKeyImport: 2, KindSealRotate: 2, KindUnfreeze: 2,
		KindPolicyChange: 3, KindPolicyCancel: 1, KindFreeze: 1,
		"": 4, "key_delete": 4,
	}
	for k, n := range want {
		if got := set.Threshold(k); got != n {
			t.Errorf("Threshold(%q) = %d, want %d", k, got, n)
		}
	}
	if len(Kinds()) != 7 {
		t.Errorf("Kinds() = %v", Kinds())
	}
	for _, k := range Kinds() {
		if !k.Known() {
			t.Errorf("%s not known", k)
		}
		if k.IsCancel() != (k == KindPolicyCancel) {
			t.Errorf("%s IsCancel = %v", k, k.IsCancel())
		}
		if k.OnlyStops() != (k == KindPolicyCancel || k == KindFreeze) {
			t.Errorf("%s OnlyStops = %v", k, k.OnlyStops())
		}
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if s.Threshold(KindPolicyCancel) <= MaxMembers || (&Set{}).Threshold(KindKeyCreate) <= MaxMembers {
		t.Error("an empty set has a threshold an envelope can meet")
	}
	if _, ok := s.Key("alice"); ok {
		t.Error("nil set has a key")
	}
	if _, _, err := s.Verify(signedBy(t, validCommand(KindUnfreeze), "alice", "bob"), testNow, testGenesis); err == nil {
		t.Fatal("nil set accepted a command")
	}
	if _, _, err := (&Set{}).Verify(signedBy(t, validCommand(KindUnfreeze), "alice", "bob"), testNow, testGenesis); err == nil {
		t.Fatal("zero set accepted a command")
	}
}

// TestRefusalBaselines: the envelopes the refusal cases mutate are
// accepted, so each refusal is caused by its mutation.
func TestRefusalBaselines(t *testing.T) {
	set := testSet(t)
	kc := validCommand(KindKeyCreate)
	for i, tc := range []struct {
		env []byte
		now time.Time
	}{
		{signedBy(t, kc, "alice", "bob"), testNow},
		{signedBy(t, kc, "alice", "bob", "carol"), testNow},
		{signedBy(t, rawCommand(KindKeyCreate, testGenesis, testNB, testNB+MaxValidity.Milliseconds(), validBodies[KindKeyCreate]), "alice", "bob"), testNow},
		{signedBy(t, rawCommand(KindUnfreeze, testGenesis, testNB, testNA, `{"freeze_seq":9007199254740991}`), "alice", "bob"), testNow},
		{signedBy(t, rawCommand(KindKeyImport, testGenesis, testNB, testNA, `{"key_id":"k","encrypted_key":"`+strings.Repeat("00", MaxEncryptedKeySize)+`"}`), "alice", "bob"), testNow},
		{signedBy(t, rawCommand(KindSealRotate, testGenesis, testNB, testNA, `{}`), "alice", "bob"), testNow},
		{signedBy(t, rawCommand(KindKeyCreate, testGenesis, 0, 1, validBodies[KindKeyCreate]), "alice", "bob"), time.UnixMilli(0)},
		{signedBy(t, rawCommand(KindKeyCreate, testGenesis, maxSafeInteger-1, maxSafeInteger, validBodies[KindKeyCreate]), "alice", "bob"), time.UnixMilli(maxSafeInteger - 1)},
		{rawEnvelope(t, kc, rawSig{"alice", sigHex(t, testSigners(t), "alice", kc)}, rawSig{"bob", highS(t, sigHex(t, testSigners(t), "bob", kc))}), testNow},
	} {
		if _, _, err := set.Verify(tc.env, tc.now, testGenesis); err != nil {
			t.Errorf("baseline %d refused: %v\n%s", i, err, tc.env)
		}
	}
}
