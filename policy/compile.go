package policy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"golang.org/x/crypto/sha3"
)

// keyRule is a compiled KeyRule.
type keyRule struct {
	id        string
	chains    []uint64
	txTypes   []ethtx.Type
	personal  bool
	rawDigest bool
	domains   []domainRule
	// perChain holds a rule for every chain in chains (an empty one, but
	// for key-wide native transfers, when the document has none).
	perChain map[uint64]*chainRule

	// stateful is the key's stateful rules, compiled by package stateful.
	stateful stateful.Rules
}

type domainRule struct {
	name, version string
	chain         uint64
	contract      ethtx.Address
}

// chainRule is a compiled ChainRule.
type chainRule struct {
	chain     uint64
	native    *nativeRule // the chain's own, or the key-wide one
	fees      *feeCaps
	tokens    map[ethtx.Address]*tokenRule
	nfts      map[ethtx.Address]*nftRule
	contracts map[ethtx.Address]*contractRule
	safes     map[ethtx.Address]string
	multisend map[ethtx.Address]string
	labels    map[ethtx.Address]string
}

type nativeRule struct {
	dests map[ethtx.Address]string
	max   *big.Int
}

type feeCaps struct {
	gasLimit                  uint64
	maxFee, maxPrio, gasPrice *big.Int
}

type tokenRule struct {
	addr      ethtx.Address
	label     string
	transfers *tokenTransfers
	spenders  map[ethtx.Address]spenderRule
}

type tokenTransfers struct {
	dests        map[ethtx.Address]string
	max          *big.Int
	transferFrom bool
}

type spenderRule struct {
	label string
	max   *big.Int // nil: unlimited
}

// NFT standards.
const (
	standardERC721  = "erc721"
	standardERC1155 = "erc1155"
)

type nftRule struct {
	addr      ethtx.Address
	label     string
	standard  string
	dests     map[ethtx.Address]string
	operators map[ethtx.Address]string
}

type contractRule struct {
	addr      ethtx.Address
	label     string
	functions map[[4]byte]*functionRule
}

type functionRule struct {
	signature string
	maxValue  *big.Int
}

// refusedSelectors are selectors that no generic contract rule may allow,
// although the enclave does not decode them: each carries a call or a grant
// that the rules could not see.
var refusedSelectors = map[[4]byte]string{
	{0x87, 0x51, 0x7c, 0x45}: "Permit2 approve(address,address,uint160,uint48), an allowance grant",
	{0xd4, 0xd9, 0xbd, 0xcd}: "Safe approveHash(bytes32), an owner's approval of a Safe transaction nobody decoded",
	{0x46, 0x87, 0x21, 0xa7}: "Safe execTransactionFromModule(address,uint256,bytes,uint8), a module's call with the Safe's authority",
	{0x52, 0x29, 0x07, 0x3f}: "Safe execTransactionFromModuleReturnData(address,uint256,bytes,uint8), a module's call with the Safe's authority",
	{0x2e, 0xb2, 0xc2, 0xd6}: "ERC-1155 safeBatchTransferFrom(address,address,uint256[],uint256[],bytes), a transfer whose recipient the rules could not check",
}

