package jsonrpc

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// DispatchFunc answers one valid request: a result that encoding/json can
// encode, or an error. It is called for notifications too, whose answer is
// dropped; a method that must be answered (eth_sendTransaction, say) should
// refuse a request for which r.IsNotification() is true.
type DispatchFunc func(ctx context.Context, r Request) (result any, err *Error)

// NewHTTPHandler returns a handler that serves JSON-RPC over HTTP with
// dispatch:
//   - only POST (405 with Allow: POST otherwise), with a Content-Type of
//     application/json, charset utf-8 if any (415 otherwise);
//   - a body of at most [MaxBody] bytes (413, with a parse error, beyond);
//   - a body that fails as a whole (see [Decode]), and a single request
//     that is invalid, are answered 400 with their error;
//   - otherwise 200 with the responses, a batch's in its order, or 204
//     when all requests were notifications.
//
// A batch's requests are dispatched one after another, in order, never
// concurrently: a wallet that sends two eth_sendTransaction in one batch
// expects nonces in that order, and a later request may depend on what an
// earlier one changed. Once the client has gone (the request's context
// is done), the remaining requests are not dispatched but answered with an
// internal error, so that nothing is signed for a client that cannot
// receive the answer.
func NewHTTPHandler(dispatch DispatchFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		if hr.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "jsonrpc: method not allowed, use POST", http.StatusMethodNotAllowed)
			return
		}
		if !jsonContentType(hr.Header.Get("Content-Type")) {
			http.Error(w, "jsonrpc: Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reply(w, http.StatusRequestEntityTooLarge, Encode([]Response{{Error: NewError(CodeParseError, "", "body exceeds the limit of 1 MiB")}}, false))
				return
			}
			http.Error(w, "jsonrpc: cannot read body", http.StatusBadRequest)
			return
		}
		reqs, batch, derr := Decode(body)
		if derr != nil {
			reply(w, http.StatusBadRequest, Encode([]Response{{Error: derr}}, false))
			return
		}
		if !batch && reqs[0].Invalid != nil {
			reply(w, http.StatusBadRequest, Encode([]Response{ResponseTo(reqs[0], nil, nil)}, false))
			return
		}
		resps := dispatchAll(hr.Context(), reqs, dispatch)
		if len(resps) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		reply(w, http.StatusOK, Encode(resps, batch))
	})
}

func reply(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // an error means the client has gone: nothing to tell it
}

// jsonContentType reports whether v is application/json, with no
// parameter but a UTF-8 charset (JSON is UTF-8, RFC 8259).
func jsonContentType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, p := range params {
		if k != "charset" || !strings.EqualFold(p, "utf-8") {
			return false
		}
	}
	return true
}

// dispatchAll answers the requests of one body in order: an invalid one
// with its error, a valid one with dispatch's answer, and, once ctx is
// done, the rest with an internal error, not dispatched. Notifications
// are dispatched but get no response.
func dispatchAll(ctx context.Context, reqs []Request, dispatch DispatchFunc) []Response {
	resps := make([]Response, 0, len(reqs))
	for _, r := range reqs {
		var result any
		var rerr *Error
		switch {
		case r.Invalid != nil:
		case ctx.Err() != nil:
			rerr = NewError(CodeInternalError, "", "request cancelled before dispatch")
		default:
			result, rerr = dispatch(ctx, r)
		}
		if !r.IsNotification() {
			resps = append(resps, ResponseTo(r, result, rerr))
		}
	}
	return resps
}
