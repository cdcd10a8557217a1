package enclave_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/enclave/keys"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/keypath"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

var (
	destA = "0x1111111111111111111111111111111111111111"
	destB = "0x2222222222222222222222222222222222222222"
)

type fixture struct {
	e *enclave.Enclave
	// now is the test's clock; move it with setNow. The enclave reads
	// clock (Config.Now: clockNow), from other goroutines too: every audit
	// poll of the ackHost ticks (Enclave.tick), which reads the time.
	now    time.Time
	clock  atomic.Pointer[time.Time]
	seed   []byte
	hot    stamp.Signer // may use hot-0
	other  stamp.Signer // may use cold-1 only (P-256)
	seqIDs int
	host   *ackHost // acknowledges the enclave's audit records
}

// setNow moves the fixture's clock, for the test and the enclave.
func (f *fixture) setNow(t time.Time) {
	f.now = t
	f.clock.Store(&t)
}

// clockNow is the enclave's clock (Config.Now): the time last set with
// setNow.
func (f *fixture) clockNow() time.Time { return *f.clock.Load() }

func genesisJSON(t testing.TB, hot, other stamp.PublicKey) []byte {
	t.Helper()
	g := map[string]any{
		"format": 1,
		"keys": []map[string]string{
			{"id": "hot-0", "path": "m/44'/60'/0'/0/0"},
			{"id": "cold-1", "path": "m/44'/60'/0'/0/1"},
		},
		"policy": map[string]any{
			"version": 7,
			"clients": []map[string]any{
				{"name": "hot-client", "scheme": string(hot.Scheme), "public_key": hex.EncodeToString(hot.Key), "keys": []string{"hot-0"}},
				{"name": "other-client", "scheme": string(other.Scheme), "public_key": hex.EncodeToString(other.Key), "keys": []string{"cold-1"}},
			},
			"keys": []map[string]any{
				{"key": "hot-0", "chains": []uint64{1, 11155111}, "native_transfers": map[string]any{
					"destinations":            []map[string]string{{"address": destA, "label": "A"}, {"address": destB, "label": "B"}},
					"max_per_transaction_wei": "1000000000000000000",
				},
					"personal_messages": true,
					"typed_data": map[string]any{"domains": []map[string]any{
						{"name": "Ether Mail", "version": "1", "chain_id": 1, "verifying_contract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
					}},
				},
				{"key": "cold-1", "chains": []uint64{1}},
			},
		},
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, 0) }

// newFixtureWith makes a fixture whose enclave keeps at most maxUnacked
// unacknowledged audit records (0: the default).
func newFixtureWith(t testing.TB, maxUnacked int) *fixture {
	t.Helper()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hot, err := stamp.NewEd25519Signer(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, err := stamp.NewP256Signer(p256)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{now: time.UnixMilli(1_800_000_000_000), hot: hot, other: other}
	f.setNow(f.now) // the clock the enclave reads
	f.seed = bytes.Repeat([]byte{0x5a}, 32)
	f.e, err = enclave.New(enclave.Config{
		Genesis:         genesisJSON(t, hot.PublicKey(), other.PublicKey()),
		Rand:            io.MultiReader(bytes.NewReader(f.seed), rand.Reader),
		Now:             f.clockNow,
		MaxUnackedAudit: maxUnacked,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.host = startAcks(t, f.e)
	return f
}

func (f *fixture) body(t testing.TB, key string, unsigned []byte, ts int64) []byte {
	t.Helper()
	f.seqIDs++
	b, err := json.Marshal(api.SignRequest{
		RequestID:      fmt.Sprintf("req-%d", f.seqIDs),
		TimestampMS:    ts,
		Key:            key,
		EthTransaction: api.NewEthTransaction(unsigned),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) send(t testing.TB, s stamp.Signer, body []byte) proto.Message {
	t.Helper()
	h, err := stamp.Create(s, body)
	if err != nil {
		t.Fatal(err)
	}
	return f.e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: h})
}

func transfer(t testing.TB, chain int64, to string, wei *big.Int) []byte {
	t.Helper()
	a, err := ethtx.ParseAddress(to)
	if err != nil {
		t.Fatal(err)
	}
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(chain), Nonce: 1, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &a, Value: wei}
	return tx.EncodeUnsigned()
}

func transferWithData(t testing.TB, to string, data []byte) []byte {
	t.Helper()
	a, err := ethtx.ParseAddress(to)
	if err != nil {
		t.Fatal(err)
	}
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 60000,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &a, Value: new(big.Int), Data: data}
	return tx.EncodeUnsigned()
}

// erc20Transfer is the calldata of transfer(to, amount).
func erc20Transfer(to string, amount int64) []byte {
	a, _ := ethtx.ParseAddress(to)
	b := []byte{0xa9, 0x05, 0x9c, 0xbb}
	b = append(b, make([]byte, 12)...)
	b = append(b, a[:]...)
	return append(b, new(big.Int).SetInt64(amount).FillBytes(make([]byte, 32))...)
}

func TestKeysAreBIP32ChildrenOfTheSeed(t *testing.T) {
	f := newFixture(t)
	resp := f.e.Handle(context.Background(), &proto.KeysRequest{})
	kr, ok := resp.(*proto.KeysResponse)
	if !ok {
		t.Fatalf("keys answer %T", resp)
	}
	master, err := keys.NewMaster(f.seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(kr.Keys) != 2 {
		t.Fatalf("%d keys, want 2", len(kr.Keys))
	}
	for i, k := range kr.Keys {
		p, _ := keypath.ParsePath(k.Path)
		xk, err := master.Derive(p)
		if err != nil {
			t.Fatal(err)
		}
		want := ethtx.PubkeyToAddress(xk.PublicKey())
		if k.Address != want {
			t.Errorf("key %d %s at %s: address %x, BIP-32 gives %s", i, k.ID, k.Path, k.Address, want.Hex())
		}
	}
	if kr.Keys[0].Address == kr.Keys[1].Address {
		t.Error("two paths gave one address")
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t)
	h, ok := f.e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse)
	if !ok {
		t.Fatal("health answer of the wrong type")
	}
	if h.Keys != 2 || h.PolicyVersion != 7 || h.Version != enclave.Version || h.StartedUnixMS != f.now.UnixMilli() {
		t.Fatalf("health = %+v", h)
	}
}

func TestSignAndVerify(t *testing.T) {
	f := newFixture(t)
	unsigned := transfer(t, 1, destA, big.NewInt(123))
	resp := f.send(t, f.hot, f.body(t, "hot-0", unsigned, f.now.UnixMilli()))
	sr, ok := resp.(*proto.SignResponse)
	if !ok {
		t.Fatalf("answer %T %+v", resp, resp)
	}
	tx, err := ethtx.DecodeUnsigned(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ethtx.RecoverAddress(tx.SigningHash(), sr.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if got != sr.From {
		t.Errorf("signature recovers %s, answer says from %x", got.Hex(), sr.From)
	}
	if !bytes.Equal(sr.SignedTransaction, tx.EncodeSigned(sr.Signature)) {
		t.Error("signed_transaction is not the transaction with its signature")
	}
	if sr.TransactionHash != ethtx.TransactionHash(sr.SignedTransaction) {
		t.Error("transaction_hash is not keccak(signed_transaction)")
	}
	// Seq 1 is the boot record, 2 the tree head of its batch; the first
	// decision is 3.
	if sr.AuditSeq != 3 {
		t.Errorf("first decision has audit_seq %d, want 3", sr.AuditSeq)
	}
	if _, err := audit.VerifyRecord(sr.AuditRecord, f.e.UserData().AuditKey); err == nil {
		t.Error("a decision record carries a signature of its own")
	}
	var rec audit.Record
	for _, r := range checkedRecords(t, recordsOf(t, f.e), f.e.UserData().AuditKey) {
		if r.Seq == sr.AuditSeq {
			rec = r
		}
	}
	if again, _ := audit.Marshal(rec); !bytes.Equal(again, sr.AuditRecord) {
		t.Fatalf("the answer's record is not the log's record %d", sr.AuditSeq)
	}
	if rec.Seq != sr.AuditSeq || rec.Decision != audit.DecisionSigned || rec.Key != "hot-0" || !strings.Contains(rec.Summary, "EIP-1559 transaction") || len(rec.RequestDigest) != 32 {
		t.Errorf("audit record %+v", rec)
	}
	// RFC 6979: the same transaction signs to the same signature.
	again := f.send(t, f.hot, f.body(t, "hot-0", unsigned, f.now.UnixMilli())).(*proto.SignResponse)
	if again.Signature != sr.Signature || again.AuditSeq != 5 {
		t.Errorf("second signature differs or seq %d != 5 (after the first's tree head)", again.AuditSeq)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	now := f.now.UnixMilli()
	ok := transfer(t, 1, destA, big.NewInt(1))
	for _, tc := range []struct {
		name   string
		signer stamp.Signer
		key    string
		tx     []byte
		ts     int64
		code   string
		rule   string
		msg    string
	}{
		{"oldest accepted age is refused just past it", f.hot, "hot-0", ok, now - enclave.MaxRequestAge.Milliseconds() - 1, refusal.CodeStaleRequest, "", "old"},
		{"too far in the future", f.hot, "hot-0", ok, now + enclave.MaxClockSkew.Milliseconds() + 1, refusal.CodeStaleRequest, "", "future"},
		{"before the enclave started", f.hot, "hot-0", ok, now - 1, refusal.CodeStaleRequest, "", "before the enclave started"},
		{"client may not use the key", f.hot, "cold-1", ok, now, refusal.CodePolicyDenied, "client_keys", "may not use"},
		{"key without native transfers", f.other, "cold-1", ok, now, refusal.CodePolicyDenied, "native_transfers", ""},
		{"unknown key id", f.hot, "warm-2", ok, now, refusal.CodeUnknownKey, "", "warm-2"},
		{"bad address as key", f.hot, "0x12", ok, now, refusal.CodeBadRequest, "", "key"},
		{"over the limit", f.hot, "hot-0", transfer(t, 1, destB, new(big.Int).Add(big.NewInt(1e18), big.NewInt(1))), now, refusal.CodePolicyDenied, "max_per_transaction", "exceeds"},
		{"wrong chain", f.hot, "hot-0", transfer(t, 10, destB, big.NewInt(1)), now, refusal.CodePolicyDenied, "chains", "chain 10"},
		{"not allowlisted", f.hot, "hot-0", transfer(t, 1, "0x000000000000000000000000000000000000dEaD", big.NewInt(1)), now, refusal.CodePolicyDenied, "destinations", "0x000000000000000000000000000000000000dEaD"},
		{"trailing byte", f.hot, "hot-0", append(append([]byte{}, ok...), 0), now, refusal.CodeBadRequest, "", "ethtx"},
		{"unknown type 0x05", f.hot, "hot-0", []byte{0x05, 0xc0}, now, refusal.CodeUnsupportedTransactionType, "", "0x05"},
		{"malformed EIP-2930", f.hot, "hot-0", []byte{0x01, 0xc0}, now, refusal.CodeBadRequest, "", "want 8 fields"},
		{"malformed calldata", f.hot, "hot-0", transferWithData(t, destA, []byte{0xa9, 0x05, 0x9c, 0xbb, 1}), now, refusal.CodeBadRequest, "", "calldata: transfer"},
		{"ERC-20 transfer: no contract-call rule", f.hot, "hot-0", transferWithData(t, destA, erc20Transfer(destB, 5)), now, refusal.CodePolicyDenied, "calldata", "call transfer(address,uint256)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.send(t, tc.signer, f.body(t, tc.key, tc.tx, tc.ts))
			e, isErr := resp.(*proto.Error)
			if !isErr {
				t.Fatalf("answer %T, want a refusal", resp)
			}
			if e.Code != tc.code || e.Rule != tc.rule || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("refusal %+v, want code %s rule %q message containing %q", e, tc.code, tc.rule, tc.msg)
			}
		})
	}
}

func TestOldestAcceptedTimestamp(t *testing.T) {
	f := newFixture(t)
	start := f.now
	f.setNow(start.Add(enclave.MaxRequestAge + time.Minute))
	// Exactly MaxRequestAge old, and after the start: accepted.
	ts := f.now.Add(-enclave.MaxRequestAge).UnixMilli()
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), ts)).(*proto.SignResponse); !ok {
		t.Fatal("a request exactly MaxRequestAge old was refused")
	}
	ts = f.now.Add(enclave.MaxClockSkew).UnixMilli()
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), ts)).(*proto.SignResponse); !ok {
		t.Fatal("a request exactly MaxClockSkew ahead was refused")
	}
}

