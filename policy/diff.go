package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// Change is the classification of a policy change for the governance time
// lock (docs/governance.md): additions and increases wait for the time
// lock, during which any one admin can cancel them; removals and decreases
// take effect at once.
type Change struct {
	// Loosening lists, in a stable order, every way the new policy allows
	// something the old one did not, for humans (such as "key hot-0 chain
	// 1: native destination 0x2222… added"). Empty means the new policy is
	// at most as permissive as the old in every respect the classifier
	// knows, and it knows every field of the document.
	Loosening []string
	// Tightening lists the removals and decreases, for the audit record.
	Tightening []string
}

// TimeLocked reports whether the change must wait for the time lock: any
// loosening.
func (c Change) TimeLocked() bool { return len(c.Loosening) > 0 }

// Diff classifies the change from policy old to policy new. It fails
// closed: whatever it cannot show to be a tightening or neutral counts as a
// loosening. A nil policy allows nothing.
//
// Diff compares the compiled rules, so spelling does not count: address
// case, list order, and whether a chain's native transfers come from the
// key-wide list or its own are neutral. So are labels, client and approver
// names (clients and approvers are identified by their public keys), the
// signatures of contract functions, and assets (symbols and decimals only
// name tokens in summaries and messages: every cap and threshold is in base
// units). Diff does not judge versions: the enclave checks that they
// increase.
//
// The stateful sections of a key (rolling limits, velocity, approvals,
// freeze) are package stateful's to classify: Diff calls stateful.Diff for
// every key both policies have (and stateful.DiffRemovedKey for every key
// removed), telling it what the key can still reach: limits and approval
// thresholds on a chain the key no longer has, or on a token that is no
// longer one of its tokens or collections there, can no longer be reached,
// and their removal is a tightening.
func Diff(old, new *Policy) Change {
	d := &differ{o: orEmpty(old), n: orEmpty(new)}
	d.clients()
	d.keys()
	// Every field of the document must be classified above; a field that
	// the classifier does not know (one added to Document without a rule
	// here) counts as a loosening whenever it changes.
	for _, msg := range unclassified(d.o.canon, d.n.canon, classifiedFields) {
		d.loosen("%s", msg)
	}
	return d.c
}

