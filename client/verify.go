package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/attestation"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/ethtx"
)

// EnclaveCheck says what an attested enclave must be.
type EnclaveCheck struct {
	// PCRs must be in the document with these values; PCR0 (the enclave
	// image) is required.
	PCRs map[int][]byte
	// Roots are the trusted roots; nil means AWS's (see package
	// attestation). The dev stack's is DATA-DIR/nsm-root.pem.
	Roots []*x509.Certificate
	// AllowDebug accepts a debug-mode enclave: development only.
	AllowDebug bool
	// Now is the verification time (default time.Now).
	Now func() time.Time
	// MinPolicyVersion, when set, refuses an enclave whose policy in force
	// is older: a host that restarted the enclave from an old sealed
	// checkpoint (rolling back a policy change) is caught here.
	MinPolicyVersion uint64
	// PolicyHash, when set, is the only policy hash accepted.
	PolicyHash *[32]byte
}

// Enclave is what an enclave proved about itself.
type Enclave struct {
	// Attestation is the verified document.
	Attestation *attestation.Result
	// UserData is its decoded commitment.
	UserData *userdata.UserData
	// Keys are the signing keys the host listed, whose hash the enclave
	// attested.
	Keys  []api.Key
	addrs map[ethtx.Address]bool
}

// Attests reports whether address is one of the attested signing keys.
func (e *Enclave) Attests(address string) bool {
	a, err := ethtx.ParseAddress(address)
	return err == nil && e.addrs[a]
}

// VerifyEnclave asks the enclave behind the host for an attestation
// document with a fresh random nonce, verifies it (package attestation:
// signature, chain to the root, validity, the pinned PCRs, the nonce), and
// checks that the keys the host lists are exactly those the enclave
// attests. A response signed by one of Enclave.Keys, checked with
// Enclave.Attests, then comes from the attested image.
func (c *Client) VerifyEnclave(ctx context.Context, chk EnclaveCheck) (*Enclave, error) {
	if len(chk.PCRs[0]) == 0 {
		return nil, errors.New("client: verify enclave: PCR0 must be pinned")
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	doc, err := c.Attestation(ctx, nonce)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if chk.Now != nil {
		now = chk.Now
	}
	var ud *userdata.UserData
	res, err := attestation.Verify(doc, attestation.Options{
		Time: now(), Roots: chk.Roots, PCRs: chk.PCRs, Nonce: nonce, AllowDebug: chk.AllowDebug,
		UserData: func(b []byte) error {
			var err error
			ud, err = userdata.Parse(b)
			return err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("client: verify enclave: %w", err)
	}
	if ud.PolicyVersion < chk.MinPolicyVersion {
		return nil, fmt.Errorf("client: verify enclave: its policy is version %d, older than the %d required (rolled back?)", ud.PolicyVersion, chk.MinPolicyVersion)
	}
	if chk.PolicyHash != nil && ud.PolicyHash != *chk.PolicyHash {
		return nil, fmt.Errorf("client: verify enclave: its policy hash is %x, not the %x required", ud.PolicyHash, *chk.PolicyHash)
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	e := &Enclave{Attestation: res, UserData: ud, Keys: keys.Keys, addrs: map[ethtx.Address]bool{}}
	ks := make([]userdata.Key, len(keys.Keys))
	for i, k := range keys.Keys {
		a, err := ethtx.ParseAddress(k.Address)
		if err != nil {
			return nil, fmt.Errorf("client: verify enclave: key %s: %w", k.ID, err)
		}
		ks[i] = userdata.Key{ID: k.ID, Address: a, Path: k.Path}
		e.addrs[a] = true
	}
	if uint64(len(ks)) != ud.KeyCount || userdata.KeysHash(ks) != ud.KeysHash {
		return nil, errors.New("client: verify enclave: the keys the host lists are not the keys the enclave attests")
	}
	return e, nil
}

// CheckSignature checks that resp is a signature by an attested key over
// the digest it names, and, for a transaction, that the digest is the
// signing hash of unsigned (what the caller asked to sign), decoded as the
// enclave decodes it (package api/request). [Enclave.CheckRequestSignature]
// checks more: the digest of every payload kind, and the signed
// transaction.
func (e *Enclave) CheckSignature(resp *api.SignResponse, unsigned []byte) error {
	var want *[32]byte
	if unsigned != nil {
		t, err := request.DecodeTransaction(unsigned)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		h := t.Tx.SigningHash()
		want = &h
	}
	_, err := e.checkSignature(resp, want)
	return err
}

// CheckRequestSignature checks that resp answers req (the request sent,
// its payload decoded here with package api/request, as the enclave
// decodes it): a signature by an attested key over req's digest (the
// transaction's signing hash, the EIP-191 or the EIP-712 digest), and, for
// a transaction, a signed transaction that is req's transaction with that
// signature, and its hash.
func (e *Enclave) CheckRequestSignature(resp *api.SignResponse, req *api.SignRequest) error {
	r, err := request.DecodePayload(req)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	sig, err := e.checkSignature(resp, &r.Digest)
	if err != nil {
		return err
	}
	if r.Transaction == nil {
		return nil
	}
	signed, err := decodeHex0x(resp.SignedTransaction)
	if err != nil || !bytes.Equal(signed, r.Transaction.Tx.EncodeSigned(sig)) {
		return errors.New("client: the signed transaction is not the transaction sent with the signature")
	}
	if h, err := hex32(resp.TransactionHash); err != nil || h != ethtx.TransactionHash(signed) {
		return errors.New("client: the transaction hash is not the signed transaction's")
	}
	return nil
}

// checkSignature checks that resp is a signature by an attested key over
// the digest it names, which must be want when want is not nil, and
// returns the signature.
func (e *Enclave) checkSignature(resp *api.SignResponse, want *[32]byte) (ethtx.Signature, error) {
	var sig ethtx.Signature
	if !e.Attests(resp.From) {
		return sig, fmt.Errorf("client: %s is not a key the enclave attests", resp.From)
	}
	digest, err := hex32(resp.Digest)
	if err != nil {
		return sig, fmt.Errorf("client: digest: %w", err)
	}
	sigBytes, err := decodeHex0x(resp.Signature)
	if err != nil || len(sigBytes) != len(sig) {
		return sig, errors.New("client: signature: want 65 bytes of 0x-hex")
	}
	sig = ethtx.Signature(sigBytes)
	if want != nil && *want != digest {
		return sig, errors.New("client: the enclave signed a digest other than the request's")
	}
	who, err := ethtx.RecoverAddress(digest, sig)
	if err != nil {
		return sig, fmt.Errorf("client: %w", err)
	}
	from, _ := ethtx.ParseAddress(resp.From)
	if who != from {
		return sig, fmt.Errorf("client: the signature recovers %s, not %s", who.Hex(), resp.From)
	}
	return sig, nil
}

func hex32(s string) ([32]byte, error) {
	var out [32]byte
	b, err := decodeHex0x(s)
	if err != nil || len(b) != 32 {
		return out, errors.New("want 32 bytes of 0x-hex")
	}
	copy(out[:], b)
	return out, nil
}

func decodeHex0x(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return nil, errors.New(`missing "0x"`)
	}
	return hex.DecodeString(h)
}
