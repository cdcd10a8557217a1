package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"
)

// The enclave has no instance metadata service of its own: the host fetches
// the parent instance role's temporary credentials from IMDSv2 (an [IMDS]),
// and a [CredentialRefresher] pushes them to the enclave, which signs its
// KMS requests with them (kms.PushedCredentials), and pushes new ones before
// they expire.

const (
	// DefaultIMDSEndpoint is the instance metadata service's IPv4 address.
	// On an IPv6-only (Nitro) instance it is http://[fd00:ec2::254].
	DefaultIMDSEndpoint = "http://169.254.169.254"
	// DefaultIMDSTokenTTL is the lifetime the host asks for its IMDSv2
	// session tokens: the longest IMDS grants (21600 s).
	DefaultIMDSTokenTTL = 6 * time.Hour

	// maxIMDSBody caps every body read from IMDS, maxIMDSHeaderBytes the
	// headers of its answers.
	maxIMDSBody        = 64 << 10
	maxIMDSHeaderBytes = 16 << 10
	// maxIMDSToken caps an IMDSv2 session token (IMDS's are 56 bytes).
	maxIMDSToken = 4096
	// maxRoleNameLen is IAM's cap on a role name.
	maxRoleNameLen = 64
	// An access key id is 16 to 128 characters (IAM's AccessKeyId).
	minAccessKeyIDLen = 16
	maxAccessKeyIDLen = 128

	imdsTokenPath    = "/latest/api/token"
	imdsMetadataPath = "/latest/meta-data/"
	imdsRolesPath    = imdsMetadataPath + "iam/security-credentials/"
	imdsTTLHeader    = "X-aws-ec2-metadata-token-ttl-seconds"
)

// ErrNoInstanceRole is returned (wrapped) when IMDS says the instance has no
// IAM role: no instance profile is attached, or it has no role.
var ErrNoInstanceRole = errors.New("host: IMDS: the instance has no IAM role (attach an instance profile)")

// Credentials are AWS credentials for the enclave's KMS requests: the
// instance role's temporary ones (with a session token), or long-term ones
// in development. Expires is when they stop working.
//
// Printed with fmt (any verb), logged with slog or encoded as JSON,
// Credentials show the access key id and the expiry, never the secret
// access key or the session token. fmt cannot call the methods of a value
// in an unexported struct field, though: never keep Credentials in one of
// a value that is printed.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// String describes c without its secrets.
func (c Credentials) String() string {
	var b strings.Builder
	b.WriteString("host.Credentials{")
	if c.AccessKeyID == "" {
		b.WriteString("no access key id")
	} else {
		b.WriteString(c.AccessKeyID)
	}
	if c.SessionToken != "" {
		b.WriteString(", temporary")
	}
	if !c.Expires.IsZero() {
		b.WriteString(", expires " + c.Expires.UTC().Format(time.RFC3339))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is for %#v: the fields, with the secrets redacted.
func (c Credentials) GoString() string {
	return fmt.Sprintf("host.Credentials{AccessKeyID:%q, SecretAccessKey:%s, SessionToken:%s, Expires:%q}",
		c.AccessKeyID, redacted(c.SecretAccessKey), redacted(c.SessionToken), c.Expires.UTC().Format(time.RFC3339))
}

// Format makes every fmt verb print String (GoString for %#v), so that no
// verb prints the fields.
func (c Credentials) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, c.String(), c.GoString())
}

// MarshalJSON encodes what String shows, so that a Credentials in a JSON
// document (a debug dump, a JSON log line) does not carry the secrets
// either. Whatever carries credentials to the enclave copies the fields.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID string    `json:"access_key_id"`
		Temporary   bool      `json:"temporary"`
		Expires     time.Time `json:"expires"`
	}{c.AccessKeyID, c.SessionToken != "", c.Expires.UTC()})
}

// LogValue logs the access key id and the expiry.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", c.AccessKeyID),
		slog.Bool("temporary", c.SessionToken != ""),
		slog.Time("expires", c.Expires.UTC()),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// formatRedacted writes s for every verb but %#v (gos) and %q (s quoted):
