package enclave

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/keys"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/keypath"
)

// A vault is what the enclave holds once it has its seed: the signing keys,
// the audit log (whose key is derived from the seed) and the key that seals
// checkpoints. It is immutable once published, except for the audit log,
// which has its own lock: adding a key publishes a new vault.
type vault struct {
	keys   []*signingKey
	byID   map[string]*signingKey
	byAddr map[ethtx.Address]*signingKey
	audit  *auditLog
	// stateKey seals checkpoints (see checkpoint.go).
	stateKey []byte
	// master is the BIP-32 master key, kept to derive keys that admin
	// commands add; nil in an ephemeral enclave's vault after derivation.
	master *keys.ExtendedKey
	// sealing is the KMS key and generation of the sealed seed in use.
	sealKeyID string
	sealGen   uint32
	// sealGenMax is the newest sealing generation known: sealGen, or a
	// newer one the checkpoint knew of (the host handed back an older
	// sealed seed). Checkpoints carry it, and a re-wrap goes past it, so a
	// seed rollback is told at every start until a quorum re-wraps.
	sealGenMax uint32
	// extra are the keys added after genesis, as checkpoints carry them.
	extra []checkpointKey
	// seed is kept, with KMS sealing only, to re-wrap it (seal_rotate);
	// it never leaves the enclave in clear.
	seed []byte
}

type signingKey struct {
	id       string
	path     string // empty for an imported key
	addr     ethtx.Address
	priv     *secp256k1.PrivateKey
	imported bool
}

// newVault derives the keys of specs (and of extra, the keys admin commands
// added) from seed. The caller clears seed.
func newVault(seed []byte, specs []genesis.Key, extra []checkpointKey, maxAck int, head audit.Head) (*vault, error) {
	master, err := keys.NewMaster(seed)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	signer, err := audit.NewSigner(seed)
	if err != nil {
		master.Zero()
		return nil, fmt.Errorf("enclave: %w", err)
	}
	sk, err := stateKey(seed)
	if err != nil {
		master.Zero()
		return nil, fmt.Errorf("enclave: %w", err)
	}
	v := &vault{
		byID:     map[string]*signingKey{},
		byAddr:   map[ethtx.Address]*signingKey{},
		audit:    newAuditLogFrom(signer, maxAck, head),
		stateKey: sk,
		master:   master,
	}
	for _, s := range specs {
		if err := v.derive(s.ID, s.Path); err != nil {
			v.destroy()
			return nil, err
		}
	}
	for _, k := range extra {
		var err error
		if k.Imported != nil {
			err = v.importKey(k.ID, k.Imported)
		} else {
			err = v.derive(k.ID, k.Path)
		}
		if err != nil {
			v.destroy()
			return nil, err
		}
		v.extra = append(v.extra, k)
	}
	return v, nil
}

// derive adds the key at path under id.
func (v *vault) derive(id, p string) error {
	path, err := keypath.ParsePath(p)
	if err != nil {
		return fmt.Errorf("enclave: key %s: %w", id, err)
	}
	xk, err := v.master.Derive(path)
	if err != nil {
		return fmt.Errorf("enclave: key %s: %w", id, err)
	}
	priv := xk.PrivateKey()
	xk.Zero()
	return v.add(&signingKey{id: id, path: path.String(), priv: priv, addr: ethtx.PubkeyToAddress(priv.PubKey())})
}

// importKey adds a key given as its 32-byte private scalar.
func (v *vault) importKey(id string, scalar []byte) error {
	if len(scalar) != 32 {
		return fmt.Errorf("enclave: key %s: an imported key is 32 bytes", id)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(scalar); overflow || s.IsZero() {
		return fmt.Errorf("enclave: key %s: not a valid secp256k1 private key", id)
	}
	priv := secp256k1.NewPrivateKey(&s)
	s.Zero()
	return v.add(&signingKey{id: id, priv: priv, addr: ethtx.PubkeyToAddress(priv.PubKey()), imported: true})
}

func (v *vault) add(k *signingKey) error {
	if _, dup := v.byID[k.id]; dup {
		return fmt.Errorf("enclave: key %s: the id is taken", k.id)
	}
	if _, dup := v.byAddr[k.addr]; dup {
		return fmt.Errorf("enclave: key %s: same address as another key", k.id)
	}
	v.keys = append(v.keys, k)
	v.byID[k.id] = k
	v.byAddr[k.addr] = k
	return nil
}

// with returns a copy of v that also holds the key extra describes; v is
// unchanged (it may be in use).
func (v *vault) with(extra checkpointKey) (*vault, *signingKey, error) {
	n := *v
	n.keys = append([]*signingKey(nil), v.keys...)
	n.byID = make(map[string]*signingKey, len(v.byID)+1)
	n.byAddr = make(map[ethtx.Address]*signingKey, len(v.byAddr)+1)
	for _, k := range v.keys {
		n.byID[k.id] = k
		n.byAddr[k.addr] = k
	}
	n.extra = append(append([]checkpointKey(nil), v.extra...), extra)
	var err error
	if extra.Imported != nil {
		err = n.importKey(extra.ID, extra.Imported)
	} else {
		err = n.derive(extra.ID, extra.Path)
	}
	if err != nil {
		return nil, nil, err
	}
	return &n, n.keys[len(n.keys)-1], nil
}

// destroy overwrites what it can of the vault's secrets.
func (v *vault) destroy() {
	if v.master != nil {
		v.master.Zero()
	}
	clear(v.stateKey)
	clear(v.seed)
	for _, k := range v.keys {
		k.priv.Zero()
	}
}
