// Package policy decides, inside the enclave, whether a decoded request may
// be signed.
//
// A policy is a versioned JSON document (see docs/policy.md). It names the
// client services allowed to make requests (by their stamp public key) and,
// per signing key, the chains, destinations and amounts allowed. Evaluation
// is default-deny: anything the document does not allow is refused, and
// every refusal names the rule that refused it, so that operators and client
// services can tell a policy decision from a fault.
//
// The enclave loads the genesis policy from its measured configuration.
// Quorum-signed policy changes, contract-call rules, rolling limits,
// approvals and freezes extend this package in later work.
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

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/stamp"
)

// MaxDocumentSize caps a policy document.
const MaxDocumentSize = 1 << 20

// Limits on the document's contents.
const (
	maxClients      = 1024
	maxKeys         = 1024
	maxChains       = 64
	maxDestinations = 4096
	maxLabel        = 128
)

// Rules, as they appear in refusals (error.rule in the HTTP API).
const (
	// RuleClientKeys: the client is not allowed to use this key.
	RuleClientKeys = "client_keys"
	// RuleKeyPolicy: the policy has no rules for this key.
	RuleKeyPolicy = "key_policy"
	// RuleChains: the transaction's chain is not allowed for this key.
	RuleChains = "chains"
	// RuleContractCreation: contract creation (no "to") is not allowed.
	RuleContractCreation = "contract_creation"
	// RuleCalldata: the transaction carries calldata, and no contract-call
	// rule allows it.
	RuleCalldata = "calldata"
	// RuleNativeTransfers: native transfers are not allowed for this key.
	RuleNativeTransfers = "native_transfers"
	// RuleDestinations: the destination is not on the key's allowlist.
	RuleDestinations = "destinations"
	// RuleMaxPerTransaction: the amount exceeds the per-transaction limit.
	RuleMaxPerTransaction = "max_per_transaction"
	// RuleBlobTransactions: EIP-4844 blob transactions are not allowed.
	RuleBlobTransactions = "blob_transactions"
	// RuleSetCode: EIP-7702 set-code transactions (delegations of an
	// account to contract code) are not allowed.
	RuleSetCode = "set_code"
	// RulePersonalMessages: EIP-191 personal messages are not allowed for
	// this key.
	RulePersonalMessages = "personal_messages"
	// RuleTypedDataDomains: the EIP-712 domain is not on the key's
	// allowlist.
	RuleTypedDataDomains = "typed_data_domains"
	// RuleAllowanceGrants: typed data that grants an allowance (EIP-2612
	// Permit, Permit2), or looks like it does, is not allowed: no spender
	// allowlist or cap allows it.
	RuleAllowanceGrants = "allowance_grants"
	// RuleRawDigest: the request amounts to signing a bare 32-byte digest,
	// which is off: for example a personal message of exactly 32 bytes,
	// which a Safe accepts as an owner's approval of that transaction hash.
	RuleRawDigest = "raw_digest"
)

