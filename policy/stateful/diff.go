package stateful

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
)

// This file classifies a change of a key's stateful rules for the
// governance time lock (docs/governance.md): package policy's Diff calls
// [Diff] for every key both policies have, and [DiffRemovedKey] for every
// key only the old one has, and adds what they find to its own
// classification. A new stateful rule says here how a change of it
// classifies, and lists its fields in diffFields ([DiffFields]).

// Change is the classification of a change of stateful rules: as
// policy.Change, lists of messages for humans, in a stable order.
type Change struct {
	// Loosening lists every way the new rules allow something the old
	// ones did not (they wait for the time lock).
	Loosening []string
	// Tightening lists the removals and decreases.
	Tightening []string
}

func (c *Change) loosen(format string, args ...any) {
	c.Loosening = append(c.Loosening, fmt.Sprintf(format, args...))
}

func (c *Change) tighten(format string, args ...any) {
	c.Tightening = append(c.Tightening, fmt.Sprintf(format, args...))
}

// DiffFields returns every field of [KeyConfig], by its JSON path relative
// to the key rule ("[]" for the elements of a list of objects), with how
// [Diff] classifies its changes. Package policy lists them among the
// document's fields (under "keys[]."); a test compares them with the
// KeyConfig types, so that a new field is classified deliberately, and
// policy.Diff counts any change of a field listed nowhere as a loosening.
func DiffFields() map[string]string { return maps.Clone(diffFields) }

var diffFields = map[string]string{
	"limits[].chain_id":    "part of the limit's scope: an old limit without a new one of the same scope, window at least as long and max at most as high loosens",
	"limits[].asset":       "part of the limit's scope (as chain_id)",
	"limits[].destination": "part of the limit's scope (as chain_id)",
	"limits[].window":      "shortened loosens, lengthened (max not raised) tightens",
	"limits[].max":         "raised (or the limit removed) loosens, lowered (or a limit added) tightens",

	"velocity.window":           "shortened (or velocity removed) loosens, lengthened (or added) tightens",
	"velocity.max_transactions": "raised (or velocity removed) loosens, lowered (or added) tightens",

	"approvals.above[].chain_id":       "part of the threshold's scope: a threshold removed (or approvals removed) loosens, added tightens",
	"approvals.above[].asset":          "part of the threshold's scope (as chain_id)",
	"approvals.above[].amount":         "raised loosens, lowered tightens",
	"approvals.quorum":                 "lowered loosens, raised tightens",
	"approvals.approvers[].name":       "neutral: a label (approvers are identified by public key)",
	"approvals.approvers[].scheme":     "with public_key, the approver's identity: a new approver loosens, a removed one tightens",
	"approvals.approvers[].public_key": "with scheme, the approver's identity: a new approver loosens, a removed one tightens",

	"freeze.refusals":        "raised, or 0 (refusals no longer freeze), or the freeze removed loosens; lowered or added tightens",
	"freeze.window":          "shortened loosens, lengthened tightens",
	"freeze.on_limit_breach": "turned off loosens, on tightens",
	"freeze.scope":           "all to key loosens, key to all tightens; removing a key whose freeze has scope all loosens",
}

// DiffScope is what classifying a change of a key's stateful rules needs
// to know of the rest of the two policies.
type DiffScope struct {
	// Key is the key's id, for the messages.
	Key string
	// Reachable reports whether the key can still move asset (zero: the
	// native coin) on chain under the new policy: the chain is the key's,
	// and a token is one of its tokens or collections there. Limits and
	// thresholds that can no longer be reached are removed as a
	// tightening.
	Reachable func(chain uint64, asset ethtx.Address) bool
	// AssetName names an asset for the messages ("native", or the token's
	// address with the symbol either policy gives it).
	AssetName func(chain uint64, asset ethtx.Address) string
	// OldAmount and NewAmount write an amount of an asset for the
	// messages, as the old and the new policy name the asset.
	OldAmount, NewAmount func(chain uint64, asset ethtx.Address, v *big.Int) string
}

