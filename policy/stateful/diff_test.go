package stateful

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

// approverHex is a fixed Ed25519 public key for name, in hex.
func approverHex(name string) string {
	seed := sha256.Sum256([]byte("approver " + name))
	return hex.EncodeToString(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}

// diffBase is a key's stateful sections with every field set, on chains 1
// and 10, with usdc a token of chain 1.
func diffBase() KeyConfig {
	return KeyConfig{
		Limits: []LimitRule{
			{ChainID: 1, Asset: "native", Window: "24h", Max: "3000"},
			{ChainID: 1, Asset: "native", Destination: destB.Hex(), Window: "24h", Max: "1000"},
			{ChainID: 1, Asset: usdc.Hex(), Window: "1h", Max: "5000"},
			{ChainID: 10, Asset: "native", Window: "720h", Max: "1"},
		},
		Velocity: &VelocityRule{Window: "1h", MaxTransactions: 100},
		Approvals: &ApprovalRule{
			Above:  []ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: "500"}, {ChainID: 1, Asset: usdc.Hex(), Amount: "100"}},
			Quorum: 2,
			Approvers: []Approver{
				{Name: "alice", Scheme: "ed25519", PublicKey: approverHex("alice")},
				{Name: "bob", Scheme: "ed25519", PublicKey: approverHex("bob")},
				{Name: "carol", Scheme: "ed25519", PublicKey: approverHex("carol")},
			},
		},
		Freeze: &FreezeRule{Refusals: 100, Window: "1h", OnLimitBreach: true, Scope: "all"},
	}
}

