package policy

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// This file holds the configuration of the stateful rules: rolling limits,
// velocity, approvals and freezes. The package parses, validates and exposes
// it; the enclave enforces it, fed by what allowed Decisions count
// (Decision.Counted: their movements, and their allowance grants as
// transfers of the granted amount to the spender) and by their operator
// grants (Decision.OperatorGrants).

// LimitRule is a rolling-window limit on the value a key moves and the
// allowances it grants. Each ERC-20 grant (approve, increaseAllowance,
// EIP-2612 and Permit2 permits) counts like a transfer of its amount to
// its spender, so that repeated grants add up; an unlimited grant exceeds
// every limit on its token; revocations count nothing.
type LimitRule struct {
	ChainID uint64 `json:"chain_id"`
	// Asset is "native" for the chain's coin, or the address of one of the
	// key's tokens on the chain.
	Asset string `json:"asset"`
	// Destination, optional, limits only what moves to this address (and
	// what is granted to it as a spender).
	Destination string `json:"destination,omitempty"`
	// Window is a duration of 1m to 720h (30 days) written with h, m and s
	// units only, such as "24h" or "1h30m".
	Window string `json:"window"`
	// Max is a decimal integer of the asset's base units (wei).
	Max string `json:"max"`
}

// VelocityRule caps the number of transactions a key signs in a window.
type VelocityRule struct {
	Window          string `json:"window"`
	MaxTransactions uint64 `json:"max_transactions"`
}

// ApprovalRule requires approver signatures for requests that move or
// grant more than a threshold, the sum of a request's movements and grants
// of the threshold's chain and asset (an unlimited grant exceeds every
// threshold of its token), and for every request that makes an operator
// of a whole NFT collection (setApprovalForAll), which no amount bounds.
type ApprovalRule struct {
	Above     []ApprovalThreshold `json:"above"`
	Quorum    uint64              `json:"quorum"`
	Approvers []Approver          `json:"approvers"`
}

// ApprovalThreshold is an amount of an asset above which approvals are
// needed.
type ApprovalThreshold struct {
	ChainID uint64 `json:"chain_id"`
	// Asset is "native" or a token address, as in LimitRule.
	Asset string `json:"asset"`
	// Amount is a decimal integer of base units.
	Amount string `json:"amount"`
}

// Approver is a person (or service) whose signature counts toward a
// quorum, identified like a client: a stamp scheme and public key.
type Approver struct {
	Name      string `json:"name"`
	Scheme    string `json:"scheme"`
	PublicKey string `json:"public_key"`
}

// FreezeRule says when a key freezes.
type FreezeRule struct {
	// Refusals freezes after this many refusals within Window; 0 counts
	// none (then OnLimitBreach must be set, and Window empty).
	Refusals uint64 `json:"refusals"`
	Window   string `json:"window,omitempty"`
	// OnLimitBreach freezes on a request that breaches a rolling limit.
	OnLimitBreach bool `json:"on_limit_breach"`
	// Scope is "key" (freeze this key) or "all" (freeze every key).
	Scope string `json:"scope"`
}

// Limit is a validated LimitRule.
type Limit struct {
	ChainID uint64
	// Asset is the token, zero for the native coin.
	Asset ethtx.Address
	// Destination, when not nil, limits only what moves to it.
	Destination *ethtx.Address
	Window      time.Duration
	Max         *big.Int
}

// Velocity is a validated VelocityRule.
type Velocity struct {
	Window          time.Duration
	MaxTransactions uint64
}

// Approvals is a validated ApprovalRule.
type Approvals struct {
	Above     []Threshold
	Quorum    int
	Approvers []ApproverKey
}

// Threshold is a validated ApprovalThreshold.
type Threshold struct {
	ChainID uint64
	// Asset is the token, zero for the native coin.
	Asset  ethtx.Address
	Amount *big.Int
}

// ApproverKey is a validated Approver.
type ApproverKey struct {
	Name      string
	PublicKey stamp.PublicKey
}

// FreezeScope is what a freeze freezes.
type FreezeScope string

// The freeze scopes.
const (
	FreezeKey FreezeScope = "key" // the key whose requests tripped it
	FreezeAll FreezeScope = "all" // every key of the enclave
)

// Freeze is a validated FreezeRule.
type Freeze struct {
	// Refusals is 0 when refusals do not freeze; Window is then 0.
	Refusals      uint64
	Window        time.Duration
	OnLimitBreach bool
	Scope         FreezeScope
}

// Window bounds.
const (
	MinWindow = time.Minute
	MaxWindow = 30 * 24 * time.Hour
)

var windowPattern = regexp.MustCompile(`^([1-9][0-9]{0,5}h)?([1-9][0-9]{0,5}m)?([1-9][0-9]{0,6}s)?$`)

