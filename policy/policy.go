// Package policy decides, inside the enclave, whether a decoded request may
// be signed.
//
// A policy is a versioned JSON document (see docs/policy.md). It names the
// client services allowed to make requests (by their stamp public key) and,
// per signing key, what that key may sign: chains; transaction types (an
// allow-list: see [TransactionTypes]); native-coin destinations;
// per chain, ERC-20 tokens with their recipients, per-transaction caps and
// allowlisted spenders, NFT collections, generic contract calls by (contract,
// selector), Safes and MultiSendCallOnly libraries, and fee caps; personal
// messages, raw digests and EIP-712 domains. Evaluation is default-deny:
// anything the document does not allow is refused, and every refusal names
// the rule that refused it, so that operators and client services can tell a
// policy decision from a fault.
//
// This package decides what one request may do on its own (stateless
// rules). An allowed [Decision] lists the value [Movement]s and allowance
// [Grant]s the request causes, and what of them the enclave's stateful
// rules (rolling limits, velocity, approvals, freezes) count
// ([Decision.Counted]: grants count like transfers of the granted
// amount, [Decision.OperatorGrants]), whose configuration the document
// also holds ([stateful.KeyConfig], embedded in [KeyRule]) and this
// package parses, has package stateful validate, and exposes
// ([Policy.KeyRules]) without enforcing it.
package policy

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// MaxDocumentSize caps a policy document.
const MaxDocumentSize = 1 << 20

// Limits on the document's contents: every list has a cap, on top of
// MaxDocumentSize.
const (
	maxClients      = 1024
	maxKeys         = 1024
	maxChains       = 64 // chains and chain_rules of a key
	maxDestinations = 4096
	maxLabel        = 128
	maxAssets       = 4096
	maxTokens       = 1024 // tokens of a chain
	maxSpenders     = 256  // spenders of a token, operators of an NFT collection
	maxNFTs         = 1024 // NFT collections of a chain
	maxContracts    = 1024 // generic contracts of a chain
	maxFunctions    = 64   // functions of a generic contract
	maxSafes        = 256  // Safes of a chain
	maxMultiSends   = 16   // MultiSendCallOnly libraries of a chain
	maxSignature    = 256  // a function signature
	maxSymbol       = 16   // an asset's symbol, in bytes
	maxDecimals     = 77   // an asset's decimals: 10^77 is the largest power of ten below 2^256
)

// Document is the JSON form of a policy. Its field order is the canonical
// order that [Policy.Hash] commits to.
type Document struct {
	// Version only increases across policy changes.
	Version uint64    `json:"version"`
	Clients []Client  `json:"clients"`
	Keys    []KeyRule `json:"keys"`
	// Assets names tokens, for summaries and messages: symbol and
	// decimals.
	Assets []Asset `json:"assets,omitempty"`
}

// Asset is a token contract the policy knows by name.
type Asset struct {
	ChainID  uint64 `json:"chain_id"`
	Address  string `json:"address"`
	Symbol   string `json:"symbol"`
	Decimals uint8  `json:"decimals"`
}

// Client is a client service allowed to send requests.
type Client struct {
	Name      string   `json:"name"`
	Scheme    string   `json:"scheme"`
	PublicKey string   `json:"public_key"`
	Keys      []string `json:"keys"`
}

// KeyRule holds what one signing key may sign.
type KeyRule struct {
	Key    string   `json:"key"`
	Chains []uint64 `json:"chains"`
	// TransactionTypes names the transaction types the key may sign
	// ("legacy", "eip2930", "eip1559"); nil means DefaultTransactionTypes.
	// A type not named is refused, whatever the decoder learns later.
	TransactionTypes []string `json:"transaction_types,omitempty"`
	// NativeTransfers allows plain value transfers on every chain of the
	// key that has no native_transfers of its own in ChainRules.
	NativeTransfers *NativeTransfers `json:"native_transfers,omitempty"`
	// PersonalMessages allows EIP-191 personal_sign.
	PersonalMessages bool `json:"personal_messages,omitempty"`
	// TypedData allows EIP-712 signatures for the listed domains.
	TypedData *TypedDataRule `json:"typed_data,omitempty"`
	// RawDigest allows signing bare 32-byte digests, which nothing
	// decodes: personal messages of exactly 32 bytes among them.
	RawDigest bool `json:"raw_digest,omitempty"`
	// ChainRules holds the rules of one chain each.
	ChainRules []ChainRule `json:"chain_rules,omitempty"`

	// The stateful sections (limits, velocity, approvals, freeze), which
	// package stateful defines and the enclave enforces: embedded, so
	// that encoding/json reads and writes them as fields of the key rule.
	stateful.KeyConfig
}

