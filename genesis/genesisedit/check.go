package genesisedit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy"
)

// Severity says how bad a [Finding] is.
type Severity string

// The severities.
const (
	// Problem: the configuration is valid but unfit for production.
	Problem Severity = "problem"
	// Warning: a choice that weakens the deployment; fine if deliberate.
	Warning Severity = "warning"
)

// The rules of [Check], as [Finding.Rule] names them (docs/genesis.md
// explains each).
const (
	CheckKMSMissing       = "kms_missing"        // problem: ephemeral seed
	CheckKMSRootCA        = "kms_root_ca"        // problem: non-Amazon KMS roots
	CheckAdminsMissing    = "admins_missing"     // problem: no admin set
	CheckClientsMissing   = "clients_missing"    // problem: no client
	CheckAdminQuorum      = "admin_quorum"       // warning: one admin acts alone
	CheckAdminNoSpare     = "admin_no_spare"     // warning: quorum = members
	CheckApprovalQuorum   = "approval_quorum"    // warning: one approver suffices
	CheckTimeLock         = "time_lock"          // warning: none or short
	CheckRawDigest        = "raw_digest"         // warning: bare digests signed
	CheckUnlimitedGrants  = "unlimited_grants"   // warning: max_allowance "unlimited"
	CheckNoLimits         = "no_limits"          // warning: value moves, no rolling limit
	CheckNoFreeze         = "no_freeze"          // warning: the key never freezes
	CheckSharedKey        = "shared_key"         // warning: one key, two roles
	CheckKMSEndpoint      = "kms_endpoint"       // warning: endpoint override
	CheckUnusedKey        = "unused_key"         // warning: no client may use a key
	CheckKMSAdditionalKey = "kms_additional_key" // warning: other sealing keys allowed
)

// Rules returns the names of every rule [Check] applies.
func Rules() []string {
	return []string{
		CheckKMSMissing, CheckKMSRootCA, CheckAdminsMissing, CheckClientsMissing,
		CheckAdminQuorum, CheckAdminNoSpare, CheckApprovalQuorum, CheckTimeLock,
		CheckRawDigest, CheckUnlimitedGrants, CheckNoLimits, CheckNoFreeze,
		CheckSharedKey, CheckKMSEndpoint, CheckUnusedKey, CheckKMSAdditionalKey,
	}
}

// Finding is one thing [Check] reports.
type Finding struct {
	Severity Severity
	Rule     string
	// Where names the part of the configuration (a key id, a client or
	// admin name), empty for the whole.
	Where   string
	Message string
}

func (f Finding) String() string {
	if f.Where == "" {
		return fmt.Sprintf("%-8s %s: %s", f.Severity, f.Rule, f.Message)
	}
	return fmt.Sprintf("%-8s %s (%s): %s", f.Severity, f.Rule, f.Where, f.Message)
}

// Report is what [Check] found, problems first.
type Report struct {
	Findings []Finding
}

// Problems returns how many findings are problems.
func (r *Report) Problems() int { return r.count(Problem) }

// Warnings returns how many findings are warnings.
func (r *Report) Warnings() int { return r.count(Warning) }

func (r *Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

func (r *Report) add(s Severity, rule, where, format string, a ...any) {
	r.Findings = append(r.Findings, Finding{Severity: s, Rule: rule, Where: where, Message: fmt.Sprintf(format, a...)})
}

// Check parses b with [genesis.Parse], the enclave's own parser, and
// returns its error if it refuses b. Otherwise it reviews the
// configuration for production and reports problems (what a production
// deployment lacks) and warnings (unsafe choices). The attestation
// verifier's acceptance of debug enclaves is no genesis setting (it is
// `attest verify --allow-debug`, and KMS never releases the sealing key to
// a debug enclave, whose PCRs are zero), so Check cannot report it.
func Check(b []byte) (*Report, error) {
	d, err := Load(b)
	if err != nil {
		return nil, err
	}
	r := &Report{}
	d.checkProblems(r)
	d.checkWarnings(r)
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if a.Severity == b.Severity {
			return 0
		}
		if a.Severity == Problem {
			return -1
		}
		return 1
	})
	return r, nil
}

func (d *Draft) checkProblems(r *Report) {
	switch {
	case d.KMS == nil:
		r.add(Problem, CheckKMSMissing, "", "no kms section: the seed is ephemeral, drawn at every start and never sealed, so the addresses change at every restart (set it with `genesis set-kms`)")
	case d.KMS.RootCAPEM != "":
		r.add(Problem, CheckKMSRootCA, "", "kms.root_ca_pem replaces the Amazon roots that KMS's TLS certificate must chain to: it is for the development stack's simulated KMS only")
	}
	if d.Admins == nil {
		r.add(Problem, CheckAdminsMissing, "", "no admin set: no key creation, key import, seal rotation, policy change or unfreeze will ever be accepted (add admins with `genesis add-admin`, then `genesis set-quorum --admins M`)")
	}
	if len(d.Policy.Clients) == 0 {
		r.add(Problem, CheckClientsMissing, "", "no clients: every request is refused (add one with `genesis add-client`)")
	}
}

