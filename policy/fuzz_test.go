package policy_test

import (
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/stamp"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz")

// fixedKey returns a deterministic Ed25519 public key, so that committed
// seeds stay valid.
func fixedKey(name string) stamp.PublicKey {
	seed := sha256.Sum256([]byte("nitrosign policy test key " + name))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	return stamp.PublicKey{Scheme: stamp.Ed25519, Key: pub}
}

// seedBase is a compact document with every section, the base of the
// edits of seedEdits; TestSeeds checks them on it.
func seedBase() string {
	return seedReplacer().Replace(`{"version":1,` +
		`"clients":[{"name":"svc","scheme":"ed25519","public_key":"@CLIENT@","keys":["k"]}],` +
		`"keys":[{"key":"k","chains":[1,10],` +
		`"native_transfers":{"destinations":[{"address":"@OPS@","label":"ops"}],"max_per_transaction_wei":"1000"},` +
		`"personal_messages":true,` +
		`"typed_data":{"domains":[{"name":"Ether Mail","version":"1","chain_id":1,"verifying_contract":"0xcccccccccccccccccccccccccccccccccccccccc"}]},` +
		`"raw_digest":true,` +
		`"chain_rules":[{"chain_id":1,` +
		`"fees":{"max_gas_limit":500000,"max_fee_per_gas_wei":"200000000000","max_priority_fee_per_gas_wei":"5000000000","max_gas_price_wei":"100000000000"},` +
		`"tokens":[{"address":"@USDC@","label":"USDC","transfers":{"destinations":[{"address":"@OPS@","label":"ops"}],"max_per_transaction":"1000000000","transfer_from":true},` +
		`"spenders":[{"address":"@ROUTER@","label":"router","max_allowance":"5000"},{"address":"@PERMIT2@","label":"Permit2","max_allowance":"unlimited"}]}],` +
		`"nfts":[{"address":"@BAYC@","label":"BAYC","standard":"erc721","destinations":[{"address":"@TREASURY@","label":"treasury"}],"operators":[{"address":"@SEAPORT@","label":"Seaport"}]}],` +
		`"contracts":[{"address":"@DEX@","label":"dex","functions":[{"selector":"0xd0e30db0","signature":"deposit()","max_value_wei":"1"}]}],` +
		`"safes":[{"address":"@SAFE@","label":"Safe"}],` +
		`"multisend_call_only":[{"address":"@MSCO@","label":"MultiSendCallOnly"}]}],` +
		`"limits":[{"chain_id":1,"asset":"native","destination":"@OPS@","window":"24h","max":"3"},{"chain_id":1,"asset":"@USDC@","window":"1h30m","max":"3"}],` +
		`"velocity":{"window":"1h","max_transactions":10},` +
		`"approvals":{"above":[{"chain_id":1,"asset":"@USDC@","amount":"1"}],"quorum":1,"approvers":[{"name":"alice","scheme":"ed25519","public_key":"@APPROVER@"}]},` +
		`"freeze":{"refusals":100,"window":"1h","on_limit_breach":false,"scope":"key"}}],` +
		`"assets":[{"chain_id":1,"address":"@USDC@","symbol":"USDC","decimals":6}]}`)
}