// classifiedFields lists every field of [Document], by its JSON path ("[]"
// for the elements of a list of objects), with how Diff classifies its
// changes: those of the key rule's stateful sections are package
// stateful's (stateful.DiffFields, under "keys[]."). A test compares it
// with the Document types, so that a new field is classified
// deliberately; Diff counts any change of a field missing here as a
// loosening.
var classifiedFields = withStatefulFields(map[string]string{
	"version": "not judged: the enclave checks that versions increase",

	"clients[].name":       "neutral: a label (clients are identified by public key)",
	"clients[].scheme":     "with public_key, the client's identity: a new one is a new client (loosening)",
	"clients[].public_key": "with scheme, the client's identity: a new one is a new client (loosening)",
	"clients[].keys":       "keys a client may use: added loosens, removed tightens",

	"keys[].key":               "the key's identity: a new key rule loosens, a removed one tightens (but see freeze.scope)",
	"keys[].chains":            "added chains loosen, removed ones tighten",
	"keys[].transaction_types": "compared as the types allowed (absent: the default legacy, eip2930, eip1559): a type added loosens, removed tightens",

	"keys[].native_transfers.destinations[].address":                "per chain where the key-wide list applies: added loosens, removed tightens",
	"keys[].native_transfers.destinations[].label":                  "neutral: a label",
	"keys[].native_transfers.max_per_transaction_wei":               "per chain where the key-wide list applies: raised loosens, lowered tightens",
	"keys[].personal_messages":                                      "turned on loosens, off tightens",
	"keys[].typed_data.domains[].name":                              "part of the domain rule; empty matches any name: a domain the old rules do not cover loosens",
	"keys[].typed_data.domains[].version":                           "part of the domain rule; empty matches any version: a domain the old rules do not cover loosens",
	"keys[].typed_data.domains[].chain_id":                          "part of the domain rule: a domain the old rules do not cover loosens",
	"keys[].typed_data.domains[].verifying_contract":                "part of the domain rule: a domain the old rules do not cover loosens",
	"keys[].raw_digest":                                             "turned on loosens, off tightens",
	"keys[].chain_rules[].chain_id":                                 "which chain the rules are for: rules compared per chain",
	"keys[].chain_rules[].native_transfers.destinations[].address":  "added loosens, removed tightens",
	"keys[].chain_rules[].native_transfers.destinations[].label":    "neutral: a label",
	"keys[].chain_rules[].native_transfers.max_per_transaction_wei": "raised loosens, lowered tightens",

	"keys[].chain_rules[].fees.max_gas_limit":                "raised (or fees removed) loosens, lowered (or fees added) tightens",
	"keys[].chain_rules[].fees.max_fee_per_gas_wei":          "raised (or fees removed) loosens, lowered (or fees added) tightens",
	"keys[].chain_rules[].fees.max_priority_fee_per_gas_wei": "raised (or fees removed) loosens, lowered (or fees added) tightens",
	"keys[].chain_rules[].fees.max_gas_price_wei":            "raised (or fees removed) loosens, lowered (or fees added) tightens",

	"keys[].chain_rules[].tokens[].address":                          "added token loosens, removed tightens",
	"keys[].chain_rules[].tokens[].label":                            "neutral: a label",
	"keys[].chain_rules[].tokens[].transfers.destinations[].address": "added recipient (or transfers turned on) loosens, removed tightens",
	"keys[].chain_rules[].tokens[].transfers.destinations[].label":   "neutral: a label",
	"keys[].chain_rules[].tokens[].transfers.max_per_transaction":    "raised loosens, lowered tightens",
	"keys[].chain_rules[].tokens[].transfers.transfer_from":          "turned on loosens, off tightens",
	"keys[].chain_rules[].tokens[].spenders[].address":               "added spender loosens, removed tightens",
	"keys[].chain_rules[].tokens[].spenders[].label":                 "neutral: a label",
	"keys[].chain_rules[].tokens[].spenders[].max_allowance":         "raised (\"unlimited\" highest) loosens, lowered tightens",

	"keys[].chain_rules[].nfts[].address":                        "added collection loosens, removed tightens",
	"keys[].chain_rules[].nfts[].label":                          "neutral: a label",
	"keys[].chain_rules[].nfts[].standard":                       "changed loosens (other functions become callable)",
	"keys[].chain_rules[].nfts[].destinations[].address":         "added recipient loosens, removed tightens",
	"keys[].chain_rules[].nfts[].destinations[].label":           "neutral: a label",
	"keys[].chain_rules[].nfts[].operators[].address":            "added operator loosens, removed tightens",
	"keys[].chain_rules[].nfts[].operators[].label":              "neutral: a label",
	"keys[].chain_rules[].contracts[].address":                   "added contract loosens, removed tightens",
	"keys[].chain_rules[].contracts[].label":                     "neutral: a label",
	"keys[].chain_rules[].contracts[].functions[].selector":      "added function loosens, removed tightens",
	"keys[].chain_rules[].contracts[].functions[].signature":     "neutral: for humans (checked against the selector)",
	"keys[].chain_rules[].contracts[].functions[].max_value_wei": "raised loosens, lowered tightens",
	"keys[].chain_rules[].safes[].address":                       "added Safe loosens, removed tightens",
	"keys[].chain_rules[].safes[].label":                         "neutral: a label",
	"keys[].chain_rules[].multisend_call_only[].address":         "added library loosens, removed tightens",
	"keys[].chain_rules[].multisend_call_only[].label":           "neutral: a label",

	"assets[].chain_id": "neutral: assets name tokens in summaries; caps are in base units",
	"assets[].address":  "neutral: assets name tokens in summaries; caps are in base units",
	"assets[].symbol":   "neutral: assets name tokens in summaries; caps are in base units",
	"assets[].decimals": "neutral: assets name tokens in summaries; caps are in base units",
})

