package kmssim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The ciphertext blob format:
//
//	version (1 byte, blobVersion) ‖ key id (16 bytes, the UUID) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag
//
// sealed under the key's secret with the additional data
//
//	version ‖ key id ‖ encryption context
//
// where the encryption context is its pairs sorted by name, each name and
// value preceded by its length (4 bytes, big-endian), after the number of
// pairs. So a blob opens only under the key it names, with the same
// context, unchanged.
const (
	blobVersion    = 1
	blobHeaderSize = 1 + 16
	blobNonceSize  = 12
	blobMinSize    = blobHeaderSize + blobNonceSize + 16
	secretSize     = 32
)

// key is one KMS key: a symmetric encryption key (SYMMETRIC_DEFAULT).
type key struct {
	id          string // the UUID
	uuid        [16]byte
	arn         string
	created     time.Time
	description string
	policyText  string
	policy      *policy
	secret      []byte
	aead        cipher.AEAD
}

func (s *Server) keyARN(id string) string {
	return "arn:aws:kms:" + s.region + ":" + s.account + ":key/" + id
}

// newKey makes a key with a fresh id and secret, or with the given ones.
func (s *Server) newKey(id string, secret []byte, created time.Time, description, policyText string, p *policy) (*key, error) {
	u, ok := parseUUID(id)
	if !ok {
		return nil, fmt.Errorf("kmssim: key id %q is not a lower-case UUID", id)
	}
	if len(secret) != secretSize {
		return nil, fmt.Errorf("kmssim: key %s: the secret is %d bytes, want %d", id, len(secret), secretSize)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("kmssim: key %s: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("kmssim: key %s: %w", id, err)
	}
	return &key{
		id: id, uuid: u, arn: s.keyARN(id), created: created,
		description: description, policyText: policyText, policy: p,
		secret: slices.Clone(secret), aead: aead,
	}, nil
}

// materialID is the key material's identifier, as KeyMaterialId reports it.
func (k *key) materialID() string {
	h := sha256.Sum256(append([]byte("kmssim key material\x00"), k.secret...))
	return hex.EncodeToString(h[:])
}

// encodeContext is the encryption context as the blob's additional data
// holds it.
func encodeContext(ctx map[string]string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len(ctx)))
	for _, name := range slices.Sorted(maps.Keys(ctx)) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(ctx[name])))
		b = append(b, ctx[name]...)
	}
	return b
}

// seal encrypts plaintext under the key, bound to the encryption context.
func (k *key) seal(plaintext []byte, ctx map[string]string) []byte {
	blob := make([]byte, blobHeaderSize+blobNonceSize, blobHeaderSize+blobNonceSize+len(plaintext)+k.aead.Overhead())
	blob[0] = blobVersion
	copy(blob[1:], k.uuid[:])
	nonce := blob[blobHeaderSize:]
	rand.Read(nonce)
	aad := append(slices.Clone(blob[:blobHeaderSize]), encodeContext(ctx)...)
	return k.aead.Seal(blob, nonce, plaintext, aad)
}

// blobKeyID returns the id of the key a ciphertext blob names, or false
// when it is not a blob of this format.
func blobKeyID(blob []byte) (string, bool) {
	if len(blob) < blobMinSize || blob[0] != blobVersion {
		return "", false
	}
	return formatUUID([16]byte(blob[1:blobHeaderSize])), true
}

// open decrypts a blob that names k; any failure is the same error.
func (k *key) open(blob []byte, ctx map[string]string) ([]byte, error) {
	if len(blob) < blobMinSize || blob[0] != blobVersion || !bytes.Equal(blob[1:blobHeaderSize], k.uuid[:]) {
		return nil, errors.New("kmssim: not a ciphertext of this key")
	}
	aad := append(slices.Clone(blob[:blobHeaderSize]), encodeContext(ctx)...)
	nonce := blob[blobHeaderSize : blobHeaderSize+blobNonceSize]
	pt, err := k.aead.Open(nil, nonce, blob[blobHeaderSize+blobNonceSize:], aad)
	if err != nil {
		return nil, errors.New("kmssim: the ciphertext does not open")
	}
	return pt, nil
}

// lookupKey resolves a KeyId (key id, key ARN, alias name or alias ARN;
// the simulator has no aliases). The caller holds s.mu.
func (s *Server) lookupKey(keyID string) (*key, *apiError) {
	id := keyID
	if strings.HasPrefix(keyID, "arn:") {
		parts := strings.SplitN(keyID, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" {
			return nil, errNotFound("Invalid arn %s", quote(keyID))
		}
		res := parts[5]
		if strings.HasPrefix(res, "alias/") {
			return nil, errNotFound("Alias %s is not found.", keyID)
		}
		rest, ok := strings.CutPrefix(res, "key/")
		if !ok {
			return nil, errNotFound("Invalid arn %s", quote(keyID))
		}
		if parts[3] != s.region || parts[4] != s.account {
			return nil, errNotFound("Key '%s' does not exist", keyID)
		}
		id = rest
	} else if strings.HasPrefix(keyID, "alias/") {
		return nil, errNotFound("Alias arn:aws:kms:%s:%s:%s is not found.", s.region, s.account, keyID)
	}
	if _, ok := parseUUID(id); !ok {
		return nil, errNotFound("Invalid keyId %s", quote(keyID))
	}
	k, ok := s.keys[id]
	if !ok {
		return nil, errNotFound("Key '%s' does not exist", s.keyARN(id))
	}
	return k, nil
}

