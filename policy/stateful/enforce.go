package stateful

import (
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
)

// Source is a policy's stateful rules by key, as *policy.Policy hands them
// out. The functions below read the rules in force from it. It hands out
// a key's [Rules] whole, so that a new stateful rule, a field of Rules,
// reaches the enclave without a new accessor.
type Source interface {
	// KeyIDs lists the policy's keys.
	KeyIDs() []string
	// KeyRules returns a copy of the stateful rules of key (the rolling
	// limits in document order), and whether the policy has the key.
	KeyRules(key string) (Rules, bool)
}

// A ViewSource is a Source that also hands out its rules without copying
// them (*policy.Policy does): the checks made for every request
// (UnlimitedGrant, NeedsApproval, Freezes.AfterRefusal) read them through
// it, so that a request does not copy all of its key's rules.
type ViewSource interface {
	Source
	// KeyRulesView returns the stateful rules of key, shared with the
	// source: read only. Whatever leaves the caller is copied.
	KeyRulesView(key string) (*Rules, bool)
}

// view returns the rules of key in src, read only: shared when src is a
// ViewSource, else a copy.
func view(src Source, key string) *Rules {
	if v, ok := src.(ViewSource); ok {
		if r, ok := v.KeyRulesView(key); ok {
			return r
		}
		return &Rules{}
	}
	r, _ := src.KeyRules(key)
	return &r
}

// Counted is value that the stateful rules (rolling limits, approval
// thresholds) count for an allowed request: a movement of the native coin
// or an ERC-20 token, or an ERC-20 allowance grant, which counts like a
// transfer of the granted amount to the spender (the spender can move that
// much anywhere without another signature). policy.Decision.Counted lists
// a decision's.
type Counted struct {
	ChainID uint64
	// Asset is the token, zero for the native coin.
	Asset ethtx.Address
	// To is the recipient of a movement, the spender of a grant.
	To ethtx.Address
	// Amount is positive, below 2^256; nil when Unlimited.
	Amount *big.Int
	// Unlimited is set for an unlimited grant (the largest integer of its
	// type: 2^256-1, or 2^160-1 for a Permit2 allowance): more than any
	// limit or threshold can allow.
	Unlimited bool
	// Grant is the kind of the grant counted (policy.GrantKind, such as
	// "approve"), empty for a movement.
	Grant string
}

// TrackerRules returns the Tracker's rules for the policy src: every
// rolling limit of every key, the Index-th of a key with ID
// RuleID{KindRollingLimit, key, Index}, and every velocity limit, with ID
// RuleID{KindVelocity, key, 0}.
func TrackerRules(src Source) ([]TrackedLimit, []TrackedVelocity) {
	var rules []TrackedLimit
	var vels []TrackedVelocity
	for _, k := range src.KeyIDs() {
		r, _ := src.KeyRules(k)
		for i, l := range r.Limits {
			rules = append(rules, TrackedLimit{
				ID: RuleID{Kind: KindRollingLimit, Key: k, Index: i}, Key: k,
				ChainID: l.ChainID, Asset: l.Asset, Destination: l.Destination, Window: l.Window, Max: l.Max,
			})
		}
		if v := r.Velocity; v != nil {
			vels = append(vels, TrackedVelocity{ID: RuleID{Kind: KindVelocity, Key: k}, Key: k, Window: v.Window, MaxTransactions: v.MaxTransactions})
		}
	}
	return rules, vels
}

// TrackerOptions returns the Tracker's options for the policy src:
// refusals are kept as long as the longest freeze window needs, and with
// requireEvery > 0 the Tracker refuses once that many transactions are
// beyond the newest checkpoint the host acknowledged storing (see
// docs/limits.md, the replay bound).
func TrackerOptions(src Source, requireEvery int) Options {
	o := Options{RefusalWindow: DefaultRefusalWindow}
	for _, k := range src.KeyIDs() {
		if r, _ := src.KeyRules(k); r.Freeze != nil && r.Freeze.Window > o.RefusalWindow {
			o.RefusalWindow = r.Freeze.Window
		}
	}
	if requireEvery > 0 {
		o.RequireFresh, o.CheckpointEvery = true, requireEvery
	}
	return o
}

