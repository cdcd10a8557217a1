package enclave_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

const (
	testKeyARN  = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"
	otherKeyARN = "arn:aws:kms:us-east-1:111122223333:key/99999999-2222-3333-4444-555555555555"
)

// fakeKMS is an in-memory KMS: a data key's blob is the data key encrypted
// under a master secret of its key id, bound to the encryption context, as
// real KMS binds it. It records what it was asked.
type fakeKMS struct {
	mu     sync.Mutex
	master map[string][]byte
	deny   bool
	calls  []string
}

func newFakeKMS(ids ...string) *fakeKMS {
	f := &fakeKMS{master: map[string][]byte{}}
	for _, id := range ids {
		k := make([]byte, 32)
		rand.Read(k)
		f.master[id] = k
	}
	return f
}

func ctxAD(keyID string, c map[string]string) []byte {
	b := []byte(keyID)
	for _, k := range sortedKeys(c) {
		b = fmt.Appendf(b, "|%s=%s", k, c[k])
	}
	return b
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func (f *fakeKMS) gcm(id string) (cipher.AEAD, error) {
	m, ok := f.master[id]
	if !ok {
		return nil, fmt.Errorf("kms: NotFoundException: key %s", id)
	}
	b, _ := aes.NewCipher(m)
	return cipher.NewGCM(b)
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "GenerateDataKey "+keyID)
	if f.deny {
		return nil, nil, &kms.AccessDeniedError{Operation: "GenerateDataKey", Message: "denied"}
	}
	g, err := f.gcm(keyID)
	if err != nil {
		return nil, nil, err
	}
	dk := make([]byte, 32)
	rand.Read(dk)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return dk, g.Seal(nonce, nonce, dk, ctxAD(keyID, encCtx)), nil
}

func (f *fakeKMS) Decrypt(_ context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Decrypt "+keyID)
	if f.deny {
		return nil, &kms.AccessDeniedError{Operation: "Decrypt", Message: "denied"}
	}
	g, err := f.gcm(keyID)
	if err != nil {
		return nil, err
	}
	if len(blob) < 12 {
		return nil, &kms.InvalidCiphertextError{Operation: "Decrypt", Code: "InvalidCiphertextException"}
	}
	pt, err := g.Open(nil, blob[:12], blob[12:], ctxAD(keyID, encCtx))
	if err != nil {
		return nil, &kms.InvalidCiphertextError{Operation: "Decrypt", Code: "InvalidCiphertextException"}
	}
	return pt, nil
}

// sealedFixture is an enclave whose genesis seals the seed with KMS.
type sealedFixture struct {
	genesis []byte
	kms     *fakeKMS
	hot     stamp.Signer
	now     time.Time
	// ackTimeout is Config.AuditAckTimeout of the enclaves it starts (0:
	// the default).
	ackTimeout time.Duration
}

func newSealedFixture(t *testing.T) *sealedFixture {
	t.Helper()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(edPriv)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := stamp.NewP256Signer(p256)
	var g map[string]any
	if err := json.Unmarshal(genesisJSON(t, hot.PublicKey(), other.PublicKey()), &g); err != nil {
		t.Fatal(err)
	}
	g["kms"] = map[string]any{"region": "us-east-1", "key_id": testKeyARN, "additional_key_ids": []string{otherKeyARN}}
	b, _ := json.Marshal(g)
	return &sealedFixture{genesis: b, kms: newFakeKMS(testKeyARN, otherKeyARN), hot: hot, now: time.UnixMilli(1_800_000_000_000)}
}

// start starts an enclave whose records an ackHost acknowledges.
// startUnsealed starts an enclave of f, has it create and seal its seed,
// and unseals it: the enclave is ready to sign. It returns the sealed seed.
func (f *sealedFixture) startUnsealed(t *testing.T) (*enclave.Enclave, []byte) {
	t.Helper()
	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed})
	return e, sealed
}

func (f *sealedFixture) start(t *testing.T) *enclave.Enclave {
	t.Helper()
	e := f.startManual(t)
	startAcks(t, e)
	return e
}

