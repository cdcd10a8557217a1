package admin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSignMergeVerify is the workflow: one admin creates the command and
// signs, the others each add a signature to their own copy, the copies are
// merged, and the enclave verifies.
func TestSignMergeVerify(t *testing.T) {
	set := testSet(t)
	signers := testSigners(t)
	cmd, err := NewCommand(KindPolicyChange, testGenesis, time.UnixMilli(testNB), time.UnixMilli(testNA), &PolicyChangeBody{
		Version:    3,
		PolicyHash: strings.Repeat("ab", 32),
		Document:   []byte(`{"version":3}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, name := range []string{"carol", "alice", "bob"} {
		env, err := NewEnvelope(cmd)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := Sign(signers[name], name, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Add(sig); err != nil {
			t.Fatal(err)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	var envs []*Envelope
	for _, f := range files {
		e, err := ParseEnvelope(f)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	// Two of three do not meet policy_change's threshold of 3.
	two, err := Merge(envs[0], envs[1])
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := two.Marshal()
	if _, _, err := set.Verify(b2, testNow, testGenesis); !errors.Is(err, ErrQuorum) {
		t.Fatalf("two signatures: %v", err)
	}
	all, err := Merge(two, envs[2], envs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := all.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, names, err := set.Verify(b, testNow, testGenesis)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) || !bytes.Equal(got.Raw, cmd) {
		t.Fatalf("names %v, command %s", names, got.Raw)
	}
	body, err := got.PolicyChange()
	if err != nil || body.Version != 3 || body.Hash != [32]byte(bytes.Repeat([]byte{0xab}, 32)) {
		t.Fatalf("body %+v %v", body, err)
	}
	// Merging is order-independent.
	rev, err := Merge(envs[2], envs[1], envs[0])
	if err != nil {
		t.Fatal(err)
	}
	brev, _ := rev.Marshal()
	if !bytes.Equal(brev, b) {
		t.Errorf("merge order changes the envelope:\n%s\n%s", b, brev)
	}
}

func TestEnvelopeRefuses(t *testing.T) {
	signers := testSigners(t)
	cmd := validCommand(KindKeyCreate)
	other := validCommand(KindUnfreeze)
	sig, err := Sign(signers["bob"], "bob", cmd)
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := Sign(signers["bob"], "bob", other) // another valid signature by bob (of another command)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEnvelope(cmd, sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(sig); err != nil || len(e.Signatures) != 1 {
		t.Errorf("adding the same signature again: %v, %d signatures", err, len(e.Signatures))
	}
	if err := e.Add(Signature{Admin: "bob", Sig: sig2.Sig}); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "two different signatures") {
		t.Errorf("adding a second signature by bob: %v", err)
	}
	for name, s := range map[string]Signature{
		"bad name":      {Admin: "b ob", Sig: sig.Sig},
		"empty sig":     {Admin: "carol"},
		"sig too large": {Admin: "carol", Sig: make([]byte, 73)},
	} {
		if err := e.Add(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	full := &Envelope{Command: cmd}
	for i := range MaxMembers {
		if err := full.Add(Signature{Admin: "a" + hex.EncodeToString([]byte{byte(i)}), Sig: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := full.Add(Signature{Admin: "zz", Sig: []byte{1}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("33rd signature: %v", err)
	}

	eo, err := NewEnvelope(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(e, eo); err == nil || !strings.Contains(err.Error(), "different command") {
		t.Errorf("merging different commands: %v", err)
	}
	if _, err := Merge(); err == nil {
		t.Error("merging nothing")
	}
	if _, err := Merge(e, nil); err == nil {
		t.Error("merging nil")
	}
	conflict := &Envelope{Command: cmd, Signatures: []Signature{{Admin: "bob", Sig: sig2.Sig}}}
	if _, err := Merge(e, conflict); !errors.Is(err, ErrSignature) {
		t.Errorf("merging conflicting signatures: %v", err)
	}
	if _, err := NewEnvelope([]byte(`{"kind":"nope"}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("NewEnvelope of a bad command: %v", err)
	}
	if _, err := NewEnvelope(cmd, Signature{Admin: "x y", Sig: []byte{1}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("NewEnvelope with a bad signature: %v", err)
	}
	if _, err := (&Envelope{Command: []byte("\xff")}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal of invalid UTF-8: %v", err)
	}
}

// TestEnvelopeExactBytes: the command travels byte for byte, whatever it
// holds, and the envelope Marshal writes stays within MaxEnvelopeSize.
func TestEnvelopeExactBytes(t *testing.T) {
	for name, body := range map[string]string{
		"escapes":  `{"version":1,"policy_hash":"` + strings.Repeat("0", 64) + `","document":{"label":"<a&b> \"q\" \\ \u2028 é 𝄞","x":"\u00e9"}}`,
		"spacing":  "{\n\t\"version\" : 1 ,\r\n \"policy_hash\":\"" + strings.Repeat("0", 64) + "\",\"document\":{ }}",
		"worst":    `{"version":1,"policy_hash":"` + strings.Repeat("0", 64) + `","document":{"q":"` + strings.Repeat(`\"`, (MaxCommandSize-400)/2) + `"}}`,
		"big utf8": `{"version":1,"policy_hash":"` + strings.Repeat("0", 64) + `","document":{"q":"` + strings.Repeat("\u2028", (MaxCommandSize-400)/3) + `"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			cmd := rawCommand(KindPolicyChange, testGenesis, testNB, testNA, body)
			if len(cmd) > MaxCommandSize {
				t.Fatalf("test command is %d bytes", len(cmd))
			}
			sigs := testSigners(t)
			e, err := NewEnvelope(cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"alice", "bob", "carol"} {
				s, err := Sign(sigs[n], n, cmd)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Add(s); err != nil {
					t.Fatal(err)
				}
			}
			b, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Command, cmd) {
				t.Fatal("command bytes changed in transit")
			}
			if _, _, err := testSet(t).Verify(b, testNow, testGenesis); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	s := newEd(t, "alice")
	cmd := validCommand(KindKeyCreate)
	for name, tc := range map[string]struct {
		name string
		cmd  []byte
		err  error
	}{
		"bad admin name":     {"al/ice", cmd, nil},
		"empty admin name":   {"", cmd, nil},
		"malformed command":  {"alice", []byte(`{"kind":"key_create"}`), ErrMalformed},
		"unknown kind":       {"alice", bytes.Replace(cmd, []byte("key_create"), []byte("key_export"), 1), ErrMalformed},
		"window too long":    {"alice", rawCommand(KindKeyCreate, testGenesis, 0, MaxValidity.Milliseconds()+1, validBodies[KindKeyCreate]), ErrMalformed},
		"command not object": {"alice", []byte(`"x"`), ErrMalformed},
	} {
		_, err := Sign(s, tc.name, tc.cmd)
		if err == nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Sign(nil, "alice", cmd); err == nil {
		t.Error("nil signer")
	}
	if _, err := Sign(s, "alice", cmd); err != nil {
		t.Errorf("baseline: %v", err)
	}
}

func TestNewCommand(t *testing.T) {
	nb, na := time.UnixMilli(testNB), time.UnixMilli(testNA)
	for kind, body := range map[Kind]any{
		KindKeyCreate:    KeyCreateBody{KeyID: "hot-1", Path: "m/44'/60'/0'/0/1"},
		KindKeyImport:    &KeyImportBody{KeyID: "imp", EncryptedKey: "0102"},
		KindSealRotate:   SealRotateBody{},
		KindPolicyCancel: PolicyCancelBody{Version: 9, PolicyHash: strings.Repeat("1", 64)},
		KindUnfreeze:     UnfreezeBody{FreezeSeq: 7},
	} {
		b, err := NewCommand(kind, testGenesis, nb, na, body)
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		c, err := ParseCommand(b)
		if err != nil || c.Kind != kind || c.GenesisHash != testGenesis || !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) {
			t.Errorf("%s: %+v %v", kind, c, err)
		}
	}
	sr, _ := NewCommand(KindSealRotate, testGenesis, nb, na, SealRotateBody{})
	if !bytes.Contains(sr, []byte(`"body":{}`)) {
		t.Errorf("seal_rotate without a KMS key: %s", sr)
	}
	for name, tc := range map[string]struct {
		kind   Kind
		nb, na time.Time
		body   any
	}{
		"unknown kind":         {"key_export", nb, na, struct{}{}},
		"body of another kind": {KindUnfreeze, nb, na, KeyCreateBody{KeyID: "a", Path: "m"}},
		"invalid body":         {KindUnfreeze, nb, na, UnfreezeBody{}},
		"too long":             {KindUnfreeze, nb, nb.Add(MaxValidity + time.Millisecond), UnfreezeBody{FreezeSeq: 1}},
		"reversed":             {KindUnfreeze, na, nb, UnfreezeBody{FreezeSeq: 1}},
		"before 1970":          {KindUnfreeze, time.UnixMilli(-5), time.UnixMilli(5), UnfreezeBody{FreezeSeq: 1}},
		"body not an object":   {KindUnfreeze, nb, na, 5},
		"body unencodable":     {KindUnfreeze, nb, na, func() {}},
	} {
		if _, err := NewCommand(tc.kind, testGenesis, tc.nb, tc.na, tc.body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
