package enclave

import (
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/keys"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/keypath"
	"github.com/nitrosign/nitrosign/summary"
)

// A vault is what the enclave holds once it has its seed: its keys and
// its audit log (whose key is derived from the same seed). The two are
// published together, as one pointer (Enclave.v), so that a request sees
// the keys and the log of one unsealing; but each is a type of its own,
// so that code that needs only the keys is handed the keyring, and code
// that needs only the log the auditLog. A vault is immutable once
// published: adding a key or re-wrapping the seed publishes a new vault
// with a new keyring and the same audit log (which has its own lock).
type vault struct {
	keys  *keyring
	audit *auditLog
}

// A keyring is the enclave's secrets: the signing keys, the master key
// that derives more, the seed and the key that seals checkpoints, with
// the sealing state. It is immutable once published: adding a key makes
// a new keyring (with).
type keyring struct {
	list   []*signingKey
	byID   map[string]*signingKey
	byAddr map[ethtx.Address]*signingKey
	// stateKey seals checkpoints (see checkpoint.go).
	stateKey []byte
	// master is the BIP-32 master key, kept to derive keys that admin
	// commands add; nil in an ephemeral enclave's keyring after derivation.
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
	// summary is the key as summaries name it, made once (summaryKey).
	summary summary.Key
}

// newVault derives the keys of specs (and of extra, the keys admin commands
// added) from seed, and starts the audit log after head with the key
// derived from seed. The caller clears seed.
func newVault(seed []byte, specs []genesis.Key, extra []checkpointKey, maxAck int, head audit.Head) (*vault, error) {
	kr, err := newKeyring(seed, specs, extra)
	if err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(seed)
	if err != nil {
		kr.destroy()
		return nil, fmt.Errorf("enclave: %w", err)
	}
	return &vault{keys: kr, audit: newAuditLogFrom(signer, maxAck, head)}, nil
}

// newKeyring derives the master key, the checkpoint sealing key and the
// keys of specs and extra from seed. The caller clears seed.
func newKeyring(seed []byte, specs []genesis.Key, extra []checkpointKey) (*keyring, error) {
	master, err := keys.NewMaster(seed)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	sk, err := stateKey(seed)
	if err != nil {
		master.Zero()
		return nil, fmt.Errorf("enclave: %w", err)
	}
	kr := &keyring{
		byID:     map[string]*signingKey{},
		byAddr:   map[ethtx.Address]*signingKey{},
		stateKey: sk,
		master:   master,
	}
	for _, s := range specs {
		if err := kr.derive(s.ID, s.Path); err != nil {
			kr.destroy()
			return nil, err
		}
	}
	for _, k := range extra {
		var err error
		if k.Imported != nil {
			err = kr.importKey(k.ID, k.Imported)
		} else {
			err = kr.derive(k.ID, k.Path)
		}
		if err != nil {
			kr.destroy()
			return nil, err
		}
		kr.extra = append(kr.extra, k)
	}
	return kr, nil
}

// derive adds the key at path under id.
func (kr *keyring) derive(id, p string) error {
	path, err := keypath.ParsePath(p)
	if err != nil {
		return fmt.Errorf("enclave: key %s: %w", id, err)
	}
	xk, err := kr.master.Derive(path)
	if err != nil {
		return fmt.Errorf("enclave: key %s: %w", id, err)
	}
	priv := xk.PrivateKey()
	xk.Zero()
	return kr.add(&signingKey{id: id, path: path.String(), priv: priv, addr: ethtx.PubkeyToAddress(priv.PubKey())})
}

// importKey adds a key given as its 32-byte private scalar.
func (kr *keyring) importKey(id string, scalar []byte) error {
	if len(scalar) != 32 {
		return fmt.Errorf("enclave: key %s: an imported key is 32 bytes", id)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(scalar); overflow || s.IsZero() {
		return fmt.Errorf("enclave: key %s: not a valid secp256k1 private key", id)
	}
	priv := secp256k1.NewPrivateKey(&s)
	s.Zero()
	return kr.add(&signingKey{id: id, priv: priv, addr: ethtx.PubkeyToAddress(priv.PubKey()), imported: true})
}

func (kr *keyring) add(k *signingKey) error {
	k.summary = summary.NewKey(k.id, k.addr, k.path)
	if _, dup := kr.byID[k.id]; dup {
		return fmt.Errorf("enclave: key %s: the id is taken", k.id)
	}
	if _, dup := kr.byAddr[k.addr]; dup {
		return fmt.Errorf("enclave: key %s: same address as another key", k.id)
	}
	kr.list = append(kr.list, k)
	kr.byID[k.id] = k
	kr.byAddr[k.addr] = k
	return nil
}

// with returns a copy of kr that also holds the key extra describes; kr
// is unchanged (it may be in use).
func (kr *keyring) with(extra checkpointKey) (*keyring, *signingKey, error) {
	n := *kr
	n.list = append([]*signingKey(nil), kr.list...)
	n.byID = make(map[string]*signingKey, len(kr.byID)+1)
	n.byAddr = make(map[ethtx.Address]*signingKey, len(kr.byAddr)+1)
	for _, k := range kr.list {
		n.byID[k.id] = k
		n.byAddr[k.addr] = k
	}
	n.extra = append(append([]checkpointKey(nil), kr.extra...), extra)
	var err error
	if extra.Imported != nil {
		err = n.importKey(extra.ID, extra.Imported)
	} else {
		err = n.derive(extra.ID, extra.Path)
	}
	if err != nil {
		return nil, nil, err
	}
	return &n, n.list[len(n.list)-1], nil
}

// lookupKey finds the key s names: an address (0x…) or a key id.
func (kr *keyring) lookupKey(s string) (*signingKey, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		a, err := ethtx.ParseAddress(s)
		if err != nil {
			return nil, refuse(refusal.CodeBadRequest, "key: %v", err)
		}
		if k, ok := kr.byAddr[a]; ok {
			return k, nil
		}
		return nil, refuse(refusal.CodeUnknownKey, "this enclave holds no key with address %s", a.Hex())
	}
	if k, ok := kr.byID[s]; ok {
		return k, nil
	}
	return nil, refuse(refusal.CodeUnknownKey, "this enclave holds no key with id %q", s)
}

// destroy overwrites what it can of the keyring's secrets.
func (kr *keyring) destroy() {
	if kr.master != nil {
		kr.master.Zero()
	}
	clear(kr.stateKey)
	clear(kr.seed)
	for _, k := range kr.list {
		k.priv.Zero()
	}
}