// startManual starts an enclave whose records nobody acknowledges unless
// the test does (fetch and ack, or an ackHost started later): for tests
// that play the host themselves.
func (f *sealedFixture) startManual(t *testing.T) *enclave.Enclave {
	t.Helper()
	e, err := enclave.New(enclave.Config{
		Genesis:         f.genesis,
		KMS:             f.kms,
		Credentials:     kms.NewPushedCredentials(func() time.Time { return f.now }),
		Now:             func() time.Time { return f.now },
		AuditAckTimeout: f.ackTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func call(t *testing.T, e *enclave.Enclave, m proto.Message) proto.Message {
	t.Helper()
	return e.Handle(context.Background(), m)
}

func mustUnseal(t *testing.T, e *enclave.Enclave, req *proto.UnsealRequest) *proto.UnsealResponse {
	t.Helper()
	resp, ok := call(t, e, req).(*proto.UnsealResponse)
	if !ok {
		t.Fatalf("unseal answered %v", call(t, e, &proto.HealthRequest{}))
	}
	return resp
}

func keysOf(t *testing.T, e *enclave.Enclave) []proto.Key {
	t.Helper()
	kr, ok := call(t, e, &proto.KeysRequest{}).(*proto.KeysResponse)
	if !ok {
		t.Fatal("keys refused")
	}
	return kr.Keys
}

func state(t *testing.T, e *enclave.Enclave) string {
	t.Helper()
	return call(t, e, &proto.HealthRequest{}).(*proto.HealthResponse).State
}

func wantCode(t *testing.T, m proto.Message, code, substr string) {
	t.Helper()
	pe, ok := m.(*proto.Error)
	if !ok || pe.Code != code || !strings.Contains(pe.Message, substr) {
		t.Fatalf("answer %#v, want error %s containing %q", m, code, substr)
	}
}

// TestSealedSeedLifecycle: a new seed is sealed but not used until the host
// hands the sealed seed back; a restart with the same sealed seed gives the
// same keys and the same audit key, and the log continues.
func TestSealedSeedLifecycle(t *testing.T) {
	f := newSealedFixture(t)
	e1 := f.start(t)
	if s := state(t, e1); s != enclave.StateLocked {
		t.Fatalf("state %q before unsealing", s)
	}
	wantCode(t, call(t, e1, &proto.KeysRequest{}), refusal.CodeUnavailable, "locked")
	wantCode(t, call(t, e1, &proto.AuditRequest{}), refusal.CodeUnavailable, "locked")
	wantCode(t, call(t, e1, &proto.UnsealRequest{}), refusal.CodeBadRequest, "no sealed seed")

	created := mustUnseal(t, e1, &proto.UnsealRequest{Create: true})
	if len(created.Sealed) == 0 || len(created.AuditKey) != 0 {
		t.Fatalf("create answered %+v", created)
	}
	if s := state(t, e1); s != enclave.StateLocked {
		t.Fatalf("state %q after create: the new seed must not be used before it is stored", s)
	}
	r1 := mustUnseal(t, e1, &proto.UnsealRequest{Sealed: created.Sealed})
	if s := state(t, e1); s != enclave.StateReady {
		t.Fatalf("state %q after unseal", s)
	}
	wantCode(t, call(t, e1, &proto.UnsealRequest{Sealed: created.Sealed}), refusal.CodeBadRequest, "already unsealed")
	rec, err := audit.VerifyRecord(r1.AuditRecord, r1.AuditKey)
	if err != nil || rec.Seq != 1 || rec.Kind != audit.KindGenesis {
		t.Fatalf("first boot record %+v, %v", rec, err)
	}
	keys1 := keysOf(t, e1)

	// A second enclave (a restart) with the same sealed seed and the host's
	// last record.
	waitAcked(t, e1) // the boot record, whose unseal answer did not wait for it
	cp := call(t, e1, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	e2 := f.start(t)
	r2 := mustUnseal(t, e2, &proto.UnsealRequest{Sealed: created.Sealed, AuditHead: hostLast(t, e1), Checkpoint: cp.Sealed})
	if !bytes.Equal(r2.AuditKey, r1.AuditKey) {
		t.Error("the audit key changed across a restart")
	}
	keys2 := keysOf(t, e2)
	if len(keys1) != 2 || fmt.Sprint(keys1) != fmt.Sprint(keys2) {
		t.Errorf("keys changed across a restart: %v vs %v", keys1, keys2)
	}
	boot, err := audit.VerifyRecord(r2.AuditRecord, r2.AuditKey)
	if err != nil || boot.Seq != 3 || boot.Kind != audit.KindBoot || boot.Rule != "" {
		t.Fatalf("boot record %+v, %v (want 3: after the genesis record and its tree head)", boot, err)
	}
	// The records form a chain that verifies.
	var log []byte
	for _, l := range append(recordsOf(t, e1), r2.AuditRecord) {
		log = append(append(log, l...), '\n')
	}
	if _, err := audit.Verify(bytes.NewReader(log), ed25519.PublicKey(r1.AuditKey), audit.VerifyOptions{AllSignatures: true}); err != nil {
		t.Errorf("the boot chain does not verify: %v", err)
	}
	if got := strings.Join(f.kms.calls, ","); got != "GenerateDataKey "+testKeyARN+",Decrypt "+testKeyARN+",Decrypt "+testKeyARN {
		t.Errorf("KMS calls %s", got)
	}
}

// TestUnsealRefusals: altered, foreign and unlisted sealed seeds, and KMS
// refusals, leave the enclave locked, each with a clear error.
func TestUnsealRefusals(t *testing.T) {
	f := newSealedFixture(t)
	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
		code   string
		msg    string
	}{
		{"magic", flip(0), refusal.CodeBadRequest, "wrong magic"},
		{"version", flip(22), refusal.CodeBadRequest, "unknown format version"},
		{"generation", flip(25), refusal.CodeUnavailable, "InvalidCiphertext"},
		{"generation 0", flip(26), refusal.CodeBadRequest, "generation 0"},
		{"key id", flip(30), refusal.CodeBadRequest, "does not list"},
		{"box", flip(len(sealed) - 1), refusal.CodeBadRequest, "does not open"},
		{"nonce", flip(len(sealed) - 50), refusal.CodeBadRequest, "does not open"},
		{"truncated", sealed[:len(sealed)-1], refusal.CodeBadRequest, "box of"},
		{"extended", append(bytes.Clone(sealed), 0), refusal.CodeBadRequest, "box of"},
		{"empty blob", []byte("nitrosign sealed seed\n\x01\x00\x00\x00\x01"), refusal.CodeBadRequest, "bad key id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, call(t, e, &proto.UnsealRequest{Sealed: tc.sealed}), tc.code, tc.msg)
			if s := state(t, e); s != enclave.StateLocked {
				t.Fatalf("state %q after a refused unseal", s)
			}
		})
	}

	f.kms.deny = true
	wantCode(t, call(t, e, &proto.UnsealRequest{Sealed: sealed}), refusal.CodeKMSAccessDenied, "KMS refused")
	wantCode(t, call(t, e, &proto.UnsealRequest{Create: true}), refusal.CodeKMSAccessDenied, "KMS refused")
	f.kms.deny = false
	if r := mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed}); r.Keys != 2 {
		t.Fatalf("unsealed %d keys", r.Keys)
	}
}

