// Package genesisedit writes, edits, summarizes and reviews genesis
// configurations (package genesis) for the operator's tools: `nitrosign
// genesis` is a thin front end to it.
//
// # Why a package of its own
//
// The genesis configuration is measured into the enclave image (PCR0), so
// it is reviewed like code, and it is written once per deployment by
// hand-held tools rather than by the daemons. Package genesis holds what the
// enclave needs to read it ([genesis.Parse]); this package holds what only
// the operator needs (building a production skeleton, adding clients and
// admins, warning about unsafe choices), so that none of it is linked into
// the enclave binary.
//
// # Always valid
//
// A [Draft] is loaded only from a configuration that [genesis.Parse]
// accepts, and [Draft.Marshal] runs [genesis.Parse] on the bytes it
// produces and returns the parser's error instead of the bytes when an edit
// made the configuration invalid. So the enclave's own parser is the only
// judge of validity, and a tool that writes only what Marshal returns never
// leaves an invalid file behind.
//
// # Production readiness
//
// A configuration can be valid and still unfit for production: no admin
// set (no key creation, no policy change, no unfreeze ever), no clients, an
// ephemeral seed, the development stack's KMS roots. [Check] reports those
// as problems and the choices that weaken the deployment (a quorum of 1, no
// time lock, raw digests, unlimited allowance grants, ...) as warnings,
// each with a stable rule name (docs/genesis.md lists them).
package genesisedit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// Defaults of a new production skeleton ([New]).
const (
	// DefaultKeyID and DefaultKeyPath name the skeleton's one signing key
	// (a genesis configuration holds at least one).
	DefaultKeyID   = "hot-0"
	DefaultKeyPath = "m/44'/60'/0'/0/0"
	// DefaultFreezeRefusals refusals within DefaultFreezeWindow, or one
	// limit breach, freeze a key of the skeleton until an admin quorum
	// unfreezes it.
	DefaultFreezeRefusals = 20
	DefaultFreezeWindow   = "1h"
)

// DefaultChains are the skeleton key's chains: Ethereum mainnet.
var DefaultChains = []uint64{1}

// Draft is a genesis configuration being edited: the configuration with
// its policy document and admin set decoded. Edit its fields or call its
// methods, then [Draft.Marshal] it.
type Draft struct {
	Keys       []genesis.Key
	Policy     policy.Document
	Audit      *genesis.Audit
	KMS        *genesis.KMS
	Admins     *admin.Config
	Governance *genesis.Governance
	Limits     *genesis.Limits
}

// Options configure a new production skeleton.
type Options struct {
	// KMSKeyARN and Region name the KMS key that seals the seed.
	KMSKeyARN, Region string
	// KeyID, KeyPath and Chains name the first signing key (defaults
	// DefaultKeyID, DefaultKeyPath, DefaultChains).
	KeyID, KeyPath string
	Chains         []uint64
}

// New returns a production skeleton: one signing key whose rule allows
// nothing yet (default deny) and freezes it after DefaultFreezeRefusals
// refusals within DefaultFreezeWindow or a limit breach, the KMS key that
// seals the seed, a time lock of [genesis.DefaultTimeLock] and no clients,
// admins or approvers ([Check] says what is missing). It returns the
// parser's error when the options make an invalid configuration.
func New(o Options) (*Draft, error) {
	if o.KeyID == "" {
		o.KeyID = DefaultKeyID
	}
	if o.KeyPath == "" {
		o.KeyPath = DefaultKeyPath
	}
	if len(o.Chains) == 0 {
		o.Chains = DefaultChains
	}
	d := &Draft{
		Keys:       []genesis.Key{{ID: o.KeyID, Path: o.KeyPath}},
		Policy:     policy.Document{Version: 1, Clients: []policy.Client{}, Keys: []policy.KeyRule{newKeyRule(o.KeyID, o.Chains)}},
		KMS:        &genesis.KMS{Region: o.Region, KeyID: o.KMSKeyARN},
		Governance: &genesis.Governance{TimeLock: FormatDuration(genesis.DefaultTimeLock)},
	}
	if _, err := d.Marshal(); err != nil {
		return nil, err
	}
	return d, nil
}

