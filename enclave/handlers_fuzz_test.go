package enclave_test

// Fuzz targets for every request the host can send the enclave.
//
// Each request type has a target that takes the CBOR body of the message
// (FuzzHandleXxxPayload): the harness wraps it in the protocol's envelope,
// decodes it with proto.Unmarshal exactly as proto.Serve does, and calls
// Enclave.Handle directly, so that a panic fails the target instead of
// being recovered by the server. Where the interesting structure is too
// deep for byte mutations to reach (acknowledgements that name a pending
// record by its hash, admin commands with valid quorum signatures,
// approvals signed by approvers, unseal with real sealed seeds, records
// and checkpoints), a typed target builds the request from a few fuzzed
// fields and harness-made parts.
//
// Every execution checks: no panic; the answer is the request's response
// type or an Error with a code and a message (never an internal error), and
// proto.Marshal accepts it; a refusal without an audit record leaves the
// enclave's state (health, audit head, acknowledged head, pending records,
// keys, policy) as it was, and a normal sign request from a registered
// client is answered afterwards as it was before. Each target builds its
// enclave once (an unseal target a new one only after an unseal) and keeps
// a long poll from stalling the fuzzer: an audit request that would wait is
// handled with a context already canceled.
//
// Inputs stay small: the Go fuzzer minimizes every input that finds new
// coverage byte by byte (in time quadratic in its length), and on
// kilobyte blobs with a handler that costs a millisecond that takes its
// whole minimization budget while no new input is tried. So the targets
// whose requests carry large blobs (unseal: sealed seeds, records,
// checkpoints; admin: signed envelopes) take them by name: a field that is
// exactly a placeholder such as "@s2" or "@key_create" is replaced with the
// real blob before the request is handled, and any other bytes go as they
// are.
//
// Seed corpora are committed under testdata/fuzz/<Target>/seed_*, written
// by go test ./enclave -run TestHandlerFuzzCorpus -update-corpus. They are
// made from fixed test keys and randomness (see fuzzWorld), so the same
// every time: TestHandlerFuzzCorpus compares them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// envelopeOf is the frame payload of a request of type typ (id 1) whose
// message body is body: the envelope map {1: version, 2: type, 3: id, 4:
// body} in the protocol's canonical CBOR.
func envelopeOf(typ proto.Type, body []byte) []byte {
	out := []byte{0xa4, 0x01, proto.Version, 0x02}
	out = cborUint(out, 0, uint64(typ))
	out = append(out, 0x03, 0x01, 0x04)
	out = cborUint(out, 2, uint64(len(body)))
	return append(out, body...)
}

// cborUint appends the head of a CBOR item of major type major and
// argument n, in its shortest form.
func cborUint(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// bodyOf is the CBOR body of m, as the envelope carries it.
func bodyOf(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	p, err := proto.Marshal(1, m)
	if err != nil {
		tb.Fatal(err)
	}
	var env struct {
		V    uint64 `cbor:"1,keyasint"`
		T    uint64 `cbor:"2,keyasint"`
		ID   uint64 `cbor:"3,keyasint"`
		Body []byte `cbor:"4,keyasint"`
	}
	if err := cbor.Unmarshal(p, &env); err != nil {
		tb.Fatal(err)
	}
	return env.Body
}

// maxFuzzBody caps the bodies the payload targets take: bytes beyond what
// the message can hold with its seeds' contents only exercise the CBOR
// decoder (which proto's FuzzUnmarshal fuzzes), and every input that finds
// new coverage is minimized in time quadratic in its length, during which
// no new input is tried.
func maxFuzzBody(typ proto.Type) int {
	switch typ {
	case proto.TypeHealthRequest, proto.TypeKeysRequest, proto.TypePolicyRequest, proto.TypeCheckpointRequest:
		return 64
	case proto.TypeApprovalInfoRequest:
		return 256
	case proto.TypeAttestRequest:
		return proto.MaxNonceLen + 8
	}
	return 2048
}

// decodeBody decodes body as the message of type typ, as the enclave's
// server would; nil when the server would refuse it, or body is longer than
// maxFuzzBody.
func decodeBody(typ proto.Type, body []byte) proto.Message {
	if len(body) > maxFuzzBody(typ) {
		return nil
	}
	_, m, err := proto.Unmarshal(envelopeOf(typ, body))
	if err != nil || m.Type() != typ {
		return nil
	}
	return m
}

// payloadSeeds turns request messages into payload-target seeds.
func payloadSeeds(tb testing.TB, msgs map[string]proto.Message) map[string][]any {
	out := map[string][]any{}
	for name, m := range msgs {
		out[name] = []any{bodyOf(tb, m)}
	}
	// Bodies that are not canonical, or not this message at all.
	out["garbage"] = []any{[]byte{0xff, 0x00}}
	out["empty map"] = []any{[]byte{0xa0}}
	out["unknown field"] = []any{[]byte{0xa1, 0x18, 0x63, 0x01}}
	return out
}

// addSeeds adds seeds to f, in name order.
func addSeeds(f *testing.F, seeds map[string][]any) {
	for _, name := range slices.Sorted(maps.Keys(seeds)) {
		f.Add(seeds[name]...)
	}
}

// --- handlers of an unsealed enclave (health, keys, policy, attest, sign,
// credentials, checkpoint, admin, approvals) ---

// handlerTarget is an unsealed enclave served by an honest host (the
// persister acknowledges every record, and stores checkpoints), taking
// fuzzed requests of one type.
type handlerTarget struct {
	w        *fuzzWorld
	e        *enclave.Enclave
	call     caller // e.Handle, or over a connection
	p        *auditPersister
	last     string // the outcome of the last probe
	cpAck    uint64 // the checkpoint generation the host stored last
	cpSealed []byte // that checkpoint
	cpMax    uint64 // the newest checkpoint generation handed out
	// sealKeyID is the KMS key the seed is sealed under now.
	sealKeyID string
	// carried holds the digests of the admin commands carried out (an
	// answer, or a 503 withheld for its checkpoint), and lastCarried the
	// envelope of the last ("@replay" sends it again): a command is
	// carried out once.
	carried     map[[32]byte]bool
	lastCarried []byte

	// The approval the approval targets act on (see ensurePending).
	pendingID   string
	pendingBody []byte
	approvedBy  map[int]bool // approvers who approved it with a valid signature
}

// newHandlerTarget starts (and, when sealed, creates and unseals) the
// world's enclave and probes it once.
func newHandlerTarget(tb testing.TB, o worldOptions) *handlerTarget {
	tb.Helper()
	w := newFuzzWorld(tb, o)
	h := &handlerTarget{w: w, e: w.newEnclave(tb), sealKeyID: testKeyARN}
	h.call = h.e.Handle
	if o.sealed {
		cr, ok := h.e.Handle(context.Background(), &proto.UnsealRequest{Create: true}).(*proto.UnsealResponse)
		if !ok {
			tb.Fatal("create refused")
		}
		if _, ok := h.e.Handle(context.Background(), &proto.UnsealRequest{Sealed: cr.Sealed}).(*proto.UnsealResponse); !ok {
			tb.Fatal("unseal refused")
		}
	}
	h.p = newPersister(tb, h.e, false)
	if o.sealed {
		h.p.checkpoint = h.storeCheckpoint
	}
	h.p.sync(tb)
	h.last, _ = w.probe(tb, h.p)
	if h.last != "signed" {
		tb.Fatalf("the first probe: %s", h.last)
	}
	h.storeCheckpoint(tb)
	return h
}

// storeCheckpoint is the host's checkpoint poll: it acknowledges the
// checkpoint stored last, stores a newer one if there is one, and
// acknowledges it.
func (h *handlerTarget) storeCheckpoint(tb testing.TB) {
	tb.Helper()
	if !h.w.sealed {
		return
	}
	for range 2 {
		cr, ok := h.call(context.Background(), &proto.CheckpointRequest{Ack: h.cpAck}).(*proto.CheckpointResponse)
		if !ok {
			tb.Fatal("checkpoint poll refused")
		}
		h.cpAck = cr.Generation
		h.cpMax = max(h.cpMax, cr.Generation)
		if len(cr.Sealed) > 0 {
			h.cpSealed = cr.Sealed
		}
	}
}

// exec handles req as the enclave would from the host, and checks the
// answer and what a refusal must leave alone. It returns the answer.
func (h *handlerTarget) exec(t *testing.T, req proto.Message) proto.Message {
	t.Helper()
	h.w.forgetKMSCalls()
	before := stateOf(t, h.e)
	resp := h.p.do(t, req)
	checkAnswer(t, req, resp)
	pe, refused := resp.(*proto.Error)
	refused = refused && len(pe.AuditRecord) == 0
	if refused {
		wantUnchanged(t, fmt.Sprintf("a refused %T (%s: %s)", req, pe.Code, pe.Message), before, stateOf(t, h.e))
	} else if readOnly(req) {
		// Answered, and changes nothing: no need to ask again how a
		// normal request is answered.
		wantUnchanged(t, fmt.Sprintf("a %T", req), before, stateOf(t, h.e))
		return resp
	}
	o, _ := h.w.probe(t, h.p)
	if refused && o != h.last {
		t.Fatalf("after a refused %T (%s: %s), a normal sign request is answered %s, before %s", req, pe.Code, pe.Message, o, h.last)
	}
	h.last = o
	h.storeCheckpoint(t)
	return resp
}

// readOnly reports whether req only describes the enclave.
func readOnly(req proto.Message) bool {
	switch req.(type) {
	case *proto.HealthRequest, *proto.KeysRequest, *proto.PolicyRequest, *proto.AttestRequest, *proto.ApprovalInfoRequest:
		return true
	}
	return false
}

// Read-only requests: health, keys, policy.

func FuzzHandleHealthPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{})
	addSeeds(f, payloadSeeds(f, map[string]proto.Message{"health": &proto.HealthRequest{}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeHealthRequest, body); m != nil {
			h.exec(t, m)
		}
	})
}

func FuzzHandleKeysPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{})
	addSeeds(f, payloadSeeds(f, map[string]proto.Message{"keys": &proto.KeysRequest{}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeKeysRequest, body); m != nil {
			h.exec(t, m)
		}
	})
}

func FuzzHandlePolicyPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{})
	addSeeds(f, payloadSeeds(f, map[string]proto.Message{"policy": &proto.PolicyRequest{}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypePolicyRequest, body); m != nil {
			h.exec(t, m)
		}
	})
}

// Attest: the nonce is the host's (and, through it, a verifier's).

func attestSeeds(tb testing.TB) map[string][]any {
	return payloadSeeds(tb, map[string]proto.Message{
		"nonce":    &proto.AttestRequest{Nonce: []byte("a fresh nonce from the verifier")},
		"no nonce": &proto.AttestRequest{},
		"64 bytes": &proto.AttestRequest{Nonce: bytes.Repeat([]byte{0xff}, 64)},
	})
}

func FuzzHandleAttestPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{nsm: true})
	addSeeds(f, attestSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeAttestRequest, body); m != nil {
			h.exec(t, m)
		}
	})
}

// Sign, as a payload (FuzzHandleSign in fuzz_test.go fuzzes body and stamp
// as fields).

func signSeeds(tb testing.TB, w *fuzzWorld) map[string][]any {
	w.tick(time.Millisecond)
	return payloadSeeds(tb, map[string]proto.Message{
		"transfer":         w.pay(tb, destA, big.NewInt(1)),
		"over the limit":   w.pay(tb, destB, ether(2)),
		"needs approval":   w.pay(tb, destB, milliEther(600)),
		"unregistered key": w.stamped(tb, worldKey(tb, "stranger"), w.signBody(tb, "hot-0", transfer(tb, 1, destA, big.NewInt(1)))),
		"other key":        w.stamped(tb, w.other, w.signBody(tb, "cold-1", transfer(tb, 1, destA, big.NewInt(1)))),
		"no stamp":         &proto.SignRequest{Body: w.signBody(tb, "hot-0", transfer(tb, 1, destA, big.NewInt(1)))},
	})
}

func FuzzHandleSignPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{})
	addSeeds(f, signSeeds(f, h.w))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeSignRequest, body); m != nil {
			h.exec(t, m)
		}
	})
}

// Credentials: the host pushes them; the secret and the token must never
// come back in an answer.

func credentialsSeeds(tb testing.TB) map[string][]any {
	exp := time.UnixMilli(worldStart).Add(time.Hour).UnixMilli()
	return payloadSeeds(tb, map[string]proto.Message{
		"valid":            &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret-secret-secret", SessionToken: "token-token-token", ExpiresUnixMS: exp},
		"expired":          &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret-secret-secret", SessionToken: "token-token-token", ExpiresUnixMS: 1},
		"token, no expiry": &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret-secret-secret", SessionToken: "token-token-token"},
		"no secret":        &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE"},
		"long term":        &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret-secret-secret"},
		"negative expiry":  &proto.CredentialsRequest{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t", ExpiresUnixMS: math.MinInt64},
	})
}

func FuzzHandleCredentialsPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{sealed: true})
	addSeeds(f, credentialsSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		m := decodeBody(proto.TypeCredentialsRequest, body)
		if m == nil {
			return
		}
		resp := h.exec(t, m)
		c := m.(*proto.CredentialsRequest)
		// The same request with the secret and the token replaced: a text
		// that appears only with the real ones came from them.
		masked := *c
		masked.SecretAccessKey = strings.Repeat("#", len(c.SecretAccessKey))
		masked.SessionToken = strings.Repeat("%", len(c.SessionToken))
		other := h.e.Handle(context.Background(), &masked)
		for _, secret := range []string{c.SecretAccessKey, c.SessionToken} {
			if len(secret) >= 4 && strings.Contains(fmt.Sprint(resp), secret) && !strings.Contains(fmt.Sprint(other), secret) {
				t.Fatalf("the answer to pushed credentials shows the secret or the token: %v", resp)
			}
		}
	})
}

// Checkpoint requests: any acknowledgement.

func FuzzHandleCheckpointPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{sealed: true})
	addSeeds(f, checkpointPayloadSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeCheckpointRequest, body); m != nil {
			h.checkpoint(t, m.(*proto.CheckpointRequest))
		}
	})
}

func checkpointPayloadSeeds(tb testing.TB) map[string][]any {
	return payloadSeeds(tb, map[string]proto.Message{
		"ack none": &proto.CheckpointRequest{},
		"ack 1":    &proto.CheckpointRequest{Ack: 1},
		"ack 2":    &proto.CheckpointRequest{Ack: 2},
		"ack max":  &proto.CheckpointRequest{Ack: math.MaxUint64},
	})
}

// FuzzCheckpointAck acknowledges generations near the enclave's (rel: ack
// is the host's last stored generation plus delta), where the interesting
// values are.
func FuzzCheckpointAck(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{sealed: true})
	addSeeds(f, checkpointAckSeeds())
	f.Fuzz(func(t *testing.T, ack uint64, rel bool, delta int8) {
		if rel {
			ack = h.cpAck + uint64(int64(delta))
		}
		h.checkpoint(t, &proto.CheckpointRequest{Ack: ack})
	})
}

func checkpointAckSeeds() map[string][]any {
	return map[string][]any{
		"current":  {uint64(0), true, int8(0)},
		"next":     {uint64(0), true, int8(1)},
		"previous": {uint64(0), true, int8(-1)},
		"zero":     {uint64(0), false, int8(0)},
		"max":      {uint64(math.MaxUint64), false, int8(0)},
	}
}

// checkpoint handles a checkpoint request: besides exec's checks, a
// generation never goes back, and a record made afterwards never names a
// checkpoint generation the host was not handed.
func (h *handlerTarget) checkpoint(t *testing.T, req *proto.CheckpointRequest) {
	t.Helper()
	prev := h.cpMax
	resp := h.exec(t, req)
	cr, ok := resp.(*proto.CheckpointResponse)
	if !ok {
		t.Fatalf("a checkpoint request answered %v", resp)
	}
	if cr.Generation < prev && len(cr.Sealed) > 0 {
		t.Fatalf("checkpoint generation %d handed out after %d", cr.Generation, prev)
	}
	h.cpMax = max(h.cpMax, cr.Generation)
	if h.p.last != nil {
		r, err := audit.Unmarshal(h.p.last)
		if err != nil {
			t.Fatal(err)
		}
		if r.Checkpoint > h.cpMax {
			t.Fatalf("record %d says checkpoint generation %d was stored; the newest handed out is %d", r.Seq, r.Checkpoint, h.cpMax)
		}
	}
}

// Admin commands.

// adminPlaceholders are the envelopes FuzzHandleAdminPayload takes by
// name, made anew for every use (valid for an hour around now).
func (h *handlerTarget) adminPlaceholder(tb testing.TB, name []byte) []byte {
	w := h.w
	switch string(name) {
	case "@key_create":
		return w.adminEnvelope(tb, admin.KindKeyCreate, admin.KeyCreateBody{KeyID: fmt.Sprintf("fz-%d", w.ids.Add(1)), Path: "m/44'/60'/0'/0/9"})
	case "@seal_rotate":
		return w.adminEnvelope(tb, admin.KindSealRotate, admin.SealRotateBody{KMSKeyID: otherKeyARN})
	case "@unfreeze":
		return w.adminEnvelope(tb, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: 2})
	case "@policy_tighten":
		return w.adminEnvelope(tb, admin.KindPolicyChange, json.RawMessage(withPolicyHash(`{"version":3,"policy_hash":"","document":`+tightenedPolicy+`}`)))
	case "@replay":
		if h.lastCarried != nil {
			return h.lastCarried
		}
	case "@no_quorum":
		nb := w.now().Add(-time.Minute).UnixMilli()
		return w.rawEnvelope(tb, string(admin.KindKeyCreate), `{"key_id":"k","path":"m/1"}`, 0b001, nb, nb+3_600_000, w.genesisHash)
	}
	return name
}

func adminPayloadSeeds(tb testing.TB) map[string][]any {
	seeds := map[string]proto.Message{
		"not json":    &proto.AdminRequest{Envelope: []byte("not json")},
		"empty":       &proto.AdminRequest{Envelope: []byte("{}")},
		"no commands": &proto.AdminRequest{Envelope: []byte(`{"command":"","signatures":[]}`)},
	}
	for _, name := range []string{"@key_create", "@seal_rotate", "@unfreeze", "@policy_tighten", "@no_quorum", "@replay"} {
		seeds[name[1:]] = &proto.AdminRequest{Envelope: []byte(name)}
	}
	return payloadSeeds(tb, seeds)
}