// withStatefulFields adds stateful.DiffFields, the fields of the key
// rule's stateful sections, to fields.
func withStatefulFields(fields map[string]string) map[string]string {
	for p, how := range stateful.DiffFields() {
		fields["keys[]."+p] = how
	}
	return fields
}

// orEmpty returns p, or a policy that allows nothing when p is nil.
func orEmpty(p *Policy) *Policy {
	if p != nil {
		return p
	}
	return &Policy{clients: map[string]*clientRule{}, keys: map[string]*keyRule{}, assets: map[assetKey]Asset{}}
}

// differ collects the classification of the change from o to n.
type differ struct {
	o, n *Policy
	c    Change
}

func (d *differ) loosen(format string, args ...any) {
	d.c.Loosening = append(d.c.Loosening, fmt.Sprintf(format, args...))
}

func (d *differ) tighten(format string, args ...any) {
	d.c.Tightening = append(d.c.Tightening, fmt.Sprintf(format, args...))
}

// clients compares the clients by public key, their identity.
func (d *differ) clients() {
	oldNames := map[string]string{} // name -> public key
	newNames := map[string]string{}
	for k, c := range d.o.clients {
		oldNames[c.name] = k
	}
	for k, c := range d.n.clients {
		newNames[c.name] = k
	}
	for _, k := range clientOrder(d.n.clients) {
		nc := d.n.clients[k]
		oc, ok := d.o.clients[k]
		if !ok {
			if prev, had := oldNames[nc.name]; had {
				d.loosen("client %s: public key changed from %s to %s (keys %s)", nc.name, prev, k, strings.Join(nc.keys, ", "))
			} else {
				d.loosen("client %s added (public key %s, keys %s)", nc.name, k, strings.Join(nc.keys, ", "))
			}
			continue
		}
		name := nc.name
		if oc.name != nc.name {
			name = fmt.Sprintf("%s (formerly %s)", nc.name, oc.name)
		}
		oks, nks := keySet(oc.keys), keySet(nc.keys)
		for _, kid := range slices.Sorted(slices.Values(nc.keys)) {
			if !oks[kid] {
				d.loosen("client %s: key %s added", name, kid)
			}
		}
		for _, kid := range slices.Sorted(slices.Values(oc.keys)) {
			if !nks[kid] {
				d.tighten("client %s: key %s removed", name, kid)
			}
		}
	}
	for _, k := range clientOrder(d.o.clients) {
		if _, ok := d.n.clients[k]; ok {
			continue
		}
		oc := d.o.clients[k]
		if _, kept := newNames[oc.name]; kept {
			d.tighten("client %s: old public key %s removed", oc.name, k)
		} else {
			d.tighten("client %s removed", oc.name)
		}
	}
}