func newKeyRule(id string, chains []uint64) policy.KeyRule {
	return policy.KeyRule{
		Key:    id,
		Chains: slices.Clone(chains),
		KeyConfig: stateful.KeyConfig{Freeze: &stateful.FreezeRule{
			Refusals: DefaultFreezeRefusals, Window: DefaultFreezeWindow,
			OnLimitBreach: true, Scope: string(stateful.FreezeKey),
		}},
	}
}

// Load decodes a genesis configuration that [genesis.Parse] accepts.
func Load(b []byte) (*Draft, error) {
	g, _, err := genesis.Parse(b)
	if err != nil {
		return nil, err
	}
	d := &Draft{Keys: g.Keys, Audit: g.Audit, KMS: g.KMS, Governance: g.Governance, Limits: g.Limits}
	if err := strictjson.Unmarshal(g.Policy, &d.Policy, policy.MaxDocumentSize); err != nil {
		return nil, fmt.Errorf("genesisedit: policy: %w", err)
	}
	if set := g.AdminSet(); set != nil {
		c := set.Config()
		d.Admins = &c
	}
	return d, nil
}

// ErrInvalid wraps the parser's error when an edit would make an invalid
// configuration.
var ErrInvalid = errors.New("genesisedit: the result would be an invalid genesis configuration")

// Marshal returns the configuration as indented JSON, after checking it
// with [genesis.Parse]; the error wraps [ErrInvalid] and the parser's
// error when the parser refuses it.
func (d *Draft) Marshal() ([]byte, error) {
	doc := d.Policy
	if doc.Clients == nil {
		doc.Clients = []policy.Client{}
	}
	if doc.Keys == nil {
		doc.Keys = []policy.KeyRule{}
	}
	pol, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("genesisedit: %w", err)
	}
	g := genesis.Config{
		Format: genesis.FormatVersion, Keys: d.Keys, Policy: pol,
		Audit: d.Audit, KMS: d.KMS, Governance: d.Governance, Limits: d.Limits,
	}
	if g.Keys == nil {
		g.Keys = []genesis.Key{}
	}
	if d.Admins != nil {
		if g.Admins, err = json.Marshal(d.Admins); err != nil {
			return nil, fmt.Errorf("genesisedit: %w", err)
		}
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("genesisedit: %w", err)
	}
	b = append(b, '\n')
	if _, _, err := genesis.Parse(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return b, nil
}

func (d *Draft) keyRule(id string) *policy.KeyRule {
	for i := range d.Policy.Keys {
		if d.Policy.Keys[i].Key == id {
			return &d.Policy.Keys[i]
		}
	}
	return nil
}

func (d *Draft) hasKey(id string) bool {
	return slices.ContainsFunc(d.Keys, func(k genesis.Key) bool { return k.ID == id })
}

// AddKey adds a signing key derived at path, and, unless the policy has
// one, a rule for it on chains that allows nothing yet and freezes like the
// skeleton's.
func (d *Draft) AddKey(id, path string, chains []uint64) error {
	if d.hasKey(id) {
		return fmt.Errorf("genesisedit: key %q exists", id)
	}
	d.Keys = append(d.Keys, genesis.Key{ID: id, Path: path})
	if d.keyRule(id) == nil {
		if len(chains) == 0 {
			return fmt.Errorf("genesisedit: key %q has no rule in the policy: name its chains", id)
		}
		d.Policy.Keys = append(d.Policy.Keys, newKeyRule(id, chains))
	}
	return nil
}

// RemoveKey removes a signing key and its rule. Clients that may use it
// must be changed first (the parser refuses a client of a key without a
// rule).
func (d *Draft) RemoveKey(id string) error {
	if !d.hasKey(id) {
		return fmt.Errorf("genesisedit: no key %q", id)
	}
	d.Keys = slices.DeleteFunc(d.Keys, func(k genesis.Key) bool { return k.ID == id })
	d.Policy.Keys = slices.DeleteFunc(d.Policy.Keys, func(r policy.KeyRule) bool { return r.Key == id })
	return nil
}

