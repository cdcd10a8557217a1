package enclave_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

type admins struct {
	names   []string
	signers []stamp.Signer
}

func newAdmins(t *testing.T, n int) *admins {
	a := &admins{}
	for i := range n {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := stamp.NewEd25519Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		a.names = append(a.names, string(rune('a'+i))+"-admin")
		a.signers = append(a.signers, s)
	}
	return a
}

func (a *admins) config(quorum int) map[string]any {
	var ms []map[string]string
	for i, s := range a.signers {
		ms = append(ms, map[string]string{"name": a.names[i], "scheme": "ed25519", "public_key": hex.EncodeToString(s.PublicKey().Key)})
	}
	return map[string]any{"members": ms, "quorum": quorum}
}

// envelope makes a command signed by the admins numbered by.
func (a *admins) envelope(t *testing.T, genesis []byte, now time.Time, kind admin.Kind, body any, by ...int) []byte {
	t.Helper()
	cmd, err := admin.NewCommand(kind, sha256.Sum256(genesis), now.Add(-time.Minute), now.Add(time.Hour), body)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []admin.Signature
	for _, i := range by {
		sig, err := admin.Sign(a.signers[i], a.names[i], cmd)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	env, err := admin.NewEnvelope(cmd, sigs...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withAdmins(t *testing.T, f *sealedFixture, a *admins) {
	var g map[string]any
	if err := json.Unmarshal(f.genesis, &g); err != nil {
		t.Fatal(err)
	}
	g["admins"] = a.config(2)
	f.genesis, _ = json.Marshal(g)
}

func adminResult(t *testing.T, m proto.Message) (*proto.AdminResponse, enclave.AdminResult) {
	t.Helper()
	ar, ok := m.(*proto.AdminResponse)
	if !ok {
		t.Fatalf("admin command answered %#v", m)
	}
	var r enclave.AdminResult
	if err := json.Unmarshal(ar.Result, &r); err != nil {
		t.Fatal(err)
	}
	return ar, r
}

// TestAdminKeyCreate: a quorum adds a key at a BIP-32 path of the seed;
// the key is recorded with the admins as approvers, survives a restart in
// the checkpoint; short quorums, other deployments' commands and taken ids
// are refused.
func TestAdminKeyCreate(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 3)
	withAdmins(t, f, a)
	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	r := mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed})
	body := admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}

	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyCreate, body, 0)}), refusal.CodeUnauthorized, "quorum")
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, []byte("another deployment"), f.now, admin.KindKeyCreate, body, 0, 1)}), refusal.CodeUnauthorized, "genesis")
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: []byte("{")}), refusal.CodeBadRequest, "")

	ar, res := adminResult(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyCreate, body, 0, 2)}))
	if res.KeyID != "hot-7" || res.Path != "m/44'/60'/0'/0/7" || len(res.Signers) != 2 {
		t.Fatalf("result %+v", res)
	}
	rec, err := audit.VerifyRecord(ar.AuditRecord, r.AuditKey)
	if err != nil || rec.Kind != audit.KindKey || rec.Decision != "created" || strings.Join(rec.Approvers, ",") != "a-admin,c-admin" || rec.Key != "hot-7" {
		t.Fatalf("audit record %+v, %v", rec, err)
	}
	ks := keysOf(t, e)
	if len(ks) != 3 || ks[2].ID != "hot-7" || ethtx.Address(ks[2].Address).Hex() != res.Address {
		t.Fatalf("keys %+v", ks)
	}
	// Keys come from the one seed: a second key at hot-0's path has
	// hot-0's address, and is refused.
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyCreate,
		admin.KeyCreateBody{KeyID: "hot-0-again", Path: "m/44'/60'/0'/0/0"}, 0, 1)}), refusal.CodeBadRequest, "same address as another key")
	// The same command signed by another quorum is the same command (its
	// digest): carried out once. Another command for the same id finds
	// it taken.
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyCreate, body, 1, 2)}), refusal.CodeBadRequest, "carried out already")
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now.Add(time.Second), admin.KindKeyCreate, body, 1, 2)}), refusal.CodeBadRequest, "taken")

	// The checkpoint carries the key across a restart.
	waitAcked(t, e)
	cp := newestCheckpoint(t, e)
	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: hostLast(t, e), Checkpoint: cp})
	ks2 := keysOf(t, e2)
	if len(ks2) != 3 || ks2[2].Address != ks[2].Address {
		t.Fatalf("keys after a restart %+v", ks2)
	}
}

// TestAdminKeyImport: a key encrypted with KMS under the sealing key, with
// the import context naming its id, is imported; one encrypted for
// another id is refused.
func TestAdminKeyImport(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	e, _ := f.startUnsealed(t)

	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	want := ethtx.PubkeyToAddress(priv.PubKey())
	scalar := priv.Serialize()
	blob := f.kms.encrypt(t, testKeyARN, scalar, enclave.ImportContext("legacy-1"))

	wrong := admin.KeyImportBody{KeyID: "legacy-2", EncryptedKey: hex.EncodeToString(blob)}
	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyImport, wrong, 0, 1)}), refusal.CodeBadRequest, "InvalidCiphertext")

	body := admin.KeyImportBody{KeyID: "legacy-1", EncryptedKey: hex.EncodeToString(blob)}
	_, res := adminResult(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindKeyImport, body, 0, 1)}))
	if res.Address != want.Hex() || res.Path != "" {
		t.Fatalf("imported %+v, want address %s", res, want.Hex())
	}
	ks := keysOf(t, e)
	if ks[len(ks)-1].Address != want {
		t.Errorf("keys %+v", ks)
	}
}

// TestAdminSealRotate: re-wrapping gives a new sealed seed, under a new
// data key (and, if asked, another listed KMS key), that opens to the
// same keys; an unlisted KMS key is refused.
func TestAdminSealRotate(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	e, sealed := f.startUnsealed(t)
	keys1 := keysOf(t, e)

	wantCode(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindSealRotate,
		admin.SealRotateBody{KMSKeyID: "arn:aws:kms:us-east-1:444455556666:key/00000000-0000-0000-0000-000000000000"}, 0, 1)}), refusal.CodeBadRequest, "not listed")

	ar, res := adminResult(t, call(t, e, &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindSealRotate, admin.SealRotateBody{KMSKeyID: otherKeyARN}, 0, 1)}))
	if res.KMSKey != otherKeyARN || res.Sealing != 2 || len(ar.Sealed) == 0 || string(ar.Sealed) == string(sealed) {
		t.Fatalf("rotate %+v", res)
	}
	if !strings.Contains(string(ar.Sealed), otherKeyARN) {
		t.Error("the new sealed seed does not name the new KMS key")
	}
	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: ar.Sealed})
	if k2 := keysOf(t, e2); len(k2) != len(keys1) || k2[0].Address != keys1[0].Address {
		t.Fatalf("keys after re-wrap %+v vs %+v", k2, keys1)
	}
	if got := f.kms.calls[len(f.kms.calls)-1]; got != "Decrypt "+otherKeyARN {
		t.Errorf("unsealed with %s", got)
	}
}

// TestAdminWithoutAdmins: a genesis without admins refuses every command.
func TestAdminWithoutAdmins(t *testing.T) {
	f := newSealedFixture(t)
	e := f.start(t)
	a := newAdmins(t, 2)
	wantCode(t, e.Handle(context.Background(), &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindSealRotate, admin.SealRotateBody{}, 0, 1)}), refusal.CodeUnauthorized, "names no admins")
}