func (d *Draft) checkWarnings(r *Report) {
	if a := d.Admins; a != nil {
		n := len(a.Members)
		if a.Quorum == 1 {
			r.add(Warning, CheckAdminQuorum, "", "admin quorum 1: any one admin creates keys, changes the policy and unfreezes alone; use at least 2")
		}
		if a.Quorum == n && n > 1 {
			r.add(Warning, CheckAdminNoSpare, "", "admin quorum %d of %d: one lost admin key blocks every admin command, unfreezing included, until a new image", n, n)
		}
	}
	tl := timeLock(d)
	switch {
	case tl == "0s":
		r.add(Warning, CheckTimeLock, "", "no time lock: a policy change that loosens anything takes effect at once, with no time for any one admin to cancel it")
	case d.Governance != nil && parseDuration(tl) < genesis.DefaultTimeLock:
		r.add(Warning, CheckTimeLock, "", "time lock %s, shorter than the default %s: admins have that long to notice and cancel a loosening change", tl, FormatDuration(genesis.DefaultTimeLock))
	}
	if k := d.KMS; k != nil {
		if k.Endpoint != "" {
			r.add(Warning, CheckKMSEndpoint, "", "kms.endpoint %s replaces https://kms.%s.amazonaws.com: make sure it is an AWS KMS endpoint (FIPS, for example)", k.Endpoint, k.Region)
		}
		if len(k.AdditionalKeyIDs) > 0 {
			r.add(Warning, CheckKMSAdditionalKey, "", "the seed may be sealed under %d more KMS keys (%s): review who controls each key policy", len(k.AdditionalKeyIDs), strings.Join(k.AdditionalKeyIDs, ", "))
		}
	}

	adminKeys := map[string]string{}
	if d.Admins != nil {
		for _, m := range d.Admins.Members {
			adminKeys[string(m.Scheme)+":"+strings.ToLower(m.PublicKey)] = m.Name
		}
	}
	used := map[string]bool{}
	for _, c := range d.Policy.Clients {
		if a, ok := adminKeys[c.Scheme+":"+strings.ToLower(c.PublicKey)]; ok {
			r.add(Warning, CheckSharedKey, "client "+c.Name, "holds the same key as admin %q: a stolen client key is then an admin key too", a)
		}
		for _, k := range c.Keys {
			used[k] = true
		}
	}
	approvers := map[string]bool{}
	for _, kr := range d.Policy.Keys {
		d.checkKey(r, &kr)
		if !used[kr.Key] && d.hasKey(kr.Key) && len(d.Policy.Clients) > 0 {
			r.add(Warning, CheckUnusedKey, "key "+kr.Key, "no client may use this key")
		}
		if kr.Approvals == nil {
			continue
		}
		for _, ap := range kr.Approvals.Approvers {
			if a, ok := adminKeys[ap.Scheme+":"+strings.ToLower(ap.PublicKey)]; ok && !approvers[ap.Name] {
				approvers[ap.Name] = true
				r.add(Warning, CheckSharedKey, "approver "+ap.Name, "holds the same key as admin %q: one key, two duties", a)
			}
		}
	}
}

func (d *Draft) checkKey(r *Report, kr *policy.KeyRule) {
	where := "key " + kr.Key
	if kr.RawDigest {
		r.add(Warning, CheckRawDigest, where, "raw_digest: the key signs bare 32-byte digests, which nothing decodes and no rule but the key's can check")
	}
	if a := kr.Approvals; a != nil && a.Quorum == 1 {
		r.add(Warning, CheckApprovalQuorum, where, "approvals quorum 1: one approver alone releases a request above the thresholds")
	}
	moves := kr.NativeTransfers != nil
	for _, cr := range kr.ChainRules {
		if cr.NativeTransfers != nil || len(cr.Tokens) > 0 || len(cr.NFTs) > 0 || len(cr.Contracts) > 0 || len(cr.Safes) > 0 {
			moves = true
		}
		for _, t := range cr.Tokens {
			for _, s := range t.Spenders {
				if s.MaxAllowance == "unlimited" {
					r.add(Warning, CheckUnlimitedGrants, where, "chain %d, token %s (%s): spender %s (%s) may be granted an unlimited allowance", cr.ChainID, t.Address, t.Label, s.Address, s.Label)
				}
			}
		}
	}
	if moves && len(kr.Limits) == 0 && kr.Velocity == nil {
		r.add(Warning, CheckNoLimits, where, "the key moves value but has no rolling limit or velocity rule: only per-transaction caps bound what a stolen client key can move")
	}
	if kr.Freeze == nil {
		r.add(Warning, CheckNoFreeze, where, "no freeze rule: the key keeps signing however many requests are refused")
	}
}

func timeLock(d *Draft) string {
	if d.Governance == nil {
		return FormatDuration(genesis.DefaultTimeLock)
	}
	return FormatDuration(parseDuration(d.Governance.TimeLock))
}