// TypedDataRule allowlists EIP-712 domains.
type TypedDataRule struct {
	Domains []TypedDataDomain `json:"domains"`
}

// TypedDataDomain matches an EIP-712 domain: the domain must have exactly
// this chainId and verifyingContract, and, where the rule names them, this
// name and version.
type TypedDataDomain struct {
	Name              string `json:"name,omitempty"`
	Version           string `json:"version,omitempty"`
	ChainID           uint64 `json:"chain_id"`
	VerifyingContract string `json:"verifying_contract"`
}

// NativeTransfers allows plain value transfers (empty calldata).
type NativeTransfers struct {
	Destinations []Destination `json:"destinations"`
	// MaxPerTransactionWei is a decimal integer of wei.
	MaxPerTransactionWei string `json:"max_per_transaction_wei"`
}

// Destination is an allowlisted address with a label for humans.
type Destination struct {
	Address string `json:"address"`
	Label   string `json:"label"`
}

// ChainRule holds what a key may do on one chain, beyond native transfers
// (which may also be set for all chains in [KeyRule.NativeTransfers]).
type ChainRule struct {
	ChainID uint64 `json:"chain_id"`
	// NativeTransfers allows plain value transfers on this chain; it may
	// not be set together with the key-wide KeyRule.NativeTransfers.
	NativeTransfers *NativeTransfers `json:"native_transfers,omitempty"`
	// Fees caps the gas limit and fees; nil leaves them uncapped.
	Fees *FeeCaps `json:"fees,omitempty"`
	// Tokens are the ERC-20 tokens the key may transfer or grant
	// allowances of.
	Tokens []TokenRule `json:"tokens,omitempty"`
	// NFTs are the ERC-721 and ERC-1155 collections the key may transfer
	// or grant operators of.
	NFTs []NFTRule `json:"nfts,omitempty"`
	// Contracts allows calls of functions that the enclave does not decode,
	// by (contract, selector).
	Contracts []ContractRule `json:"contracts,omitempty"`
	// Safes are the Safes whose transactions the key may execute or sign.
	Safes []Destination `json:"safes,omitempty"`
	// MultiSendCallOnly are the MultiSendCallOnly libraries a Safe may
	// DELEGATECALL.
	MultiSendCallOnly []Destination `json:"multisend_call_only,omitempty"`
}

// FeeCaps caps a transaction's gas limit and fees on one chain. All fields
// are required; fees are decimal integers of wei per gas.
type FeeCaps struct {
	MaxGasLimit             uint64 `json:"max_gas_limit"`
	MaxFeePerGasWei         string `json:"max_fee_per_gas_wei"`
	MaxPriorityFeePerGasWei string `json:"max_priority_fee_per_gas_wei"`
	// MaxGasPriceWei caps the gas price of legacy and EIP-2930
	// transactions.
	MaxGasPriceWei string `json:"max_gas_price_wei"`
}

// TokenRule allowlists one ERC-20 token contract.
type TokenRule struct {
	Address string `json:"address"`
	Label   string `json:"label"`
	// Transfers allows transfer (and, if enabled, transferFrom) to the
	// listed recipients; nil allows none.
	Transfers *TokenTransfers `json:"transfers,omitempty"`
	// Spenders may be granted allowances (approve, increaseAllowance,
	// EIP-2612 Permit, Permit2), each up to its cap. Revocations (approve
	// of 0) are allowed to any spender.
	Spenders []Spender `json:"spenders,omitempty"`
}

// TokenTransfers allows ERC-20 transfers of one token.
type TokenTransfers struct {
	Destinations []Destination `json:"destinations"`
	// MaxPerTransaction is a decimal integer of the token's base units.
	MaxPerTransaction string `json:"max_per_transaction"`
	// TransferFrom allows transferFrom too, which moves the tokens of its
	// "from" (who must have given the key an allowance).
	TransferFrom bool `json:"transfer_from,omitempty"`
}