// Document is the JSON form of a policy.
type Document struct {
	// Version only increases across policy changes.
	Version uint64    `json:"version"`
	Clients []Client  `json:"clients"`
	Keys    []KeyRule `json:"keys"`
	// Assets names tokens, for summaries: symbol and decimals.
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
	Key             string           `json:"key"`
	Chains          []uint64         `json:"chains"`
	NativeTransfers *NativeTransfers `json:"native_transfers,omitempty"`
	// PersonalMessages allows EIP-191 personal_sign.
	PersonalMessages bool `json:"personal_messages,omitempty"`
	// TypedData allows EIP-712 signatures for the listed domains.
	TypedData *TypedDataRule `json:"typed_data,omitempty"`
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

// Policy is a parsed, validated policy, ready to evaluate. It is immutable
// and safe for concurrent use.
type Policy struct {
	doc     Document
	hash    [32]byte
	clients map[string]*Client // by stamp.PublicKey.String()
	keys    map[string]*keyRule
	assets  map[assetKey]Asset
}

type assetKey struct {
	chain uint64
	addr  ethtx.Address
}

type keyRule struct {
	id       string
	chains   []uint64
	native   *nativeRule
	personal bool
	domains  []domainRule
}

type domainRule struct {
	name, version string
	chain         uint64
	contract      ethtx.Address
}

type nativeRule struct {
	dests map[ethtx.Address]string
	max   *big.Int
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

// Compile validates a document and prepares it for evaluation.
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
	p := &Policy{doc: doc, clients: map[string]*Client{}, keys: map[string]*keyRule{}}
	for i := range doc.Keys {
		kr := &doc.Keys[i]
		r, err := compileKeyRule(kr)
		if err != nil {
			return nil, fmt.Errorf("policy: keys[%d]: %w", i, err)
		}
		if _, dup := p.keys[r.id]; dup {
			return nil, fmt.Errorf("policy: keys[%d]: key %q listed twice", i, r.id)
		}
		p.keys[r.id] = r
	}
	names := map[string]bool{}
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
		for _, k := range c.Keys {
			if _, ok := p.keys[k]; !ok {
				return nil, fmt.Errorf("policy: clients[%d] (%s).keys: no rules for key %q", i, c.Name, k)
			}
		}
		p.clients[pub.String()] = c
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
		if a.Symbol == "" || len(a.Symbol) > 16 || strings.ContainsFunc(a.Symbol, isControl) || strings.ContainsRune(a.Symbol, ' ') {
			return nil, fmt.Errorf("policy: assets[%d].symbol: want 1-16 printable characters without spaces", i)
		}
		if a.Decimals > 77 {
			return nil, fmt.Errorf("policy: assets[%d].decimals: at most 77", i)
		}
		k := assetKey{a.ChainID, addr}
		if _, dup := p.assets[k]; dup {
			return nil, fmt.Errorf("policy: assets[%d]: %s on chain %d listed twice", i, addr.Hex(), a.ChainID)
		}
		p.assets[k] = a
	}
	canon, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p.hash = sha256.Sum256(canon)
	return p, nil
}

