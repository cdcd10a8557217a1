package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/stamp"
)

func TestNewSetRefuses(t *testing.T) {
	good := testConfig(t)
	alice, bob := good.Members[0], good.Members[1]
	with := func(f func(c *Config)) Config {
		c := testConfig(t)
		f(&c)
		return c
	}
	var many []Member
	for i := range MaxMembers + 1 {
		many = append(many, member(t, fmt.Sprintf("admin%d", i), newEd(t, fmt.Sprint("many", i))))
	}
	cases := []struct {
		name string
		c    Config
		msg  string
	}{
		{"no members", Config{Quorum: 1}, "want 1 to 32 members, got 0"},
		{"too many members", Config{Members: many, Quorum: 2}, "got 33"},
		{"quorum 0", with(func(c *Config) { c.Quorum = 0; c.Thresholds = nil }), "quorum 0: want 1 to 3"},
		{"quorum negative", with(func(c *Config) { c.Quorum = -1; c.Thresholds = nil }), "quorum -1"},
		{"quorum above N", with(func(c *Config) { c.Quorum = 4 }), "quorum 4: want 1 to 3"},
		{"duplicate name", with(func(c *Config) { c.Members[2].Name = "alice" }), `members[2]: name "alice" listed twice`},
		{"duplicate key", with(func(c *Config) {
			c.Members[2] = Member{Name: "carol", Scheme: alice.Scheme, PublicKey: alice.PublicKey}
		}), "members[2] (carol): same key as alice"},
		{"duplicate key other case", with(func(c *Config) {
			c.Members[2] = Member{Name: "carol", Scheme: bob.Scheme, PublicKey: strings.ToUpper(bob.PublicKey)}
		}), "members[2] (carol): same key as bob"},
		{"names differing in case", with(func(c *Config) { c.Members[2].Name = "Alice" }), `members[2]: name "Alice" differs from "alice" only in case`},
		{"empty name", with(func(c *Config) { c.Members[0].Name = "" }), `admin name ""`},
		{"name with space", with(func(c *Config) { c.Members[0].Name = "al ice" }), `admin name "al ice"`},
		{"name too long", with(func(c *Config) { c.Members[0].Name = strings.Repeat("a", 65) }), "admin name"},
		{"name starting with dot", with(func(c *Config) { c.Members[0].Name = ".alice" }), "admin name"},
		{"unknown scheme", with(func(c *Config) { c.Members[0].Scheme = "rsa" }), `unknown scheme "rsa"`},
		{"scheme mismatch", with(func(c *Config) { c.Members[0].Scheme = stamp.P256 }), "p256 key is 32 bytes"},
		{"key not hex", with(func(c *Config) { c.Members[0].PublicKey = "zz" + alice.PublicKey[2:] }), "public_key is not hex"},
		{"key empty", with(func(c *Config) { c.Members[0].PublicKey = "" }), "public_key is not hex"},
		{"key too long", with(func(c *Config) { c.Members[0].PublicKey = strings.Repeat("00", 65) }), "too long"},
		{"ed25519 key short", with(func(c *Config) { c.Members[0].PublicKey = alice.PublicKey[:62] }), "ed25519 key is 31 bytes"},
		{"ed25519 identity key", with(func(c *Config) { c.Members[0].PublicKey = smallOrderByOrder[0].hex }), "small order"},
		{"p256 off curve", with(func(c *Config) { c.Members[1].PublicKey = fmt.Sprintf("%x", p256OffCurveX(t)) }), "not a point on the curve"},
		{"threshold unknown kind", with(func(c *Config) { c.Thresholds = map[Kind]int{"key_delete": 3} }), `unknown kind "key_delete"`},
		{"threshold cancel kind", with(func(c *Config) { c.Thresholds = map[Kind]int{KindPolicyCancel: 2} }), "policy_cancel is a cancel kind"},
		{"threshold below quorum", with(func(c *Config) { c.Thresholds = map[Kind]int{KindKeyImport: 1} }), "key_import: 1, want 2 (the quorum) to 3"},
		{"threshold above N", with(func(c *Config) { c.Thresholds = map[Kind]int{KindPolicyChange: 4} }), "policy_change: 4, want 2 (the quorum) to 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSet(tc.c)
			if err == nil {
				t.Fatalf("accepted: %+v", s.Config())
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "admin: set: ") {
				t.Errorf("error %q, want %q", err, tc.msg)
			}
		})
	}
	// The baselines the cases mutate are accepted.
	for _, c := range []Config{good, {Members: many[:MaxMembers], Quorum: MaxMembers}, {Members: good.Members[:1], Quorum: 1}} {
		if _, err := NewSet(c); err != nil {
			t.Errorf("baseline refused: %v", err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c := testConfig(t)
	c.Members[1].PublicKey = strings.ToUpper(c.Members[1].PublicKey)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	got := set.Config()
	if got.Members[1].PublicKey != strings.ToLower(c.Members[1].PublicKey) {
		t.Errorf("key not normalized: %s", got.Members[1].PublicKey)
	}
	if got.Quorum != 2 || got.Thresholds[KindPolicyChange] != 3 || len(got.Members) != 3 {
		t.Errorf("config %+v", got)
	}
	// Config returns a copy.
	got.Members[0].Name = "eve"
	got.Thresholds[KindPolicyChange] = 2
	if again := set.Config(); again.Members[0].Name != "alice" || again.Thresholds[KindPolicyChange] != 3 {
		t.Error("Config shares memory with the set")
	}
	if k, ok := set.Key("bob"); !ok || k.PublicKey().Scheme != stamp.P256 {
		t.Error("Key(bob)")
	}
	if _, ok := set.Key("mallory"); ok {
		t.Error("Key(mallory)")
	}
	// A round trip gives the same set.
	b2, _ := json.Marshal(set.Config())
	if set2, err := ParseConfig(b2); err != nil || fmt.Sprint(set2.Config()) != fmt.Sprint(set.Config()) {
		t.Errorf("round trip: %v", err)
	}

	for name, in := range map[string]string{
		"unknown field":       `{"members":[],"quorum":1,"admins":[]}`,
		"duplicate threshold": `{"members":[],"quorum":1,"thresholds":{"key_create":2,"key_create":3}}`,
		"quorum string":       `{"members":[],"quorum":"2"}`,
		"too large":           `{"members":[` + strings.Repeat(" ", MaxConfigSize) + `],"quorum":1}`,
		"member unknown field": `{"members":[{"name":"a","scheme":"ed25519","public_key":"` + c.Members[0].PublicKey +
			`","weight":2}],"quorum":1}`,
	} {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), "strictjson") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
