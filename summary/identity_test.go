package summary_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/summary"
)

// labelPolicy labels the addresses the generators of internal/testgen draw
// most often (the zero address and 0xff…ff, for key hot-0 on chain 1) and
// names tokens there, so that generated requests carry labels, token names
// and amounts in units.
func labelPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`{
		"version": 1,
		"clients": [],
		"keys": [{"key": "hot-0", "chains": [1], "native_transfers": {
			"destinations": [
				{"address": "0x2222222222222222222222222222222222222222", "label": "treasury"},
				{"address": "0xffffffffffffffffffffffffffffffffffffffff", "label": "all \"ones\" (0xff…)"}],
			"max_per_transaction_wei": "1000000000000000000"}}],
		"assets": [
			{"chain_id": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "symbol": "USDC", "decimals": 6},
			{"chain_id": 1, "address": "0x0000000000000000000000000000000000000000", "symbol": "ZERO", "decimals": 18}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// generatedSummaries returns named summaries of requests drawn from
// internal/testgen (transactions of every type with every decoded call,
// typed data, personal messages), each under a policy that labels their
// addresses and without a policy.
func generatedSummaries(t testing.TB) map[string]summary.Summary {
	p := labelPolicy(t)
	k := key(t)
	out := map[string]summary.Summary{}
	r := rand.New(rand.NewPCG(13, 5))
	labelled := []ethtx.Address{{}, ethtx.Address(bytes.Repeat([]byte{0xff}, 20)), addr(t, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), addr(t, "0x2222222222222222222222222222222222222222")}
	for i := range 400 {
		tx := testgen.Tx(r, testgen.TxTypes[i%len(testgen.TxTypes)])
		if r.IntN(2) == 0 {
			tx.ChainID = big.NewInt(1)
		}
		if tx.To != nil && r.IntN(2) == 0 {
			a := labelled[r.IntN(len(labelled))]
			tx.To = &a
		}
		if tx.To != nil && r.IntN(4) != 0 {
			f := testgen.Functions[r.IntN(len(testgen.Functions))]
			tx.Data = testgen.EncodeCall(f.Gen(r, 0))
		}
		for j := range tx.AuthorizationList {
			if r.IntN(2) == 0 {
				tx.AuthorizationList[j].Address = labelled[r.IntN(len(labelled))]
			}
		}
		var call calldata.Call
		if tx.To != nil {
			call, _ = calldata.Decode(tx.Data) // nil when it does not decode: "not decoded"
		}
		d := tx.SigningHash()
		out[fmt.Sprintf("tx_%03d_policy", i)] = summary.Transaction(tx, call, k, d, p)
		out[fmt.Sprintf("tx_%03d_none", i)] = summary.Transaction(tx, call, k, d, nil)
	}
	for i := range 300 {
		doc := testgen.TypedData(r)
		td, err := ethmsg.ParseTypedData(doc)
		if err != nil {
			continue // the generator also draws documents ethmsg refuses
		}
		out[fmt.Sprintf("typed_%03d_policy", i)] = summary.TypedData(td, k, p)
		out[fmt.Sprintf("typed_%03d_none", i)] = summary.TypedData(td, k, nil)
	}
	for _, doc := range []string{testgen.MailJSON, usdcPermit, permit2Labelled} {
		td, err := ethmsg.ParseTypedData([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("typed_doc_%x", sha256.Sum256([]byte(doc)))[:20]
		out[name+"_policy"] = summary.TypedData(td, k, p)
		out[name+"_none"] = summary.TypedData(td, k, nil)
	}
	for i := range 50 {
		msg := testgen.Bytes(r, r.IntN(6000))
		if i%2 == 0 {
			msg = []byte(strings.Repeat("Sign in \"é\"\n", r.IntN(500)))
		}
		out[fmt.Sprintf("personal_%03d", i)] = summary.PersonalMessage(msg, k, ethmsg.PersonalHash(msg))
	}
	return out
}

// permit2Labelled is a Permit2 batch grant of two tokens the label policy
// names, to a labelled spender: amounts in units next to labels.
const permit2Labelled = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],` +
	`"PermitBatch":[{"name":"details","type":"PermitDetails[]"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}],` +
	`"PermitDetails":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"},{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}]},` +
	`"primaryType":"PermitBatch","domain":{"name":"Permit2","chainId":1,"verifyingContract":"0x000000000022D473030F116dDEE9F6B43aC78BA3"},` +
	`"message":{"details":[{"token":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48","amount":"1500000","expiration":"1900000000","nonce":"0"},` +
	`{"token":"0x0000000000000000000000000000000000000000","amount":"1461501637330902918203684832716283019655932542975","expiration":"1900000000","nonce":"1"}],` +
	`"spender":"0x2222222222222222222222222222222222222222","sigDeadline":"1900000000"}}`