func keySet(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// clientOrder returns the public keys of m ordered by client name.
func clientOrder(m map[string]*clientRule) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := strings.Compare(m[a].name, m[b].name); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func (d *differ) keys() {
	ids := slices.Sorted(maps.Keys(d.o.keys))
	for id := range d.n.keys {
		if d.o.keys[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		o, n := d.o.keys[id], d.n.keys[id]
		switch {
		case o == nil:
			d.loosen("key %s added (chains %s)", id, chainList(n.chains))
		case n == nil:
			d.tighten("key %s removed", id)
			// What the key's stateful rules did for other keys (a freeze
			// of scope all) goes with it.
			d.add(stateful.DiffRemovedKey(id, o.stateful, d.keptKeys()))
		default:
			d.key(id, o, n)
		}
	}
}

// keptKeys reports whether a key has rules in both policies.
func (d *differ) keptKeys() bool {
	for id := range d.o.keys {
		if d.n.keys[id] != nil {
			return true
		}
	}
	return false
}

func chainList(cs []uint64) string {
	s := make([]string, len(cs))
	for i, c := range slices.Sorted(slices.Values(cs)) {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, ", ")
}

func (d *differ) key(id string, o, n *keyRule) {
	chains := slices.Concat(o.chains, n.chains)
	slices.Sort(chains)
	for _, c := range slices.Compact(chains) {
		inO, inN := slices.Contains(o.chains, c), slices.Contains(n.chains, c)
		switch {
		case !inO:
			d.loosen("key %s: chain %d added", id, c)
		case !inN:
			d.tighten("key %s: chain %d removed", id, c)
		default:
			d.chain(id, c, o.perChain[c], n.perChain[c])
		}
	}
	for _, t := range n.txTypes {
		if !slices.Contains(o.txTypes, t) {
			tt, _ := transactionTypeOf(t)
			d.loosen("key %s: transaction type %s (%s) allowed", id, tt.Name, t)
		}
	}
	for _, t := range o.txTypes {
		if !slices.Contains(n.txTypes, t) {
			tt, _ := transactionTypeOf(t)
			d.tighten("key %s: transaction type %s (%s) no longer allowed", id, tt.Name, t)
		}
	}
	d.flag(fmt.Sprintf("key %s: personal messages", id), o.personal, n.personal)
	d.flag(fmt.Sprintf("key %s: raw digests", id), o.rawDigest, n.rawDigest)
	od, nd := domainIndex(o.domains), domainIndex(n.domains)
	for _, dr := range n.domains {
		if !coversDomain(od, dr) {
			d.loosen("key %s: typed data domain %s added", id, dr)
		}
	}
	for _, dr := range o.domains {
		if !coversDomain(nd, dr) {
			d.tighten("key %s: typed data domain %s removed", id, dr)
		}
	}
	d.add(stateful.Diff(o.stateful, n.stateful, stateful.DiffScope{
		Key:       id,
		Reachable: func(chain uint64, asset ethtx.Address) bool { return !unreachable(n, chain, asset) },
		AssetName: d.assetName,
		OldAmount: d.o.amountOf,
		NewAmount: d.n.amountOf,
	}))
}

// add adds the classification of a change of a key's stateful rules.
func (d *differ) add(c stateful.Change) {
	d.c.Loosening = append(d.c.Loosening, c.Loosening...)
	d.c.Tightening = append(d.c.Tightening, c.Tightening...)
}

// flag compares a switch that allows something when on.
func (d *differ) flag(what string, o, n bool) {
	switch {
	case !o && n:
		d.loosen("%s turned on", what)
	case o && !n:
		d.tighten("%s turned off", what)
	}
}

type domainScope struct {
	chain    uint64
	contract ethtx.Address
}

// domainIndex groups domain rules by chain and verifying contract.
func domainIndex(rs []domainRule) map[domainScope][]domainRule {
	m := map[domainScope][]domainRule{}
	for _, r := range rs {
		k := domainScope{r.chain, r.contract}
		m[k] = append(m[k], r)
	}
	return m
}

// coversDomain reports whether the indexed rules match every domain that x
// matches: a rule without a name (version) matches any name (version).
func coversDomain(idx map[domainScope][]domainRule, x domainRule) bool {
	for _, r := range idx[domainScope{x.chain, x.contract}] {
		if (r.name == "" || r.name == x.name) && (r.version == "" || r.version == x.version) {
			return true
		}
	}
	return false
}

func (r domainRule) String() string {
	name, version := "any", "any"
	if r.name != "" {
		name = fmt.Sprintf("%q", r.name)
	}
	if r.version != "" {
		version = fmt.Sprintf("%q", r.version)
	}
	return fmt.Sprintf("(chain %d, verifying contract %s, name %s, version %s)", r.chain, r.contract.Hex(), name, version)
}

// chain compares the effective rules of a chain both policies give the
// key.
func (d *differ) chain(id string, chain uint64, o, n *chainRule) {
	at := fmt.Sprintf("key %s chain %d", id, chain)
	d.native(at, o.native, n.native)
	d.fees(at, o.fees, n.fees)
	for _, a := range unionAddrs(o.tokens, n.tokens) {
		d.token(at, chain, a, o.tokens[a], n.tokens[a])
	}
	for _, a := range unionAddrs(o.nfts, n.nfts) {
		d.nft(at, a, o.nfts[a], n.nfts[a])
	}
	for _, a := range unionAddrs(o.contracts, n.contracts) {
		d.contract(at, a, o.contracts[a], n.contracts[a])
	}
	d.addrSet(at, "Safe", o.safes, n.safes)
	d.addrSet(at, "MultiSendCallOnly", o.multisend, n.multisend)
}

func (d *differ) native(at string, o, n *nativeRule) {
	var od, nd map[ethtx.Address]string
	if o != nil {
		od = o.dests
	}
	if n != nil {
		nd = n.dests
	}
	switch {
	case o == nil && n != nil && len(nd) > 0:
		d.loosen("%s: native transfers turned on, at most %s per transaction", at, weiAmount(n.max))
	case o != nil && n == nil && len(od) > 0:
		d.tighten("%s: native transfers turned off", at)
	case o != nil && n != nil:
		d.amount(at+": native max per transaction", weiAmount(o.max), weiAmount(n.max), o.max, n.max)
	}
	d.addrSet(at, "native destination", od, nd)
}

func (d *differ) fees(at string, o, n *feeCaps) {
	switch {
	case o == nil && n == nil:
	case o == nil:
		d.tighten("%s: fee caps added", at)
	case n == nil:
		d.loosen("%s: fee caps removed: the gas limit and fees are no longer capped", at)
	default:
		og, ng := new(big.Int).SetUint64(o.gasLimit), new(big.Int).SetUint64(n.gasLimit)
		d.amount(at+": max gas limit", og.String(), ng.String(), og, ng)
		d.amount(at+": max fee per gas", weiPlain(o.maxFee), weiPlain(n.maxFee), o.maxFee, n.maxFee)
		d.amount(at+": max priority fee per gas", weiPlain(o.maxPrio), weiPlain(n.maxPrio), o.maxPrio, n.maxPrio)
		d.amount(at+": max gas price", weiPlain(o.gasPrice), weiPlain(n.gasPrice), o.gasPrice, n.gasPrice)
	}
}

func (d *differ) token(at string, chain uint64, a ethtx.Address, o, n *tokenRule) {
	if n == nil {
		d.tighten("%s: token %s removed", at, labelled(a, o.label))
		return
	}
	what := fmt.Sprintf("%s: token %s", at, labelled(a, n.label))
	if o == nil {
		d.loosen("%s added", what)
		o = &tokenRule{}
	}
	oAmt := func(v *big.Int) string { return d.o.amountOf(chain, a, v) }
	nAmt := func(v *big.Int) string { return d.n.amountOf(chain, a, v) }
	ot, nt := o.transfers, n.transfers
	var od, nd map[ethtx.Address]string
	if ot != nil {
		od = ot.dests
	}
	if nt != nil {
		nd = nt.dests
	}
	switch {
	case ot == nil && nt != nil:
		from := ""
		if nt.transferFrom {
			from = " (transferFrom too)"
		}
		d.loosen("%s: transfers turned on%s, at most %s per transaction", what, from, nAmt(nt.max))
	case ot != nil && nt == nil:
		d.tighten("%s: transfers turned off", what)
	case ot != nil && nt != nil:
		d.amount(what+": max per transaction", oAmt(ot.max), nAmt(nt.max), ot.max, nt.max)
		d.flag(what+": transferFrom", ot.transferFrom, nt.transferFrom)
	}
	d.addrSet(what, "recipient", od, nd)
	for _, s := range unionAddrs(o.spenders, n.spenders) {
		os, inO := o.spenders[s]
		ns, inN := n.spenders[s]
		switch {
		case !inN:
			d.tighten("%s: spender %s removed", what, labelled(s, os.label))
		case !inO:
			d.loosen("%s: spender %s added, max allowance %s", what, labelled(s, ns.label), allowance(ns.max, nAmt))
		default:
			sp := fmt.Sprintf("%s: spender %s max allowance", what, labelled(s, ns.label))
			switch {
			case os.max == nil && ns.max == nil:
			case ns.max == nil:
				d.loosen("%s raised from %s to unlimited", sp, oAmt(os.max))
			case os.max == nil:
				d.tighten("%s lowered from unlimited to %s", sp, nAmt(ns.max))
			default:
				d.amount(sp, oAmt(os.max), nAmt(ns.max), os.max, ns.max)
			}
		}
	}
}

func allowance(v *big.Int, f func(*big.Int) string) string {
	if v == nil {
		return "unlimited"
	}
	return f(v)
}

func (d *differ) nft(at string, a ethtx.Address, o, n *nftRule) {
	if n == nil {
		d.tighten("%s: collection %s removed", at, labelled(a, o.label))
		return
	}
	what := fmt.Sprintf("%s: collection %s", at, labelled(a, n.label))
	switch {
	case o == nil:
		d.loosen("%s added (%s)", what, n.standard)
		o = &nftRule{standard: n.standard}
	case o.standard != n.standard:
		d.loosen("%s: standard changed from %s to %s", what, o.standard, n.standard)
	}
	d.addrSet(what, "recipient", o.dests, n.dests)
	d.addrSet(what, "operator", o.operators, n.operators)
}

func (d *differ) contract(at string, a ethtx.Address, o, n *contractRule) {
	if n == nil {
		d.tighten("%s: contract %s removed", at, labelled(a, o.label))
		return
	}
	what := fmt.Sprintf("%s: contract %s", at, labelled(a, n.label))
	if o == nil {
		d.loosen("%s added", what)
		o = &contractRule{}
	}
	sels := slices.Collect(maps.Keys(o.functions))
	for s := range n.functions {
		if o.functions[s] == nil {
			sels = append(sels, s)
		}
	}
	slices.SortFunc(sels, func(x, y [4]byte) int { return bytes.Compare(x[:], y[:]) })
	for _, s := range sels {
		of, nf := o.functions[s], n.functions[s]
		fn := fmt.Sprintf("%s: function 0x%x", what, s)
		if sig := signatureOf(nf, of); sig != "" {
			fn += " " + sig
		}
		switch {
		case nf == nil:
			d.tighten("%s removed", fn)
		case of == nil:
			d.loosen("%s added, max value %s", fn, weiAmount(nf.maxValue))
		default:
			d.amount(fn+": max value", weiAmount(of.maxValue), weiAmount(nf.maxValue), of.maxValue, nf.maxValue)
		}
	}
}

// signatureOf returns the signature of the first function that names one.
func signatureOf(fs ...*functionRule) string {
	for _, f := range fs {
		if f != nil && f.signature != "" {
			return f.signature
		}
	}
	return ""
}

// addrSet compares an allowlist of labelled addresses: labels are neutral.
func (d *differ) addrSet(at, what string, o, n map[ethtx.Address]string) {
	for _, a := range unionAddrs(o, n) {
		ol, inO := o[a]
		nl, inN := n[a]
		switch {
		case !inO:
			d.loosen("%s: %s %s added", at, what, labelled(a, nl))
		case !inN:
			d.tighten("%s: %s %s removed", at, what, labelled(a, ol))
		}
	}
}

// amount compares a cap, written os and ns for humans.
func (d *differ) amount(what, os, ns string, o, n *big.Int) {
	switch n.Cmp(o) {
	case 1:
		d.loosen("%s raised from %s to %s", what, os, ns)
	case -1:
		d.tighten("%s lowered from %s to %s", what, os, ns)
	}
}

// unreachable reports whether the key n can move nothing of asset on chain:
// the chain is not the key's, or the asset is a token that is neither a
// token nor a collection of the key there (only token and collection rules
// move tokens).
func unreachable(n *keyRule, chain uint64, asset ethtx.Address) bool {
	cr := n.perChain[chain]
	if cr == nil {
		return true
	}
	return asset != (ethtx.Address{}) && cr.tokens[asset] == nil && cr.nfts[asset] == nil
}

// assetName names an asset for messages: "native", or the token's address
// with the symbol either policy gives it.
func (d *differ) assetName(chain uint64, a ethtx.Address) string {
	if a == (ethtx.Address{}) {
		return "native"
	}
	for _, p := range []*Policy{d.n, d.o} {
		if as, ok := p.assets[assetKey{chain, a}]; ok {
			return as.Symbol + " " + a.Hex()
		}
	}
	return a.Hex()
}

// amountOf writes an amount of asset (zero: the native coin) for a message.
func (p *Policy) amountOf(chain uint64, asset ethtx.Address, v *big.Int) string {
	if asset == (ethtx.Address{}) {
		return weiAmount(v)
	}
	return p.formatAmount(chain, asset, v)
}

func weiAmount(v *big.Int) string { return fmt.Sprintf("%s (%s wei)", ethtx.FormatEther(v), v) }

func weiPlain(v *big.Int) string { return v.String() + " wei" }

func labelled(a ethtx.Address, label string) string {
	if label == "" {
		return a.Hex()
	}
	return fmt.Sprintf("%s (%s)", a.Hex(), label)
}

// unionAddrs returns the addresses of a and b in byte order.
func unionAddrs[V any](a, b map[ethtx.Address]V) []ethtx.Address {
	m := make(map[ethtx.Address]struct{}, len(a)+len(b))
	for k := range a {
		m[k] = struct{}{}
	}
	for k := range b {
		m[k] = struct{}{}
	}
	return sortedKeys(m)
}

// unclassified compares the canonical documents field by field, for the
// fields known does not list: for each such field, the values it takes
// anywhere in the document. It names each field whose values differ, and
// fails closed when a document does not decode.
func unclassified(oldCanon, newCanon []byte, known map[string]string) []string {
	ov, err := fieldValues(oldCanon, known)
	if err != nil {
		return []string{fmt.Sprintf("the old document could not be compared field by field: %v", err)}
	}
	nv, err := fieldValues(newCanon, known)
	if err != nil {
		return []string{fmt.Sprintf("the new document could not be compared field by field: %v", err)}
	}
	paths := slices.Collect(maps.Keys(ov))
	for p := range nv {
		if _, ok := ov[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []string
	for _, p := range paths {
		if !slices.Equal(ov[p], nv[p]) {
			out = append(out, fmt.Sprintf("field %s changed, which the classifier does not know", p))
		}
	}
	return out
}

// fieldValues returns, for every leaf field of a JSON document that known
// does not list, its values (as JSON, sorted). Lists of objects add "[]" to
// the path; empty lists and nulls count as absent.
func fieldValues(doc []byte, known map[string]string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(doc) == 0 {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case nil:
			return nil
		case map[string]any:
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if err := walk(p, e); err != nil {
					return err
				}
			}
			return nil
		case []any:
			if len(x) == 0 {
				return nil
			}
			if !slices.ContainsFunc(x, func(e any) bool { _, obj := e.(map[string]any); return !obj }) {
				for _, e := range x {
					if err := walk(path+"[]", e); err != nil {
						return err
					}
				}
				return nil
			}
		}
		if _, ok := known[path]; ok {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out[path] = append(out[path], string(b))
		return nil
	}
	if err := walk("", v); err != nil {
		return nil, err
	}
	for _, vs := range out {
		slices.Sort(vs)
	}
	return out, nil
}
