package stateful

import (
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

// TestRuleIDString: the string forms are those the enclave wrote before
// rule ids were typed (refusals, audit records, boot records name them).
func TestRuleIDString(t *testing.T) {
	for _, tc := range []struct {
		id   RuleID
		want string
	}{
		{RuleID{Kind: KindRollingLimit, Key: "hot", Index: 0}, "rolling_limit:hot:0"},
		{RuleID{Kind: KindRollingLimit, Key: "cold.2", Index: 17}, "rolling_limit:cold.2:17"},
		{RuleID{Kind: KindVelocity, Key: "hot"}, "velocity:hot"},
		{RuleID{Kind: KindVelocity, Key: "hot", Index: 2}, "velocity:hot:2"},
		{RuleID{}, ""},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.id, got, tc.want)
		}
		if tc.want == "" {
			continue
		}
		back, err := ParseRuleID(tc.want)
		if err != nil || back != tc.id {
			t.Errorf("ParseRuleID(%q) = %+v, %v; want %+v", tc.want, back, err, tc.id)
		}
	}
	if KindRollingLimit.Rule() != refusal.RuleRollingLimit || KindVelocity.Rule() != refusal.RuleVelocity || Kind(0).Rule() != "" || Kind(9).Rule() != "" {
		t.Fatal("Kind.Rule")
	}
}

// parseRuleIDRefusals are strings ParseRuleID must refuse.
var parseRuleIDRefusals = map[string]string{
	"empty":                 "",
	"no key":                "velocity",
	"empty key":             "velocity:",
	"empty key with index":  "rolling_limit::0",
	"no index":              "rolling_limit:hot",
	"empty index":           "rolling_limit:hot:",
	"leading zero":          "rolling_limit:hot:01",
	"sign":                  "rolling_limit:hot:+1",
	"negative":              "rolling_limit:hot:-1",
	"space":                 "rolling_limit:hot: 1",
	"index too large":       "rolling_limit:hot:4096",
	"huge index":            "rolling_limit:hot:99999999999999999999999",
	"velocity index 0":      "velocity:hot:0",
	"unknown kind":          "checkpoint:hot",
	"kind of another case":  "Rolling_limit:hot:0",
	"too many parts":        "rolling_limit:a:b:1",
	"trailing colon":        "velocity:hot:",
	"too long":              "velocity:" + strings.Repeat("k", MaxIDLen),
	"refusal rule, no id":   refusal.RuleRollingLimit,
	"prefix of another one": "rolling_limitx:hot:0",
}

func TestParseRuleIDRefuses(t *testing.T) {
	for name, s := range parseRuleIDRefusals {
		if id, err := ParseRuleID(s); err == nil || !strings.HasPrefix(err.Error(), "stateful: rule id") {
			t.Errorf("%s: ParseRuleID(%q) = %+v, %v; want an error", name, s, id, err)
		}
	}
}

// TestTrackerRulesIDs: the ids TrackerRules gives a policy's rules are
// today's strings, each limit's index its place in the key's list, and
// the Tracker takes them.
func TestTrackerRulesIDs(t *testing.T) {
	src := compatSource()
	rules, vels := TrackerRules(src)
	var got []string
	for _, r := range rules {
		got = append(got, r.ID.String())
	}
	for _, v := range vels {
		got = append(got, v.ID.String())
	}
	want := []string{"rolling_limit:cold:0", "rolling_limit:hot:0", "rolling_limit:hot:1", "rolling_limit:hot:2", "velocity:hot"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ids %v, want %v", got, want)
	}
	if _, err := NewTracker(rules, vels, TrackerOptions(src, 0)); err != nil {
		t.Fatal(err)
	}
	if o := TrackerOptions(src, 5); o.RefusalWindow != 24*time.Hour || !o.RequireFresh || o.CheckpointEvery != 5 {
		t.Fatalf("options %+v", o)
	}
}

// FuzzParseRuleID: ParseRuleID never panics, and what it accepts is
// canonical: String gives back its input, and the Tracker takes it as the
// id of a rule of its kind and key.
func FuzzParseRuleID(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseRuleID(string(b))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "stateful: rule id") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if id.String() != string(b) {
			t.Fatalf("ParseRuleID(%q) = %+v, whose String is %q", b, id, id.String())
		}
		if err := id.check(id.Kind, id.Key); err != nil {
			t.Fatalf("ParseRuleID(%q) accepts an id the Tracker refuses: %v", b, err)
		}
	})
}

func seedParseRuleID() map[string][]byte {
	seeds := map[string][]byte{
		"valid_limit":       []byte("rolling_limit:hot:0"),
		"valid_limit_255":   []byte("rolling_limit:hot-wallet.1:255"),
		"valid_velocity":    []byte("velocity:hot"),
		"valid_velocity_3":  []byte("velocity:hot:3"),
		"valid_largest_idx": []byte("rolling_limit:k:4095"),
	}
	for name, s := range parseRuleIDRefusals {
		seeds["bad_"+name] = []byte(s)
	}
	return seeds
}

// TestParseRuleIDSeedCorpus checks that testdata/fuzz/FuzzParseRuleID holds
// every seed (go test ./policy/stateful -run TestParseRuleIDSeedCorpus
// -update-corpus writes them).
func TestParseRuleIDSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParseRuleID", "seed_", '_', seedParseRuleID(), *updateCorpus, "go test ./policy/stateful -run TestParseRuleIDSeedCorpus -update-corpus")
}