func compileKeyRule(kr *KeyRule, approvers *stateful.Approvers) (*keyRule, error) {
	if !idPattern.MatchString(kr.Key) {
		return nil, errors.New("key: want 1-64 of [A-Za-z0-9._-]")
	}
	if len(kr.Chains) == 0 || len(kr.Chains) > maxChains {
		return nil, fmt.Errorf("chains: want 1 to %d chain ids", maxChains)
	}
	r := &keyRule{id: kr.Key, perChain: map[uint64]*chainRule{}}
	for _, c := range kr.Chains {
		if c == 0 {
			return nil, errors.New("chains: 0 is not a chain id")
		}
		if slices.Contains(r.chains, c) {
			return nil, fmt.Errorf("chains: %d listed twice", c)
		}
		r.chains = append(r.chains, c)
	}
	var err error
	if r.txTypes, err = compileTransactionTypes(kr.TransactionTypes); err != nil {
		return nil, fmt.Errorf("transaction_types%w", err)
	}
	var keyNative *nativeRule
	if kr.NativeTransfers != nil {
		if keyNative, err = compileNative(kr.NativeTransfers); err != nil {
			return nil, fmt.Errorf("native_transfers.%w", err)
		}
	}
	r.personal = kr.PersonalMessages
	r.rawDigest = kr.RawDigest
	if td := kr.TypedData; td != nil {
		if len(td.Domains) == 0 || len(td.Domains) > maxDestinations {
			return nil, fmt.Errorf("typed_data.domains: want 1 to %d domains", maxDestinations)
		}
		for j, d := range td.Domains {
			if d.ChainID == 0 {
				return nil, fmt.Errorf("typed_data.domains[%d].chain_id: 0 is not a chain id", j)
			}
			c, err := ethtx.ParseAddress(d.VerifyingContract)
			if err != nil {
				return nil, fmt.Errorf("typed_data.domains[%d].verifying_contract: %w", j, err)
			}
			if len(d.Name) > maxLabel || len(d.Version) > maxLabel {
				return nil, fmt.Errorf("typed_data.domains[%d]: name and version at most %d bytes", j, maxLabel)
			}
			dr := domainRule{name: d.Name, version: d.Version, chain: d.ChainID, contract: c}
			if slices.Contains(r.domains, dr) {
				return nil, fmt.Errorf("typed_data.domains[%d]: listed twice", j)
			}
			r.domains = append(r.domains, dr)
		}
	}

	if len(kr.ChainRules) > maxChains {
		return nil, fmt.Errorf("chain_rules: more than %d", maxChains)
	}
	for j := range kr.ChainRules {
		cr := &kr.ChainRules[j]
		if !slices.Contains(r.chains, cr.ChainID) {
			return nil, fmt.Errorf("chain_rules[%d].chain_id: %d is not in chains", j, cr.ChainID)
		}
		if _, dup := r.perChain[cr.ChainID]; dup {
			return nil, fmt.Errorf("chain_rules[%d]: chain %d listed twice", j, cr.ChainID)
		}
		if cr.NativeTransfers != nil && keyNative != nil {
			return nil, fmt.Errorf("chain_rules[%d].native_transfers: the key's native_transfers already covers chain %d: set one or the other", j, cr.ChainID)
		}
		c, err := compileChainRule(cr, keyNative)
		if err != nil {
			return nil, fmt.Errorf("chain_rules[%d] (chain %d).%w", j, cr.ChainID, err)
		}
		r.perChain[cr.ChainID] = c
	}
	for _, id := range r.chains {
		if _, ok := r.perChain[id]; !ok {
			r.perChain[id] = newChainRule(id, keyNative)
		}
	}
	for _, c := range r.perChain {
		c.buildLabels()
	}
	if err := r.compileStateful(kr, approvers); err != nil {
		return nil, err
	}
	return r, nil
}

func newChainRule(chain uint64, native *nativeRule) *chainRule {
	return &chainRule{
		chain:     chain,
		native:    native,
		tokens:    map[ethtx.Address]*tokenRule{},
		nfts:      map[ethtx.Address]*nftRule{},
		contracts: map[ethtx.Address]*contractRule{},
		safes:     map[ethtx.Address]string{},
		multisend: map[ethtx.Address]string{},
	}
}

func compileNative(nt *NativeTransfers) (*nativeRule, error) {
	dests, err := compileDestinations("destinations", nt.Destinations, maxDestinations, false)
	if err != nil {
		return nil, err
	}
	max, err := parseAmount(nt.MaxPerTransactionWei)
	if err != nil {
		return nil, fmt.Errorf("max_per_transaction_wei: %w", err)
	}
	return &nativeRule{dests: dests, max: max}, nil
}

// compileDestinations checks a list of labelled addresses: valid, non-zero,
// unique, at most max of them, at least one if required. Errors start with
// the field name, to follow a "." in the caller's path.
func compileDestinations(field string, ds []Destination, max int, required bool) (map[ethtx.Address]string, error) {
	if len(ds) > max {
		return nil, fmt.Errorf("%s: more than %d", field, max)
	}
	if required && len(ds) == 0 {
		return nil, fmt.Errorf("%s: empty", field)
	}
	m := make(map[ethtx.Address]string, len(ds))
	for j, d := range ds {
		a, err := parseNonZeroAddress(d.Address)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].address: %w", field, j, err)
		}
		if err := checkLabel(d.Label); err != nil {
			return nil, fmt.Errorf("%s[%d].label: %w", field, j, err)
		}
		if _, dup := m[a]; dup {
			return nil, fmt.Errorf("%s[%d]: %s listed twice", field, j, a.Hex())
		}
		m[a] = d.Label
	}
	return m, nil
}