// TestUnsealUnlistedKey: a sealed seed under a KMS key the genesis does not
// name is refused before KMS is asked (a host-controlled key would let the
// host choose, or read, the seed).
func TestUnsealUnlistedKey(t *testing.T) {
	f := newSealedFixture(t)
	const rogue = "arn:aws:kms:us-east-1:444455556666:key/00000000-0000-0000-0000-000000000000"
	f.kms.master[rogue] = bytes.Repeat([]byte{1}, 32)
	dk, blob, _ := f.kms.GenerateDataKey(context.Background(), rogue, map[string]string{"nitrosign:purpose": "seed", "nitrosign:generation": "1"})
	// Build a well-formed sealed seed naming the rogue key.
	e := f.start(t)
	good := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	_ = dk
	var b []byte
	b = append(b, good[:27]...) // magic, version, generation
	b = append(b, byte(len(rogue)>>8), byte(len(rogue)))
	b = append(b, rogue...)
	b = append(b, byte(len(blob)>>8), byte(len(blob)))
	b = append(b, blob...)
	b = append(b, make([]byte, 12+48)...)
	f.kms.calls = nil
	wantCode(t, call(t, e, &proto.UnsealRequest{Sealed: b}), refusal.CodeBadRequest, "does not list")
	if len(f.kms.calls) != 0 {
		t.Errorf("KMS was asked: %v", f.kms.calls)
	}
}