// Diff classifies the change of a key's stateful rules from old to new
// (the key has rules in both policies). It fails closed: whatever it
// cannot show to be a tightening or neutral counts as a loosening.
//
// Rolling limits keep their usage across a policy change by scope (key,
// chain, asset, destination) and window (see [Restore]), so an old limit
// still holds only if the new rules have a limit of the same scope with
// the same or a longer window and the same or a lower max. A limit moved
// to another scope, even a wider one, starts without usage: that is a
// loosening. Limits and approval thresholds that can no longer be reached
// (DiffScope.Reachable) are removed as a tightening.
func Diff(old, new Rules, s DiffScope) Change {
	var c Change
	s.limits(&c, old.Limits, new.Limits)
	s.velocity(&c, old.Velocity, new.Velocity)
	s.approvals(&c, old.Approvals, new.Approvals)
	s.freeze(&c, old.Freeze, new.Freeze)
	return c
}

// DiffRemovedKey classifies what removing key, whose stateful rules were
// old, changes beyond the key itself (whose removal is a tightening), when
// other keys remain (othersRemain): a freeze of scope all protects every
// key, so with its key gone, that key's refusals and limit breaches no
// longer freeze the keys that remain.
func DiffRemovedKey(key string, old Rules, othersRemain bool) Change {
	var c Change
	if old.Freeze != nil && old.Freeze.Scope == FreezeAll && othersRemain {
		c.loosen("freeze for key %s: removed with the key; its scope was all, so the key's refusals and limit breaches no longer freeze every key", key)
	}
	return c
}

// amount compares a cap, written os and ns for humans.
func (c *Change) amount(what, os, ns string, o, n *big.Int) {
	switch n.Cmp(o) {
	case 1:
		c.loosen("%s raised from %s to %s", what, os, ns)
	case -1:
		c.tighten("%s lowered from %s to %s", what, os, ns)
	}
}

// limits compares the rolling limits of the key (see Diff).
func (s *DiffScope) limits(c *Change, o, n []Limit) {
	id := s.Key
	for _, ol := range o {
		desc := s.limitScope(ol) + " per " + FormatWindow(ol.Window)
		oMax := s.OldAmount(ol.ChainID, ol.Asset, ol.Max)
		if !s.Reachable(ol.ChainID, ol.Asset) {
			c.tighten("key %s: %s (max %s) removed with its chain or token", id, desc, oMax)
			continue
		}
		var scope []Limit
		var same, implied *Limit
		for i, nl := range n {
			if !sameLimitScope(ol, nl) {
				continue
			}
			scope = append(scope, nl)
			switch {
			case nl.Window == ol.Window:
				same = &n[i]
			case implied == nil && nl.Window > ol.Window && nl.Max.Cmp(ol.Max) <= 0:
				implied = &n[i]
			}
		}
		switch {
		case same != nil && same.Max.Cmp(ol.Max) <= 0:
			c.amount(fmt.Sprintf("key %s: %s: max", id, desc), oMax, s.NewAmount(ol.ChainID, ol.Asset, same.Max), ol.Max, same.Max)
		case implied != nil:
			what := "removed"
			if same != nil {
				what = "raised to " + s.NewAmount(ol.ChainID, ol.Asset, same.Max)
			}
			c.tighten("key %s: %s (max %s) %s, implied by the limit per %s of %s", id, desc, oMax, what, FormatWindow(implied.Window), s.NewAmount(ol.ChainID, ol.Asset, implied.Max))
		case same != nil:
			c.amount(fmt.Sprintf("key %s: %s: max", id, desc), oMax, s.NewAmount(ol.ChainID, ol.Asset, same.Max), ol.Max, same.Max)
		case len(scope) == 0:
			c.loosen("key %s: %s (max %s) removed", id, desc, oMax)
		case len(scope) == 1 && scope[0].Window < ol.Window:
			c.loosen("key %s: %s (max %s): window shortened from %s to %s, max %s: a shorter window allows more over the old one",
				id, desc, oMax, FormatWindow(ol.Window), FormatWindow(scope[0].Window), s.NewAmount(ol.ChainID, ol.Asset, scope[0].Max))
		default:
			var others []string
			for _, nl := range scope {
				others = append(others, fmt.Sprintf("per %s of %s", FormatWindow(nl.Window), s.NewAmount(ol.ChainID, ol.Asset, nl.Max)))
			}
			c.loosen("key %s: %s (max %s) removed: the limits of the same scope (%s) allow more over its window", id, desc, oMax, strings.Join(others, "; "))
		}
	}
	for _, nl := range n {
		if !slices.ContainsFunc(o, func(ol Limit) bool { return sameLimitScope(ol, nl) && ol.Window == nl.Window }) {
			c.tighten("key %s: %s per %s added, max %s", id, s.limitScope(nl), FormatWindow(nl.Window), s.NewAmount(nl.ChainID, nl.Asset, nl.Max))
		}
	}
}