func TestReplayRefusedEvenAfterPolicyRefusal(t *testing.T) {
	f := newFixture(t)
	b := f.body(t, "hot-0", transfer(t, 99, destA, big.NewInt(1)), f.now.UnixMilli())
	if e, ok := f.send(t, f.hot, b).(*proto.Error); !ok || e.Code != refusal.CodePolicyDenied {
		t.Fatalf("first: %+v", e)
	}
	if e, ok := f.send(t, f.hot, b).(*proto.Error); !ok || e.Code != refusal.CodeReplayedRequest {
		t.Fatalf("replay: %+v, want replayed_request", e)
	}
}

func TestStampFailures(t *testing.T) {
	f := newFixture(t)
	b := f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())
	h, _ := stamp.Create(f.hot, b)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := stamp.NewEd25519Signer(strangerKey)
	sh, _ := stamp.Create(stranger, b)
	for _, tc := range []struct {
		name  string
		body  []byte
		stamp string
		msg   string
	}{
		{"missing", b, "", "missing"},
		{"garbage", b, "e30", "stamp"},
		{"other body", append(append([]byte{}, b...), ' '), h, "stamp"},
		{"unregistered", b, sh, "not registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.e.Handle(context.Background(), &proto.SignRequest{Body: tc.body, Stamp: tc.stamp})
			e, ok := resp.(*proto.Error)
			if !ok || e.Code != refusal.CodeUnauthorized || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("answer %+v, want unauthorized mentioning %q", resp, tc.msg)
			}
		})
	}
	// None of these consumed a decision number.
	ok := f.send(t, f.hot, b).(*proto.SignResponse)
	if ok.AuditSeq != 3 {
		t.Errorf("audit_seq %d after refused stamps, want 3 (after the boot record and its tree head)", ok.AuditSeq)
	}
}

