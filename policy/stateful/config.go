package stateful

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// This file holds the configuration of the stateful rules as the policy
// document writes it (the JSON types), its validation, and its compiled
// form. Package policy parses the document and calls [Compile] for each
// key; the enclave reads the compiled rules back from the policy and
// enforces them with a [Tracker], the [Freezes] and [NeedsApproval].

// Caps on a key's stateful sections, on top of the policy document's size
// cap (policy.MaxDocumentSize).
const (
	maxLimits     = 256 // rolling limits of a key
	maxThresholds = 256 // approval thresholds of a key
	maxApprovers  = 64  // approvers of a key
	// maxAmountDigits caps a decimal amount: 2^256-1 has 78 digits.
	maxAmountDigits = 78
)

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

// Window bounds of the policy document (the Tracker takes windows up to
// MaxTrackedWindow).
const (
	MinWindow = time.Minute
	MaxWindow = 30 * 24 * time.Hour
)

var windowPattern = regexp.MustCompile(`^([1-9][0-9]{0,5}h)?([1-9][0-9]{0,5}m)?([1-9][0-9]{0,6}s)?$`)

// ParseWindow parses a window: h, m and s units in that order, each a
// positive integer without leading zeros, from MinWindow to MaxWindow.
func ParseWindow(s string) (time.Duration, error) {
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

// ParseAmount parses a decimal integer below 2^256 without sign or leading
// zeros: every amount of the policy document (limits, thresholds, and
// package policy's own caps) is written so.
func ParseAmount(s string) (*big.Int, error) {
	if s == "" || len(s) > maxAmountDigits || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return nil, errors.New("want a decimal integer without leading zeros")
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(two256) >= 0 {
		return nil, errors.New("want an integer below 2^256")
	}
	return v, nil
}

var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

// parseDestination parses a limit's destination: any address but the zero
// address, which is no one's (as package policy's allowlists).
func parseDestination(s string) (ethtx.Address, error) {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		return a, err
	}
	if a == (ethtx.Address{}) {
		return a, errors.New("the zero address is not allowed")
	}
	return a, nil
}

// Approvers checks approvers across a whole policy: no approver key is a
// client key, and a key has one name (and a name one key) everywhere.
// Package policy makes one per document and hands it to [Compile] for
// every key.
type Approvers struct {
	clients map[string]string // client stamp key -> client name
	names   map[string]string // approver name -> key
	keys    map[string]string // approver key -> name
}

// NewApprovers returns the registry of a policy whose clients are
// clients (stamp public key, as stamp.PublicKey.String, to client name).
func NewApprovers(clients map[string]string) *Approvers {
	return &Approvers{clients: clients, names: map[string]string{}, keys: map[string]string{}}
}

