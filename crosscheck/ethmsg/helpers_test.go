package ethmsg

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/nitrosign/nitrosign/ethmsg"
)

// mailJSON is the example of the EIP-712 specification (assets/eip-712/Example.js).
const mailJSON = `{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}`

// The digests the EIP-712 specification gives for mailJSON.
const (
	mailHash            = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
	mailDomainSeparator = "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
	mailMessageHash     = "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
	mailTypeHash        = "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
	mailEncodeType      = "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
)

// testDomainType and testDomain make up the domain of the documents doc builds.
const (
	testDomainType = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}]`
	testDomain     = `{"name":"Test","chainId":1}`
)

// doc builds a typed-data document from the definitions of the types other
// than EIP712Domain (a JSON object body), the primary type and the message.
func doc(types, primary, message string) string {
	if types != "" {
		types = "," + types
	}
	return `{"types":{` + testDomainType + types + `},"primaryType":"` + primary +
		`","domain":` + testDomain + `,"message":` + message + `}`
}

// one builds a document whose primary type T has a single field v of type typ.
func one(typ, value string) string {
	return doc(`"T":[{"name":"v","type":"`+typ+`"}]`, "T", `{"v":`+value+`}`)
}

func hexString(h [32]byte) string { return hex.EncodeToString(h[:]) }

func keccak256(parts ...[]byte) [32]byte { return [32]byte(crypto.Keccak256(parts...)) }

// gethHash hashes a typed-data document with go-ethereum's signer, turning
// its panics into errors.
func gethHash(js []byte) (hash [32]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-ethereum panicked: %v", r)
		}
	}()
	var td apitypes.TypedData
	if err := json.Unmarshal(js, &td); err != nil {
		return hash, fmt.Errorf("go-ethereum: json: %w", err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return hash, fmt.Errorf("go-ethereum: %w", err)
	}
	return [32]byte(h), nil
}

// gethParts returns go-ethereum's domain separator, message hash and
// encodeType of the primary type for a document it accepts.
func gethParts(t testing.TB, js []byte) (domainSeparator, messageHash [32]byte, encType string) {
	t.Helper()
	var td apitypes.TypedData
	if err := json.Unmarshal(js, &td); err != nil {
		t.Fatal(err)
	}
	ds, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		t.Fatal(err)
	}
	mh, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(ds), [32]byte(mh), string(td.EncodeType(td.PrimaryType))
}

var gethDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ethereum/go-ethereum").Output()
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list gave no directory (module not downloaded?)")
	}
	return dir, nil
})

// gethModuleDir returns the directory of the go-ethereum module, or skips the
// test with a hint.
func gethModuleDir(t *testing.T) string {
	t.Helper()
	dir, err := gethDir()
	if err != nil {
		t.Skipf("go-ethereum module source not available (%v); run go mod download github.com/ethereum/go-ethereum", err)
	}
	return dir
}

func mustParse(t testing.TB, js string) *ethmsg.TypedData {
	t.Helper()
	td, err := ethmsg.ParseTypedData([]byte(js))
	if err != nil {
		t.Fatalf("ParseTypedData: %v\n%s", err, js)
	}
	return td
}