func compileKeyRule(kr *KeyRule) (*keyRule, error) {
	if !idPattern.MatchString(kr.Key) {
		return nil, errors.New("key: want 1-64 of [A-Za-z0-9._-]")
	}
	if len(kr.Chains) == 0 || len(kr.Chains) > maxChains {
		return nil, fmt.Errorf("chains: want 1 to %d chain ids", maxChains)
	}
	r := &keyRule{id: kr.Key}
	for _, c := range kr.Chains {
		if c == 0 {
			return nil, errors.New("chains: 0 is not a chain id")
		}
		if slices.Contains(r.chains, c) {
			return nil, fmt.Errorf("chains: %d listed twice", c)
		}
		r.chains = append(r.chains, c)
	}
	if nt := kr.NativeTransfers; nt != nil {
		if len(nt.Destinations) > maxDestinations {
			return nil, fmt.Errorf("native_transfers.destinations: more than %d", maxDestinations)
		}
		nr := &nativeRule{dests: map[ethtx.Address]string{}}
		for j, d := range nt.Destinations {
			a, err := ethtx.ParseAddress(d.Address)
			if err != nil {
				return nil, fmt.Errorf("native_transfers.destinations[%d].address: %w", j, err)
			}
			if len(d.Label) > maxLabel || strings.ContainsFunc(d.Label, isControl) {
				return nil, fmt.Errorf("native_transfers.destinations[%d].label: at most %d printable characters", j, maxLabel)
			}
			if _, dup := nr.dests[a]; dup {
				return nil, fmt.Errorf("native_transfers.destinations[%d]: %s listed twice", j, a.Hex())
			}
			nr.dests[a] = d.Label
		}
		max, err := parseWei(nt.MaxPerTransactionWei)
		if err != nil {
			return nil, fmt.Errorf("native_transfers.max_per_transaction_wei: %w", err)
		}
		nr.max = max
		r.native = nr
	}
	r.personal = kr.PersonalMessages
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
	return r, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

func parseWei(s string) (*big.Int, error) {
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return nil, errors.New("want a decimal integer without leading zeros")
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(two256) >= 0 {
		return nil, errors.New("want an integer below 2^256")
	}
	return v, nil
}

// Version returns the policy's version.
func (p *Policy) Version() uint64 { return p.doc.Version }

// Hash returns the SHA-256 of the policy's canonical JSON encoding (the
// document re-encoded with Go's encoding/json, fields in declaration order).
func (p *Policy) Hash() [32]byte { return p.hash }

// Client returns the registered client with the given stamp public key.
func (p *Policy) Client(pub stamp.PublicKey) (name string, ok bool) {
	c, ok := p.clients[pub.String()]
	if !ok {
		return "", false
	}
	return c.Name, true
}

// A Decision is the outcome of evaluating a request.
type Decision struct {
	Allow bool
	// Rule names the rule that refused (empty when allowed).
	Rule string
	// Reason says why, for humans; it holds no secrets.
	Reason string
	// Label is the allowlist label of the destination, when there is one.
	Label string
}

func deny(rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Transaction is a decoded transaction request.
type Transaction struct {
	// Client is the stamp public key that made the request.
	Client stamp.PublicKey
	// KeyID is the signing key asked for.
	KeyID string
	Tx    *ethtx.Tx
	// Call is the decoded calldata (calldata.Decode(Tx.Data)); nil means
	// not decoded, which the policy treats like an unknown call.
	Call calldata.Call
}

// EvaluateTransaction decides whether tx may be signed.
func (p *Policy) EvaluateTransaction(req *Transaction) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	tx := req.Tx
	if !tx.ChainID.IsUint64() || !slices.Contains(kr.chains, tx.ChainID.Uint64()) {
		return deny(RuleChains, "chain %s is not allowed for key %q", tx.ChainID, req.KeyID)
	}
	switch tx.Type {
	case ethtx.TypeBlob:
		return deny(RuleBlobTransactions, "EIP-4844 blob transactions are not allowed for key %q", req.KeyID)
	case ethtx.TypeSetCode:
		return deny(RuleSetCode, "EIP-7702 set-code transactions (account delegations) are not allowed for key %q", req.KeyID)
	}
	if tx.To == nil {
		return deny(RuleContractCreation, "contract creation is not allowed for key %q", req.KeyID)
	}
	if len(tx.Data) != 0 {
		return deny(RuleCalldata, "%s to %s is not allowed: no contract-call rule matches", describeCall(req.Call, tx.Data), tx.To.Hex())
	}
	if kr.native == nil {
		return deny(RuleNativeTransfers, "native transfers are not allowed for key %q", req.KeyID)
	}
	label, ok := kr.native.dests[*tx.To]
	if !ok {
		return deny(RuleDestinations, "%s is not on the allowlist of key %q for chain %s", tx.To.Hex(), req.KeyID, tx.ChainID)
	}
	if tx.Value.Cmp(kr.native.max) > 0 {
		return deny(RuleMaxPerTransaction, "value %s exceeds the per-transaction limit of %s", ethtx.FormatEther(tx.Value), ethtx.FormatEther(kr.native.max))
	}
	return Decision{Allow: true, Label: label}
}

// describeCall names a call for a refusal message.
func describeCall(c calldata.Call, data []byte) string {
	switch {
	case c != nil && c.Method() != "":
		return "call " + c.Method()
	case len(data) >= 4:
		return fmt.Sprintf("unknown call (selector 0x%x)", data[:4])
	default:
		return fmt.Sprintf("calldata of %d bytes", len(data))
	}
}

// Asset returns the token the policy knows at address a on chain.
func (p *Policy) Asset(chain uint64, a ethtx.Address) (Asset, bool) {
	as, ok := p.assets[assetKey{chain, a}]
	return as, ok
}

// Label returns the allowlist label of address a for key keyID, if any.
func (p *Policy) Label(keyID string, a ethtx.Address) (string, bool) {
	kr, ok := p.keys[keyID]
	if !ok || kr.native == nil {
		return "", false
	}
	l, ok := kr.native.dests[a]
	return l, ok
}

// PersonalMessage is a decoded EIP-191 personal_sign request.
type PersonalMessage struct {
	Client  stamp.PublicKey
	KeyID   string
	Message []byte
}

// EvaluatePersonalMessage decides whether a personal message may be signed.
func (p *Policy) EvaluatePersonalMessage(req *PersonalMessage) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	if !kr.personal {
		return deny(RulePersonalMessages, "personal messages are not allowed for key %q", req.KeyID)
	}
	// A Safe (checkSignatures, v > 30) takes an EIP-191 signature over a
	// 32-byte message as its owner's approval of that hash: signing one
	// would approve a transaction no policy rule has seen.
	if len(req.Message) == 32 {
		return deny(RuleRawDigest, "a 32-byte personal message is a bare digest in disguise (a Safe accepts it as an owner's transaction approval); raw-digest signing is off")
	}
	return Decision{Allow: true}
}