// parseNonZeroAddress parses an address that an allowlist may hold: the
// zero address is no one's (tokens sent there are burnt, and MultiSend reads
// it as the calling Safe).
func parseNonZeroAddress(s string) (ethtx.Address, error) {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		return a, err
	}
	if a == (ethtx.Address{}) {
		return a, errors.New("the zero address is not allowed")
	}
	return a, nil
}

func compileChainRule(cr *ChainRule, keyNative *nativeRule) (*chainRule, error) {
	c := newChainRule(cr.ChainID, keyNative)
	if cr.NativeTransfers != nil {
		n, err := compileNative(cr.NativeTransfers)
		if err != nil {
			return nil, fmt.Errorf("native_transfers.%w", err)
		}
		c.native = n
	}
	if f := cr.Fees; f != nil {
		if f.MaxGasLimit == 0 {
			return nil, errors.New("fees.max_gas_limit: must be at least 1")
		}
		fc := &feeCaps{gasLimit: f.MaxGasLimit}
		for _, x := range []struct {
			name string
			s    string
			v    **big.Int
		}{
			{"max_fee_per_gas_wei", f.MaxFeePerGasWei, &fc.maxFee},
			{"max_priority_fee_per_gas_wei", f.MaxPriorityFeePerGasWei, &fc.maxPrio},
			{"max_gas_price_wei", f.MaxGasPriceWei, &fc.gasPrice},
		} {
			v, err := parseAmount(x.s)
			if err != nil {
				return nil, fmt.Errorf("fees.%s: %w", x.name, err)
			}
			*x.v = v
		}
		c.fees = fc
	}

	if len(cr.Tokens) > maxTokens {
		return nil, fmt.Errorf("tokens: more than %d", maxTokens)
	}
	for j := range cr.Tokens {
		t, err := compileToken(&cr.Tokens[j])
		if err != nil {
			return nil, fmt.Errorf("tokens[%d].%w", j, err)
		}
		if _, dup := c.tokens[t.addr]; dup {
			return nil, fmt.Errorf("tokens[%d]: %s listed twice", j, t.addr.Hex())
		}
		c.tokens[t.addr] = t
	}

	if len(cr.NFTs) > maxNFTs {
		return nil, fmt.Errorf("nfts: more than %d", maxNFTs)
	}
	for j := range cr.NFTs {
		n, err := compileNFT(&cr.NFTs[j])
		if err != nil {
			return nil, fmt.Errorf("nfts[%d].%w", j, err)
		}
		if _, dup := c.nfts[n.addr]; dup {
			return nil, fmt.Errorf("nfts[%d]: %s listed twice", j, n.addr.Hex())
		}
		if _, tok := c.tokens[n.addr]; tok {
			return nil, fmt.Errorf("nfts[%d]: %s is also an ERC-20 token: transferFrom and approve would be ambiguous", j, n.addr.Hex())
		}
		c.nfts[n.addr] = n
	}

	var err error
	if c.safes, err = compileDestinations("safes", cr.Safes, maxSafes, false); err != nil {
		return nil, err
	}
	if c.multisend, err = compileDestinations("multisend_call_only", cr.MultiSendCallOnly, maxMultiSends, false); err != nil {
		return nil, err
	}
	for a := range c.safes {
		_, ms := c.multisend[a]
		if c.tokens[a] != nil || c.nfts[a] != nil || ms {
			return nil, fmt.Errorf("safes: %s is also a token, an NFT collection or a MultiSendCallOnly", a.Hex())
		}
	}
	for a := range c.multisend {
		if c.tokens[a] != nil || c.nfts[a] != nil {
			return nil, fmt.Errorf("multisend_call_only: %s is also a token or an NFT collection", a.Hex())
		}
	}

	if len(cr.Contracts) > maxContracts {
		return nil, fmt.Errorf("contracts: more than %d", maxContracts)
	}
	for j := range cr.Contracts {
		k, err := compileContract(&cr.Contracts[j])
		if err != nil {
			return nil, fmt.Errorf("contracts[%d].%w", j, err)
		}
		if _, dup := c.contracts[k.addr]; dup {
			return nil, fmt.Errorf("contracts[%d]: %s listed twice", j, k.addr.Hex())
		}
		if _, safe := c.safes[k.addr]; safe {
			return nil, fmt.Errorf("contracts[%d]: %s is an allowlisted Safe: calls to a Safe are allowed only through safes (execTransaction, checked)", j, k.addr.Hex())
		}
		if _, ms := c.multisend[k.addr]; ms {
			return nil, fmt.Errorf("contracts[%d]: %s is a MultiSendCallOnly: it runs only as a Safe's DELEGATECALL", j, k.addr.Hex())
		}
		c.contracts[k.addr] = k
	}
	return c, nil
}