// FuzzHandleAdminPayload: admin requests, whose envelope may be a
// placeholder of a signed one.
func FuzzHandleAdminPayload(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{sealed: true})
	addSeeds(f, adminPayloadSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeAdminRequest, body); m != nil {
			req := m.(*proto.AdminRequest)
			env := h.adminPlaceholder(t, req.Envelope)
			if m := viaWire(&proto.AdminRequest{Envelope: env}); m != nil {
				h.admin(t, m.(*proto.AdminRequest), -1, false)
			}
		}
	})
}

// Admin command fixes (FuzzAdminCommand's fix bits).
const (
	fixPolicyHash   = 1 << iota // a policy_change body gets its document's version and hash
	fixImportKey                // a key_import body's encrypted_key is encrypted with KMS as the enclave expects
	fixWrongGenesis             // the command is bound to another deployment
	fixReplay                   // the envelope is sent twice
)

// FuzzAdminCommand: commands with any kind and body, signed by any subset
// of the admins (signers: bits 0-2 the three admins, bit 3 a name that is
// no admin), valid from now+notBeforeMS for validMS. The admin set needs 2 (1 for a freeze or a cancel)
// signatures.
func FuzzAdminCommand(f *testing.F) {
	h := newHandlerTarget(f, worldOptions{sealed: true})
	addSeeds(f, adminCommandSeeds())
	f.Fuzz(func(t *testing.T, kind, body string, signers uint8, notBeforeMS, validMS int64, fix uint8) {
		w := h.w
		if fix&fixPolicyHash != 0 {
			body = withPolicyHash(body)
		}
		if fix&fixImportKey != 0 {
			body = h.withImportKey(t, body)
		}
		gh := w.genesisHash
		if fix&fixWrongGenesis != 0 {
			gh = sha256.Sum256([]byte("another deployment"))
		}
		nb := w.now().UnixMilli() + notBeforeMS
		env := w.rawEnvelope(t, kind, body, signers, nb, nb+validMS, gh)
		m := viaWire(&proto.AdminRequest{Envelope: env})
		if m == nil {
			return
		}
		need := 2 // the admin set's quorum; 1 for a kind that only stops
		if admin.Kind(kind).OnlyStops() {
			need = 1
		}
		quorum := bits.OnesCount8(signers&0b111) >= need && signers&0b1000 == 0 && fix&fixWrongGenesis == 0
		h.admin(t, m.(*proto.AdminRequest), boolInt(quorum), notBeforeMS <= 0 && notBeforeMS+validMS > 0)
		if fix&fixReplay != 0 {
			h.admin(t, m.(*proto.AdminRequest), boolInt(quorum), notBeforeMS <= 0 && notBeforeMS+validMS > 0)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func adminCommandSeeds() map[string][]any {
	hour := int64(time.Hour / time.Millisecond)
	doc, _ := json.Marshal(map[string]any{"version": 2, "policy_hash": "", "document": json.RawMessage(`{}`)})
	return map[string][]any{
		"key create":           {string(admin.KindKeyCreate), `{"key_id":"fz-1","path":"m/44'/60'/0'/0/7"}`, uint8(0b011), int64(-60_000), hour, uint8(0)},
		"key create taken":     {string(admin.KindKeyCreate), `{"key_id":"hot-0","path":"m/44'/60'/0'/0/8"}`, uint8(0b110), int64(-60_000), hour, uint8(0)},
		"key create 1 admin":   {string(admin.KindKeyCreate), `{"key_id":"fz-2","path":"m/1"}`, uint8(0b001), int64(-60_000), hour, uint8(0)},
		"key create stranger":  {string(admin.KindKeyCreate), `{"key_id":"fz-2","path":"m/1"}`, uint8(0b1001), int64(-60_000), hour, uint8(0)},
		"key import":           {string(admin.KindKeyImport), `{"key_id":"fz-imp","encrypted_key":"` + hex.EncodeToString(bytes.Repeat([]byte{7}, 32)) + `"}`, uint8(0b011), int64(-60_000), hour, uint8(fixImportKey)},
		"seal rotate":          {string(admin.KindSealRotate), `{}`, uint8(0b101), int64(-60_000), hour, uint8(0)},
		"seal rotate other":    {string(admin.KindSealRotate), `{"kms_key_id":"` + otherKeyARN + `"}`, uint8(0b011), int64(-60_000), hour, uint8(0)},
		"unfreeze":             {string(admin.KindUnfreeze), `{"freeze_seq":3}`, uint8(0b011), int64(-60_000), hour, uint8(0)},
		"policy change":        {string(admin.KindPolicyChange), string(doc), uint8(0b011), int64(-60_000), hour, uint8(fixPolicyHash)},
		"policy tighten":       {string(admin.KindPolicyChange), `{"version":3,"policy_hash":"","document":` + tightenedPolicy + `}`, uint8(0b011), int64(-60_000), hour, uint8(fixPolicyHash)},
		"freeze one admin":     {string(admin.KindFreeze), `{"key_id":"hot-0","reason":"fuzz"}`, uint8(0b010), int64(-60_000), hour, uint8(0)},
		"freeze all keys":      {string(admin.KindFreeze), `{"all_keys":true,"reason":"fuzz"}`, uint8(0b011), int64(-60_000), hour, uint8(0)},
		"freeze unknown key":   {string(admin.KindFreeze), `{"key_id":"fz-none","reason":"fuzz"}`, uint8(0b001), int64(-60_000), hour, uint8(0)},
		"freeze bad reason":    {string(admin.KindFreeze), `{"key_id":"hot-0","reason":"a\u0000b"}`, uint8(0b001), int64(-60_000), hour, uint8(0)},
		"freeze stranger":      {string(admin.KindFreeze), `{"key_id":"hot-0","reason":"fuzz"}`, uint8(0b1000), int64(-60_000), hour, uint8(0)},
		"policy cancel":        {string(admin.KindPolicyCancel), `{"version":3,"policy_hash":"` + strings.Repeat("ab", 32) + `"}`, uint8(0b100), int64(-60_000), hour, uint8(0)},
		"not yet valid":        {string(admin.KindSealRotate), `{}`, uint8(0b011), int64(60_000), hour, uint8(0)},
		"expired":              {string(admin.KindSealRotate), `{}`, uint8(0b011), -2 * hour, hour, uint8(0)},
		"wrong deployment":     {string(admin.KindSealRotate), `{}`, uint8(0b011), int64(-60_000), hour, uint8(fixWrongGenesis)},
		"unknown kind":         {"self_destruct", `{}`, uint8(0b111), int64(-60_000), hour, uint8(0)},
		"body not json":        {string(admin.KindUnfreeze), `{"freeze_seq":`, uint8(0b011), int64(-60_000), hour, uint8(0)},
		"replayed seal rotate": {string(admin.KindSealRotate), `{}`, uint8(0b110), int64(-30_000), hour, uint8(fixReplay)},
		"replayed key create":  {string(admin.KindKeyCreate), `{"key_id":"fz-3","path":"m/44'/60'/0'/0/3"}`, uint8(0b011), int64(-60_000), hour, uint8(fixReplay)},
		"replayed tighten":     {string(admin.KindPolicyChange), `{"version":3,"policy_hash":"","document":` + tightenedPolicy + `}`, uint8(0b101), int64(-60_000), hour, uint8(fixPolicyHash | fixReplay)},
	}
}

// tightenedPolicy is a policy document (version 3) that allows less than
// the worlds' policy: hot-0 may pay destB only. It is not the worlds'
// clients' keys, so a policy change to it leaves no client registered:
// the probe is then refused, and admin's bookkeeping follows.
const tightenedPolicy = `{"version":3,"clients":[],"keys":[{"key":"hot-0","chains":[1]}]}`

// withPolicyHash fills a policy_change body's version and policy_hash from
// its document, when the document is a policy.
func withPolicyHash(body string) string {
	var b map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &b) != nil || b["document"] == nil {
		return body
	}
	p, err := policy.Parse(b["document"])
	if err != nil {
		return body
	}
	h := p.Hash()
	b["version"], _ = json.Marshal(p.Version())
	b["policy_hash"], _ = json.Marshal(hex.EncodeToString(h[:]))
	out, _ := json.Marshal(b)
	return string(out)
}

// withImportKey replaces a key_import body's encrypted_key (hex of the
// private key to import) with its encryption under the KMS key the seed is
// sealed under, in the key's import context.
func (h *handlerTarget) withImportKey(t *testing.T, body string) string {
	var b admin.KeyImportBody
	if json.Unmarshal([]byte(body), &b) != nil {
		return body
	}
	pt, err := hex.DecodeString(b.EncryptedKey)
	if err != nil {
		return body
	}
	b.EncryptedKey = hex.EncodeToString(h.w.kms.encrypt(t, h.sealKeyID, pt, enclave.ImportContext(b.KeyID)))
	out, _ := json.Marshal(b)
	return string(out)
}

// admin handles an admin request. quorum is 1 when the harness signed it
// with a quorum of admins for this deployment, 0 when it did not, -1 when
// unknown (a fuzzed envelope); valid says the command's validity window
// holds now. An executed command must have had both.
func (h *handlerTarget) admin(t *testing.T, req *proto.AdminRequest, quorum int, valid bool) {
	t.Helper()
	var digest *[32]byte
	if env, err := admin.ParseEnvelope(req.Envelope); err == nil {
		if cmd, err := admin.ParseCommand(env.Command); err == nil {
			digest = &cmd.Digest
		}
	}
	resp := h.exec(t, req)
	ar, ok := resp.(*proto.AdminResponse)
	if pe, refused := resp.(*proto.Error); refused {
		switch {
		case pe.Rule == refusal.RuleReplayedCommand && (digest == nil || !h.carried[*digest]):
			t.Fatalf("a command never carried out was refused as replayed: %s", pe.Message)
		case pe.Rule == refusal.RuleCheckpoint && digest != nil:
			h.noteCarried(*digest, req.Envelope) // carried out; its answer withheld
		}
	}
	if !ok {
		return
	}
	if digest == nil {
		t.Fatalf("an envelope that does not parse was carried out: %s", ar.Result)
	}
	if h.carried[*digest] {
		t.Fatalf("an admin command was carried out twice: %s", ar.Result)
	}
	h.noteCarried(*digest, req.Envelope)
	if quorum == 0 || quorum == 1 && !valid {
		t.Fatalf("an admin command without a quorum, or outside its validity, was carried out: %s", ar.Result)
	}
	if quorum == -1 {
		// A fuzzed envelope carries a quorum only by reusing one.
		if !bytes.Contains(req.Envelope, []byte(`"signatures"`)) {
			t.Fatalf("an envelope without signatures was carried out: %s", ar.Result)
		}
	}
	if len(ar.AuditRecord) == 0 {
		t.Fatalf("an admin command was carried out without an audit record: %s", ar.Result)
	}
	var r enclave.AdminResult
	if err := json.Unmarshal(ar.Result, &r); err != nil {
		t.Fatalf("admin result %q: %v", ar.Result, err)
	}
	if len(r.Signers) < 2 && !(admin.Kind(r.Kind).OnlyStops() && len(r.Signers) == 1) {
		t.Fatalf("%s carried out with signers %v", r.Kind, r.Signers)
	}
	if r.KMSKey != "" {
		h.sealKeyID = r.KMSKey
	}
}

// noteCarried remembers that the command of env (digest d) was carried out.
func (h *handlerTarget) noteCarried(d [32]byte, env []byte) {
	if h.carried == nil {
		h.carried = map[[32]byte]bool{}
	}
	h.carried[d] = true
	h.lastCarried = env
}

// Approvals.

// newApprovalTarget is an ephemeral enclave with a request waiting for
// approvals.
func newApprovalTarget(tb testing.TB) *handlerTarget {
	h := newHandlerTarget(tb, worldOptions{label: "approvals"})
	h.ensurePending(tb)
	return h
}

// ensurePending makes a new request wait for approvals (0.6 ETH to destB,
// above the 0.5 ETH threshold) unless the current one still does. The
// clock first moves a day on, so that the rolling limit never runs out.
func (h *handlerTarget) ensurePending(tb testing.TB) {
	tb.Helper()
	if h.pendingID != "" {
		if ai, ok := h.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: h.pendingID}).(*proto.ApprovalInfoResponse); ok && ai.Status == proto.StatusPending {
			return
		}
	}
	h.w.tick(25 * time.Hour)
	req := h.w.pay(tb, destB, milliEther(600))
	sr, ok := h.p.do(tb, req).(*proto.SignResponse)
	if !ok || sr.Status != proto.StatusPending {
		tb.Fatalf("a request above the threshold was answered %v", sr)
	}
	h.pendingID, h.pendingBody, h.approvedBy = sr.ApprovalID, req.Body, map[int]bool{}
}

func approvalPayloadSeeds(tb testing.TB, h *handlerTarget) map[string][]any {
	w := h.w
	return payloadSeeds(tb, map[string]proto.Message{
		"approve":       &proto.ApprovalRequest{Body: w.approvalBody(tb, h.pendingID, 0, h.pendingBody, false)},
		"reject":        &proto.ApprovalRequest{Body: w.approvalBody(tb, h.pendingID, 1, h.pendingBody, true)},
		"unknown id":    &proto.ApprovalRequest{Body: w.approvalBody(tb, "00000000000000000000000000000000", 0, h.pendingBody, false)},
		"other body":    &proto.ApprovalRequest{Body: w.approvalBody(tb, h.pendingID, 2, []byte("{}"), false)},
		"not json":      &proto.ApprovalRequest{Body: []byte("{")},
		"no signature ": &proto.ApprovalRequest{Body: []byte(`{"approval_id":"` + h.pendingID + `","decision":"approve","approver":"approver-1","signature":""}`)},
	})
}

func FuzzHandleApprovalPayload(f *testing.F) {
	h := newApprovalTarget(f)
	addSeeds(f, approvalPayloadSeeds(f, h))
	f.Fuzz(func(t *testing.T, body []byte) {
		h.ensurePending(t)
		if m := decodeBody(proto.TypeApprovalRequest, body); m != nil {
			h.approval(t, m.(*proto.ApprovalRequest), -1, "", -1)
		}
	})
}

// Approval signature modes of FuzzApproval.
const (
	sigValid      = iota // by the approver, over the pending request's digest, in the decision's domain
	sigGiven             // the fuzzed signature
	sigOther             // valid, but by the next approver
	sigApproveDom        // by the approver, always in the approve domain
	sigModes
)

// FuzzApproval: decisions on the pending request (or another id) by any
// approver name, with a valid signature or not. Oracles: a signature is
// released only once two approvers approved it with valid signatures; a
// rejection only by an approver's valid rejection.
func FuzzApproval(f *testing.F) {
	h := newApprovalTarget(f)
	addSeeds(f, approvalSeeds())
	f.Fuzz(func(t *testing.T, useID bool, id, decision string, approver uint8, name string, sigMode uint8, sig string) {
		h.ensurePending(t)
		w := h.w
		if useID {
			id = h.pendingID
		}
		idx := -1
		if approver < 3 {
			idx, name = int(approver), w.approvers.names[approver]
		}
		domain := api.DomainApprove
		if decision == api.DecisionReject {
			domain = api.DomainReject
		}
		switch sigMode % sigModes {
		case sigValid, sigOther, sigApproveDom:
			si := max(idx, 0)
			if sigMode%sigModes == sigOther {
				si = (si + 1) % 3
			}
			if sigMode%sigModes == sigApproveDom {
				domain = api.DomainApprove
			}
			s, err := admin.SignDigest(w.approvers.signers[si], domain, api.ApprovalDigest(h.pendingBody))
			if err != nil {
				t.Fatal(err)
			}
			sig = hex.EncodeToString(s)
		}
		body, err := json.Marshal(api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: name, Signature: sig})
		if err != nil {
			return
		}
		m := viaWire(&proto.ApprovalRequest{Body: body})
		if m == nil {
			return
		}
		valid := -1
		if useID && idx >= 0 && (sigMode%sigModes == sigValid || sigMode%sigModes == sigApproveDom && decision != api.DecisionReject) {
			valid = idx
		}
		h.approval(t, m.(*proto.ApprovalRequest), valid, decision, idx)
	})
}

