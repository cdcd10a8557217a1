package kmssim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of a simulator whose Options leave them out.
const (
	// DefaultAccountID is the AWS account the keys belong to.
	DefaultAccountID = "111122223333"
	// DefaultRegion is the region the keys live in, which signatures must
	// be scoped to.
	DefaultRegion = "us-east-1"
	// DefaultAccessKeyID and DefaultSecretAccessKey are the credentials of
	// [DefaultIdentity]. They are not AWS credentials.
	DefaultAccessKeyID     = "AKIAKMSSIMULATOR0001"
	DefaultSecretAccessKey = "kmssim/not-an-aws-secret/dev-only/0001"
	// DefaultPrincipal is the IAM role that DefaultIdentity acts as.
	DefaultPrincipal = "arn:aws:iam::111122223333:role/nitrosign-dev"
	// DefaultMaxRequestSize caps a request body, in bytes: room for the
	// largest inputs KMS takes (a 32 KiB key policy, a 6 KiB ciphertext
	// blob, a 16 KiB attestation document, each base64- or JSON-encoded)
	// with a wide margin.
	DefaultMaxRequestSize = 256 << 10
)

// AdminIdentityPolicy is an identity-based (IAM) policy allowing every KMS
// action on every resource: DefaultIdentity's. A key policy still has to
// let the identity's account use a key (as the default key policy does)
// before this policy counts for that key.
const AdminIdentityPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"KMSAdmin","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

// maxKeys caps how many keys one simulator holds (LimitExceededException
// beyond), as an AWS account's quota does, so that a client in a loop
// cannot grow it without bound.
const maxKeys = 10000

// Identity is a principal the simulator knows, and the credentials its
// requests are signed with.
type Identity struct {
	// AccessKeyID and SecretAccessKey are the credentials; requests must
	// carry a valid SigV4 signature made with them.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must be the request's X-Amz-Security-Token,
	// as for temporary credentials; when empty, a request must carry none.
	SessionToken string
	// ARN is the principal the requests act as, named by key policies: an
	// IAM user or role ("arn:aws:iam::ACCOUNT:role/NAME"), or a role session
	// ("arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION", which a policy
	// naming the role matches, as on AWS).
	ARN string
	// Policy is the identity-based (IAM) policy attached to the principal,
	// as JSON; empty means none. It is what allows CreateKey, ListKeys and
	// GenerateRandom, and key operations where a key policy delegates to
	// the account. See the package documentation.
	Policy string
}

// DefaultIdentity is the identity a simulator knows when Options.Identities
// is empty: DefaultAccessKeyID acting as DefaultPrincipal, with
// AdminIdentityPolicy.
func DefaultIdentity() Identity {
	return Identity{
		AccessKeyID:     DefaultAccessKeyID,
		SecretAccessKey: DefaultSecretAccessKey,
		ARN:             DefaultPrincipal,
		Policy:          AdminIdentityPolicy,
	}
}

// Options configure a simulated KMS. The zero value is usable: one
// identity (DefaultIdentity), attestation documents verified against the
// AWS Nitro Enclaves root G1, no persistence, a listener on 127.0.0.1.
type Options struct {
	// Roots are the roots that the attestation documents of a Recipient
	// must chain to: the simulated NSM's root in development (parse
	// nsmsim's RootPEM). Nil means the AWS Nitro Enclaves root G1, as
	// [attestation.Verify] has it, which simulated documents fail.
	Roots []*x509.Certificate
	// Identities are the principals whose signed requests the simulator
	// accepts. Empty: DefaultIdentity only.
	Identities []Identity
	// AccountID (12 digits) owns the keys; default DefaultAccountID.
	AccountID string
	// Region is the keys' region and the signature scope; default
	// DefaultRegion.
	Region string
	// Now is the simulator's clock: signature freshness, attestation
	// document validity and key creation dates. Nil: time.Now. (The TLS
	// certificate is always issued by the wall clock, which TLS clients
	// check it against.)
	Now func() time.Time
	// StatePath, when set, is a file holding the keys (their secrets in
	// clear: development only), read at New when it exists and rewritten
	// after every CreateKey and PutKeyPolicy, so that data encrypted in
	// one run decrypts in the next.
	StatePath string
	// MaxRequestSize caps request bodies, in bytes; default
	// DefaultMaxRequestSize.
	MaxRequestSize int
	// Listener is where the simulator serves HTTPS; nil: a new TCP
	// listener on 127.0.0.1 with a free port. The server closes it.
	Listener net.Listener
	// Hosts are names and IP addresses the TLS certificate is valid for,
	// besides localhost, 127.0.0.1 and ::1.
	Hosts []string
	// CA, when set, issues the server's TLS certificate: a CA kept across
	// runs (see NewCA), so that clients that pin it (the dev stack's
	// measured genesis does) keep trusting the simulator. Nil: a new CA
	// for every server.
	CA *tls.Certificate
}

