package ethmsg

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/nitrosign/nitrosign/ethmsg"
)

// gethMailTypedData is the EIP-712 specification's Mail example as a
// go-ethereum apitypes.TypedData. Its Domain.Salt is "", as in every Go
// program that builds a domain without a salt; json.Marshal emits it as
// "salt":"".
func gethMailTypedData() apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
			"Person": {{Name: "name", Type: "string"}, {Name: "wallet", Type: "address"}},
			"Mail":   {{Name: "from", Type: "Person"}, {Name: "to", Type: "Person"}, {Name: "contents", Type: "string"}},
		},
		PrimaryType: "Mail",
		Domain: apitypes.TypedDataDomain{
			Name:              "Ether Mail",
			Version:           "1",
			ChainId:           math.NewHexOrDecimal256(1),
			VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
		},
		Message: apitypes.TypedDataMessage{
			"from":     map[string]any{"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
			"to":       map[string]any{"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
			"contents": "Hello, Bob!",
		},
	}
}

// TestGethMarshalledDocuments marshals go-ethereum apitypes.TypedData
// documents with json.Marshal, as a Go wallet stack sends them: every
// domain member the EIP712Domain type does not declare comes out as "" (or
// null for chainId). ParseTypedData must accept each and hash it as
// go-ethereum's TypedDataAndHash hashes the value it was marshalled from.
func TestGethMarshalledDocuments(t *testing.T) {
	owner := gethcommon.HexToAddress("0x5B38Da6a701c568545dCfcB03FcB875f56beddC4").Hex()
	spender := gethcommon.HexToAddress("0x000000000022D473030F116dDEE9F6B43aC78BA3").Hex()
	usdc := "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	permitTypes := []apitypes.Type{{Name: "owner", Type: "address"}, {Name: "spender", Type: "address"},
		{Name: "value", Type: "uint256"}, {Name: "nonce", Type: "uint256"}, {Name: "deadline", Type: "uint256"}}
	permitMessage := apitypes.TypedDataMessage{"owner": owner, "spender": spender, "value": "1000000000",
		"nonce": "0", "deadline": "1893456000"}
	for _, tc := range []struct {
		name  string
		td    apitypes.TypedData
		empty []string // the members json.Marshal emits empty, which ethmsg must treat as absent
	}{
		{name: "Mail", td: gethMailTypedData(), empty: []string{`"salt":""`}},
		{
			name: "ERC-2612 Permit of USDC",
			td: apitypes.TypedData{
				Types: apitypes.Types{
					"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
						{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
					"Permit": permitTypes,
				},
				PrimaryType: "Permit",
				Domain: apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", ChainId: math.NewHexOrDecimal256(1),
					VerifyingContract: usdc},
				Message: permitMessage,
			},
			empty: []string{`"salt":""`},
		},
		{
			// Permit2's domain has no version.
			name: "Permit2 domain without version",
			td: apitypes.TypedData{
				Types: apitypes.Types{
					"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "chainId", Type: "uint256"},
						{Name: "verifyingContract", Type: "address"}},
					"Permit": permitTypes,
				},
				PrimaryType: "Permit",
				Domain: apitypes.TypedDataDomain{Name: "Permit2", ChainId: math.NewHexOrDecimal256(8453),
					VerifyingContract: spender},
				Message: permitMessage,
			},
			empty: []string{`"version":""`, `"salt":""`},
		},
		{
			// A Safe's domain has only chainId and verifyingContract.
			name: "Safe domain, chainId and verifyingContract only",
			td: apitypes.TypedData{
				Types: apitypes.Types{
					"EIP712Domain": {{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
					"SafeMessage":  {{Name: "message", Type: "bytes"}},
				},
				PrimaryType: "SafeMessage",
				Domain:      apitypes.TypedDataDomain{ChainId: math.NewHexOrDecimal256(1), VerifyingContract: owner},
				Message:     apitypes.TypedDataMessage{"message": "0x1234"},
			},
			empty: []string{`"name":""`, `"version":""`, `"salt":""`},
		},
		{
			name: "domain without chainId",
			td: apitypes.TypedData{
				Types: apitypes.Types{
					"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
						{Name: "verifyingContract", Type: "address"}},
					"Permit": permitTypes,
				},
				PrimaryType: "Permit",
				Domain:      apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", VerifyingContract: usdc},
				Message:     permitMessage,
			},
			empty: []string{`"chainId":null`, `"salt":""`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, err := json.Marshal(tc.td)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tc.empty {
				if !strings.Contains(string(js), e) {
					t.Fatalf("go-ethereum no longer marshals %s: %s", e, js)
				}
			}
			want, _, err := apitypes.TypedDataAndHash(tc.td)
			if err != nil {
				t.Fatal(err)
			}
			td := mustParse(t, string(js))
			if td.Hash() != [32]byte(want) {
				t.Fatalf("Hash() = %x, go-ethereum %x\n%s", td.Hash(), want, js)
			}
			checkAccepted(t, td, js)
			// The domain holds exactly the declared members.
			d := td.Domain()
			if got, want := d.Name != nil, tc.td.Domain.Name != ""; got != want {
				t.Errorf("Domain().Name present = %v, want %v", got, want)
			}
			if got, want := d.Version != nil, tc.td.Domain.Version != ""; got != want {
				t.Errorf("Domain().Version present = %v, want %v", got, want)
			}
			if got, want := d.ChainID != nil, tc.td.Domain.ChainId != nil; got != want ||
				got && d.ChainID.Cmp((*big.Int)(tc.td.Domain.ChainId)) != 0 {
				t.Errorf("Domain().ChainID = %v, want %v", d.ChainID, tc.td.Domain.ChainId)
			}
			if d.Salt != nil {
				t.Errorf("Domain().Salt = %x, want absent", *d.Salt)
			}
		})
	}

	// A salt go-ethereum would sign, but the type does not declare, is
	// refused as before (go-ethereum refuses it too: extra data).
	td := gethMailTypedData()
	td.Domain.Salt = "0x" + strings.Repeat("ab", 32)
	js, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ethmsg.ParseTypedData(js); err == nil || !strings.Contains(err.Error(), `domain: unknown field "salt"`) {
		t.Fatalf("undeclared non-empty salt: err = %v", err)
	}
	if _, _, err := apitypes.TypedDataAndHash(td); err == nil {
		t.Fatal("go-ethereum now accepts an undeclared salt")
	}
}
