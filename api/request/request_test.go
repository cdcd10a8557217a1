package request_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

const (
	usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	dest = "0x1111111111111111111111111111111111111111"
)

// mailJSON is EIP-712's example (docs/examples/mail.json), whose digest the
// EIP gives.
var mailJSON = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "examples", "mail.json"))
	if err != nil {
		panic(err)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		panic(err)
	}
	return c.String()
}()

const mailDigest = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"

// usdcPermit is an EIP-2612 permit of USDC, unlimited.
const usdcPermit = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"` + usdc + `"},"message":{"owner":"0x9bf111518107c76Da607BB6039489949B2951a10","spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516","value":"115792089237316195423570985008687907853269984665640564039457584007913129639935","nonce":"0","deadline":"1900000000"}}`

func addr(s string) *ethtx.Address {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return &a
}

// tx encodes an EIP-1559 transaction on chain 1 to `to` ("" for a contract
// creation) with data.
func tx(to string, value int64, data []byte) []byte {
	t := &ethtx.Tx{
		Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 7, GasLimit: 60000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9), Value: big.NewInt(value), Data: data,
	}
	if to != "" {
		t.To = addr(to)
	}
	return t.EncodeUnsigned()
}

func erc20Transfer(to string, amount int64) []byte {
	b := []byte{0xa9, 0x05, 0x9c, 0xbb}
	b = append(b, make([]byte, 12)...)
	b = append(b, addr(to)[:]...)
	return append(b, new(big.Int).SetInt64(amount).FillBytes(make([]byte, 32))...)
}

// body is a request body with payload, a JSON member.
func body(payload string) []byte {
	return []byte(`{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0",` + payload + `}`)
}

func txBody(unsigned string) []byte {
	return body(`"eth_transaction":{"unsigned":"` + unsigned + `"}`)
}

func msgBody(message string) []byte {
	return body(`"eth_personal_message":{"message":"` + message + `"}`)
}

func typedBody(js string) []byte { return body(`"eth_typed_data":` + js) }

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// decodeCase is one body and what Decode must make of it.
type decodeCase struct {
	name string
	in   []byte
	// code is the refusal code of the error, "" when it decodes; msg is in
	// the error's message.
	code, msg string
	check     func(t *testing.T, r *request.Request)
}