// TestRenderingUnchanged: the text of every generated summary is byte for
// byte what the rendering gave before lines carried their labels apart
// (testdata/rendering.sha256, captured from that rendering): audit records
// and every expected string stay as they were.
func TestRenderingUnchanged(t *testing.T) {
	got := map[string]string{}
	labels := 0
	for name, s := range generatedSummaries(t) {
		text := s.String()
		got[name] = fmt.Sprintf("%x", sha256.Sum256([]byte(text)))
		labels += strings.Count(text, " token)") + strings.Count(text, " USDC") + strings.Count(text, `("`)
	}
	if labels < 100 {
		t.Errorf("the generated summaries carry %d labels and units: too few to test their rendering", labels)
	}
	path := filepath.Join("testdata", "rendering.sha256")
	if *update {
		var b strings.Builder
		for _, name := range sortedKeys(got) {
			fmt.Fprintf(&b, "%s %s\n", got[name], name)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		sum, name, _ := strings.Cut(sc.Text(), " ")
		want[name] = sum
	}
	if len(want) != len(got) {
		t.Errorf("%d summaries, %d in %s", len(got), len(want), path)
	}
	for name, sum := range want {
		if got[name] != sum {
			t.Errorf("%s: rendering changed", name)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestValuesIgnoreThePolicy: a line's Value is what a decoding without the
// policy computes, byte for byte; the policy adds labels only. (A summary
// cut at its caps may keep fewer lines with labels than without: such
// pairs are skipped.)
func TestValuesIgnoreThePolicy(t *testing.T) {
	all := generatedSummaries(t)
	compared, labelled := 0, 0
	for name, with := range all {
		base, ok := strings.CutSuffix(name, "_policy")
		if !ok {
			continue
		}
		without := all[base+"_none"]
		if strings.Contains(with.String(), "\ntruncated: ") || strings.Contains(without.String(), "\ntruncated: ") {
			continue
		}
		if len(with.Lines) != len(without.Lines) {
			t.Fatalf("%s: %d lines with the policy, %d without", base, len(with.Lines), len(without.Lines))
		}
		for i, l := range with.Lines {
			w := without.Lines[i]
			if l.Key != w.Key || l.Value != w.Value {
				t.Fatalf("%s line %d: with the policy %q: %q, without %q: %q", base, i, l.Key, l.Value, w.Key, w.Value)
			}
			if err := l.Check(); err != nil {
				t.Fatalf("%s line %d: %v", base, i, err)
			}
			if l.Key != "from" && len(w.Labels) != 0 {
				t.Fatalf("%s line %d: labels without a policy: %+v", base, i, w.Labels)
			}
			if l.Key != "from" && len(l.Labels) != 0 {
				labelled++
			}
		}
		compared++
	}
	if compared < 300 || labelled < 100 {
		t.Errorf("compared %d summaries, %d labelled lines: too few", compared, labelled)
	}
}

// TestLabelsApart: labels, token units and what only the enclave knows of
// its key are labels, and the values are the substance.
func TestLabelsApart(t *testing.T) {
	p := labelPolicy(t)
	usdc := "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	tr := tx(t, ethtx.TypeDynamicFee, usdc, 0, abiCall(t, "a9059cbb", word("2222222222222222222222222222222222222222"), word("16e360")))
	call, err := calldata.Decode(tr.Data)
	if err != nil {
		t.Fatal(err)
	}
	s := summary.Transaction(tr, call, key(t), digest(), p)
	want := map[string]summary.Line{
		"from": {Key: "from", Value: "0x9bf111518107c76Da607BB6039489949B2951a10",
			Labels: []summary.Label{{At: 42, End: 42, Text: " (key hot-0, m/44'/60'/0'/0/0)"}}},
		"to": {Key: "to", Value: usdc, Labels: []summary.Label{{At: 42, End: 42, Text: " (USDC token)"}}},
		"call.to": {Key: "call.to", Value: "0x2222222222222222222222222222222222222222",
			Labels: []summary.Label{{At: 42, End: 42, Text: ` ("treasury")`}}},
		"call.amount": {Key: "call.amount", Value: "1500000 (raw units of " + usdc + ")",
			Labels: []summary.Label{{At: 0, End: 65, Text: "1.5 USDC"}}},
	}
	found := 0
	for _, l := range s.Lines {
		if w, ok := want[l.Key]; ok {
			found++
			if !reflect.DeepEqual(l, w) {
				t.Errorf("line %s:\n got %+v\nwant %+v", l.Key, l, w)
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of the %d lines in:\n%s", found, len(want), s)
	}
	if !strings.Contains(s.String(), "call.amount: 1.5 USDC\n") || !strings.Contains(s.String(), `call.to: 0x2222222222222222222222222222222222222222 ("treasury")`) {
		t.Errorf("rendering:\n%s", s)
	}
}

// TestTransactionTextAgrees checks that TransactionText, which writes the
// text without the lines, is Transaction's String, for the generated
// transactions, and for transactions past the line and size caps.
func TestTransactionTextAgrees(t *testing.T) {
	p := labelPolicy(t)
	k := key(t)
	nk := summary.NewKey(k.ID, k.Address, k.Path)
	r := rand.New(rand.NewPCG(13, 5))
	var txs []*ethtx.Tx
	for i := range 400 {
		tx := testgen.Tx(r, testgen.TxTypes[i%len(testgen.TxTypes)])
		if i%2 == 0 {
			tx.ChainID = big.NewInt(1)
		}
		if tx.To != nil && r.IntN(4) != 0 {
			f := testgen.Functions[r.IntN(len(testgen.Functions))]
			tx.Data = testgen.EncodeCall(f.Gen(r, 0))
		}
		txs = append(txs, tx)
	}
	// Past the caps: more blob lines than a summary holds, and more
	// authorization lines than its size holds.
	blobs := tx(t, ethtx.TypeBlob, "0x2222222222222222222222222222222222222222", 1, nil)
	blobs.MaxFeePerBlobGas = big.NewInt(3e9)
	blobs.BlobVersionedHashes = make([][32]byte, 300)
	setCode := tx(t, ethtx.TypeSetCode, "0x2222222222222222222222222222222222222222", 1, nil)
	for i := range 190 {
		// Chain ids of 76 digits make lines long enough for the size cap
		// to come before the line cap; about half the signatures recover
		// some authority.
		a := ethtx.Authorization{ChainID: new(big.Int).Lsh(big.NewInt(int64(i+1)), 240), Address: addr(t, "0x2222222222222222222222222222222222222222"), Nonce: uint64(i)}
		a.R[31], a.S[31] = byte(i+1), 1
		setCode.AuthorizationList = append(setCode.AuthorizationList, a)
	}
	txs = append(txs, blobs, setCode)
	for i, tx := range txs {
		var call calldata.Call
		if tx.To != nil {
			call, _ = calldata.Decode(tx.Data)
		}
		for _, pol := range []*policy.Policy{p, nil} {
			for _, key := range []summary.Key{k, nk} {
				want := summary.Transaction(tx, call, key, digest(), pol).String()
				if got := summary.TransactionText(tx, call, key, digest(), pol); got != want {
					t.Fatalf("transaction %d (policy %v): TransactionText\n%s\nString\n%s", i, pol != nil, got, want)
				}
			}
		}
	}
	if s := summary.TransactionText(blobs, &calldata.NoCall{}, k, digest(), p); !strings.Contains(s, "\ntruncated: ") {
		t.Errorf("blob summary not truncated:\n%s", s)
	}
	if s := summary.TransactionText(setCode, &calldata.NoCall{}, k, digest(), p); !strings.Contains(s, "\ntruncated: ") {
		t.Errorf("set-code summary not truncated:\n%s", s)
	}
}

// FuzzTransactionText checks TransactionText against Transaction's
// String for every transaction ethtx decodes, under a policy that labels
// addresses and under none.
func FuzzTransactionText(f *testing.F) {
	p := labelPolicy(f)
	k := key(f)
	f.Fuzz(func(t *testing.T, unsigned []byte) {
		tx, err := ethtx.DecodeUnsigned(unsigned)
		if err != nil {
			return
		}
		var call calldata.Call
		if tx.To != nil {
			call, _ = calldata.Decode(tx.Data)
		}
		for _, pol := range []*policy.Policy{p, nil} {
			want := summary.Transaction(tx, call, k, tx.SigningHash(), pol).String()
			if got := summary.TransactionText(tx, call, k, tx.SigningHash(), pol); got != want {
				t.Fatalf("%x (policy %v): TransactionText\n%s\nString\n%s", unsigned, pol != nil, got, want)
			}
		}
	})
}
