package kms

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/logging"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/transport"
)

// DefaultProxyPort is the vsock port at the parent (CID 3) on which the
// project's deployment runs vsock-proxy, forwarding to the region's KMS
// endpoint on port 443: the genesis configuration's default.
const DefaultProxyPort = genesis.DefaultKMSProxyPort

// Limits of a Client. A KMS answer takes milliseconds; these bound how long
// a host that stalls the bytes can hold an operation.
const (
	// handshakeTimeout bounds connecting (through vsock-proxy) and the TLS
	// handshake.
	handshakeTimeout = 10 * time.Second
	// responseHeaderTimeout bounds the wait for KMS's answer to a request.
	responseHeaderTimeout = 20 * time.Second
	// attemptTimeout bounds one HTTP exchange, body included.
	attemptTimeout = 30 * time.Second
	// operationTimeout bounds an operation, retries included, unless the
	// caller's context ends it sooner.
	operationTimeout = 90 * time.Second
	// idleTimeout closes a kept-alive connection unused this long.
	idleTimeout = 30 * time.Second
	// maxResponseHeaderBytes caps the headers of KMS's answer (the body is
	// capped where it is read).
	maxResponseHeaderBytes = 64 << 10
	// maxAttempts is how often a request is sent, at most: the first time
	// and two retries, for throttling, 5xx answers and broken connections.
	maxAttempts = 3
	// maxBackoff caps the wait between two attempts.
	maxBackoff = 2 * time.Second
)

// Config configures a Client.
type Config struct {
	// Region is the KMS region, such as "us-east-1": the SigV4 scope, and
	// the endpoint's when Endpoint is empty.
	Region string
	// Endpoint is KMS's URL, "https://HOST[:PORT]"; empty means
	// https://kms.REGION.amazonaws.com (kms.REGION.amazonaws.com.cn in
	// China). The simulator's URL under test. Its host is the name the
	// TLS certificate must carry, whatever Dial connects to.
	Endpoint string
	// Dial opens the byte stream to the endpoint: in the enclave, a vsock
	// connection to vsock-proxy on the parent, which forwards it to KMS
	// over TCP (see DialVsockProxy). The stream carries TLS that the
	// Client itself does, so whatever is behind Dial sees ciphertext only.
	Dial func(ctx context.Context) (net.Conn, error)
	// RootCAs are the roots KMS's certificate must chain to. Nil means the
	// roots embedded in the binary (see the package documentation), never
	// the host's; the simulator's CA under test.
	RootCAs *x509.CertPool
	// Credentials sign the requests: a *PushedCredentials in the enclave.
	Credentials aws.CredentialsProvider
	// NSM attests the ephemeral key of every operation.
	NSM nsm.Device
	// Now is the clock of request signatures and of the TLS certificate
	// check. Nil: time.Now (in a Nitro enclave, the hypervisor's clock).
	Now func() time.Time
}

// Client is the enclave's KMS client: each operation sends a Recipient (an
// attestation document of a fresh RSA key) and opens KMS's answer inside
// the enclave. Its methods are safe for concurrent use.
type Client struct {
	api   *awskms.Client
	http  *http.Client
	nsm   nsm.Device
	creds aws.CredentialsProvider
	now   func() time.Time
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// New returns a Client for cfg. It does not connect: the first operation
// does.
func New(cfg Config) (*Client, error) {
	if !regionPattern.MatchString(cfg.Region) {
		return nil, fmt.Errorf("kms: region %q is not a region name such as us-east-1", cfg.Region)
	}
	if cfg.Dial == nil {
		return nil, errors.New("kms: Config.Dial is nil (in the enclave, use DialVsockProxy)")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("kms: Config.Credentials is nil")
	}
	if cfg.NSM == nil {
		return nil, errors.New("kms: Config.NSM is nil")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	ep, err := parseEndpoint(cfg.Endpoint, cfg.Region)
	if err != nil {
		return nil, err
	}
	roots := cfg.RootCAs
	if roots == nil {
		if roots, err = embeddedRoots(); err != nil {
			return nil, err
		}
	}
	d := &dialer{
		addr: ep.addr,
		dial: cfg.Dial,
		tls: &tls.Config{
			RootCAs:    roots,
			ServerName: ep.serverName,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
			Time:       now,
		},
	}
	hc := &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never an HTTP proxy from the environment
			DialContext:            refusePlaintext,
			DialTLSContext:         d.dialTLS,
			ResponseHeaderTimeout:  responseHeaderTimeout,
			IdleConnTimeout:        idleTimeout,
			MaxIdleConnsPerHost:    4,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
			ForceAttemptHTTP2:      false,
		},
		// KMS does not redirect; a redirect would send the signed request
		// elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       attemptTimeout,
	}
	api := awskms.New(awskms.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(ep.url),
		Credentials:  cfg.Credentials,
		HTTPClient:   hc,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
		}),
		HTTPSignerV4: clockSigner{now: now},
		// The signing time is Now's, the enclave's trusted clock, not one
		// corrected by the Date header of earlier answers.
		DisableClockSkewCorrection: true,
		// The SDK logs nothing: no requests, answers or signing steps.
		Logger:        logging.Nop{},
		ClientLogMode: 0,
	})
	return &Client{api: api, http: hc, nsm: cfg.NSM, creds: cfg.Credentials, now: now}, nil
}