func decodeCases() []decodeCase {
	transfer := tx(dest, 5, nil)
	token := tx(usdc, 0, erc20Transfer(dest, 5))
	creation := tx("", 0, []byte{0x60, 0x80})
	var unsupported []byte
	unsupported = append(unsupported, 0x05)
	unsupported = append(unsupported, transfer[1:]...)
	signingHash := func(raw []byte) [32]byte {
		t, err := ethtx.DecodeUnsigned(raw)
		if err != nil {
			panic(err)
		}
		return t.SigningHash()
	}
	maxMsg := bytes.Repeat([]byte{0xab}, ethmsg.MaxPersonalMessage)
	return []decodeCase{
		// Transactions.
		{name: "native transfer", in: txBody(hex0x(transfer)), check: func(t *testing.T, r *request.Request) {
			if r.Transaction == nil || !bytes.Equal(r.Transaction.Unsigned, transfer) || r.Digest != signingHash(transfer) {
				t.Fatalf("transaction %+v digest %x", r.Transaction, r.Digest)
			}
			if _, ok := r.Transaction.Call.(*calldata.NoCall); !ok {
				t.Fatalf("call %T, want *calldata.NoCall", r.Transaction.Call)
			}
		}},
		{name: "ERC-20 transfer", in: txBody(hex0x(token)), check: func(t *testing.T, r *request.Request) {
			c, ok := r.Transaction.Call.(*calldata.ERC20Transfer)
			if !ok || c.Amount.Int64() != 5 || c.To != *addr(dest) {
				t.Fatalf("call %#v, want an ERC-20 transfer of 5 to %s", r.Transaction.Call, dest)
			}
		}},
		{name: "upper-case hex digits", in: txBody("0x" + strings.ToUpper(hex.EncodeToString(token))), check: func(t *testing.T, r *request.Request) {
			if !bytes.Equal(r.Transaction.Unsigned, token) {
				t.Fatal("upper-case digits decoded to other bytes")
			}
		}},
		{name: "contract creation", in: txBody(hex0x(creation)), check: func(t *testing.T, r *request.Request) {
			if r.Transaction.Call != nil || r.Transaction.Tx.To != nil {
				t.Fatalf("creation decoded a call: %#v", r.Transaction.Call)
			}
		}},
		{name: "malformed calldata", in: txBody(hex0x(tx(usdc, 0, erc20Transfer(dest, 5)[:40]))), code: refusal.CodeBadRequest, msg: "calldata: transfer"},
		{name: "short selector", in: txBody(hex0x(tx(usdc, 0, []byte{0xa9}))), code: refusal.CodeBadRequest, msg: "calldata: truncated selector"},
		{name: "unsupported type", in: txBody(hex0x(unsupported)), code: refusal.CodeUnsupportedTransactionType, msg: "ethtx"},
		{name: "transaction not RLP", in: txBody("0x02ff"), code: refusal.CodeBadRequest, msg: "ethtx"},
		{name: "transaction trailing byte", in: txBody(hex0x(append(bytes.Clone(transfer), 0))), code: refusal.CodeBadRequest, msg: "ethtx"},
		// The one hex rule, for both byte-string payloads.
		{name: "unsigned 0x alone", in: txBody("0x"), code: refusal.CodeBadRequest, msg: "eth_transaction.unsigned: is empty"},
		{name: "unsigned no prefix", in: txBody(hex.EncodeToString(transfer)), code: refusal.CodeBadRequest, msg: `eth_transaction.unsigned: must start with "0x"`},
		{name: "unsigned 0X", in: txBody("0X" + hex.EncodeToString(transfer)), code: refusal.CodeBadRequest, msg: `must start with "0x"`},
		{name: "unsigned odd", in: txBody(hex0x(transfer)[:len(hex0x(transfer))-1]), code: refusal.CodeBadRequest, msg: "odd number of hex digits"},
		{name: "unsigned not hex", in: txBody("0x02zz"), code: refusal.CodeBadRequest, msg: "is not hex"},
		{name: "unsigned with a space", in: txBody("0x02 c0"), code: refusal.CodeBadRequest, msg: "eth_transaction.unsigned"},
		{name: "message 0x alone", in: msgBody("0x"), code: refusal.CodeBadRequest, msg: "eth_personal_message.message: is empty"},
		{name: "message no prefix", in: msgBody("6869"), code: refusal.CodeBadRequest, msg: `eth_personal_message.message: must start with "0x"`},
		{name: "message text", in: msgBody("hello"), code: refusal.CodeBadRequest, msg: `must start with "0x"`},
		{name: "message odd", in: msgBody("0x686"), code: refusal.CodeBadRequest, msg: "odd number of hex digits (3)"},
		{name: "message not hex", in: msgBody("0x68zz"), code: refusal.CodeBadRequest, msg: "eth_personal_message.message: is not hex"},
		{name: "message second prefix", in: msgBody("0x0x68"), code: refusal.CodeBadRequest, msg: "is not hex"},
		// Personal messages.
		{name: "personal message", in: msgBody("0x6869"), check: func(t *testing.T, r *request.Request) {
			if r.PersonalMessage == nil || string(r.PersonalMessage.Message) != "hi" || r.Digest != ethmsg.PersonalHash([]byte("hi")) {
				t.Fatalf("message %+v digest %x", r.PersonalMessage, r.Digest)
			}
		}},
		{name: "personal message upper case", in: msgBody("0xDEADbeef"), check: func(t *testing.T, r *request.Request) {
			if !bytes.Equal(r.PersonalMessage.Message, []byte{0xde, 0xad, 0xbe, 0xef}) {
				t.Fatalf("message %x", r.PersonalMessage.Message)
			}
		}},
		{name: "personal message at the cap", in: msgBody(hex0x(maxMsg)), check: func(t *testing.T, r *request.Request) {
			if len(r.PersonalMessage.Message) != ethmsg.MaxPersonalMessage {
				t.Fatalf("message of %d bytes", len(r.PersonalMessage.Message))
			}
		}},
		{name: "personal message over the cap", in: msgBody(hex0x(append(maxMsg, 0))), code: refusal.CodeBadRequest, msg: "ethmsg: input too large: personal message of 65537 bytes"},
		// Typed data.
		{name: "typed data", in: typedBody(mailJSON), check: func(t *testing.T, r *request.Request) {
			td := r.TypedData
			if td == nil || hex.EncodeToString(r.Digest[:]) != mailDigest || td.Data.Hash() != r.Digest {
				t.Fatalf("typed data %+v digest %x", td, r.Digest)
			}
			if td.Domain.Name == nil || *td.Domain.Name != "Ether Mail" || td.Permit != nil || td.PermitErr != nil {
				t.Fatalf("domain %+v permit %+v %v", td.Domain, td.Permit, td.PermitErr)
			}
		}},
		{name: "typed data permit", in: typedBody(usdcPermit), check: func(t *testing.T, r *request.Request) {
			p := r.TypedData.Permit
			if p == nil || r.TypedData.PermitErr != nil || p.VerifyingContract != *addr(usdc) {
				t.Fatalf("permit %+v %v", p, r.TypedData.PermitErr)
			}
		}},
		{name: "typed data malformed", in: typedBody(strings.Replace(mailJSON, `"Cow"`, `5`, 1)), code: refusal.CodeBadRequest, msg: "ethmsg"},
		{name: "typed data not an object", in: typedBody(`[1]`), code: refusal.CodeBadRequest, msg: "eth_typed_data"},
		{name: "typed data EIP712Domain", in: typedBody(strings.Replace(mailJSON, `"primaryType":"Mail"`, `"primaryType":"EIP712Domain"`, 1)), code: refusal.CodeBadRequest, msg: "EIP712Domain"},
		// The body.
		{name: "not JSON", in: []byte(`{"request_id"`), code: refusal.CodeBadRequest, msg: "api: "},
		{name: "no payload", in: []byte(`{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0"}`), code: refusal.CodeBadRequest, msg: "exactly one payload"},
		{name: "two payloads", in: body(`"eth_personal_message":{"message":"0x68"},"eth_transaction":{"unsigned":"` + hex0x(transfer) + `"}`), code: refusal.CodeBadRequest, msg: "exactly one payload"},
		{name: "unknown field", in: body(`"eth_personal_message":{"message":"0x68"},"extra":1`), code: refusal.CodeBadRequest, msg: "extra"},
		{name: "unknown payload field", in: body(`"eth_personal_message":{"message":"0x68","text":"hi"}`), code: refusal.CodeBadRequest, msg: "text"},
		{name: "duplicate key", in: body(`"eth_personal_message":{"message":"0x68","message":"0x69"}`), code: refusal.CodeBadRequest, msg: "duplicate"},
		{name: "empty request id", in: []byte(`{"request_id":"","timestamp_ms":1,"key":"hot-0","eth_personal_message":{"message":"0x68"}}`), code: refusal.CodeBadRequest, msg: "request_id"},
		{name: "body over the cap", in: append(msgBody("0x68"), bytes.Repeat([]byte{' '}, api.MaxBodySize)...), code: refusal.CodeBadRequest, msg: "limit"},
	}
}

