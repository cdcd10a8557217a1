package kmssim

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The protocol's constants.
const (
	contentType  = "application/x-amz-json-1.1"
	targetPrefix = "TrentService."
	// maxJSONDepth bounds the nesting of a request body (inputs nest at
	// most three deep; unknown members are ignored but still parsed).
	maxJSONDepth = 32
	// maxMessageValue bounds how much of a client's value an error quotes.
	maxMessageValue = 64
)

// apiError is an AWS error answer: the HTTP status, the error code sent as
// __type, and the message.
type apiError struct {
	status  int
	code    string
	message string
	// upper sends the message as "Message", as AWS does for its common
	// errors (AccessDeniedException); KMS's own errors use "message".
	upper bool
}

func (e *apiError) Error() string {
	if e.message == "" {
		return "kmssim: " + e.code
	}
	return "kmssim: " + e.code + ": " + e.message
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// Errors of the protocol layer, before an operation runs.
func errUnknownOperation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "UnknownOperationException", format, args...)
}

func errSerialization(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "SerializationException", format, args...)
}

// Errors of the operations, with the status codes of the KMS API model.
func errNotFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, "NotFoundException", format, args...)
}

func errMalformedPolicy(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "MalformedPolicyDocumentException", format, args...)
}

func errUnsupported(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "UnsupportedOperationException", format, args...)
}

func errIncorrectKey() *apiError {
	return newError(http.StatusBadRequest, "IncorrectKeyException",
		"The key ID in the request does not identify a CMK that can perform this operation.")
}

// errInvalidCiphertext is AWS's answer to a blob that does not decrypt, for
// whatever reason: it has no message.
func errInvalidCiphertext() *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidCiphertextException"}
}

func errDryRun() *apiError {
	return newError(http.StatusPreconditionFailed, "DryRunOperationException",
		"The request would have succeeded, but the DryRun option is set.")
}

func errInternal(format string, args ...any) *apiError {
	return newError(http.StatusInternalServerError, "KMSInternalException", format, args...)
}

