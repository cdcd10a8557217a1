package ethproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// DefaultMaxResponse caps a node's answer when Options.MaxResponse is
// zero: room for large eth_getLogs and block answers, bounded all the same.
const DefaultMaxResponse = 32 << 20

// ErrUpstream is wrapped by every error that says the node could not be
// asked or did not answer well: unreachable, an HTTP error without a
// JSON-RPC answer, an answer too large or malformed. An error the node
// itself answered is a *jsonrpc.Error instead.
var ErrUpstream = errors.New("ethproxy: upstream node")

// upstream is a JSON-RPC 2.0 client of the node over HTTP.
type upstream struct {
	url     string
	hc      *http.Client
	maxResp int
	id      atomic.Uint64
}

// wireResponse is a node's answer as sent. Result is nil when absent and
// the JSON null when null.
type wireResponse struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

type wireError struct {
	Code    *int            `json:"code"`
	Message *string         `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func upstreamErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUpstream, fmt.Sprintf(format, args...))
}

// call sends method with params (raw JSON: an array or an object, or nil)
// and returns the result. A node's error is a *jsonrpc.Error with the
// node's code, message and data (raw).
func (u *upstream) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	id := u.id.Add(1)
	body, err := jsonrpc.Request{Method: method, Params: params, ID: json.RawMessage(strconv.FormatUint(id, 10))}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("ethproxy: encode %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUpstream, method, redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := u.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUpstream, method, redact(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(u.maxResp)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %w", ErrUpstream, method, redact(err))
	}
	if len(data) > u.maxResp {
		return nil, upstreamErr("%s: answer exceeds the limit of %d bytes", method, u.maxResp)
	}
	result, err := decodeResponse(data, id)
	if err != nil {
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) {
			return nil, rpcErr
		}
		if resp.StatusCode/100 != 2 {
			return nil, upstreamErr("%s: answered HTTP %d", method, resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUpstream, method, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, upstreamErr("%s: answered HTTP %d with a result", method, resp.StatusCode)
	}
	return result, nil
}

// decodeResponse decodes a node's answer to the request with id: a
// JSON-RPC 2.0 response object (no batch), strictly, with exactly one of
// result and error. A node's error is returned as a *jsonrpc.Error.
func decodeResponse(data []byte, id uint64) (json.RawMessage, error) {
	var w wireResponse
	if err := strictjson.Unmarshal(data, &w, len(data)); err != nil {
		return nil, fmt.Errorf("malformed answer: %s", strings.TrimPrefix(err.Error(), "strictjson: "))
	}
	if string(w.JSONRPC) != `"2.0"` {
		return nil, errors.New(`malformed answer: "jsonrpc" is not "2.0"`)
	}
	if string(w.ID) != strconv.FormatUint(id, 10) {
		if string(w.ID) == "null" && w.Error != nil {
			// A node that could not read the request answers with a
			// null id; its error still says why.
		} else {
			return nil, errors.New("malformed answer: id does not match the request's")
		}
	}
	switch {
	case w.Result != nil && w.Error != nil:
		return nil, errors.New("malformed answer: both result and error")
	case w.Error != nil:
		var e wireError
		if len(w.Error) == 0 || w.Error[0] != '{' {
			return nil, errors.New("malformed answer: error is not an object")
		}
		if err := strictjson.Unmarshal(w.Error, &e, len(w.Error)); err != nil {
			return nil, fmt.Errorf("malformed answer: error: %s", strings.TrimPrefix(err.Error(), "strictjson: "))
		}
		if e.Code == nil || e.Message == nil {
			return nil, errors.New("malformed answer: error without code or message")
		}
		var d any
		if e.Data != nil && string(e.Data) != "null" {
			d = e.Data
		}
		return nil, &jsonrpc.Error{Code: *e.Code, Message: *e.Message, Data: d}
	case w.Result == nil:
		return nil, errors.New("malformed answer: neither result nor error")
	}
	return w.Result, nil
}

// redact removes the URL from a net/http error: the node's URL often
// carries an API key in its path or query, which must not reach logs or
// wallets.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// callQuantity calls method and decodes a quantity result.
func (u *upstream) callQuantity(ctx context.Context, method string, params json.RawMessage, bits int) (*big.Int, error) {
	res, err := u.call(ctx, method, params)
	if err != nil {
		return nil, err
	}
	x, err := parseQuantity(res, bits)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUpstream, method, err)
	}
	return x, nil
}

// parseQuantity decodes a canonical hex quantity string of at most bits
// bits.
func parseQuantity(raw json.RawMessage, bits int) (*big.Int, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, errors.New("result is not a quantity string")
	}
	digits, ok := strings.CutPrefix(s, "0x")
	switch {
	case !ok || digits == "":
		return nil, fmt.Errorf("quantity %.80q: want 0x and hex digits", s)
	case len(digits) > 1 && digits[0] == '0':
		return nil, fmt.Errorf("quantity %.80q has leading zeros", s)
	case len(digits) > bits/4:
		return nil, fmt.Errorf("quantity exceeds %d bits", bits)
	}
	for i := range len(digits) {
		if unhex(digits[i]) > 15 {
			return nil, fmt.Errorf("quantity %.80q is not hexadecimal", s)
		}
	}
	x, _ := new(big.Int).SetString(digits, 16)
	return x, nil
}

// params encodes call parameters as a JSON array, [] for none: the
// specification lets params be omitted, but not every node does.
func params(values ...any) json.RawMessage {
	if len(values) == 0 {
		return json.RawMessage("[]")
	}
	b, err := json.Marshal(values)
	if err != nil {
		panic(fmt.Sprintf("ethproxy: encoding parameters: %v", err)) // only values of this package
	}
	return b
}
