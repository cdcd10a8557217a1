package nsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// session is the part of a github.com/hf/nsm Session that device uses, so
// that tests can stand in for /dev/nsm.
type session interface {
	Send(request.Request) (response.Response, error)
	Close() error
}

// device is a Device on an NSM session.
type device struct {
	// mu is held for reading by requests and for writing by Close: a
	// Session may Send concurrently but must not Close while sending.
	mu sync.RWMutex
	s  session // nil after Close
}

var _ Device = (*device)(nil)

func newDevice(s session) *device { return &device{s: s} }

// orNil returns nil for an empty b, so that the device encodes an absent
// field as null, not as an empty byte string.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (d *device) Attest(ctx context.Context, req AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	// The ioctl cannot be interrupted; honour a context that is done.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nsm: attest: %w", err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.s == nil {
		return nil, fmt.Errorf("nsm: attest: %w", ErrClosed)
	}
	res, err := d.s.Send(&request.Attestation{
		Nonce:     orNil(req.Nonce),
		UserData:  orNil(req.UserData),
		PublicKey: orNil(req.PublicKey),
	})
	if err != nil {
		return nil, fmt.Errorf("nsm: attest: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("nsm: attest: device answered %s", res.Error)
	}
	if res.Attestation == nil || len(res.Attestation.Document) == 0 {
		return nil, errors.New("nsm: attest: device answered without a document")
	}
	if n := len(res.Attestation.Document); n > MaxDocumentSize {
		return nil, fmt.Errorf("nsm: attest: device answered a document of %d bytes, limit %d", n, MaxDocumentSize)
	}
	return bytes.Clone(res.Attestation.Document), nil
}

// Read fills p with the answers of GetRandom requests, as many as it takes
// (the device gives a few hundred bytes per request).
func (d *device) Read(p []byte) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.s == nil {
		return 0, fmt.Errorf("nsm: random: %w", ErrClosed)
	}
	n := 0
	for n < len(p) {
		res, err := d.s.Send(&request.GetRandom{})
		if err != nil {
			return n, fmt.Errorf("nsm: random: %w", err)
		}
		if res.Error != "" {
			return n, fmt.Errorf("nsm: random: device answered %s", res.Error)
		}
		// An empty answer would make this loop spin forever.
		if res.GetRandom == nil || len(res.GetRandom.Random) == 0 {
			return n, errors.New("nsm: random: device answered without random bytes")
		}
		n += copy(p[n:], res.GetRandom.Random)
	}
	return n, nil
}

func (d *device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.s == nil {
		return nil
	}
	err := d.s.Close()
	d.s = nil
	if err != nil {
		return fmt.Errorf("nsm: close: %w", err)
	}
	return nil
}