// The state file: the keys, with their secrets.
const stateFormat = "kmssim state v1"

type stateFile struct {
	Format  string     `json:"format"`
	Account string     `json:"account"`
	Region  string     `json:"region"`
	Keys    []stateKey `json:"keys"`
}

type stateKey struct {
	KeyID       string    `json:"key_id"`
	Created     time.Time `json:"created"`
	Description string    `json:"description,omitempty"`
	Policy      string    `json:"policy"`
	Secret      []byte    `json:"secret"`
}

// maxStateSize bounds the state file: maxKeys keys with large policies.
const maxStateSize = 512 << 20

// load reads the keys from s.statePath, if the file exists.
func (s *Server) load() error {
	f, err := os.Open(s.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	if len(data) > maxStateSize {
		return fmt.Errorf("kmssim: state: %s is larger than %d bytes", s.statePath, maxStateSize)
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("kmssim: state: %s: %w", s.statePath, err)
	}
	if st.Format != stateFormat {
		return fmt.Errorf("kmssim: state: %s is not a %q file", s.statePath, stateFormat)
	}
	if st.Account != s.account || st.Region != s.region {
		return fmt.Errorf("kmssim: state: %s holds keys of account %s in %s, not %s in %s", s.statePath, st.Account, st.Region, s.account, s.region)
	}
	if len(st.Keys) > maxKeys {
		return fmt.Errorf("kmssim: state: %s holds more than %d keys", s.statePath, maxKeys)
	}
	for _, sk := range st.Keys {
		if _, dup := s.keys[sk.KeyID]; dup {
			return fmt.Errorf("kmssim: state: key %s appears twice", sk.KeyID)
		}
		p, err := parsePolicy(sk.Policy, true)
		if err != nil {
			return fmt.Errorf("kmssim: state: key %s: policy: %w", sk.KeyID, err)
		}
		k, err := s.newKey(sk.KeyID, sk.Secret, sk.Created, sk.Description, sk.Policy, p)
		if err != nil {
			return fmt.Errorf("kmssim: state: %w", err)
		}
		s.keys[k.id] = k
		s.order = append(s.order, k.id)
	}
	return nil
}

// save writes the keys to s.statePath (when set), replacing the file
// atomically. The caller holds s.mu.
func (s *Server) save() error {
	if s.statePath == "" {
		return nil
	}
	st := stateFile{Format: stateFormat, Account: s.account, Region: s.region, Keys: []stateKey{}}
	for _, id := range s.order {
		k := s.keys[id]
		st.Keys = append(st.Keys, stateKey{KeyID: k.id, Created: k.created, Description: k.description, Policy: k.policyText, Secret: k.secret})
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.statePath), ".kmssim-state-*")
	if err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("kmssim: state: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("kmssim: state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("kmssim: state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.statePath); err != nil {
		return fmt.Errorf("kmssim: state: %w", err)
	}
	return nil
}

// AddKey creates a symmetric encryption key with the given id (a
// lower-case UUID) in the simulator's account and region, with
// DefaultKeyPolicy, as if CreateKey had made it earlier, and returns its
// ARN. It is for a development stack that runs a production genesis
// configuration, which names a key that exists in AWS only. An id already
// held is refused.
func (s *Server) AddKey(id, description string) (string, error) {
	text := DefaultKeyPolicy(s.account)
	p, err := parsePolicy(text, true)
	if err != nil {
		return "", fmt.Errorf("kmssim: %w", err)
	}
	secret := make([]byte, secretSize)
	rand.Read(secret)
	k, err := s.newKey(id, secret, s.now().UTC(), description, text, p)
	clear(secret)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.keys[id]; dup {
		return "", fmt.Errorf("kmssim: key %s exists", k.arn)
	}
	if len(s.keys) >= maxKeys {
		return "", fmt.Errorf("kmssim: holds at most %d keys", maxKeys)
	}
	s.keys[id] = k
	s.order = append(s.order, id)
	if err := s.save(); err != nil {
		delete(s.keys, id)
		s.order = s.order[:len(s.order)-1]
		return "", err
	}
	return k.arn, nil
}

// HasKey reports whether the simulator holds a key with this id.
func (s *Server) HasKey(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[id]
	return ok
}