// it implements fmt.Formatter for types with secret fields.
func formatRedacted(f fmt.State, verb rune, s, gos string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, gos)
	case verb == 'q':
		io.WriteString(f, strconv.Quote(s))
	default:
		io.WriteString(f, s)
	}
}

// A CredentialSource fetches the credentials to push to the enclave. Fetch
// returns credentials that have not expired, or an error that contains no
// secret.
type CredentialSource interface {
	Fetch(ctx context.Context) (Credentials, error)
}

// IMDSConfig configures an IMDS. The zero value of every field means its
// default; nothing is read from the environment.
type IMDSConfig struct {
	// Endpoint is the metadata service's base URL, http://HOST[:PORT]
	// (default DefaultIMDSEndpoint).
	Endpoint string
	// TokenTTL is the lifetime asked for IMDSv2 session tokens, whole
	// seconds from 1 s to 6 h (default DefaultIMDSTokenTTL).
	TokenTTL time.Duration
	// Now is the clock for credential expiry (default time.Now). Session
	// tokens are cached by the SDK's client, on the wall clock.
	Now func() time.Time
}

// IMDS fetches the instance role's credentials from the EC2 instance
// metadata service with aws-sdk-go-v2's feature/ec2/imds client, IMDSv2
// only: the client gets a session token (PUT /latest/api/token), and the
// host reads the role's name (GET
// /latest/meta-data/iam/security-credentials/) and then its credentials
// (GET …/security-credentials/ROLE), the client sending the token with
// both. The client reuses the token until shortly before it expires, and
// gets a new one when IMDS answers 401 (a token IMDS no longer accepts).
//
// # Why the SDK, and how it is held
//
// The host is outside the enclave's trusted boundary: the credentials it
// fetches only let the enclave call KMS, whose answers the enclave checks
// itself, so the metadata protocol (tokens, their renewal, retries) is
// better left to the SDK that AWS maintains than written by hand. The
// client is configured so that nothing but IMDSv2 is spoken and nothing
// comes from the environment:
//
//   - IMDSv1 fallback is off (EnableFallback false): when the token PUT
//     fails (403 when IMDS is disabled or reached through a forwarder,
//     404, 405), Fetch fails rather than asking without a token.
//   - The endpoint and the enabled state are set explicitly, so
//     AWS_EC2_METADATA_SERVICE_ENDPOINT and AWS_EC2_METADATA_DISABLED are
//     not read; the HTTP client has no proxy (HTTP_PROXY is not read),
//     follows no redirects (a redirect is an unexpected status), gives up
//     on a connection after 2 s and on a request after 5 s, and reads at
//     most 64 KiB of any answer (4 KiB of a token), refusing a larger one
//     rather than cutting it.
//   - One retry, at once: it covers a token IMDS refused (401) and a
//     transient failure; the CredentialRefresher backs off beyond that.
//
// The host then parses the answers strictly (parseRole,
// parseIMDSCredentials): it refuses credentials whose Code is not
// Success, whose Type is not AWS-HMAC, that lack a field, or that have
// expired. Its errors contain no credential, token or body.
//
// Its methods are safe for concurrent use; Fetches run one at a time.
type IMDS struct {
	endpoint string
	now      func() time.Time
	client   *imds.Client
	http     *imdsHTTPClient

	mu sync.Mutex
}

var _ CredentialSource = (*IMDS)(nil)