// TestDecode decodes every form of request, and keeps the fuzz seeds of
// FuzzDecode in step with the cases (go test -run TestDecode -update).
func TestDecode(t *testing.T) {
	seeds := map[string][]byte{}
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			r, err := request.Decode(tc.in)
			if tc.code != "" {
				var e *request.Error
				if !errors.As(err, &e) || e.Code != tc.code || request.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) || r != nil {
					t.Fatalf("Decode = %+v, %v; want %s mentioning %q", r, err, tc.code, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkInvariants(t, tc.in, r)
			tc.check(t, r)
		})
		if len(tc.in) <= 4<<10 {
			seeds[tc.name] = tc.in
		}
	}
	fuzzseed.Sync(t, "FuzzDecode", "table-", '-', seeds, *update, "go test ./api/request -run TestDecode -update")
}

// checkInvariants checks what every decoded request satisfies.
func checkInvariants(t *testing.T, body []byte, r *request.Request) {
	t.Helper()
	n := 0
	for _, set := range []bool{r.Transaction != nil, r.PersonalMessage != nil, r.TypedData != nil} {
		if set {
			n++
		}
	}
	if n != 1 || r.Body == nil {
		t.Fatalf("%d payloads decoded, body %v", n, r.Body)
	}
	switch {
	case r.Transaction != nil:
		tr := r.Transaction
		if (tr.Call == nil) != (tr.Tx.To == nil) {
			t.Fatalf("call %T for to %v: a call has its calldata decoded, a creation none", tr.Call, tr.Tx.To)
		}
		if !bytes.Equal(tr.Tx.EncodeUnsigned(), tr.Unsigned) {
			t.Fatal("the transaction does not encode back to the bytes sent")
		}
		if r.Digest != tr.Tx.SigningHash() {
			t.Fatal("digest is not the signing hash")
		}
	case r.PersonalMessage != nil:
		m := r.PersonalMessage.Message
		if len(m) == 0 || len(m) > ethmsg.MaxPersonalMessage || r.Digest != ethmsg.PersonalHash(m) {
			t.Fatalf("message of %d bytes, digest %x", len(m), r.Digest)
		}
	case r.TypedData != nil:
		if r.Digest != r.TypedData.Data.Hash() {
			t.Fatal("digest is not the EIP-712 hash")
		}
	}
	// The compact form, which the enclave keeps for a request held for
	// approvals and decides again, decodes to the same request.
	compact, err := api.CompactRequest(body)
	if err != nil {
		t.Fatalf("a request that decodes has no compact form: %v", err)
	}
	rc, err := request.Decode(compact)
	if err != nil || rc.Digest != r.Digest || rc.Body.RequestID != r.Body.RequestID || rc.Body.Key != r.Body.Key {
		t.Fatalf("the compact form decodes otherwise: %v", err)
	}
}