func (r *Approvers) add(name string, pub stamp.PublicKey) error {
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

// KeyConfig is the stateful sections of a key rule of the policy document.
// policy.KeyRule embeds it, so that encoding/json (and strictjson) read and
// write its fields as the key rule's own, after the stateless ones: a new
// section is a field here, with its JSON name, and nothing in package
// policy. Every field must be optional (omitempty), so that a document
// without the section keeps its canonical encoding, and hash.
type KeyConfig struct {
	// Limits are rolling-window limits on value moved.
	Limits []LimitRule `json:"limits,omitempty"`
	// Velocity caps the number of transactions in a rolling window.
	Velocity *VelocityRule `json:"velocity,omitempty"`
	// Approvals requires approver signatures above thresholds.
	Approvals *ApprovalRule `json:"approvals,omitempty"`
	// Freeze freezes the key after refusals or a limit breach.
	Freeze *FreezeRule `json:"freeze,omitempty"`
}

// Scope is what compiling a key's stateful sections needs to know of the
// rest of its key rule.
type Scope struct {
	// Chains are the key's chains: limits and thresholds name only these.
	Chains []uint64
	// IsToken reports whether token is one of the key's tokens on chain.
	IsToken func(chain uint64, token ethtx.Address) bool
	// ValidName reports whether an approver's name is well formed (the
	// document's syntax of names).
	ValidName func(string) bool
}

// Rules is a key's stateful rules, compiled: what [Compile] returns. The
// zero value has none.
type Rules struct {
	// Limits are the rolling limits in document order (the order gives
	// their rule ids, [RuleID]).
	Limits    []Limit
	Velocity  *Velocity
	Approvals *Approvals
	Freeze    *Freeze
}

// parseAsset parses "native" (the zero address) or the address of one of
// the key's tokens on the chain.
func (s *Scope) parseAsset(chain uint64, a string) (ethtx.Address, error) {
	if a == "native" {
		return ethtx.Address{}, nil
	}
	addr, err := ethtx.ParseAddress(a)
	if err != nil {
		return addr, fmt.Errorf(`want "native" or a token address: %w`, err)
	}
	if !s.IsToken(chain, addr) {
		return addr, fmt.Errorf("%s is not one of the key's tokens on chain %d", addr.Hex(), chain)
	}
	return addr, nil
}

// Compile validates the stateful sections c of a key rule whose chains and
// tokens scope gives, registering its approvers with approvers. Errors
// name the field at fault relative to the key rule ("limits[0].window:
// ...").
func Compile(c KeyConfig, scope Scope, approvers *Approvers) (Rules, error) {
	var r Rules
	if len(c.Limits) > maxLimits {
		return r, fmt.Errorf("limits: more than %d", maxLimits)
	}
	for j, l := range c.Limits {
		if !slices.Contains(scope.Chains, l.ChainID) {
			return r, fmt.Errorf("limits[%d].chain_id: %d is not in chains", j, l.ChainID)
		}
		asset, err := scope.parseAsset(l.ChainID, l.Asset)
		if err != nil {
			return r, fmt.Errorf("limits[%d].asset: %w", j, err)
		}
		lim := Limit{ChainID: l.ChainID, Asset: asset}
		if l.Destination != "" {
			d, err := parseDestination(l.Destination)
			if err != nil {
				return r, fmt.Errorf("limits[%d].destination: %w", j, err)
			}
			lim.Destination = &d
		}
		if lim.Window, err = ParseWindow(l.Window); err != nil {
			return r, fmt.Errorf("limits[%d].window: %w", j, err)
		}
		if lim.Max, err = ParseAmount(l.Max); err != nil {
			return r, fmt.Errorf("limits[%d].max: %w", j, err)
		}
		for _, o := range r.Limits {
			if o.ChainID == lim.ChainID && o.Asset == lim.Asset && o.Window == lim.Window &&
				(o.Destination == nil) == (lim.Destination == nil) && (o.Destination == nil || *o.Destination == *lim.Destination) {
				return r, fmt.Errorf("limits[%d]: a limit on the same chain, asset, destination and window is listed twice", j)
			}
		}
		r.Limits = append(r.Limits, lim)
	}

	if v := c.Velocity; v != nil {
		w, err := ParseWindow(v.Window)
		if err != nil {
			return r, fmt.Errorf("velocity.window: %w", err)
		}
		if v.MaxTransactions == 0 {
			return r, errors.New("velocity.max_transactions: must be at least 1")
		}
		r.Velocity = &Velocity{Window: w, MaxTransactions: v.MaxTransactions}
	}

	if a := c.Approvals; a != nil {
		ap, err := compileApprovals(a, &scope, approvers)
		if err != nil {
			return r, fmt.Errorf("approvals.%w", err)
		}
		r.Approvals = ap
	}

	if f := c.Freeze; f != nil {
		fr := &Freeze{Refusals: f.Refusals, OnLimitBreach: f.OnLimitBreach, Scope: FreezeScope(f.Scope)}
		if fr.Scope != FreezeKey && fr.Scope != FreezeAll {
			return r, fmt.Errorf("freeze.scope: want %q or %q", FreezeKey, FreezeAll)
		}
		switch {
		case f.Refusals > 0:
			w, err := ParseWindow(f.Window)
			if err != nil {
				return r, fmt.Errorf("freeze.window: %w", err)
			}
			fr.Window = w
		case f.Window != "":
			return r, errors.New("freeze.window: set only with refusals")
		case !f.OnLimitBreach:
			return r, errors.New("freeze: neither refusals nor on_limit_breach: it would never freeze")
		}
		r.Freeze = fr
	}
	return r, nil
}

func compileApprovals(a *ApprovalRule, scope *Scope, approvers *Approvers) (*Approvals, error) {
	if len(a.Above) == 0 || len(a.Above) > maxThresholds {
		return nil, fmt.Errorf("above: want 1 to %d thresholds", maxThresholds)
	}
	out := &Approvals{}
	for j, t := range a.Above {
		if !slices.Contains(scope.Chains, t.ChainID) {
			return nil, fmt.Errorf("above[%d].chain_id: %d is not in chains", j, t.ChainID)
		}
		asset, err := scope.parseAsset(t.ChainID, t.Asset)
		if err != nil {
			return nil, fmt.Errorf("above[%d].asset: %w", j, err)
		}
		amount, err := ParseAmount(t.Amount)
		if err != nil {
			return nil, fmt.Errorf("above[%d].amount: %w", j, err)
		}
		for _, o := range out.Above {
			if o.ChainID == t.ChainID && o.Asset == asset {
				return nil, fmt.Errorf("above[%d]: chain %d and asset %s listed twice", j, t.ChainID, t.Asset)
			}
		}
		out.Above = append(out.Above, Threshold{ChainID: t.ChainID, Asset: asset, Amount: amount})
	}
	if len(a.Approvers) == 0 || len(a.Approvers) > maxApprovers {
		return nil, fmt.Errorf("approvers: want 1 to %d", maxApprovers)
	}
	for j, ap := range a.Approvers {
		if !scope.ValidName(ap.Name) {
			return nil, fmt.Errorf("approvers[%d].name: want 1-64 of [A-Za-z0-9._-]", j)
		}
		pub, err := stamp.ParsePublicKey(stamp.Scheme(ap.Scheme), ap.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("approvers[%d] (%s): %w", j, ap.Name, err)
		}
		for _, o := range out.Approvers {
			if o.Name == ap.Name {
				return nil, fmt.Errorf("approvers[%d]: name %q listed twice", j, ap.Name)
			}
			if o.PublicKey.Equal(pub) {
				return nil, fmt.Errorf("approvers[%d] (%s): the same key as %q", j, ap.Name, o.Name)
			}
		}
		if err := approvers.add(ap.Name, pub); err != nil {
			return nil, fmt.Errorf("approvers[%d] (%s): %w", j, ap.Name, err)
		}
		out.Approvers = append(out.Approvers, ApproverKey{Name: ap.Name, PublicKey: pub})
	}
	if a.Quorum == 0 || a.Quorum > uint64(len(out.Approvers)) {
		return nil, fmt.Errorf("quorum: want 1 to %d (the number of approvers)", len(out.Approvers))
	}
	out.Quorum = int(a.Quorum)
	return out, nil
}

func cloneInt(v *big.Int) *big.Int {
	if v == nil {
		return nil
	}
	return new(big.Int).Set(v)
}

// Clone returns a deep copy of r.
func (r Rules) Clone() Rules {
	var out Rules
	for _, l := range r.Limits {
		out.Limits = append(out.Limits, l.Clone())
	}
	if r.Velocity != nil {
		v := *r.Velocity
		out.Velocity = &v
	}
	if r.Approvals != nil {
		a := r.Approvals.Clone()
		out.Approvals = &a
	}
	if r.Freeze != nil {
		f := *r.Freeze
		out.Freeze = &f
	}
	return out
}

// Clone returns a deep copy of l.
func (l Limit) Clone() Limit {
	l.Max = cloneInt(l.Max)
	if l.Destination != nil {
		d := *l.Destination
		l.Destination = &d
	}
	return l
}

// Clone returns a deep copy of a.
func (a Approvals) Clone() Approvals {
	out := Approvals{Quorum: a.Quorum}
	for _, t := range a.Above {
		out.Above = append(out.Above, Threshold{ChainID: t.ChainID, Asset: t.Asset, Amount: cloneInt(t.Amount)})
	}
	for _, ap := range a.Approvers {
		out.Approvers = append(out.Approvers, ApproverKey{Name: ap.Name, PublicKey: stamp.PublicKey{Scheme: ap.PublicKey.Scheme, Key: bytes.Clone(ap.PublicKey.Key)}})
	}
	return out
}
