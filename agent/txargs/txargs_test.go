package txargs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

const (
	addrFrom = "0x8ba1f109551bD432803012645Ac136ddd64DBA72" // EIP-55 checksummed
	addrTo   = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
	hashKZG  = "0x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	key1     = "0x00000000000000000000000000000000000000000000000000000000000000ff"
)

// clientShapes are transaction objects as wallet stacks send them; they
// are also seeds of FuzzParse.
var clientShapes = map[string]string{
	// ethers v6 JsonRpcSigner.sendUncheckedTransaction (getRpcTransaction):
	// quantities by toQuantity, gasLimit sent as "gas", "type" included.
	"ethers v6 eip1559": `{"from":"` + addrFrom + `","to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","gas":"0x5208","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x3b9aca00","nonce":"0x7","value":"0xde0b6b3a7640000","type":"0x2","chainId":"0x1","data":"0x","accessList":[]}`,
	"ethers v6 legacy":  `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","gasPrice":"0x4a817c800","nonce":"0x0","value":"0x0","type":"0x0","chainId":"0x539","data":"0xa9059cbb"}`,
	// web3j's Transaction: absent members sent as null.
	"web3j": `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","gasPrice":"0x3b9aca00","value":"0x1","data":"0x","nonce":null,"maxPriorityFeePerGas":null,"maxFeePerGas":null,"chainId":"0x1"}`,
	// Foundry (cast send --unlocked) / alloy's TransactionRequest: "input".
	"alloy": `{"from":"` + addrFrom + `","to":"` + addrTo + `","maxFeePerGas":"0x4a817c800","maxPriorityFeePerGas":"0x3b9aca00","gas":"0xc350","value":"0x0","input":"0x095ea7b3","nonce":"0x2a","chainId":"0x7a69","accessList":[{"address":"` + addrTo + `","storageKeys":["` + key1 + `"]}],"type":"0x2"}`,
	// go-ethereum's accounts/external backend (apitypes.SendTxArgs): nil
	// pointers as null, "input".
	"geth external": `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","gasPrice":null,"maxFeePerGas":"0x2540be400","maxPriorityFeePerGas":"0x3b9aca00","value":"0x0","nonce":"0x3","input":"0x","accessList":[],"chainId":"0x1"}`,
	// go-ethereum's ethclient/ethapi TransactionArgs for a creation.
	"geth creation":    `{"from":"` + addrFrom + `","to":null,"gas":"0x186a0","gasPrice":"0x1","value":"0x0","nonce":"0x0","data":"0x6080604052","input":"0x6080604052","chainId":"0x1"}`,
	"eip2930":          `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","gasPrice":"0x1","nonce":"0x1","chainId":"0x1","accessList":[{"address":"` + addrTo + `"}]}`,
	"eip4844":          `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x3","blobVersionedHashes":["` + hashKZG + `"],"nonce":"0x1","chainId":"0x1"}`,
	"eip7702":          `{"from":"` + addrFrom + `","to":"` + addrTo + `","gas":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","nonce":"0x1","chainId":"0x1","authorizationList":[{"chainId":"0x0","address":"` + addrTo + `","nonce":"0x5","yParity":"0x1","r":"0x1","s":"0x2"}]}`,
	"proxy minimal":    `{"from":"` + addrFrom + `","to":"` + addrTo + `","value":"0x1"}`,
	"upper hex digits": `{"gas":"0xABC","value":"0xDE0B6B3A7640000","data":"0xABCDEF","to":"` + strings.ToUpper(addrTo[:2]) + strings.ToUpper(addrTo[2:]) + `"}`,
}

func mustParse(t *testing.T, s string) *Args {
	t.Helper()
	a, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return a
}

