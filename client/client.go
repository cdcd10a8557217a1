// Package client is the Go client for nitrosign's HTTP API, for hot-wallet
// services.
//
// Every POST is stamped: the client builds the body with a fresh request_id
// and timestamp_ms, signs the exact bytes with its registered key (see package
// stamp) and sends the signature in the stamp header, so that the enclave, not
// the host in front of it, authenticates the request. Refusals come back as
// [*APIError], which carries the HTTP status and the machine-readable code and
// rule: branch on the code. A request that waits for approvals (HTTP 202)
// comes back as [*PendingError]; approvers use [Client.Approval],
// [CheckApproval], [NewApproval] and [Client.Approve]. Code that builds
// its own HTTP requests stamps them with a [StampingTransport] instead.
//
// The client is not linked into the enclave. It decodes answers leniently
// (unknown fields are ignored) so that older clients keep working with newer
// servers; the server, on the other hand, is strict.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/stamp"
)

// Defaults for a nil or zero [Options].
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxResponseSize = 1 << 20
)

// requestIDBytes is the number of random bytes in a generated request_id.
const requestIDBytes = 16

// Options configures a [Client]. A nil *Options, and each zero field, means
// the default.
type Options struct {
	// HTTPClient sends the requests. The default has Timeout and refuses
	// redirects, so that a stamp is never sent to a host other than
	// baseURL's; a caller-supplied client should do the same.
	HTTPClient *http.Client
	// Timeout bounds each call of the default HTTPClient (default 10 s).
	Timeout time.Duration
	// Now returns the time stamped into timestamp_ms (default time.Now).
	Now func() time.Time
	// Rand supplies the 16 random bytes of each request_id (default
	// crypto/rand.Reader); it must be safe for concurrent use.
	Rand io.Reader
	// MaxResponseSize caps the bytes read from an answer (default 1 MiB).
	MaxResponseSize int64
}

// Client talks to one nitrosign-host. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	signer  stamp.Signer
	http    *http.Client
	now     func() time.Time
	rand    io.Reader
	maxResp int64
}

// APIError is a non-2xx answer: the HTTP status and the fields of the
// [api.Error] in the body. When the body is not a nitrosign error (say, a load
// balancer's 502 page), Code is empty and Message describes the answer.
//
// (It cannot embed api.Error: the embedded field would be named Error and
// hide the Error method, so *APIError would not be an error.)
type APIError struct {
	Status  int
	Code    string // one of the codes of package api/refusal (refusal.Code*)
	Rule    string // the rule that refused, if any (refusal.Rule*)
	Message string
}

// Error returns "client: HTTP <status>: <message> (<code>[, rule <rule>])".
func (e *APIError) Error() string {
	return fmt.Sprintf("client: HTTP %d: %s", e.Status, strings.TrimPrefix(e.Wire().Error(), "api: "))
}

// Wire returns the error as the server sent it (the "error" object of the body).
func (e *APIError) Wire() *api.Error {
	return &api.Error{Code: e.Code, Rule: e.Rule, Message: e.Message}
}

// Unwrap returns the [api.Error], so errors.As finds either type.
func (e *APIError) Unwrap() error { return e.Wire() }

