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
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// doc and one build typed-data documents (testgen.Doc, testgen.OneField).
var doc, one = testgen.Doc, testgen.OneField

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
