package admin

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// freezeBodyCases are freeze bodies, valid (err "") or refused with an
// error containing err. FuzzVerify seeds its corpus with the refused ones.
var freezeBodyCases = []struct {
	name, body string
	want       FreezeBody
	err        string
}{
	{name: "key", body: `{"key_id":"hot-0","reason":"suspected compromise"}`, want: FreezeBody{KeyID: "hot-0", Reason: "suspected compromise"}},
	{name: "all_keys", body: `{"all_keys":true,"reason":"incident 42"}`, want: FreezeBody{AllKeys: true, Reason: "incident 42"}},
	{name: "members_any_order", body: `{"reason":"r","key_id":"k"}`, want: FreezeBody{KeyID: "k", Reason: "r"}},
	{name: "unicode_reason", body: `{"key_id":"k","reason":"Störung – Schlüssel gesperrt"}`, want: FreezeBody{KeyID: "k", Reason: "Störung – Schlüssel gesperrt"}},
	{name: "longest_reason", body: `{"key_id":"k","reason":"` + strings.Repeat("x", MaxFreezeReason) + `"}`, want: FreezeBody{KeyID: "k", Reason: strings.Repeat("x", MaxFreezeReason)}},

	{name: "empty", body: `{}`, err: "key_id or all_keys is missing"},
	{name: "no_reason", body: `{"key_id":"hot-0"}`, err: "reason is missing"},
	{name: "null_reason", body: `{"key_id":"hot-0","reason":null}`, err: "reason is missing"},
	{name: "empty_reason", body: `{"key_id":"hot-0","reason":""}`, err: "reason is empty"},
	{name: "long_reason", body: `{"key_id":"hot-0","reason":"` + strings.Repeat("x", MaxFreezeReason+1) + `"}`, err: "at most 256"},
	{name: "newline_reason", body: `{"key_id":"hot-0","reason":"a\nforged line"}`, err: "not printable"},
	{name: "escape_reason", body: `{"key_id":"hot-0","reason":"red \u001b[31m"}`, err: "not printable"},
	{name: "bidi_reason", body: `{"key_id":"hot-0","reason":"abc\u202edcb"}`, err: "not printable"},
	{name: "tab_reason", body: `{"key_id":"hot-0","reason":"a\tb"}`, err: "not printable"},
	{name: "padded_reason", body: `{"key_id":"hot-0","reason":" why"}`, err: "white space"},
	{name: "both", body: `{"key_id":"hot-0","all_keys":true,"reason":"r"}`, err: "not both"},
	{name: "all_keys_false", body: `{"all_keys":false,"reason":"r"}`, err: "false is not a spelling"},
	{name: "all_keys_false_with_key", body: `{"key_id":"hot-0","all_keys":false,"reason":"r"}`, err: "not both"},
	{name: "all_keys_string", body: `{"all_keys":"true","reason":"r"}`, err: "all_keys"},
	{name: "null_key", body: `{"key_id":null,"reason":"r"}`, err: "missing"},
	{name: "bad_key_id", body: `{"key_id":"hot 0","reason":"r"}`, err: "key_id"},
	{name: "address_key_id", body: `{"key_id":"0xabc","reason":"r"}`, err: "0x"},
	{name: "empty_key_id", body: `{"key_id":"","reason":"r"}`, err: "key_id"},
	{name: "unknown_member", body: `{"key_id":"hot-0","reason":"r","keys":["hot-1"]}`, err: "unknown"},
	{name: "duplicate_member", body: `{"key_id":"hot-0","key_id":"hot-1","reason":"r"}`, err: "duplicate"},
	{name: "array", body: `["hot-0"]`, err: "want an object"},
}

// TestFreezeBody: the freeze body decodes strictly, through ParseCommand
// (the enclave's path) and Command.Freeze alike.
func TestFreezeBody(t *testing.T) {
	for _, c := range freezeBodyCases {
		t.Run(c.name, func(t *testing.T) {
			cmd, err := ParseCommand(rawCommand(KindFreeze, testGenesis, testNB, testNA, c.body))
			if c.err != "" {
				if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an ErrMalformed saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := cmd.Freeze()
			if err != nil || *got != c.want {
				t.Fatalf("got %+v, %v, want %+v", got, err, c.want)
			}
			// What NewCommand writes from the decoded body decodes the same.
			b, err := NewCommand(KindFreeze, testGenesis, cmd.NotBefore, cmd.NotAfter, *got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if g2, err := again.Freeze(); err != nil || *g2 != c.want {
				t.Fatalf("round trip: %+v, %v", g2, err)
			}
		})
	}
}

// TestFreezeThreshold: one admin freezes by default, whatever the quorum;
// thresholds may raise the freeze threshold to 1..N, below the quorum too,
// and Verify enforces it.
func TestFreezeThreshold(t *testing.T) {
	cmd := validCommand(KindFreeze)
	for _, tc := range []struct {
		name       string
		thresholds map[Kind]int
		want       int
		err        string
	}{
		{name: "default", want: 1},
		{name: "raised_to_quorum", thresholds: map[Kind]int{KindFreeze: 2}, want: 2},
		{name: "raised_to_all", thresholds: map[Kind]int{KindFreeze: 3}, want: 3},
		{name: "explicit_one", thresholds: map[Kind]int{KindFreeze: 1}, want: 1},
		{name: "zero", thresholds: map[Kind]int{KindFreeze: 0}, err: "want 1 to 3"},
		{name: "above_members", thresholds: map[Kind]int{KindFreeze: 4}, err: "want 1 to 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			c.Quorum, c.Thresholds = 2, tc.thresholds
			set, err := NewSet(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("NewSet: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Threshold(KindFreeze); got != tc.want {
				t.Fatalf("Threshold(freeze) = %d, want %d", got, tc.want)
			}
			names := []string{"alice", "bob", "carol"}
			for n := 1; n <= 3; n++ {
				_, signers, err := set.Verify(signedBy(t, cmd, names[:n]...), testNow, testGenesis)
				switch {
				case n < tc.want && !errors.Is(err, ErrQuorum):
					t.Errorf("%d signatures of %d needed: %v", n, tc.want, err)
				case n >= tc.want && (err != nil || !slices.Equal(signers, names[:n])):
					t.Errorf("%d signatures of %d needed: %v %v", n, tc.want, signers, err)
				}
			}
		})
	}
	// The quorum of other kinds is untouched by a freeze threshold.
	c := testConfig(t)
	c.Thresholds = map[Kind]int{KindFreeze: 1}
	set, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	if set.Threshold(KindUnfreeze) != 2 {
		t.Errorf("unfreeze threshold %d, want the quorum 2", set.Threshold(KindUnfreeze))
	}
	// ParseConfig takes the JSON spelling.
	if _, err := ParseConfig([]byte(`{"members":[],"quorum":1,"thresholds":{"freeze":2}}`)); err == nil {
		t.Error("an empty set parsed")
	}
}