// New returns a client for the nitrosign-host at baseURL (http or https, such
// as "https://signer.internal:8420"), stamping requests with signer. A nil
// signer makes a client that can only read (Keys, Health).
func New(baseURL string, signer stamp.Signer, opts *Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: base URL scheme %q, want http or https", u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("client: base URL must have a host and no user info, query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""

	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Client{base: u, signer: signer, http: o.HTTPClient, now: o.Now, rand: o.Rand, maxResp: o.MaxResponseSize}
	if c.http == nil {
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		c.http = &http.Client{
			Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.maxResp <= 0 {
		c.maxResp = DefaultMaxResponseSize
	}
	return c, nil
}

// SignTransaction asks the enclave to sign an unsigned Ethereum transaction
// (the typed envelope without signature, or the EIP-155 RLP list) with the
// signing key whose id or address is key.
func (c *Client) SignTransaction(ctx context.Context, key string, unsigned []byte) (*api.SignResponse, error) {
	if len(unsigned) == 0 {
		return nil, errors.New("client: empty transaction")
	}
	return c.Sign(ctx, &api.SignRequest{Key: key, EthTransaction: api.NewEthTransaction(unsigned)})
}

// SignTypedData asks for an EIP-712 signature over typed data in
// eth_signTypedData_v4 JSON form; the bytes are sent as they are.
func (c *Client) SignTypedData(ctx context.Context, key string, typedData []byte) (*api.SignResponse, error) {
	return c.Sign(ctx, &api.SignRequest{Key: key, EthTypedData: &api.EthTypedData{JSON: typedData}})
}

// SignPersonalMessage asks for an EIP-191 personal_sign signature over msg.
func (c *Client) SignPersonalMessage(ctx context.Context, key string, msg []byte) (*api.SignResponse, error) {
	return c.Sign(ctx, &api.SignRequest{Key: key, EthPersonalMessage: &api.EthPersonalMessage{Message: "0x" + hex.EncodeToString(msg)}})
}

// Sign stamps and sends req (see StampRequest) and returns the signature.
//
// A request above a policy's approval threshold is not signed at once: the
// host answers 202, and Sign returns a [*PendingError] carrying the pending
// request's id and approval digest (detect it with errors.As or
// [AsPending]); fetch the signature once approved with [Client.Approval] or
// [Client.WaitApproval].
func (c *Client) Sign(ctx context.Context, req *api.SignRequest) (*api.SignResponse, error) {
	body, st, err := c.StampRequest(req)
	if err != nil {
		return nil, err
	}
	var resp api.SignResponse
	var pending api.PendingResponse
	accepted, err := c.postAccept(ctx, "/v1/sign", body, st, &resp, &pending)
	if err != nil {
		return nil, err
	}
	if accepted {
		return nil, pendingError(&pending, body)
	}
	if resp.Signature == "" || resp.From == "" {
		return nil, errors.New("client: sign answer lacks from or signature")
	}
	return &resp, nil
}

// StampRequest fills in a fresh request_id and timestamp_ms where req has
// none, encodes it, and returns the body with its X-Nitrosign-Stamp header
// value, without sending anything: for tools that send the request
// themselves (`nitrosign sign --curl`). The request can be sent once (the
// enclave refuses its request_id again) and only while the enclave accepts
// its timestamp (five minutes).
func (c *Client) StampRequest(req *api.SignRequest) (body []byte, stampHeader string, err error) {
	if c.signer == nil {
		return nil, "", errors.New("client: no signer to stamp requests with")
	}
	r := *req
	if r.RequestID == "" {
		if r.RequestID, err = c.requestID(); err != nil {
			return nil, "", err
		}
	}
	if r.TimestampMS == 0 {
		r.TimestampMS = c.now().UnixMilli()
	}
	if err := r.Validate(); err != nil {
		return nil, "", fmt.Errorf("client: %w", err)
	}
	body, err = json.Marshal(&r)
	if err != nil {
		return nil, "", fmt.Errorf("client: encoding request: %w", err)
	}
	if len(body) > api.MaxBodySize {
		return nil, "", fmt.Errorf("client: request body is %d bytes, limit %d", len(body), api.MaxBodySize)
	}
	st, err := stamp.Create(c.signer, body)
	if err != nil {
		return nil, "", fmt.Errorf("client: %w", err)
	}
	return body, st, nil
}

// Keys lists the signing keys.
func (c *Client) Keys(ctx context.Context) (*api.KeysResponse, error) {
	var resp api.KeysResponse
	if err := c.get(ctx, "/v1/keys", &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Attestation fetches an attestation document carrying nonce (which may be
// empty) and returns its raw bytes (COSE_Sign1). Verify it with package
// attestation before trusting anything in it.
func (c *Client) Attestation(ctx context.Context, nonce []byte) ([]byte, error) {
	path := "/v1/attestation"
	if len(nonce) > 0 {
		path += "?nonce=" + hex.EncodeToString(nonce)
	}
	var resp api.AttestationResponse
	if err := c.get(ctx, path, &resp); err != nil {
		return nil, err
	}
	doc, err := base64.StdEncoding.DecodeString(resp.Document)
	if err != nil || len(doc) == 0 {
		return nil, errors.New("client: attestation answer is not a base64 document")
	}
	return doc, nil
}

// Health reports the state of the host and the enclave (GET /v1/health,
// the liveness probe): a degraded service answers with Status degraded and
// the reason in Error (a host from before /v1/ready answered it with 503,
// returned as an [*APIError]).
func (c *Client) Health(ctx context.Context) (*api.HealthResponse, error) {
	var resp api.HealthResponse
	if err := c.get(ctx, "/v1/health", &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (c *Client) requestID() (string, error) {
	b := make([]byte, requestIDBytes)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return "", fmt.Errorf("client: generating request_id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// postAccept posts body, stamped with stampHeader unless it is empty, and
// decodes a 200 answer into out, or a 202 answer into pending (accepted).
func (c *Client) postAccept(ctx context.Context, path string, body []byte, stampHeader string, out any, pending *api.PendingResponse) (accepted bool, err error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if stampHeader != "" {
		hreq.Header.Set(stamp.Header, stampHeader)
	}
	return c.exchange(hreq, out, pending)
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return c.do(hreq, out)
}

func (c *Client) url(path string) string {
	u := *c.base
	path, u.RawQuery, _ = strings.Cut(path, "?")
	u.Path += path
	return u.String()
}

// do sends hreq and decodes a 200 answer into out. Any other 2xx is an error
// rather than an empty result: a 202 "approval needed" must never be
// mistaken for a signature.
func (c *Client) do(hreq *http.Request, out any) error {
	_, err := c.exchange(hreq, out, nil)
	return err
}

// exchange is do, except that with a non-nil pending a 202 answer is
// decoded into pending (accepted true) rather than refused. A 202 that is
// not a pending approval is an error.
func (c *Client) exchange(hreq *http.Request, out any, pending *api.PendingResponse) (accepted bool, err error) {
	hreq.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return false, fmt.Errorf("client: %s %s: %w", hreq.Method, hreq.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return false, fmt.Errorf("client: %s %s: reading answer: %w", hreq.Method, hreq.URL.Path, err)
	}
	if int64(len(data)) > c.maxResp {
		return false, fmt.Errorf("client: %s %s: answer larger than %d bytes", hreq.Method, hreq.URL.Path, c.maxResp)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("client: %s %s: decoding answer: %w", hreq.Method, hreq.URL.Path, err)
		}
		return false, nil
	case resp.StatusCode == http.StatusAccepted && pending != nil:
		if err := json.Unmarshal(data, pending); err != nil {
			return false, fmt.Errorf("client: %s %s: decoding 202 answer: %w", hreq.Method, hreq.URL.Path, err)
		}
		if pending.Status != api.StatusPendingApproval || pending.ApprovalID == "" {
			return false, fmt.Errorf("client: %s %s: 202 answer with status %q and approval_id %q is not a pending approval", hreq.Method, hreq.URL.Path, pending.Status, pending.ApprovalID)
		}
		return true, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, fmt.Errorf("client: %s %s: unexpected status %d, which this client does not handle", hreq.Method, hreq.URL.Path, resp.StatusCode)
	}
	apiErr := &APIError{Status: resp.StatusCode}
	var er api.ErrorResponse
	if err := json.Unmarshal(data, &er); err == nil && er.Error.Code != "" {
		apiErr.Code, apiErr.Rule, apiErr.Message = er.Error.Code, er.Error.Rule, er.Error.Message
	} else {
		apiErr.Message = fmt.Sprintf("HTTP %d %s, not a nitrosign error answer", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return false, apiErr
}
