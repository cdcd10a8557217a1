package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

// writeCorpus commits a table case as a FuzzDecodeSignRequest seed, with -update.
func writeCorpus(t *testing.T, name string, data []byte) {
	t.Helper()
	if *update && len(data) <= 1024 {
		fuzzseed.Write(t, "FuzzDecodeSignRequest", "table-"+name, data)
	}
}

const validBody = `{"request_id":"r-1","timestamp_ms":1700000000000,"key":"hot-1","eth_transaction":{"unsigned":"0x02c0"}}`

// msgBody returns validBody with its eth_transaction replaced by another
// payload field.
func msgBody(field, value string) string {
	return `{"request_id":"r-1","timestamp_ms":1700000000000,"key":"hot-1","` + field + `":` + value + `}`
}

// body returns validBody with field replaced by the raw JSON value, or
// removed when value is "".
func body(field, value string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validBody), &m); err != nil {
		panic(err)
	}
	if value == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeSignRequestAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want SignRequest
	}{
		{name: "valid", in: validBody, want: SignRequest{RequestID: "r-1", TimestampMS: 1700000000000, Key: "hot-1", EthTransaction: &EthTransaction{Unsigned: "0x02c0"}}},
		{name: "request_id all classes", in: body("request_id", `"AZaz09._:-"`)},
		{name: "request_id 128", in: body("request_id", `"`+strings.Repeat("a", 128)+`"`)},
		{name: "request_id one char", in: body("request_id", `"x"`)},
		{name: "timestamp 1", in: body("timestamp_ms", `1`)},
		{name: "timestamp max", in: body("timestamp_ms", `9223372036854775807`)},
		{name: "key punctuation", in: body("key", `"~!#$%&'()*+,-./:;<=>?@[]^_{|}"`)},
		{name: "key escaped quote and backslash", in: body("key", `"a\"b\\c"`)},
		{name: "key 128", in: body("key", `"`+strings.Repeat("k", 128)+`"`)},
		{name: "unsigned upper-case hex", in: body("eth_transaction", `{"unsigned":"0xABcd"}`)},
		{name: "unsigned one byte", in: body("eth_transaction", `{"unsigned":"0x00"}`)},
		{name: "whitespace", in: "\n{ \"request_id\" : \"r-1\" ,\"timestamp_ms\":1,\"key\":\"k\",\"eth_transaction\":{\"unsigned\":\"0x01\"}}\n"},
		{name: "unicode escape", in: body("request_id", `"r\u002d1"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeCorpus(t, "ok-"+tt.name, []byte(tt.in))
			got, err := DecodeSignRequest([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeSignRequest(%s): %v", tt.in, err)
			}
			if tt.want.RequestID != "" && !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeSignRequestRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code string
		want string // substring of the message
	}{
		{name: "empty", in: ``, code: refusal.CodeBadRequest, want: "empty input"},
		{name: "too large", in: `{"request_id":"` + strings.Repeat("a", MaxBodySize) + `"}`, code: refusal.CodeTooLarge, want: "limit 262144"},
		{name: "array", in: `[]`, code: refusal.CodeBadRequest, want: "want an object"},
		{name: "trailing", in: validBody + `{}`, code: refusal.CodeBadRequest, want: "trailing data"},
		{name: "invalid utf8", in: body("key", "\"k\xff\""), code: refusal.CodeBadRequest, want: "invalid UTF-8"},
		{name: "duplicate request_id", in: strings.Replace(validBody, `{`, `{"request_id":"r-2",`, 1), code: refusal.CodeBadRequest, want: `duplicate key "request_id"`},
		{name: "duplicate nested", in: body("eth_transaction", `{"unsigned":"0x01","unsigned":"0x02"}`), code: refusal.CodeBadRequest, want: `duplicate key "unsigned" in $.eth_transaction`},
		{name: "case-folded field", in: strings.Replace(validBody, `"key"`, `"KEY"`, 1), code: refusal.CodeBadRequest, want: `unknown field "KEY"`},
		{name: "unknown field", in: body("chain_id", `1`), code: refusal.CodeBadRequest, want: `unknown field "chain_id"`},
		{name: "unknown nested field", in: body("eth_transaction", `{"unsigned":"0x01","to":"0x"}`), code: refusal.CodeBadRequest, want: `unknown field "to" at $.eth_transaction`},
		{name: "request_id missing", in: body("request_id", ""), code: refusal.CodeBadRequest, want: "request_id: must be 1 to 128 characters, got 0"},
		{name: "request_id empty", in: body("request_id", `""`), code: refusal.CodeBadRequest, want: "request_id: must be 1 to 128"},
		{name: "request_id null", in: body("request_id", `null`), code: refusal.CodeBadRequest, want: "null is not allowed at $.request_id"},
		{name: "request_id number", in: body("request_id", `1`), code: refusal.CodeBadRequest, want: "cannot decode number into string at $.request_id"},
		{name: "request_id 129", in: body("request_id", `"`+strings.Repeat("a", 129)+`"`), code: refusal.CodeBadRequest, want: "request_id: must be 1 to 128 characters, got 129"},
		{name: "request_id space", in: body("request_id", `"r 1"`), code: refusal.CodeBadRequest, want: "request_id: character 1 is not one of"},
		{name: "request_id slash", in: body("request_id", `"r/1"`), code: refusal.CodeBadRequest, want: "request_id: character 1"},
		{name: "request_id non-ascii", in: body("request_id", `"ré"`), code: refusal.CodeBadRequest, want: "request_id: character 1"},
		{name: "request_id nul", in: body("request_id", `"r\u0000"`), code: refusal.CodeBadRequest, want: "request_id: character 1"},
		{name: "timestamp missing", in: body("timestamp_ms", ""), code: refusal.CodeBadRequest, want: "timestamp_ms: must be positive"},
		{name: "timestamp zero", in: body("timestamp_ms", `0`), code: refusal.CodeBadRequest, want: "timestamp_ms: must be positive"},
		{name: "timestamp negative", in: body("timestamp_ms", `-1`), code: refusal.CodeBadRequest, want: "timestamp_ms: must be positive"},
		{name: "timestamp float", in: body("timestamp_ms", `1700000000000.5`), code: refusal.CodeBadRequest, want: "cannot decode number 1700000000000.5 into int64 at $.timestamp_ms"},
		{name: "timestamp integral float", in: body("timestamp_ms", `1700000000000.0`), code: refusal.CodeBadRequest, want: "into int64"},
		{name: "timestamp exponent", in: body("timestamp_ms", `1.7e12`), code: refusal.CodeBadRequest, want: "cannot decode number 1.7e12"},
		{name: "timestamp exponent integer", in: body("timestamp_ms", `17e11`), code: refusal.CodeBadRequest, want: "cannot decode number 17e11"},
		{name: "timestamp overflow", in: body("timestamp_ms", `9223372036854775808`), code: refusal.CodeBadRequest, want: "into int64"},
		{name: "timestamp string", in: body("timestamp_ms", `"1700000000000"`), code: refusal.CodeBadRequest, want: "cannot decode string into int64"},
		{name: "timestamp null", in: body("timestamp_ms", `null`), code: refusal.CodeBadRequest, want: "null is not allowed"},
		{name: "key missing", in: body("key", ""), code: refusal.CodeBadRequest, want: "key: must be 1 to 128 characters, got 0"},
		{name: "key 129", in: body("key", `"`+strings.Repeat("k", 129)+`"`), code: refusal.CodeBadRequest, want: "key: must be 1 to 128 characters, got 129"},
		{name: "key space", in: body("key", `"hot 1"`), code: refusal.CodeBadRequest, want: "key: character 3 is not printable ASCII"},
		{name: "key tab", in: body("key", `"hot\t"`), code: refusal.CodeBadRequest, want: "key: character 3"},
		{name: "key del", in: body("key", `"hot\u007f"`), code: refusal.CodeBadRequest, want: "key: character 3"},
		{name: "key non-ascii", in: body("key", `"hötkey"`), code: refusal.CodeBadRequest, want: "key: character 1"},
		{name: "no payload", in: body("eth_transaction", ""), code: refusal.CodeBadRequest, want: "exactly one payload required (eth_transaction, eth_typed_data, eth_personal_message), got none"},
		{name: "two payloads", in: body("eth_personal_message", `{"message":"0x68690a"}`), code: refusal.CodeBadRequest, want: "got eth_transaction, eth_personal_message"},
		{name: "personal message empty", in: msgBody("eth_personal_message", `{"message":"0x"}`), code: refusal.CodeBadRequest, want: "eth_personal_message.message: is empty"},
		{name: "personal message not hex", in: msgBody("eth_personal_message", `{"message":"hello"}`), code: refusal.CodeBadRequest, want: `eth_personal_message.message: must start with "0x"`},
		{name: "personal message unknown field", in: msgBody("eth_personal_message", `{"message":"0x00","text":"a"}`), code: refusal.CodeBadRequest, want: `unknown field "text"`},
		{name: "typed data not object", in: msgBody("eth_typed_data", `"{}"`), code: refusal.CodeBadRequest, want: "eth_typed_data: must be a JSON object"},
		{name: "typed data array", in: msgBody("eth_typed_data", `[]`), code: refusal.CodeBadRequest, want: "eth_typed_data: must be a JSON object"},
		{name: "typed data null", in: msgBody("eth_typed_data", `null`), code: refusal.CodeBadRequest, want: "got none"},
		{name: "typed data duplicate key inside", in: msgBody("eth_typed_data", `{"primaryType":"A","primaryType":"B"}`), code: refusal.CodeBadRequest, want: `duplicate key "primaryType"`},
		{name: "null payload", in: body("eth_transaction", `null`), code: refusal.CodeBadRequest, want: "got none"},
		{name: "payload not object", in: body("eth_transaction", `"0x01"`), code: refusal.CodeBadRequest, want: "cannot decode string into api.EthTransaction"},
		{name: "unsigned missing", in: body("eth_transaction", `{}`), code: refusal.CodeBadRequest, want: `eth_transaction.unsigned: must start with "0x"`},
		{name: "unsigned 0x only", in: body("eth_transaction", `{"unsigned":"0x"}`), code: refusal.CodeBadRequest, want: "eth_transaction.unsigned: is empty"},
		{name: "unsigned no prefix", in: body("eth_transaction", `{"unsigned":"02c0"}`), code: refusal.CodeBadRequest, want: `must start with "0x"`},
		{name: "unsigned 0X prefix", in: body("eth_transaction", `{"unsigned":"0X02c0"}`), code: refusal.CodeBadRequest, want: `must start with "0x"`},
		{name: "unsigned odd", in: body("eth_transaction", `{"unsigned":"0x2c0"}`), code: refusal.CodeBadRequest, want: "odd number of hex digits (3)"},
		{name: "unsigned not hex", in: body("eth_transaction", `{"unsigned":"0xzz"}`), code: refusal.CodeBadRequest, want: "is not hex"},
		{name: "unsigned space", in: body("eth_transaction", `{"unsigned":"0x02 c0"}`), code: refusal.CodeBadRequest, want: "unsigned"},
		{name: "unsigned trailing newline", in: body("eth_transaction", `{"unsigned":"0x02c0\n"}`), code: refusal.CodeBadRequest, want: "unsigned"},
		{name: "unsigned null", in: body("eth_transaction", `{"unsigned":null}`), code: refusal.CodeBadRequest, want: "null is not allowed at $.eth_transaction.unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeCorpus(t, "bad-"+tt.name, []byte(tt.in))
			got, err := DecodeSignRequest([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeSignRequest(%s) = %+v, want an error", tt.in, got)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Code != tt.code || !strings.Contains(e.Message, tt.want) {
				t.Errorf("error = {%s %q}, want {%s ...%q...}", e.Code, e.Message, tt.code, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "api: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got != nil {
				t.Errorf("returned %+v with an error", got)
			}
		})
	}
}

// TestPayloads checks payloads() and that every payload field (every pointer
// field of SignRequest) is listed in payloadNames, so that a payload kind added
// later cannot escape the exactly-one check.
func TestPayloads(t *testing.T) {
	r := SignRequest{RequestID: "r", TimestampMS: 1, Key: "k"}
	if got := r.payloads(); len(got) != 0 {
		t.Errorf("payloads() = %v", got)
	}
	r.EthTransaction = NewEthTransaction([]byte{2, 0xc0})
	if got := r.payloads(); !reflect.DeepEqual(got, []string{"eth_transaction"}) {
		t.Errorf("payloads() = %v", got)
	}
	// Every pointer field after Key must be listed as a payload.
	typ := reflect.TypeFor[SignRequest]()
	var fields []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, name)
		}
	}
	if !reflect.DeepEqual(fields, payloadNames) {
		t.Errorf("pointer fields %v, payloadNames %v: a payload kind is missing from payloads()", fields, payloadNames)
	}
	// payloadCount, which Validate asks first, counts what payloads
	// lists, for every combination of payloads set.
	for mask := range 1 << len(payloadNames) {
		r := SignRequest{}
		if mask&1 != 0 {
			r.EthTransaction = &EthTransaction{}
		}
		if mask&2 != 0 {
			r.EthTypedData = &EthTypedData{}
		}
		if mask&4 != 0 {
			r.EthPersonalMessage = &EthPersonalMessage{}
		}
		if got, want := r.payloadCount(), len(r.payloads()); got != want {
			t.Errorf("payloads set %03b: payloadCount() = %d, len(payloads()) = %d", mask, got, want)
		}
	}
}

func TestEthTransactionBytes(t *testing.T) {
	tx := NewEthTransaction([]byte{0x02, 0xc0, 0xAB})
	if tx.Unsigned != "0x02c0ab" {
		t.Errorf("NewEthTransaction: %q", tx.Unsigned)
	}
	b, err := tx.Bytes()
	if err != nil || !bytes.Equal(b, []byte{0x02, 0xc0, 0xab}) {
		t.Errorf("Bytes() = %x, %v", b, err)
	}
	if b, err := (&EthTransaction{Unsigned: "0xABCD"}).Bytes(); err != nil || !bytes.Equal(b, []byte{0xab, 0xcd}) {
		t.Errorf("upper case: %x, %v", b, err)
	}
	for _, bad := range []string{"", "0x", "0x1", "0xg0", "02c0", "0X02", " 0x02", "0x02 ", "0x0x02"} {
		if _, err := (&EthTransaction{Unsigned: bad}).Bytes(); err == nil || !strings.HasPrefix(err.Error(), "api: eth_transaction.unsigned: ") {
			t.Errorf("Bytes(%q) error = %v", bad, err)
		}
	}
	if _, err := (*EthTransaction)(nil).Bytes(); err == nil {
		t.Error("nil Bytes() succeeded")
	}
}

func TestStatusFor(t *testing.T) {
	tests := []struct {
		code string
		want int
	}{
		{refusal.CodeBadRequest, http.StatusBadRequest},
		{refusal.CodeUnauthorized, http.StatusUnauthorized},
		{refusal.CodeStaleRequest, http.StatusUnauthorized},
		{refusal.CodeReplayedRequest, http.StatusUnauthorized},
		{refusal.CodePolicyDenied, http.StatusForbidden},
		{refusal.CodeUnknownKey, http.StatusNotFound},
		{refusal.CodeNotFound, http.StatusNotFound},
		{refusal.CodeMethodNotAllowed, http.StatusMethodNotAllowed},
		{refusal.CodeTooLarge, http.StatusRequestEntityTooLarge},
		{refusal.CodeUnsupportedTransactionType, http.StatusBadRequest},
		{refusal.CodeUnavailable, http.StatusServiceUnavailable},
		{refusal.CodeEnclaveUnavailable, http.StatusServiceUnavailable},
		{refusal.CodeInternal, http.StatusInternalServerError},
		{"", http.StatusInternalServerError},
		{"teapot", http.StatusInternalServerError},
		{"BAD_REQUEST", http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := refusal.Status(tt.code); got != tt.want {
			t.Errorf("refusal.Status(%q) = %d, want %d", tt.code, got, tt.want)
		}
		if got := (&Error{Code: tt.code}).Status(); got != tt.want {
			t.Errorf("Error{%q}.Status() = %d", tt.code, got)
		}
	}
}

func TestErrorJSON(t *testing.T) {
	resp := ErrorResponse{Error: Error{Code: refusal.CodePolicyDenied, Rule: "destination_allowlist", Message: "destination not allowlisted"}}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"error":{"code":"policy_denied","rule":"destination_allowlist","message":"destination not allowlisted"}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(ErrorResponse{Error: Error{Code: refusal.CodeBadRequest, Message: "m"}})
	if string(b) != `{"error":{"code":"bad_request","message":"m"}}` {
		t.Errorf("rule not omitted: %s", b)
	}
	var back ErrorResponse
	if err := json.Unmarshal([]byte(want), &back); err != nil || back.Error != resp.Error {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	var e error = &resp.Error
	if got := e.Error(); got != "api: destination not allowlisted (policy_denied, rule destination_allowlist)" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: refusal.CodeInternal}).Error(); got != "api: internal" {
		t.Errorf("Error() = %q", got)
	}
}

func TestResponseJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"sign", SignResponse{From: "0xab", Signature: "0x01", SignedTransaction: "0x02", TransactionHash: "0x03", AuditSeq: 7},
			`{"from":"0xab","signature":"0x01","signed_transaction":"0x02","transaction_hash":"0x03","audit_seq":7}`},
		{"sign without transaction", SignResponse{From: "0xab", Signature: "0x01"},
			`{"from":"0xab","signature":"0x01","audit_seq":0}`},
		{"keys", KeysResponse{Keys: []Key{{ID: "hot-1", Address: "0xAb", Path: "m/44'/60'/0'/0/0"}}},
			`{"keys":[{"id":"hot-1","address":"0xAb","path":"m/44'/60'/0'/0/0"}]}`},
		{"health degraded", HealthResponse{Status: StatusDegraded},
			`{"status":"degraded"}`},
		{"health ok", HealthResponse{Status: StatusOK, Enclave: &EnclaveHealth{Version: "v1", Keys: 2, PolicyVersion: 3, AuditSeq: 4, StartedAtMS: 5, UptimeMS: 6}},
			`{"status":"ok","enclave":{"version":"v1","keys":2,"policy_version":3,"audit_seq":4,"started_at_ms":5,"uptime_ms":6}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestValidateForClients(t *testing.T) {
	r := &SignRequest{RequestID: "r", TimestampMS: 1, Key: "k", EthTransaction: &EthTransaction{Unsigned: "0x"}}
	err := r.Validate()
	var e *Error
	if !errors.As(err, &e) || e.Code != refusal.CodeBadRequest || !strings.HasPrefix(e.Message, "eth_transaction.unsigned: ") {
		t.Errorf("Validate() = %v", err)
	}
}

// FuzzDecodeSignRequest checks that decoding never panics, that every error
// is an *Error with a known code, and that an accepted request re-encodes to
// a body that decodes to the same request.
func FuzzDecodeSignRequest(f *testing.F) {
	f.Add([]byte(validBody))
	f.Add([]byte(body("eth_transaction", `{"unsigned":"0xABcd"}`)))
	f.Add([]byte(`{"request_id":"a","timestamp_ms":1,"key":"k"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeSignRequest(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Code != refusal.CodeBadRequest && e.Code != refusal.CodeTooLarge) {
				t.Fatalf("unexpected error %T %v", err, err)
			}
			return
		}
		if _, err := req.EthTransaction.Bytes(); err != nil {
			t.Fatalf("accepted request with bad transaction bytes: %v", err)
		}
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSignRequest(out)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", out, err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
	})
}

func BenchmarkDecodeSignRequest(b *testing.B) {
	large := body("eth_transaction", `{"unsigned":"0x`+strings.Repeat("ab", (MaxBodySize-200)/2)+`"}`)
	for _, bb := range []struct {
		name string
		in   string
	}{{"small", validBody}, {"max", large}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.in)))
			for b.Loop() {
				if _, err := DecodeSignRequest([]byte(bb.in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDecodeMessagePayloads(t *testing.T) {
	typed := `{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}`
	req, err := DecodeSignRequest([]byte(msgBody("eth_typed_data", typed)))
	if err != nil {
		t.Fatal(err)
	}
	if string(req.EthTypedData.JSON) != typed {
		t.Errorf("typed data kept as %q, want the exact bytes %q", req.EthTypedData.JSON, typed)
	}
	req, err = DecodeSignRequest([]byte(msgBody("eth_personal_message", `{"message":"0x68690A"}`)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.EthPersonalMessage.Bytes()
	if err != nil || string(b) != "hi\n" {
		t.Errorf("personal message = %q, %v", b, err)
	}
	// Round trip through the client's encoder keeps the typed data bytes.
	out, err := json.Marshal(req)
	if err != nil || !strings.Contains(string(out), `"eth_personal_message":{"message":"0x68690A"}`) {
		t.Errorf("marshal = %s, %v", out, err)
	}
	td := &SignRequest{RequestID: "a", TimestampMS: 1, Key: "k", EthTypedData: &EthTypedData{JSON: json.RawMessage(typed)}}
	out, err = json.Marshal(td)
	if err != nil || !strings.Contains(string(out), `"eth_typed_data":`+typed) {
		t.Errorf("marshal typed = %s, %v", out, err)
	}
}

// FuzzDecodeHex checks that decodeHex, which leaves the digits to
// encoding/hex, accepts and refuses exactly what checkHex does, with its
// errors, and decodes the digits checkHex returns.
func FuzzDecodeHex(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeHex(s)
		digits, want := checkHex(s)
		if (err == nil) != (want == nil) || err != nil && err.Error() != want.Error() {
			t.Fatalf("decodeHex(%q) error %v, checkHex's %v", s, err, want)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("decodeHex(%q) = %x with error %v", s, got, err)
			}
			return
		}
		if wantBytes, herr := hex.DecodeString(digits); herr != nil || !bytes.Equal(got, wantBytes) {
			t.Fatalf("decodeHex(%q) = %x, want %x (%v)", s, got, wantBytes, herr)
		}
	})
}
