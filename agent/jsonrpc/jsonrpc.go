// Package jsonrpc is the JSON-RPC 2.0 codec the nitrosign agent speaks: the
// wire of Web3Signer's eth1 API and Clef's external API, over HTTP or a Unix
// socket. It decodes requests strictly, encodes responses, and adapts a
// dispatch function to an [http.Handler] and to a stream connection
// ([ServeStream]: go-ethereum's IPC framing, which rpc.Dial(path) and
// Clef's --ipcpath speak); what the methods mean is the agent's business.
//
// # Checks
//
// [Decode] reads a body from a wallet stack that has not been checked yet,
// so that every request it returns has exactly one meaning:
//   - a body longer than [MaxBody], not valid UTF-8 or not valid JSON is a
//     parse error ([CodeParseError]), answered with a null id;
//   - a batch (a top-level array) that is empty or longer than [MaxBatch]
//     is one Invalid Request ([CodeInvalidRequest]), as the specification
//     answers an empty batch;
//   - each request (the body, or each element of a batch) is decoded by
//     internal/strictjson: an object with no member but "jsonrpc", "method",
//     "params" and "id" (exactly so spelled), none of them twice, no lone
//     surrogate escape, nested no deeper than strictjson.MaxDepth;
//   - "jsonrpc" is the string "2.0"; "method" is a string of 1 to
//     [MaxMethod] bytes; "params" is absent, an array or an object; "id" is
//     absent (a notification), a string, a number or null.
//
// A request that fails these checks is returned with [Request.Invalid] set
// rather than failing the whole body, because the specification answers
// each bad element of a batch with its own Invalid Request and the others
// as usual.
//
// # Error codes
//
// The specification reserves -32768 to -32000; -32000 to -32099 are for the
// implementation, and the agent answers its refusals with the Code*
// constants in that range, so that a wallet can tell "the policy refused"
// from "try again later" without reading messages.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// Size caps. A signing request is a few kilobytes; a megabyte and a
// hundred requests leave room for any wallet's batch and bound what one
// body can cost.
const (
	MaxBody   = 1 << 20 // bytes in one HTTP body
	MaxBatch  = 100     // requests in one batch
	MaxMethod = 128     // bytes in a method name
)

// The standard error codes of the JSON-RPC 2.0 specification, section 5.1.
const (
	CodeParseError     = -32700 // the body is not valid JSON
	CodeInvalidRequest = -32600 // the JSON is not a valid request
	CodeMethodNotFound = -32601 // no such method
	CodeInvalidParams  = -32602 // the method's parameters are wrong
	CodeInternalError  = -32603 // the agent failed
)

// The agent's codes, in the range -32000 to -32099 that the specification
// leaves to implementations. A client may retry after the last two, never
// after the first; after CodeApprovalPending it waits for the approvers.
const (
	CodeRefused            = -32000 // the enclave's policy refused; Data says which rule
	CodeApprovalPending    = -32001 // held until approvers approve; Data says how to follow it
	CodeEnclaveUnavailable = -32002 // the enclave could not be reached or did not answer
	CodeAttestationFailed  = -32003 // the enclave's attestation did not verify
)

// Version is the value of every message's "jsonrpc" member.
const Version = "2.0"

// Error is a JSON-RPC error object. Data is any value encoding/json can
// encode, omitted when nil.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("jsonrpc: %s (%d)", e.Message, e.Code)
}

// NewError returns an error with code and the specification's message for
// the standard codes ("Server error" for others when message is empty).
func NewError(code int, message string, data any) *Error {
	if message == "" {
		message = standardMessage(code)
	}
	return &Error{Code: code, Message: message, Data: data}
}

func standardMessage(code int) string {
	switch code {
	case CodeParseError:
		return "Parse error"
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeMethodNotFound:
		return "Method not found"
	case CodeInvalidParams:
		return "Invalid params"
	case CodeInternalError:
		return "Internal error"
	}
	return "Server error"
}

// Request is one decoded request.
type Request struct {
	Method string
	// Params is the "params" member as sent (an array or an object), nil
	// when absent.
	Params json.RawMessage
	// ID is the "id" member exactly as sent (a string with its quotes, a
	// number as written, or null), nil for a notification. It is echoed
	// byte for byte, so that a client sees the id it sent even when its
	// number has more digits than a float64 holds.
	ID json.RawMessage
	// Invalid, when not nil, says why the request is not valid; it must
	// be answered with this error (a CodeInvalidRequest) and not
	// dispatched. ID is then the request's id if it was itself valid,
	// else nil, and the answer's id is null.
	Invalid *Error
}

// IsNotification reports whether r expects no response: a valid request
// without an id.
func (r Request) IsNotification() bool { return r.Invalid == nil && r.ID == nil }

// MarshalJSON encodes a valid request as a client would send it.
func (r Request) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params,omitempty"`
		ID      json.RawMessage `json:"id,omitempty"`
	}{Version, r.Method, r.Params, r.ID})
}

// marshal is json.Marshal without its HTML escaping, which would rewrite
// the "<", ">" and "&" of an id or params echoed as sent into \u escapes:
// equal to a JSON parser, but not the bytes the client sent.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wireRequest is a request's members as sent; each is checked by hand so
// that the reason a request is invalid can be said, and the id echoed.
type wireRequest struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
}