func sameLimitScope(a, b Limit) bool {
	if a.ChainID != b.ChainID || a.Asset != b.Asset || (a.Destination == nil) != (b.Destination == nil) {
		return false
	}
	return a.Destination == nil || *a.Destination == *b.Destination
}

func (s *DiffScope) limitScope(l Limit) string {
	str := fmt.Sprintf("limit on chain %d %s", l.ChainID, s.AssetName(l.ChainID, l.Asset))
	if l.Destination != nil {
		str += " to " + l.Destination.Hex()
	}
	return str
}

func (s *DiffScope) velocity(c *Change, o, n *Velocity) {
	id := s.Key
	switch {
	case o == nil && n == nil:
	case o == nil:
		c.tighten("velocity for key %s added: %d transactions per %s", id, n.MaxTransactions, FormatWindow(n.Window))
	case n == nil:
		c.loosen("velocity for key %s removed (was %d transactions per %s)", id, o.MaxTransactions, FormatWindow(o.Window))
	default:
		switch {
		case n.Window < o.Window:
			c.loosen("velocity for key %s: window shortened %s → %s: a shorter window allows more over the old one", id, FormatWindow(o.Window), FormatWindow(n.Window))
		case n.Window > o.Window:
			c.tighten("velocity for key %s: window lengthened %s → %s", id, FormatWindow(o.Window), FormatWindow(n.Window))
		}
		switch {
		case n.MaxTransactions > o.MaxTransactions:
			c.loosen("velocity for key %s: max transactions raised %d → %d", id, o.MaxTransactions, n.MaxTransactions)
		case n.MaxTransactions < o.MaxTransactions:
			c.tighten("velocity for key %s: max transactions lowered %d → %d", id, o.MaxTransactions, n.MaxTransactions)
		}
	}
}