// AddClient registers a client service, its stamp key and the signing keys
// it may use.
func (d *Draft) AddClient(name string, pub stamp.PublicKey, keys []string) error {
	if slices.ContainsFunc(d.Policy.Clients, func(c policy.Client) bool { return c.Name == name }) {
		return fmt.Errorf("genesisedit: client %q exists (remove it first to change it)", name)
	}
	if len(keys) == 0 {
		return errors.New("genesisedit: a client needs the signing keys it may use")
	}
	d.Policy.Clients = append(d.Policy.Clients, policy.Client{
		Name: name, Scheme: string(pub.Scheme), PublicKey: fmt.Sprintf("%x", pub.Key), Keys: slices.Clone(keys),
	})
	return nil
}

// RemoveClient removes a client service.
func (d *Draft) RemoveClient(name string) error {
	n := len(d.Policy.Clients)
	d.Policy.Clients = slices.DeleteFunc(d.Policy.Clients, func(c policy.Client) bool { return c.Name == name })
	if len(d.Policy.Clients) == n {
		return fmt.Errorf("genesisedit: no client %q", name)
	}
	return nil
}

// AddAdmin adds an admin to the admin set, creating the set with a quorum
// of 1 if there is none.
func (d *Draft) AddAdmin(name string, pub stamp.PublicKey) error {
	if d.Admins == nil {
		d.Admins = &admin.Config{Quorum: 1}
	}
	if slices.ContainsFunc(d.Admins.Members, func(m admin.Member) bool { return m.Name == name }) {
		return fmt.Errorf("genesisedit: admin %q exists", name)
	}
	d.Admins.Members = append(d.Admins.Members, admin.Member{Name: name, Scheme: pub.Scheme, PublicKey: fmt.Sprintf("%x", pub.Key)})
	return nil
}

// RemoveAdmin removes an admin; removing the last removes the admin set.
// A quorum or threshold above the remaining number of admins must be
// lowered first (the parser refuses it).
func (d *Draft) RemoveAdmin(name string) error {
	if d.Admins == nil {
		return fmt.Errorf("genesisedit: no admin %q (there is no admin set)", name)
	}
	n := len(d.Admins.Members)
	d.Admins.Members = slices.DeleteFunc(d.Admins.Members, func(m admin.Member) bool { return m.Name == name })
	if len(d.Admins.Members) == n {
		return fmt.Errorf("genesisedit: no admin %q", name)
	}
	if len(d.Admins.Members) == 0 {
		d.Admins = nil
	}
	return nil
}

// SetAdminQuorum sets the admin quorum and, when thresholds is not nil,
// replaces the per-kind thresholds (an empty map removes them).
func (d *Draft) SetAdminQuorum(quorum int, thresholds map[admin.Kind]int) error {
	if d.Admins == nil {
		return errors.New("genesisedit: there is no admin set: add admins first")
	}
	d.Admins.Quorum = quorum
	if thresholds != nil {
		d.Admins.Thresholds = thresholds
		if len(thresholds) == 0 {
			d.Admins.Thresholds = nil
		}
	}
	return nil
}

// rules returns the key rules of ids, all key rules when ids is empty.
func (d *Draft) rules(ids []string) ([]*policy.KeyRule, error) {
	var out []*policy.KeyRule
	if len(ids) == 0 {
		for i := range d.Policy.Keys {
			out = append(out, &d.Policy.Keys[i])
		}
		return out, nil
	}
	for _, id := range ids {
		r := d.keyRule(id)
		if r == nil {
			return nil, fmt.Errorf("genesisedit: no rule for key %q in the policy", id)
		}
		out = append(out, r)
	}
	return out, nil
}