// quote formats a client's string for an error message, cut short.
func quote(s string) string {
	if len(s) > maxMessageValue {
		cut := maxMessageValue
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return "'" + strings.ToValidUTF8(s, "\uFFFD") + "'"
}

// validation collects the failures of an input's constraints and reports
// them as AWS does: "2 validation errors detected: Value null at 'keyId'
// failed to satisfy constraint: Member must not be null; ...".
type validation []string

func (v *validation) add(value, member, constraint string) {
	*v = append(*v, fmt.Sprintf("Value %sat '%s' failed to satisfy constraint: Member must %s", value, member, constraint))
}

// required reports a missing member.
func (v *validation) required(member string, present bool) {
	if !present {
		v.add("null ", member, "not be null")
	}
}

// strLen checks a string member's length, when present.
func (v *validation) strLen(member string, s *string, lo, hi int) {
	if s == nil {
		return
	}
	n := utf8.RuneCountInString(*s)
	if n < lo {
		v.add(quote(*s)+" ", member, fmt.Sprintf("have length greater than or equal to %d", lo))
	} else if n > hi {
		v.add(quote(*s)+" ", member, fmt.Sprintf("have length less than or equal to %d", hi))
	}
}

// blobLen checks a blob member's length, when present (nil is absent).
func (v *validation) blobLen(member string, b []byte, lo, hi int) {
	if b == nil {
		return
	}
	if len(b) < lo {
		v.add("", member, fmt.Sprintf("have length greater than or equal to %d", lo))
	} else if len(b) > hi {
		v.add("", member, fmt.Sprintf("have length less than or equal to %d", hi))
	}
}

// intRange checks an integer member, when present.
func (v *validation) intRange(member string, n *int32, lo, hi int32) {
	if n == nil {
		return
	}
	if *n < lo {
		v.add(quote(strconv.Itoa(int(*n)))+" ", member, fmt.Sprintf("have value greater than or equal to %d", lo))
	} else if *n > hi {
		v.add(quote(strconv.Itoa(int(*n)))+" ", member, fmt.Sprintf("have value less than or equal to %d", hi))
	}
}

// enum checks a string member against its enumeration, when present.
func (v *validation) enum(member string, s *string, values ...string) {
	if s == nil {
		return
	}
	for _, ok := range values {
		if *s == ok {
			return
		}
	}
	v.add(quote(*s)+" ", member, "satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

func (v validation) err() *apiError {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return newError(http.StatusBadRequest, "ValidationException", "1 validation error detected: %s", v[0])
	default:
		return newError(http.StatusBadRequest, "ValidationException", "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
	}
}

// checkJSON reports whether data is one JSON value with no duplicate member
// name in any object and no nesting deeper than maxJSONDepth. encoding/json
// keeps the last of duplicate members; AWS does not document what it does,
// so the simulator refuses them rather than guess.
func checkJSON(data []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		names   map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	done := false // the top-level value is complete
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		} else if n == 0 {
			done = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !done {
				return errors.New("unexpected end of input")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if done {
			return errors.New("data after the top-level value")
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name, _ := tok.(string) // the decoder allows only strings here
			if _, dup := top.names[name]; dup {
				return fmt.Errorf("duplicate member %s", quote(name))
			}
			top.names[name] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxJSONDepth {
				return fmt.Errorf("nested deeper than %d", maxJSONDepth)
			}
			f := &frame{}
			if tok == json.Delim('{') {
				f = &frame{object: true, wantKey: true, names: map[string]struct{}{}}
			}
			stack = append(stack, f)
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		valueDone()
	}
}

// memberNames caches the JSON member names of input structs.
var memberNames sync.Map // reflect.Type → map[string]bool

func namesOf(t reflect.Type) map[string]bool {
	if m, ok := memberNames.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
	memberNames.Store(t, m)
	return m
}

// decodeObject decodes the JSON object data into v, a pointer to a struct,
// as AWS's JSON protocol servers read input: member names match exactly
// (encoding/json alone would match "keyid" to KeyId), unknown members are
// ignored, and null is the same as absent. Nested input structures decode
// through it too (see recipientInfo.UnmarshalJSON).
func decodeObject(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	if len(data) == 0 || data[0] != '{' {
		return errors.New("not a JSON object")
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	known := namesOf(reflect.TypeOf(v).Elem())
	for name := range all {
		if !known[name] {
			delete(all, name)
		}
	}
	filtered, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return json.Unmarshal(filtered, v)
}

// decodeInput decodes a request body into the operation's input v.
func decodeInput(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}") // as the SDKs send an empty input
	}
	if err := checkJSON(body); err != nil {
		return errSerialization("the request body is not valid JSON: %v", err)
	}
	if err := decodeObject(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var b64Err base64.CorruptInputError
		switch {
		case errors.As(err, &typeErr):
			return errSerialization("cannot read %s as %s for member %s", typeErr.Value, typeErr.Type, quote(typeErr.Field))
		case errors.As(err, &b64Err):
			return errSerialization("a blob member is not valid base64 (byte %d)", int64(b64Err))
		default:
			return errSerialization("the request body is not an input structure: %v", err)
		}
	}
	return nil
}

// epochSeconds is a timestamp as the JSON protocol writes it: seconds
// since the epoch, as a number with a fraction.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// newRequestID returns a random identifier for x-amzn-RequestId.
func newRequestID() string { return newUUID() }

// newUUID returns a random (version 4) UUID in its text form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return string(out)
}

// parseUUID reads a UUID in its text form, lower case only, as KMS writes
// key ids.
func parseUUID(s string) ([16]byte, bool) {
	var b [16]byte
	if len(s) != 36 {
		return b, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return b, false
			}
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b[j] = hi<<4 | lo
		j++
		i += 2
	}
	return b, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// serveHTTP answers one request: the protocol checks, authentication, then
// the operation. See the package documentation for the order and the
// errors.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	out, apiErr := s.handle(w, r)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Amzn-Requestid", newRequestID())
	if apiErr != nil {
		body := map[string]string{"__type": apiErr.code}
		if apiErr.message != "" {
			if apiErr.upper {
				body["Message"] = apiErr.message
			} else {
				body["message"] = apiErr.message
			}
		}
		b, _ := json.Marshal(body)
		w.WriteHeader(apiErr.status)
		w.Write(b)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"__type": "KMSInternalException", "message": "kmssim: encode the response"})
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(b)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	if r.Method != http.MethodPost {
		return nil, newError(http.StatusMethodNotAllowed, "UnknownOperationException", "the KMS JSON protocol takes POST requests, not %s", r.Method)
	}
	if r.URL.Path != "/" {
		return nil, newError(http.StatusNotFound, "UnknownOperationException", "the KMS JSON protocol is served at /, not %s", quote(r.URL.Path))
	}
	if r.ContentLength > int64(s.maxRequest) {
		return nil, s.errTooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.maxRequest)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, s.errTooLarge()
		}
		return nil, errSerialization("read the request body: %v", err)
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if target == "" {
		return nil, errUnknownOperation("no X-Amz-Target header")
	}
	run, known := operations[op]
	if !ok || !known {
		return nil, errUnknownOperation("unknown operation %s", quote(target))
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType && ct != "application/x-amz-json-1.0" {
		return nil, errUnknownOperation("Content-Type %s is not %s", quote(ct), contentType)
	}
	now := s.now()
	id, apiErr := s.authenticate(r, body, now)
	if apiErr != nil {
		return nil, apiErr
	}
	return run(s, &call{op: op, id: id, body: body, now: now})
}

func (s *Server) errTooLarge() *apiError {
	return newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "the request body is larger than %d bytes", s.maxRequest)
}