func TestReplayCapacityFailsClosed(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(edPriv)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := stamp.NewP256Signer(p256)
	now := time.UnixMilli(1_800_000_000_000)
	e, err := enclave.New(enclave.Config{
		Genesis:          genesisJSON(t, hot.PublicKey(), other.PublicKey()),
		Now:              func() time.Time { return now },
		MaxReplayEntries: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	startAcks(t, e)
	f := &fixture{e: e, now: now, hot: hot}
	for i := range 3 {
		resp := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), now.UnixMilli()))
		_, signed := resp.(*proto.SignResponse)
		if i < 2 && !signed {
			t.Fatalf("request %d refused: %+v", i, resp)
		}
		if i == 2 {
			if pe, ok := resp.(*proto.Error); !ok || pe.Code != refusal.CodeUnavailable {
				t.Fatalf("request over capacity: %+v, want unavailable", resp)
			}
		}
	}
}

func TestGenesisRefusals(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(edPriv)
	good := genesisJSON(t, hot.PublicKey(), hot.PublicKey()) // duplicate client key: refused below
	for _, tc := range []struct {
		name, genesis, msg string
	}{
		{"empty", ``, "genesis"},
		{"not an object", `[]`, "genesis"},
		{"wrong format", `{"format":2,"keys":[],"policy":{}}`, "format 2"},
		{"no keys", `{"format":1,"keys":[],"policy":{}}`, "keys"},
		{"bad path", `{"format":1,"keys":[{"id":"a","path":"m/x"}],"policy":{}}`, "keys[0].path"},
		{"id like an address", `{"format":1,"keys":[{"id":"0xabc","path":"m/0"}],"policy":{}}`, "0x"},
		{"duplicate id", `{"format":1,"keys":[{"id":"a","path":"m/0"},{"id":"a","path":"m/1"}],"policy":{}}`, "twice"},
		{"duplicate path", `{"format":1,"keys":[{"id":"a","path":"m/0'"},{"id":"b","path":"m/0h"}],"policy":{}}`, "twice"},
		{"unknown field", `{"format":1,"keys":[{"id":"a","path":"m/0"}],"policy":{},"extra":1}`, "extra"},
		{"duplicate field", `{"format":1,"format":1,"keys":[{"id":"a","path":"m/0"}],"policy":{}}`, "duplicate"},
		{"policy missing", `{"format":1,"keys":[{"id":"a","path":"m/0"}]}`, "policy"},
		{"audit backlog 0", `{"format":1,"keys":[{"id":"a","path":"m/0"}],"policy":{},"audit":{"max_unacknowledged":0}}`, "max_unacknowledged"},
		{"audit unknown field", `{"format":1,"keys":[{"id":"a","path":"m/0"}],"policy":{},"audit":{"max":5}}`, "max"},
		{"same client key twice", string(good), "registered twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := enclave.New(enclave.Config{Genesis: []byte(tc.genesis)})
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.msg)
			}
		})
	}
}

func TestUnexpectedMessage(t *testing.T) {
	f := newFixture(t)
	resp := f.e.Handle(context.Background(), &proto.KeysResponse{})
	if e, ok := resp.(*proto.Error); !ok || e.Code != refusal.CodeBadRequest {
		t.Fatalf("answer to a response message: %+v", resp)
	}
}