// parseWindow parses a window: h, m and s units in that order, each a
// positive integer without leading zeros, from MinWindow to MaxWindow.
func parseWindow(s string) (time.Duration, error) {
	if s == "" || !windowPattern.MatchString(s) {
		return 0, errors.New(`want a duration such as "24h", "1h30m" or "90s" (units h, m, s)`)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < MinWindow || d > MaxWindow {
		return 0, fmt.Errorf("%s is outside 1m to 720h (30 days)", s)
	}
	return d, nil
}

// approverRegistry checks approvers across the whole policy: no approver
// key is a client key, and a key has one name (and a name one key)
// everywhere.
type approverRegistry struct {
	clients map[string]string // client stamp key -> client name
	names   map[string]string // approver name -> key
	keys    map[string]string // approver key -> name
}

func (r *approverRegistry) add(name string, pub stamp.PublicKey) error {
	k := pub.String()
	if c, ok := r.clients[k]; ok {
		return fmt.Errorf("the key of client %q: approvers and clients must hold distinct keys (a client may not approve its own requests)", c)
	}
	if n, ok := r.keys[k]; ok && n != name {
		return fmt.Errorf("the same key as approver %q: one key, one name", n)
	}
	if other, ok := r.names[name]; ok && other != k {
		return fmt.Errorf("name %q is another approver's", name)
	}
	r.keys[k], r.names[name] = name, k
	return nil
}

// parseAsset parses "native" (the zero address) or the address of one of
// the key's tokens on the chain.
func (r *keyRule) parseAsset(chain uint64, s string) (ethtx.Address, error) {
	if s == "native" {
		return ethtx.Address{}, nil
	}
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf(`want "native" or a token address: %w`, err)
	}
	if cr := r.perChain[chain]; cr == nil || cr.tokens[a] == nil {
		return a, fmt.Errorf("%s is not one of the key's tokens on chain %d", a.Hex(), chain)
	}
	return a, nil
}

func (r *keyRule) compileStateful(kr *KeyRule, approvers *approverRegistry) error {
	if len(kr.Limits) > maxLimits {
		return fmt.Errorf("limits: more than %d", maxLimits)
	}
	for j, l := range kr.Limits {
		if !slices.Contains(r.chains, l.ChainID) {
			return fmt.Errorf("limits[%d].chain_id: %d is not in chains", j, l.ChainID)
		}
		asset, err := r.parseAsset(l.ChainID, l.Asset)
		if err != nil {
			return fmt.Errorf("limits[%d].asset: %w", j, err)
		}
		lim := Limit{ChainID: l.ChainID, Asset: asset}
		if l.Destination != "" {
			d, err := parseNonZeroAddress(l.Destination)
			if err != nil {
				return fmt.Errorf("limits[%d].destination: %w", j, err)
			}
			lim.Destination = &d
		}
		if lim.Window, err = parseWindow(l.Window); err != nil {
			return fmt.Errorf("limits[%d].window: %w", j, err)
		}
		if lim.Max, err = parseAmount(l.Max); err != nil {
			return fmt.Errorf("limits[%d].max: %w", j, err)
		}
		for _, o := range r.limits {
			if o.ChainID == lim.ChainID && o.Asset == lim.Asset && o.Window == lim.Window &&
				(o.Destination == nil) == (lim.Destination == nil) && (o.Destination == nil || *o.Destination == *lim.Destination) {
				return fmt.Errorf("limits[%d]: a limit on the same chain, asset, destination and window is listed twice", j)
			}
		}
		r.limits = append(r.limits, lim)
	}

	if v := kr.Velocity; v != nil {
		w, err := parseWindow(v.Window)
		if err != nil {
			return fmt.Errorf("velocity.window: %w", err)
		}
		if v.MaxTransactions == 0 {
			return errors.New("velocity.max_transactions: must be at least 1")
		}
		r.velocity = &Velocity{Window: w, MaxTransactions: v.MaxTransactions}
	}

	if a := kr.Approvals; a != nil {
		if err := r.compileApprovals(a, approvers); err != nil {
			return fmt.Errorf("approvals.%w", err)
		}
	}

	if f := kr.Freeze; f != nil {
		fr := &Freeze{Refusals: f.Refusals, OnLimitBreach: f.OnLimitBreach, Scope: FreezeScope(f.Scope)}
		if fr.Scope != FreezeKey && fr.Scope != FreezeAll {
			return fmt.Errorf("freeze.scope: want %q or %q", FreezeKey, FreezeAll)
		}
		switch {
		case f.Refusals > 0:
			w, err := parseWindow(f.Window)
			if err != nil {
				return fmt.Errorf("freeze.window: %w", err)
			}
			fr.Window = w
		case f.Window != "":
			return errors.New("freeze.window: set only with refusals")
		case !f.OnLimitBreach:
			return errors.New("freeze: neither refusals nor on_limit_breach: it would never freeze")
		}
		r.freeze = fr
	}
	return nil
}

