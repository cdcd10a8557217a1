package enclave_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
)

const mailJSON = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

// usdcPermit is an unlimited EIP-2612 permit of USDC to an attacker.
const usdcPermit = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},"message":{"owner":"0x9bf111518107c76Da607BB6039489949B2951a10","spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516","value":"115792089237316195423570985008687907853269984665640564039457584007913129639935","nonce":"0","deadline":"1900000000"}}`

// permitReordered is usdcPermit with spender before owner: not EIP-2612.
var permitReordered = strings.Replace(usdcPermit, `{"name":"owner","type":"address"},{"name":"spender","type":"address"}`, `{"name":"spender","type":"address"},{"name":"owner","type":"address"}`, 1)

// permit2Single is a Permit2 PermitSingle granting an unlimited USDC
// allowance to an attacker.
const permit2Single = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"PermitDetails":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"},{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}],"PermitSingle":[{"name":"details","type":"PermitDetails"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]},"primaryType":"PermitSingle","domain":{"name":"Permit2","chainId":1,"verifyingContract":"0x000000000022D473030F116dDEE9F6B43aC78BA3"},"message":{"details":{"token":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48","amount":"1461501637330902918203684832716283019655932542975","expiration":"281474976710655","nonce":"0"},"spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516","sigDeadline":"1900000000"}}`

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
		{"32-byte personal message", "eth_personal_message", map[string]string{"message": "0x" + strings.Repeat("ab", 32)}, refusal.CodePolicyDenied, "raw_digest", "Safe"},
		{"personal message too large", "eth_personal_message", map[string]string{"message": "0x" + strings.Repeat("00", ethmsg.MaxPersonalMessage+1)}, refusal.CodeBadRequest, "", "ethmsg"},
		{"other domain version", "eth_typed_data", json.RawMessage(otherDomain), refusal.CodePolicyDenied, "typed_data_domains", `version "2"`},
		{"domain without chainId", "eth_typed_data", json.RawMessage(noChain), refusal.CodePolicyDenied, "typed_data_domains", "Ether Mail"},
		{"malformed typed data", "eth_typed_data", json.RawMessage(strings.Replace(mailJSON, `"Cow"`, `5`, 1)), refusal.CodeBadRequest, "", "message.from.name"},
		{"EIP-2612 permit of USDC (domain not even checked)", "eth_typed_data", json.RawMessage(usdcPermit), refusal.CodePolicyDenied, "allowance_grants", "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"},
		{"Permit2 PermitSingle, unlimited", "eth_typed_data", json.RawMessage(permit2Single), refusal.CodePolicyDenied, "allowance_grants", "Permit2"},
		{"a permit near-miss: fields reordered", "eth_typed_data", json.RawMessage(permitReordered), refusal.CodePolicyDenied, "allowance_grants", "not a known one"},
		{"primary type EIP712Domain", "eth_typed_data", json.RawMessage(strings.Replace(mailJSON, `"primaryType":"Mail"`, `"primaryType":"EIP712Domain"`, 1)), refusal.CodeBadRequest, "", "EIP712Domain"},
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
