package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

// contractC is a contract whose function 0xdeadbeef key open-0 may call,
// and the verifying contract of the typed-data domain it may sign.
const contractC = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"

// oversizeFixture is an enclave with three keys: open-0, which allows
// every kind of request (native transfers, personal messages, typed data of
// one domain, calls of one function), shut-1, which allows none, both used
// by the client "big"; and side-2, used by the client "side" for the normal
// requests that must keep working. An ackHost persists and acknowledges
// its records; persist checks them.
type oversizeFixture struct {
	e         *enclave.Enclave
	now       time.Time
	big, side stamp.Signer
	n         int
	auditKey  []byte
	kept      int        // records of the ackHost checked so far
	persisted audit.Head // the last record checked
	log       bytes.Buffer
	last      []byte // the last record persisted but tree heads
}

func newOversize(t *testing.T, edit func(open, shut *policy.KeyRule)) *oversizeFixture {
	t.Helper()
	signer := func() stamp.Signer {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := stamp.NewEd25519Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := &oversizeFixture{now: time.UnixMilli(1_800_000_000_000), big: signer(), side: signer()}
	open := policy.KeyRule{
		Key: "open-0", Chains: []uint64{1},
		NativeTransfers: &policy.NativeTransfers{
			// destB's label is all quote marks: 128 bytes that take 516 in
			// the record.
			Destinations:         []policy.Destination{{Address: destA, Label: "A"}, {Address: destB, Label: strings.Repeat(`"`, 128)}},
			MaxPerTransactionWei: ether(1).String(),
		},
		PersonalMessages: true,
		TypedData:        &policy.TypedDataRule{Domains: []policy.TypedDataDomain{{Name: "Big", Version: "1", ChainID: 1, VerifyingContract: contractC}}},
		ChainRules: []policy.ChainRule{{ChainID: 1, Contracts: []policy.ContractRule{{
			Address: contractC, Label: "C", Functions: []policy.FunctionRule{{Selector: "0xdeadbeef", MaxValueWei: ether(1).String()}},
		}}}},
	}
	shut := policy.KeyRule{Key: "shut-1", Chains: []uint64{1}}
	if edit != nil {
		edit(&open, &shut)
	}
	side := policy.KeyRule{Key: "side-2", Chains: []uint64{1}, NativeTransfers: &policy.NativeTransfers{
		Destinations: []policy.Destination{{Address: destA, Label: "A"}}, MaxPerTransactionWei: ether(1).String(),
	}}
	client := func(name string, s stamp.Signer, keys ...string) policy.Client {
		return policy.Client{Name: name, Scheme: "ed25519", PublicKey: hex.EncodeToString(s.PublicKey().Key), Keys: keys}
	}
	pol, err := json.Marshal(policy.Document{
		Version: 1,
		Clients: []policy.Client{client("big", f.big, "open-0", "shut-1"), client("side", f.side, "side-2")},
		Keys:    []policy.KeyRule{open, shut, side},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := json.Marshal(map[string]any{
		"format": 1,
		"keys": []map[string]string{
			{"id": "open-0", "path": "m/44'/60'/0'/0/0"}, {"id": "shut-1", "path": "m/44'/60'/0'/0/1"}, {"id": "side-2", "path": "m/44'/60'/0'/0/2"},
		},
		"policy": json.RawMessage(pol),
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.e, err = enclave.New(enclave.Config{Genesis: g, Now: func() time.Time { return f.now }}); err != nil {
		t.Fatal(err)
	}
	startAcks(t, f.e)
	if recs := f.persist(t); len(recs) != 1 || recs[0].Seq != 1 {
		t.Fatalf("at start: %d records", len(recs))
	}
	return f
}

// persist returns the records the host persisted since the last call but
// the tree heads, once it holds every record up to the enclave's head, and
// checks that each record (tree heads included) continues the chain and
// fits in the protocol.
func (f *oversizeFixture) persist(t *testing.T) []audit.Record {
	t.Helper()
	st := f.e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse)
	f.auditKey = st.Key
	lines := recordsOf(t, f.e)
	var recs []audit.Record
	for _, line := range lines[f.kept:] {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		if len(line) > proto.MaxAuditRecordLen {
			t.Fatalf("record %d of %d bytes cannot cross the protocol", r.Seq, len(line))
		}
		if r.Seq != f.persisted.Seq+1 || r.Prev != f.persisted.Hash {
			t.Fatalf("record %d does not continue the host's head %v", r.Seq, f.persisted)
		}
		f.persisted = audit.Head{Seq: r.Seq, Hash: sha256.Sum256(line)}
		f.log.Write(line)
		f.log.WriteByte('\n')
		if r.Kind != audit.KindTreeHead {
			recs = append(recs, r)
			f.last = line
		}
	}
	f.kept = len(lines)
	if f.persisted.Seq != st.HeadSeq || f.persisted.Hash != st.HeadHash {
		t.Fatalf("the enclave's head %d:%x is not the host's %v", st.HeadSeq, st.HeadHash, f.persisted)
	}
	return recs
}

// verify checks the whole log the host holds.
func (f *oversizeFixture) verify(t *testing.T) {
	t.Helper()
	head := f.persisted
	rep, err := audit.Verify(bytes.NewReader(f.log.Bytes()), f.auditKey, audit.VerifyOptions{ExpectHead: &head})
	if err != nil {
		t.Fatalf("the log does not verify: %v", err)
	}
	if uint64(rep.Records) != head.Seq {
		t.Fatalf("%d records verified, head %d", rep.Records, head.Seq)
	}
}

// body builds a sign request body with the payload field given as JSON.
func (f *oversizeFixture) body(t *testing.T, key, field string, payload []byte) []byte {
	t.Helper()
	f.n++
	b := fmt.Appendf(nil, `{"request_id":"req-%d","timestamp_ms":%d,"key":%q,%q:%s}`, f.n, f.now.UnixMilli(), key, field, payload)
	if len(b) > api.MaxBodySize {
		t.Fatalf("test body of %d bytes, over the body cap %d", len(b), api.MaxBodySize)
	}
	return b
}

// sign sends a stamped body, as the host forwards it, and checks that the
// answer can cross the protocol back.
func (f *oversizeFixture) sign(t *testing.T, s stamp.Signer, body []byte) proto.Message {
	t.Helper()
	h, err := stamp.Create(s, body)
	if err != nil {
		t.Fatal(err)
	}
	m := f.e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: h})
	if _, err := proto.Marshal(1, m); err != nil {
		t.Fatalf("the answer cannot be sent back: %v", err)
	}
	return m
}

// normal has client side sign a small transfer, and checks that it is
// signed and recorded: one more record, and only one.
func (f *oversizeFixture) normal(t *testing.T) {
	t.Helper()
	sr := wantSigned(t, f.sign(t, f.side, f.body(t, "side-2", "eth_transaction", txPayload(transfer(t, 1, destA, big.NewInt(1))))))
	recs := f.persist(t)
	if len(recs) != 1 || recs[0].Seq != sr.AuditSeq || recs[0].Key != "side-2" || recs[0].Decision != audit.DecisionSigned {
		t.Fatalf("after a normal request: %d records, %+v", len(recs), recs)
	}
}

func txPayload(unsigned []byte) []byte {
	b, _ := json.Marshal(api.NewEthTransaction(unsigned))
	return b
}

func personalPayload(msg []byte) []byte {
	return []byte(`{"message":"0x` + hex.EncodeToString(msg) + `"}`)
}

// typedPayload is typed data of the domain open-0 may sign, whose message
// is one field v of type typ holding value (JSON).
func typedPayload(typ, value string) []byte {
	return []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],` +
		`"Blob":[{"name":"v","type":"` + typ + `"}]},"primaryType":"Blob",` +
		`"domain":{"name":"Big","version":"1","chainId":1,"verifyingContract":"` + contractC + `"},"message":{"v":` + value + `}}`)
}

// jsonArray is a JSON array of n copies of the JSON value v.
func jsonArray(v string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + "]"
}

func callTx(t *testing.T, to *ethtx.Address, data []byte) []byte {
	t.Helper()
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 5_000_000,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: to, Value: new(big.Int), Data: data}
	return tx.EncodeUnsigned()
}

// TestOversizedRequests: requests of every kind, as large as the API lets a
// registered client send, each to a key that allows it and to one that
// refuses it. Each is answered, with a signature or a refusal whose record
// fits in the protocol, its long values shortened, or with 400 and no
// record; the log stays one chain, one record per decision; and a normal
// request of another client is signed after it.
func TestOversizedRequests(t *testing.T) {
	c := mustAddress(t, contractC)
	zeros := make([]byte, 13200) // the message the issue reported: 5 bytes each in the record
	var controls strings.Builder
	for i := range 250 {
		fmt.Fprintf(&controls, `\u%04x`, i%0x20)
	}
	for _, tc := range []struct {
		name    string
		field   string
		payload []byte
		// allowed and refused are the rules that decide the request for
		// open-0 and shut-1: "" signs, badRequest is a 400 of the decoder.
		allowed, refused string
		// shortened: the summary shows a value shortened; truncated: it
		// leaves lines out.
		shortened, truncated bool
	}{
		{"personal message of 13200 zero bytes", "eth_personal_message", personalPayload(zeros), "", refusal.RulePersonalMessages, true, false},
		{"personal message of zero bytes at the decoder's cap", "eth_personal_message", personalPayload(make([]byte, ethmsg.MaxPersonalMessage)), "", refusal.RulePersonalMessages, true, false},
		{"personal message of quote marks", "eth_personal_message", personalPayload(bytes.Repeat([]byte{'"'}, ethmsg.MaxPersonalMessage)), "", refusal.RulePersonalMessages, true, false},
		{"personal message not UTF-8", "eth_personal_message", personalPayload(bytes.Repeat([]byte{0xff}, ethmsg.MaxPersonalMessage)), "", refusal.RulePersonalMessages, true, false},
		{"personal message over the decoder's cap", "eth_personal_message", personalPayload(make([]byte, ethmsg.MaxPersonalMessage+1)), badRequest, badRequest, false, false},
		{"typed data full of quote marks", "eth_typed_data", typedPayload("string[]", jsonArray(`"`+strings.Repeat(`\"`, 300)+`"`, 400)), "", refusal.RuleTypedDataDomains, true, true},
		{"typed data full of control characters", "eth_typed_data", typedPayload("string[]", jsonArray(`"`+controls.String()+`"`, 160)), "", refusal.RuleTypedDataDomains, true, true},
		{"typed data of one long string", "eth_typed_data", typedPayload("string", `"`+strings.Repeat("x", 240_000)+`"`), "", refusal.RuleTypedDataDomains, true, false},
		// The policy's refusal names the domain: the answer must still
		// carry its record.
		{"typed data of a long domain name", "eth_typed_data", []byte(strings.Replace(string(typedPayload("string", `"x"`)), `"name":"Big"`, `"name":"`+strings.Repeat(`\"`, 100_000)+`"`, 1)), refusal.RuleTypedDataDomains, refusal.RuleTypedDataDomains, true, false},
		{"typed data of big bytes arrays", "eth_typed_data", typedPayload("bytes[]", jsonArray(`"0x`+strings.Repeat("ab", 1200)+`"`, 100)), "", refusal.RuleTypedDataDomains, true, true},
		{"transaction with huge calldata", "eth_transaction", txPayload(callTx(t, &c, append([]byte{0xde, 0xad, 0xbe, 0xef}, make([]byte, 120_000)...))), "", refusal.RuleCalldata, false, false},
		// No policy allows a contract creation: both keys refuse it.
		{"transaction with huge init code", "eth_transaction", txPayload(callTx(t, nil, make([]byte, 120_000))), refusal.RuleContractCreation, refusal.RuleContractCreation, false, false},
	} {
		for _, k := range []struct{ key, rule string }{{"open-0", tc.allowed}, {"shut-1", tc.refused}} {
			t.Run(tc.name+" to "+k.key, func(t *testing.T) {
				f := newOversize(t, nil)
				body := f.body(t, k.key, tc.field, tc.payload)
				resp := f.sign(t, f.big, body)
				recs := f.persist(t)
				if k.rule == badRequest {
					if pe, ok := resp.(*proto.Error); !ok || pe.Code != refusal.CodeBadRequest || len(pe.AuditRecord) != 0 || len(recs) != 0 {
						t.Fatalf("answer %.300v with %d records, want 400 and none", resp, len(recs))
					}
					f.normal(t)
					f.verify(t)
					return
				}
				var line []byte
				switch r := resp.(type) {
				case *proto.SignResponse:
					if k.rule != "" || r.Status != "" {
						t.Fatalf("signed (status %q), want a refusal by %s", r.Status, k.rule)
					}
					line = r.AuditRecord
				case *proto.Error:
					if r.Code != refusal.CodePolicyDenied || r.Rule != k.rule {
						t.Fatalf("refused %s/%s: %.300s; want rule %q", r.Code, r.Rule, r.Message, k.rule)
					}
					line = r.AuditRecord
				default:
					t.Fatalf("answer %T", resp)
				}
				if len(recs) != 1 {
					t.Fatalf("%d records for one decision", len(recs))
				}
				want := audit.DecisionSigned
				if k.rule != "" {
					want = audit.DecisionRefused
				}
				r := recs[0]
				d := sha256.Sum256(body)
				switch {
				case !bytes.Equal(line, f.last):
					t.Fatal("the answer's record is not the one persisted")
				case len(line) > proto.MaxAuditRecordLen:
					t.Fatalf("record of %d bytes", len(line))
				case audit.EscapedLen(r.Summary) > summary.MaxSize:
					t.Fatalf("summary of %d escaped bytes", audit.EscapedLen(r.Summary))
				case r.Decision != want || r.Rule != k.rule || r.Key != k.key || !bytes.Equal(r.RequestDigest, d[:]):
					t.Fatalf("record %s/%s of key %s, want %s/%s of %s", r.Decision, r.Rule, r.Key, want, k.rule, k.key)
				case tc.shortened != strings.Contains(r.Summary, `... (`) || tc.shortened && !strings.Contains(r.Summary, ", sha256 "),
					tc.truncated != strings.Contains(r.Summary, "\ntruncated: "):
					t.Fatalf("want shortened %t, truncated %t; summary:\n%.1500s", tc.shortened, tc.truncated, r.Summary)
				case !strings.Contains(r.Summary, "\ndigest: 0x"):
					t.Fatalf("the digest line is missing:\n%.1500s", r.Summary)
				}
				f.normal(t)
				f.verify(t)
			})
		}
	}
}

// badRequest in TestOversizedRequests: the decoder refuses the request.
const badRequest = "(bad request)"

func mustAddress(t *testing.T, s string) ethtx.Address {
	t.Helper()
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRecordTooLargeRefused: a request whose record would exceed the cap,
// whichever path it takes (signed, held for approvals, refused by the
// policy), is answered 400 record_too_large with no record, and nothing
// else happens: no limit reservation is kept (the velocity of one
// transaction is still free), no refusal counts toward a freeze, and the
// chain is untouched. Its request_id stays used. The enclave's cap is
// lowered to reach it with small requests: with the real cap, bounded
// summaries keep every record of these requests below it (see
// TestOversizedRequests).
func TestRecordTooLargeRefused(t *testing.T) {
	ap := newApprovers(t, 1)
	f := newOversize(t, func(open, shut *policy.KeyRule) {
		open.Velocity = &stateful.VelocityRule{Window: "1h", MaxTransactions: 1}
		open.Approvals = ap.rule(1, milliEther(500))
		shut.Freeze = &stateful.FreezeRule{Refusals: 2, Window: "1h", Scope: "key"}
	})
	// A normal record, and a cap a little above it: a transfer to destA
	// fits, one to destB (whose label takes 516 bytes) does not.
	f.normal(t)
	normalLen := len(f.last)
	enclave.SetMaxAuditRecordLen(f.e, normalLen+200)

	tooLarge := func(t *testing.T, m proto.Message) {
		t.Helper()
		pe, ok := m.(*proto.Error)
		if !ok || pe.Code != refusal.CodeBadRequest || pe.Rule != refusal.RuleRecordTooLarge || len(pe.AuditRecord) != 0 ||
			!strings.Contains(pe.Message, fmt.Sprintf("limit %d", normalLen+200)) || refusal.Status(pe.Code) != 400 {
			t.Fatalf("answer %#v, want 400 %s", m, refusal.RuleRecordTooLarge)
		}
		head := f.persisted
		if recs := f.persist(t); len(recs) != 0 || f.persisted != head {
			t.Fatalf("a refusal for size left %d records", len(recs))
		}
	}
	pay := func(to string, wei *big.Int) []byte {
		return f.body(t, "open-0", "eth_transaction", txPayload(transfer(t, 1, to, wei)))
	}
	say := func(msg string) []byte {
		return f.body(t, "shut-1", "eth_personal_message", personalPayload([]byte(msg)))
	}

	t.Run("signed", func(t *testing.T) {
		tooLarge(t, f.sign(t, f.big, pay(destB, milliEther(100))))
	})
	var replay []byte
	t.Run("held for approvals", func(t *testing.T) {
		replay = pay(destB, milliEther(900))
		tooLarge(t, f.sign(t, f.big, replay))
	})
	t.Run("no reservation kept", func(t *testing.T) {
		wantSigned(t, f.sign(t, f.big, pay(destA, milliEther(100))))
		wantRule(t, f.sign(t, f.big, pay(destA, milliEther(100))), refusal.RuleVelocity)
		if recs := f.persist(t); len(recs) != 2 {
			t.Fatalf("%d records for 2 decisions", len(recs))
		}
	})
	t.Run("refused by the policy, not counted toward a freeze", func(t *testing.T) {
		for range 3 {
			tooLarge(t, f.sign(t, f.big, say(strings.Repeat("x", 1000))))
		}
		// Two refusals freeze the key: the two below, not the three above.
		wantRule(t, f.sign(t, f.big, say("hi")), refusal.RulePersonalMessages)
		wantRule(t, f.sign(t, f.big, say("hi")), refusal.RulePersonalMessages)
		wantRule(t, f.sign(t, f.big, say("hi")), refusal.RuleFrozen)
		recs := f.persist(t)
		if len(recs) != 4 || recs[2].Kind != audit.KindFreeze {
			t.Fatalf("%d records, want 3 decisions and a freeze: %+v", len(recs), recs)
		}
	})
	t.Run("the request id stays used", func(t *testing.T) {
		wantCode(t, f.sign(t, f.big, replay), refusal.CodeReplayedRequest, "already used")
	})
	f.normal(t)
	f.verify(t)
}
