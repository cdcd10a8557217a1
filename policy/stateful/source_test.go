package stateful

import (
	"math/big"
	"slices"
	"time"
)

// source is a Source for tests: a policy's stateful rules by key.
type source map[string]Rules

func (s source) KeyIDs() []string {
	ids := make([]string, 0, len(s))
	for k := range s {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	return ids
}

func (s source) KeyRules(key string) (Rules, bool) {
	r, ok := s[key]
	return r.Clone(), ok
}

// compatSource is the policy whose rules wrote
// testdata/snapshot-7f43a4e.bin (see TestRestoreSnapshotOf7f43a4e).
func compatSource() source {
	return source{
		"cold": {
			Limits: []Limit{{ChainID: 1, Window: 24 * time.Hour, Max: big.NewInt(1000)}},
			Freeze: &Freeze{Refusals: 3, Window: 24 * time.Hour, Scope: FreezeKey},
		},
		"hot": {
			Limits: []Limit{
				{ChainID: 1, Window: 24 * time.Hour, Max: big.NewInt(100)},
				{ChainID: 1, Asset: usdc, Window: time.Hour, Max: big.NewInt(5000)},
				{ChainID: 1, Destination: ptr(destB), Window: 48 * time.Hour, Max: big.NewInt(60)},
			},
			Velocity: &Velocity{Window: 10 * time.Minute, MaxTransactions: 10},
		},
	}
}
