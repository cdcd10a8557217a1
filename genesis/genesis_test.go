package genesis

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed seed corpus of FuzzParse")

const (
	minimal = `{"format":1,"keys":[{"id":"hot-0","path":"m/44'/60'/0'/0/0"}],"policy":{"version":1}}`
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	keyARN2 = "arn:aws:kms:us-east-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab"
)

// with returns the minimal configuration with its top-level fields set as
// given (raw JSON values).
func with(t testing.TB, fields map[string]string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(minimal), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		m[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	g, pol, err := Parse([]byte(with(t, map[string]string{
		"kms":        `{"region":"us-east-1","key_id":"` + keyARN + `","additional_key_ids":["` + keyARN2 + `"],"proxy_port":8001}`,
		"governance": `{"time_lock":"48h"}`,
		"audit":      `{"max_unacknowledged":10}`,
		"limits":     `{"max_unacknowledged":100}`,
	})))
	if err != nil {
		t.Fatal(err)
	}
	if pol.Version() != 1 || len(g.Keys) != 1 || g.Keys[0].ID != "hot-0" {
		t.Errorf("parsed %+v, policy version %d", g, pol.Version())
	}
	if got := g.TimeLock(); got != 48*time.Hour {
		t.Errorf("TimeLock = %v, want 48h", got)
	}
	if got := g.KMS.KeyIDs(); len(got) != 2 || got[0] != keyARN || got[1] != keyARN2 {
		t.Errorf("KeyIDs = %v", got)
	}
	if g.AdminSet() != nil {
		t.Error("an admin set without an admins section")
	}
	// The defaults.
	g, _, err = Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if g.TimeLock() != DefaultTimeLock || g.KMS != nil || g.Audit != nil || g.Limits != nil {
		t.Errorf("defaults: %+v, time lock %v", g, g.TimeLock())
	}
}

// TestParseRefuses: each refusal names what is wrong. (The enclave's own
// test, TestGenesisRefusals, checks that it refuses to start on them.)
func TestParseRefuses(t *testing.T) {
	for _, tc := range refusals(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "genesis: ") {
				t.Errorf("err = %q, want it to start with genesis:", err)
			}
		})
	}
}

type refusalCase struct{ name, doc, msg string }

func refusals(t testing.TB) []refusalCase {
	kms := func(s string) string { return with(t, map[string]string{"kms": s}) }
	return []refusalCase{
		{"empty", ``, "genesis"},
		{"not an object", `[]`, "genesis"},
		{"too large", `{"format":1,"pad":"` + strings.Repeat("x", MaxSize) + `"}`, "genesis"},
		{"wrong format", `{"format":2,"keys":[],"policy":{}}`, "format 2"},
		{"no keys", `{"format":1,"keys":[],"policy":{}}`, "keys"},
		{"bad path", `{"format":1,"keys":[{"id":"a","path":"m/x"}],"policy":{}}`, "keys[0].path"},
		{"bad id", `{"format":1,"keys":[{"id":"a b","path":"m/0"}],"policy":{}}`, "keys[0].id"},
		{"id like an address", `{"format":1,"keys":[{"id":"0xabc","path":"m/0"}],"policy":{}}`, "0x"},
		{"duplicate id", `{"format":1,"keys":[{"id":"a","path":"m/0"},{"id":"a","path":"m/1"}],"policy":{}}`, "twice"},
		{"duplicate path", `{"format":1,"keys":[{"id":"a","path":"m/0'"},{"id":"b","path":"m/0h"}],"policy":{}}`, "twice"},
		{"unknown field", with(t, map[string]string{"extra": "1"}), "extra"},
		{"duplicate field", `{"format":1,"format":1,"keys":[{"id":"a","path":"m/0"}],"policy":{}}`, "duplicate"},
		{"policy missing", `{"format":1,"keys":[{"id":"a","path":"m/0"}]}`, "policy"},
		{"policy invalid", with(t, map[string]string{"policy": `{"version":1,"clients":7}`}), "genesis"},
		{"audit backlog 0", with(t, map[string]string{"audit": `{"max_unacknowledged":0}`}), "audit.max_unacknowledged"},
		{"audit backlog too large", with(t, map[string]string{"audit": `{"max_unacknowledged":1000001}`}), "audit.max_unacknowledged"},
		{"audit unknown field", with(t, map[string]string{"audit": `{"max":5}`}), "max"},
		{"limits negative", with(t, map[string]string{"limits": `{"max_unacknowledged":-1}`}), "limits.max_unacknowledged"},
		{"limits too large", with(t, map[string]string{"limits": `{"max_unacknowledged":1000001}`}), "limits.max_unacknowledged"},
		{"time lock not a duration", with(t, map[string]string{"governance": `{"time_lock":"a day"}`}), "governance.time_lock"},
		{"time lock negative", with(t, map[string]string{"governance": `{"time_lock":"-1h"}`}), "governance.time_lock"},
		{"time lock too long", with(t, map[string]string{"governance": `{"time_lock":"721h"}`}), "governance.time_lock"},
		{"admins invalid", with(t, map[string]string{"admins": `{"quorum":1}`}), "admins"},
		{"kms region", kms(`{"region":"Mars","key_id":"` + keyARN + `"}`), "kms.region"},
		{"kms alias", kms(`{"region":"us-east-1","key_id":"alias/seed"}`), "aliases are refused"},
		{"kms key twice", kms(`{"region":"us-east-1","key_id":"` + keyARN + `","additional_key_ids":["` + keyARN + `"]}`), "listed twice"},
		{"kms too many keys", kms(`{"region":"us-east-1","key_id":"` + keyARN + `","additional_key_ids":[` + arns(MaxAdditionalKeyIDs+1) + `]}`), "additional_key_ids"},
		{"kms root too large", kms(`{"region":"us-east-1","key_id":"` + keyARN + `","root_ca_pem":"` + strings.Repeat("A", MaxRootCAPEMSize+1) + `"}`), "root_ca_pem"},
	}
}