// Spends are what counted value is against the limits: every movement of
// coin or tokens, and every ERC-20 allowance grant as a spend of the
// granted amount to the spender, against the signing key's limits,
// including those of a Safe the key signs for (the key is what moves
// them). NFTs are left to the transfer and operator rules; revocations
// count nothing (policy.Decision.Counted lists neither).
//
// An unlimited grant counts as two spends of 2^256-1, whose sum is more
// than any limit holds: [UnlimitedGrant] refuses it first, with a clearer
// message, and this keeps the limits closed should it not.
func Spends(counted []Counted) []Spend {
	return AppendSpends(make([]Spend, 0, len(counted)), counted)
}

// AppendSpends appends Spends(counted) to out and returns the result: with
// room of the caller's (Tracker.Reserve does not keep its spends), no
// allocation.
func AppendSpends(out []Spend, counted []Counted) []Spend {
	for _, c := range counted {
		if c.Unlimited {
			out = append(out, Spend{ChainID: c.ChainID, Asset: c.Asset, To: c.To, Amount: maxUint256},
				Spend{ChainID: c.ChainID, Asset: c.Asset, To: c.To, Amount: maxUint256})
			continue
		}
		out = append(out, Spend{ChainID: c.ChainID, Asset: c.Asset, To: c.To, Amount: c.Amount})
	}
	return out
}

var maxUint256 = new(big.Int).Sub(two256, big.NewInt(1))

// UnlimitedGrant returns why a request of key that counts counted must be
// refused (rule KindRollingLimit.Rule()) when it grants an unlimited
// allowance of a token that one of the key's rolling limits counts: no
// limit can bound an allowance without end.
func UnlimitedGrant(src Source, key string, counted []Counted) (string, bool) {
	var limits []Limit
	for _, c := range counted {
		if !c.Unlimited {
			continue
		}
		if limits == nil {
			limits = view(src, key).Limits
		}
		for _, l := range limits {
			if l.ChainID == c.ChainID && l.Asset == c.Asset && (l.Destination == nil || *l.Destination == c.To) {
				return fmt.Sprintf("%s grant of an unlimited allowance of token %s to %s on chain %d: the key's rolling limit on the token (at most %s base units per %v) cannot bound it; grant a finite amount, which counts against the limit", c.Grant, c.Asset.Hex(), c.To.Hex(), c.ChainID, l.Max, l.Window), true
			}
		}
	}
	return "", false
}

// NeedsApproval returns the key's approval rule when a request of key
// that counts counted needs its approvers: when, for a chain and asset
// with a threshold, the sum of the request's movements and allowance
// grants exceeds it, an unlimited grant exceeding every threshold; or when
// it makes an operator of a whole NFT collection (operatorGrant:
// setApprovalForAll, policy.Decision.OperatorGrants), which no amount
// bounds, and the key has approvers at all.
func NeedsApproval(src Source, key string, counted []Counted, operatorGrant bool) (Approvals, bool) {
	r := view(src, key)
	if r.Approvals == nil || r.Approvals.Quorum == 0 {
		return Approvals{}, false
	}
	ap := r.Approvals // shared: only a copy is returned
	if operatorGrant {
		return ap.Clone(), true
	}
	type scope struct {
		chain uint64
		asset ethtx.Address
	}
	sums := map[scope]*big.Int{}
	for _, c := range counted {
		for _, th := range ap.Above {
			if th.ChainID != c.ChainID || th.Asset != c.Asset {
				continue
			}
			if c.Unlimited {
				return ap.Clone(), true
			}
			k := scope{c.ChainID, c.Asset}
			if sums[k] == nil {
				sums[k] = new(big.Int)
			}
			if sums[k].Add(sums[k], c.Amount).Cmp(th.Amount) > 0 {
				return ap.Clone(), true
			}
		}
	}
	return Approvals{}, false
}