// CloseIdleConnections closes the kept-alive connections to KMS that no
// request is using.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// DialVsockProxy returns a Config.Dial that connects over t to vsock-proxy
// at (cid, port): in production transport.Vsock(), transport.ParentCID and
// DefaultProxyPort, with vsock-proxy started on the parent as
// `vsock-proxy 8000 kms.REGION.amazonaws.com 443`.
func DialVsockProxy(t transport.Transport, cid, port uint32) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := t.Dial(ctx, cid, port)
		if err != nil {
			return nil, fmt.Errorf("kms: vsock-proxy at %v: %w", transport.Addr{ContextID: cid, Port: port}, err)
		}
		return conn, nil
	}
}

// endpoint is a parsed Config.Endpoint.
type endpoint struct {
	url        string // https://host[:port]
	addr       string // host:port, as http.Transport names it to the dialer
	serverName string // the name the certificate must carry
}

func parseEndpoint(raw, region string) (endpoint, error) {
	if raw == "" {
		suffix := ".amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			suffix = ".amazonaws.com.cn"
		}
		raw = "https://kms." + region + suffix
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("kms: endpoint %q: %w", raw, err)
	}
	if u.Scheme != "https" || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return endpoint{}, fmt.Errorf("kms: endpoint %q: want https://HOST or https://HOST:PORT", raw)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return endpoint{
		url:        "https://" + u.Host,
		addr:       net.JoinHostPort(u.Hostname(), port),
		serverName: u.Hostname(),
	}, nil
}

// dialer makes the TLS connections of a Client: a stream from Dial, then a
// TLS handshake in the enclave, verified against the Client's roots.
type dialer struct {
	addr string
	dial func(ctx context.Context) (net.Conn, error)
	tls  *tls.Config
}

func (d *dialer) dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	if addr != d.addr {
		return nil, fmt.Errorf("kms: refusing to connect to %s: this client talks to %s only", addr, d.addr)
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	raw, err := d.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("kms: connect to %s: %w", d.addr, err)
	}
	conn := tls.Client(raw, d.tls)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, &untrustedError{addr: d.addr, err: err}
		}
		return nil, fmt.Errorf("kms: TLS handshake with %s: %w", d.addr, err)
	}
	return conn, nil
}

func refusePlaintext(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("kms: refusing a connection without TLS")
}

// untrustedError is a certificate that does not verify: someone between
// the enclave and KMS. It is not retried.
type untrustedError struct {
	addr string
	err  error
}

func (e *untrustedError) Error() string {
	return fmt.Sprintf("kms: the TLS certificate of %s is not trusted: %v", e.addr, e.err)
}

func (e *untrustedError) Unwrap() error { return e.err }

// RetryableError tells the SDK's retryer not to try again.
func (e *untrustedError) RetryableError() bool { return false }

// clockSigner signs with the Client's clock, and with a new v4.Signer each
// time: a Signer caches the key it derives from the secret by access key
// id and day, not by secret, so after a Set of credentials with the same
// access key id and another secret it would go on signing with the old
// one. Deriving the key costs four HMACs.
type clockSigner struct {
	now func() time.Time
}

func (s clockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, s.now(), optFns...)
}
