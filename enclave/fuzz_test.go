package enclave_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// knownCodes are the codes a sign request may be refused with.
var knownCodes = map[string]bool{
	refusal.CodeBadRequest: true, refusal.CodeUnauthorized: true, refusal.CodeStaleRequest: true,
	refusal.CodeReplayedRequest: true, refusal.CodePolicyDenied: true, refusal.CodeUnknownKey: true,
	refusal.CodeUnsupportedTransactionType: true, refusal.CodeTooLarge: true,
}

// FuzzHandleSign feeds the enclave arbitrary bodies and stamps, as a
// compromised host could. Properties: nothing panics; every answer is a
// signature or a refusal with a known code, and it can be sent back over the
// protocol; a signature is only ever given for a body whose stamp verifies
// for a registered client.
func FuzzHandleSign(f *testing.F) {
	fx := newFixture(f)
	body := fx.body(f, "hot-0", transfer(f, 1, destA, big.NewInt(1)), fx.now.UnixMilli())
	h, err := stamp.Create(fx.hot, body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, h)
	f.Add(body, "")
	f.Add([]byte(`{}`), h)
	f.Add([]byte(`{"request_id":"a","timestamp_ms":1,"key":"hot-0","eth_transaction":{"unsigned":"0x02c0"}}`), h)
	for _, b := range [][]byte{
		fx.messageBody(f, "eth_personal_message", map[string]string{"message": "0x68656c6c6f"}),
		fx.messageBody(f, "eth_typed_data", json.RawMessage(mailJSON)),
		fx.body(f, "hot-0", transferWithData(f, destA, erc20Transfer(destB, 1)), fx.now.UnixMilli()),
	} {
		hb, err := stamp.Create(fx.hot, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, hb)
	}
	f.Fuzz(func(t *testing.T, body []byte, stampHeader string) {
		// fx's ackHost acknowledges every audit record (each answer waits
		// for it), so the backlog never fills across iterations.
		resp := fx.e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: stampHeader})
		if _, err := proto.Marshal(1, resp); err != nil {
			t.Fatalf("the answer cannot be sent back: %v (%+v)", err, resp)
		}
		switch r := resp.(type) {
		case *proto.SignResponse:
			pub, err := stamp.Verify(stampHeader, body)
			if err != nil {
				t.Fatalf("signed a request whose stamp does not verify: %v", err)
			}
			if !pub.Equal(fx.hot.PublicKey()) && !pub.Equal(fx.other.PublicKey()) {
				t.Fatalf("signed for an unregistered client %s", pub)
			}
		case *proto.Error:
			if !knownCodes[r.Code] || r.Message == "" {
				t.Fatalf("refusal with code %q message %q", r.Code, r.Message)
			}
		default:
			t.Fatalf("answer of type %T", resp)
		}
	})
}