// diffCompile compiles c on chains 1 and 10 with usdc a token of chain 1.
func diffCompile(t *testing.T, c KeyConfig) Rules {
	t.Helper()
	r, err := Compile(c, Scope{
		Chains:    []uint64{1, 10},
		IsToken:   func(chain uint64, a ethtx.Address) bool { return chain == 1 && a == usdc },
		ValidName: func(s string) bool { return s != "" },
	}, NewApprovers(nil))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testDiffScope is a DiffScope for key hot in which the key can reach
// everything but what unreachable lists (by chain, and "chain/asset").
func testDiffScope(unreachable ...string) DiffScope {
	amount := func(chain uint64, a ethtx.Address, v *big.Int) string { return v.String() }
	return DiffScope{
		Key: "hot",
		Reachable: func(chain uint64, a ethtx.Address) bool {
			return !slices.Contains(unreachable, fmt.Sprint(chain)) && !slices.Contains(unreachable, fmt.Sprintf("%d/%s", chain, a.Hex()))
		},
		AssetName: func(chain uint64, a ethtx.Address) string {
			if a == (ethtx.Address{}) {
				return "native"
			}
			return a.Hex()
		},
		OldAmount: amount,
		NewAmount: amount,
	}
}

// Kinds of change, as in package policy's diff tests.
const (
	loosens  = iota // loosens; the reverse change only tightens
	tightens        // only tightens; the reverse change loosens
	neutral         // neither, nor does its reverse
	both            // loosens, and so does the reverse change
)

type statefulDiffCase struct {
	name string
	// fields are the DiffFields paths the case exercises.
	fields []string
	change func(*KeyConfig)
	// unreachable is what the key can no longer reach after the change
	// (see testDiffScope).
	unreachable []string
	kind        int
	// want is a substring of a Loosening message (loosens, both) or of a
	// Tightening message (tightens).
	want string
}

func statefulDiffCases() []statefulDiffCase {
	return []statefulDiffCase{
		{name: "identical", kind: neutral, change: func(*KeyConfig) {}},

		{name: "limit max raised", fields: []string{"limits[].max"}, kind: loosens, want: "key hot: limit on chain 1 native per 24h: max raised from 3000 to 3001",
			change: func(c *KeyConfig) { c.Limits[0].Max = "3001" }},
		{name: "limit window shortened", fields: []string{"limits[].window"}, kind: loosens, want: "window shortened from 24h to 1h",
			change: func(c *KeyConfig) { c.Limits[0].Window = "1h" }},
		{name: "limit window lengthened", fields: []string{"limits[].window"}, kind: tightens, want: "removed, implied by the limit per 48h of 3000",
			change: func(c *KeyConfig) { c.Limits[0].Window = "48h" }},
		{name: "limit moved to another chain", fields: []string{"limits[].chain_id"}, kind: both, want: "limit on chain 10 native per 720h (max 1) removed",
			change: func(c *KeyConfig) { c.Limits[3].ChainID = 1 }},
		{name: "limit moved to another asset", fields: []string{"limits[].asset"}, kind: loosens, want: "per 1h (max 5000) removed",
			change: func(c *KeyConfig) { c.Limits[2].Asset = "native" }},
		{name: "limit moved to another destination", fields: []string{"limits[].destination"}, kind: both, want: "to " + destB.Hex() + " per 24h (max 1000) removed",
			change: func(c *KeyConfig) { c.Limits[1].Destination = destA.Hex() }},
		{name: "limit removed with its chain", kind: tightens, want: "key hot: limit on chain 10 native per 720h (max 1) removed with its chain or token",
			unreachable: []string{"10"}, change: func(c *KeyConfig) { c.Limits = c.Limits[:3] }},

		{name: "velocity raised", fields: []string{"velocity.max_transactions"}, kind: loosens, want: "velocity for key hot: max transactions raised 100 → 101",
			change: func(c *KeyConfig) { c.Velocity.MaxTransactions = 101 }},
		{name: "velocity window shortened", fields: []string{"velocity.window"}, kind: loosens, want: "velocity for key hot: window shortened 1h → 59m",
			change: func(c *KeyConfig) { c.Velocity.Window = "59m" }},
		{name: "velocity removed", kind: loosens, want: "velocity for key hot removed (was 100 transactions per 1h)",
			change: func(c *KeyConfig) { c.Velocity = nil }},

		{name: "approval threshold raised", fields: []string{"approvals.above[].amount"}, kind: loosens, want: "approvals for key hot: threshold on chain 1 native raised from 500 to 501",
			change: func(c *KeyConfig) { c.Approvals.Above[0].Amount = "501" }},
		{name: "approval threshold moved to another chain", fields: []string{"approvals.above[].chain_id"}, kind: both, want: "threshold on chain 1 native (above 500) removed",
			change: func(c *KeyConfig) { c.Approvals.Above[0].ChainID = 10 }},
		{name: "approval threshold moved to another asset", fields: []string{"approvals.above[].asset"}, kind: both, want: "threshold on chain 1 " + usdc.Hex() + " (above 100) removed",
			change: func(c *KeyConfig) { c.Approvals.Above = c.Approvals.Above[1:]; c.Approvals.Above[0].Asset = "native" }},
		{name: "approval threshold removed with its token", kind: tightens, want: "threshold on chain 1 " + usdc.Hex() + " (above 100) removed with its chain or token",
			unreachable: []string{"1/" + usdc.Hex()}, change: func(c *KeyConfig) { c.Approvals.Above = c.Approvals.Above[:1] }},
		{name: "quorum lowered", fields: []string{"approvals.quorum"}, kind: loosens, want: "approvals for key hot: quorum lowered 2 → 1",
			change: func(c *KeyConfig) { c.Approvals.Quorum = 1 }},
		{name: "approver renamed", fields: []string{"approvals.approvers[].name"}, kind: neutral,
			change: func(c *KeyConfig) { c.Approvals.Approvers[1].Name = "robert" }},
		{name: "approver key changed", fields: []string{"approvals.approvers[].public_key"}, kind: both, want: "approvals for key hot: approver bob: public key changed",
			change: func(c *KeyConfig) { c.Approvals.Approvers[1].PublicKey = approverHex("mallory") }},
		{name: "approver scheme changed", fields: []string{"approvals.approvers[].scheme"}, kind: both, want: "approver bob: public key changed from ed25519:",
			change: func(c *KeyConfig) {
				c.Approvals.Approvers[1].Scheme = "p256"
				c.Approvals.Approvers[1].PublicKey = "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" // the P-256 generator, compressed
			}},
		{name: "approvals removed", kind: loosens, want: "approvals for key hot removed (was quorum 2 of 3)",
			change: func(c *KeyConfig) { c.Approvals = nil }},

		{name: "freeze refusals raised", fields: []string{"freeze.refusals"}, kind: loosens, want: "freeze for key hot: refusals threshold raised 100 → 200",
			change: func(c *KeyConfig) { c.Freeze.Refusals = 200 }},
		{name: "refusals no longer freeze", fields: []string{"freeze.refusals"}, kind: loosens, want: "freeze for key hot: refusals no longer freeze (was 100 within 1h)",
			change: func(c *KeyConfig) { c.Freeze.Refusals, c.Freeze.Window = 0, "" }},
		{name: "freeze window shortened", fields: []string{"freeze.window"}, kind: loosens, want: "freeze for key hot: refusals window shortened 1h → 30m",
			change: func(c *KeyConfig) { c.Freeze.Window = "30m" }},
		{name: "freeze on limit breach turned off", fields: []string{"freeze.on_limit_breach"}, kind: loosens, want: "freeze for key hot: on_limit_breach turned off",
			change: func(c *KeyConfig) { c.Freeze.OnLimitBreach = false }},
		{name: "freeze scope narrowed", fields: []string{"freeze.scope"}, kind: loosens, want: "freeze for key hot: scope narrowed from all to key",
			change: func(c *KeyConfig) { c.Freeze.Scope = "key" }},
		{name: "freeze removed", kind: loosens, want: "freeze for key hot removed",
			change: func(c *KeyConfig) { c.Freeze = nil }},
	}
}

// TestDiffCases checks each case's classification, and that of its
// reverse change.
func TestDiffCases(t *testing.T) {
	for _, tc := range statefulDiffCases() {
		t.Run(tc.name, func(t *testing.T) {
			oc := diffBase()
			nc := diffBase()
			tc.change(&nc)
			o, n := diffCompile(t, oc), diffCompile(t, nc)
			fwd := Diff(o, n, testDiffScope(tc.unreachable...))
			back := Diff(n, o, testDiffScope())
			var msgs []string
			switch tc.kind {
			case loosens:
				if len(fwd.Loosening) == 0 || len(back.Loosening) != 0 {
					t.Fatalf("forward %+v, back %+v: want a loosening one way only", fwd, back)
				}
				msgs = fwd.Loosening
			case tightens:
				if len(fwd.Loosening) != 0 || len(fwd.Tightening) == 0 {
					t.Fatalf("forward %+v: want a tightening only", fwd)
				}
				msgs = fwd.Tightening
			case both:
				if len(fwd.Loosening) == 0 || len(back.Loosening) == 0 {
					t.Fatalf("forward %+v, back %+v: want a loosening both ways", fwd, back)
				}
				msgs = fwd.Loosening
			case neutral:
				if len(fwd.Loosening)+len(fwd.Tightening)+len(back.Loosening)+len(back.Tightening) != 0 {
					t.Fatalf("forward %+v, back %+v: want no change", fwd, back)
				}
			}
			if tc.want != "" && !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Fatalf("no message contains %q: %q", tc.want, msgs)
			}
		})
	}
}

