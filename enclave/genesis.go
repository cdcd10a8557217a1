package enclave

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/keys"
	"github.com/nitrosign/nitrosign/policy"
)

// MaxGenesisSize caps the genesis configuration file.
const MaxGenesisSize = 1 << 20

// GenesisFormat is the only genesis format version this enclave reads.
const GenesisFormat = 1

// Genesis is the enclave's genesis configuration. It is part of the enclave
// image (measured into PCR0 with the binary), so everything in it is as
// trusted as the code: the signing keys to derive and the initial policy.
type Genesis struct {
	Format int       `json:"format"`
	Keys   []KeySpec `json:"keys"`
	// Policy is the initial policy document (see the policy package).
	Policy json.RawMessage `json:"policy"`
	// Audit tunes the audit log; nil means the defaults.
	Audit *GenesisAudit `json:"audit,omitempty"`
}

// GenesisAudit tunes the audit log.
type GenesisAudit struct {
	// MaxUnacknowledged is how many audit records the host may hold
	// without acknowledging them before the enclave stops deciding
	// (default DefaultMaxUnackedAudit; 1 to 1,000,000).
	MaxUnacknowledged int `json:"max_unacknowledged"`
}

// KeySpec names a signing key and its BIP-32 derivation path from the seed.
type KeySpec struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// maxKeys caps the number of signing keys in a genesis configuration.
const maxKeys = 1024

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseGenesis strictly decodes and validates a genesis configuration.
func ParseGenesis(b []byte) (*Genesis, *policy.Policy, error) {
	var g Genesis
	if err := strictjson.Unmarshal(b, &g, MaxGenesisSize); err != nil {
		return nil, nil, fmt.Errorf("enclave: genesis: %w", err)
	}
	if g.Format != GenesisFormat {
		return nil, nil, fmt.Errorf("enclave: genesis: format %d, this enclave reads format %d", g.Format, GenesisFormat)
	}
	if len(g.Keys) == 0 || len(g.Keys) > maxKeys {
		return nil, nil, fmt.Errorf("enclave: genesis: keys: want 1 to %d keys", maxKeys)
	}
	ids := map[string]bool{}
	paths := map[string]bool{}
	for i, k := range g.Keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, nil, fmt.Errorf("enclave: genesis: keys[%d].id: want 1-64 of [A-Za-z0-9._-], not starting with 0x", i)
		}
		if len(k.ID) >= 2 && k.ID[:2] == "0x" {
			return nil, nil, fmt.Errorf("enclave: genesis: keys[%d].id: must not start with 0x (that is how addresses are told apart)", i)
		}
		if ids[k.ID] {
			return nil, nil, fmt.Errorf("enclave: genesis: keys[%d].id: %q listed twice", i, k.ID)
		}
		ids[k.ID] = true
		p, err := keys.ParsePath(k.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("enclave: genesis: keys[%d].path: %w", i, err)
		}
		if paths[p.String()] {
			return nil, nil, fmt.Errorf("enclave: genesis: keys[%d].path: %s listed twice", i, p)
		}
		paths[p.String()] = true
	}
	if g.Audit != nil && (g.Audit.MaxUnacknowledged < 1 || g.Audit.MaxUnacknowledged > 1_000_000) {
		return nil, nil, fmt.Errorf("enclave: genesis: audit.max_unacknowledged: want 1 to 1000000")
	}
	if len(g.Policy) == 0 {
		return nil, nil, fmt.Errorf("enclave: genesis: policy: missing")
	}
	pol, err := policy.Parse(g.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("enclave: genesis: %w", err)
	}
	return &g, pol, nil
}
