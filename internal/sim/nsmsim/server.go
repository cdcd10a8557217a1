package nsmsim

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/nitrosign/nitrosign/enclave/nsm"
)

// DefaultPort is the vsock port the dev stack serves the simulator on, at
// the parent's CID: an enclave started with "-nsm vsock:3:9000" reaches it.
const DefaultPort uint32 = 9000

// Options configure a simulated NSM. The zero value is not enough: set
// Image, or Debug.
type Options struct {
	// Image is the measurement of the enclave image the simulator stands
	// in for (see Measure); it must not be zero unless Debug is set.
	Image Measurement
	// Debug reports PCR0, PCR1 and PCR2 as zero, as AWS does for an
	// enclave in debug mode; Image is then ignored.
	Debug bool
	// ModuleID is the module id the documents carry. Empty: one drawn from
	// Rand, shaped like AWS's ("i-0…-enc…").
	ModuleID string
	// Rand is where the CA's keys, serial numbers and names come from.
	// Nil: crypto/rand. A fixed reader gives the same CA every time. It is
	// not used for the randomness the simulator serves (see Server.Read).
	Rand io.Reader
	// Now is the simulator's clock, for document timestamps and
	// certificate validity. Nil: time.Now.
	Now func() time.Time
}

// Server is a simulated NSM. It is an nsm.Device and serves the remote
// protocol of package nsm (see Serve). Its methods are safe for concurrent
// use.
type Server struct {
	now      func() time.Time
	moduleID string
	pcrs     [16][48]byte
	pcrCBOR  cbor.RawMessage
	rootPEM  []byte
	root     *x509.Certificate

	ctx    context.Context // ends at Close, ending every connection
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	ca        *ca
	closed    bool
	listeners map[net.Listener]struct{}
}

var _ nsm.Device = (*Server)(nil)

var errClosed = fmt.Errorf("nsmsim: %w", nsm.ErrClosed)

// New returns a simulated NSM, its CA keys drawn from opts.Rand and its
// root issued at opts.Now().
func New(opts Options) (*Server, error) {
	if !opts.Debug && opts.Image == (Measurement{}) {
		return nil, errors.New("nsmsim: no image measurement (set Options.Image from Measure, or Options.Debug)")
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	moduleID := opts.ModuleID
	instanceID, _, _ := strings.Cut(moduleID, "-enc")
	if moduleID == "" {
		inst, err := randomHex(r, 8)
		if err != nil {
			return nil, err
		}
		enc, err := randomHex(r, 8)
		if err != nil {
			return nil, err
		}
		instanceID = "i-0" + inst
		moduleID = instanceID + "-enc" + enc
	}
	s := &Server{now: now, moduleID: moduleID, listeners: map[net.Listener]struct{}{}}
	if !opts.Debug {
		s.pcrs[0], s.pcrs[1], s.pcrs[2] = opts.Image.PCR0, opts.Image.PCR1, opts.Image.PCR2
	}
	var err error
	if s.pcrCBOR, err = encodePCRs(&s.pcrs); err != nil {
		return nil, fmt.Errorf("nsmsim: encode pcrs: %w", err)
	}
	if s.ca, err = newCA(r, now(), moduleID, instanceID); err != nil {
		return nil, err
	}
	s.root = s.ca.root.cert
	s.rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.root.Raw})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// RootPEM returns the simulator's root certificate, PEM-encoded: the root
// that its documents chain to, in place of AWS's root G1.
func (s *Server) RootPEM() []byte { return append([]byte(nil), s.rootPEM...) }

// Roots returns a pool holding only the simulator's root.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.root)
	return p
}

// PCRs returns the PCRs the documents carry.
func (s *Server) PCRs() [16][48]byte { return s.pcrs }

// ModuleID returns the module id the documents carry.
func (s *Server) ModuleID() string { return s.moduleID }

// orNil makes an empty field absent: null in the document.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Attest returns an attestation document for req, signed now by the
// current leaf.
func (s *Server) Attest(ctx context.Context, req nsm.AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nsmsim: attest: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	now := s.now()
	leaf, key, bundle, err := s.ca.signer(now)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ms := now.UnixMilli()
	if ms <= 0 {
		return nil, fmt.Errorf("nsmsim: attest: the clock says %v", now)
	}
	return sign1(key, &payload{
		ModuleID:    s.moduleID,
		Digest:      "SHA384",
		Timestamp:   uint64(ms),
		PCRs:        s.pcrCBOR,
		Certificate: leaf.Raw,
		CABundle:    bundle,
		PublicKey:   orNil(req.PublicKey),
		UserData:    orNil(req.UserData),
		Nonce:       orNil(req.Nonce),
	})
}

// Read fills p from crypto/rand.
func (s *Server) Read(p []byte) (int, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, errClosed
	}
	return rand.Read(p)
}

// Serve answers the remote protocol of package nsm on connections accepted
// from l, each with ServeConn in its own goroutine, until Close; then it returns nil. It
// closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return errClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nsmsim: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.wg.Add(1) // under mu, so never concurrently with Close's Wait
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			// A client that breaks the protocol loses its connection;
			// ServeConn has already told it why.
			ServeConn(s.ctx, conn, s)
		}()
	}
}

// Close stops every Serve and closes their connections, then makes every
// later call fail.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