// Server is a simulated AWS KMS serving the KMS JSON protocol over HTTPS.
// Its methods are safe for concurrent use.
type Server struct {
	account    string
	region     string
	now        func() time.Time
	roots      []*x509.Certificate
	identities map[string]*identity // by access key id
	maxRequest int
	statePath  string

	http   *http.Server
	url    string
	caPEM  []byte
	caPool *x509.CertPool
	client *http.Client
	served chan struct{} // closed when Serve returns

	mu         sync.Mutex // guards the fields below
	keys       map[string]*key
	order      []string // key ids, in creation order
	lastDenial *Denial
	closed     bool
}

// identity is an Identity with its policy parsed and its ARN understood.
type identity struct {
	Identity
	account string
	role    string // the role's name for an assumed-role session, else ""
	policy  *policy
}

var (
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	accessKeyRE = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// New starts a simulated KMS: it issues a TLS certificate from a CA of its
// own, loads Options.StatePath if it exists, and serves until Close.
func New(opts Options) (*Server, error) {
	s := &Server{
		account:    opts.AccountID,
		region:     opts.Region,
		now:        opts.Now,
		roots:      slices.Clone(opts.Roots),
		identities: map[string]*identity{},
		maxRequest: opts.MaxRequestSize,
		statePath:  opts.StatePath,
		keys:       map[string]*key{},
	}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if !accountRE.MatchString(s.account) {
		return nil, fmt.Errorf("kmssim: account id %q is not 12 digits", s.account)
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if !regionRE.MatchString(s.region) {
		return nil, fmt.Errorf("kmssim: region %q is not a region name such as us-east-1", s.region)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.roots != nil && (len(s.roots) == 0 || slices.Contains(s.roots, nil)) {
		return nil, errors.New("kmssim: Options.Roots is empty or holds nil (nil Roots means the AWS root G1)")
	}
	if s.maxRequest == 0 {
		s.maxRequest = DefaultMaxRequestSize
	}
	if s.maxRequest < 1<<10 {
		return nil, fmt.Errorf("kmssim: a maximum request size of %d bytes is too small", s.maxRequest)
	}
	ids := opts.Identities
	if len(ids) == 0 {
		ids = []Identity{DefaultIdentity()}
	}
	for _, id := range ids {
		parsed, err := newIdentity(id)
		if err != nil {
			return nil, err
		}
		if _, dup := s.identities[id.AccessKeyID]; dup {
			return nil, fmt.Errorf("kmssim: two identities with access key id %s", id.AccessKeyID)
		}
		s.identities[id.AccessKeyID] = parsed
	}
	if s.statePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	cert, err := s.issueTLS(opts.Hosts, opts.CA)
	if err != nil {
		return nil, err
	}
	l := opts.Listener
	if l == nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("kmssim: listen: %w", err)
		}
	}
	s.url = "https://" + l.Addr().String()
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS handshake noise
	}
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12},
	}}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.http.ServeTLS(l, "", "") // returns http.ErrServerClosed at Close
	}()
	return s, nil
}

func newIdentity(id Identity) (*identity, error) {
	if !accessKeyRE.MatchString(id.AccessKeyID) {
		return nil, fmt.Errorf("kmssim: access key id %q is not 16 to 128 upper-case letters and digits", id.AccessKeyID)
	}
	if id.SecretAccessKey == "" {
		return nil, fmt.Errorf("kmssim: identity %s has no secret access key", id.AccessKeyID)
	}
	account, role, ok := parsePrincipalARN(id.ARN)
	if !ok {
		return nil, fmt.Errorf("kmssim: identity %s: %q is not an IAM user or role ARN or an assumed-role session ARN", id.AccessKeyID, id.ARN)
	}
	out := &identity{Identity: id, account: account, role: role}
	if id.Policy != "" {
		p, err := parsePolicy(id.Policy, false)
		if err != nil {
			return nil, fmt.Errorf("kmssim: identity %s: policy: %w", id.AccessKeyID, err)
		}
		out.policy = p
	}
	return out, nil
}

// parsePrincipalARN returns the account of an IAM user or role ARN, or of
// an STS assumed-role session ARN and the role's name.
func parsePrincipalARN(arn string) (account, role string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[3] != "" || !accountRE.MatchString(parts[4]) {
		return "", "", false
	}
	account, res := parts[4], parts[5]
	switch parts[2] {
	case "iam":
		if (strings.HasPrefix(res, "role/") || strings.HasPrefix(res, "user/")) && len(res) > 5 && !strings.HasSuffix(res, "/") {
			return account, "", true
		}
	case "sts":
		f := strings.Split(res, "/")
		if len(f) == 3 && f[0] == "assumed-role" && f[1] != "" && f[2] != "" {
			return account, f[1], true
		}
	}
	return "", "", false
}