// AddApprover adds an approver to the approval rule of each key of keys.
// A key without an approval rule gets one, with quorum 1, when above gives
// the amounts above which approvals are needed; otherwise it is an error.
// With above, the thresholds of keys that have a rule are replaced.
func (d *Draft) AddApprover(name string, pub stamp.PublicKey, keys []string, above []stateful.ApprovalThreshold) error {
	if len(keys) == 0 {
		return errors.New("genesisedit: an approver needs the signing keys whose requests it approves")
	}
	rules, err := d.rules(keys)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.Approvals == nil {
			if len(above) == 0 {
				return fmt.Errorf("genesisedit: key %q has no approval rule yet: name the amounts above which approvals are needed (--above CHAIN:ASSET:AMOUNT)", r.Key)
			}
			r.Approvals = &stateful.ApprovalRule{Quorum: 1}
		}
		if len(above) > 0 {
			r.Approvals.Above = slices.Clone(above)
		}
		if slices.ContainsFunc(r.Approvals.Approvers, func(a stateful.Approver) bool { return a.Name == name }) {
			return fmt.Errorf("genesisedit: key %q: approver %q exists", r.Key, name)
		}
		r.Approvals.Approvers = append(r.Approvals.Approvers, stateful.Approver{Name: name, Scheme: string(pub.Scheme), PublicKey: fmt.Sprintf("%x", pub.Key)})
	}
	return nil
}

// RemoveApprover removes an approver from the keys of keys (every key when
// empty). The last approver of a key cannot be removed this way (the
// parser refuses an approval rule without approvers): replace the policy.
func (d *Draft) RemoveApprover(name string, keys []string) error {
	rules, err := d.rules(keys)
	if err != nil {
		return err
	}
	found := false
	for _, r := range rules {
		if r.Approvals == nil {
			continue
		}
		n := len(r.Approvals.Approvers)
		r.Approvals.Approvers = slices.DeleteFunc(r.Approvals.Approvers, func(a stateful.Approver) bool { return a.Name == name })
		found = found || len(r.Approvals.Approvers) < n
	}
	if !found {
		return fmt.Errorf("genesisedit: no approver %q", name)
	}
	return nil
}

// SetApprovalQuorum sets the approvals quorum of the keys of keys (every
// key with an approval rule when empty).
func (d *Draft) SetApprovalQuorum(quorum uint64, keys []string) error {
	rules, err := d.rules(keys)
	if err != nil {
		return err
	}
	n := 0
	for _, r := range rules {
		if r.Approvals == nil {
			if len(keys) > 0 {
				return fmt.Errorf("genesisedit: key %q has no approval rule: add approvers first", r.Key)
			}
			continue
		}
		r.Approvals.Quorum = quorum
		n++
	}
	if n == 0 {
		return errors.New("genesisedit: no key has an approval rule: add approvers first")
	}
	return nil
}

// SetTimeLock sets the policy changes' time lock.
func (d *Draft) SetTimeLock(t time.Duration) {
	d.Governance = &genesis.Governance{TimeLock: FormatDuration(t)}
}

// FormatDuration writes d with h, m and s units and no zero units, such
// as "24h", "1h30m" or "0s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(d.Seconds(), 'f', 9, 64), "0"), ".") + "s")
	}
	return b.String()
}

// ParseThreshold parses an approval threshold CHAIN:ASSET:AMOUNT, such as
// 1:native:1000000000000000000 (ASSET is "native" or a token address;
// AMOUNT in base units). The policy parser checks the parts.
func ParseThreshold(s string) (stateful.ApprovalThreshold, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return stateful.ApprovalThreshold{}, fmt.Errorf("genesisedit: threshold %q: want CHAIN:ASSET:AMOUNT, such as 1:native:1000000000000000000", s)
	}
	chain, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return stateful.ApprovalThreshold{}, fmt.Errorf("genesisedit: threshold %q: chain %q is not a chain id", s, parts[0])
	}
	return stateful.ApprovalThreshold{ChainID: chain, Asset: parts[1], Amount: parts[2]}, nil
}
