package stateful

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/api/refusal"
)

// Kind is the kind of a rule the Tracker enforces.
type Kind uint8

// The kinds of rules. The zero Kind is none (the ID of a refusal that no
// rule made, refusal.RuleCheckpoint).
const (
	// KindRollingLimit is a rolling limit on value moved ([TrackedLimit]).
	KindRollingLimit Kind = iota + 1
	// KindVelocity is a limit on transactions counted ([TrackedVelocity]).
	KindVelocity
)

// Rule returns the refusal rule (error.rule of the HTTP API, package
// refusal) of a refusal by a rule of kind k: the one place that maps a
// kind to its refusal rule and to the prefix of its IDs. It returns ""
// for an unknown kind.
func (k Kind) Rule() string {
	switch k {
	case KindRollingLimit:
		return refusal.RuleRollingLimit
	case KindVelocity:
		return refusal.RuleVelocity
	}
	return ""
}

// kindOf returns the kind whose Rule is rule.
func kindOf(rule string) (Kind, bool) {
	for k := KindRollingLimit; k <= KindVelocity; k++ {
		if k.Rule() == rule {
			return k, true
		}
	}
	return 0, false
}

// RuleID names one rule of a Tracker: the Index-th rolling limit of key
// Key (in policy document order), or the velocity limit of Key (Index 0).
// Its string form, [RuleID.String], names it in refusals and audit
// records; [ParseRuleID] reads it back. A policy gives each rule its ID
// ([TrackerRules]), and the Tracker refuses an ID that does not match its
// rule (kind, key) or is used twice.
type RuleID struct {
	Kind  Kind
	Key   string
	Index int
}

// String returns "rolling_limit:KEY:INDEX" for a rolling limit and
// "velocity:KEY" for a velocity limit (with ":INDEX" when Index is not 0,
// which no policy makes: a key has at most one velocity limit). The zero
// RuleID is "".
func (id RuleID) String() string {
	if id == (RuleID{}) {
		return ""
	}
	if id.Kind == KindVelocity && id.Index == 0 {
		return id.Kind.Rule() + ":" + id.Key
	}
	return id.Kind.Rule() + ":" + id.Key + ":" + strconv.Itoa(id.Index)
}

// check says what is wrong with id as the ID of a rule of kind kind on
// key key, if anything.
func (id RuleID) check(kind Kind, key string) error {
	switch {
	case id.Kind != kind:
		return fmt.Errorf("id %q: want a %s id", id, kind.Rule())
	case id.Key != key:
		return fmt.Errorf("id %q: names key %q, not the rule's key %q", id, id.Key, key)
	case strings.Contains(key, ":"):
		return fmt.Errorf("id %q: a key with ':' (ParseRuleID could not read it back)", id)
	case id.Index < 0 || id.Index >= MaxRules:
		return fmt.Errorf("id %q: index: want 0 to %d", id, MaxRules-1)
	case len(id.String()) > MaxIDLen:
		return fmt.Errorf("id %q: want at most %d bytes", id, MaxIDLen)
	}
	return nil
}

// ParseRuleID reads back what [RuleID.String] wrote, strictly: a known
// kind, a key of 1 to MaxKeyLen bytes without ':', and an index written
// as String writes it (decimal, no sign or leading zeros, below MaxRules;
// always present for a rolling limit, present and not 0 for a velocity
// limit only when not 0). ParseRuleID(id.String()) == id for every id a
// Tracker accepts, and String of what ParseRuleID returns is its input.
func ParseRuleID(s string) (RuleID, error) {
	if len(s) > MaxIDLen {
		return RuleID{}, fmt.Errorf("stateful: rule id: more than %d bytes", MaxIDLen)
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return RuleID{}, fmt.Errorf("stateful: rule id %q: want KIND:KEY or KIND:KEY:INDEX", s)
	}
	kind, ok := kindOf(parts[0])
	if !ok {
		return RuleID{}, fmt.Errorf("stateful: rule id %q: unknown kind %q", s, parts[0])
	}
	id := RuleID{Kind: kind, Key: parts[1]}
	if id.Key == "" || len(id.Key) > MaxKeyLen {
		return RuleID{}, fmt.Errorf("stateful: rule id %q: key: want 1 to %d bytes", s, MaxKeyLen)
	}
	switch {
	case len(parts) == 2 && kind == KindVelocity:
		return id, nil
	case len(parts) == 2:
		return RuleID{}, fmt.Errorf("stateful: rule id %q: no index", s)
	}
	n, err := parseIndex(parts[2])
	if err != nil {
		return RuleID{}, fmt.Errorf("stateful: rule id %q: index: %w", s, err)
	}
	if kind == KindVelocity && n == 0 {
		return RuleID{}, fmt.Errorf("stateful: rule id %q: a velocity id is written without index 0", s)
	}
	id.Index = n
	return id, nil
}

// parseIndex parses an index as RuleID.String writes it.
func parseIndex(s string) (int, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("want a decimal integer without sign or leading zeros")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= MaxRules {
		return 0, fmt.Errorf("want 0 to %d", MaxRules-1)
	}
	return n, nil
}