func compileToken(tr *TokenRule) (*tokenRule, error) {
	a, err := parseNonZeroAddress(tr.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	if err := checkLabel(tr.Label); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	t := &tokenRule{addr: a, label: tr.Label, spenders: map[ethtx.Address]spenderRule{}}
	if tt := tr.Transfers; tt != nil {
		dests, err := compileDestinations("transfers.destinations", tt.Destinations, maxDestinations, true)
		if err != nil {
			return nil, err
		}
		max, err := parseAmount(tt.MaxPerTransaction)
		if err != nil {
			return nil, fmt.Errorf("transfers.max_per_transaction: %w", err)
		}
		t.transfers = &tokenTransfers{dests: dests, max: max, transferFrom: tt.TransferFrom}
	}
	if len(tr.Spenders) > maxSpenders {
		return nil, fmt.Errorf("spenders: more than %d", maxSpenders)
	}
	for j, s := range tr.Spenders {
		sa, err := parseNonZeroAddress(s.Address)
		if err != nil {
			return nil, fmt.Errorf("spenders[%d].address: %w", j, err)
		}
		if err := checkLabel(s.Label); err != nil {
			return nil, fmt.Errorf("spenders[%d].label: %w", j, err)
		}
		if _, dup := t.spenders[sa]; dup {
			return nil, fmt.Errorf("spenders[%d]: %s listed twice", j, sa.Hex())
		}
		sr := spenderRule{label: s.Label}
		if s.MaxAllowance != "unlimited" {
			if sr.max, err = parseAmount(s.MaxAllowance); err != nil {
				return nil, fmt.Errorf("spenders[%d].max_allowance: %w, or \"unlimited\"", j, err)
			}
		}
		t.spenders[sa] = sr
	}
	return t, nil
}

func compileNFT(nr *NFTRule) (*nftRule, error) {
	a, err := parseNonZeroAddress(nr.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	if err := checkLabel(nr.Label); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	if nr.Standard != standardERC721 && nr.Standard != standardERC1155 {
		return nil, fmt.Errorf("standard: want %q or %q", standardERC721, standardERC1155)
	}
	n := &nftRule{addr: a, label: nr.Label, standard: nr.Standard}
	if n.dests, err = compileDestinations("destinations", nr.Destinations, maxDestinations, false); err != nil {
		return nil, err
	}
	if n.operators, err = compileDestinations("operators", nr.Operators, maxSpenders, false); err != nil {
		return nil, err
	}
	return n, nil
}

func compileContract(cr *ContractRule) (*contractRule, error) {
	a, err := parseNonZeroAddress(cr.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	if err := checkLabel(cr.Label); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	if len(cr.Functions) == 0 || len(cr.Functions) > maxFunctions {
		return nil, fmt.Errorf("functions: want 1 to %d", maxFunctions)
	}
	k := &contractRule{addr: a, label: cr.Label, functions: map[[4]byte]*functionRule{}}
	for j, f := range cr.Functions {
		sel, err := parseSelector(f.Selector)
		if err != nil {
			return nil, fmt.Errorf("functions[%d].selector: %w", j, err)
		}
		if _, dup := k.functions[sel]; dup {
			return nil, fmt.Errorf("functions[%d]: selector %s listed twice", j, f.Selector)
		}
		if why, refused := refusedSelectors[sel]; refused {
			return nil, fmt.Errorf("functions[%d].selector: %s is %s, which no contract rule may allow", j, f.Selector, why)
		}
		if decoded, method := isDecodedSelector(sel); decoded {
			return nil, fmt.Errorf("functions[%d].selector: %s is %s, which the enclave decodes and checks by its own rules (tokens, nfts, safes), not by contract rules", j, f.Selector, method)
		}
		fr := &functionRule{signature: f.Signature, maxValue: new(big.Int)}
		if f.Signature != "" {
			if len(f.Signature) > maxSignature || !utf8.ValidString(f.Signature) || strings.ContainsFunc(f.Signature, isControl) {
				return nil, fmt.Errorf("functions[%d].signature: at most %d printable bytes", j, maxSignature)
			}
			if got := selectorOf(f.Signature); got != sel {
				return nil, fmt.Errorf("functions[%d].signature: %s has selector 0x%x, not %s", j, f.Signature, got, f.Selector)
			}
		}
		if f.MaxValueWei != "" {
			if fr.maxValue, err = parseAmount(f.MaxValueWei); err != nil {
				return nil, fmt.Errorf("functions[%d].max_value_wei: %w", j, err)
			}
		}
		k.functions[sel] = fr
	}
	return k, nil
}

// parseSelector parses "0x" and 8 lower-case hex digits.
func parseSelector(s string) ([4]byte, error) {
	var sel [4]byte
	if len(s) != 10 || s[:2] != "0x" {
		return sel, errors.New("want 0x and 8 lower-case hex digits")
	}
	for _, c := range s[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return sel, errors.New("want 0x and 8 lower-case hex digits")
		}
	}
	if _, err := hex.Decode(sel[:], []byte(s[2:])); err != nil {
		return sel, errors.New("want 0x and 8 lower-case hex digits")
	}
	return sel, nil
}

// isDecodedSelector reports whether package calldata decodes the function
// with selector sel, and names it, asking the decoder itself: the selector
// alone decodes to an Unknown call only for a function it does not know,
// and is refused (for want of arguments) for one it does.
func isDecodedSelector(sel [4]byte) (bool, string) {
	c, err := calldata.Decode(sel[:])
	if err == nil {
		if _, unknown := c.(*calldata.Unknown); unknown {
			return false, ""
		}
		return true, c.Method()
	}
	// "calldata: transfer: 0 bytes of arguments, want 64"
	parts := strings.SplitN(err.Error(), ": ", 3)
	if len(parts) == 3 {
		return true, parts[1]
	}
	return true, "a function the enclave decodes"
}

// selectorOf returns the first 4 bytes of the Keccak-256 hash of sig.
func selectorOf(sig string) [4]byte {
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(sig))
	return [4]byte(h.Sum(nil))
}

// buildLabels collects the labels of the chain's addresses, the first one
// winning in the order that Policy.Label documents.
func (c *chainRule) buildLabels() {
	c.labels = map[ethtx.Address]string{}
	add := func(m map[ethtx.Address]string) {
		for a, l := range m {
			if _, ok := c.labels[a]; !ok && l != "" {
				c.labels[a] = l
			}
		}
	}
	if c.native != nil {
		add(c.native.dests)
	}
	tokens := sortedKeys(c.tokens)
	nfts := sortedKeys(c.nfts)
	for _, a := range tokens {
		if t := c.tokens[a].transfers; t != nil {
			add(t.dests)
		}
	}
	for _, a := range tokens {
		for s, sr := range c.tokens[a].spenders {
			add(map[ethtx.Address]string{s: sr.label})
		}
	}
	for _, a := range nfts {
		add(c.nfts[a].dests)
	}
	for _, a := range nfts {
		add(c.nfts[a].operators)
	}
	add(c.safes)
	add(c.multisend)
	for a, k := range c.contracts {
		add(map[ethtx.Address]string{a: k.label})
	}
	for a, t := range c.tokens {
		add(map[ethtx.Address]string{a: t.label})
	}
	for a, n := range c.nfts {
		add(map[ethtx.Address]string{a: n.label})
	}
}

// sortedKeys returns the addresses of m in byte order, so that which label
// wins does not depend on map iteration.
func sortedKeys[V any](m map[ethtx.Address]V) []ethtx.Address {
	keys := make([]ethtx.Address, 0, len(m))
	for a := range m {
		keys = append(keys, a)
	}
	slices.SortFunc(keys, func(a, b ethtx.Address) int { return slices.Compare(a[:], b[:]) })
	return keys
}