// Spender is an allowlisted spender of a token.
type Spender struct {
	Address string `json:"address"`
	Label   string `json:"label"`
	// MaxAllowance is a decimal integer of the token's base units, or
	// "unlimited", the only value that allows an unlimited allowance (the
	// largest integer of the grant's type).
	MaxAllowance string `json:"max_allowance"`
}

// NFTRule allowlists one ERC-721 or ERC-1155 collection.
type NFTRule struct {
	Address string `json:"address"`
	Label   string `json:"label"`
	// Standard is "erc721" or "erc1155": it says which functions the
	// contract has (transferFrom and approve share their selectors with
	// ERC-20).
	Standard string `json:"standard"`
	// Destinations may receive the collection's tokens; empty allows no
	// transfer.
	Destinations []Destination `json:"destinations,omitempty"`
	// Operators may be approved (setApprovalForAll, or ERC-721 approve of
	// one token). Revocations are allowed to any operator.
	Operators []Destination `json:"operators,omitempty"`
}

// ContractRule allows calls of functions the enclave does not decode on one
// contract. Their arguments cannot be checked: the rule allows the function
// with any arguments.
type ContractRule struct {
	Address   string         `json:"address"`
	Label     string         `json:"label"`
	Functions []FunctionRule `json:"functions"`
}

// FunctionRule allows one function of a contract, by selector.
type FunctionRule struct {
	// Selector is "0x" and 8 lower-case hex digits.
	Selector string `json:"selector"`
	// Signature is optional, for humans, such as "deposit()"; when set,
	// its Keccak-256 must begin with the selector.
	Signature string `json:"signature,omitempty"`
	// MaxValueWei caps the native coin sent with the call; empty means 0.
	MaxValueWei string `json:"max_value_wei,omitempty"`
}

// Policy is a parsed, validated policy, ready to evaluate. It is immutable
// and safe for concurrent use.
type Policy struct {
	version uint64
	hash    [32]byte
	canon   []byte
	clients map[string]*clientRule // by stamp.PublicKey.String()
	keys    map[string]*keyRule
	keyIDs  []string
	assets  map[assetKey]Asset
	// named is the EIP-55 text of every address the policy labels or
	// lists as an asset, made once at Compile (Checksummed): the
	// addresses a summary shows most often, each otherwise a Keccak-256
	// hash a request.
	named map[ethtx.Address]string
}

type clientRule struct {
	name string
	id   string // the stamp.PublicKey.String() it is registered under
	keys []string
}