func approvalSeeds() map[string][]any {
	return map[string][]any{
		"approve 1":          {true, "", api.DecisionApprove, uint8(0), "", uint8(sigValid), ""},
		"approve 2":          {true, "", api.DecisionApprove, uint8(1), "", uint8(sigValid), ""},
		"reject 3":           {true, "", api.DecisionReject, uint8(2), "", uint8(sigValid), ""},
		"other's signature":  {true, "", api.DecisionApprove, uint8(0), "", uint8(sigOther), ""},
		"reject, approve":    {true, "", api.DecisionReject, uint8(1), "", uint8(sigApproveDom), ""},
		"not an approver":    {true, "", api.DecisionApprove, uint8(9), "mallory", uint8(sigValid), ""},
		"unknown id":         {false, "ffffffffffffffffffffffffffffffff", api.DecisionApprove, uint8(0), "", uint8(sigValid), ""},
		"garbage signature":  {true, "", api.DecisionApprove, uint8(0), "", uint8(sigGiven), "zz"},
		"unknown decision":   {true, "", "maybe", uint8(0), "", uint8(sigValid), ""},
		"empty signature":    {true, "", api.DecisionApprove, uint8(0), "", uint8(sigGiven), ""},
		"0x signature":       {true, "", api.DecisionApprove, uint8(0), "", uint8(sigGiven), "0x00"},
		"client as approver": {true, "", api.DecisionApprove, uint8(3), "hot-client", uint8(sigGiven), strings.Repeat("00", 64)},
	}
}

// approval handles an approval request. valid is the approver whose valid
// approval of the pending request it carries (-1: none known), decision
// and idx what the harness made it of. Besides exec's checks: a signature
// needs two valid approvals, a rejection a valid one.
func (h *handlerTarget) approval(t *testing.T, req *proto.ApprovalRequest, valid int, decision string, idx int) {
	t.Helper()
	known := valid >= 0 || decision != "" // a typed input: the harness knows what it holds
	if valid >= 0 && decision != api.DecisionReject {
		h.approvedBy[valid] = true
	}
	resp := h.exec(t, req)
	switch r := resp.(type) {
	case *proto.SignResponse:
		if r.Status != proto.StatusPending && known && len(h.approvedBy) < 2 {
			t.Fatalf("a signature was released with valid approvals by %v only", h.approvedBy)
		}
	case *proto.Error:
		if r.Code == refusal.CodeApprovalRejected && len(r.AuditRecord) > 0 && known && !(decision == api.DecisionReject && valid == idx && idx >= 0) {
			t.Fatalf("the request was rejected by an input without a valid rejection: %s", r.Message)
		}
	}
}

// Approval info.

