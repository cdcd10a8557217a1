package genesisedit

import (
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

func parseDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s) // validated by genesis.Parse
	return d
}

// Hashes are the digests that identify a genesis configuration.
type Hashes struct {
	// Genesis is the SHA-256 of the file's bytes: the genesis_hash that
	// binds admin commands to the deployment, and what to compare with
	// the file built into the image (which PCR0 measures with the binary).
	Genesis [32]byte
	// Policy is the hash of the initial policy document (policy.Hash),
	// which the enclave attests until the first policy change, and its
	// version.
	Policy        [32]byte
	PolicyVersion uint64
}

// Hash parses b with [genesis.Parse] and returns its hashes.
func Hash(b []byte) (Hashes, error) {
	_, pol, err := genesis.Parse(b)
	if err != nil {
		return Hashes{}, err
	}
	return Hashes{Genesis: sha256.Sum256(b), Policy: pol.Hash(), PolicyVersion: pol.Version()}, nil
}

// Show writes a human summary of the genesis configuration b: hashes,
// KMS, signing keys and what each may sign, clients, admins, approvers,
// the time lock and the audit and limit settings.
func Show(w io.Writer, b []byte) error {
	h, err := Hash(b)
	if err != nil {
		return err
	}
	d, err := Load(b)
	if err != nil {
		return err
	}
	p := &printer{w: w}
	p.line("genesis", "sha256 %x", h.Genesis)
	p.line("policy", "version %d, hash %x", h.PolicyVersion, h.Policy)
	if k := d.KMS; k != nil {
		p.line("kms", "key %s, region %s", k.KeyID, k.Region)
		for _, id := range k.AdditionalKeyIDs {
			p.line("", "also may seal under %s", id)
		}
		port := k.ProxyPort
		if port == 0 {
			port = genesis.DefaultKMSProxyPort
		}
		endpoint := "https://kms." + k.Region + ".amazonaws.com"
		if k.Endpoint != "" {
			endpoint = k.Endpoint
		}
		p.line("", "endpoint %s via vsock-proxy on port %d", endpoint, port)
		if k.RootCAPEM != "" {
			p.line("", "TLS roots: root_ca_pem (development only), not the Amazon roots")
		}
	} else {
		p.line("kms", "none: an ephemeral seed, new addresses at every start")
	}
	for i, k := range d.Keys {
		label := ""
		if i == 0 {
			label = "keys"
		}
		p.line(label, "%s  %s", k.ID, k.Path)
		if kr := d.keyRule(k.ID); kr != nil {
			for _, s := range ruleSummary(kr) {
				p.line("", "  %s", s)
			}
		} else {
			p.line("", "  no rule: signs nothing")
		}
	}
	if len(d.Policy.Clients) == 0 {
		p.line("clients", "none")
	}
	for i, c := range d.Policy.Clients {
		label := ""
		if i == 0 {
			label = "clients"
		}
		p.line(label, "%s  %s:%s  may use %s", c.Name, c.Scheme, c.PublicKey, strings.Join(c.Keys, ", "))
	}
	if a := d.Admins; a != nil {
		p.line("admins", "quorum %d of %d", a.Quorum, len(a.Members))
		for _, k := range slices.Sorted(maps.Keys(a.Thresholds)) {
			p.line("", "threshold %s: %d", k, a.Thresholds[k])
		}
		for _, m := range a.Members {
			p.line("", "%s  %s:%s", m.Name, m.Scheme, m.PublicKey)
		}
	} else {
		p.line("admins", "none: no admin command is accepted")
	}
	approvers := false
	for _, kr := range d.Policy.Keys {
		a := kr.Approvals
		if a == nil {
			continue
		}
		label := ""
		if !approvers {
			label = "approvers"
			approvers = true
		}
		var above []string
		for _, t := range a.Above {
			above = append(above, fmt.Sprintf("%s on chain %d", amount(t.Amount, t.Asset), t.ChainID))
		}
		p.line(label, "key %s: %d of %d above %s", kr.Key, a.Quorum, len(a.Approvers), strings.Join(above, ", "))
		for _, ap := range a.Approvers {
			p.line("", "  %s  %s:%s", ap.Name, ap.Scheme, ap.PublicKey)
		}
	}
	if !approvers {
		p.line("approvers", "none")
	}
	tl := timeLock(d)
	if d.Governance == nil {
		tl += " (default)"
	}
	p.line("time lock", "%s before a loosening policy change takes effect", tl)
	if d.Audit != nil {
		p.line("audit", "at most %d unacknowledged records", d.Audit.MaxUnacknowledged)
	} else {
		p.line("audit", "at most %d unacknowledged records (default)", genesis.DefaultMaxUnackedAudit)
	}
	if d.Limits != nil && d.Limits.MaxUnacknowledged > 0 {
		p.line("limits", "refuse to sign beyond %d transactions past the last stored checkpoint", d.Limits.MaxUnacknowledged)
	} else {
		p.line("limits", "no checkpoint requirement (default)")
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(label, format string, a ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, "%-10s %s\n", label, fmt.Sprintf(format, a...))
}

func amount(v, asset string) string {
	if asset == "native" {
		return v + " wei"
	}
	return v + " of " + asset
}

// ruleSummary says in a few lines what a key rule allows.
func ruleSummary(kr *policy.KeyRule) []string {
	var out []string
	chains := make([]string, len(kr.Chains))
	for i, c := range kr.Chains {
		chains[i] = fmt.Sprint(c)
	}
	types := "default transaction types"
	if kr.TransactionTypes != nil {
		types = "transaction types " + strings.Join(kr.TransactionTypes, ", ")
	}
	out = append(out, "chains "+strings.Join(chains, ", ")+"; "+types)
	if n := kr.NativeTransfers; n != nil {
		out = append(out, fmt.Sprintf("native transfers to %s, at most %s wei each", plural(len(n.Destinations), "destination"), n.MaxPerTransactionWei))
	}
	for _, cr := range kr.ChainRules {
		var parts []string
		if n := cr.NativeTransfers; n != nil {
			parts = append(parts, fmt.Sprintf("native transfers to %s, at most %s wei each", plural(len(n.Destinations), "destination"), n.MaxPerTransactionWei))
		}
		for _, t := range cr.Tokens {
			s := "token " + t.Label
			if t.Transfers != nil {
				s += fmt.Sprintf(": transfers to %s", plural(len(t.Transfers.Destinations), "destination"))
			}
			if len(t.Spenders) > 0 {
				s += ", " + plural(len(t.Spenders), "spender")
			}
			parts = append(parts, s)
		}
		if len(cr.NFTs) > 0 {
			parts = append(parts, plural(len(cr.NFTs), "NFT collection"))
		}
		if len(cr.Contracts) > 0 {
			parts = append(parts, plural(len(cr.Contracts), "contract"))
		}
		if len(cr.Safes) > 0 {
			parts = append(parts, plural(len(cr.Safes), "Safe"))
		}
		if cr.Fees != nil {
			parts = append(parts, "fee caps")
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("chain %d: %s", cr.ChainID, strings.Join(parts, "; ")))
		}
	}
	var signs []string
	if kr.PersonalMessages {
		signs = append(signs, "personal messages")
	}
	if kr.TypedData != nil {
		signs = append(signs, "typed data in "+plural(len(kr.TypedData.Domains), "domain"))
	}
	if kr.RawDigest {
		signs = append(signs, "RAW DIGESTS")
	}
	if len(signs) > 0 {
		out = append(out, "signs "+strings.Join(signs, ", "))
	}
	if len(out) == 1 && len(signs) == 0 && kr.NativeTransfers == nil && len(kr.ChainRules) == 0 {
		out = append(out, "allows nothing yet (edit the policy: docs/policy.md)")
	}
	var state []string
	if n := len(kr.Limits); n > 0 {
		state = append(state, plural(n, "rolling limit"))
	}
	if v := kr.Velocity; v != nil {
		state = append(state, fmt.Sprintf("at most %d transactions per %s", v.MaxTransactions, v.Window))
	}
	if f := kr.Freeze; f != nil {
		var when []string
		if f.Refusals > 0 {
			when = append(when, fmt.Sprintf("%d refusals in %s", f.Refusals, f.Window))
		}
		if f.OnLimitBreach {
			when = append(when, "a limit breach")
		}
		scope := "the key"
		if f.Scope == string(stateful.FreezeAll) {
			scope = "every key"
		}
		state = append(state, fmt.Sprintf("freezes %s after %s", scope, strings.Join(when, " or ")))
	}
	if len(state) > 0 {
		out = append(out, strings.Join(state, "; "))
	}
	return out
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