// issueTLS makes the simulator's server certificate (ECDSA P-256), valid
// from an hour ago for a year by the wall clock, issued by ca or by a new
// CA of its own.
func (s *Server) issueTLS(hosts []string, given *tls.Certificate) (tls.Certificate, error) {
	var (
		ca    *x509.Certificate
		caKey crypto.Signer
		caDER []byte
	)
	if given != nil {
		if len(given.Certificate) == 0 {
			return tls.Certificate{}, errors.New("kmssim: Options.CA has no certificate")
		}
		c, err := x509.ParseCertificate(given.Certificate[0])
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("kmssim: Options.CA: %w", err)
		}
		k, ok := given.PrivateKey.(crypto.Signer)
		if !ok || !c.IsCA {
			return tls.Certificate{}, errors.New("kmssim: Options.CA is not a CA certificate with its signing key")
		}
		ca, caKey, caDER = c, k, given.Certificate[0]
	} else {
		pemCert, pemKey, err := NewCA()
		if err != nil {
			return tls.Certificate{}, err
		}
		c, err := tls.X509KeyPair(pemCert, pemKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("kmssim: tls ca: %w", err)
		}
		return s.issueTLS(hosts, &c)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kmssim: tls key: %w", err)
	}
	now := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	leaf := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"nitrosign"}, CommonName: "kmssim"},
		NotBefore:   now,
		NotAfter:    now.Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else if h != "" {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leaf.SerialNumber = randomSerial()
	if leaf.NotAfter.After(ca.NotAfter) {
		leaf.NotAfter = ca.NotAfter
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kmssim: tls certificate: %w", err)
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, nil
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] = b[0]&0x7f | 1
	return new(big.Int).SetBytes(b)
}

// NewCA makes a CA for the simulator's TLS certificates (ECDSA P-256, ten
// years by the wall clock), as PEM: its certificate and its PKCS #8 key.
// Pass it back as Options.CA (tls.X509KeyPair) to keep one CA across runs.
func NewCA() (certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("kmssim: tls key: %w", err)
	}
	now := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	ca := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"nitrosign"}, CommonName: "kmssim CA (simulated KMS, not AWS)"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("kmssim: tls ca: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("kmssim: tls ca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

// URL is the simulator's endpoint, https://ADDRESS with no trailing slash:
// the BaseEndpoint for the AWS SDK.
func (s *Server) URL() string { return s.url }

// CACertPEM returns the certificate of the CA that issued the simulator's
// TLS certificate, PEM-encoded: what a client must trust.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Client returns an HTTP client that trusts the simulator's CA, for the
// AWS SDK's HTTPClient.
func (s *Server) Client() *http.Client { return s.client }

// AccountID returns the account the keys belong to.
func (s *Server) AccountID() string { return s.account }

// Region returns the keys' region.
func (s *Server) Region() string { return s.region }

// Close stops serving, closes the listener and every connection, and
// waits for the server to stop. Requests in flight fail.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.http.Close()
	<-s.served
	s.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kmssim: close: %w", err)
	}
	return nil
}

// Denial describes a request that the simulator refused with
// AccessDeniedException: what the dev stack says when the enclave image
// changed and the key policy still names the old one.
type Denial struct {
	Time      time.Time
	Operation string // the KMS operation, such as "Decrypt"
	Action    string // the action evaluated, such as "kms:Decrypt"
	Principal string // the identity's ARN
	Resource  string // the key's ARN; empty for GenerateRandom, CreateKey, ListKeys
	// Explicit reports an explicit Deny statement, named by StatementSID
	// (which may be empty); otherwise no statement allowed the request.
	Explicit     bool
	StatementSID string
	// IdentityPolicy reports that the deciding policy was the identity's
	// IAM policy rather than the key policy.
	IdentityPolicy bool
	// ImageSHA384 and PCR0 are the request's measurements, from the
	// Recipient's attestation document, in lower-case hex: equal, since
	// kms:RecipientAttestation:ImageSha384 is PCR0. Both are empty when the
	// request had no Recipient.
	ImageSHA384 string
	PCR0        string
	// Expected are the values that the Allow statements for the action
	// compare kms:RecipientAttestation:ImageSha384 or PCR0 with, as the
	// policy writes them: the measurements the policy accepts.
	Expected []string
	// Message is the AccessDeniedException's message.
	Message string
}

// LastDenial returns the most recent AccessDeniedException's details, and
// false when there has been none.
func (s *Server) LastDenial() (Denial, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastDenial == nil {
		return Denial{}, false
	}
	d := *s.lastDenial
	d.Expected = slices.Clone(d.Expected)
	return d, true
}