func TestParseClientShapes(t *testing.T) {
	from, _ := ethtx.ParseAddress(addrFrom)
	to, _ := ethtx.ParseAddress(addrTo)
	tests := []struct {
		name    string
		typ     ethtx.Type
		missing []string
		check   func(t *testing.T, a *Args)
	}{
		{"ethers v6 eip1559", ethtx.TypeDynamicFee, nil, func(t *testing.T, a *Args) {
			if *a.From != from || *a.To != to || *a.Gas != 21000 || *a.Nonce != 7 || a.Value.String() != "1000000000000000000" {
				t.Errorf("got %+v", a)
			}
			if a.Data == nil || len(a.Data) != 0 || a.AccessList == nil || len(*a.AccessList) != 0 {
				t.Errorf("data %x access list %v: want present and empty", a.Data, a.AccessList)
			}
		}},
		{"ethers v6 legacy", ethtx.TypeLegacy, nil, func(t *testing.T, a *Args) {
			if a.ChainID.Int64() != 1337 || !bytes.Equal(a.Data, []byte{0xa9, 0x05, 0x9c, 0xbb}) {
				t.Errorf("got %+v", a)
			}
		}},
		{"web3j", ethtx.TypeLegacy, []string{"nonce"}, func(t *testing.T, a *Args) {
			if a.Nonce != nil || a.MaxFeePerGas != nil {
				t.Errorf("null members not absent: %+v", a)
			}
		}},
		{"alloy", ethtx.TypeDynamicFee, nil, func(t *testing.T, a *Args) {
			if len(*a.AccessList) != 1 || (*a.AccessList)[0].StorageKeys[0][31] != 0xff {
				t.Errorf("access list %v", a.AccessList)
			}
		}},
		{"geth external", ethtx.TypeDynamicFee, nil, nil},
		{"geth creation", ethtx.TypeLegacy, nil, func(t *testing.T, a *Args) {
			if a.To != nil || len(a.Data) != 5 {
				t.Errorf("got %+v", a)
			}
		}},
		{"eip2930", ethtx.TypeAccessList, nil, nil},
		{"eip4844", ethtx.TypeBlob, nil, nil},
		{"eip7702", ethtx.TypeSetCode, nil, func(t *testing.T, a *Args) {
			au := a.AuthorizationList[0]
			if au.ChainID.Sign() != 0 || au.Nonce != 5 || au.YParity != 1 || au.R[31] != 1 || au.S[31] != 2 {
				t.Errorf("authorization %+v", au)
			}
		}},
		{"proxy minimal", ethtx.TypeLegacy, []string{"gas", "gasPrice", "nonce", "chainId"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustParse(t, clientShapes[tt.name])
			typ, err := a.TxType()
			if err != nil || typ != tt.typ {
				t.Fatalf("TxType = %v, %v; want %v", typ, err, tt.typ)
			}
			if got := a.Missing(); !reflect.DeepEqual(got, tt.missing) {
				t.Errorf("Missing = %q, want %q", got, tt.missing)
			}
			if tt.missing == nil {
				if _, err := a.Tx(); err != nil {
					t.Errorf("Tx: %v", err)
				}
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	base := `{"from":"` + addrFrom + `",`
	tests := []struct {
		name, json, want string
	}{
		{"not an object", `[]`, "top-level value is an array, want an object"},
		{"unknown member", base + `"gasLimit":"0x1"}`, `unknown field "gasLimit"`},
		{"case-folded member", base + `"Gas":"0x1"}`, `unknown field "Gas"`},
		{"duplicate member", base + `"gas":"0x1","gas":"0x2"}`, `duplicate key "gas"`},
		{"trailing data", base + `"gas":"0x1"} {}`, "after"},
		{"too large", base + `"data":"0x` + strings.Repeat("00", MaxSize/2) + `"}`, "too large"},
		{"sidecar blobs", base + `"blobs":["0x00"]}`, "blobs: blob sidecars are not supported"},
		{"sidecar proofs", base + `"proofs":[]}`, "proofs: blob sidecars"},
		{"v member", base + `"v":"0x1b"}`, `unknown field "v"`},
		{"quantity number", base + `"gas":21000}`, "gas: want a 0x-prefixed hex quantity in a JSON string, got a number"},
		{"quantity empty", base + `"value":"0x"}`, `value: quantity "0x" has no digits`},
		{"quantity leading zero", base + `"value":"0x01"}`, "value: quantity \"0x01\" has leading zeros"},
		{"quantity no prefix", base + `"value":"1"}`, "want a 0x prefix"},
		{"quantity upper prefix", base + `"value":"0X1"}`, "want a 0x prefix"},
		{"quantity not hex", base + `"value":"0xg"}`, "not hexadecimal"},
		{"quantity escaped", base + `"value":"0x\u0031"}`, "escapes"},
		{"quantity 257 bits", base + `"value":"0x1` + strings.Repeat("0", 64) + `"}`, "value: quantity of 65 hex digits exceeds 256 bits"},
		{"gas 65 bits", base + `"gas":"0x10000000000000000"}`, "gas: quantity of 17 hex digits exceeds 64 bits"},
		{"nonce 65 bits", base + `"nonce":"0x10000000000000000"}`, "nonce: quantity of 17 hex digits exceeds 64 bits"},
		{"chain id bool", base + `"chainId":true}`, "chainId: want a 0x-prefixed hex quantity in a JSON string, got a boolean"},
		{"data odd", base + `"data":"0x123"}`, "data: odd number of hex digits"},
		{"data no prefix", base + `"data":"12"}`, "data: want 0x-prefixed hex bytes"},
		{"data not hex", base + `"input":"0xzz"}`, "input: not hexadecimal"},
		{"data too long", base + `"data":"0x` + strings.Repeat("00", ethtx.MaxDataSize+1) + `"}`, "data: 131073 bytes, limit is 131072"},
		{"data and input differ", base + `"data":"0x01","input":"0x02"}`, `"data" and "input" are both set and differ`},
		{"from bad checksum", `{"from":"0x8ba1f109551bD432803012645Ac136ddd64DBA73"}`, "from: ethtx: address"},
		{"to short", base + `"to":"0x1234"}`, "to: ethtx: address: want 40 hex digits"},
		{"to number", base + `"to":1}`, "to: want a 0x-prefixed address in a JSON string, got a number"},
		{"type unsupported", base + `"type":"0x5"}`, "type: transaction type 0x5 is not supported"},
		{"type 0x7e", base + `"type":"0x7e"}`, "not supported"},
		{"access list object", base + `"accessList":{}}`, "accessList: want an array, got an object"},
		{"access list null entry", base + `"accessList":[null]}`, "accessList[0]: want an object, got null"},
		{"access list unknown member", base + `"accessList":[{"address":"` + addrTo + `","storageKeys":[],"x":1}]}`, `accessList[0]: unknown field "x"`},
		{"access list no address", base + `"accessList":[{"storageKeys":[]}]}`, "accessList[0].address: missing"},
		{"storage key short", base + `"accessList":[{"address":"` + addrTo + `","storageKeys":["0x01"]}]}`, "accessList[0].storageKeys[0]: want 32 bytes, got 1"},
		{"access list too long", base + `"accessList":[` + strings.Repeat(`{"address":"`+addrTo+`"},`, ethtx.MaxAccessListEntries) + `{"address":"` + addrTo + `"}]}`, "accessList: 257 entries, limit is 256"},
		{"blob hash short", base + `"blobVersionedHashes":["0x01"]}`, "blobVersionedHashes[0]: want 32 bytes"},
		{"blob hashes too many", base + `"blobVersionedHashes":[` + strings.Repeat(`"`+hashKZG+`",`, ethtx.MaxBlobVersionedHashes) + `"` + hashKZG + `"]}`, "blobVersionedHashes: 17 entries"},
		{"authorization v", base + `"authorizationList":[{"chainId":"0x1","address":"` + addrTo + `","nonce":"0x1","v":"0x1","r":"0x1","s":"0x1"}]}`, `authorizationList[0]: unknown field "v"`},
		{"authorization missing s", base + `"authorizationList":[{"chainId":"0x1","address":"` + addrTo + `","nonce":"0x1","yParity":"0x1","r":"0x1"}]}`, "authorizationList[0].s: missing"},
		{"authorization y parity 2", base + `"authorizationList":[{"chainId":"0x1","address":"` + addrTo + `","nonce":"0x1","yParity":"0x2","r":"0x1","s":"0x1"}]}`, "authorizationList[0].yParity: want 0x0 or 0x1"},
		{"authorization r 257 bits", base + `"authorizationList":[{"chainId":"0x1","address":"` + addrTo + `","nonce":"0x1","yParity":"0x0","r":"0x1` + strings.Repeat("0", 64) + `","s":"0x1"}]}`, "authorizationList[0].r: quantity of 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", a)
			}
			if a != nil {
				t.Errorf("Args %+v with error", a)
			}
			if !strings.HasPrefix(err.Error(), "txargs: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseErrorWraps(t *testing.T) {
	_, err := Parse(bytes.Repeat([]byte(" "), MaxSize+1))
	if !errors.Is(err, strictjson.ErrTooLarge) {
		t.Errorf("error %v does not wrap strictjson.ErrTooLarge", err)
	}
	_, err = Parse([]byte(`{"type":"0x5"}`))
	if !errors.Is(err, ethtx.ErrUnsupportedType) {
		t.Errorf("error %v does not wrap ethtx.ErrUnsupportedType", err)
	}
}

func TestParseNullIsAbsent(t *testing.T) {
	all := []string{"from", "to", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "value", "nonce", "data", "input", "accessList", "chainId", "type", "maxFeePerBlobGas", "blobVersionedHashes", "authorizationList", "blobs", "commitments", "proofs"}
	var b strings.Builder
	b.WriteString("{")
	for i, m := range all {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:null", m)
	}
	b.WriteString("}")
	a := mustParse(t, b.String())
	if !reflect.DeepEqual(a, &Args{}) {
		t.Errorf("all null = %+v, want all absent", a)
	}
}

func TestTxType(t *testing.T) {
	gp, fee, tip := `"gasPrice":"0x1"`, `"maxFeePerGas":"0x1"`, `"maxPriorityFeePerGas":"0x1"`
	al, bh, bf := `"accessList":[]`, `"blobVersionedHashes":["`+hashKZG+`"]`, `"maxFeePerBlobGas":"0x1"`
	auth := `"authorizationList":[]`
	tests := []struct {
		name    string
		members []string
		want    ethtx.Type
		err     string
	}{
		{"nothing is legacy", nil, ethtx.TypeLegacy, ""},
		{"gasPrice is legacy", []string{gp}, ethtx.TypeLegacy, ""},
		{"access list is 2930", []string{al}, ethtx.TypeAccessList, ""},
		{"gasPrice and access list is 2930", []string{gp, al}, ethtx.TypeAccessList, ""},
		{"maxFeePerGas is 1559", []string{fee}, ethtx.TypeDynamicFee, ""},
		{"tip alone is 1559", []string{tip}, ethtx.TypeDynamicFee, ""},
		{"1559 with access list", []string{fee, tip, al}, ethtx.TypeDynamicFee, ""},
		{"blob hashes are 4844", []string{bh}, ethtx.TypeBlob, ""},
		{"blob fee is 4844", []string{bf, fee}, ethtx.TypeBlob, ""},
		{"authorization list is 7702", []string{auth, fee}, ethtx.TypeSetCode, ""},
		{"gasPrice and maxFeePerGas", []string{gp, fee}, 0, "both gasPrice and maxFeePerGas"},
		{"gasPrice and tip", []string{gp, tip}, 0, "both gasPrice and maxFeePerGas or maxPriorityFeePerGas"},
		{"blob and authorization", []string{bh, auth}, 0, "no transaction type has both"},
		{"gasPrice and blob", []string{gp, bh}, 0, "gasPrice is set with blob"},
		{"gasPrice and authorization", []string{gp, auth}, 0, "gasPrice is set with blob or authorization"},
		{"explicit legacy", []string{`"type":"0x0"`, gp}, ethtx.TypeLegacy, ""},
		{"explicit 1559 without fees", []string{`"type":"0x2"`}, ethtx.TypeDynamicFee, ""},
		{"explicit 2930 without list", []string{`"type":"0x1"`, gp}, ethtx.TypeAccessList, ""},
		{"explicit 4844 over nothing", []string{`"type":"0x3"`}, ethtx.TypeBlob, ""},
		{"explicit 2 with gasPrice", []string{`"type":"0x2"`, gp}, 0, "type 0x2 (EIP-1559) has no field gasPrice"},
		{"explicit 0 with maxFeePerGas", []string{`"type":"0x0"`, fee}, 0, "type 0x0 (legacy) has no field maxFeePerGas"},
		{"explicit 1 with tip", []string{`"type":"0x1"`, tip}, 0, "type 0x1 (EIP-2930) has no field maxPriorityFeePerGas"},
		{"explicit 0 with access list", []string{`"type":"0x0"`, al}, 0, "type 0x0 (legacy) has no field accessList"},
		{"explicit 2 with blob hashes", []string{`"type":"0x2"`, bh}, 0, "has no field blobVersionedHashes"},
		{"explicit 2 with blob fee", []string{`"type":"0x2"`, bf}, 0, "has no field maxFeePerBlobGas"},
		{"explicit 3 with authorizations", []string{`"type":"0x3"`, auth}, 0, "type 0x3 (EIP-4844) has no field authorizationList"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustParse(t, "{"+strings.Join(tt.members, ",")+"}")
			got, err := a.TxType()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("TxType = %v, %v; want error %q", got, err, tt.err)
				}
				if a.Missing() != nil {
					t.Errorf("Missing = %q with a type error", a.Missing())
				}
				if _, err := a.Tx(); err == nil {
					t.Errorf("Tx succeeded with a type error")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TxType = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name, json string
		want       []string
	}{
		{"empty legacy", `{}`, []string{"gas", "gasPrice", "nonce", "chainId"}},
		{"empty 1559", `{"type":"0x2"}`, []string{"gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId"}},
		{"1559 tip only", `{"maxPriorityFeePerGas":"0x1","gas":"0x1","nonce":"0x0","chainId":"0x1"}`, []string{"maxFeePerGas"}},
		{"empty 4844", `{"type":"0x3"}`, []string{"to", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId", "maxFeePerBlobGas", "blobVersionedHashes"}},
		{"empty 7702", `{"type":"0x4"}`, []string{"to", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId", "authorizationList"}},
		{"complete creation", `{"gas":"0x1","gasPrice":"0x1","nonce":"0x0","chainId":"0x1"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.json).Missing(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Missing = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTxErrors(t *testing.T) {
	to := `"to":"` + addrTo + `",`
	tests := []struct {
		name, json, want string
	}{
		{"missing", `{"gas":"0x1"}`, `missing "gasPrice", "nonce", "chainId" for the legacy transaction`},
		{"chain id zero", `{` + to + `"gas":"0x1","gasPrice":"0x1","nonce":"0x0","chainId":"0x0"}`, "chainId: must not be zero"},
		{"creation without code", `{"gas":"0x1","gasPrice":"0x1","nonce":"0x0","chainId":"0x1"}`, "contract creation without code"},
		{"creation with empty data", `{"data":"0x","gas":"0x1","gasPrice":"0x1","nonce":"0x0","chainId":"0x1"}`, "contract creation without code"},
		{"fee below tip", `{` + to + `"gas":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x2","nonce":"0x0","chainId":"0x1"}`, "maxFeePerGas (1) is below maxPriorityFeePerGas (2)"},
		{"no blob hashes", `{` + to + `"gas":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1","blobVersionedHashes":[],"nonce":"0x0","chainId":"0x1"}`, "needs at least one"},
		{"blob hash version", `{` + to + `"gas":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1","blobVersionedHashes":["` + key1 + `"],"nonce":"0x0","chainId":"0x1"}`, "txargs: ethtx: tx.blobVersionedHashes[0]"},
		{"no authorizations", `{` + to + `"gas":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1","authorizationList":[],"nonce":"0x0","chainId":"0x1"}`, "needs at least one authorization"},
		{"blob creation", `{"data":"0x01","gas":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1","blobVersionedHashes":["` + hashKZG + `"],"nonce":"0x0","chainId":"0x1"}`, `missing "to" for the EIP-4844 transaction`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := mustParse(t, tt.json).Tx()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Tx = %v, %v; want error %q", tx, err, tt.want)
			}
		})
	}
}

func TestTxDefaultsAndCopies(t *testing.T) {
	a := mustParse(t, `{"to":"`+addrTo+`","gas":"0x5208","gasPrice":"0x1","nonce":"0x0","chainId":"0x1","accessList":[]}`)
	tx, err := a.Tx()
	if err != nil {
		t.Fatal(err)
	}
	if tx.Type != ethtx.TypeAccessList || tx.Value.Sign() != 0 || len(tx.Data) != 0 || tx.GasLimit != 21000 {
		t.Errorf("tx %+v", tx)
	}
	tx.ChainID.SetInt64(5)
	tx.To[0] = 0xff
	if a.ChainID.Int64() != 1 || a.To[0] == 0xff {
		t.Errorf("Tx shares memory with Args")
	}
}

// argsOf returns the transaction object of tx: SignedJSON without the
// signature's members, which also checks that the two agree.
func argsOf(t *testing.T, tx *ethtx.Tx) []byte {
	t.Helper()
	js, err := SignedJSON(tx, ethtx.Signature{64: 1})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatalf("SignedJSON is not JSON: %v\n%s", err, js)
	}
	for _, k := range []string{"v", "r", "s", "yParity", "hash"} {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoundTrip: random transactions of every type, as transaction
// objects, parse and build to the very same unsigned encoding.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 1))
	for _, typ := range testgen.TxTypes {
		for i := range 60 {
			want := testgen.Tx(r, typ)
			if want.To == nil && len(want.Data) == 0 {
				want.Data = []byte{0} // a creation needs code
			}
			if want.MaxFeePerGas != nil && want.MaxFeePerGas.Cmp(want.MaxPriorityFeePerGas) < 0 {
				want.MaxFeePerGas, want.MaxPriorityFeePerGas = want.MaxPriorityFeePerGas, want.MaxFeePerGas
			}
			raw := argsOf(t, want)
			a, err := Parse(raw)
			if err != nil {
				t.Fatalf("%s #%d: Parse: %v\n%s", typ, i, err, raw)
			}
			got, err := a.Tx()
			if err != nil {
				t.Fatalf("%s #%d: Tx: %v\n%s", typ, i, err, raw)
			}
			if !bytes.Equal(got.EncodeUnsigned(), want.EncodeUnsigned()) {
				t.Fatalf("%s #%d: round trip differs\n%s", typ, i, raw)
			}
		}
	}
}

func TestSignedJSON(t *testing.T) {
	to, _ := ethtx.ParseAddress(addrTo)
	tx := &ethtx.Tx{Type: ethtx.TypeLegacy, ChainID: big.NewInt(1), Nonce: 9, GasPrice: big.NewInt(20e9), GasLimit: 21000, To: &to, Value: big.NewInt(1e18)}
	var sig ethtx.Signature
	sig[31], sig[63], sig[64] = 1, 2, 1
	got, err := SignedJSON(tx, sig)
	if err != nil {
		t.Fatal(err)
	}
	hash := ethtx.TransactionHash(tx.EncodeSigned(sig))
	want := `{"type":"0x0","chainId":"0x1","nonce":"0x9","to":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","gas":"0x5208","gasPrice":"0x4a817c800","maxPriorityFeePerGas":null,"maxFeePerGas":null,"value":"0xde0b6b3a7640000","input":"0x","v":"0x26","r":"0x1","s":"0x2","hash":"0x` + fmt.Sprintf("%x", hash) + `"}`
	if string(got) != want {
		t.Errorf("SignedJSON =\n%s\nwant\n%s", got, want)
	}

	bad := []struct {
		name string
		tx   *ethtx.Tx
		sig  ethtx.Signature
		want string
	}{
		{"nil", nil, ethtx.Signature{}, "nil transaction"},
		{"y parity", tx, ethtx.Signature{64: 2}, "y parity 2"},
		{"type", &ethtx.Tx{Type: 7, ChainID: big.NewInt(1)}, ethtx.Signature{}, "type 0x07 is not supported"},
		{"no chain id", &ethtx.Tx{Type: ethtx.TypeLegacy}, ethtx.Signature{}, "chain id must be at least 1"},
		{"blob without to", &ethtx.Tx{Type: ethtx.TypeBlob, ChainID: big.NewInt(1)}, ethtx.Signature{}, "needs a destination"},
		{"negative value", &ethtx.Tx{Type: ethtx.TypeLegacy, ChainID: big.NewInt(1), Value: big.NewInt(-1)}, ethtx.Signature{}, "negative"},
		{"no blob hashes", &ethtx.Tx{Type: ethtx.TypeBlob, ChainID: big.NewInt(1), To: &to}, ethtx.Signature{}, "blobVersionedHashes"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SignedJSON(tt.tx, tt.sig); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
