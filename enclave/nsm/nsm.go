package nsm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/transport"
)

// A Device is a Nitro Security Module: the real /dev/nsm, or a simulated
// module reached over the vsock simulator. Its methods are safe for
// concurrent use.
type Device interface {
	// Attest returns an attestation document (COSE_Sign1, CBOR) that
	// carries the request's fields. The request is checked first: each
	// field is at most MaxFieldSize bytes.
	Attest(ctx context.Context, req AttestRequest) ([]byte, error)
	// Read fills p with random bytes from the module. Like crypto/rand's
	// Reader, it returns len(p) and no error, or an error.
	Read(p []byte) (int, error)
	// Close releases the device. Calls after Close fail.
	Close() error
}

// AttestRequest is what an attestation document should carry besides the
// module's own fields (module id, time, PCRs, certificates). An empty field
// is absent (null in the document).
type AttestRequest struct {
	// Nonce is a verifier's challenge, proving the document is fresh.
	Nonce []byte
	// UserData is data the enclave vouches for (for nitrosign: a
	// commitment to its keys, policy and audit head).
	UserData []byte
	// PublicKey is a key of the enclave (its session or identity key; for
	// KMS, the recipient's RSA key).
	PublicKey []byte
}

// Sizes of the NSM, the same for every Device; the remote protocol's wire
// format (package nsmwire) defines them, so that both ends agree.
const (
	// MaxFieldSize is the largest nonce, user data or public key, in
	// bytes, that an attestation document may carry (a limit of the NSM
	// itself).
	MaxFieldSize = nsmwire.MaxFieldSize
	// MaxRandomChunk is the most random bytes one remote request asks
	// for; a remote device's Read sends as many requests as it needs.
	MaxRandomChunk = nsmwire.MaxRandomChunk
	// MaxDocumentSize is the largest attestation document, in bytes, a
	// device returns. (The real NSM answers within a 12 KiB buffer; AWS's
	// documents with three 1 KiB fields are about 7.5 KiB.)
	MaxDocumentSize = nsmwire.MaxDocumentSize
	// RemoteVersion is the version of the remote protocol.
	RemoteVersion = nsmwire.Version
)

// Validate reports whether every field of r is within MaxFieldSize.
func (r AttestRequest) Validate() error {
	if err := nsmwire.CheckFields(r.Nonce, r.UserData, r.PublicKey); err != nil {
		return fmt.Errorf("nsm: %w", err)
	}
	return nil
}

var (
	// ErrUnsupported is returned by Open on platforms without /dev/nsm.
	ErrUnsupported = errors.New("nsm: /dev/nsm is only available in a Nitro enclave on Linux")

	// ErrClosed is returned (wrapped) by a Device's methods after Close.
	ErrClosed = errors.New("nsm: device is closed")
)

// DefaultSpec is the -nsm flag of a production enclave image: the real
// device.
const DefaultSpec = "/dev/nsm"

// OpenSpec opens the device named by spec, the enclave's -nsm flag:
// "/dev/nsm" ([DefaultSpec]) opens the real module with [Open];
// "vsock:CID:PORT" dials a simulated module at (CID, PORT) over t with
// [DialRemote]. The package documentation explains why the second form is
// safe to have in a production binary: the flag is measured.
func OpenSpec(ctx context.Context, spec string, t transport.Transport) (Device, error) {
	if spec == DefaultSpec {
		return Open()
	}
	rest, ok := strings.CutPrefix(spec, "vsock:")
	if !ok {
		return nil, fmt.Errorf("nsm: unknown device %q (want %q or \"vsock:CID:PORT\")", spec, DefaultSpec)
	}
	c, p, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("nsm: bad device %q (want \"vsock:CID:PORT\")", spec)
	}
	cid, err := transport.ParseCID(c)
	if err != nil {
		return nil, fmt.Errorf("nsm: bad device %q: %w", spec, err)
	}
	port, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("nsm: bad device %q: bad port %q", spec, p)
	}
	if t == nil {
		return nil, fmt.Errorf("nsm: device %q needs a transport", spec)
	}
	return DialRemote(ctx, t, cid, uint32(port))
}