// NewIMDS returns an IMDS. It makes no request.
func NewIMDS(cfg *IMDSConfig) (*IMDS, error) {
	var c IMDSConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultIMDSEndpoint
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("host: IMDS endpoint %q: want http://HOST[:PORT]", c.Endpoint)
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultIMDSTokenTTL
	}
	if c.TokenTTL < time.Second || c.TokenTTL > DefaultIMDSTokenTTL || c.TokenTTL%time.Second != 0 {
		return nil, fmt.Errorf("host: IMDS token lifetime %s: want whole seconds from 1 s to 6 h", c.TokenTTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	endpoint := "http://" + u.Host
	tr := &http.Transport{
		Proxy:                  nil, // IMDS is link-local: never through a proxy
		DialContext:            (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout:  5 * time.Second,
		MaxIdleConns:           2,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: maxIMDSHeaderBytes,
		DisableCompression:     true,
	}
	hc := &imdsHTTPClient{
		ttl: c.TokenTTL,
		client: &http.Client{
			Transport: tr,
			Timeout:   5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is an unexpected status
			},
		},
	}
	client := imds.New(imds.Options{
		Endpoint:          endpoint,
		ClientEnableState: imds.ClientEnabled,
		EnableFallback:    aws.FalseTernary,
		HTTPClient:        hc,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
		// The SDK's 1 s cap on its own jittered backoff would
		// replace the zero one above.
		DisableDefaultMaxBackoff: true,
		Logger:                   logging.Nop{},
	})
	return &IMDS{endpoint: endpoint, now: c.Now, client: client, http: hc}, nil
}

// String names the endpoint.
func (m *IMDS) String() string { return "host.IMDS{" + m.endpoint + "}" }

// Format prints String for every verb, so that no verb prints the token.
func (m *IMDS) Format(f fmt.State, verb rune) { formatRedacted(f, verb, m.String(), m.String()) }

// Fetch returns the instance role's current credentials.
func (m *IMDS) Fetch(ctx context.Context) (Credentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(ctx, imdsRolesPath)
	if err != nil {
		return Credentials{}, fmt.Errorf("host: IMDS: listing the instance role: %w", err)
	}
	role, err := parseRole(b)
	if err != nil {
		return Credentials{}, fmt.Errorf("host: IMDS: %w", err)
	}
	b, err = m.get(ctx, imdsRolesPath+role)
	if err != nil {
		return Credentials{}, fmt.Errorf("host: IMDS: the credentials of role %s: %w", role, err)
	}
	c, err := parseIMDSCredentials(b, m.now())
	if err != nil {
		return Credentials{}, fmt.Errorf("host: IMDS: the credentials of role %s: %w", role, err)
	}
	return c, nil
}

// get GETs the metadata at path (under /latest/meta-data/) and returns
// its body, read through the capped client.
//
// Its errors are the host's own words for the last exchange with IMDS,
// which the HTTP client records (imdsHTTPClient.failure): the SDK's
// errors carry layers of operation names and request ids that tell an
// operator little, and do not always unwrap to the HTTP status (its token
// provider's errors do not unwrap). Fetches run one at a time, so the
// last exchange is this get's.
func (m *IMDS) get(ctx context.Context, path string) ([]byte, error) {
	m.http.reset()
	out, err := m.client.GetMetadata(ctx, &imds.GetMetadataInput{Path: strings.TrimPrefix(path, imdsMetadataPath)})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer: %w", ctx.Err())
		}
		if f := m.http.failure(); f != nil {
			return nil, f
		}
		return nil, err
	}
	defer out.Content.Close()
	// The body was read in full already, through imdsHTTPClient's cap.
	b, err := io.ReadAll(io.LimitReader(out.Content, maxIMDSBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(b) > maxIMDSBody {
		return nil, errIMDSTooLarge(maxIMDSBody)
	}
	return b, nil
}

// imdsAnswerError is an answer the host's HTTP client refused: too large,
// or not a token. It is not retried.
type imdsAnswerError struct{ msg string }

func (e *imdsAnswerError) Error() string        { return e.msg }
func (e *imdsAnswerError) RetryableError() bool { return false }

func errIMDSTooLarge(n int64) error {
	return &imdsAnswerError{fmt.Sprintf("the answer is larger than %d bytes", n)}
}

// imdsHTTPClient is the SDK client's HTTP client: it sends the token
// lifetime the host asks for, caps every answer, checks a token before
// the SDK caches it, and records why the last exchange failed.
type imdsHTTPClient struct {
	ttl    time.Duration
	client *http.Client

	mu   sync.Mutex
	fail error // of the last exchange; nil if it succeeded
}

// reset forgets the last exchange's failure.
func (c *imdsHTTPClient) reset() {
	c.mu.Lock()
	c.fail = nil
	c.mu.Unlock()
}

// failure returns why the last exchange failed, nil if it did not.
func (c *imdsHTTPClient) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fail
}