// TestDecodePayload decodes the payload of a request built in memory (as
// the client does), and refuses one without exactly one payload.
func TestDecodePayload(t *testing.T) {
	r, err := request.DecodePayload(&api.SignRequest{Key: "k", EthPersonalMessage: &api.EthPersonalMessage{Message: "0x6869"}})
	if err != nil || string(r.PersonalMessage.Message) != "hi" {
		t.Fatalf("DecodePayload: %+v, %v", r, err)
	}
	for _, b := range []*api.SignRequest{
		{},
		{EthPersonalMessage: &api.EthPersonalMessage{Message: "0x68"}, EthTypedData: &api.EthTypedData{JSON: []byte(mailJSON)}},
	} {
		if _, err := request.DecodePayload(b); request.Code(err) != refusal.CodeBadRequest || !strings.Contains(err.Error(), "exactly one payload") {
			t.Errorf("DecodePayload(%+v) = %v, want bad_request", b, err)
		}
	}
}

// TestDecodeTransaction: the client's decoder of a transaction is
// Decode's.
func TestDecodeTransaction(t *testing.T) {
	if _, err := request.DecodeTransaction(tx(usdc, 0, []byte{1, 2})); request.Code(err) != refusal.CodeBadRequest {
		t.Fatalf("malformed calldata: %v", err)
	}
	if _, err := request.DecodeTransaction([]byte{0x7f, 0xc0}); request.Code(err) != refusal.CodeUnsupportedTransactionType {
		t.Fatalf("type 0x7f: %v", err)
	}
	tr, err := request.DecodeTransaction(tx(usdc, 0, erc20Transfer(dest, 1)))
	if err != nil || tr.Call == nil {
		t.Fatalf("transfer: %+v, %v", tr, err)
	}
}

// TestCodeOfOtherErrors: an error not from this package is a bad request.
func TestCodeOfOtherErrors(t *testing.T) {
	if c := request.Code(errors.New("x")); c != refusal.CodeBadRequest {
		t.Fatalf("Code = %s", c)
	}
}

// FuzzDecode feeds Decode arbitrary bodies. Properties: no panic; a
// refusal is an *Error with the code bad_request or
// unsupported_transaction_type; a decoded request has exactly one payload,
// a transaction that encodes back to its bytes with its calldata decoded
// exactly when it is a call, a digest that is its payload's, and a compact
// form that decodes to the same request.
func FuzzDecode(f *testing.F) {
	f.Add(txBody(hex0x(tx(usdc, 0, erc20Transfer(dest, 5)))))
	f.Add(msgBody("0x6869"))
	f.Add(typedBody(mailJSON))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := request.Decode(body)
		if err != nil {
			var e *request.Error
			if !errors.As(err, &e) || (e.Code != refusal.CodeBadRequest && e.Code != refusal.CodeUnsupportedTransactionType) || err.Error() == "" || r != nil {
				t.Fatalf("Decode = %+v, %v (%T)", r, err, err)
			}
			return
		}
		checkInvariants(t, body, r)
	})
}
