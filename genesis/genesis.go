// Package genesis is the genesis configuration's format: the signing keys
// to derive, the initial policy, the admin set, and where the seed is
// sealed. It is part of the enclave image (measured into PCR0 with the
// binary). The enclave parses it at start with [Parse]; the operator's
// tools and the development stack write and check it with the same code,
// and import no daemon to do so.
package genesis

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/keypath"
	"github.com/nitrosign/nitrosign/policy"
)

// MaxSize caps the genesis configuration file.
const MaxSize = 1 << 20

// Caps of the genesis configuration's fields.
const (
	// MaxAdditionalKeyIDs caps kms.additional_key_ids.
	MaxAdditionalKeyIDs = 8
	// MaxRootCAPEMSize caps kms.root_ca_pem, in bytes.
	MaxRootCAPEMSize = 64 << 10
	// MaxAuditUnacknowledged caps audit.max_unacknowledged.
	MaxAuditUnacknowledged = 1_000_000
	// MaxLimitsUnacknowledged caps limits.max_unacknowledged (the enclave
	// checks that its limit state can checkpoint that often).
	MaxLimitsUnacknowledged = 1_000_000
	// MaxTimeLock caps governance.time_lock.
	MaxTimeLock = 720 * time.Hour
)

// FormatVersion is the only genesis format version this code reads.
const FormatVersion = 1

// DefaultKMSProxyPort is kms.proxy_port when the configuration sets none:
// the vsock port at the parent (CID 3) on which the project's deployment
// runs vsock-proxy, forwarding to the region's KMS endpoint on port 443.
const DefaultKMSProxyPort uint32 = 8000

// DefaultTimeLock is the time lock when the configuration sets none.
const DefaultTimeLock = 24 * time.Hour

// DefaultMaxUnackedAudit is audit.max_unacknowledged when the configuration
// sets none: how many audit records the enclave hands over without the
// host acknowledging that it persisted them before it stops deciding
// requests (503).
const DefaultMaxUnackedAudit = 4096

// Config is the enclave's genesis configuration. It is part of the enclave
// image (measured into PCR0 with the binary), so everything in it is as
// trusted as the code: the signing keys to derive and the initial policy.
type Config struct {
	Format int   `json:"format"`
	Keys   []Key `json:"keys"`
	// Policy is the initial policy document (see the policy package).
	Policy json.RawMessage `json:"policy"`
	// Audit tunes the audit log; nil means the defaults.
	Audit *Audit `json:"audit,omitempty"`
	// KMS is where the seed is sealed. Nil means an ephemeral seed, drawn
	// at every start and never sealed: addresses change at every restart,
	// so it is for tests and trials only (health reports "ephemeral").
	KMS *KMS `json:"kms,omitempty"`
	// Admins is the genesis admin set and its quorum (see package admin
	// and docs/governance.md): the only authority over keys, and later
	// over the policy. Nil: no admin commands are accepted.
	Admins json.RawMessage `json:"admins,omitempty"`
	// Governance tunes policy changes; nil means the defaults.
	Governance *Governance `json:"governance,omitempty"`
	// Limits tunes the limit state's checkpoints; nil means the defaults.
	Limits *Limits `json:"limits,omitempty"`

	admins *admin.Set
}

// Limits tunes how limit usage survives restarts.
type Limits struct {
	// MaxUnacknowledged, when set (1 to 1,000,000), makes the enclave
	// refuse to sign (503) once that many transactions were signed beyond
	// the newest checkpoint the host acknowledged storing, so that a host
	// that hands back an older checkpoint can hide at most that many
	// transactions' worth of usage (docs/limits.md). 0 or absent: off; the
	// host stores a checkpoint every second and at shutdown.
	MaxUnacknowledged int `json:"max_unacknowledged"`
}

// Governance tunes policy changes.
type Governance struct {
	// TimeLock is how long a policy change that loosens anything waits
	// before it takes effect, during which any one admin can cancel it:
	// a duration such as "24h" (0s to 720h; default 24h).
	TimeLock string `json:"time_lock"`
}

// TimeLock returns the configured time lock.
func (g *Config) TimeLock() time.Duration {
	if g.Governance == nil {
		return DefaultTimeLock
	}
	d, _ := time.ParseDuration(g.Governance.TimeLock)
	return d
}

// AdminSet returns the parsed admin set, nil when there is none.
func (g *Config) AdminSet() *admin.Set { return g.admins }

// KMS names the KMS key the seed is sealed under, and how the
// enclave reaches KMS. Being in the measured genesis, none of it can be
// chosen by the host: not the key (a key the host controls would let it
// decrypt the data key), not the endpoint, not the roots that KMS's TLS
// certificate must chain to.
type KMS struct {
	// Region is the KMS region, such as us-east-1.
	Region string `json:"region"`
	// KeyID is the ARN of the KMS key that seals the seed (a full key ARN:
	// an alias could be re-pointed by whoever controls the account).
	KeyID string `json:"key_id"`
	// AdditionalKeyIDs are other key ARNs a seal_rotate command may move
	// the sealing to, and that a sealed seed may name.
	AdditionalKeyIDs []string `json:"additional_key_ids,omitempty"`
	// Endpoint overrides https://kms.REGION.amazonaws.com (for example a
	// FIPS endpoint); its host is the TLS server name.
	Endpoint string `json:"endpoint,omitempty"`
	// ProxyPort is the vsock port of vsock-proxy on the parent (CID 3);
	// default DefaultKMSProxyPort (8000).
	ProxyPort uint32 `json:"proxy_port,omitempty"`
	// RootCAPEM, when set, replaces the embedded Amazon Trust Services
	// roots: for the development stack's simulated KMS only. A production
	// genesis must not set it (review it: it is measured).
	RootCAPEM string `json:"root_ca_pem,omitempty"`
}

