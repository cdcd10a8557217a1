package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/stamp"
)

// ErrNotStamped is wrapped by every error with which a [StampingTransport]
// refuses a request it cannot stamp. Nothing is sent for such a request.
// (An [*http.Client] returns it inside a *url.Error; errors.Is finds it.)
var ErrNotStamped = errors.New("client: request not stamped")

// StampingTransport is an [http.RoundTripper] that stamps the requests it
// carries as [Client] stamps its own: it signs the exact bytes of the
// request body with its signer (package stamp) and sends the signature in
// the [stamp.Header]. It lets code that already speaks HTTP, with its own
// [http.Client] or generated API client, call nitrosign-host without holding
// a [Client]: put it in the http.Client's Transport.
//
// It stamps the body as it is, and changes nothing in it: the body must
// already carry its request_id and timestamp_ms (see [api.SignRequest]), and
// a body sent twice is a replay, which the enclave refuses
// (replayed_request). What the body must hold is the enclave's to check, not
// the transport's.
//
// RoundTrip reads the body once, at most [api.MaxBodySize] bytes, the cap of
// the host and of [Client.StampRequest], and sends a clone of the request
// with the body restored and the stamp header added; the caller's request is
// not modified, except that its body is consumed and closed, as the
// RoundTripper contract allows. It refuses, with an error wrapping
// [ErrNotStamped] and without sending anything:
//   - a body larger than api.MaxBodySize, or one that cannot be read;
//   - a POST, PUT or PATCH without a body: a stamp over nothing carries no
//     request_id, so it would never stop being valid;
//   - a request that already carries a stamp header;
//   - a body sent again because a server answered with a redirect: a stamp
//     goes to no server but the one the caller addressed (Client refuses
//     redirects for the same reason);
//   - any request when it has no signer, or when the signer fails.
//
// A request without a body, such as GET /v1/keys, is sent unstamped: the
// host's API authenticates bodies only. Every body is stamped, whatever the
// path, so that the rule does not depend on where the API is mounted: the
// transport is for a client's /v1/sign requests. Approvals and admin
// commands carry their own signatures and need no stamp (and an admin
// envelope may be larger than api.MaxBodySize).
//
// A StampingTransport is safe for concurrent use if its base and signer
// are.
type StampingTransport struct {
	base   http.RoundTripper
	signer stamp.Signer
}

// NewStampingTransport returns a transport that stamps requests with signer
// and sends them with base (nil: [http.DefaultTransport]).
func NewStampingTransport(base http.RoundTripper, signer stamp.Signer) *StampingTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &StampingTransport{base: base, signer: signer}
}

// RoundTrip stamps req's body, if it has one, and sends a clone of req with
// the base transport.
func (t *StampingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	if !hasBody && !needsBody(req.Method) {
		return t.base.RoundTrip(req)
	}
	body, err := t.readBody(req)
	if hasBody {
		// The contract: RoundTrip closes the body, on errors as well.
		req.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if len(body) == 0 && !needsBody(req.Method) {
		// An empty body, say of a GET: nothing to stamp, but the
		// caller's body is spent, so the clone carries none.
		out := req.Clone(req.Context())
		out.Body, out.GetBody, out.ContentLength = http.NoBody, nil, 0
		return t.base.RoundTrip(out)
	}
	if err := t.check(req, body); err != nil {
		return nil, err
	}
	st, err := stamp.Create(t.signer, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrNotStamped, req.Method, req.URL.Path, err)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	out.Header.Set(stamp.Header, st)
	return t.base.RoundTrip(out)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method, so that [http.Client.CloseIdleConnections]
// reaches it through the StampingTransport.
func (t *StampingTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// needsBody reports whether a request of this method is one the host
// authenticates: one that sends a body.
func needsBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// readBody reads req's body, at most api.MaxBodySize bytes, refusing a
// larger one without reading it all. A request without a body reads as
// empty.
func (t *StampingTransport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.ContentLength > api.MaxBodySize {
		return nil, t.refuse(req, fmt.Sprintf("body is %d bytes, limit %d", req.ContentLength, api.MaxBodySize))
	}
	// One byte past the cap is enough to know the body is too large.
	body, err := io.ReadAll(io.LimitReader(req.Body, api.MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: reading the body: %w", ErrNotStamped, req.Method, req.URL.Path, err)
	}
	if len(body) > api.MaxBodySize {
		return nil, t.refuse(req, fmt.Sprintf("body is larger than %d bytes", api.MaxBodySize))
	}
	return body, nil
}

// check refuses what RoundTrip must not stamp; the list is on
// StampingTransport.
func (t *StampingTransport) check(req *http.Request, body []byte) error {
	switch {
	case t.signer == nil:
		return t.refuse(req, "no signer to stamp requests with")
	case len(body) == 0:
		return t.refuse(req, "no body to stamp (a stamp over an empty body would never expire)")
	case len(req.Header.Values(stamp.Header)) > 0:
		return t.refuse(req, "the request already carries a "+stamp.Header+" header")
	case req.Response != nil:
		return t.refuse(req, fmt.Sprintf("not stamping a request redirected by a %d answer: a stamp goes only to the server the caller addressed", req.Response.StatusCode))
	}
	return nil
}

func (t *StampingTransport) refuse(req *http.Request, why string) error {
	return fmt.Errorf("%w: %s %s: %s", ErrNotStamped, req.Method, req.URL.Path, why)
}