func (r *keyRule) compileApprovals(a *ApprovalRule, approvers *approverRegistry) error {
	if len(a.Above) == 0 || len(a.Above) > maxThresholds {
		return fmt.Errorf("above: want 1 to %d thresholds", maxThresholds)
	}
	out := &Approvals{}
	for j, t := range a.Above {
		if !slices.Contains(r.chains, t.ChainID) {
			return fmt.Errorf("above[%d].chain_id: %d is not in chains", j, t.ChainID)
		}
		asset, err := r.parseAsset(t.ChainID, t.Asset)
		if err != nil {
			return fmt.Errorf("above[%d].asset: %w", j, err)
		}
		amount, err := parseAmount(t.Amount)
		if err != nil {
			return fmt.Errorf("above[%d].amount: %w", j, err)
		}
		for _, o := range out.Above {
			if o.ChainID == t.ChainID && o.Asset == asset {
				return fmt.Errorf("above[%d]: chain %d and asset %s listed twice", j, t.ChainID, t.Asset)
			}
		}
		out.Above = append(out.Above, Threshold{ChainID: t.ChainID, Asset: asset, Amount: amount})
	}
	if len(a.Approvers) == 0 || len(a.Approvers) > maxApprovers {
		return fmt.Errorf("approvers: want 1 to %d", maxApprovers)
	}
	for j, ap := range a.Approvers {
		if !idPattern.MatchString(ap.Name) {
			return fmt.Errorf("approvers[%d].name: want 1-64 of [A-Za-z0-9._-]", j)
		}
		pub, err := stamp.ParsePublicKey(stamp.Scheme(ap.Scheme), ap.PublicKey)
		if err != nil {
			return fmt.Errorf("approvers[%d] (%s): %w", j, ap.Name, err)
		}
		for _, o := range out.Approvers {
			if o.Name == ap.Name {
				return fmt.Errorf("approvers[%d]: name %q listed twice", j, ap.Name)
			}
			if o.PublicKey.Equal(pub) {
				return fmt.Errorf("approvers[%d] (%s): the same key as %q", j, ap.Name, o.Name)
			}
		}
		if err := approvers.add(ap.Name, pub); err != nil {
			return fmt.Errorf("approvers[%d] (%s): %w", j, ap.Name, err)
		}
		out.Approvers = append(out.Approvers, ApproverKey{Name: ap.Name, PublicKey: pub})
	}
	if a.Quorum == 0 || a.Quorum > uint64(len(out.Approvers)) {
		return fmt.Errorf("quorum: want 1 to %d (the number of approvers)", len(out.Approvers))
	}
	out.Quorum = int(a.Quorum)
	r.approvals = out
	return nil
}

func cloneInt(v *big.Int) *big.Int {
	if v == nil {
		return nil
	}
	return new(big.Int).Set(v)
}

// KeyLimits returns copies of the rolling limits of key keyID, in document
// order (nil if none, or no such key).
func (p *Policy) KeyLimits(keyID string) []Limit {
	kr, ok := p.keys[keyID]
	if !ok || len(kr.limits) == 0 {
		return nil
	}
	out := make([]Limit, len(kr.limits))
	for i, l := range kr.limits {
		out[i] = l
		out[i].Max = cloneInt(l.Max)
		if l.Destination != nil {
			d := *l.Destination
			out[i].Destination = &d
		}
	}
	return out
}

// KeyVelocity returns the velocity limit of key keyID, if it has one.
func (p *Policy) KeyVelocity(keyID string) (Velocity, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.velocity == nil {
		return Velocity{}, false
	}
	return *kr.velocity, true
}

// KeyApprovals returns a copy of the approval rule of key keyID, if it has
// one.
func (p *Policy) KeyApprovals(keyID string) (Approvals, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.approvals == nil {
		return Approvals{}, false
	}
	a := Approvals{Quorum: kr.approvals.Quorum}
	for _, t := range kr.approvals.Above {
		a.Above = append(a.Above, Threshold{ChainID: t.ChainID, Asset: t.Asset, Amount: cloneInt(t.Amount)})
	}
	for _, ap := range kr.approvals.Approvers {
		a.Approvers = append(a.Approvers, ApproverKey{Name: ap.Name, PublicKey: stamp.PublicKey{Scheme: ap.PublicKey.Scheme, Key: bytes.Clone(ap.PublicKey.Key)}})
	}
	return a, true
}

// KeyFreeze returns the freeze rule of key keyID, if it has one.
func (p *Policy) KeyFreeze(keyID string) (Freeze, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.freeze == nil {
		return Freeze{}, false
	}
	return *kr.freeze, true
}