// Decode decodes a body of one request or a batch (batch is then true),
// with the checks in the package documentation. err is not nil when the
// body as a whole fails, and is then the only answer to give (with a null
// id); otherwise each request is valid or carries its Invalid error.
func Decode(body []byte) (reqs []Request, batch bool, err *Error) {
	if len(body) > MaxBody {
		return nil, false, NewError(CodeParseError, "", fmt.Sprintf("body of %d bytes exceeds the limit of %d", len(body), MaxBody))
	}
	if !utf8.Valid(body) {
		return nil, false, NewError(CodeParseError, "", "body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return nil, false, NewError(CodeParseError, "", "body is not a single valid JSON value")
	}
	body = bytes.TrimLeft(body, " \t\r\n")
	if body[0] != '[' {
		return []Request{decodeOne(body)}, false, nil
	}
	var elems []json.RawMessage
	if e := json.Unmarshal(body, &elems); e != nil {
		return nil, false, NewError(CodeParseError, "", "body is not a valid JSON array")
	}
	switch {
	case len(elems) == 0:
		return nil, true, NewError(CodeInvalidRequest, "", "empty batch")
	case len(elems) > MaxBatch:
		return nil, true, NewError(CodeInvalidRequest, "", fmt.Sprintf("batch of %d requests exceeds the limit of %d", len(elems), MaxBatch))
	}
	reqs = make([]Request, len(elems))
	for i, el := range elems {
		reqs[i] = decodeOne(el)
	}
	return reqs, true, nil
}

// decodeOne decodes one request from valid JSON.
func decodeOne(data []byte) Request {
	var w wireRequest
	if err := strictjson.Unmarshal(data, &w, MaxBody); err != nil {
		return Request{Invalid: invalid(strings.TrimPrefix(err.Error(), "strictjson: "))}
	}
	var r Request
	idErr := checkID(w.ID)
	if idErr == "" {
		r.ID = w.ID
	}
	for _, e := range []string{idErr, checkVersion(w.JSONRPC), checkParams(w.Params)} {
		if e != "" {
			r.Invalid = invalid(e)
			return r
		}
	}
	m, e := checkMethod(w.Method)
	if e != "" {
		r.Invalid = invalid(e)
		return r
	}
	r.Method, r.Params = m, w.Params
	return r
}

func invalid(why string) *Error { return NewError(CodeInvalidRequest, "", why) }

func checkVersion(v json.RawMessage) string {
	var s string
	if v == nil || v[0] != '"' || json.Unmarshal(v, &s) != nil || s != Version {
		return `"jsonrpc" must be the string "2.0"`
	}
	return ""
}

func checkMethod(v json.RawMessage) (string, string) {
	var s string
	if v == nil || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", `"method" must be a string`
	}
	if s == "" || len(s) > MaxMethod {
		return "", fmt.Sprintf(`"method" must be 1 to %d bytes`, MaxMethod)
	}
	return s, ""
}

func checkParams(v json.RawMessage) string {
	if v != nil && v[0] != '[' && v[0] != '{' {
		return `"params" must be an array or an object`
	}
	return ""
}

func checkID(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	switch c := v[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9', string(v) == "null":
		return ""
	}
	return `"id" must be a string, a number or null`
}

// Response is one response. Exactly one of Result and Error is used: Error
// when not nil, else Result (nil encodes as null).
type Response struct {
	ID     json.RawMessage // nil encodes as null
	Result any
	Error  *Error
}

// ResponseTo returns the response to r with result or err: Invalid
// overrides both.
func ResponseTo(r Request, result any, err *Error) Response {
	if r.Invalid != nil {
		err = r.Invalid
	}
	return Response{ID: r.ID, Result: result, Error: err}
}

type wireResult struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  any             `json:"result"`
	ID      json.RawMessage `json:"id"`
}

type wireError struct {
	JSONRPC string          `json:"jsonrpc"`
	Error   *Error          `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// errEncode is the fallback when a result or an error's Data cannot be
// encoded: the client learns the agent failed, not what it held.
var errEncode = errors.New("jsonrpc: response cannot be encoded")

// encodeOne encodes r. A result or Data that encoding/json refuses makes
// the response an internal error, so that a response is always sent.
func encodeOne(r Response) []byte {
	id := r.ID
	if id == nil {
		id = json.RawMessage("null")
	}
	var b []byte
	var err error
	if r.Error == nil {
		b, err = marshal(wireResult{Version, r.Result, id})
	} else {
		b, err = marshal(wireError{Version, r.Error, id})
	}
	if err != nil {
		// An id that is not JSON (a caller's bug: Decode keeps only
		// valid ones) is answered as null.
		fail := NewError(CodeInternalError, "", errEncode.Error())
		if b, err = marshal(wireError{Version, fail, id}); err != nil {
			b, _ = marshal(wireError{Version, fail, json.RawMessage("null")})
		}
	}
	return b
}

// Encode encodes one response (batch false, resps of length 1) or else a
// batch (an array, in the order of resps). Each response that cannot be
// encoded becomes an internal error with its id. Nothing is HTML-escaped,
// so that ids and results come back as they were given.
func Encode(resps []Response, batch bool) []byte {
	if !batch && len(resps) == 1 {
		return encodeOne(resps[0])
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, r := range resps {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(encodeOne(r))
	}
	buf.WriteByte(']')
	return buf.Bytes()
}