// arns returns n distinct key ARNs as a JSON list's elements.
func arns(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"arn:aws:kms:us-east-1:111122223333:key/` + strings.Repeat(string(rune('a'+i)), 8) + `"`)
	}
	return b.String()
}

// TestSeedCorpus keeps testdata/fuzz/FuzzParse in step with the valid
// configurations above and the refusals.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParse", "seed_", '_', seeds(t), *updateCorpus, "go test ./genesis -run TestSeedCorpus -update-corpus")
}

func seeds(t testing.TB) map[string][]byte {
	out := map[string][]byte{
		"minimal": []byte(minimal),
		"full": []byte(with(t, map[string]string{
			"kms":        `{"region":"us-east-1","key_id":"` + keyARN + `"}`,
			"governance": `{"time_lock":"1h"}`, "audit": `{"max_unacknowledged":5}`, "limits": `{"max_unacknowledged":7}`,
		})),
	}
	for _, tc := range refusals(t) {
		if len(tc.doc) > 4096 { // the fuzzer grows its own large inputs
			continue
		}
		out["refused_"+strings.ReplaceAll(tc.name, " ", "_")] = []byte(tc.doc)
	}
	return out
}

// FuzzParse: Parse never panics, and what it accepts is valid: keys within
// bounds with distinct ids and paths, and every bounded field in range.
func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, pol, err := Parse(b)
		if err != nil {
			if g != nil || pol != nil {
				t.Fatal("a refusal with a result")
			}
			return
		}
		if len(g.Keys) == 0 || len(g.Keys) > MaxKeys || pol == nil {
			t.Fatalf("accepted %d keys, policy %v", len(g.Keys), pol)
		}
		ids := map[string]bool{}
		for _, k := range g.Keys {
			if ids[k.ID] || strings.HasPrefix(k.ID, "0x") {
				t.Fatalf("accepted key id %q", k.ID)
			}
			ids[k.ID] = true
		}
		if tl := g.TimeLock(); tl < 0 || tl > MaxTimeLock {
			t.Fatalf("accepted time lock %v", tl)
		}
		if g.Audit != nil && (g.Audit.MaxUnacknowledged < 1 || g.Audit.MaxUnacknowledged > MaxAuditUnacknowledged) {
			t.Fatalf("accepted audit backlog %d", g.Audit.MaxUnacknowledged)
		}
	})
}