func FuzzHandleApprovalInfoPayload(f *testing.F) {
	h := newApprovalTarget(f)
	addSeeds(f, approvalInfoPayloadSeeds(f, h))
	f.Fuzz(func(t *testing.T, body []byte) {
		h.ensurePending(t)
		if m := decodeBody(proto.TypeApprovalInfoRequest, body); m != nil {
			h.approvalInfo(t, m.(*proto.ApprovalInfoRequest))
		}
	})
}

func approvalInfoPayloadSeeds(tb testing.TB, h *handlerTarget) map[string][]any {
	return payloadSeeds(tb, map[string]proto.Message{
		"pending":    &proto.ApprovalInfoRequest{ID: h.pendingID},
		"unknown":    &proto.ApprovalInfoRequest{ID: "ffffffffffffffffffffffffffffffff"},
		"empty":      &proto.ApprovalInfoRequest{},
		"long":       &proto.ApprovalInfoRequest{ID: strings.Repeat("a", 64)},
		"not hex id": &proto.ApprovalInfoRequest{ID: "../../etc/passwd"},
	})
}

func approvalInfoSeeds() map[string][]any {
	return map[string][]any{"pending": {true, ""}, "unknown": {false, "0123456789abcdef0123456789abcdef"}, "empty": {false, ""}}
}

// FuzzApprovalInfo asks about the pending request (useID) or any id.
func FuzzApprovalInfo(f *testing.F) {
	h := newApprovalTarget(f)
	addSeeds(f, approvalInfoSeeds())
	f.Fuzz(func(t *testing.T, useID bool, id string) {
		h.ensurePending(t)
		if useID {
			id = h.pendingID
		}
		if m := viaWire(&proto.ApprovalInfoRequest{ID: id}); m != nil {
			h.approvalInfo(t, m.(*proto.ApprovalInfoRequest))
		}
	})
}

// approvalInfo: a read-only request; besides exec's checks, it appends
// nothing, and describes the pending request by its id only.
func (h *handlerTarget) approvalInfo(t *testing.T, req *proto.ApprovalInfoRequest) {
	t.Helper()
	before := stateOf(t, h.e)
	resp := h.e.Handle(context.Background(), req)
	checkAnswer(t, req, resp)
	wantUnchanged(t, "an approval info request", before, stateOf(t, h.e))
	if ai, ok := resp.(*proto.ApprovalInfoResponse); ok && ai.ID != req.ID {
		t.Fatalf("approval info for %q describes %q", req.ID, ai.ID)
	}
	h.exec(t, req)
}

// --- the audit pipeline ---

// auditTarget is an ephemeral enclave whose host the harness plays by
// hand: before every input it persists and acknowledges everything and
// leaves two records unacknowledged (rotate records), so that the fuzzed
// acknowledgement has pending records to name.
type auditTarget struct {
	w        *fuzzWorld
	e        *enclave.Enclave
	p        *auditPersister
	otherRun []byte
	// hook, when set, completes the request once the pending records are
	// known (their lines by seq, and the head).
	hook func(lines map[uint64][]byte, head uint64)
}

func newAuditTarget(tb testing.TB) *auditTarget {
	tb.Helper()
	w := newFuzzWorld(tb, worldOptions{label: "audit"})
	a := &auditTarget{w: w, e: w.newEnclave(tb), otherRun: bytes.Repeat([]byte{0x5e}, proto.RunIDLen)}
	a.p = newPersister(tb, a.e, false)
	a.p.sync(tb)
	if o, _ := w.probe(tb, a.p); o != "signed" {
		tb.Fatalf("the first probe: %s", o)
	}
	return a
}

// canceled is a context already canceled: an audit request that would
// long-poll returns at once (as when its connection closes).
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// exec handles an audit request from a hostile host. Checks: a refusal
// (400 rule audit) changes nothing, not even the failing report; an
// acknowledgement applies only with the exact hash of the enclave's record
// and for this run; the records answered are the enclave's pending ones,
// in order; the host's failing report stops decisions at once; and once
// the honest host has caught up, a normal request is signed.
func (a *auditTarget) exec(t *testing.T, req *proto.AuditRequest) {
	t.Helper()
	e, w := a.e, a.w
	a.resync(t)
	a.p.sync(t)
	for range 2 {
		if ar, ok := e.Handle(context.Background(), &proto.AuditRequest{Rotate: true, Run: a.p.run}).(*proto.AuditResponse); !ok || len(ar.RotateRecord) == 0 {
			t.Fatal("no rotate record")
		}
	}
	before := stateOf(t, e)
	lines := map[uint64][]byte{}
	for _, l := range strings.SplitAfter(before.pending, "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		r, err := audit.Unmarshal([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		lines[r.Seq] = []byte(l)
	}
	if a.hook != nil {
		a.hook(lines, before.head)
	}
	ctx := context.Background()
	if req.WaitMS > 0 {
		ctx = canceled
	}
	resp := e.Handle(ctx, req)
	checkAnswer(t, req, resp)
	after := stateOf(t, e)
	switch r := resp.(type) {
	case *proto.Error:
		if r.Code != refusal.CodeBadRequest || r.Rule != refusal.RuleAudit {
			t.Fatalf("audit request refused with %s/%s: %s", r.Code, r.Rule, r.Message)
		}
		wantUnchanged(t, "a refused acknowledgement", before, after)
	case *proto.AuditResponse:
		sameRun := len(req.Run) == 0 || bytes.Equal(req.Run, a.p.run)
		if !bytes.Equal(r.Run, a.p.run) {
			t.Fatalf("answered for run %x, the enclave's is %x", r.Run, a.p.run)
		}
		if after.acked != before.acked {
			sum := sha256.Sum256(lines[req.Ack])
			if !sameRun || req.Ack != after.acked || lines[req.Ack] == nil || !bytes.Equal(req.AckHash, sum[:]) {
				t.Fatalf("acknowledged head %d -> %d by ack %d hash %x run %x: not the record's hash (%x) or not this run", before.acked, after.acked, req.Ack, req.AckHash, req.Run, sum)
			}
		}
		if r.Acked != after.acked {
			t.Fatalf("answered acked %d, the enclave's is %d", r.Acked, after.acked)
		}
		rotated := after.head - before.head
		switch {
		case rotated > 1, rotated == 1 && !req.Rotate, rotated == 1 && len(r.RotateRecord) == 0, rotated == 0 && len(r.RotateRecord) > 0:
			t.Fatalf("head %d -> %d, rotate %v, rotate record %d bytes", before.head, after.head, req.Rotate, len(r.RotateRecord))
		}
		if rotated == 1 {
			lines[after.head] = r.RotateRecord
		}
		if (req.From == 0 || !sameRun) && len(r.Records) > 0 {
			t.Fatalf("%d records for a request that asked for none (from %d, run %x)", len(r.Records), req.From, req.Run)
		}
		var prev uint64
		for i, l := range r.Records {
			rec, err := audit.Unmarshal(l)
			if err != nil || !bytes.Equal(lines[rec.Seq], l) || i > 0 && rec.Seq != prev+1 || rec.Seq <= before.acked {
				t.Fatalf("record %d of the answer (seq %d, err %v) is not the enclave's pending record", i, rec.Seq, err)
			}
			prev = rec.Seq
		}
		if !strings.Contains(after.health, "AuditFailing:"+req.Failing+" FrozenKeys:") { // the field after AuditFailing
			t.Fatalf("the host reported failing %q; health says %s", req.Failing, after.health)
		}
		if req.Failing != "" {
			// Stop deciding at once: refused before any record.
			w.tick(time.Millisecond)
			m := e.Handle(context.Background(), w.pay(t, destA, big.NewInt(1)))
			if pe, ok := m.(*proto.Error); !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleAudit || len(pe.AuditRecord) != 0 {
				t.Fatalf("while the host reports it cannot persist, a sign request is answered %v", outcome(m))
			}
		}
	default:
		t.Fatalf("audit request answered %T", resp)
	}
	a.resync(t)
	a.p.sync(t)
	if o, m := w.probe(t, a.p); o != "signed" {
		t.Fatalf("after the host caught up, a normal request is answered %s (%v)", o, m)
	}
}

// resync lets the honest host continue after an input that acknowledged
// records itself: the enclave no longer hands those over.
func (a *auditTarget) resync(t *testing.T) {
	if st := stateOf(t, a.e); st.acked > a.p.seq {
		a.p.seq, a.p.hash, a.p.last = st.acked, nil, nil
	}
}

func auditPayloadSeeds(tb testing.TB) map[string][]any {
	bad := sha256.Sum256([]byte("another record"))
	return payloadSeeds(tb, map[string]proto.Message{
		"poll":              &proto.AuditRequest{From: 1},
		"long poll":         &proto.AuditRequest{From: math.MaxUint64, WaitMS: proto.MaxAuditWaitMS},
		"ack beyond":        &proto.AuditRequest{Ack: 1 << 40, AckHash: bad[:]},
		"ack max":           &proto.AuditRequest{Ack: math.MaxUint64, AckHash: bad[:]},
		"ack max, no hash":  &proto.AuditRequest{Ack: math.MaxUint64},
		"ack wrong hash":    &proto.AuditRequest{Ack: 4, AckHash: bad[:]},
		"rotate":            &proto.AuditRequest{Rotate: true},
		"failing":           &proto.AuditRequest{Failing: "disk full"},
		"other run":         &proto.AuditRequest{Ack: 4, AckHash: bad[:], From: 1, Run: bytes.Repeat([]byte{1}, proto.RunIDLen)},
		"everything at max": &proto.AuditRequest{Ack: math.MaxUint64, AckHash: bad[:], From: math.MaxUint64, WaitMS: proto.MaxAuditWaitMS, Rotate: true, Failing: strings.Repeat("f", proto.MaxFailingLen), Run: bytes.Repeat([]byte{0xff}, proto.RunIDLen)},
	})
}