// seedEdits are the malformed documents of the corpus: each replaces the
// first occurrence of old in seedBase with new, and must be refused with
// an error mentioning msg.
var seedEdits = []struct{ name, old, new, msg string }{
	{"unknown top-level field", `"version":1,`, `"version":1,"allow_all":true,`, "allow_all"},
	{"unknown key field", `"raw_digest":true,`, `"raw_digest":true,"sign_anything":true,`, "sign_anything"},
	{"unknown chain rule field", `"chain_id":1,"fees"`, `"chain_id":1,"delegatecall":true,"fees"`, "delegatecall"},
	{"duplicate field", `"version":1,`, `"version":1,"version":2,`, "duplicate"},
	{"duplicate nested field", `"max_gas_limit":500000,`, `"max_gas_limit":500000,"max_gas_limit":1,`, "duplicate"},
	{"case-folded field", `"raw_digest":true,`, `"Raw_Digest":true,`, "Raw_Digest"},
	// The stateful sections are fields of stateful.KeyConfig, which
	// KeyRule embeds: they are the key rule's own fields, as strict as the
	// others, and the embedded struct's name is no field.
	{"duplicate stateful section", `"velocity":{`, `"velocity":null,"velocity":{`, "duplicate"},
	{"case-folded stateful section", `"freeze":{`, `"Freeze":{`, "Freeze"},
	{"embedded struct name", `"velocity":{`, `"KeyConfig":{},"velocity":{`, "KeyConfig"},
	{"trailing data", `"decimals":6}]}`, `"decimals":6}]} {}`, "trailing"},
	{"version 0", `"version":1,`, `"version":0,`, "version"},
	{"negative gas limit", `"max_gas_limit":500000`, `"max_gas_limit":-1`, "max_gas_limit"},
	{"fractional gas limit", `"max_gas_limit":500000`, `"max_gas_limit":1.5`, "max_gas_limit"},
	{"gas limit as a string", `"max_gas_limit":500000`, `"max_gas_limit":"500000"`, "max_gas_limit"},
	{"null chains", `"chains":[1,10]`, `"chains":null`, "chains"},
	{"leading zero in a cap", `"max_per_transaction":"1000000000"`, `"max_per_transaction":"01000000000"`, "leading zeros"},
	{"exponent in a cap", `"max_per_transaction":"1000000000"`, `"max_per_transaction":"1e9"`, "max_per_transaction"},
	{"bad checksum", `"address":"` + usdc + `"`, `"address":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48"`, "checksum"},
	{"zero address destination", `"destinations":[{"address":"` + ops, `"destinations":[{"address":"` + zeroAddr, "zero address"},
	{"spender cap infinite", `"max_allowance":"unlimited"`, `"max_allowance":"infinite"`, "max_allowance"},
	{"decoded selector in a contract rule", `"selector":"0xd0e30db0","signature":"deposit()"`, `"selector":"0x095ea7b3"`, "approve"},
	{"signature of another selector", `"signature":"deposit()"`, `"signature":"withdraw()"`, "has selector"},
	{"upper-case selector", `"selector":"0xd0e30db0","signature":"deposit()"`, `"selector":"0xD0E30DB0"`, "lower-case"},
	{"Safe that is a contract rule", `"safes":[{"address":"` + safeA, `"safes":[{"address":"` + dex, "allowlisted Safe"},
	{"NFT standard", `"standard":"erc721"`, `"standard":"erc20"`, "standard"},
	{"chain rule off the key's chains", `"chain_rules":[{"chain_id":1,`, `"chain_rules":[{"chain_id":5,`, "not in chains"},
	{"limit window in days", `"window":"24h"`, `"window":"1d"`, "window"},
	{"limit window too long", `"window":"24h"`, `"window":"721h"`, "outside"},
	{"limit asset unknown", `"asset":"native"`, `"asset":"ETH"`, "native"},
	{"velocity zero", `"max_transactions":10`, `"max_transactions":0`, "max_transactions"},
	{"quorum above the approvers", `"quorum":1`, `"quorum":2`, "quorum"},
	{"approver is the client", `"public_key":"` + hex.EncodeToString(fixedKey("approver").Key), `"public_key":"` + hex.EncodeToString(fixedKey("client").Key), "client"},
	{"approver small-order key", `"public_key":"` + hex.EncodeToString(fixedKey("approver").Key), `"public_key":"0100000000000000000000000000000000000000000000000000000000000000`, "small order"},
	{"client small-order key", `"public_key":"` + hex.EncodeToString(fixedKey("client").Key), `"public_key":"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f`, "small order"},
	{"client non-canonical key", `"public_key":"` + hex.EncodeToString(fixedKey("client").Key), `"public_key":"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f`, "canonical"},
	{"freeze scope", `"scope":"key"`, `"scope":"host"`, "scope"},
	{"freeze window missing", `"refusals":100,"window":"1h",`, `"refusals":100,`, "freeze.window"},
	{"label with a control character", `"label":"ops"`, `"label":"o\u0007ps"`, "label"},
	{"invalid UTF-8", `"label":"ops"`, "\"label\":\"o\xffps\"", "UTF-8"},
	{"lone surrogate", `"label":"ops"`, `"label":"\ud800"`, "surrogate"},
	{"transaction types empty", `"chains":[1,10],`, `"chains":[1,10],"transaction_types":[],`, "transaction_types: empty"},
	{"transaction type blob", `"chains":[1,10],`, `"chains":[1,10],"transaction_types":["eip1559","eip4844"],`, "EIP-4844"},
	{"transaction type set code", `"chains":[1,10],`, `"chains":[1,10],"transaction_types":["eip7702"],`, "EIP-7702"},
	{"transaction type unknown", `"chains":[1,10],`, `"chains":[1,10],"transaction_types":["eip1559","type5"],`, "not a transaction type"},
	{"transaction type twice", `"chains":[1,10],`, `"chains":[1,10],"transaction_types":["legacy","legacy"],`, "listed twice"},
}