// Do sends req and returns its answer with the body read in full, at most
// maxIMDSBody bytes of it (maxIMDSToken of a token).
//
// For a token PUT it sets the lifetime header to the configured one (the
// SDK asks for 5 minutes), checks the token, and answers the SDK with a
// lifetime a little shorter than granted, so that the cached token is
// renewed before IMDS stops accepting it rather than after a 401.
func (c *imdsHTTPClient) Do(req *http.Request) (*http.Response, error) {
	isToken := req.Method == http.MethodPut && req.URL.Path == imdsTokenPath
	resp, err := c.do(req, isToken)
	if err == nil && resp.StatusCode != http.StatusOK {
		switch {
		case isToken:
			// 403: IMDS is disabled, or the request came through a
			// forwarder; 404, 405: no IMDSv2 here. There is no
			// fallback to IMDSv1.
			c.record(fmt.Errorf("getting a session token: HTTP %d", resp.StatusCode))
		case resp.StatusCode == http.StatusUnauthorized:
			// The SDK retries a 401 once, with a new token.
			c.record(errors.New("HTTP 401 with a new session token"))
		default:
			c.record(fmt.Errorf("HTTP %d", resp.StatusCode))
		}
		return resp, nil
	}
	if err != nil && isToken {
		err = fmt.Errorf("getting a session token: %w", err)
	}
	c.record(err)
	return resp, err
}