type assetKey struct {
	chain uint64
	addr  ethtx.Address
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse strictly decodes and validates a policy document.
func Parse(b []byte) (*Policy, error) {
	var doc Document
	if err := strictjson.Unmarshal(b, &doc, MaxDocumentSize); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Compile(doc)
}

// Compile validates a document and prepares it for evaluation. The policy
// keeps nothing of doc: changing doc afterwards changes nothing.
func Compile(doc Document) (*Policy, error) {
	if doc.Version == 0 {
		return nil, errors.New("policy: version: must be at least 1")
	}
	if len(doc.Clients) > maxClients {
		return nil, fmt.Errorf("policy: clients: more than %d", maxClients)
	}
	if len(doc.Keys) > maxKeys {
		return nil, fmt.Errorf("policy: keys: more than %d", maxKeys)
	}
	if len(doc.Assets) > maxAssets {
		return nil, fmt.Errorf("policy: assets: more than %d", maxAssets)
	}
	p := &Policy{version: doc.Version, clients: map[string]*clientRule{}, keys: map[string]*keyRule{}}

	// Clients first, for their keys (approvers must be others); the keys
	// they may use are checked once the key rules are known.
	names := map[string]bool{}
	clientKeys := map[string]string{} // stamp key -> client name
	for i := range doc.Clients {
		c := &doc.Clients[i]
		if !idPattern.MatchString(c.Name) {
			return nil, fmt.Errorf("policy: clients[%d].name: want 1-64 of [A-Za-z0-9._-]", i)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("policy: clients[%d]: name %q listed twice", i, c.Name)
		}
		names[c.Name] = true
		pub, err := stamp.ParsePublicKey(stamp.Scheme(c.Scheme), c.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("policy: clients[%d] (%s): %w", i, c.Name, err)
		}
		if _, dup := p.clients[pub.String()]; dup {
			return nil, fmt.Errorf("policy: clients[%d] (%s): public key registered twice", i, c.Name)
		}
		if len(c.Keys) == 0 {
			return nil, fmt.Errorf("policy: clients[%d] (%s).keys: empty", i, c.Name)
		}
		if len(c.Keys) > maxKeys {
			return nil, fmt.Errorf("policy: clients[%d] (%s).keys: more than %d", i, c.Name, maxKeys)
		}
		cr := &clientRule{name: c.Name}
		for _, k := range c.Keys {
			if slices.Contains(cr.keys, k) {
				return nil, fmt.Errorf("policy: clients[%d] (%s).keys: %q listed twice", i, c.Name, k)
			}
			cr.keys = append(cr.keys, k)
		}
		cr.id = pub.String()
		p.clients[cr.id] = cr
		clientKeys[cr.id] = c.Name
	}

	approvers := stateful.NewApprovers(clientKeys)
	for i := range doc.Keys {
		kr := &doc.Keys[i]
		r, err := compileKeyRule(kr, approvers)
		if err != nil {
			return nil, fmt.Errorf("policy: keys[%d]: %w", i, err)
		}
		if _, dup := p.keys[r.id]; dup {
			return nil, fmt.Errorf("policy: keys[%d]: key %q listed twice", i, r.id)
		}
		p.keys[r.id] = r
		p.keyIDs = append(p.keyIDs, r.id)
	}
	for i := range doc.Clients {
		c := &doc.Clients[i]
		for _, k := range c.Keys {
			if _, ok := p.keys[k]; !ok {
				return nil, fmt.Errorf("policy: clients[%d] (%s).keys: no rules for key %q", i, c.Name, k)
			}
		}
	}

	p.assets = map[assetKey]Asset{}
	for i, a := range doc.Assets {
		addr, err := ethtx.ParseAddress(a.Address)
		if err != nil {
			return nil, fmt.Errorf("policy: assets[%d].address: %w", i, err)
		}
		if a.ChainID == 0 {
			return nil, fmt.Errorf("policy: assets[%d].chain_id: 0 is not a chain id", i)
		}
		if a.Symbol == "" || len(a.Symbol) > maxSymbol || !utf8.ValidString(a.Symbol) || strings.ContainsFunc(a.Symbol, isControl) || strings.ContainsRune(a.Symbol, ' ') {
			return nil, fmt.Errorf("policy: assets[%d].symbol: want 1-%d printable characters without spaces", i, maxSymbol)
		}
		if a.Decimals > maxDecimals {
			return nil, fmt.Errorf("policy: assets[%d].decimals: at most %d", i, maxDecimals)
		}
		k := assetKey{a.ChainID, addr}
		if _, dup := p.assets[k]; dup {
			return nil, fmt.Errorf("policy: assets[%d]: %s on chain %d listed twice", i, addr.Hex(), a.ChainID)
		}
		p.assets[k] = a
	}
	p.named = map[ethtx.Address]string{}
	for _, kr := range p.keys {
		for _, cr := range kr.perChain {
			for a := range cr.labels {
				p.nameAddress(a)
			}
		}
	}
	for k := range p.assets {
		p.nameAddress(k.addr)
	}
	canon, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p.canon = canon
	p.hash = sha256.Sum256(canon)
	return p, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkLabel checks a label for humans: at most maxLabel bytes of UTF-8
// without control characters.
func checkLabel(l string) error {
	if len(l) > maxLabel || !utf8.ValidString(l) || strings.ContainsFunc(l, isControl) {
		return fmt.Errorf("at most %d bytes of printable UTF-8", maxLabel)
	}
	return nil
}

var (
	two256     = new(big.Int).Lsh(big.NewInt(1), 256)
	maxUint256 = new(big.Int).Sub(two256, big.NewInt(1))
)

// parseAmount parses a decimal integer below 2^256 without sign or leading
// zeros (stateful.ParseAmount: the document writes every amount so).
func parseAmount(s string) (*big.Int, error) { return stateful.ParseAmount(s) }

// cloneInt returns a copy of v (nil for nil).
func cloneInt(v *big.Int) *big.Int {
	if v == nil {
		return nil
	}
	return new(big.Int).Set(v)
}

// Version returns the policy's version.
func (p *Policy) Version() uint64 { return p.version }

// Hash returns the SHA-256 of the policy's canonical JSON encoding (the
// document re-encoded with Go's encoding/json, fields in declaration order,
// empty optional fields left out): see [Policy.Canonical].
func (p *Policy) Hash() [32]byte { return p.hash }

// Canonical returns a copy of the canonical JSON encoding that
// [Policy.Hash] hashes. Parsing it gives a policy with the same hash.
func (p *Policy) Canonical() []byte { return slices.Clone(p.canon) }

// KeyIDs returns the ids of the keys the policy has rules for, in document
// order.
func (p *Policy) KeyIDs() []string { return slices.Clone(p.keyIDs) }

// Client returns the registered client with the given stamp public key.
func (p *Policy) Client(pub stamp.PublicKey) (name string, ok bool) {
	_, name, ok = p.ClientIdentity(pub)
	return name, ok
}

// ClientIdentity returns the registered client with the given stamp public
// key: its identity, pub.String(), as the policy keeps it (so that a caller
// asking for every request need not make the string again), and its name.
func (p *Policy) ClientIdentity(pub stamp.PublicKey) (id, name string, ok bool) {
	var buf [80]byte
	c, ok := p.clients[string(pub.AppendString(buf[:0]))]
	if !ok {
		return "", "", false
	}
	return c.id, c.name, true
}

// Asset returns the token the policy knows at address a on chain.
func (p *Policy) Asset(chain uint64, a ethtx.Address) (Asset, bool) {
	as, ok := p.assets[assetKey{chain, a}]
	return as, ok
}

// nameAddress adds a to p.named.
func (p *Policy) nameAddress(a ethtx.Address) {
	if _, ok := p.named[a]; !ok {
		p.named[a] = a.Hex()
	}
}

// Checksummed returns a.Hex(), the address's EIP-55 text: made once, when
// the policy was compiled, for an address it labels or lists as an asset,
// and made now for any other.
func (p *Policy) Checksummed(a ethtx.Address) string {
	if h, ok := p.named[a]; ok {
		return h
	}
	return a.Hex()
}

// Label returns the label the rules of key keyID give address a on chain,
// if any. When the rules name an address more than once, the first label in
// this order wins: native-transfer destinations, token recipients, token
// spenders, NFT recipients, NFT operators, Safes, MultiSendCallOnly
// libraries, generic contracts, tokens, NFT collections.
func (p *Policy) Label(keyID string, chain uint64, a ethtx.Address) (string, bool) {
	kr, ok := p.keys[keyID]
	if !ok {
		return "", false
	}
	cr, ok := kr.perChain[chain]
	if !ok {
		return "", false
	}
	l, ok := cr.labels[a]
	return l, ok
}

// formatAmount renders an amount of token (zero: the native coin) on chain
// for a message: in units with the symbol when the policy names the token,
// in base units otherwise.
func (p *Policy) formatAmount(chain uint64, token ethtx.Address, v *big.Int) string {
	if token == (ethtx.Address{}) {
		return ethtx.FormatEther(v)
	}
	if as, ok := p.assets[assetKey{chain, token}]; ok {
		return fmt.Sprintf("%s %s (%s base units)", ethtx.FormatUnits(v, int(as.Decimals)), as.Symbol, v)
	}
	return v.String() + " base units"
}

// keyFor checks that the client may use the key and that the policy has
// rules for it.
func (p *Policy) keyFor(client stamp.PublicKey, keyID string) (*keyRule, Decision, bool) {
	var buf [80]byte
	c, ok := p.clients[string(client.AppendString(buf[:0]))]
	if !ok || !slices.Contains(c.keys, keyID) {
		return nil, deny(refusal.RuleClientKeys, "client may not use key %q", keyID), false
	}
	kr, ok := p.keys[keyID]
	if !ok {
		return nil, deny(refusal.RuleKeyPolicy, "no rules for key %q", keyID), false
	}
	return kr, Decision{}, true
}