func FuzzHandleAuditPayload(f *testing.F) {
	a := newAuditTarget(f)
	addSeeds(f, auditPayloadSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m := decodeBody(proto.TypeAuditRequest, body); m != nil {
			a.exec(t, m.(*proto.AuditRequest))
		}
	})
}

// Acknowledgement hash modes of FuzzAuditAck.
const (
	hashGiven  = iota // the fuzzed bytes
	hashOfAck         // the SHA-256 of the enclave's record ack (the honest hash)
	hashOfPrev        // the hash of record ack-1: another record's
	hashOfHead        // the hash of the head record
	hashNone          // no hash
	hashModes
)

// Run modes of FuzzAuditAck.
const (
	runNone  = iota // no run
	runThis         // this enclave's run
	runOther        // another run's
	runModes
)

// FuzzAuditAck: acknowledgements and polls with fields relative to the
// enclave's state where that is where the bugs would be (rel bit 0: ack is
// acknowledged+ack%8; bit 1: from is acknowledged+from%8), and hashes of
// the enclave's own records.
func FuzzAuditAck(f *testing.F) {
	a := newAuditTarget(f)
	addSeeds(f, auditAckSeeds())
	f.Fuzz(func(t *testing.T, ack, from uint64, rel, hashMode uint8, hash []byte, waitMS uint32, rotate bool, failing string, runMode uint8) {
		// exec acknowledges every record, then appends two: ack%8 of 1
		// and 2 name them.
		acked := stateOf(t, a.e).head
		if rel&1 != 0 {
			ack = acked + ack%8
		}
		if rel&2 != 0 {
			from = acked + from%8
		}
		req := &proto.AuditRequest{Ack: ack, From: from, WaitMS: waitMS, Rotate: rotate, Failing: failing}
		switch runMode % runModes {
		case runThis:
			req.Run = a.p.run
		case runOther:
			req.Run = a.otherRun
		}
		a.execAck(t, req, hashMode%hashModes, hash)
	})
}

// execAck is exec for an acknowledgement whose hash is chosen by mode: it
// is filled in once exec has made the records it may name.
func (a *auditTarget) execAck(t *testing.T, req *proto.AuditRequest, mode uint8, given []byte) {
	t.Helper()
	if mode == hashGiven {
		req.AckHash = given
	}
	if viaWire(req) == nil {
		return
	}
	if mode != hashGiven {
		a.hook = func(lines map[uint64][]byte, head uint64) {
			var l []byte
			switch mode {
			case hashOfAck:
				l = lines[req.Ack]
			case hashOfPrev:
				l = lines[req.Ack-1]
			case hashOfHead:
				l = lines[head]
			case hashNone:
				req.AckHash = nil
				return
			}
			sum := sha256.Sum256(l) // of nothing, when no such record is pending
			req.AckHash = sum[:]
		}
		defer func() { a.hook = nil }()
	}
	a.exec(t, req)
}

func auditAckSeeds() map[string][]any {
	none := []byte(nil)
	return map[string][]any{
		"honest ack of the first":    {uint64(1), uint64(0), uint8(1), uint8(hashOfAck), none, uint32(0), false, "", uint8(runThis)},
		"honest ack of both":         {uint64(2), uint64(1), uint8(3), uint8(hashOfAck), none, uint32(0), false, "", uint8(runNone)},
		"ack with the previous hash": {uint64(2), uint64(0), uint8(1), uint8(hashOfPrev), none, uint32(0), false, "", uint8(runNone)},
		"ack with the head's hash":   {uint64(1), uint64(0), uint8(1), uint8(hashOfHead), none, uint32(0), false, "", uint8(runNone)},
		"ack beyond the head":        {uint64(3), uint64(0), uint8(1), uint8(hashOfHead), none, uint32(0), false, "", uint8(runNone)},
		"ack without hash":           {uint64(1), uint64(0), uint8(1), uint8(hashNone), none, uint32(0), false, "", uint8(runNone)},
		"ack max":                    {uint64(math.MaxUint64), uint64(0), uint8(0), uint8(hashOfHead), none, uint32(0), false, "", uint8(runNone)},
		"ack of another run":         {uint64(2), uint64(1), uint8(3), uint8(hashOfAck), none, uint32(0), false, "", uint8(runOther)},
		"stale ack":                  {uint64(0), uint64(0), uint8(1), uint8(hashGiven), bytes.Repeat([]byte{1}, 32), uint32(0), false, "", uint8(runNone)},
		"long poll past the head":    {uint64(0), uint64(7), uint8(3), uint8(hashNone), none, uint32(proto.MaxAuditWaitMS), false, "", uint8(runThis)},
		"failing and rotate":         {uint64(1), uint64(1), uint8(3), uint8(hashOfAck), none, uint32(0), true, "no space left on device", uint8(runThis)},
		"short hash":                 {uint64(1), uint64(0), uint8(1), uint8(hashGiven), []byte{1, 2, 3}, uint32(0), false, "", uint8(runNone)},
	}
}

// --- unseal ---

// unsealMaterial is what a host holds after a first run of a sealed
// enclave: sealed seeds of sealing generations 1 and 2 (a seal_rotate
// between), records of its log and checkpoints of several generations.
type unsealMaterial struct {
	s1, s2    []byte   // sealed seeds, generations 1 and 2
	h1        []byte   // record 3: before the re-wrap and the last checkpoints
	hLast     []byte   // the last record, 6 (see firstRun)
	c1, cLast []byte   // checkpoints of generation 1 and the last one (3 or later)
	log       [][]byte // the whole log
	foreign   []byte   // a record of another enclave
}

// firstRun creates the sealed seed and makes a short history, each record
// followed by the tree head of its batch (the persister fetches them one
// by one): genesis record 1 (2); a signature 3 (4); checkpoint 1; a
// signature 5 (6 = h1); a re-wrap to sealing generation 2, 7 (8); a
// signature 9 (10); checkpoint 2; a signature 11 (12 = hLast); checkpoint
// 3 (or later: the re-wrap's answer waits for checkpoints that hold it) =
// cLast, which holds record 12 as both its acknowledged and appended head.
func (w *fuzzWorld) firstRun(tb testing.TB) *unsealMaterial {
	e := w.newEnclave(tb)
	return w.firstRunVia(tb, e.Handle)
}

// firstRunVia is firstRun with a new, locked enclave of the world reached
// through call.
func (w *fuzzWorld) firstRunVia(tb testing.TB, call caller) *unsealMaterial {
	tb.Helper()
	m := &unsealMaterial{}
	cr, ok := call(context.Background(), &proto.UnsealRequest{Create: true}).(*proto.UnsealResponse)
	if !ok {
		tb.Fatal("create refused")
	}
	m.s1 = cr.Sealed
	if _, ok := call(context.Background(), &proto.UnsealRequest{Sealed: m.s1}).(*proto.UnsealResponse); !ok {
		tb.Fatal("unseal refused")
	}
	h := &handlerTarget{w: w, call: call, p: newPersisterVia(tb, call, true), sealKeyID: testKeyARN}
	h.p.maxWait = 200
	h.p.sync(tb)
	sign := func() {
		if o, _ := w.probe(tb, h.p); o != "signed" {
			tb.Fatalf("first run: a signature was refused: %s", o)
		}
	}
	sign()
	h.storeCheckpoint(tb)
	m.c1 = h.lastCheckpoint(tb, 1)
	sign()
	m.h1 = h.p.last
	// The re-wrap's answer waits for a checkpoint that holds it: the
	// persister stores checkpoints meanwhile (generation 2, and more if
	// the state changes between its polls).
	h.p.checkpoint = h.storeCheckpoint
	rot, ok := h.p.do(tb, &proto.AdminRequest{Envelope: w.adminEnvelope(tb, admin.KindSealRotate, admin.SealRotateBody{})}).(*proto.AdminResponse)
	if !ok || len(rot.Sealed) == 0 {
		tb.Fatalf("seal rotate: %v", rot)
	}
	m.s2 = rot.Sealed
	h.p.checkpoint = nil
	sign()
	h.storeCheckpoint(tb)
	sign()
	h.storeCheckpoint(tb)
	m.cLast = h.lastCheckpoint(tb, max(h.cpAck, 3))
	m.hLast, m.log = h.p.last, h.p.log
	if r, _ := audit.Unmarshal(m.hLast); r.Seq != 12 || len(m.log) != 12 || r.Kind != audit.KindTreeHead {
		tb.Fatalf("first run: %d records, last seq %d", len(m.log), r.Seq)
	}
	fw := newFuzzWorld(tb, worldOptions{label: "foreign"})
	fe := fw.newEnclave(tb)
	ar, ok := fe.Handle(context.Background(), &proto.AuditRequest{From: 1}).(*proto.AuditResponse)
	if !ok || len(ar.Records) == 0 {
		tb.Fatal("no record of the foreign enclave")
	}
	m.foreign = ar.Records[0]
	return m
}