// TestDiffRemovedKey checks what removing a key changes for the others:
// only a freeze of scope all, and only while other keys remain.
func TestDiffRemovedKey(t *testing.T) {
	r := diffCompile(t, diffBase())
	if c := DiffRemovedKey("hot", r, true); len(c.Tightening) != 0 || len(c.Loosening) != 1 ||
		!strings.Contains(c.Loosening[0], "freeze for key hot: removed with the key; its scope was all") {
		t.Fatalf("scope all, others remain: %+v", c)
	}
	if c := DiffRemovedKey("hot", r, false); len(c.Loosening)+len(c.Tightening) != 0 {
		t.Fatalf("scope all, no other key: %+v", c)
	}
	r.Freeze.Scope = FreezeKey
	if c := DiffRemovedKey("hot", r, true); len(c.Loosening)+len(c.Tightening) != 0 {
		t.Fatalf("scope key: %+v", c)
	}
	if c := DiffRemovedKey("hot", Rules{}, true); len(c.Loosening)+len(c.Tightening) != 0 {
		t.Fatalf("no freeze: %+v", c)
	}
}

// keyConfigPaths lists the JSON paths of the leaf fields of t, as
// DiffFields writes them.
func keyConfigPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if prefix != "" {
				name = prefix + "." + name
			}
			keyConfigPaths(f.Type, name, out)
		}
		return
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct {
			keyConfigPaths(e, prefix+"[]", out)
			return
		}
	}
	out[prefix] = true
}

// TestDiffClassifiesEveryField fails when a field is added to KeyConfig
// (or removed) without DiffFields saying how Diff classifies it, and when
// a classified field has no case in statefulDiffCases.
func TestDiffClassifiesEveryField(t *testing.T) {
	paths := map[string]bool{}
	keyConfigPaths(reflect.TypeFor[KeyConfig](), "", paths)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if _, ok := diffFields[p]; !ok {
			t.Errorf("KeyConfig field %s is not classified: add it to diffFields in diff.go, handle it in Diff, and add a case to statefulDiffCases", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(diffFields)) {
		if !paths[p] {
			t.Errorf("diffFields lists %s, which is no field of KeyConfig", p)
		}
	}
	covered := map[string]bool{}
	for _, tc := range statefulDiffCases() {
		for _, f := range tc.fields {
			if _, ok := diffFields[f]; !ok {
				t.Errorf("case %q names %s, which diffFields does not list", tc.name, f)
			}
			covered[f] = true
		}
	}
	for _, p := range slices.Sorted(maps.Keys(diffFields)) {
		if !covered[p] {
			t.Errorf("no case of statefulDiffCases changes %s", p)
		}
	}
}

// TestKeyConfigOptional checks that every section of KeyConfig is left out
// of the JSON when absent, so that a key rule without it keeps its
// canonical encoding (and a policy its hash) whatever sections exist.
func TestKeyConfigOptional(t *testing.T) {
	b, err := json.Marshal(KeyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{}" {
		t.Fatalf("an empty KeyConfig encodes as %s, want {}", b)
	}
}

func TestFormatWindow(t *testing.T) {
	for _, w := range []string{"1m", "1m30s", "1h30m", "24h", "720h", "1h1m1s", "59m59s"} {
		d, err := ParseWindow(w)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatWindow(d); got != w {
			t.Errorf("FormatWindow(%s) = %s", w, got)
		}
	}
}