// TestCheckpointAndHeadMismatch: the enclave seals checkpoints of the
// acknowledged audit head; a restart given a host log behind the
// checkpoint records the mismatch in its boot record.
func TestCheckpointAndHeadMismatch(t *testing.T) {
	f := newSealedFixture(t)
	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed})

	// Decide a few requests, acknowledging every record.
	fx := &fixture{e: e, now: f.now, hot: f.hot}
	for i := range 3 {
		body := fx.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(int64(i+1))), f.now.UnixMilli())
		resp := fx.send(t, f.hot, body)
		if _, ok := resp.(*proto.SignResponse); !ok {
			t.Fatalf("sign answered %v", resp)
		}
	}
	waitAcked(t, e)
	lines := recordsOf(t, e) // the genesis record, the decisions, tree heads
	n := uint64(len(lines))
	ar := fetch(t, e, 0)
	if ar.HeadSeq != n || n < 5 {
		t.Fatalf("head %d, %d records", ar.HeadSeq, n)
	}
	cr := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	if cr.Generation != 1 || len(cr.Sealed) == 0 {
		t.Fatalf("checkpoint %d, %d bytes", cr.Generation, len(cr.Sealed))
	}
	// Nothing changed: acknowledged, no new checkpoint.
	if again := call(t, e, &proto.CheckpointRequest{Ack: 1}).(*proto.CheckpointResponse); again.Generation != 1 || len(again.Sealed) != 0 {
		t.Fatalf("unchanged state gave checkpoint %d, %d bytes", again.Generation, len(again.Sealed))
	}

	// The host's log is intact: the restart continues without a mismatch.
	e2 := f.start(t)
	r2 := mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: lines[n-1], Checkpoint: cr.Sealed})
	boot, err := audit.VerifyRecord(r2.AuditRecord, r2.AuditKey)
	if err != nil || boot.Seq != n+1 || boot.Rule != "" {
		t.Fatalf("boot after an intact log: %+v, %v", boot, err)
	}
	// The next checkpoint generation continues from the restored one.
	waitAcked(t, e2)
	if c2 := call(t, e2, &proto.CheckpointRequest{}).(*proto.CheckpointResponse); c2.Generation != 2 {
		t.Errorf("checkpoint generation %d after a restart from generation 1", c2.Generation)
	}

	// The host lost every record after the first, which it had
	// acknowledged: the boot record names the audit rollback.
	e3 := f.start(t)
	r3 := mustUnseal(t, e3, &proto.UnsealRequest{Sealed: sealed, AuditHead: lines[0], Checkpoint: cr.Sealed})
	boot3, err := audit.VerifyRecord(r3.AuditRecord, r3.AuditKey)
	if err != nil || boot3.Seq != 2 || boot3.Rule != refusal.RuleAuditRollback || !strings.Contains(boot3.Summary, fmt.Sprintf("before the acknowledged head %d:", n)) {
		t.Fatalf("boot after a truncated log: %+v, %v", boot3, err)
	}

	// A record that is not this enclave's, and a forged checkpoint.
	e4 := f.start(t)
	forged := bytes.Clone(cr.Sealed)
	forged[len(forged)-1] ^= 1
	r4 := mustUnseal(t, e4, &proto.UnsealRequest{Sealed: sealed, AuditHead: []byte(`{"seq":99}`), Checkpoint: forged})
	boot4, _ := audit.VerifyRecord(r4.AuditRecord, r4.AuditKey)
	if boot4.Seq != 1 || boot4.Rule != refusal.RuleAuditCheckpoint || !strings.Contains(boot4.Summary, "checkpoint the host sent was refused") || !strings.Contains(boot4.Summary, "not this enclave's") {
		t.Fatalf("boot with garbage: %+v", boot4)
	}
}

// TestCredentialsPush: credentials are taken only when well-formed and
// current, and an ephemeral enclave refuses them.
func TestCredentialsPush(t *testing.T) {
	f := newSealedFixture(t)
	e := f.start(t)
	ok := &proto.CredentialsRequest{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t", ExpiresUnixMS: f.now.Add(time.Hour).UnixMilli()}
	if _, good := call(t, e, ok).(*proto.CredentialsResponse); !good {
		t.Fatal("good credentials refused")
	}
	expired := *ok
	expired.ExpiresUnixMS = f.now.Add(-time.Minute).UnixMilli()
	if pe, bad := call(t, e, &expired).(*proto.Error); !bad || strings.Contains(pe.Message, "s") && strings.Contains(pe.Message, "ASIAEXAMPLE") {
		t.Fatalf("expired credentials: %v", call(t, e, &expired))
	}
	noExpiry := *ok
	noExpiry.ExpiresUnixMS = 0
	wantCode(t, call(t, e, &noExpiry), refusal.CodeBadRequest, "without an expiry")

	eph := newFixture(t)
	wantCode(t, eph.e.Handle(context.Background(), ok), refusal.CodeBadRequest, "does not call KMS")
	wantCode(t, eph.e.Handle(context.Background(), &proto.UnsealRequest{Create: true}), refusal.CodeBadRequest, "ephemeral")
	if s := eph.e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse).State; s != enclave.StateEphemeral {
		t.Errorf("ephemeral enclave state %q", s)
	}
}

func TestNewWithoutKMSClient(t *testing.T) {
	f := newSealedFixture(t)
	if _, err := enclave.New(enclave.Config{Genesis: f.genesis}); err == nil || !strings.Contains(err.Error(), "no KMS client") {
		t.Fatalf("New without a KMS client: %v", err)
	}
}

// encrypt is KMS Encrypt under keyID with an encryption context, as an
// operator would encrypt a key to import.
func (f *fakeKMS) encrypt(t *testing.T, keyID string, pt []byte, encCtx map[string]string) []byte {
	t.Helper()
	g, err := f.gcm(keyID)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return g.Seal(nonce, nonce, pt, ctxAD(keyID, encCtx))
}