func (s *DiffScope) approvals(c *Change, o, n *Approvals) {
	at := "approvals for key " + s.Key
	switch {
	case o == nil && n == nil:
		return
	case o == nil:
		c.tighten("%s added: quorum %d of %d", at, n.Quorum, len(n.Approvers))
		return
	case n == nil:
		if slices.ContainsFunc(o.Above, func(t Threshold) bool { return s.Reachable(t.ChainID, t.Asset) }) {
			c.loosen("%s removed (was quorum %d of %d)", at, o.Quorum, len(o.Approvers))
		} else {
			c.tighten("%s removed with their chains or tokens", at)
		}
		return
	}
	for _, ot := range o.Above {
		desc := fmt.Sprintf("threshold on chain %d %s", ot.ChainID, s.AssetName(ot.ChainID, ot.Asset))
		oAmt := s.OldAmount(ot.ChainID, ot.Asset, ot.Amount)
		if !s.Reachable(ot.ChainID, ot.Asset) {
			c.tighten("%s: %s (above %s) removed with its chain or token", at, desc, oAmt)
			continue
		}
		i := slices.IndexFunc(n.Above, func(t Threshold) bool { return t.ChainID == ot.ChainID && t.Asset == ot.Asset })
		if i < 0 {
			c.loosen("%s: %s (above %s) removed", at, desc, oAmt)
			continue
		}
		nt := n.Above[i]
		c.amount(at+": "+desc, oAmt, s.NewAmount(nt.ChainID, nt.Asset, nt.Amount), ot.Amount, nt.Amount)
	}
	for _, nt := range n.Above {
		if !slices.ContainsFunc(o.Above, func(t Threshold) bool { return t.ChainID == nt.ChainID && t.Asset == nt.Asset }) {
			c.tighten("%s: threshold on chain %d %s added (above %s)", at, nt.ChainID, s.AssetName(nt.ChainID, nt.Asset), s.NewAmount(nt.ChainID, nt.Asset, nt.Amount))
		}
	}
	switch {
	case n.Quorum < o.Quorum:
		c.loosen("%s: quorum lowered %d → %d", at, o.Quorum, n.Quorum)
	case n.Quorum > o.Quorum:
		c.tighten("%s: quorum raised %d → %d", at, o.Quorum, n.Quorum)
	}
	for _, na := range n.Approvers {
		if slices.ContainsFunc(o.Approvers, func(a ApproverKey) bool { return a.PublicKey.Equal(na.PublicKey) }) {
			continue
		}
		if i := slices.IndexFunc(o.Approvers, func(a ApproverKey) bool { return a.Name == na.Name }); i >= 0 {
			c.loosen("%s: approver %s: public key changed from %s to %s", at, na.Name, o.Approvers[i].PublicKey, na.PublicKey)
		} else {
			c.loosen("%s: approver %s added (public key %s)", at, na.Name, na.PublicKey)
		}
	}
	for _, oa := range o.Approvers {
		if !slices.ContainsFunc(n.Approvers, func(a ApproverKey) bool { return a.PublicKey.Equal(oa.PublicKey) }) {
			c.tighten("%s: approver %s (public key %s) removed", at, oa.Name, oa.PublicKey)
		}
	}
}

func (s *DiffScope) freeze(c *Change, o, n *Freeze) {
	at := "freeze for key " + s.Key
	switch {
	case o == nil && n == nil:
		return
	case o == nil:
		c.tighten("%s added", at)
		return
	case n == nil:
		c.loosen("%s removed", at)
		return
	}
	switch {
	case o.Refusals > 0 && n.Refusals == 0:
		c.loosen("%s: refusals no longer freeze (was %d within %s)", at, o.Refusals, FormatWindow(o.Window))
	case o.Refusals == 0 && n.Refusals > 0:
		c.tighten("%s: refusals now freeze (%d within %s)", at, n.Refusals, FormatWindow(n.Window))
	case o.Refusals > 0:
		switch {
		case n.Refusals > o.Refusals:
			c.loosen("%s: refusals threshold raised %d → %d", at, o.Refusals, n.Refusals)
		case n.Refusals < o.Refusals:
			c.tighten("%s: refusals threshold lowered %d → %d", at, o.Refusals, n.Refusals)
		}
		switch {
		case n.Window < o.Window:
			c.loosen("%s: refusals window shortened %s → %s", at, FormatWindow(o.Window), FormatWindow(n.Window))
		case n.Window > o.Window:
			c.tighten("%s: refusals window lengthened %s → %s", at, FormatWindow(o.Window), FormatWindow(n.Window))
		}
	}
	switch {
	case o.OnLimitBreach && !n.OnLimitBreach:
		c.loosen("%s: on_limit_breach turned off", at)
	case !o.OnLimitBreach && n.OnLimitBreach:
		c.tighten("%s: on_limit_breach turned on", at)
	}
	switch {
	case o.Scope == FreezeAll && n.Scope != FreezeAll:
		c.loosen("%s: scope narrowed from %s to %s", at, o.Scope, n.Scope)
	case o.Scope != FreezeAll && n.Scope == FreezeAll:
		c.tighten("%s: scope widened from %s to %s", at, o.Scope, n.Scope)
	case o.Scope != n.Scope: // no other scopes today: fail closed
		c.loosen("%s: scope changed from %s to %s", at, o.Scope, n.Scope)
	}
}

// FormatWindow writes a window as the document does: "24h", "1h30m"
// ([ParseWindow] reads it back).
func FormatWindow(w time.Duration) string {
	h, m, s := w/time.Hour, w%time.Hour/time.Minute, w%time.Minute/time.Second
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
