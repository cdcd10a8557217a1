package enclave_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
)

const mailJSON = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

func (f *fixture) messageBody(t testing.TB, field string, payload any) []byte {
	t.Helper()
	f.seqIDs++
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf(`{"request_id":"msg-%d","timestamp_ms":%d,"key":"hot-0",%q:%s}`, f.seqIDs, f.now.UnixMilli(), field, p))
}

func checkSigned(t *testing.T, resp proto.Message, wantDigest [32]byte) {
	t.Helper()
	sr, ok := resp.(*proto.SignResponse)
	if !ok {
		t.Fatalf("answer %+v, want a signature", resp)
	}
	if sr.Digest != wantDigest {
		t.Fatalf("digest %x, want %x", sr.Digest, wantDigest)
	}
	if len(sr.SignedTransaction) != 0 || sr.TransactionHash != ([32]byte{}) {
		t.Error("a message answer carries a transaction")
	}
	got, err := ethtx.RecoverAddress(wantDigest, sr.Signature)
	if err != nil || got != sr.From {
		t.Fatalf("signature recovers %s (%v), from is %x", got.Hex(), err, sr.From)
	}
}

func TestSignPersonalMessage(t *testing.T) {
	f := newFixture(t)
	msg := []byte("Sign in to example.com\nnonce: 4242")
	resp := f.send(t, f.hot, f.messageBody(t, "eth_personal_message", map[string]string{"message": "0x" + hex.EncodeToString(msg)}))
	checkSigned(t, resp, ethmsg.PersonalHash(msg))
}

func TestSignTypedDataMail(t *testing.T) {
	f := newFixture(t)
	want, _ := hex.DecodeString("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
	resp := f.send(t, f.hot, f.messageBody(t, "eth_typed_data", json.RawMessage(mailJSON)))
	checkSigned(t, resp, [32]byte(want))
}

func TestMessageRefusals(t *testing.T) {
	f := newFixture(t)
	otherDomain := strings.Replace(mailJSON, `"version":"1"`, `"version":"2"`, 1)
	noChain := strings.Replace(strings.Replace(mailJSON, `{"name":"chainId","type":"uint256"},`, ``, 1), `"chainId":1,`, ``, 1)
	for _, tc := range []struct {
		name, field string
		payload     any
		code, rule  string
		msg         string
	}{
		{"32-byte personal message", "eth_personal_message", map[string]string{"message": "0x" + strings.Repeat("ab", 32)}, api.CodePolicyDenied, "raw_digest", "Safe"},
		{"personal message too large", "eth_personal_message", map[string]string{"message": "0x" + strings.Repeat("00", ethmsg.MaxPersonalMessage+1)}, api.CodeBadRequest, "", "ethmsg"},
		{"other domain version", "eth_typed_data", json.RawMessage(otherDomain), api.CodePolicyDenied, "typed_data_domains", `version "2"`},
		{"domain without chainId", "eth_typed_data", json.RawMessage(noChain), api.CodePolicyDenied, "typed_data_domains", "Ether Mail"},
		{"malformed typed data", "eth_typed_data", json.RawMessage(strings.Replace(mailJSON, `"Cow"`, `5`, 1)), api.CodeBadRequest, "", "message.from.name"},
		{"primary type EIP712Domain", "eth_typed_data", json.RawMessage(strings.Replace(mailJSON, `"primaryType":"Mail"`, `"primaryType":"EIP712Domain"`, 1)), api.CodeBadRequest, "", "EIP712Domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.send(t, f.hot, f.messageBody(t, tc.field, tc.payload))
			e, ok := resp.(*proto.Error)
			if !ok || e.Code != tc.code || e.Rule != tc.rule || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("answer %+v, want %s rule %q mentioning %q", resp, tc.code, tc.rule, tc.msg)
			}
		})
	}
}
