package policy

import (
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// The stateful rules (rolling limits, velocity, approvals and freezes)
// belong to package stateful: their configuration, its validation, and
// their enforcement, which the enclave drives. This package parses their
// sections of the document (KeyRule's Limits, Velocity, Approvals, Freeze)
// with the rest, has stateful.Compile check them against the key's chains
// and tokens, and hands the compiled rules out; it feeds them with what
// allowed Decisions count (Decision.Counted: their movements, and their
// allowance grants as transfers of the granted amount to the spender) and
// with their operator grants (Decision.OperatorGrants).

func (r *keyRule) compileStateful(kr *KeyRule, approvers *stateful.Approvers) error {
	rules, err := stateful.Compile(stateful.KeyConfig{Limits: kr.Limits, Velocity: kr.Velocity, Approvals: kr.Approvals, Freeze: kr.Freeze},
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
	r.limits, r.velocity, r.approvals, r.freeze = rules.Limits, rules.Velocity, rules.Approvals, rules.Freeze
	return nil
}

// KeyLimits returns copies of the rolling limits of key keyID, in document
// order (nil if none, or no such key).
func (p *Policy) KeyLimits(keyID string) []stateful.Limit {
	kr, ok := p.keys[keyID]
	if !ok || len(kr.limits) == 0 {
		return nil
	}
	out := make([]stateful.Limit, len(kr.limits))
	for i, l := range kr.limits {
		out[i] = l.Clone()
	}
	return out
}

// KeyVelocity returns the velocity limit of key keyID, if it has one.
func (p *Policy) KeyVelocity(keyID string) (stateful.Velocity, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.velocity == nil {
		return stateful.Velocity{}, false
	}
	return *kr.velocity, true
}

// KeyApprovals returns a copy of the approval rule of key keyID, if it has
// one.
func (p *Policy) KeyApprovals(keyID string) (stateful.Approvals, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.approvals == nil {
		return stateful.Approvals{}, false
	}
	return kr.approvals.Clone(), true
}

// KeyFreeze returns the freeze rule of key keyID, if it has one.
func (p *Policy) KeyFreeze(keyID string) (stateful.Freeze, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.freeze == nil {
		return stateful.Freeze{}, false
	}
	return *kr.freeze, true
}
