package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/stamp"
)

// MaxEnvelopeSize caps the bytes of an envelope. [Envelope.Marshal] never
// more than doubles the command (JSON string escaping of a valid command
// adds at most one byte per byte), and MaxMembers signatures take under
// 16 KiB, so every envelope it writes fits.
const MaxEnvelopeSize = 2*MaxCommandSize + 64<<10

// Errors that callers branch on. Every error from [Set.Verify] wraps exactly
// one of them.
var (
	// ErrMalformed: the envelope, the command or its body does not parse,
	// or the command's kind is unknown.
	ErrMalformed = errors.New("admin: malformed")
	// ErrWrongDeployment: the command is bound to another deployment
	// (its genesis_hash is not this enclave's).
	ErrWrongDeployment = errors.New("admin: command is for another deployment")
	// ErrNotValidNow: the command is not yet valid, or has expired.
	ErrNotValidNow = errors.New("admin: command is not valid now")
	// ErrSignature: a signature names an unknown admin, an admin signed
	// twice, or a signature does not verify.
	ErrSignature = errors.New("admin: bad signature")
	// ErrQuorum: fewer distinct admins signed than the kind requires.
	ErrQuorum = errors.New("admin: quorum not met")
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Signature is one admin's signature of a command.
type Signature struct {
	// Admin is the signer's name in the [Set].
	Admin string
	// Sig is the signature as [SignDigest] makes it for [DomainCommand]
	// and SHA-256 of the command: 64 bytes for Ed25519, ASN.1 DER for
	// P-256.
	Sig []byte
}

// Sign signs command as the admin called name with s. It refuses a command
// that [ParseCommand] refuses, so that no admin signs what the enclave would
// not accept. It does not check that s holds name's key: [Set.Verify] does.
func Sign(s stamp.Signer, name string, command []byte) (Signature, error) {
	if err := checkName(name); err != nil {
		return Signature{}, fmt.Errorf("admin: %v", err)
	}
	if _, err := ParseCommand(command); err != nil {
		return Signature{}, err
	}
	sig, err := SignDigest(s, DomainCommand, sha256.Sum256(command))
	if err != nil {
		return Signature{}, err
	}
	return Signature{Admin: name, Sig: sig}, nil
}

// Envelope carries a command and the admins' signatures of it, sorted by
// admin name, at most one per admin.
type Envelope struct {
	// Command is the exact bytes of the command.
	Command []byte
	// Signatures holds the signatures so far; change it only with Add.
	Signatures []Signature
}

// wireEnvelope is the JSON form of an envelope.
type wireEnvelope struct {
	Command    *string          `json:"command"`
	Signatures *[]wireSignature `json:"signatures"`
}

type wireSignature struct {
	Admin     string `json:"admin"`
	Signature string `json:"signature"`
}

// NewEnvelope returns an envelope for command, which [ParseCommand] must
// accept, holding sigs (added with [Envelope.Add]).
func NewEnvelope(command []byte, sigs ...Signature) (*Envelope, error) {
	if _, err := ParseCommand(command); err != nil {
		return nil, err
	}
	e := &Envelope{Command: bytes.Clone(command)}
	for _, s := range sigs {
		if err := e.Add(s); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Add adds sig to the envelope. Adding a signature the envelope already
// holds (same admin, same bytes) does nothing, so an admin is counted once
// however often their signature is merged in; a different signature by an
// admin who already signed is refused (with [ErrSignature]), as are more
// than MaxMembers signatures. Add does not verify signatures.
func (e *Envelope) Add(sig Signature) error {
	if e == nil {
		return errors.New("admin: nil envelope")
	}
	if err := checkName(sig.Admin); err != nil {
		return malformed("signature: %v", err)
	}
	if len(sig.Sig) == 0 || len(sig.Sig) > p256MaxSigSize {
		return malformed("signature by %s is %d bytes, want 1 to %d", sig.Admin, len(sig.Sig), p256MaxSigSize)
	}
	i, found := slices.BinarySearchFunc(e.Signatures, sig.Admin, func(s Signature, name string) int {
		return strings.Compare(s.Admin, name)
	})
	if found {
		if bytes.Equal(e.Signatures[i].Sig, sig.Sig) {
			return nil
		}
		return fmt.Errorf("%w: admin %s signed twice, with two different signatures; keep one", ErrSignature, quote(sig.Admin))
	}
	if len(e.Signatures) >= MaxMembers {
		return malformed("more than %d signatures", MaxMembers)
	}
	e.Signatures = slices.Insert(e.Signatures, i, Signature{Admin: sig.Admin, Sig: bytes.Clone(sig.Sig)})
	return nil
}

// Merge returns one envelope holding the signatures of all of envs, which
// must carry the same command bytes. It refuses what [Envelope.Add]
// refuses.
func Merge(envs ...*Envelope) (*Envelope, error) {
	if len(envs) == 0 || envs[0] == nil {
		return nil, errors.New("admin: merge: no envelopes")
	}
	out := &Envelope{Command: bytes.Clone(envs[0].Command)}
	for i, e := range envs {
		if e == nil {
			return nil, fmt.Errorf("admin: merge: envelope %d is nil", i)
		}
		if !bytes.Equal(e.Command, out.Command) {
			return nil, fmt.Errorf("admin: merge: envelope %d carries a different command (sha256 %x, not %x)", i, sha256.Sum256(e.Command), sha256.Sum256(out.Command))
		}
		for _, s := range e.Signatures {
			if err := out.Add(s); err != nil {
				return nil, fmt.Errorf("admin: merge: envelope %d: %w", i, err)
			}
		}
	}
	return out, nil
}

// Marshal encodes the envelope in the form [ParseEnvelope] reads, indented,
// with a final newline.
func (e *Envelope) Marshal() ([]byte, error) {
	if !utf8.Valid(e.Command) {
		return nil, malformed("command is not valid UTF-8")
	}
	cmd := string(e.Command)
	sigs := make([]wireSignature, 0, len(e.Signatures))
	for _, s := range e.Signatures {
		sigs = append(sigs, wireSignature{Admin: s.Admin, Signature: hex.EncodeToString(s.Sig)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(wireEnvelope{Command: &cmd, Signatures: &sigs}); err != nil {
		return nil, fmt.Errorf("admin: encoding the envelope: %w", err)
	}
	if buf.Len() > MaxEnvelopeSize {
		return nil, malformed("envelope is %d bytes, limit %d", buf.Len(), MaxEnvelopeSize)
	}
	return buf.Bytes(), nil
}

// ParseEnvelope strictly parses an envelope of at most [MaxEnvelopeSize]
// bytes: exactly the members "command" (a string, the command's bytes, 1 to
// [MaxCommandSize] of them) and "signatures" (an array, possibly empty, of
// at most [MaxMembers] objects with exactly "admin", a valid admin name,
// and "signature", 1 to 72 bytes in lowercase hex). It does not parse the
// command or verify anything. Errors wrap [ErrMalformed], or [ErrSignature]
// when an admin appears twice.
func ParseEnvelope(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, malformed("envelope is %d bytes, limit %d", len(b), MaxEnvelopeSize)
	}
	var w wireEnvelope
	if err := strictjson.Unmarshal(b, &w, MaxEnvelopeSize); err != nil {
		return nil, malformed("envelope: %v", err)
	}
	switch {
	case w.Command == nil:
		return nil, malformed("envelope: command is missing")
	case w.Signatures == nil:
		return nil, malformed("envelope: signatures is missing (use [] for none)")
	case *w.Command == "":
		return nil, malformed("envelope: command is empty")
	case len(*w.Command) > MaxCommandSize:
		return nil, malformed("envelope: command is %d bytes, limit %d", len(*w.Command), MaxCommandSize)
	case len(*w.Signatures) > MaxMembers:
		return nil, malformed("envelope: %d signatures, at most %d", len(*w.Signatures), MaxMembers)
	}
	e := &Envelope{Command: []byte(*w.Command)}
	seen := make(map[string]bool, len(*w.Signatures))
	for i, ws := range *w.Signatures {
		if err := checkName(ws.Admin); err != nil {
			return nil, malformed("envelope: signatures[%d]: %v", i, err)
		}
		if seen[ws.Admin] {
			return nil, fmt.Errorf("%w: admin %s signed twice (signatures[%d]); a signer counts once", ErrSignature, quote(ws.Admin), i)
		}
		seen[ws.Admin] = true
		if ws.Signature == "" || len(ws.Signature) > 2*p256MaxSigSize {
			return nil, malformed("envelope: signatures[%d] (%s): signature is %d hex digits, want 2 to %d", i, ws.Admin, len(ws.Signature), 2*p256MaxSigSize)
		}
		sig, err := decodeLowerHex(ws.Signature)
		if err != nil {
			return nil, malformed("envelope: signatures[%d] (%s): signature: %v", i, ws.Admin, err)
		}
		if err := e.Add(Signature{Admin: ws.Admin, Sig: sig}); err != nil {
			return nil, err // unreachable: the checks above are Add's
		}
	}
	return e, nil
}