// lastCheckpoint returns the checkpoint the host stored last, which must
// be of generation gen.
func (h *handlerTarget) lastCheckpoint(tb testing.TB, gen uint64) []byte {
	tb.Helper()
	if h.cpAck != gen || len(h.cpSealed) == 0 {
		tb.Fatalf("checkpoint: generation %d stored, want %d", h.cpAck, gen)
	}
	return h.cpSealed
}

// unsealTarget unseals enclaves of one world with host-chosen sealed
// seeds, heads and checkpoints. A locked enclave serves inputs until one
// opens the sealed seed (then the next input gets a new enclave).
type unsealTarget struct {
	w   *fuzzWorld
	m   *unsealMaterial
	e   *enclave.Enclave // locked, or nil
	pol string           // its policy, as stateOf shows it
}

func newUnsealTarget(tb testing.TB) *unsealTarget {
	w := newFuzzWorld(tb, worldOptions{sealed: true, label: "unseal"})
	return &unsealTarget{w: w, m: w.firstRun(tb)}
}

// honest is the unseal request of an honest host after the first run.
func (u *unsealTarget) honest() *proto.UnsealRequest {
	return &proto.UnsealRequest{Sealed: u.m.s2, AuditHead: u.m.hLast, Checkpoint: u.m.cLast}
}

// exec unseals a locked enclave with req. Checks, besides the answer's: a
// refused unseal (and a create) leaves the enclave locked with its policy,
// and, when the sealed seed had opened (KMS decrypted its data key, so the
// start could have begun), unchanged: the honest unseal then gives the boot
// record of a clean restart and a normal request is signed. A successful
// unseal gives a boot record that verifies under the audit key, continues
// the host's record when it is this enclave's, names the rollback of an
// older checkpoint, log or sealed seed of the first run, and when it names
// any rollback, every key is frozen.
func (u *unsealTarget) exec(t *testing.T, req *proto.UnsealRequest) {
	t.Helper()
	w, m := u.w, u.m
	w.forgetKMSCalls()
	if u.e == nil {
		u.e = w.newEnclave(t)
		u.pol = stateOf(t, u.e).policy
	}
	e := u.e
	opened := w.opened.Load()
	resp := e.Handle(context.Background(), req)
	checkAnswer(t, req, resp)
	if ur, ok := resp.(*proto.UnsealResponse); ok && !req.Create {
		u.e = nil
		u.checkUnsealed(t, e, req, ur)
		return
	}
	if ur, ok := resp.(*proto.UnsealResponse); ok && (len(ur.Sealed) == 0 || len(ur.AuditRecord) != 0) {
		t.Fatalf("create answered %d bytes of sealed seed and a record of %d bytes", len(ur.Sealed), len(ur.AuditRecord))
	}
	if st := stateOf(t, e); !strings.Contains(st.health, "State:"+enclave.StateLocked) || st.policy != u.pol {
		t.Fatalf("after a refused unseal or a create: %+v", st)
	}
	if w.opened.Load() == opened {
		return // refused before anything was opened: nothing to leave behind
	}
	u.e = nil
	ur, ok := e.Handle(context.Background(), u.honest()).(*proto.UnsealResponse)
	if !ok {
		t.Fatal("after a refused unseal, the honest one was refused")
	}
	boot, err := audit.VerifyRecord(ur.AuditRecord, ur.AuditKey)
	if err != nil || boot.Rule != "" || boot.Seq != uint64(len(m.log))+1 {
		t.Fatalf("after a refused unseal, the honest one's boot record is %+v (%v)", boot, err)
	}
	p := newPersister(t, e, false)
	if o, _ := w.probe(t, p); o != "signed" {
		t.Fatalf("after a refused unseal and the honest one, a normal request is answered %s", o)
	}
}

func (u *unsealTarget) checkUnsealed(t *testing.T, e *enclave.Enclave, req *proto.UnsealRequest, ur *proto.UnsealResponse) {
	t.Helper()
	m := u.m
	boot, err := audit.VerifyRecord(ur.AuditRecord, ur.AuditKey)
	if err != nil {
		t.Fatalf("the boot record does not verify: %v", err)
	}
	if boot.Kind != audit.KindBoot && boot.Kind != audit.KindGenesis {
		t.Fatalf("boot record of kind %s", boot.Kind)
	}
	if head, err := audit.VerifyRecord(bytes.TrimSuffix(req.AuditHead, []byte("\n")), ur.AuditKey); err == nil && boot.Seq != head.Seq+1 {
		t.Fatalf("boot record %d after the host's record %d", boot.Seq, head.Seq)
	}
	rules := audit.RollbackRules(boot)
	is := func(a, b []byte) bool { return bytes.Equal(a, b) }
	for _, c := range []struct {
		when bool
		rule string
	}{
		{is(req.Sealed, m.s1) && is(req.Checkpoint, m.cLast), refusal.RuleSeedGenerationRollback},
		{is(req.Checkpoint, m.c1) && is(req.AuditHead, m.hLast), refusal.RuleCheckpointRollback},
		{is(req.AuditHead, m.h1) && is(req.Checkpoint, m.cLast), refusal.RuleAuditRollback},
	} {
		if c.when && !slices.Contains(rules, c.rule) {
			t.Fatalf("the boot record does not name %s: rule %q, rollbacks %v:\n%s", c.rule, boot.Rule, rules, boot.Summary)
		}
	}
	if is(req.Sealed, m.s2) && is(req.AuditHead, m.hLast) && is(req.Checkpoint, m.cLast) && boot.Rule != "" {
		t.Fatalf("the honest restart's boot record has rule %s:\n%s", boot.Rule, boot.Summary)
	}
	if st := stateOf(t, e); !strings.Contains(st.health, "State:"+enclave.StateReady) || st.head < boot.Seq {
		t.Fatalf("after an unseal: %+v", st)
	}
	p := newPersister(t, e, false)
	o, _ := u.w.probe(t, p)
	switch {
	case len(rules) > 0 && o != refusal.CodePolicyDenied+"/"+refusal.RuleFrozen:
		t.Fatalf("after a boot record naming %v, a normal request is answered %s, want frozen", rules, o)
	case len(rules) == 0 && strings.Contains(boot.Summary, "charged at their worst case"):
		// A restore that lacks transactions charges them at their worst
		// case (docs/limits.md): the rolling limit may be used up.
		if o != "signed" && o != refusal.CodePolicyDenied+"/"+refusal.RuleRollingLimit {
			t.Fatalf("after a boot record charging unseen transactions, a normal request is answered %s:\n%s", o, boot.Summary)
		}
	case len(rules) == 0 && o != "signed":
		t.Fatalf("after a boot record with rule %q, a normal request is answered %s:\n%s", boot.Rule, o, boot.Summary)
	}
}

// Unseal parts: what FuzzUnseal puts in a field.
const (
	partNone    = iota // nothing
	partOld            // s1, h1, c1: of the first run, before its end
	partNew            // s2, hLast, cLast: the first run's last
	partRaw            // the fuzzed bytes
	partForeign        // a record of another enclave
	partLog            // head: record (sel/partModes) of the first run's log
	partModes
)

// Fields FuzzUnseal's edit applies to.
const (
	editNone = iota
	editSealed
	editHead
	editCheckpoint
	editFields
)

// request builds FuzzUnseal's request: each field takes a part of the
// first run's material (sel%partModes), then the field edit names is cut
// to cut%len bytes (cut > 0) and its byte at%len xored with xor.
func (u *unsealTarget) request(create bool, sealed, head, cp, edit uint8, at uint16, xor uint8, cut uint16, raw []byte) *proto.UnsealRequest {
	m := u.m
	part := func(sel uint8, old, new []byte) []byte {
		switch sel % partModes {
		case partOld:
			return old
		case partNew:
			return new
		case partRaw:
			return raw
		case partForeign:
			return m.foreign
		case partLog:
			return m.log[int(sel/partModes)%len(m.log)]
		}
		return nil
	}
	req := &proto.UnsealRequest{Create: create, Sealed: part(sealed, m.s1, m.s2), AuditHead: part(head, m.h1, m.hLast), Checkpoint: part(cp, m.c1, m.cLast)}
	var b *[]byte
	switch edit % editFields {
	case editSealed:
		b = &req.Sealed
	case editHead:
		b = &req.AuditHead
	case editCheckpoint:
		b = &req.Checkpoint
	}
	if b != nil && len(*b) > 0 {
		c := bytes.Clone(*b)
		if cut > 0 {
			c = c[:int(cut)%len(c)]
		}
		if xor != 0 && len(c) > 0 {
			c[int(at)%len(c)] ^= xor
		}
		*b = c
	}
	return req
}