// seedSections are small valid documents, one or two sections each,
// written as in seedBase (same placeholders, same field order), so that
// the edits of seedEdits apply to them too. They, not seedBase, are the
// fuzz corpus: the fuzzer minimizes every input that finds new coverage,
// and its minimizer tries on the order of n² deletions of an n-byte
// input, each a full run of the target. On the 2.8 KB base that took the
// whole minimization budget (60 s) per new input, with every worker
// waiting, which is why FuzzParse ran at 0 execs/s after its seeds; on
// documents of a few hundred bytes it takes well under a second.
var seedSections = map[string]string{
	"native": `{"version":1,` +
		`"clients":[{"name":"svc","scheme":"ed25519","public_key":"@CLIENT@","keys":["k"]}],` +
		`"keys":[{"key":"k","chains":[1,10],` +
		`"native_transfers":{"destinations":[{"address":"@OPS@","label":"ops"}],"max_per_transaction_wei":"1000"},` +
		`"personal_messages":true,"raw_digest":true,"velocity":{"window":"1h","max_transactions":10}}]}`,
	"fees": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1,10],` +
		`"chain_rules":[{"chain_id":1,` +
		`"fees":{"max_gas_limit":500000,"max_fee_per_gas_wei":"200000000000","max_priority_fee_per_gas_wei":"5000000000","max_gas_price_wei":"100000000000"}}]}]}`,
	"tokens": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1,10],` +
		`"chain_rules":[{"chain_id":1,` +
		`"tokens":[{"address":"@USDC@","label":"USDC","transfers":{"destinations":[{"address":"@OPS@","label":"ops"}],"max_per_transaction":"1000000000","transfer_from":true},` +
		`"spenders":[{"address":"@ROUTER@","label":"router","max_allowance":"5000"},{"address":"@PERMIT2@","label":"Permit2","max_allowance":"unlimited"}]}]}]}],` +
		`"assets":[{"chain_id":1,"address":"@USDC@","symbol":"USDC","decimals":6}]}`,
	"nfts": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],` +
		`"chain_rules":[{"chain_id":1,` +
		`"nfts":[{"address":"@BAYC@","label":"BAYC","standard":"erc721","destinations":[{"address":"@TREASURY@","label":"treasury"}],"operators":[{"address":"@SEAPORT@","label":"Seaport"}]}]}]}]}`,
	"contracts": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],` +
		`"chain_rules":[{"chain_id":1,` +
		`"contracts":[{"address":"@DEX@","label":"dex","functions":[{"selector":"0xd0e30db0","signature":"deposit()","max_value_wei":"1"}]}],` +
		`"safes":[{"address":"@SAFE@","label":"Safe"}],` +
		`"multisend_call_only":[{"address":"@MSCO@","label":"MultiSendCallOnly"}]}]}]}`,
	"typed data": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],` +
		`"typed_data":{"domains":[{"name":"Ether Mail","version":"1","chain_id":1,"verifying_contract":"0xcccccccccccccccccccccccccccccccccccccccc"}]}}]}`,
	"limits": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],` +
		`"limits":[{"chain_id":1,"asset":"native","destination":"@OPS@","window":"24h","max":"3"}]}]}`,
	"approvals": `{"version":1,` +
		`"clients":[{"name":"svc","scheme":"ed25519","public_key":"@CLIENT@","keys":["k"]}],` +
		`"keys":[{"key":"k","chains":[1],` +
		`"approvals":{"above":[{"chain_id":1,"asset":"native","amount":"1"}],"quorum":1,"approvers":[{"name":"alice","scheme":"ed25519","public_key":"@APPROVER@"}]}}]}`,
	"transaction types": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1,10],"transaction_types":["eip1559","legacy"]}]}`,
	"freeze": `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],` +
		`"freeze":{"refusals":100,"window":"1h","on_limit_breach":false,"scope":"key"}}]}`,
}

// seedReplacer fills in the placeholders of seedBase and seedSections.
func seedReplacer() *strings.Replacer {
	return strings.NewReplacer(
		"@CLIENT@", hex.EncodeToString(fixedKey("client").Key),
		"@APPROVER@", hex.EncodeToString(fixedKey("approver").Key),
		"@OPS@", ops, "@USDC@", usdc, "@ROUTER@", router, "@PERMIT2@", permit2, "@BAYC@", bayc, "@SEAPORT@", seaport,
		"@DEX@", dex, "@SAFE@", safeA, "@MSCO@", msco, "@TREASURY@", treasury,
	)
}

// seeds returns the named seeds of FuzzParse: the sections, valid, and
// each edit of seedEdits applied to the smallest section that it applies
// to and that it makes refused for its reason. An edit that fits no
// section is applied to seedBase. (TestSeeds checks every edit on
// seedBase as well.)
func seeds(t testing.TB) map[string][]byte {
	r := seedReplacer()
	s := map[string][]byte{
		"valid minimal": []byte(`{"version":1,"clients":[],"keys":[]}`),
		"valid old":     []byte(`{"version":2,"clients":[],"keys":[{"key":"k","chains":[1],"native_transfers":{"destinations":[],"max_per_transaction_wei":"0"}}]}`),
	}
	var sections []string
	for name, doc := range seedSections {
		doc = r.Replace(doc)
		if _, err := policy.Parse([]byte(doc)); err != nil {
			t.Fatalf("seed section %s is refused: %v", name, err)
		}
		s["valid "+name] = []byte(doc)
		sections = append(sections, doc)
	}
	slices.SortFunc(sections, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	base := seedBase()
	for _, e := range seedEdits {
		if !strings.Contains(base, e.old) {
			t.Fatalf("seed %s: %q is not in the base", e.name, e.old)
		}
		doc := strings.Replace(base, e.old, e.new, 1)
		for _, sec := range sections {
			if !strings.Contains(sec, e.old) {
				continue
			}
			d := strings.Replace(sec, e.old, e.new, 1)
			if _, err := policy.Parse([]byte(d)); err != nil && strings.Contains(err.Error(), e.msg) {
				doc = d
				break
			}
		}
		s["bad "+e.name] = []byte(doc)
	}
	return s
}

// TestSeedCorpus checks that testdata/fuzz/FuzzParse holds every seed, as
// written by go test ./policy -run TestSeedCorpus -update-corpus. Files
// that are not seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParse", "seed_", '_', seeds(t), *updateCorpus, "go test ./policy -run TestSeedCorpus -update-corpus")
}

// TestSeeds checks what the seeds say: the base parses, and each edit is
// refused for its reason.
func TestSeeds(t *testing.T) {
	base := seedBase()
	p, err := policy.Parse([]byte(base))
	if err != nil {
		t.Fatalf("the seed base is refused: %v", err)
	}
	if _, ok := p.Client(fixedKey("client")); !ok {
		t.Error("the seed base's client is not registered")
	}
	// The fuzz target's checks, on the document with every section.
	checkParse(t, []byte(base), fixedKey("client"), fuzzRequests(t))
	for _, e := range seedEdits {
		t.Run(e.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(strings.Replace(base, e.old, e.new, 1)))
			if err == nil || !strings.Contains(err.Error(), e.msg) {
				t.Fatalf("err = %v, want one mentioning %q", err, e.msg)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that its errors are the
// package's own, and that what it accepts has a canonical form that parses
// to the same policy; and it evaluates a few requests under each accepted
// policy, which must not panic and must name a rule when they refuse. The
// committed corpus is in testdata/fuzz/FuzzParse (small documents: see
// seedSections); TestSeeds runs the same checks on seedBase.
func FuzzParse(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	c := fixedKey("client")
	requests := fuzzRequests(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b, c, requests)
	})
}

// checkParse is the body of FuzzParse.
func checkParse(t *testing.T, b []byte, c stamp.PublicKey, requests []*ethtx.Tx) {
	p, err := policy.Parse(b)
	if err != nil {
		if p != nil {
			t.Fatalf("Parse returned a policy and error %v", err)
		}
		if !strings.HasPrefix(err.Error(), "policy: ") {
			t.Fatalf("error without package prefix: %q", err)
		}
		return
	}
	q, err := policy.Parse(p.Canonical())
	if err != nil {
		t.Fatalf("the canonical form of an accepted policy is refused: %v", err)
	}
	if q.Hash() != p.Hash() || string(q.Canonical()) != string(p.Canonical()) {
		t.Fatal("the canonical form is not a fixed point")
	}
	for _, key := range p.KeyIDs() {
		for _, tx := range requests {
			d := evalTx(t, p, c, key, tx)
			if !d.Allow && d.Rule == "" {
				t.Fatalf("refusal without a rule: %+v", d)
			}
		}
		_, _ = p.KeyRules(key)
	}
}

// fuzzRequests are the transactions FuzzParse evaluates.
func fuzzRequests(t testing.TB) []*ethtx.Tx {
	return []*ethtx.Tx{
		newTx(t, 1, ops, big.NewInt(1), nil),
		newTx(t, 1, usdc, nil, erc20Transfer(t, ops, big.NewInt(1))),
		newTx(t, 1, usdc, nil, erc20Approve(t, router, maxUint)),
		newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t, msCall{to: usdc, data: erc20Transfer(t, ops, big.NewInt(1))}), 1)),
		newTx(t, 1, dex, big.NewInt(1), []byte{0xd0, 0xe3, 0x0d, 0xb0}),
	}
}
