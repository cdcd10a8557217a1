package policy

import (
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// The stateful rules (rolling limits, velocity, approvals and freezes)
// belong to package stateful: their configuration (the key rule's embedded
// stateful.KeyConfig), its validation, its compiled form (stateful.Rules),
// how a change of it classifies (stateful.Diff), and their enforcement,
// which the enclave drives. This package parses their sections of the
// document with the rest, has stateful.Compile check them against the
// key's chains and tokens, and hands the compiled rules out whole
// ([Policy.KeyRules]), so that a new stateful rule needs no change here; it
// feeds them with what allowed Decisions count (Decision.Counted: their
// movements, and their allowance grants as transfers of the granted amount
// to the spender) and with their operator grants (Decision.OperatorGrants).

func (r *keyRule) compileStateful(kr *KeyRule, approvers *stateful.Approvers) error {
	rules, err := stateful.Compile(kr.KeyConfig,
		stateful.Scope{
			Chains: r.chains,
			IsToken: func(chain uint64, token ethtx.Address) bool {
				cr := r.perChain[chain]
				return cr != nil && cr.tokens[token] != nil
			},
			ValidName: idPattern.MatchString,
		}, approvers)
	if err != nil {
		return err
	}
	r.stateful = rules
	return nil
}

// KeyRules returns a copy of the stateful rules of key keyID (its rolling
// limits in document order), and whether the policy has rules for the key.
// It makes *Policy a stateful.Source.
func (p *Policy) KeyRules(keyID string) (stateful.Rules, bool) {
	kr, ok := p.keys[keyID]
	if !ok {
		return stateful.Rules{}, false
	}
	return kr.stateful.Clone(), true
}

// KeyRulesView returns the stateful rules of key keyID without copying
// them, and whether the policy has rules for the key: shared with the
// policy, which never changes them, and read only for the caller. It makes
// *Policy a stateful.ViewSource, through which the checks made for every
// request read the rules.
func (p *Policy) KeyRulesView(keyID string) (*stateful.Rules, bool) {
	kr, ok := p.keys[keyID]
	if !ok {
		return nil, false
	}
	return &kr.stateful, true
}

var _ stateful.ViewSource = (*Policy)(nil)