func unsealSeeds() map[string][]any {
	s := func(create bool, sealed, head, cp, edit uint8, at uint16, xor uint8, cut uint16, raw []byte) []any {
		return []any{create, sealed, head, cp, edit, at, xor, cut, raw}
	}
	none := []byte(nil)
	return map[string][]any{
		"honest":               s(false, partNew, partNew, partNew, editNone, 0, 0, 0, none),
		"old checkpoint":       s(false, partNew, partNew, partOld, editNone, 0, 0, 0, none),
		"old sealed seed":      s(false, partOld, partNew, partNew, editNone, 0, 0, 0, none),
		"truncated log":        s(false, partNew, partOld, partNew, editNone, 0, 0, 0, none),
		"older record":         s(false, partNew, partLog+partModes*4, partNew, editNone, 0, 0, 0, none),
		"consistent old state": s(false, partNew, partOld, partOld, editNone, 0, 0, 0, none),
		"all old":              s(false, partOld, partOld, partOld, editNone, 0, 0, 0, none),
		"no checkpoint":        s(false, partNew, partNew, partNone, editNone, 0, 0, 0, none),
		"no head":              s(false, partNew, partNone, partNew, editNone, 0, 0, 0, none),
		"nothing but the seed": s(false, partNew, partNone, partNone, editNone, 0, 0, 0, none),
		"foreign head":         s(false, partNew, partForeign, partNew, editNone, 0, 0, 0, none),
		"head with a newline":  s(false, partNew, partRaw, partNew, editNone, 0, 0, 0, []byte("{}\n")),
		"cut head":             s(false, partNew, partNew, partNew, editHead, 0, 0, 100, none),
		"altered head":         s(false, partNew, partNew, partNew, editHead, 40, 1, 0, none),
		"cut checkpoint":       s(false, partNew, partNew, partNew, editCheckpoint, 0, 0, 64, none),
		"altered checkpoint":   s(false, partNew, partNew, partNew, editCheckpoint, 100, 0x80, 0, none),
		"checkpoint header":    s(false, partNew, partNew, partNew, editCheckpoint, 22, 1, 0, none),
		"cut sealed seed":      s(false, partNew, partNew, partNew, editSealed, 0, 0, 30, none),
		"altered sealed seed":  s(false, partNew, partNew, partNew, editSealed, 200, 4, 0, none),
		"raw sealed seed":      s(false, partRaw, partNew, partNew, editNone, 0, 0, 0, []byte("nitrosign sealed seed\n\x01")),
		"create":               s(true, partNone, partNone, partNone, editNone, 0, 0, 0, none),
		"create with a seed":   s(true, partNew, partNone, partNone, editNone, 0, 0, 0, none),
	}
}

// FuzzUnseal: the host chooses the sealed seed, its last record and the
// checkpoint, among the first run's or its own bytes, and edits one.
func FuzzUnseal(f *testing.F) {
	u := newUnsealTarget(f)
	addSeeds(f, unsealSeeds())
	f.Fuzz(func(t *testing.T, create bool, sealed, head, cp, edit uint8, at uint16, xor uint8, cut uint16, raw []byte) {
		if m := viaWire(u.request(create, sealed, head, cp, edit, at, xor, cut, raw)); m != nil {
			u.exec(t, m.(*proto.UnsealRequest))
		}
	})
}

// placeholder returns the first run's blob that name stands for ("@s1",
// "@s2", "@h1", "@hLast", "@c1", "@cLast", "@foreign", "@log1" to "@log6"),
// or name itself.
func (u *unsealTarget) placeholder(name []byte) []byte {
	m := u.m
	switch n := string(name); n {
	case "@s1":
		return m.s1
	case "@s2":
		return m.s2
	case "@h1":
		return m.h1
	case "@hLast":
		return m.hLast
	case "@c1":
		return m.c1
	case "@cLast":
		return m.cLast
	case "@foreign":
		return m.foreign
	default:
		if i, err := strconv.Atoi(strings.TrimPrefix(n, "@log")); err == nil && strings.HasPrefix(n, "@log") && i >= 1 && i <= len(m.log) {
			return m.log[i-1]
		}
	}
	return name
}

func unsealPayloadSeeds(tb testing.TB) map[string][]any {
	r := func(sealed, head, cp string) *proto.UnsealRequest {
		b := func(s string) []byte {
			if s == "" {
				return nil
			}
			return []byte(s)
		}
		return &proto.UnsealRequest{Sealed: b(sealed), AuditHead: b(head), Checkpoint: b(cp)}
	}
	return payloadSeeds(tb, map[string]proto.Message{
		"honest":               r("@s2", "@hLast", "@cLast"),
		"old checkpoint":       r("@s2", "@hLast", "@c1"),
		"old sealed seed":      r("@s1", "@hLast", "@cLast"),
		"truncated log":        r("@s2", "@h1", "@cLast"),
		"older record":         r("@s2", "@log5", "@cLast"),
		"consistent old state": r("@s2", "@h1", "@c1"),
		"no checkpoint":        r("@s2", "@hLast", ""),
		"no head":              r("@s2", "", "@cLast"),
		"foreign head":         r("@s2", "@foreign", "@cLast"),
		"raw head":             r("@s2", `{"seq":6}`, "@cLast"),
		"raw checkpoint":       r("@s2", "@hLast", "nitrosign checkpoint\n\x02"),
		"raw sealed seed":      r("nitrosign sealed seed\n\x01", "@hLast", "@cLast"),
		"create":               &proto.UnsealRequest{Create: true},
		"create with a seed":   &proto.UnsealRequest{Create: true, Sealed: []byte("@s2")},
	})
}

// FuzzHandleUnsealPayload: unseal requests, whose fields may be
// placeholders of the first run's blobs.
func FuzzHandleUnsealPayload(f *testing.F) {
	u := newUnsealTarget(f)
	addSeeds(f, unsealPayloadSeeds(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		m := decodeBody(proto.TypeUnsealRequest, body)
		if m == nil {
			return
		}
		req := m.(*proto.UnsealRequest)
		req = &proto.UnsealRequest{Create: req.Create, Sealed: u.placeholder(req.Sealed), AuditHead: u.placeholder(req.AuditHead), Checkpoint: u.placeholder(req.Checkpoint)}
		if m := viaWire(req); m != nil {
			u.exec(t, m.(*proto.UnsealRequest))
		}
	})
}

// --- the committed corpus ---

// handlerCorpus lists each target's seeds, made by the same steps as the
// target makes them (so that ids drawn from the world's randomness match).
var handlerCorpus = []struct {
	target string
	seeds  func(tb testing.TB) map[string][]any
}{
	{"FuzzHandleHealthPayload", func(tb testing.TB) map[string][]any {
		return payloadSeeds(tb, map[string]proto.Message{"health": &proto.HealthRequest{}})
	}},
	{"FuzzHandleKeysPayload", func(tb testing.TB) map[string][]any {
		return payloadSeeds(tb, map[string]proto.Message{"keys": &proto.KeysRequest{}})
	}},
	{"FuzzHandlePolicyPayload", func(tb testing.TB) map[string][]any {
		return payloadSeeds(tb, map[string]proto.Message{"policy": &proto.PolicyRequest{}})
	}},
	{"FuzzHandleAttestPayload", attestSeeds},
	{"FuzzHandleSignPayload", func(tb testing.TB) map[string][]any {
		return signSeeds(tb, newHandlerTarget(tb, worldOptions{}).w)
	}},
	{"FuzzHandleCredentialsPayload", credentialsSeeds},
	{"FuzzHandleCheckpointPayload", checkpointPayloadSeeds},
	{"FuzzCheckpointAck", func(testing.TB) map[string][]any { return checkpointAckSeeds() }},
	{"FuzzHandleAdminPayload", adminPayloadSeeds},
	{"FuzzAdminCommand", func(testing.TB) map[string][]any { return adminCommandSeeds() }},
	{"FuzzHandleApprovalPayload", func(tb testing.TB) map[string][]any {
		return approvalPayloadSeeds(tb, newApprovalTarget(tb))
	}},
	{"FuzzApproval", func(testing.TB) map[string][]any { return approvalSeeds() }},
	{"FuzzHandleApprovalInfoPayload", func(tb testing.TB) map[string][]any {
		return approvalInfoPayloadSeeds(tb, newApprovalTarget(tb))
	}},
	{"FuzzApprovalInfo", func(testing.TB) map[string][]any { return approvalInfoSeeds() }},
	{"FuzzHandleAuditPayload", auditPayloadSeeds},
	{"FuzzAuditAck", func(testing.TB) map[string][]any { return auditAckSeeds() }},
	{"FuzzUnseal", func(testing.TB) map[string][]any { return unsealSeeds() }},
	{"FuzzHandleUnsealPayload", unsealPayloadSeeds},
}

// updatingCorpus reports whether -update-corpus was given (the flag is
// declared by seal_fuzz_test.go, in package enclave).
func updatingCorpus() bool {
	f := flag.Lookup("update-corpus")
	return f != nil && f.Value.String() == "true"
}

const handlerCorpusHow = "go test ./enclave -run TestHandlerFuzzCorpus -update-corpus"

// TestHandlerFuzzCorpus keeps testdata/fuzz/<target>/seed_* in step with
// the seeds above: every seed has its file with its exact contents, and no
// file is left of a seed that is gone. Files without the prefix (inputs
// the fuzzer found) are left alone.
func TestHandlerFuzzCorpus(t *testing.T) {
	update := updatingCorpus()
	for _, c := range handlerCorpus {
		t.Run(c.target, func(t *testing.T) {
			want := map[string]bool{}
			for name, args := range c.seeds(t) {
				path := fuzzseed.Path(c.target, fuzzseed.FileName("seed_"+name, '_'))
				if want[path] {
					t.Fatalf("two seeds named %s", path)
				}
				want[path] = true
				if update {
					fuzzseed.WriteFile(t, path, args...)
					continue
				}
				enc, err := fuzzseed.Encode(args...)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, enc) {
					t.Errorf("%s is missing or stale; run %s", path, handlerCorpusHow)
				}
			}
			old, _ := filepath.Glob(fuzzseed.Path(c.target, "seed_*"))
			for _, path := range old {
				switch {
				case want[path]:
				case update:
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
				default:
					t.Errorf("%s is no longer a seed: remove it, or run %s", path, handlerCorpusHow)
				}
			}
		})
	}
}