func (c *imdsHTTPClient) record(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

func (c *imdsHTTPClient) do(req *http.Request, isToken bool) (*http.Response, error) {
	limit := int64(maxIMDSBody)
	if isToken {
		limit = maxIMDSToken
		req.Header.Set(imdsTTLHeader, strconv.FormatInt(int64(c.ttl/time.Second), 10))
	}
	req.Header.Set("User-Agent", "nitrosign-host")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err // a *url.Error: method, URL and cause, no header
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, errIMDSTooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, errIMDSTooLarge(limit)
	}
	if isToken && resp.StatusCode == http.StatusOK {
		if !validToken(body) {
			return nil, &imdsAnswerError{"the answer is not a token"}
		}
		secs, err := strconv.ParseInt(resp.Header.Get(imdsTTLHeader), 10, 64)
		if err != nil || secs < 1 || secs > int64(DefaultIMDSTokenTTL/time.Second) {
			return nil, &imdsAnswerError{"the token's lifetime header is not 1 to 21600 seconds"}
		}
		ttl := time.Duration(secs) * time.Second
		ttl -= min(ttl/10, time.Minute)
		resp.Header.Set(imdsTTLHeader, strconv.FormatInt(max(int64(ttl/time.Second), 1), 10))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// validToken reports whether b can be sent as the token header.
func validToken(b []byte) bool {
	if len(b) == 0 || len(b) > maxIMDSToken {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// parseRole returns the one role name in IMDS's listing.
func parseRole(b []byte) (string, error) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return "", ErrNoInstanceRole
	}
	if lines := strings.Count(s, "\n") + 1; lines > 1 {
		return "", fmt.Errorf("IMDS lists %d roles; want exactly one", lines)
	}
	if !validRoleName(s) {
		return "", errors.New("IMDS lists a role whose name is not a valid IAM role name")
	}
	return s, nil
}

// validRoleName reports whether s is a valid IAM role name (1 to 64 of
// letters, digits and +=,.@_-), which is then safe in a URL path.
func validRoleName(s string) bool {
	if len(s) == 0 || len(s) > maxRoleNameLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("+=,.@_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// imdsCredentials is IMDS's answer for a role. Fields IMDS may add later
// are ignored, so that an addition does not stop the host.
type imdsCredentials struct {
	Code            string `json:"Code"`
	LastUpdated     string `json:"LastUpdated"`
	Type            string `json:"Type"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
}

// parseIMDSCredentials decodes and checks a role's credentials. Its errors
// name fields, never their values (but Code's and Type's, bounded).
func parseIMDSCredentials(b []byte, now time.Time) (Credentials, error) {
	var r imdsCredentials
	if err := json.Unmarshal(b, &r); err != nil {
		// Not the decoder's message: it could quote the body.
		var serr *json.SyntaxError
		var terr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &serr):
			return Credentials{}, fmt.Errorf("the answer is not one JSON object (syntax error at byte %d)", serr.Offset)
		case errors.As(err, &terr):
			return Credentials{}, fmt.Errorf("the answer's %s is not a %s", fieldName(terr.Field), terr.Type)
		default:
			return Credentials{}, errors.New("the answer is not a JSON object")
		}
	}
	if r.Code != "Success" {
		return Credentials{}, fmt.Errorf("IMDS answered Code %s, not Success", bounded(r.Code))
	}
	for _, f := range []struct{ name, v string }{
		{"LastUpdated", r.LastUpdated}, {"Type", r.Type}, {"AccessKeyId", r.AccessKeyID},
		{"SecretAccessKey", r.SecretAccessKey}, {"Token", r.Token}, {"Expiration", r.Expiration},
	} {
		if f.v == "" {
			return Credentials{}, fmt.Errorf("the answer has no %s", f.name)
		}
	}
	if r.Type != "AWS-HMAC" {
		return Credentials{}, fmt.Errorf("credentials of Type %s, not AWS-HMAC", bounded(r.Type))
	}
	if !validAccessKeyID(r.AccessKeyID) {
		return Credentials{}, errors.New("the AccessKeyId is not an access key id")
	}
	if _, err := time.Parse(time.RFC3339, r.LastUpdated); err != nil {
		return Credentials{}, errors.New("the LastUpdated is not an RFC 3339 time")
	}
	exp, err := time.Parse(time.RFC3339, r.Expiration)
	if err != nil {
		return Credentials{}, errors.New("the Expiration is not an RFC 3339 time")
	}
	if !now.Before(exp) {
		return Credentials{}, fmt.Errorf("the credentials expired at %s (now %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return Credentials{AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, SessionToken: r.Token, Expires: exp}, nil
}

// validAccessKeyID reports whether s looks like an access key id (16 to
// 128 letters and digits): it is printed and logged, so it must not be
// anything else.
func validAccessKeyID(s string) bool {
	if len(s) < minAccessKeyIDLen || len(s) > maxAccessKeyIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func fieldName(f string) string {
	if f == "" {
		return "top level"
	}
	return f
}

// bounded quotes a short, printable s, and describes anything else.
func bounded(s string) string {
	if len(s) > 32 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return fmt.Sprintf("(%d bytes, not shown)", len(s))
	}
	return strconv.Quote(s)
}

// StaticCredentials are fixed credentials for development, without IMDS:
// every Fetch returns them with an expiry Lifetime from now, so that a
// CredentialRefresher renews them like the instance role's. Like
// Credentials, they print, log and encode as JSON without their secrets.
type StaticCredentials struct {
	AccessKeyID, SecretAccessKey string
	// SessionToken is optional (long-term credentials have none).
	SessionToken string
	// Lifetime is the artificial lifetime of each Fetch's credentials
	// (default 1 h).
	Lifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var _ CredentialSource = StaticCredentials{}

// Fetch returns the credentials, expiring Lifetime from now.
func (s StaticCredentials) Fetch(ctx context.Context) (Credentials, error) {
	if err := ctx.Err(); err != nil {
		return Credentials{}, err
	}
	if s.AccessKeyID == "" || s.SecretAccessKey == "" {
		return Credentials{}, errors.New("host: static credentials without an access key id or secret access key")
	}
	life := s.Lifetime
	if life == 0 {
		life = time.Hour
	}
	if life < 0 {
		return Credentials{}, errors.New("host: static credentials with a negative lifetime")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken, Expires: now().Add(life)}, nil
}

// String describes s without its secrets.
func (s StaticCredentials) String() string {
	return "host.StaticCredentials{" + s.AccessKeyID + ", lifetime " + s.Lifetime.String() + "}"
}

// GoString is for %#v: the fields, with the secrets redacted.
func (s StaticCredentials) GoString() string {
	return fmt.Sprintf("host.StaticCredentials{AccessKeyID:%q, SecretAccessKey:%s, SessionToken:%s, Lifetime:%s}",
		s.AccessKeyID, redacted(s.SecretAccessKey), redacted(s.SessionToken), s.Lifetime)
}

// Format makes every fmt verb print String (GoString for %#v).
func (s StaticCredentials) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, s.String(), s.GoString())
}

// MarshalJSON encodes what String shows, without the secrets.
func (s StaticCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID string `json:"access_key_id"`
		Lifetime    string `json:"lifetime"`
	}{s.AccessKeyID, s.Lifetime.String()})
}

// LogValue logs the access key id and the lifetime.
func (s StaticCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", s.AccessKeyID), slog.Duration("lifetime", s.Lifetime))
}

// CredentialRefresherConfig configures a CredentialRefresher. Source and
// Push are required; the zero value of every other field means its default.
type CredentialRefresherConfig struct {
	// Source fetches the credentials: an *IMDS in production.
	Source CredentialSource
	// Push sends credentials to the enclave. Its errors are logged, so
	// they must not contain the credentials.
	Push func(context.Context, Credentials) error
	// Logger receives the refreshes and failures; nil discards them.
	Logger *slog.Logger
	// Margin is how long before their expiry credentials are refreshed at
	// the latest (default 15 min). IMDS makes new credentials available at
	// least 5 minutes before the old ones expire.
	Margin time.Duration
	// MinInterval is the shortest wait between successful refreshes
	// (default 1 min): credentials in their last Margin, which IMDS has not
	// rotated yet, are fetched again at this interval.
	MinInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure (defaults
	// 1 s and 1 min): it doubles from MinBackoff with each consecutive
	// failure up to MaxBackoff, and is then drawn at random from its upper
	// half.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one fetch and push (default 30 s).
	AttemptTimeout time.Duration
	// Now and After are the clock (defaults time.Now and time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// CredentialRefresher keeps the enclave's credentials fresh: Run fetches
// credentials from its source and pushes them, then waits until the
// earlier of Margin before their expiry and 80% of their remaining
// lifetime (never less than MinInterval) and does it again. After a
// failure, of the fetch or the push, it tries again with capped,
// jittered exponential backoff, logging each failure (without secrets): at
// level Error once the credentials last pushed will have expired by the
// next try, Warn before.
type CredentialRefresher struct {
	src            CredentialSource
	push           func(context.Context, Credentials) error
	log            *slog.Logger
	margin         time.Duration
	minInterval    time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	now            func() time.Time
	after          func(time.Duration) <-chan time.Time
	kick           chan struct{}

	mu      sync.Mutex
	expires time.Time // of the credentials last pushed
}

// NewCredentialRefresher returns a CredentialRefresher; call Run.
func NewCredentialRefresher(cfg *CredentialRefresherConfig) (*CredentialRefresher, error) {
	if cfg == nil || cfg.Source == nil || cfg.Push == nil {
		return nil, errors.New("host: a credential refresher needs a source and a push function")
	}
	c := *cfg
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Margin, 15*time.Minute)
	def(&c.MinInterval, time.Minute)
	def(&c.MinBackoff, time.Second)
	def(&c.MaxBackoff, time.Minute)
	def(&c.AttemptTimeout, 30*time.Second)
	if c.Margin < 0 || c.MinInterval < 0 || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff || c.AttemptTimeout < 0 {
		return nil, errors.New("host: credential refresher: negative durations, or MaxBackoff below MinBackoff")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	return &CredentialRefresher{
		src: c.Source, push: c.Push, log: c.Logger,
		margin: c.Margin, minInterval: c.MinInterval,
		minBackoff: c.MinBackoff, maxBackoff: c.MaxBackoff, attemptTimeout: c.AttemptTimeout,
		now: c.Now, after: c.After,
		kick: make(chan struct{}, 1),
	}, nil
}

// String describes r without its source's secrets.
func (r *CredentialRefresher) String() string {
	exp := r.Expires()
	if exp.IsZero() {
		return "host.CredentialRefresher{nothing pushed}"
	}
	return "host.CredentialRefresher{pushed credentials expire " + exp.UTC().Format(time.RFC3339) + "}"
}

// Format prints String for every verb, so that no verb prints the source.
func (r *CredentialRefresher) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, r.String(), r.String())
}

// Expires returns the expiry of the credentials last pushed, zero if none
// were.
func (r *CredentialRefresher) Expires() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expires
}

// Refresh makes Run fetch and push credentials now rather than at the next
// refresh point: for example when the enclave restarted and has none. It
// does not wait; requests made during an attempt coalesce into one more
// attempt after it.
func (r *CredentialRefresher) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run refreshes the credentials until ctx is done, starting at once. Call
// it once at a time.
func (r *CredentialRefresher) Run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		var wait time.Duration
		prev := r.Expires()
		c, err := r.once(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = r.backoff(failures)
			r.logFailure(ctx, err, failures, wait)
		default:
			failures = 0
			wait = r.nextRefresh(c.Expires, r.now())
			level := slog.LevelInfo
			if c.Expires.Equal(prev) {
				level = slog.LevelDebug // the source has not rotated them yet
			}
			r.log.Log(ctx, level, "credentials pushed to the enclave", "credentials", c, "next_refresh_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.after(wait):
		case <-r.kick:
		}
	}
}

// once fetches credentials and pushes them.
func (r *CredentialRefresher) once(ctx context.Context) (Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
	defer cancel()
	c, err := r.src.Fetch(ctx)
	if err != nil {
		return Credentials{}, fmt.Errorf("fetching credentials: %w", err)
	}
	if now := r.now(); !now.Before(c.Expires) {
		return Credentials{}, fmt.Errorf("fetching credentials: the source returned credentials that expired at %s (now %s)",
			c.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if err := r.push(ctx, c); err != nil {
		return Credentials{}, fmt.Errorf("pushing credentials to the enclave: %w", err)
	}
	r.mu.Lock()
	r.expires = c.Expires
	r.mu.Unlock()
	return c, nil
}

// nextRefresh is the wait after pushing credentials that expire at exp.
func (r *CredentialRefresher) nextRefresh(exp, now time.Time) time.Duration {
	life := exp.Sub(now)
	return max(min(life-r.margin, life-life/5), r.minInterval)
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1).
func (r *CredentialRefresher) backoff(n int) time.Duration {
	d := r.maxBackoff
	if n <= 62 {
		if b := r.minBackoff << (n - 1); b > 0 && b>>(n-1) == r.minBackoff && b < d {
			d = b
		}
	}
	half := d / 2
	return d - half + rand.N(half+1)
}

func (r *CredentialRefresher) logFailure(ctx context.Context, err error, n int, wait time.Duration) {
	level := slog.LevelWarn
	if n == 1 && r.Expires().IsZero() {
		level = slog.LevelInfo // the first push, usually before the enclave listens
	}
	args := []any{"err", err, "attempt", n, "retry_in", wait}
	if exp := r.Expires(); !exp.IsZero() {
		args = append(args, "pushed_credentials_expire", exp.UTC())
		if !r.now().Add(wait).Before(exp) {
			level = slog.LevelError
		}
	}
	r.log.Log(ctx, level, "credential refresh failed", args...)
}