// KeyIDs returns every KMS key id the seed may be sealed under, the main
// one first.
func (k *KMS) KeyIDs() []string {
	return append([]string{k.KeyID}, k.AdditionalKeyIDs...)
}

var (
	kmsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	kmsKeyARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/[A-Za-z0-9-]{1,64}$`)
)

func (k *KMS) validate() error {
	if !kmsRegionPattern.MatchString(k.Region) {
		return fmt.Errorf("kms.region: %q is not a region name such as us-east-1", k.Region)
	}
	seen := map[string]bool{}
	for i, id := range k.KeyIDs() {
		if !kmsKeyARNPattern.MatchString(id) {
			return fmt.Errorf("kms key %d: %q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID; aliases are refused)", i, id)
		}
		if seen[id] {
			return fmt.Errorf("kms key %d: %q listed twice", i, id)
		}
		seen[id] = true
	}
	if len(k.AdditionalKeyIDs) > MaxAdditionalKeyIDs {
		return fmt.Errorf("kms.additional_key_ids: at most %d", MaxAdditionalKeyIDs)
	}
	if len(k.RootCAPEM) > MaxRootCAPEMSize {
		return fmt.Errorf("kms.root_ca_pem: larger than %d KiB", MaxRootCAPEMSize>>10)
	}
	return nil
}

// Audit tunes the audit log.
type Audit struct {
	// MaxUnacknowledged is how many audit records the host may hold
	// without acknowledging them before the enclave stops deciding
	// (default DefaultMaxUnackedAudit; 1 to 1,000,000).
	MaxUnacknowledged int `json:"max_unacknowledged"`
}

// Key names a signing key and its BIP-32 derivation path from the seed.
type Key struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// MaxKeys caps the number of signing keys in a genesis configuration.
const MaxKeys = 1024

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse strictly decodes and validates a genesis configuration.
func Parse(b []byte) (*Config, *policy.Policy, error) {
	var g Config
	if err := strictjson.Unmarshal(b, &g, MaxSize); err != nil {
		return nil, nil, fmt.Errorf("genesis: %w", err)
	}
	if g.Format != FormatVersion {
		return nil, nil, fmt.Errorf("genesis: format %d, this build reads format %d", g.Format, FormatVersion)
	}
	if len(g.Keys) == 0 || len(g.Keys) > MaxKeys {
		return nil, nil, fmt.Errorf("genesis: keys: want 1 to %d keys", MaxKeys)
	}
	ids := map[string]bool{}
	paths := map[string]bool{}
	for i, k := range g.Keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, nil, fmt.Errorf("genesis: keys[%d].id: want 1-64 of [A-Za-z0-9._-], not starting with 0x", i)
		}
		if len(k.ID) >= 2 && k.ID[:2] == "0x" {
			return nil, nil, fmt.Errorf("genesis: keys[%d].id: must not start with 0x (that is how addresses are told apart)", i)
		}
		if ids[k.ID] {
			return nil, nil, fmt.Errorf("genesis: keys[%d].id: %q listed twice", i, k.ID)
		}
		ids[k.ID] = true
		p, err := keypath.ParsePath(k.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("genesis: keys[%d].path: %w", i, err)
		}
		if paths[p.String()] {
			return nil, nil, fmt.Errorf("genesis: keys[%d].path: %s listed twice", i, p)
		}
		paths[p.String()] = true
	}
	if g.Audit != nil && (g.Audit.MaxUnacknowledged < 1 || g.Audit.MaxUnacknowledged > MaxAuditUnacknowledged) {
		return nil, nil, fmt.Errorf("genesis: audit.max_unacknowledged: want 1 to %d", MaxAuditUnacknowledged)
	}
	if g.KMS != nil {
		if err := g.KMS.validate(); err != nil {
			return nil, nil, fmt.Errorf("genesis: %w", err)
		}
	}
	if g.Limits != nil && (g.Limits.MaxUnacknowledged < 0 || g.Limits.MaxUnacknowledged > MaxLimitsUnacknowledged) {
		return nil, nil, fmt.Errorf("genesis: limits.max_unacknowledged: want 0 to %d", MaxLimitsUnacknowledged)
	}
	if g.Governance != nil {
		d, err := time.ParseDuration(g.Governance.TimeLock)
		if err != nil || d < 0 || d > MaxTimeLock {
			return nil, nil, fmt.Errorf("genesis: governance.time_lock: want a duration from 0s to %dh, such as \"24h\"", MaxTimeLock/time.Hour)
		}
	}
	if len(g.Admins) > 0 {
		set, err := admin.ParseConfig(g.Admins)
		if err != nil {
			return nil, nil, fmt.Errorf("genesis: admins: %w", err)
		}
		g.admins = set
	}
	if len(g.Policy) == 0 {
		return nil, nil, fmt.Errorf("genesis: policy: missing")
	}
	pol, err := policy.Parse(g.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("genesis: %w", err)
	}
	return &g, pol, nil
}