// Domain is the decoded EIP-712 domain of a typed-data request; fields the
// domain does not have are nil.
type Domain struct {
	Name, Version     *string
	ChainID           *big.Int
	VerifyingContract *ethtx.Address
}

// TypedData is a decoded EIP-712 request.
type TypedData struct {
	Client      stamp.PublicKey
	KeyID       string
	Domain      Domain
	PrimaryType string
	// Permit is the allowance the typed data grants (EIP-2612, Permit2),
	// nil if none; PermitErr is set when it looks like a grant but is not
	// exactly one of the known forms.
	Permit    *ethmsg.Permit
	PermitErr error
}

// EvaluateTypedData decides whether typed data may be signed: its domain
// must match one of the key's allowlisted domains.
func (p *Policy) EvaluateTypedData(req *TypedData) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	// Allowance grants are refused until allowance rules (allowlisted
	// spenders, caps) exist; so are near-misses, which fail closed.
	if req.PermitErr != nil {
		return deny(RuleAllowanceGrants, "typed data looks like an allowance grant but is not a known one: %v", req.PermitErr)
	}
	if pm := req.Permit; pm != nil {
		return deny(RuleAllowanceGrants, "%s (%s) lets %s move tokens: allowance grants are not allowed for key %q", pm.Kind, pm.PrimaryType, pm.Spender.Hex(), req.KeyID)
	}
	dom := req.Domain
	for _, r := range kr.domains {
		if dom.ChainID == nil || !dom.ChainID.IsUint64() || dom.ChainID.Uint64() != r.chain {
			continue
		}
		if dom.VerifyingContract == nil || *dom.VerifyingContract != r.contract {
			continue
		}
		if r.name != "" && (dom.Name == nil || *dom.Name != r.name) {
			continue
		}
		if r.version != "" && (dom.Version == nil || *dom.Version != r.version) {
			continue
		}
		return Decision{Allow: true}
	}
	return deny(RuleTypedDataDomains, "EIP-712 domain %s is not allowed for key %q", describeDomain(dom), req.KeyID)
}

func describeDomain(d Domain) string {
	var parts []string
	if d.Name != nil {
		parts = append(parts, fmt.Sprintf("name %q", *d.Name))
	}
	if d.Version != nil {
		parts = append(parts, fmt.Sprintf("version %q", *d.Version))
	}
	if d.ChainID != nil {
		parts = append(parts, "chainId "+d.ChainID.String())
	}
	if d.VerifyingContract != nil {
		parts = append(parts, "verifyingContract "+d.VerifyingContract.Hex())
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// keyFor checks that the client may use the key and that the policy has
// rules for it.
func (p *Policy) keyFor(client stamp.PublicKey, keyID string) (*keyRule, Decision, bool) {
	c, ok := p.clients[client.String()]
	if !ok || !slices.Contains(c.Keys, keyID) {
		return nil, deny(RuleClientKeys, "client may not use key %q", keyID), false
	}
	kr, ok := p.keys[keyID]
	if !ok {
		return nil, deny(RuleKeyPolicy, "no rules for key %q", keyID), false
	}
	return kr, Decision{}, true
}
